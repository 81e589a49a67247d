//! Cases of the batch face: Produce, ProduceStream, Fetch, ListOffsets. Targets are mostly
//! the model partitions (at their leader, or at another node), sometimes a model topic's
//! partition past its end (`u32::MAX`), an internal topic, a pool topic or a hostile name.
//!
//! What a produce to a model partition must answer is known before it is sent: a frame over
//! 1 MiB is MESSAGE_TOO_LARGE, one `parse_produced` refuses is CORRUPT_BATCH, and one it
//! accepts is written (NONE, and then readable exactly as sent) unless a leader, timeout or
//! idempotence code says why not. A produce to an internal topic is never NONE.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use stave_log::batch::BatchView;
use stave_proto::v1 as pb;

use super::frames::{self, Batch};
use super::harness::{Checked, Defect, answer, defect, typed};
use super::model::{self, IDEMPOTENT_PARTITIONS, IDEMPOTENT_TOPIC, PLAIN_PARTITIONS, PLAIN_TOPIC};
use super::names::{POOL_TOPICS, edge_i64, edge_u32, edge_u64, hostile_string, pick};
use super::{After, Ctx};

/// Where a data request goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub topic: String,
    pub partition: u32,
    pub kind: TargetKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A partition of a model topic.
    Model,
    /// A model topic, a partition it does not have.
    MissingPartition,
    /// `__offsets`.
    Internal,
    /// Anything else: may or may not exist.
    Other,
}

pub fn target(rng: &mut StdRng) -> Target {
    let (topic, partition, kind) = match rng.random_range(0..10) {
        0..=6 => {
            let (topic, partition) = pick(rng, &model::model_partitions());
            (topic.to_string(), partition, TargetKind::Model)
        }
        7 => {
            let (topic, count) = pick(
                rng,
                &[
                    (PLAIN_TOPIC, PLAIN_PARTITIONS),
                    (IDEMPOTENT_TOPIC, IDEMPOTENT_PARTITIONS),
                ],
            );
            let past = count.saturating_add(edge_u32(rng));
            let partition = pick(rng, &[count, u32::MAX, past]);
            (topic.to_string(), partition, TargetKind::MissingPartition)
        }
        8 => (
            "__offsets".to_string(),
            rng.random_range(0..20),
            TargetKind::Internal,
        ),
        _ => {
            let topic = if rng.random_bool(0.5) {
                pick(rng, &POOL_TOPICS).to_string()
            } else {
                hostile_string(rng)
            };
            (topic, edge_u32(rng), TargetKind::Other)
        }
    };
    let kind = if kind == TargetKind::Internal && partition >= 16 {
        TargetKind::Other
    } else {
        kind
    };
    Target {
        topic,
        partition,
        kind,
    }
}

/// The node a request for `target` goes to: its leader mostly, any node sometimes.
fn node_for(ctx: &Ctx, rng: &mut StdRng, target: &Target) -> usize {
    if rng.random_bool(0.8) {
        ctx.cluster.leader(&target.topic, target.partition)
    } else {
        rng.random_range(0..ctx.cluster.len())
    }
}

/// Whether a produce answered `code` may have written its batch anyway.
fn maybe_written(code: pb::ErrorCode) -> bool {
    matches!(
        code,
        pb::ErrorCode::NotLeader
            | pb::ErrorCode::LeaderNotAvailable
            | pb::ErrorCode::RequestTimedOut
    )
}

/// Judges a produce's answer (see the module doc) and records what it wrote in the model.
fn judge_produce(
    ctx: &Ctx,
    target: &Target,
    batch: &Batch,
    response: &pb::ProduceResponse,
) -> Checked {
    let code = typed(&response.error)?;
    let wrong = |expected: &str| {
        defect(
            "wrong produce answer",
            format!(
                "{}/{} ({:?}), frame [{}] {}: expected {expected}, got {code:?} {:?}",
                target.topic,
                target.partition,
                target.kind,
                batch.how,
                model::describe(&batch.bytes),
                response.error
            ),
        )
    };
    if code == pb::ErrorCode::None && batch.records.is_none() {
        return Err(wrong("a refusal (the frame is not one producers may send)"));
    }
    match target.kind {
        TargetKind::Internal if code == pb::ErrorCode::None => {
            Err(wrong("a refusal (internal topic)"))
        }
        TargetKind::MissingPartition if code != pb::ErrorCode::UnknownPartition => {
            Err(wrong("UNKNOWN_PARTITION"))
        }
        TargetKind::Model => judge_model_produce(ctx, target, batch, response, code, wrong),
        _ => Ok(()),
    }
}

fn judge_model_produce(
    ctx: &Ctx,
    target: &Target,
    batch: &Batch,
    response: &pb::ProduceResponse,
    code: pb::ErrorCode,
    wrong: impl Fn(&str) -> Defect,
) -> Checked {
    let Some(records) = &batch.records else {
        let expected = if batch.too_large {
            pb::ErrorCode::MessageTooLarge
        } else {
            pb::ErrorCode::CorruptBatch
        };
        return if code == expected {
            Ok(())
        } else {
            Err(wrong(&format!("{expected:?}")))
        };
    };
    match code {
        pb::ErrorCode::None if response.duplicate => Ok(()),
        pb::ErrorCode::None => ctx
            .model
            .acked(&target.topic, target.partition, response, records),
        c if maybe_written(c) => {
            ctx.model.unknown(&target.topic, target.partition, records);
            ctx.cluster
                .note_leader(&target.topic, target.partition, &response.error);
            Ok(())
        }
        pb::ErrorCode::OutOfOrderSequence
        | pb::ErrorCode::ProducerFenced
        | pb::ErrorCode::DuplicateInFlight
            if batch.producer().is_some_and(|(id, _, _)| id >= 0) =>
        {
            Ok(())
        }
        _ => Err(wrong(
            "NONE, a leader or timeout code, or an idempotence code",
        )),
    }
}

pub async fn produce(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let target = target(rng);
    let batch = frames::hostile_batch(rng, ctx.model.producer_id());
    let sequence = edge_u64(rng);
    let node = node_for(ctx, rng, &target);
    let request = pb::ProduceRequest {
        sequence,
        topic: target.topic.clone(),
        partition: target.partition,
        batch: batch.bytes.clone(),
    };
    let outcome = answer(&request, ctx.cluster.client(node).produce(request.clone())).await;
    let unknown = |ctx: &Ctx| {
        if let (TargetKind::Model, Some(records)) = (target.kind, &batch.records) {
            ctx.model.unknown(&target.topic, target.partition, records);
        }
    };
    match outcome {
        Ok(Some(response)) => {
            if response.sequence != sequence {
                return Err(defect(
                    "sequence not echoed",
                    format!("sent {sequence}, got {}", response.sequence),
                ));
            }
            judge_produce(ctx, &target, &batch, &response)?;
        }
        Ok(None) => unknown(ctx),
        Err(err) => {
            unknown(ctx);
            return Err(err);
        }
    }
    Ok(After::touching(&target))
}

/// How a ProduceStream case ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// The client closes its side and reads every answer.
    Closed,
    /// The client reads some answers and hangs up.
    Abrupt,
    /// The client reads every answer without ever closing its side, then hangs up.
    Open,
}

pub async fn produce_stream(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let first = target(rng);
    let count = rng.random_range(1..9);
    let mut sent: Vec<(u64, Target, Batch)> = Vec::with_capacity(count);
    let mut sequences = std::collections::BTreeSet::new();
    for _ in 0..count {
        let target = if rng.random_bool(0.7) {
            first.clone()
        } else {
            target(rng)
        };
        let batch = if rng.random_bool(0.6) {
            frames::hostile_batch(rng, ctx.model.producer_id())
        } else {
            frames::valid_batch(
                rng,
                frames::Size::Small,
                stave_log::batch::ProducerFields::NONE,
            )
        };
        let mut sequence = edge_u64(rng);
        while !sequences.insert(sequence) {
            sequence = rng.random();
        }
        sent.push((sequence, target, batch));
    }
    let end = pick(
        rng,
        &[
            StreamEnd::Closed,
            StreamEnd::Closed,
            StreamEnd::Abrupt,
            StreamEnd::Open,
        ],
    );
    let (requests, incoming) = tokio::sync::mpsc::channel(16);
    for (sequence, target, batch) in &sent {
        let request = pb::ProduceRequest {
            sequence: *sequence,
            topic: target.topic.clone(),
            partition: target.partition,
            batch: batch.bytes.clone(),
        };
        requests.try_send(request).expect("room for every request");
    }
    let keep_open = if end == StreamEnd::Closed {
        None
    } else {
        Some(requests)
    };
    let node = node_for(ctx, rng, &first);
    let stream = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let mut pending: std::collections::HashMap<u64, (Target, Batch)> =
        sent.into_iter().map(|(s, t, b)| (s, (t, b))).collect();
    let reads = if end == StreamEnd::Abrupt {
        rng.random_range(0..count)
    } else {
        count
    };
    let outcome = read_answers(ctx, node, stream, &mut pending, reads).await;
    drop(keep_open);
    // What was not answered may still be written.
    for (target, batch) in pending.values() {
        if let (TargetKind::Model, Some(records)) = (target.kind, &batch.records) {
            ctx.model.unknown(&target.topic, target.partition, records);
        }
    }
    outcome?;
    Ok(After::touching(&first))
}

/// Opens the stream and reads `reads` answers, judging each against its request.
async fn read_answers(
    ctx: &Ctx,
    node: usize,
    stream: tokio_stream::wrappers::ReceiverStream<pb::ProduceRequest>,
    pending: &mut std::collections::HashMap<u64, (Target, Batch)>,
    reads: usize,
) -> Checked {
    let Some(mut answers) = answer(
        &"a produce stream",
        ctx.cluster.client(node).produce_stream(stream),
    )
    .await?
    else {
        return Ok(());
    };
    for _ in 0..reads {
        let next = tokio::time::timeout(super::harness::CALL_MAX, answers.message()).await;
        let response = match next {
            Err(_) => return Err(defect("hang", "a produce stream stopped answering")),
            Ok(Ok(Some(response))) => response,
            Ok(Ok(None)) => {
                return Err(defect(
                    "produce stream ended early",
                    format!("{} unanswered", pending.len()),
                ));
            }
            Ok(Err(status)) if super::harness::status_acceptable(&status) => return Ok(()),
            Ok(Err(status)) => {
                return Err(defect(
                    "unacceptable status",
                    format!("produce stream: {status}"),
                ));
            }
        };
        let Some((target, batch)) = pending.remove(&response.sequence) else {
            return Err(defect(
                "produce stream answered a sequence it was not sent",
                format!("{response:?}"),
            ));
        };
        judge_produce(ctx, &target, &batch, &response)?;
    }
    Ok(())
}

/// The bytes a fetch asking `max_bytes` may carry at most (unless its first frame is larger).
fn fetch_bytes_max(max_bytes: u32) -> usize {
    const MAX: usize = (16 << 20) - (64 << 10);
    if max_bytes == 0 {
        1 << 20
    } else {
        (max_bytes as usize).min(MAX)
    }
}

pub async fn fetch(ctx: &Arc<Ctx>, rng: &mut StdRng) -> Result<After, Defect> {
    let target = target(rng);
    if target.kind == TargetKind::Model && rng.random_ratio(1, 10) {
        return long_poll(ctx, target).await;
    }
    let acked_end = ctx.model.acked_end(&target.topic, target.partition);
    let (inside, edge) = (rng.random_range(0..=acked_end), edge_u64(rng));
    let offset = pick(rng, &[0, acked_end, acked_end + 1, inside, u64::MAX, edge]);
    let edge = edge_u32(rng);
    let max_wait_ms = pick(rng, &[0, 1, 50, 200, u32::MAX, edge]);
    let request = pb::FetchRequest {
        topic: target.topic.clone(),
        partition: target.partition,
        offset,
        max_bytes: edge_u32(rng),
        min_bytes: edge_u32(rng),
        max_wait_ms,
    };
    let node = node_for(ctx, rng, &target);
    let mut client = ctx.cluster.client(node);
    let call = client.fetch(request.clone());
    let response = if max_wait_ms > 500 {
        // A long poll may legitimately wait (up to 30 s): give it a moment, no more.
        match tokio::time::timeout(Duration::from_millis(300), call).await {
            Err(_) => return Ok(After::touching(&target)),
            Ok(result) => answer(&request, async { result }).await?,
        }
    } else {
        answer(&request, call).await?
    };
    if let Some(response) = response {
        judge_fetch(ctx, &target, &request, acked_end, &response)?;
    }
    Ok(After::touching(&target))
}

/// Judges a fetch answer: frames intact and as acknowledged, offsets consistent, nothing
/// acknowledged reported out of range.
fn judge_fetch(
    ctx: &Ctx,
    target: &Target,
    request: &pb::FetchRequest,
    acked_end: u64,
    response: &pb::FetchResponse,
) -> Checked {
    let code = typed(&response.error)?;
    let context = || {
        format!(
            "{}/{} {request:?}: {:?} hwm {} next {}",
            target.topic,
            target.partition,
            response.error,
            response.high_watermark,
            response.next_offset
        )
    };
    if target.kind == TargetKind::MissingPartition && code != pb::ErrorCode::UnknownPartition {
        return Err(defect(
            "wrong fetch answer",
            format!("expected UNKNOWN_PARTITION: {}", context()),
        ));
    }
    if target.kind == TargetKind::Model
        && code == pb::ErrorCode::OffsetOutOfRange
        && request.offset <= acked_end
    {
        return Err(defect("acknowledged offset out of range", context()));
    }
    if code != pb::ErrorCode::None {
        if target.kind == TargetKind::Model {
            ctx.cluster
                .note_leader(&target.topic, target.partition, &response.error);
        }
        return Ok(());
    }
    let mut next = None;
    let mut frames = 0;
    for frame in BatchView::split(&response.batches) {
        let view =
            frame.map_err(|err| defect("corrupt frame served", format!("{err}: {}", context())))?;
        if !view.frame_type().is_data() {
            return Err(defect("control frame served", context()));
        }
        if let Some(expected) = next
            && view.base_offset().0 != expected
        {
            return Err(defect("fetched frames not contiguous", context()));
        }
        if frames == 0
            && !(view.base_offset().0 <= request.offset && request.offset < view.next_offset().0)
        {
            return Err(defect(
                "first fetched frame does not hold the offset asked",
                context(),
            ));
        }
        if target.kind == TargetKind::Model {
            ctx.model
                .check_served(&target.topic, target.partition, &view)?;
        }
        next = Some(view.next_offset().0);
        frames += 1;
    }
    // With nothing served, `next_offset` is the offset asked, which may lie past the high
    // watermark (up to the leader's log end: a new leader's uncommitted tail waits).
    let consistent = match next {
        Some(next) => response.next_offset == next && next <= response.high_watermark,
        None => response.next_offset == request.offset,
    };
    if !consistent {
        return Err(defect("fetch offsets inconsistent", context()));
    }
    if frames > 1 && response.batches.len() > fetch_bytes_max(request.max_bytes) {
        return Err(defect("fetch returned more than max_bytes", context()));
    }
    if target.kind == TargetKind::Model && frames == 0 && request.offset < acked_end {
        return Err(defect("acknowledged records not served", context()));
    }
    Ok(())
}

/// A fetch at the high watermark waiting as long as it may (`u32::MAX` ms): it must return
/// as soon as the valid write after this case commits.
async fn long_poll(ctx: &Arc<Ctx>, target: Target) -> Result<After, Defect> {
    let node = ctx.cluster.leader(&target.topic, target.partition);
    let mut client = ctx.cluster.client(node);
    let latest = pb::ListOffsetsRequest {
        topic: target.topic.clone(),
        partition: target.partition,
        spec: Some(pb::list_offsets_request::Spec::Latest(true)),
    };
    let Some(latest) = answer(&latest, client.list_offsets(latest.clone())).await? else {
        return Ok(After::touching(&target));
    };
    if typed(&latest.error)? != pb::ErrorCode::None {
        ctx.cluster
            .note_leader(&target.topic, target.partition, &latest.error);
        return Ok(After::touching(&target));
    }
    let request = pb::FetchRequest {
        topic: target.topic.clone(),
        partition: target.partition,
        offset: latest.offset,
        max_bytes: 0,
        min_bytes: 1,
        max_wait_ms: u32::MAX,
    };
    let ctx = ctx.clone();
    let acked_end = ctx.model.acked_end(&target.topic, target.partition);
    let waiting = tokio::spawn({
        let target = target.clone();
        async move {
            let response = client
                .fetch(request.clone())
                .await
                .map_err(|status| defect("unacceptable status", format!("long poll: {status}")))?;
            let response = response.into_inner();
            judge_fetch(&ctx, &target, &request, acked_end, &response)?;
            if typed(&response.error)? == pb::ErrorCode::None && response.batches.is_empty() {
                return Err(defect("long poll returned nothing", format!("{request:?}")));
            }
            Ok(())
        }
    });
    let mut after = After::touching(&target);
    after.waiting = Some(waiting);
    Ok(after)
}

pub async fn list_offsets(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    use pb::list_offsets_request::Spec;
    let target = target(rng);
    let spec = match rng.random_range(0..5) {
        0 => None,
        1 => Some(Spec::Earliest(rng.random())),
        2 => Some(Spec::Latest(rng.random())),
        _ => Some(Spec::TimestampMs(edge_i64(rng))),
    };
    let acked_end = ctx.model.acked_end(&target.topic, target.partition);
    let request = pb::ListOffsetsRequest {
        topic: target.topic.clone(),
        partition: target.partition,
        spec,
    };
    let node = node_for(ctx, rng, &target);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).list_offsets(request.clone()),
    )
    .await?
    else {
        return Ok(After::touching(&target));
    };
    let code = typed(&response.error)?;
    let wrong = |why: &str| {
        defect(
            "wrong list offsets answer",
            format!("{why}: {request:?} → {response:?}"),
        )
    };
    match (target.kind, code, spec) {
        (TargetKind::MissingPartition, c, _) if c != pb::ErrorCode::UnknownPartition => {
            return Err(wrong("expected UNKNOWN_PARTITION"));
        }
        (TargetKind::Model, pb::ErrorCode::None, None) => return Err(wrong("no spec, yet NONE")),
        (TargetKind::Model, pb::ErrorCode::None, Some(Spec::Earliest(_)))
            if response.offset != 0 =>
        {
            return Err(wrong("a model partition starts at 0"));
        }
        (TargetKind::Model, pb::ErrorCode::None, Some(Spec::Latest(_)))
            if response.offset < acked_end =>
        {
            return Err(wrong("latest is below an acknowledged offset"));
        }
        (TargetKind::Model, c, _) if c != pb::ErrorCode::None => {
            ctx.cluster
                .note_leader(&target.topic, target.partition, &response.error);
        }
        _ => {}
    }
    Ok(After::touching(&target))
}

/// A valid write to a pool topic's partition, which another case may have deleted (or never
/// created, or given a small `max.message.bytes`): it must be taken, unless the partition
/// does not exist or refuses the size; retriable answers are retried for the heal time.
pub async fn write_if_exists(ctx: &Ctx, rng: &mut StdRng, topic: &str, partition: u32) -> Checked {
    let batch = frames::valid_batch(
        rng,
        frames::Size::Small,
        stave_log::batch::ProducerFields::NONE,
    );
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < super::harness::HEAL_MAX {
        let request = pb::ProduceRequest {
            sequence: 0,
            topic: topic.to_string(),
            partition,
            batch: batch.bytes.clone(),
        };
        let node = ctx.cluster.leader(topic, partition);
        if let Some(response) =
            answer(&request, ctx.cluster.client(node).produce(request.clone())).await?
        {
            match typed(&response.error)? {
                pb::ErrorCode::None
                | pb::ErrorCode::UnknownTopic
                | pb::ErrorCode::UnknownPartition
                | pb::ErrorCode::MessageTooLarge => return Ok(()),
                c if maybe_written(c) => {
                    ctx.cluster.note_leader(topic, partition, &response.error);
                    last = format!("{:?}", response.error);
                }
                other => {
                    return Err(defect(
                        "a valid write was refused",
                        format!("{topic}/{partition}: {other:?} {:?}", response.error),
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(defect(
        "partition stopped taking writes",
        format!("{topic}/{partition}: {last}"),
    ))
}

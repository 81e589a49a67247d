//! Cases of Consume in queue mode. Hostile streams subscribe with `mode = QUEUE` (or an
//! unknown mode) to hostile groups, topics and options, some with `partitions` or
//! `auto_commit` (which queue mode refuses), then send credits at their edges, Settle
//! messages of hostile settlements (see [`super::queues::settlement`]), Commits (queue mode
//! settles instead), second subscribes and empty messages. Valid streams join one of
//! [`MEMBER_GROUPS`] on the idempotent model topic, take a few records and settle them on the
//! stream, with wrong settlements of the same records mixed in.
//!
//! What must hold: every answer is typed; no record comes past the credits; a subscribe
//! with a fault that needs no cluster state to see gets no record; a Commit in queue mode is
//! refused; a Settled answers every settlement of its Settle and refuses those with a fault
//! (a Settle on a stream that is not in queue mode is refused); a valid stream's acks of its
//! own records are taken, its wrong settlements refused.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use stave_proto::v1 as pb;
use tokio::sync::mpsc;

use super::groups::valid_group;
use super::harness::{CALL_MAX, Defect, answer, defect, shown, status_acceptable, typed};
use super::model::{IDEMPOTENT_PARTITIONS, IDEMPOTENT_TOPIC};
use super::names::{edge_u64, pick};
use super::queues::{
    Counts, MEMBER_GROUPS, join_group, judge_delivered, options, options_fault, settlement_fault,
    settlements, subscribed_topic, subscription_fault,
};
use super::{After, Ctx};

/// How long a hostile stream listens for answers.
const HOSTILE_LISTEN: Duration = Duration::from_millis(300);
/// How long a valid stream waits for its first records.
const VALID_LISTEN: Duration = Duration::from_millis(1_000);

const QUEUE: i32 = pb::ConsumeMode::Queue as i32;

fn request(request: pb::consume_request::Request) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        request: Some(request),
    }
}

fn hostile_subscribe(rng: &mut StdRng) -> pb::Subscribe {
    use pb::subscribe::Start;
    pb::Subscribe {
        topics: (0..pick(rng, &[0, 1, 1, 1, 2, 3]))
            .map(|_| subscribed_topic(rng))
            .collect(),
        group: join_group(rng),
        partitions: match rng.random_range(0..10) {
            0 => vec![0],
            1 => vec![u32::MAX, 1],
            _ => Vec::new(),
        },
        auto_commit: rng.random_ratio(1, 10),
        start: match rng.random_range(0..5) {
            0 => None,
            1 => Some(Start::Latest(true)),
            2 => Some(Start::Offset(edge_u64(rng))),
            _ => Some(Start::Earliest(true)),
        },
        mode: pick(rng, &[QUEUE, QUEUE, QUEUE, QUEUE, QUEUE, QUEUE, 0, 2, -1]),
        queue: options(rng),
    }
}

/// Why a queue-mode subscribe must get no record, if it must.
fn subscribe_fault(subscribe: &pb::Subscribe) -> Option<&'static str> {
    if subscribe.mode != QUEUE {
        return None;
    }
    if !valid_group(&subscribe.group) {
        Some("no group name")
    } else if !subscribe.partitions.is_empty() {
        Some("partitions in queue mode")
    } else if subscribe.auto_commit {
        Some("auto_commit in queue mode")
    } else if let Some(fault) = options_fault(&subscribe.queue) {
        Some(fault)
    } else {
        subscription_fault(&subscribe.group, &subscribe.topics)
    }
}

fn follow_up(rng: &mut StdRng) -> pb::ConsumeRequest {
    use pb::consume_request::Request;
    match rng.random_range(0..10) {
        0..=3 => request(Request::Credit(pb::Credit {
            records: pick(rng, &[0, 1, 5, 100, u32::MAX]),
            bytes: pick(rng, &[0, 0, 1, 1000, u64::MAX]),
        })),
        4..=6 => request(Request::Settle(settle_message(rng))),
        7 => request(Request::Commit(pb::Commit {
            id: edge_u64(rng),
            offsets: Vec::new(),
        })),
        8 => pb::ConsumeRequest { request: None },
        _ => request(Request::Subscribe(hostile_subscribe(rng))),
    }
}

/// A Settle message of hostile settlements (also sent to streams in group mode).
pub fn settle_message(rng: &mut StdRng) -> pb::Settle {
    pb::Settle {
        id: edge_u64(rng),
        settlements: settlements(rng),
    }
}

/// The next message within `deadline`; `None` when the stream ended (or failed acceptably)
/// or the deadline passed.
async fn next(
    pushed: &mut tonic::Streaming<pb::ConsumeResponse>,
    deadline: tokio::time::Instant,
) -> Result<Option<pb::ConsumeResponse>, Defect> {
    match tokio::time::timeout_at(deadline, pushed.message()).await {
        Err(_) | Ok(Ok(None)) => Ok(None),
        Ok(Ok(Some(message))) => Ok(Some(message)),
        Ok(Err(status)) if status_acceptable(&status) => Ok(None),
        Ok(Err(status)) => Err(defect("unacceptable status", status.to_string())),
    }
}

/// Judges a Settled answer against the Settle messages sent with its id (when just one).
fn judge_settled(
    sent: &[pb::Settle],
    queue_mode: bool,
    settled: &pb::Settled,
) -> Result<(), Defect> {
    let codes = settled
        .results
        .iter()
        .map(|r| typed(&Some(r.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    if !queue_mode {
        // Refused whole: one answer, never NONE.
        if codes.len() != 1 || codes[0] == pb::ErrorCode::None {
            return Err(defect(
                "a Settle on a stream not in queue mode was taken",
                shown(settled),
            ));
        }
        return Ok(());
    }
    let same: Vec<&pb::Settle> = sent.iter().filter(|s| s.id == settled.id).collect();
    let [settle] = same.as_slice() else {
        return Ok(());
    };
    if codes.len() != settle.settlements.len() {
        return Err(defect(
            "one answer per settlement",
            format!("{} answers to {}", codes.len(), shown(settle)),
        ));
    }
    for (settlement, code) in settle.settlements.iter().zip(codes) {
        if let Some(fault) = settlement_fault(settlement).filter(|_| code == pb::ErrorCode::None) {
            return Err(defect(
                "a settlement with a fault was taken on a stream",
                format!("{fault}: {}", shown(settlement)),
            ));
        }
    }
    Ok(())
}

/// What a hostile stream was sent, to judge its answers by.
struct Sent {
    subscribe: Option<pb::Subscribe>,
    credited: u64,
    settles: Vec<pb::Settle>,
}

impl Sent {
    fn of(requests: &[pb::ConsumeRequest]) -> Sent {
        use pb::consume_request::Request;
        let subscribe = match &requests[0].request {
            Some(Request::Subscribe(subscribe)) => Some(subscribe.clone()),
            _ => None,
        };
        let mut sent = Sent {
            subscribe,
            credited: 0,
            settles: Vec::new(),
        };
        for asked in &requests[1..] {
            match &asked.request {
                Some(Request::Credit(credit)) => sent.credited += u64::from(credit.records),
                Some(Request::Settle(settle)) => sent.settles.push(settle.clone()),
                _ => {}
            }
        }
        if sent.subscribe.is_none() {
            sent.credited = 0;
        }
        sent
    }

    fn queue_mode(&self) -> bool {
        self.subscribe.as_ref().is_some_and(|s| s.mode == QUEUE)
    }
}

/// Judges one pushed message of a hostile stream; the records it carried.
fn judge_message(sent: &Sent, message: pb::ConsumeResponse) -> Result<usize, Defect> {
    use pb::consume_response::Response;
    match message.response {
        Some(Response::Records(batch)) => {
            if sent.queue_mode() {
                for record in &batch.records {
                    judge_delivered(record)?;
                }
            }
            return Ok(batch.records.len());
        }
        Some(Response::Error(error)) => {
            typed(&Some(error))?;
        }
        Some(Response::Committed(done)) => {
            let code = typed(&done.error)?;
            if sent.queue_mode() && code == pb::ErrorCode::None {
                return Err(defect("a Commit in queue mode was taken", shown(&done)));
            }
        }
        Some(Response::Settled(done)) => judge_settled(&sent.settles, sent.queue_mode(), &done)?,
        Some(Response::Assignment(_)) | None => {}
    }
    Ok(0)
}

async fn hostile_stream(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    use pb::consume_request::Request;
    let first = if rng.random_bool(0.95) {
        request(Request::Subscribe(hostile_subscribe(rng)))
    } else {
        follow_up(rng)
    };
    let mut requests = vec![first];
    requests.extend((0..rng.random_range(0..5)).map(|_| follow_up(rng)));
    let sent = Sent::of(&requests);
    let (send, incoming) = mpsc::channel(16);
    for asked in &requests {
        send.try_send(asked.clone())
            .expect("room for every request");
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let node = rng.random_range(0..ctx.cluster.len());
    let Some(mut pushed) = answer(&requests, ctx.cluster.client(node).consume(stream)).await?
    else {
        return Ok(After::nothing());
    };
    let mut records = 0u64;
    let deadline = tokio::time::Instant::now() + HOSTILE_LISTEN;
    while let Some(message) = next(&mut pushed, deadline).await? {
        if let Some(pb::consume_response::Response::Settled(settled)) = &message.response {
            ctx.queue_counts.results(&settled.results);
        }
        let pushed = judge_message(&sent, message)?;
        Counts::add(&ctx.queue_counts.delivered, pushed);
        records += pushed as u64;
    }
    let fault = sent.subscribe.as_ref().and_then(subscribe_fault);
    if records > sent.credited || (records > 0 && fault.is_some()) {
        return Err(defect(
            "records pushed that the stream may not have",
            format!(
                "{records} pushed, {} credited, fault {fault:?}: {}",
                sent.credited,
                shown(&requests)
            ),
        ));
    }
    drop(send);
    let group = sent.subscribe.map(|s| s.group).unwrap_or_default();
    Ok(After::group(&group))
}

/// Settlements of `records` pushed to a valid stream: acks, and wrong ones mixed in (each
/// with whether it must be taken).
fn stream_settlements(
    rng: &mut StdRng,
    records: &[pb::ConsumedRecord],
) -> Vec<(pb::Settlement, bool)> {
    let mut out = Vec::new();
    for record in records {
        let ack = pb::Settlement {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            delivery_count: record.delivery_count,
            action: pb::SettleAction::SettleAck as i32,
            delay_ms: 0,
            reason: String::new(),
        };
        if rng.random_ratio(1, 3) {
            let mut wrong = ack.clone();
            match rng.random_range(0..3) {
                0 => wrong.delivery_count = record.delivery_count.wrapping_add(1).max(2),
                1 => wrong.offset = record.offset.wrapping_add(1 << 40),
                _ => wrong.partition = IDEMPOTENT_PARTITIONS,
            }
            out.push((wrong, false));
        }
        out.push((ack, true));
    }
    out
}

/// Codes a valid stream's settlement may get instead of NONE: its member or coordinator
/// moved, or the write did not complete in time.
fn moved(code: pb::ErrorCode) -> bool {
    matches!(
        code,
        pb::ErrorCode::NotCoordinator
            | pb::ErrorCode::CoordinatorNotAvailable
            | pb::ErrorCode::RequestTimedOut
            | pb::ErrorCode::UnknownMemberId
    )
}

/// Judges the Settled answer of a valid stream's settle.
fn judge_valid_settled(
    expected: &[(pb::Settlement, bool)],
    settled: &pb::Settled,
) -> Result<(), Defect> {
    if settled.results.len() != expected.len() {
        return Err(defect("one answer per settlement", shown(settled)));
    }
    for ((settlement, valid), result) in expected.iter().zip(&settled.results) {
        let code = typed(&Some(result.clone()))?;
        let right = if *valid {
            code == pb::ErrorCode::None || moved(code)
        } else {
            code != pb::ErrorCode::None
        };
        if !right {
            return Err(defect(
                "a valid stream's settlement was judged wrong",
                format!("{} (valid: {valid}) got {result:?}", shown(settlement)),
            ));
        }
    }
    Ok(())
}

/// A valid queue stream (see the module doc).
async fn valid_stream(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    use pb::consume_request::Request;
    use pb::consume_response::Response;
    let group = pick(rng, &MEMBER_GROUPS).to_string();
    let mut after =
        After::touching_partition(IDEMPOTENT_TOPIC, rng.random_range(0..IDEMPOTENT_PARTITIONS));
    after.group = Some(group.clone());
    let credit = rng.random_range(1..=5);
    let subscribe = pb::Subscribe {
        topics: vec![IDEMPOTENT_TOPIC.into()],
        group,
        start: Some(pb::subscribe::Start::Earliest(true)),
        mode: QUEUE,
        queue: rng.random_bool(0.5).then(pb::QueueOptions::default),
        ..Default::default()
    };
    let credit_message = request(Request::Credit(pb::Credit {
        records: credit,
        bytes: 0,
    }));
    let (send, incoming) = mpsc::channel(16);
    send.try_send(request(Request::Subscribe(subscribe)))
        .expect("room");
    send.try_send(credit_message).expect("room");
    let stream = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let node = rng.random_range(0..ctx.cluster.len());
    let Some(mut pushed) = answer(
        &"a valid queue stream",
        ctx.cluster.client(node).consume(stream),
    )
    .await?
    else {
        return Ok(after);
    };
    let mut deadline = tokio::time::Instant::now() + VALID_LISTEN;
    let mut pushed_records = 0u64;
    let mut expected: Option<Vec<(pb::Settlement, bool)>> = None;
    let mut answered = false;
    while let Some(message) = next(&mut pushed, deadline).await? {
        match message.response {
            Some(Response::Records(batch)) => {
                pushed_records += batch.records.len() as u64;
                Counts::add(&ctx.queue_counts.delivered, batch.records.len());
                for record in &batch.records {
                    judge_delivered(record)?;
                }
                if expected.is_none() && !batch.records.is_empty() {
                    after.partition = Some((IDEMPOTENT_TOPIC.into(), batch.records[0].partition));
                    let settlements = stream_settlements(rng, &batch.records);
                    let settle = pb::Settle {
                        id: 1,
                        settlements: settlements.iter().map(|(s, _)| s.clone()).collect(),
                    };
                    if send.send(request(Request::Settle(settle))).await.is_err() {
                        break;
                    }
                    expected = Some(settlements);
                    deadline = tokio::time::Instant::now() + CALL_MAX;
                }
            }
            Some(Response::Settled(settled)) => {
                if let Some(expected) = &expected {
                    judge_valid_settled(expected, &settled)?;
                }
                ctx.queue_counts.results(&settled.results);
                answered = true;
                break;
            }
            Some(Response::Error(error)) => {
                typed(&Some(error))?;
                answered = true;
                break;
            }
            Some(Response::Committed(_) | Response::Assignment(_)) | None => {}
        }
    }
    if expected.is_some() && !answered && tokio::time::Instant::now() >= deadline {
        return Err(defect(
            "hang",
            format!("a valid queue stream's Settle was not answered within {CALL_MAX:?}"),
        ));
    }
    if pushed_records > u64::from(credit) {
        return Err(defect(
            "records pushed past the credits",
            format!("{pushed_records} pushed, {credit} credited"),
        ));
    }
    drop(send);
    Ok(after)
}

pub async fn consume_queue(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    if rng.random_ratio(1, 3) {
        return valid_stream(ctx, rng).await;
    }
    hostile_stream(ctx, rng).await
}

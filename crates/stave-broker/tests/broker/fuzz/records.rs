//! Cases of the record face: Publish, PublishStream and Consume. Records aim at pool topics (any
//! partition, or routed by key or id), at partitions the model topics do not have, at
//! `__offsets`, at hostile and empty names; keys, values, headers and timestamps are drawn at
//! their edges (empty header keys, empty and repeated ids, megabyte values, negative
//! timestamps). Records never land in a model partition, so the model stays exact.
//!
//! What must hold: one answer per record, in order, each typed; a record whose fault needs
//! no metadata (empty topic, internal topic, empty header key, empty id, negative timestamp)
//! gets its own code; a request over the record limit is refused whole; a stream echoes
//! every sequence; and a pool partition a record aimed at still takes a write.

use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;
use stave_proto::v1 as pb;

use super::harness::{Checked, Defect, answer, defect, typed};
use super::model::{IDEMPOTENT_PARTITIONS, IDEMPOTENT_TOPIC, PLAIN_PARTITIONS, PLAIN_TOPIC};
use super::names::{POOL_TOPICS, edge_i64, edge_u32, edge_u64, hostile_string, pick};
use super::{After, Ctx};

/// The most records a Publish request may carry (the broker's limit).
const RECORDS_MAX: usize = 10_000;

fn bytes_at_edges(rng: &mut StdRng) -> Bytes {
    match rng.random_range(0..10) {
        0 => Bytes::new(),
        1 => Bytes::from(vec![0xff; pick(rng, &[1 << 20, (1 << 20) + 1, 3 << 20])]),
        2 => Bytes::from(hostile_string(rng).into_bytes()),
        _ => {
            let len = rng.random_range(1..200);
            Bytes::from((0..len).map(|_| rng.random()).collect::<Vec<u8>>())
        }
    }
}

/// A topic and partition for one record; never a model partition that exists.
fn destination(rng: &mut StdRng) -> (String, Option<u32>) {
    match rng.random_range(0..10) {
        0..=4 => {
            let topic = pick(rng, &POOL_TOPICS).to_string();
            let partition = match rng.random_range(0..4) {
                0 => Some(rng.random_range(0..3)),
                1 => Some(edge_u32(rng)),
                _ => None,
            };
            (topic, partition)
        }
        5 => {
            let (topic, count) = pick(
                rng,
                &[
                    (PLAIN_TOPIC, PLAIN_PARTITIONS),
                    (IDEMPOTENT_TOPIC, IDEMPOTENT_PARTITIONS),
                ],
            );
            (topic.to_string(), Some(count.saturating_add(edge_u32(rng))))
        }
        6 => ("__offsets".to_string(), None),
        7 => (String::new(), None),
        _ => (hostile_string(rng), None),
    }
}

fn headers(rng: &mut StdRng) -> Vec<pb::Header> {
    (0..pick(rng, &[0, 0, 1, 2, 5]))
        .map(|_| {
            let key = match rng.random_range(0..6) {
                0 => String::new(),
                1 | 2 => "id".to_string(),
                3 => "trace".to_string(),
                _ => hostile_string(rng),
            };
            pb::Header {
                key,
                value: bytes_at_edges(rng),
            }
        })
        .collect()
}

fn record(rng: &mut StdRng) -> pb::PublishRecord {
    let (topic, partition) = destination(rng);
    pb::PublishRecord {
        topic,
        key: rng.random_bool(0.5).then(|| bytes_at_edges(rng)),
        value: bytes_at_edges(rng),
        headers: headers(rng),
        partition,
        timestamp_ms: rng.random_bool(0.3).then(|| edge_i64(rng)),
    }
}

fn request(rng: &mut StdRng) -> pb::PublishRequest {
    let count = match rng.random_range(0..40) {
        0 => 0,
        1 => RECORDS_MAX + 1,
        _ => rng.random_range(1..8),
    };
    let records = if count > RECORDS_MAX {
        // Small records (a short topic), so the request stays under the message limit and
        // tests the record limit (10,001 copies of a 100 KB name would be a 1 GB request).
        let small = pb::PublishRecord {
            topic: pick(rng, &POOL_TOPICS).to_string(),
            partition: None,
            value: Bytes::from_static(b"v"),
            ..Default::default()
        };
        vec![small; count]
    } else {
        (0..count).map(|_| record(rng)).collect()
    };
    pb::PublishRequest {
        records,
        sequence: edge_u64(rng),
    }
}

/// The code a record must get whatever the cluster holds, if its fault needs no metadata.
fn known_fault(record: &pb::PublishRecord) -> Option<pb::ErrorCode> {
    let id_empty = record
        .headers
        .iter()
        .find(|h| h.key == "id")
        .is_some_and(|h| h.value.is_empty());
    if record.topic.is_empty() {
        Some(pb::ErrorCode::InvalidTopicName)
    } else if record.topic.starts_with("__")
        || record.headers.iter().any(|h| h.key.is_empty())
        || id_empty
        || record.timestamp_ms.is_some_and(|ms| ms < 0)
    {
        Some(pb::ErrorCode::InvalidRequest)
    } else {
        None
    }
}

/// Judges one answer against its request.
fn judge(request: &pb::PublishRequest, response: &pb::PublishResponse) -> Checked {
    if response.sequence != request.sequence {
        return Err(defect(
            "sequence not echoed",
            format!("sent {}, got {}", request.sequence, response.sequence),
        ));
    }
    if response.results.len() != request.records.len() {
        return Err(defect(
            "one answer per record",
            format!(
                "{} records, {} answers",
                request.records.len(),
                response.results.len()
            ),
        ));
    }
    let too_many = request.records.len() > RECORDS_MAX;
    for (index, (record, result)) in request.records.iter().zip(&response.results).enumerate() {
        let code = typed(&result.error)?;
        let expected = if too_many {
            Some(pb::ErrorCode::InvalidRequest)
        } else {
            known_fault(record)
        };
        if expected.is_some_and(|expected| expected != code) {
            return Err(defect(
                "wrong publish answer",
                format!(
                    "record {index} (topic {:?}): expected {expected:?}, got {result:?}",
                    record.topic
                ),
            ));
        }
        let unplaced = record.topic == PLAIN_TOPIC || record.topic == IDEMPOTENT_TOPIC;
        if unplaced && code == pb::ErrorCode::None {
            return Err(defect(
                "written to a partition that does not exist",
                format!("record {index}: {result:?}"),
            ));
        }
    }
    Ok(())
}

/// What to check after a case: the pool partition its first record aimed at.
fn after(request: &pb::PublishRequest) -> After {
    let mut after = After::nothing();
    if let Some(record) = request.records.first()
        && POOL_TOPICS.contains(&record.topic.as_str())
        && let Some(partition) = record.partition.filter(|p| *p < 3)
    {
        after.pool = Some((record.topic.clone(), partition));
    }
    after
}

pub async fn publish(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let request = request(rng);
    let node = rng.random_range(0..ctx.cluster.len());
    let mut client = ctx.cluster.client(node);
    if let Some(response) = answer(&request, client.publish(request.clone())).await? {
        judge(&request, &response)?;
    }
    Ok(after(&request))
}

pub async fn publish_stream(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let requests: Vec<pb::PublishRequest> = (0..rng.random_range(1..5))
        .map(|_| {
            let mut request = request(rng);
            request.records.truncate(8);
            request
        })
        .collect();
    let hang_up_after = if rng.random_bool(0.2) {
        rng.random_range(0..requests.len())
    } else {
        requests.len()
    };
    let node = rng.random_range(0..ctx.cluster.len());
    let stream = tokio_stream::iter(requests.clone());
    let mut client = ctx.cluster.client(node);
    let Some(mut answers) = answer(&requests, client.publish_stream(stream)).await? else {
        return Ok(after(&requests[0]));
    };
    for request in requests.iter().take(hang_up_after) {
        let next = tokio::time::timeout(super::harness::CALL_MAX, answers.message()).await;
        match next {
            Err(_) => return Err(defect("hang", "no PublishStream answer")),
            Ok(Ok(Some(response))) => judge(request, &response)?,
            Ok(Ok(None)) => return Err(defect("stream ended early", "a request unanswered")),
            Ok(Err(status)) if super::harness::status_acceptable(&status) => break,
            Ok(Err(status)) => return Err(defect("unacceptable status", status.to_string())),
        }
    }
    Ok(after(&requests[0]))
}

/// Groups only Consume cases join (the group cases' simple commits must not meet members).
const CONSUME_GROUPS: [&str; 3] = ["fuzz.consume.0", "fuzz.consume.1", "fuzz.consume.2"];

/// How long a Consume case listens for pushed messages.
const CONSUME_LISTEN: std::time::Duration = std::time::Duration::from_millis(300);

fn consume_subscribe(rng: &mut StdRng) -> pb::ConsumeRequest {
    use pb::subscribe::Start;
    let topics = (0..pick(rng, &[0, 1, 1, 2, 3]))
        .map(|_| match rng.random_range(0..6) {
            0 | 1 => pick(rng, &POOL_TOPICS).to_string(),
            2 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC]).to_string(),
            3 => super::names::pattern(rng),
            4 => "__offsets".to_string(),
            _ => hostile_string(rng),
        })
        .collect();
    let group = match rng.random_range(0..4) {
        0 => String::new(),
        1 => super::names::group_name(rng).replace("fuzz.g", "fuzz.consume."),
        _ => pick(rng, &CONSUME_GROUPS).to_string(),
    };
    let partitions = (0..pick(rng, &[0, 0, 1, 2]))
        .map(|_| pick(rng, &[0, 1, 2, u32::MAX]))
        .collect();
    let start = match rng.random_range(0..6) {
        0 => None,
        1 => Some(Start::Earliest(rng.random())),
        2 => Some(Start::Latest(rng.random())),
        3 => Some(Start::Offset(edge_u64(rng))),
        _ => Some(Start::TimestampMs(edge_i64(rng))),
    };
    let request = pb::consume_request::Request::Subscribe(pb::Subscribe {
        topics,
        group,
        partitions,
        auto_commit: rng.random(),
        start,
        mode: 0,
        queue: None,
    });
    pb::ConsumeRequest {
        request: Some(request),
    }
}

/// A message after the subscribe: a credit, a commit (often of partitions not held), an
/// empty message, a second subscribe, or a Settle (queue mode only).
fn consume_follow_up(rng: &mut StdRng) -> pb::ConsumeRequest {
    use pb::consume_request::Request;
    let request = match rng.random_range(0..9) {
        0..=3 => Some(Request::Credit(pb::Credit {
            records: pick(rng, &[0, 1, 5, 100, u32::MAX]),
            bytes: pick(rng, &[0, 1, 1000, u64::MAX]),
        })),
        4 | 5 => Some(Request::Commit(pb::Commit {
            id: edge_u64(rng),
            offsets: (0..pick(rng, &[0, 1, 3]))
                .map(|_| pb::CommitOffset {
                    topic: pick(rng, &POOL_TOPICS).to_string(),
                    partition: pick(rng, &[0, 2, u32::MAX]),
                    offset: edge_u64(rng),
                })
                .collect(),
        })),
        6 => None,
        7 => consume_subscribe(rng).request,
        // A Settle is for queue mode: this stream's is refused.
        _ => Some(Request::Settle(super::queue_streams::settle_message(rng))),
    };
    pb::ConsumeRequest { request }
}

/// The records the credits of `requests` allow: none without a credit, otherwise their sum
/// (unbounded once a grant of `u32::MAX` or more comes).
fn credited(requests: &[pb::ConsumeRequest]) -> u64 {
    requests
        .iter()
        .filter_map(|r| match &r.request {
            Some(pb::consume_request::Request::Credit(c)) => Some(u64::from(c.records)),
            _ => None,
        })
        .sum()
}

pub async fn consume(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let mut requests = vec![if rng.random_bool(0.9) {
        consume_subscribe(rng)
    } else {
        consume_follow_up(rng)
    }];
    requests.extend((0..rng.random_range(0..5)).map(|_| consume_follow_up(rng)));
    let allowed = if matches!(
        requests[0].request,
        Some(pb::consume_request::Request::Subscribe(_))
    ) {
        credited(&requests[1..])
    } else {
        0
    };
    let node = rng.random_range(0..ctx.cluster.len());
    let (send, incoming) = tokio::sync::mpsc::channel(16);
    for request in &requests {
        send.try_send(request.clone())
            .expect("room for every request");
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let mut client = ctx.cluster.client(node);
    let Some(mut pushed) = answer(&requests, client.consume(stream)).await? else {
        return Ok(After::nothing());
    };
    let mut records = 0u64;
    let deadline = tokio::time::Instant::now() + CONSUME_LISTEN;
    loop {
        let next = tokio::time::timeout_at(deadline, pushed.message()).await;
        let message = match next {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Ok(Some(message))) => message,
            Ok(Err(status)) if super::harness::status_acceptable(&status) => break,
            Ok(Err(status)) => return Err(defect("unacceptable status", status.to_string())),
        };
        use pb::consume_response::Response;
        match message.response {
            Some(Response::Records(batch)) => records += batch.records.len() as u64,
            Some(Response::Error(error)) => {
                typed(&Some(error))?;
            }
            Some(Response::Committed(done)) => {
                typed(&done.error)?;
            }
            Some(Response::Settled(done)) => {
                for result in &done.results {
                    if typed(&Some(result.clone()))? == pb::ErrorCode::None {
                        return Err(defect(
                            "a Settle on a stream not in queue mode was taken",
                            super::harness::shown(&done),
                        ));
                    }
                }
            }
            Some(Response::Assignment(_)) | None => {}
        }
    }
    if records > allowed {
        return Err(defect(
            "records pushed past the credits",
            format!(
                "{records} pushed, {allowed} credited: {}",
                super::harness::shown(&requests)
            ),
        ));
    }
    drop(send);
    Ok(After::nothing())
}

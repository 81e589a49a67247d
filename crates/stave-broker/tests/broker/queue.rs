//! Queue groups: members share a topic record by record, with acks, redelivery, dead
//! letters, delayed retry and key order; through the Rust client's `QueueConsumer` and
//! through Consume streams in queue mode (the generated stubs only).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stave_client::{
    ClientError, ErrorCode, QueueConfig, QueueConsumer, QueueOrdering, QueuedRecord, Settle,
};
use stave_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::queue_support::{ack_until, from_start, join, publish, rust_client};
use crate::support::{WAIT, client, cluster, code, create_topic, retry, wait_for_leaders};

fn broker_code(err: &ClientError) -> Option<ErrorCode> {
    err.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_vanishes_has_its_records_redelivered_after_the_lock() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.jobs", 2, 1, &[]).await;
    wait_for_leaders(addr, "v1.jobs").await;
    publish(addr, "v1.jobs", 100, |i| Some(format!("k{i}"))).await;
    let client = rust_client(addr).await;
    let config = QueueConfig {
        lock: Some(Duration::from_millis(1_000)),
        ..from_start(100)
    };
    let vanishing = join(&client, "jobs", "v1.jobs", config.clone()).await;
    let mut taken = BTreeSet::new();
    while taken.len() < 100 {
        for record in vanishing.fetch(100, Duration::from_secs(1)).await.unwrap() {
            assert_eq!(record.delivery_count, 1);
            taken.insert((record.partition, record.offset));
        }
    }
    let locked_at = Instant::now();
    // The member goes silent holding all 100 (no leave): its locks expire.
    std::mem::forget(vanishing);
    let other = join(&client, "jobs", "v1.jobs", config).await;
    let mut redelivered = BTreeSet::new();
    while redelivered.len() < 100 {
        let records = other.fetch(100, Duration::from_secs(1)).await.unwrap();
        for record in &records {
            assert!(
                locked_at.elapsed() >= Duration::from_millis(900),
                "redelivered before the lock expired"
            );
            assert_eq!(record.delivery_count, 2);
            assert!(redelivered.insert((record.partition, record.offset)));
        }
        let acks: Vec<(&QueuedRecord, Settle)> = records.iter().map(|r| (r, Settle::Ack)).collect();
        if !acks.is_empty() {
            for answer in other.settle(&acks).await.unwrap() {
                answer.unwrap();
            }
        }
    }
    assert_eq!(
        redelivered, taken,
        "every record the vanished member held came back"
    );
    // Nothing more comes: each was acknowledged once.
    assert!(
        other
            .fetch(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    other.close().await.unwrap();
}

/// Reads every record of `topic` (1 partition) through a group-less stream.
async fn read_all(addr: &str, topic: &str, count: usize) -> Vec<pb::ConsumedRecord> {
    let (send, requests) = mpsc::channel(4);
    send.send(pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Subscribe(pb::Subscribe {
            topics: vec![topic.into()],
            start: Some(pb::subscribe::Start::Earliest(true)),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    send.send(credit(1_000)).await.unwrap();
    let mut pushed = client(addr)
        .await
        .consume(ReceiverStream::new(requests))
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while records.len() < count {
        let message = tokio::time::timeout(WAIT, pushed.message())
            .await
            .expect("records in time")
            .unwrap()
            .unwrap();
        match message.response {
            Some(pb::consume_response::Response::Records(batch)) => records.extend(batch.records),
            Some(pb::consume_response::Response::Error(error)) => panic!("{error:?}"),
            _ => {}
        }
    }
    records
}

fn credit(records: u32) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Credit(pb::Credit {
            records,
            bytes: 0,
        })),
    }
}

fn header<'a>(record: &'a pb::ConsumedRecord, key: &str) -> &'a str {
    let value = &record
        .headers
        .iter()
        .find(|h| h.key == key)
        .unwrap_or_else(|| panic!("no header {key}: {record:?}"))
        .value;
    std::str::from_utf8(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_dead_letter_topic_without_holding_up_the_rest() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.pay", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.pay").await;
    publish(addr, "v1.pay", 21, |_| None).await;
    let client = rust_client(addr).await;
    let config = QueueConfig {
        max_deliveries: Some(3),
        ..from_start(4)
    };
    let member = join(&client, "payer", "v1.pay", config).await;
    let mut acked = BTreeSet::new();
    let mut poison_deliveries = Vec::new();
    let deadline = Instant::now() + WAIT;
    // Offset 0 is the poison: released every time, with a reason.
    while acked.len() < 20 || poison_deliveries.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "acked {acked:?}, poison {poison_deliveries:?}"
        );
        for record in member.fetch(4, Duration::from_millis(200)).await.unwrap() {
            if record.offset == 0 {
                poison_deliveries.push(record.delivery_count);
                let reason = format!("cannot parse, try {}", record.delivery_count);
                member
                    .release(&record, Duration::ZERO, &reason)
                    .await
                    .unwrap();
            } else {
                member.ack(&record).await.unwrap();
                acked.insert(record.offset);
            }
        }
    }
    assert_eq!(poison_deliveries, vec![1, 2, 3]);
    assert_eq!(acked, (1..21).collect());
    let letters = read_all(addr, "_dlq.payer.v1.pay", 1).await;
    let letter = &letters[0];
    assert_eq!(&letter.value[..], b"0");
    assert_eq!(header(letter, "stave-dlq-topic"), "v1.pay");
    assert_eq!(header(letter, "stave-dlq-partition"), "0");
    assert_eq!(header(letter, "stave-dlq-offset"), "0");
    assert_eq!(header(letter, "stave-dlq-deliveries"), "3");
    assert_eq!(header(letter, "stave-dlq-reason"), "cannot parse, try 3");
    assert_eq!(header(letter, "stave-dlq-id"), "v1.pay-0");
    // Nothing is delivered again, and the group's floor passes the poison.
    assert!(
        member
            .fetch(4, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    let admin = client.admin();
    let described = retry(|| {
        let admin = admin.clone();
        async move {
            let described = admin
                .describe_group("payer")
                .await
                .map_err(|e| e.to_string())?;
            let queue = described.queue.clone().ok_or("no queue state")?;
            match queue.partitions.first() {
                Some(p) if p.ack_floor == 21 && p.dead_lettered == 1 => Ok(described),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let queue = described.queue.unwrap();
    assert_eq!(queue.members.len(), 1);
    assert_eq!(queue.partitions[0].redeliveries, 2);
    member.close().await.unwrap();
    // A pattern never matches the dead-letter topic.
    let topics = admin.list_topics().await.unwrap();
    assert!(topics.contains(&"_dlq.payer.v1.pay".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_record_waits_for_its_delay() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.retry", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.retry").await;
    publish(addr, "v1.retry", 2, |_| None).await;
    let client = rust_client(addr).await;
    let member = join(&client, "retrier", "v1.retry", from_start(2)).await;
    let mut first = Vec::new();
    while first.len() < 2 {
        first.extend(member.fetch(2, Duration::from_secs(1)).await.unwrap());
    }
    let delayed = first.iter().find(|r| r.offset == 0).unwrap();
    member
        .release(delayed, Duration::from_millis(800), "backoff")
        .await
        .unwrap();
    let released_at = Instant::now();
    let other = first.iter().find(|r| r.offset == 1).unwrap();
    member.release(other, Duration::ZERO, "").await.unwrap();
    // Offset 1 comes back at once; offset 0 not before its delay.
    let mut again = BTreeMap::new();
    while again.len() < 2 {
        for record in member.fetch(2, Duration::from_secs(1)).await.unwrap() {
            again.insert(
                record.offset,
                (released_at.elapsed(), record.delivery_count),
            );
            member.ack(&record).await.unwrap();
        }
    }
    let (after, count) = again[&0];
    assert!(
        after >= Duration::from_millis(800),
        "redelivered after {after:?}"
    );
    assert_eq!(count, 2);
    assert!(again[&1].0 < Duration::from_millis(800), "{again:?}");
    member.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_order_keeps_one_record_per_key_in_flight_in_offset_order() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.account.changed", 2, 1, &[]).await;
    wait_for_leaders(addr, "v1.account.changed").await;
    let total = 240;
    publish(addr, "v1.account.changed", total, |i| {
        Some(format!("acct-{}", i % 6))
    })
    .await;
    let client = rust_client(addr).await;
    let config = QueueConfig {
        ordering: QueueOrdering::Key,
        ..from_start(4)
    };
    // Per delivery: (key, partition, offset, received, ack sent, member).
    type Seen = (String, u32, u64, Instant, Instant, usize);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for index in 0..4 {
        let member = join(&client, "ledger", "v1.account.changed", config.clone()).await;
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + WAIT * 2;
            let mut turn = index as u64;
            while seen.lock().unwrap().len() < total {
                assert!(
                    Instant::now() < deadline,
                    "the group did not finish in time"
                );
                let records = member.fetch(4, Duration::from_millis(100)).await.unwrap();
                for record in records {
                    let received = Instant::now();
                    // "Random" work: 0-4 ms, varying by member and record.
                    turn = turn
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(record.offset);
                    tokio::time::sleep(Duration::from_millis((turn >> 33) % 5)).await;
                    let key = String::from_utf8(record.key.clone().unwrap().to_vec()).unwrap();
                    let ack_sent = Instant::now();
                    member.ack(&record).await.unwrap();
                    seen.lock().unwrap().push((
                        key,
                        record.partition,
                        record.offset,
                        received,
                        ack_sent,
                        index,
                    ));
                }
            }
            member.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|s| s.3);
    let mut by_key: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for delivery in &seen {
        by_key
            .entry(delivery.0.clone())
            .or_default()
            .push(delivery.clone());
    }
    for (key, deliveries) in &by_key {
        for pair in deliveries.windows(2) {
            let (earlier, later) = (&pair[0], &pair[1]);
            assert!(
                later.2 > earlier.2,
                "key {key}: offset {} delivered after {}",
                later.2,
                earlier.2
            );
            assert!(
                later.3 >= earlier.4,
                "key {key}: offset {} received before offset {} was acked",
                later.2,
                earlier.2
            );
        }
    }
    let offsets: BTreeSet<(u32, u64)> = seen.iter().map(|s| (s.1, s.2)).collect();
    assert_eq!(offsets.len(), total, "every record once");
    let members: BTreeSet<usize> = seen.iter().map(|s| s.5).collect();
    assert!(
        members.len() >= 2,
        "different keys spread over members: {members:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settlements_and_settings_are_refused_and_change_nothing() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.bad", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.bad").await;
    publish(addr, "v1.bad", 2, |_| None).await;
    let client = rust_client(addr).await;

    // Lock periods of 0 or below.
    for lock_ms in [0, -5] {
        let api = client_for(addr).await;
        let answer = queue_fetch(&api, "badlock", &["v1.bad"], Some(lock_ms)).await;
        assert_eq!(
            code(&answer.error),
            pb::ErrorCode::InvalidRequest,
            "{lock_ms}"
        );
    }

    let config = QueueConfig {
        lock: Some(Duration::from_millis(500)),
        ..from_start(1)
    };
    let a = join(&client, "strict", "v1.bad", config.clone()).await;
    let b = join(&client, "strict", "v1.bad", config).await;
    let mut first = Vec::new();
    while first.is_empty() {
        first = a.fetch(1, Duration::from_secs(1)).await.unwrap();
    }
    let record = first.pop().unwrap();
    // Not delivered to b.
    let err = b.ack(&record).await.unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::DeliveryNotHeld), "{err}");
    // A delivery count that was never delivered.
    let mut forged = record.clone();
    forged.delivery_count = 7;
    let err = a.ack(&forged).await.unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::DeliveryNotHeld), "{err}");
    // The lock expires and b gets the record: a's late ack is refused, b's taken.
    let redelivered = loop {
        let fetched = b.fetch(1, Duration::from_secs(1)).await.unwrap();
        if let Some(found) = fetched.iter().find(|r| r.offset == record.offset) {
            break found.clone();
        }
        // Offset 1 meanwhile: b acks it at once (before its own lock expires).
        for other in &fetched {
            b.ack(other).await.unwrap();
        }
    };
    assert_eq!(redelivered.delivery_count, 2);
    let err = a.ack(&record).await.unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::DeliveryNotHeld), "{err}");
    b.ack(&redelivered).await.unwrap();
    // Acked once: an ack of the same delivery again is refused.
    let err = b.ack(&redelivered).await.unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::DeliveryNotHeld), "{err}");

    // A member id the group never gave.
    let api = client_for(addr).await;
    let mut call = api.clone();
    let answer = call
        .queue_settle(pb::QueueSettleRequest {
            group: "never-joined".into(),
            member_id: "00000000deadbeef".into(),
            settlements: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::UnknownMemberId);
    // A consumer group's name is not a queue group's while it has members, and back.
    let err = QueueConsumer::join(&client, "strict", &["v1.other"], from_start(1))
        .await
        .unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::GroupMismatch), "{err}");
    let mut heartbeat = api.clone();
    let answer = heartbeat
        .group_heartbeat(pb::GroupHeartbeatRequest {
            group: "strict".into(),
            subscription: vec!["v1.bad".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::GroupMismatch);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

async fn client_for(addr: &str) -> pb::stave_client::StaveClient<tonic::transport::Channel> {
    client(addr).await
}

/// A join through the raw API (retrying while the coordinator is being set up).
async fn queue_fetch(
    api: &pb::stave_client::StaveClient<tonic::transport::Channel>,
    group: &str,
    topics: &[&str],
    lock_ms: Option<i64>,
) -> pb::QueueFetchResponse {
    retry(|| {
        let mut api = api.clone();
        let request = pb::QueueFetchRequest {
            group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            options: Some(pb::QueueOptions {
                lock_ms,
                ..Default::default()
            }),
            ..Default::default()
        };
        async move {
            let answer = api
                .queue_fetch(request)
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            match code(&answer.error) {
                pb::ErrorCode::CoordinatorNotAvailable | pb::ErrorCode::NotCoordinator => {
                    Err(format!("{:?}", answer.error))
                }
                _ => Ok(answer),
            }
        }
    })
    .await
}

/// A Consume stream in queue mode.
struct QueueStream {
    send: mpsc::Sender<pb::ConsumeRequest>,
    pushed: tonic::Streaming<pb::ConsumeResponse>,
}

impl QueueStream {
    async fn open(addr: &str, group: &str, topic: &str, credit_records: u32) -> QueueStream {
        let (send, requests) = mpsc::channel(16);
        send.send(pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Subscribe(pb::Subscribe {
                topics: vec![topic.into()],
                group: group.into(),
                start: Some(pb::subscribe::Start::Earliest(true)),
                mode: pb::ConsumeMode::Queue as i32,
                queue: Some(pb::QueueOptions {
                    lock_ms: Some(30_000),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        })
        .await
        .unwrap();
        send.send(credit(credit_records)).await.unwrap();
        let pushed = client(addr)
            .await
            .consume(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        QueueStream { send, pushed }
    }

    /// The next pushed message within `within`.
    async fn next(&mut self, within: Duration) -> Option<pb::consume_response::Response> {
        match tokio::time::timeout(within, self.pushed.message()).await {
            Ok(Ok(Some(message))) => message.response,
            Ok(Ok(None)) => panic!("the stream ended"),
            Ok(Err(status)) => panic!("{status}"),
            Err(_) => None,
        }
    }

    async fn ack(&self, id: u64, records: &[pb::ConsumedRecord]) {
        let settlements = records
            .iter()
            .map(|r| pb::Settlement {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
                delivery_count: r.delivery_count,
                action: pb::SettleAction::SettleAck as i32,
                ..Default::default()
            })
            .collect();
        self.send
            .send(pb::ConsumeRequest {
                request: Some(pb::consume_request::Request::Settle(pb::Settle {
                    id,
                    settlements,
                })),
            })
            .await
            .unwrap();
        // Credit back what was settled.
        self.send.send(credit(records.len() as u32)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_streams_in_queue_mode_share_records_and_hand_back_what_they_held() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.stream.q", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.stream.q").await;
    publish(addr, "v1.stream.q", 50, |_| None).await;
    let mut a = QueueStream::open(addr, "streamers", "v1.stream.q", 5).await;
    let mut b = QueueStream::open(addr, "streamers", "v1.stream.q", 5).await;
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut by_a = 0;
    let mut by_b = 0;
    let mut settle_ids = 0u64;
    let mut answered = 0u64;
    let deadline = Instant::now() + WAIT;
    // a stops acking once it has 5 unsettled: b must take over the rest.
    let mut held_by_a: Vec<pb::ConsumedRecord> = Vec::new();
    while acked.len() + held_by_a.len() < 50 {
        assert!(Instant::now() < deadline, "acked {}", acked.len());
        if let Some(pb::consume_response::Response::Records(batch)) =
            a.next(Duration::from_millis(50)).await
        {
            assert!(batch.records.iter().all(|r| r.delivery_count == 1));
            by_a += batch.records.len();
            held_by_a.extend(batch.records);
        }
        if let Some(message) = b.next(Duration::from_millis(50)).await {
            match message {
                pb::consume_response::Response::Records(batch) => {
                    by_b += batch.records.len();
                    for record in &batch.records {
                        assert!(
                            acked.insert(record.offset),
                            "offset {} twice",
                            record.offset
                        );
                    }
                    settle_ids += 1;
                    b.ack(settle_ids, &batch.records).await;
                }
                pb::consume_response::Response::Settled(settled) => {
                    answered += 1;
                    assert!(
                        settled
                            .results
                            .iter()
                            .all(|e| code(&Some(e.clone())) == pb::ErrorCode::None)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(by_a > 0 && by_b > 0, "a {by_a}, b {by_b}");
    assert_eq!(held_by_a.len(), 5, "a holds its credit");
    // a's stream ends: what it held goes to b at once (delivery 2), not when the 30 s locks
    // expire, nor after a's pending fetch times out (5 s).
    drop(a);
    let dropped = Instant::now();
    let mut back = Vec::new();
    while back.len() < 5 {
        assert!(Instant::now() < deadline);
        match b.next(Duration::from_millis(200)).await {
            Some(pb::consume_response::Response::Records(batch)) => {
                assert!(batch.records.iter().all(|r| r.delivery_count == 2));
                settle_ids += 1;
                b.ack(settle_ids, &batch.records).await;
                back.extend(batch.records);
            }
            Some(pb::consume_response::Response::Settled(_)) => answered += 1,
            _ => {}
        }
    }
    assert!(
        dropped.elapsed() < Duration::from_secs(3),
        "a's records came back {:?} after its stream ended",
        dropped.elapsed()
    );
    let back: BTreeSet<u64> = back.iter().map(|r| r.offset).collect();
    let held: BTreeSet<u64> = held_by_a.iter().map(|r| r.offset).collect();
    assert_eq!(back, held);
    while answered < settle_ids {
        assert!(Instant::now() < deadline);
        if let Some(pb::consume_response::Response::Settled(_)) =
            b.next(Duration::from_millis(200)).await
        {
            answered += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_out_of_bounds_is_refused_alone_and_the_stream_goes_on() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.bounds", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.bounds").await;
    publish(addr, "v1.bounds", 3, |_| None).await;
    let mut stream = QueueStream::open(addr, "bounded", "v1.bounds", 3).await;
    let mut held = Vec::new();
    let deadline = Instant::now() + WAIT;
    while held.len() < 3 {
        assert!(Instant::now() < deadline);
        if let Some(pb::consume_response::Response::Records(batch)) =
            stream.next(Duration::from_millis(200)).await
        {
            held.extend(batch.records);
        }
    }
    held.sort_by_key(|r| r.offset);
    let settle = |record: &pb::ConsumedRecord, action: pb::SettleAction, delay_ms, reason: &str| {
        pb::Settlement {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            delivery_count: record.delivery_count,
            action: action as i32,
            delay_ms,
            reason: reason.into(),
        }
    };
    // An ack, a release delayed two days (over the 1-day cap), and a reject whose 3 KiB
    // reason is cut to 1 KiB.
    let long_reason = "é".repeat(1_500);
    stream
        .send
        .send(pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Settle(pb::Settle {
                id: 7,
                settlements: vec![
                    settle(&held[0], pb::SettleAction::SettleAck, 0, ""),
                    settle(
                        &held[1],
                        pb::SettleAction::SettleRelease,
                        2 * 86_400_000,
                        "",
                    ),
                    settle(&held[2], pb::SettleAction::SettleReject, 0, &long_reason),
                ],
            })),
        })
        .await
        .unwrap();
    let settled = loop {
        assert!(Instant::now() < deadline, "no Settled");
        if let Some(pb::consume_response::Response::Settled(settled)) =
            stream.next(Duration::from_millis(200)).await
        {
            break settled;
        }
    };
    assert_eq!(settled.id, 7);
    let codes: Vec<pb::ErrorCode> = settled
        .results
        .iter()
        .map(|e| code(&Some(e.clone())))
        .collect();
    assert_eq!(
        codes,
        vec![
            pb::ErrorCode::None,
            pb::ErrorCode::InvalidRequest,
            pb::ErrorCode::None
        ]
    );
    // The stream goes on: the refused release changed nothing, the record is still held and
    // can be acked.
    stream
        .send
        .send(pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Settle(pb::Settle {
                id: 8,
                settlements: vec![settle(&held[1], pb::SettleAction::SettleAck, 0, "")],
            })),
        })
        .await
        .unwrap();
    loop {
        assert!(Instant::now() < deadline, "no second Settled");
        if let Some(pb::consume_response::Response::Settled(settled)) =
            stream.next(Duration::from_millis(200)).await
        {
            assert_eq!(settled.id, 8);
            assert_eq!(code(&Some(settled.results[0].clone())), pb::ErrorCode::None);
            break;
        }
    }
    let letters = read_all(addr, "_dlq.bounded.v1.bounds", 1).await;
    let reason = header(&letters[0], "stave-dlq-reason");
    assert!(
        reason.len() <= 1024 && reason.len() > 1000,
        "{}",
        reason.len()
    );
    assert!(long_reason.starts_with(reason));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_unacked_span_a_partition_waits_for_its_oldest_record() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.span", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.span").await;
    publish(addr, "v1.span", 10, |_| None).await;
    let client = rust_client(addr).await;
    let config = QueueConfig {
        max_unacked_span: Some(5),
        ..from_start(1)
    };
    // The slow member holds offset 0 and does not settle it yet.
    let slow = join(&client, "spanned", "v1.span", config.clone()).await;
    let mut oldest = Vec::new();
    while oldest.is_empty() {
        oldest = slow.fetch(1, Duration::from_secs(1)).await.unwrap();
    }
    assert_eq!(oldest[0].offset, 0);
    let fast = join(
        &client,
        "spanned",
        "v1.span",
        QueueConfig {
            credit: 10,
            ..config
        },
    )
    .await;
    let mut acked = BTreeSet::new();
    ack_until(&fast, 10, &mut acked, 4).await;
    assert_eq!(acked, (1..5).collect(), "nothing at or past offset 0 + 5");
    assert!(
        fast.fetch(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty(),
        "the span is full"
    );
    let queue = client
        .admin()
        .describe_group("spanned")
        .await
        .unwrap()
        .queue
        .unwrap();
    assert!(
        queue.partitions[0].blocked.contains("max.unacked.span"),
        "{:?}",
        queue.partitions[0]
    );
    assert_eq!(queue.partitions[0].ack_floor, 0);
    // The oldest is settled: the rest goes out.
    slow.ack(&oldest[0]).await.unwrap();
    ack_until(&fast, 10, &mut acked, 9).await;
    assert_eq!(acked, (1..10).collect());
    slow.close().await.unwrap();
    fast.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_without_members_can_be_reset_to_replay() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.replay", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.replay").await;
    publish(addr, "v1.replay", 5, |_| None).await;
    let client = rust_client(addr).await;
    let drain = |member: QueueConsumer| async move {
        ack_until(&member, 5, &mut BTreeSet::new(), 5).await;
        member
    };
    let member = drain(join(&client, "replayer", "v1.replay", from_start(5)).await).await;
    // Refused while the group has a member.
    let admin = client.admin();
    let err = admin
        .reset_offsets(
            "replayer",
            "v1.replay",
            &[],
            stave_client::ResetTo::Earliest,
        )
        .await
        .unwrap_err();
    assert_eq!(broker_code(&err), Some(ErrorCode::GroupNotEmpty), "{err}");
    member.close().await.unwrap();
    // A reset stops the group's task: describe then shows what was last written.
    admin
        .reset_offsets("replayer", "v1.replay", &[], stave_client::ResetTo::Latest)
        .await
        .unwrap();
    let written = admin
        .describe_group("replayer")
        .await
        .unwrap()
        .queue
        .expect("still a queue group");
    assert!(!written.running);
    assert!(written.members.is_empty());
    assert_eq!(written.partitions[0].ack_floor, 5);
    let reset = admin
        .reset_offsets(
            "replayer",
            "v1.replay",
            &[],
            stave_client::ResetTo::Earliest,
        )
        .await
        .unwrap();
    assert_eq!(reset, vec![(0, 0)]);
    // A new member reads the 5 again, each a first delivery.
    drain(join(&client, "replayer", "v1.replay", from_start(5)).await)
        .await
        .close()
        .await
        .unwrap();
}

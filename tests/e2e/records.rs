//! The record face (Publish, Consume) across three real `stave server` processes, with the
//! node that matters killed by SIGKILL: a retried publish is written once, and a Consume
//! stream's partitions move on at the group's committed offset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::support::{Server, WAIT, client, code, create_topic, eventually, start, wait_ready};

/// Prints the end of every node's log when the test fails (the servers' own drop only kills
/// them). Reads the files `support::start` writes: `node-{id}.log` under the test's root.
struct LogsOnPanic {
    logs: Vec<PathBuf>,
}

impl LogsOnPanic {
    fn new(root: &Path, servers: &[Server]) -> LogsOnPanic {
        let logs = servers
            .iter()
            .map(|s| root.join(format!("node-{}.log", s.id)))
            .collect();
        LogsOnPanic { logs }
    }
}

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(60);
            eprintln!("--- {} ---\n{}", log.display(), lines[from..].join("\n"));
        }
    }
}

/// A record with message id `id`: keyed (routed by the key) or keyless (routed by the id).
fn record(topic: &str, key: Option<&str>, id: &str, value: &str) -> pb::PublishRecord {
    pb::PublishRecord {
        topic: topic.into(),
        key: key.map(|k| Bytes::from(k.to_string())),
        value: Bytes::from(value.to_string()),
        headers: vec![pb::Header {
            key: "id".into(),
            value: Bytes::from(id.to_string()),
        }],
        ..Default::default()
    }
}

/// Answers that settle nothing yet: a leader being elected or moved, a write whose outcome
/// is unknown, the same id in flight, a node whose metadata is behind.
fn retriable(code: pb::ErrorCode) -> bool {
    matches!(
        code,
        pb::ErrorCode::NotLeader
            | pb::ErrorCode::LeaderNotAvailable
            | pb::ErrorCode::RequestTimedOut
            | pb::ErrorCode::DuplicateInFlight
            | pb::ErrorCode::UnknownTopic
    )
}

/// Publishes `records` through `addr`, the whole request again while any record is answered
/// with a retriable code (or the node cannot be reached), until every record is answered
/// NONE, within `WAIT`; those answers. Any other code fails the test.
async fn publish_until_written(
    addr: &str,
    records: &[pb::PublishRecord],
) -> Vec<pb::PublishResult> {
    let deadline = Instant::now() + WAIT;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut last = String::new();
    loop {
        every.tick().await;
        let request = pb::PublishRequest {
            records: records.to_vec(),
            sequence: 0,
        };
        match client(addr).publish(request).await {
            Ok(answer) => {
                let results = answer.into_inner().results;
                assert_eq!(results.len(), records.len(), "one answer per record");
                let mut settled = true;
                for result in &results {
                    match code(&result.error) {
                        pb::ErrorCode::None => {}
                        other if retriable(other) => {
                            settled = false;
                            last = format!("{result:?}");
                        }
                        other => panic!("publish through {addr}: {other:?} {result:?}"),
                    }
                }
                if settled {
                    return results;
                }
            }
            Err(status) => last = status.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "publish through {addr}: not written within {WAIT:?}; last answer {last}"
        );
    }
}

/// `topic`'s `partition` as `addr` answers Metadata now; `None` while it cannot.
async fn partition_metadata(
    addr: &str,
    topic: &str,
    partition: u32,
) -> Option<pb::PartitionMetadata> {
    let answer = client(addr)
        .metadata(pb::MetadataRequest {
            topics: vec![topic.into()],
        })
        .await
        .ok()?
        .into_inner();
    let topic = answer.topics.into_iter().find(|t| t.name == topic)?;
    topic
        .partitions
        .into_iter()
        .find(|p| p.partition == partition)
}

/// The leader of `topic`'s `partition` once all three replicas are in sync, as `addr` sees it.
async fn leader_with_every_replica_in_sync(addr: &str, topic: &str, partition: u32) -> u64 {
    eventually("a leader with three replicas in sync", || async {
        let metadata = partition_metadata(addr, topic, partition).await?;
        (metadata.replicas.len() == 3 && metadata.in_sync.len() == 3)
            .then_some(metadata.leader)
            .flatten()
    })
    .await
}

/// Every record of `topic`'s `partition` up to its high watermark, as (offset, message id),
/// fetched from its leader (asked of `addr` first, then wherever NOT_LEADER points).
async fn read_ids(addr: &str, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let deadline = Instant::now() + WAIT;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut ask = addr.to_string();
    let mut read = Vec::new();
    let mut offset = 0;
    loop {
        every.tick().await;
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: read {read:?}"
        );
        let request = pb::FetchRequest {
            topic: topic.into(),
            partition,
            offset,
            max_bytes: 1 << 20,
            min_bytes: 1,
            max_wait_ms: 0,
        };
        let answer = match client(&ask).fetch(request).await {
            Ok(answer) => answer.into_inner(),
            Err(_) => {
                ask = addr.to_string();
                continue;
            }
        };
        match code(&answer.error) {
            pb::ErrorCode::None => {}
            pb::ErrorCode::NotLeader | pb::ErrorCode::LeaderNotAvailable => {
                if let Some(error) = &answer.error
                    && !error.leader_addr.is_empty()
                {
                    ask = error.leader_addr.clone();
                }
                continue;
            }
            other => panic!("fetch {topic}/{partition} at {offset}: {other:?} {answer:?}"),
        }
        for frame in stave_log::batch::BatchView::split(&answer.batches) {
            let view = frame.unwrap();
            for record in view.records() {
                let record = record.unwrap();
                if record.offset.0 < offset {
                    continue;
                }
                let id = record
                    .headers()
                    .find(|(key, _)| *key == "id")
                    .map(|(_, value)| String::from_utf8(value.to_vec()).unwrap())
                    .unwrap_or_default();
                read.push((record.offset.0, id));
            }
        }
        offset = answer.next_offset;
        if offset >= answer.high_watermark {
            return read;
        }
    }
}

/// Scenario: on 3 nodes, a topic of 1 partition with 3 replicas takes 20 payments with ids
/// `pay-0..pay-19`; the partition's leader is killed with SIGKILL, and the same 20 are
/// published again through a survivor (the whole request, until a new leader answers every
/// record NONE). Then the killed node is restarted, and leaders that were never killed are
/// killed in turn until one that was killed and restarted leads; `pay-0` is published again
/// after each kill and at the end. Proves: every retry is answered `duplicate` with the first
/// write's partition and offset (the new leader rebuilt its id table from its log, and so
/// did a restarted one), and the partition holds each payment exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_retried_after_its_leader_is_killed_is_written_once() {
    const TOPIC: &str = "v1.payment.taken";
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    let _logs = LogsOnPanic::new(root.path(), &servers);
    wait_ready(&servers).await;
    // A window far longer than the test, whatever the machine's speed.
    create_topic(
        &servers[0].addr,
        TOPIC,
        1,
        &[("dedupe.window.ms", "600000")],
    )
    .await;
    leader_with_every_replica_in_sync(&servers[0].addr, TOPIC, 0).await;

    let payments: Vec<pb::PublishRecord> = (0..20)
        .map(|i| record(TOPIC, None, &format!("pay-{i}"), &format!("{i}0 EUR")))
        .collect();
    let first = publish_until_written(&servers[0].addr, &payments).await;
    let offsets: BTreeSet<u64> = first.iter().map(|r| r.offset).collect();
    assert_eq!(offsets.len(), 20, "20 places: {first:?}");
    for (i, result) in first.iter().enumerate() {
        assert_eq!(
            (result.partition, result.id.as_str()),
            (0, format!("pay-{i}").as_str())
        );
    }

    let leader = leader_with_every_replica_in_sync(&servers[0].addr, TOPIC, 0).await;
    let victim = servers.iter().position(|s| s.id == leader).unwrap();
    servers[victim].kill();
    let killed_at = Instant::now();
    let survivor = servers
        .iter()
        .find(|s| s.id != leader)
        .unwrap()
        .addr
        .clone();
    let again = publish_until_written(&survivor, &payments).await;
    println!(
        "node {leader} killed; the retry was answered {:?} later",
        killed_at.elapsed()
    );
    for (before, after) in first.iter().zip(&again) {
        assert!(after.duplicate, "a retry after the failover: {after:?}");
        assert_eq!(
            (after.partition, after.offset, &after.id),
            (before.partition, before.offset, &before.id),
            "the retry is answered with the first write's place"
        );
    }
    let mut held: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (offset, id) in read_ids(&survivor, TOPIC, 0).await {
        held.entry(id).or_default().push(offset);
    }
    let expected: BTreeMap<String, Vec<u64>> = first
        .iter()
        .map(|r| (r.id.clone(), vec![r.offset]))
        .collect();
    assert_eq!(
        held, expected,
        "each payment once, where it was first written"
    );

    // Bring the killed node back; while the leader is one that was never killed, kill it
    // too (after each kill, the retry is answered by whoever leads next), and restart it
    // once a survivor answered. With three nodes this ends within three rounds.
    let mut ever_killed = BTreeSet::from([leader]);
    let mut down = victim;
    let leader = loop {
        servers[down].restart();
        wait_ready(&servers).await;
        let leader = leader_with_every_replica_in_sync(&servers[down].addr, TOPIC, 0).await;
        if ever_killed.contains(&leader) {
            break leader;
        }
        down = servers.iter().position(|s| s.id == leader).unwrap();
        servers[down].kill();
        ever_killed.insert(leader);
        let survivor = servers
            .iter()
            .find(|s| s.id != leader)
            .unwrap()
            .addr
            .clone();
        let again = publish_until_written(&survivor, &payments[..1]).await;
        assert!(
            again[0].duplicate,
            "after node {leader} was killed: {again:?}"
        );
        assert_eq!((again[0].partition, again[0].offset), (0, first[0].offset));
    };
    let again = publish_until_written(&servers[victim].addr, &payments[..1]).await;
    println!("pay-0 retried on node {leader}, killed and restarted; killed: {ever_killed:?}");
    assert_eq!(
        leader_with_every_replica_in_sync(&servers[victim].addr, TOPIC, 0).await,
        leader,
        "the leader did not change under the retry"
    );
    assert!(again[0].duplicate, "on a restarted leader: {again:?}");
    assert_eq!((again[0].partition, again[0].offset), (0, first[0].offset));
    let read = read_ids(&servers[victim].addr, TOPIC, 0).await;
    assert_eq!(read.len(), 20, "nothing written by the retries: {read:?}");
}

/// A Consume stream in a group, as the test sees it.
struct Member {
    name: &'static str,
    send: mpsc::Sender<pb::ConsumeRequest>,
    pushed: Streaming<pb::ConsumeResponse>,
    /// Partition → the offset it was assigned at, for what the stream holds now.
    held: BTreeMap<u32, u64>,
    /// Every partition assigned to it, with its offset, in order.
    assigned: Vec<(u32, u64)>,
    /// Partition → the offsets pushed, in order.
    records: BTreeMap<u32, Vec<u64>>,
    /// Commit id → the answer.
    committed: BTreeMap<u64, pb::ErrorCode>,
}

impl Member {
    /// Subscribes to `topic` in `group` through `addr` (from the earliest offset, where the
    /// group committed nothing), granting credit for far more records than exist.
    async fn join(name: &'static str, addr: &str, topic: &str, group: &str) -> Member {
        let (send, requests) = mpsc::channel(16);
        let subscribe = pb::Subscribe {
            topics: vec![topic.into()],
            group: group.into(),
            start: Some(pb::subscribe::Start::Earliest(true)),
            ..Default::default()
        };
        let credit = pb::Credit {
            records: 10_000,
            bytes: 0,
        };
        for request in [
            pb::consume_request::Request::Subscribe(subscribe),
            pb::consume_request::Request::Credit(credit),
        ] {
            let request = pb::ConsumeRequest {
                request: Some(request),
            };
            send.send(request).await.unwrap();
        }
        let pushed = client(addr)
            .consume(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Member {
            name,
            send,
            pushed,
            held: BTreeMap::new(),
            assigned: Vec::new(),
            records: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }

    /// Commits `offset` for `topic`'s `partition`, as commit `id`.
    async fn commit(&self, id: u64, topic: &str, partition: u32, offset: u64) {
        let commit = pb::Commit {
            id,
            offsets: vec![pb::CommitOffset {
                topic: topic.into(),
                partition,
                offset,
            }],
        };
        let request = pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Commit(commit)),
        };
        self.send.send(request).await.unwrap();
    }

    /// Takes in what the node pushes for `within`. The stream failing or ending fails the
    /// test.
    async fn follow(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.pushed.message()).await;
            let response = match message {
                Err(_) => return,
                Ok(Ok(Some(message))) => message.response,
                Ok(Ok(None)) => panic!("stream {}: ended", self.name),
                Ok(Err(status)) => panic!("stream {}: {status}", self.name),
            };
            match response {
                Some(pb::consume_response::Response::Records(pushed)) => {
                    for record in pushed.records {
                        let offsets = self.records.entry(record.partition).or_default();
                        offsets.push(record.offset);
                    }
                }
                Some(pb::consume_response::Response::Assignment(change)) => {
                    for taken in &change.assigned {
                        self.held.insert(taken.partition, taken.offset);
                        self.assigned.push((taken.partition, taken.offset));
                    }
                    for gone in change.revoked.iter().chain(&change.lost) {
                        self.held.remove(&gone.partition);
                    }
                }
                Some(pb::consume_response::Response::Committed(answer)) => {
                    self.committed.insert(answer.id, code(&answer.error));
                }
                Some(pb::consume_response::Response::Error(error)) => {
                    panic!("stream {}: {error:?}", self.name)
                }
                Some(pb::consume_response::Response::Settled(settled)) => {
                    panic!(
                        "stream {}: a group stream was answered {settled:?}",
                        self.name
                    )
                }
                None => {}
            }
        }
    }
}

/// The node coordinating `group`, once one does (asking `addr`).
async fn coordinator_of(addr: &str, group: &str) -> u64 {
    eventually("a coordinator", || async {
        let answer = client(addr)
            .find_coordinator(pb::FindCoordinatorRequest {
                group: group.into(),
            })
            .await
            .ok()?
            .into_inner();
        (code(&answer.error) == pb::ErrorCode::None && answer.node_id != 0)
            .then_some(answer.node_id)
    })
    .await
}

/// Scenario: on 3 nodes, a topic of 4 partitions with 3 replicas holds 40 keyed records.
/// Consume stream A is opened on node X and stream B on node Y, both in group `billing`
/// from the earliest offset, X and Y being the two nodes that do not coordinate the group;
/// once they share the 4 partitions, A commits offset 2 for a partition P it holds, and X
/// is killed with SIGKILL (A's stream dies with it, and nobody tells the group). Proves:
/// within the session timeout (10 s) plus a little, B is assigned every partition; P at the
/// committed offset 2, A's others at 0 (nothing committed for them); and B is then pushed
/// P's records from offset 2 on, and A's other partitions' from 0, each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consume_stream_whose_node_is_killed_hands_its_partitions_on_at_the_committed_offset() {
    const TOPIC: &str = "v1.order.placed";
    const GROUP: &str = "billing";
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    let _logs = LogsOnPanic::new(root.path(), &servers);
    wait_ready(&servers).await;
    create_topic(&servers[0].addr, TOPIC, 4, &[]).await;
    for partition in 0..4 {
        leader_with_every_replica_in_sync(&servers[0].addr, TOPIC, partition).await;
    }
    let orders: Vec<pb::PublishRecord> = (0..40)
        .map(|i| {
            let key = format!("customer-{i}");
            record(
                TOPIC,
                Some(&key),
                &format!("order-{i}"),
                &format!("order {i}"),
            )
        })
        .collect();
    let written = publish_until_written(&servers[0].addr, &orders).await;
    let mut count: BTreeMap<u32, u64> = BTreeMap::new();
    for result in &written {
        *count.entry(result.partition).or_default() += 1;
    }

    let coordinator = coordinator_of(&servers[0].addr, GROUP).await;
    let others: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].id != coordinator)
        .collect();
    let (x, y) = (others[0], others[1]);
    println!(
        "coordinator node {coordinator}; A on node {}, B on node {}",
        servers[x].id, servers[y].id
    );
    let mut a = Member::join("A", &servers[x].addr, TOPIC, GROUP).await;
    let mut b = Member::join("B", &servers[y].addr, TOPIC, GROUP).await;
    let deadline = Instant::now() + WAIT;
    loop {
        a.follow(Duration::from_millis(100)).await;
        b.follow(Duration::from_millis(100)).await;
        let both: BTreeSet<u32> = a.held.keys().chain(b.held.keys()).copied().collect();
        let shared = !a.held.is_empty()
            && !b.held.is_empty()
            && both.len() == 4
            && a.held.len() + b.held.len() == 4;
        if shared {
            break;
        }
        let (held_a, held_b) = (&a.held, &b.held);
        assert!(Instant::now() < deadline, "A {held_a:?}, B {held_b:?}");
    }
    println!("A holds {:?}, B holds {:?}", a.held, b.held);

    // P: the partition of A's with the most records (each has some past offset 2).
    let p = *a.held.keys().max_by_key(|p| count[p]).unwrap();
    assert!(count[&p] > 2, "partition {p} holds {count:?}");
    a.commit(1, TOPIC, p, 2).await;
    let deadline = Instant::now() + WAIT;
    while !a.committed.contains_key(&1) {
        a.follow(Duration::from_millis(100)).await;
        assert!(Instant::now() < deadline, "no answer to the commit");
    }
    assert_eq!(a.committed[&1], pb::ErrorCode::None);
    // The coordinator could have moved since (nothing here moves it): say which case ran.
    let coordinator_now = coordinator_of(&servers[y].addr, GROUP).await;
    println!(
        "killing node {} (A's); the group's coordinator is node {coordinator_now}",
        servers[x].id
    );

    let handed: BTreeSet<u32> = a.held.keys().copied().collect();
    servers[x].kill();
    let killed_at = Instant::now();
    drop(a);
    b.assigned.clear();
    b.records.clear();
    let deadline = Instant::now() + WAIT;
    while b.held.len() < 4 {
        b.follow(Duration::from_millis(100)).await;
        let held = &b.held;
        assert!(Instant::now() < deadline, "B holds {held:?}");
    }
    println!(
        "B took A's partitions {:?} after the SIGKILL",
        killed_at.elapsed()
    );
    let taken: BTreeMap<u32, u64> = b
        .assigned
        .iter()
        .filter(|(partition, _)| handed.contains(partition))
        .copied()
        .collect();
    let expected: BTreeMap<u32, u64> = handed
        .iter()
        .map(|&partition| (partition, if partition == p { 2 } else { 0 }))
        .collect();
    assert_eq!(
        taken, expected,
        "B takes P at the committed offset, the others at 0"
    );

    let wanted = |partition: u32| -> Vec<u64> {
        let from = if partition == p { 2 } else { 0 };
        (from..count[&partition]).collect()
    };
    let deadline = Instant::now() + WAIT;
    while handed
        .iter()
        .any(|&t| b.records.get(&t).map_or(0, Vec::len) < wanted(t).len())
    {
        b.follow(Duration::from_millis(100)).await;
        let records = &b.records;
        assert!(Instant::now() < deadline, "B read {records:?} of {count:?}");
    }
    b.follow(Duration::from_millis(300)).await;
    for &partition in &handed {
        assert_eq!(
            b.records[&partition],
            wanted(partition),
            "partition {partition}"
        );
    }
    println!(
        "B read them all {:?} after the SIGKILL",
        killed_at.elapsed()
    );
}

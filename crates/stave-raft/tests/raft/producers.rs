//! The idempotent producer table, as a producer relies on it: a retried batch is written once
//! and answered with its first write's offsets, across leader changes, truncations, snapshots
//! and restarts; an older epoch is fenced.
//!
//! `produce` plays the broker: it checks a batch on the leader, proposes it only when the
//! table answers `New`, and holds the reservation until the proposal's outcome is known.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_log::frame::FrameType;
use stave_raft::sim_network::Router;
use stave_raft::{Applied, FramePayload, ProducerBatch, ProducerSnapshot, Verdict, Written};

use crate::support::{Node, WAIT, converged_log, start_cluster, start_node, wait_leader};

/// A batch of `count` records from producer `producer_id` at `epoch`, starting at
/// `base_sequence`, stamped with the current time (the table expires producers by it).
fn idempotent_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: u32) -> Bytes {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut builder = BatchBuilder::new();
    builder.producer(ProducerFields {
        producer_id,
        producer_epoch: epoch,
        base_sequence,
    });
    for i in 0..count {
        let value = format!("producer {producer_id} epoch {epoch} sequence {base_sequence}+{i}");
        builder.push(&Record {
            timestamp: now_ms,
            key: Some(&producer_id.to_le_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        });
    }
    Bytes::from(builder.finish())
}

/// What the broker does with a produced batch on `node` (the leader): check it, and propose
/// it only if it is new. A new batch's answer is where it was committed.
async fn produce(node: &Node, frame: &Bytes) -> Verdict<Applied> {
    let verdict = node.sm.producers().check(frame).unwrap();
    match verdict {
        Verdict::New(reservation) => {
            let response = node.raft.client_write(FramePayload(frame.clone())).await;
            drop(reservation);
            Verdict::New(response.unwrap().data)
        }
        other => other.map_new(|_| unreachable!("matched above")),
    }
}

/// `Verdict::Duplicate` of a write answered with `applied`, with its Raft index zeroed (the
/// broker answers with offsets): compare it with [`offsets_only`] of a verdict.
fn duplicate_of(applied: &Applied) -> Verdict<Applied> {
    Verdict::Duplicate {
        written: Some(Written {
            index: 0,
            base_offset: applied.base_offset,
            next_offset: applied.next_offset,
        }),
    }
}

/// The verdict with the Raft index of a duplicate's write zeroed, to compare with
/// [`duplicate_of`].
fn offsets_only(verdict: Verdict<Applied>) -> Verdict<Applied> {
    match verdict {
        Verdict::Duplicate {
            written: Some(written),
        } => Verdict::Duplicate {
            written: Some(Written {
                index: 0,
                ..written
            }),
        },
        other => other,
    }
}

/// Writes `frame` on the leader; it must be new. Returns where it was committed.
async fn write_new(node: &Node, frame: &Bytes) -> Applied {
    match produce(node, frame).await {
        Verdict::New(applied) => applied,
        other => panic!("expected a new batch, got {other:?}"),
    }
}

/// How many times each (producer id, epoch, base sequence) is in the converged log.
async fn batches_in_log(
    nodes: &BTreeMap<u64, Node>,
    leader: u64,
) -> BTreeMap<(i64, i16, i32), usize> {
    let log = converged_log(nodes, leader).await;
    let mut counts = BTreeMap::new();
    for frame in log.iter().filter(|f| f.frame_type == FrameType::Data) {
        let batch = ProducerBatch::from_frame(&frame.bytes).unwrap();
        let key = (batch.producer_id, batch.producer_epoch, batch.base_sequence);
        *counts.entry(key).or_default() += 1;
    }
    counts
}

async fn shutdown(nodes: &BTreeMap<u64, Node>) {
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

/// Snapshots `node` at its applied index and purges its log up to the snapshot's last index,
/// which it returns.
async fn snapshot_and_purge(node: &Node) -> u64 {
    let raft = &node.raft;
    let applied = raft
        .metrics()
        .borrow_watched()
        .last_applied
        .expect("applied entries")
        .index;
    raft.trigger().snapshot().await.unwrap();
    let snapshot = raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied),
            "a snapshot",
        )
        .await
        .unwrap()
        .snapshot
        .expect("waited for a snapshot")
        .index;
    raft.trigger().purge_log(snapshot).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= snapshot),
            "the purge",
        )
        .await
        .unwrap();
    snapshot
}

/// A producer's batch is committed and its acknowledgement lost, so the producer retries it.
/// Proves the retry is answered Duplicate with the first write's offsets and is not written
/// again, that a retry of an earlier in-flight batch is recognized too, and that the
/// producer's next sequence is still accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_is_answered_with_the_first_writes_offsets_and_stored_once() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let node = &nodes[&leader];

    let first = idempotent_batch(7, 0, 0, 3);
    let second = idempotent_batch(7, 0, 3, 2);
    let first_applied = write_new(node, &first).await;
    let second_applied = write_new(node, &second).await;

    let retried = offsets_only(produce(node, &first).await);
    assert_eq!(retried, duplicate_of(&first_applied), "retry of the first");
    let retried = offsets_only(produce(node, &second).await);
    assert_eq!(
        retried,
        duplicate_of(&second_applied),
        "retry of the second"
    );
    let third = write_new(node, &idempotent_batch(7, 0, 5, 1)).await;
    assert_eq!(third.base_offset, second_applied.next_offset);

    let counts = batches_in_log(&nodes, leader).await;
    assert_eq!(counts[&(7, 0, 0)], 1, "the first batch is stored once");
    assert_eq!(counts[&(7, 0, 3)], 1, "the second batch is stored once");
    assert_eq!(node.sm.high_watermark(), third.next_offset);
    shutdown(&nodes).await;
}

/// The same batch reaches the leader twice at once (a retry racing its original). Proves only
/// one copy is proposed: the other is answered Duplicate (in flight, or with the first copy's
/// offsets), and the log holds the batch once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_copies_of_a_batch_are_written_once() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let node = &nodes[&leader];

    for sequence in 0..20 {
        let frame = idempotent_batch(8, 0, sequence, 1);
        let (a, b) = tokio::join!(produce(node, &frame), produce(node, &frame));
        let (written, other) = match (a, b) {
            (Verdict::New(applied), other) | (other, Verdict::New(applied)) => (applied, other),
            (a, b) => panic!("sequence {sequence}: neither copy was written: {a:?}, {b:?}"),
        };
        let in_flight = Verdict::Duplicate { written: None };
        assert!(
            other == in_flight || offsets_only(other.clone()) == duplicate_of(&written),
            "sequence {sequence}: the second copy was answered {other:?}"
        );
    }
    let counts = batches_in_log(&nodes, leader).await;
    for sequence in 0..20 {
        assert_eq!(counts[&(8, 0, sequence)], 1, "sequence {sequence}");
    }
    shutdown(&nodes).await;
}

/// The leader commits a producer's batches and is killed before the producer hears back.
/// Proves the new leader, whose table comes from its own log, answers a retry of each batch
/// Duplicate with the offsets the old leader wrote, and accepts the producer's next sequence;
/// after the old leader returns, every batch is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_recognizes_a_retry_of_a_batch_committed_under_the_old_one() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let first = wait_leader(&nodes, None).await;
    let frames: Vec<Bytes> = (0..5).map(|i| idempotent_batch(11, 2, i * 2, 2)).collect();
    let mut written = Vec::new();
    for frame in &frames {
        written.push(write_new(&nodes[&first], frame).await);
    }

    // Kill the leader.
    router.remove(first);
    let killed = nodes.remove(&first).expect("the leader");
    killed.raft.shutdown().await.unwrap();
    drop(killed);

    let second = wait_leader(&nodes, Some(first)).await;
    let node = &nodes[&second];
    for (frame, applied) in frames.iter().zip(&written) {
        let retried = offsets_only(produce(node, frame).await);
        assert_eq!(retried, duplicate_of(applied));
    }
    let next = write_new(node, &idempotent_batch(11, 2, 10, 1)).await;
    assert_eq!(next.base_offset, written[4].next_offset);

    nodes.insert(
        first,
        start_node(&router, first, dirs[first as usize - 1].path()).await,
    );
    let counts = batches_in_log(&nodes, second).await;
    for i in 0..6 {
        assert_eq!(counts[&(11, 2, i * 2)], 1, "sequence {}", i * 2);
    }
    shutdown(&nodes).await;
}

/// A leader cut off from both followers appends a producer's batch it can not commit, and
/// counts it (a retry there is a duplicate). The majority elects a new leader and writes on.
/// Proves that once the old leader rejoins and its uncommitted tail is truncated, its table no
/// longer counts the batch (its sequence is accepted again, and its table equals the new
/// leader's), and the producer's retry to the new leader is written, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_uncommitted_batch_is_no_longer_counted() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let nodes = start_cluster(&router, &dirs).await;
    let old = wait_leader(&nodes, None).await;
    write_new(&nodes[&old], &idempotent_batch(21, 0, 0, 1)).await;

    for &other in nodes.keys().filter(|&&id| id != old) {
        router.cut(old, other);
    }
    let stranded = idempotent_batch(21, 0, 1, 1);
    let old_node = &nodes[&old];
    let last_before = old_node
        .raft
        .metrics()
        .borrow_watched()
        .last_log_index
        .expect("a log");
    let Verdict::New(reservation) = old_node.sm.producers().check(&stranded).unwrap() else {
        panic!("the stranded batch is new");
    };
    let raft = old_node.raft.clone();
    let frame = stranded.clone();
    let proposal = tokio::spawn(async move {
        // Never committed: it fails once the old leader learns of the new term.
        let result = tokio::time::timeout(WAIT, raft.client_write(FramePayload(frame))).await;
        drop(reservation);
        result
    });
    old_node
        .raft
        .wait(Some(WAIT))
        .log_index_at_least(Some(last_before + 1), "the stranded batch is appended")
        .await
        .unwrap();
    let counted = old_node.sm.producers().check(&stranded).unwrap();
    let Verdict::Duplicate {
        written: Some(counted),
    } = counted
    else {
        panic!("the appended batch is counted: {counted:?}");
    };
    assert_eq!(counted.index, last_before + 1);

    // The majority elects a leader, whose entries replace the old leader's tail.
    let new = wait_leader(&nodes, Some(old)).await;
    write_new(&nodes[&new], &idempotent_batch(22, 0, 0, 1)).await;
    router.heal();
    let counts = batches_in_log(&nodes, new).await;
    assert!(
        !counts.contains_key(&(21, 0, 1)),
        "the stranded batch was committed"
    );
    let result = proposal.await.unwrap();
    assert!(
        !matches!(result, Ok(Ok(_))),
        "the stranded batch was acknowledged"
    );

    assert_eq!(
        old_node.sm.producers().snapshot(),
        nodes[&new].sm.producers().snapshot(),
        "the old leader's table after the truncation"
    );
    let again = old_node.sm.producers().check(&stranded).unwrap();
    assert!(
        matches!(again, Verdict::New(_)),
        "the truncated batch is still counted: {again:?}"
    );
    drop(again);

    write_new(&nodes[&new], &stranded).await;
    let counts = batches_in_log(&nodes, new).await;
    assert_eq!(counts[&(21, 0, 1)], 1);
    shutdown(&nodes).await;
}

/// A producer restarts with a new epoch while a zombie instance with the old epoch still
/// sends. Proves the old epoch is refused (FencedEpoch) and never written, a new epoch must
/// start at sequence 0, and a gap in the sequence is refused (OutOfOrderSequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_epoch_is_fenced_and_sequences_must_follow() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let node = &nodes[&leader];

    write_new(node, &idempotent_batch(31, 0, 0, 1)).await;
    write_new(node, &idempotent_batch(31, 1, 0, 1)).await;
    let zombie = produce(node, &idempotent_batch(31, 0, 1, 1)).await;
    assert_eq!(
        zombie,
        Verdict::FencedEpoch {
            current: 1,
            received: 0
        }
    );
    let bumped = produce(node, &idempotent_batch(31, 2, 3, 1)).await;
    assert_eq!(
        bumped,
        Verdict::OutOfOrderSequence {
            expected: 0,
            received: 3
        }
    );
    let gap = produce(node, &idempotent_batch(31, 1, 2, 1)).await;
    assert_eq!(
        gap,
        Verdict::OutOfOrderSequence {
            expected: 1,
            received: 2
        }
    );
    write_new(node, &idempotent_batch(31, 1, 1, 1)).await;

    let counts = batches_in_log(&nodes, leader).await;
    assert!(!counts.contains_key(&(31, 0, 1)), "the zombie was written");
    assert!(!counts.contains_key(&(31, 2, 3)));
    assert!(!counts.contains_key(&(31, 1, 2)));
    assert_eq!(counts.len(), 3);
    shutdown(&nodes).await;
}

/// Every replica snapshots and purges its log past a producer's first batches, the producer
/// writes one more, then the whole cluster restarts. Proves each replica's table comes back
/// as it was, from its snapshot plus the log after it: a retry of any batch, purged or not, is
/// answered Duplicate with its original offsets, the old epoch is still fenced, and the next
/// sequence is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_table_survives_snapshot_purge_and_restart() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    write_new(&nodes[&leader], &idempotent_batch(41, 0, 0, 1)).await;
    let frames: Vec<Bytes> = (0..4).map(|i| idempotent_batch(41, 1, i * 2, 2)).collect();
    let mut written = Vec::new();
    for frame in &frames[..3] {
        written.push(write_new(&nodes[&leader], frame).await);
    }
    converged_log(&nodes, leader).await;
    for node in nodes.values() {
        let purged = snapshot_and_purge(node).await;
        let left = node.store.frames(0, purged + 1).await.unwrap();
        assert!(left.is_empty(), "the log still holds {} frames", left.len());
    }
    // After the snapshots: this one is only in the logs.
    written.push(write_new(&nodes[&leader], &frames[3]).await);
    converged_log(&nodes, leader).await;
    let tables: BTreeMap<u64, ProducerSnapshot> = nodes
        .iter()
        .map(|(id, node)| (*id, node.sm.producers().snapshot()))
        .collect();

    // Restart the whole cluster.
    for (id, node) in std::mem::take(&mut nodes) {
        router.remove(id);
        node.raft.shutdown().await.unwrap();
    }
    for (id, dir) in (1..).zip(&dirs) {
        let node = start_node(&router, id, dir.path()).await;
        assert_eq!(
            node.sm.producers().snapshot(),
            tables[&id],
            "node {id}'s table"
        );
        nodes.insert(id, node);
    }
    let leader = wait_leader(&nodes, None).await;
    let node = &nodes[&leader];
    for (frame, applied) in frames.iter().zip(&written) {
        let retried = offsets_only(produce(node, frame).await);
        assert_eq!(retried, duplicate_of(applied));
    }
    let zombie = produce(node, &idempotent_batch(41, 0, 1, 1)).await;
    assert_eq!(
        zombie,
        Verdict::FencedEpoch {
            current: 1,
            received: 0
        }
    );
    let next = write_new(node, &idempotent_batch(41, 1, 8, 1)).await;
    assert_eq!(next.base_offset, written[3].next_offset);
    shutdown(&nodes).await;
}

/// A follower is down while the leader writes a producer's batches, snapshots and purges past
/// them. Proves the follower, caught up through a snapshot install, holds the leader's table:
/// made leader, it answers a retry Duplicate with the original offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_restored_from_a_snapshot_recognizes_retries() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let follower = *nodes.keys().find(|&&id| id != leader).expect("a follower");
    router.remove(follower);
    let stopped = nodes.remove(&follower).expect("the follower");
    stopped.raft.shutdown().await.unwrap();
    drop(stopped);

    let frames: Vec<Bytes> = (0..4).map(|i| idempotent_batch(51, 0, i, 1)).collect();
    let mut written = Vec::new();
    for frame in &frames {
        written.push(write_new(&nodes[&leader], frame).await);
    }
    snapshot_and_purge(&nodes[&leader]).await;

    nodes.insert(
        follower,
        start_node(&router, follower, dirs[follower as usize - 1].path()).await,
    );
    // Another producer writes on, so every log holds something past the snapshot to compare.
    write_new(&nodes[&leader], &idempotent_batch(52, 0, 0, 1)).await;
    converged_log(&nodes, leader).await;
    let leader_table = nodes[&leader].sm.producers().snapshot();
    assert!(leader_table.producers.contains_key(&51));
    assert_eq!(nodes[&follower].sm.producers().snapshot(), leader_table);

    // Make the restored follower the leader.
    nodes[&leader]
        .raft
        .trigger()
        .transfer_leader(follower)
        .await
        .unwrap();
    let node = &nodes[&follower];
    node.raft
        .wait(Some(WAIT))
        .current_leader(follower, "the follower takes over")
        .await
        .unwrap();
    assert_eq!(wait_leader(&nodes, Some(leader)).await, follower);
    for (frame, applied) in frames.iter().zip(&written) {
        let retried = offsets_only(produce(node, frame).await);
        assert_eq!(retried, duplicate_of(applied));
    }
    write_new(node, &idempotent_batch(51, 0, 4, 1)).await;
    shutdown(&nodes).await;
}

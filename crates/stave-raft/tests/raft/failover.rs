//! Leader failures: a killed leader, and a leader cut off into a minority.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;

use stave_raft::FramePayload;
use stave_raft::sim_network::Router;

use crate::support::{
    assert_acknowledged_present, converged_log, frames_by_seed, seed_batch, start_cluster,
    start_node, wait_leader, write_seeds,
};

/// Kills the leader (its node stops, its link goes) while writes are in flight. Proves a new
/// leader is elected and takes writes; after the old leader restarts from its data directory
/// and catches up, every acknowledged write, from before, during and after the kill, is on
/// every replica exactly once, at the offset it was acknowledged with, with its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_leader_being_killed() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let first = wait_leader(&nodes, None).await;
    let mut acked = write_seeds(&nodes[&first].raft, 0..300).await;
    assert_eq!(acked.len(), 300);

    // Writes in flight while the leader dies: some may be acknowledged, some not.
    let raft = nodes[&first].raft.clone();
    let in_flight = tokio::spawn(async move { write_seeds(&raft, 300..400).await });
    router.remove(first);
    let killed = nodes.remove(&first).expect("the leader");
    killed.raft.shutdown().await.unwrap();
    drop(killed);
    acked.extend(in_flight.await.unwrap());

    let second = wait_leader(&nodes, Some(first)).await;
    let after = write_seeds(&nodes[&second].raft, 400..700).await;
    assert_eq!(after.len(), 300, "the new leader takes writes");
    acked.extend(after);

    nodes.insert(
        first,
        start_node(&router, first, dirs[first as usize - 1].path()).await,
    );
    let log = converged_log(&nodes, second).await;
    assert_acknowledged_present(&log, &acked);
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

/// Cuts the leader off from both followers. Proves writes to it are not acknowledged, the
/// majority elects a leader and takes writes, and after healing the old leader drops its
/// uncommitted tail (those writes appear on no replica) and holds the same log as the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_into_a_minority_acknowledges_nothing_and_drops_its_tail() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let nodes = start_cluster(&router, &dirs).await;
    let old = wait_leader(&nodes, None).await;
    let mut acked = write_seeds(&nodes[&old].raft, 0..200).await;
    assert_eq!(acked.len(), 200);

    for &other in nodes.keys().filter(|&&id| id != old) {
        router.cut(old, other);
    }
    const STRANDED: std::ops::Range<u64> = 10_000..10_020;
    let old_raft = nodes[&old].raft.clone();
    let stranded = tokio::spawn(async move {
        let writes = STRANDED.map(|seed| {
            let raft = old_raft.clone();
            async move {
                let write = raft.client_write(FramePayload(seed_batch(seed)));
                tokio::time::timeout(Duration::from_secs(3), write).await
            }
        });
        futures_util::future::join_all(writes).await
    });

    let majority: BTreeMap<_, _> = nodes.iter().filter(|(id, _)| **id != old).collect();
    let observer = majority.values().next().expect("two followers");
    let new = observer
        .raft
        .wait(Some(crate::support::WAIT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != old),
            "the majority elects a leader",
        )
        .await
        .unwrap()
        .current_leader
        .expect("a leader");
    nodes[&new]
        .raft
        .wait(Some(crate::support::WAIT))
        .leader_with_quorum_acked(None, "the new leader's lease")
        .await
        .unwrap();
    let after = write_seeds(&nodes[&new].raft, 200..400).await;
    assert_eq!(after.len(), 200, "the majority takes writes");
    acked.extend(after);

    for result in stranded.await.unwrap() {
        assert!(
            !matches!(result, Ok(Ok(_))),
            "a write to the cut-off leader was acknowledged"
        );
    }
    router.heal();
    let log = converged_log(&nodes, new).await;
    assert_acknowledged_present(&log, &acked);
    let by_seed = frames_by_seed(&log);
    for seed in STRANDED {
        assert!(
            !by_seed.contains_key(&seed),
            "stranded write {seed} was committed"
        );
    }
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

/// A follower is down while the leader snapshots and purges its log past the follower's end.
/// Proves the follower, restarted from its data directory, catches up through a snapshot
/// install: its log restarts at the snapshot's index and offset, the entries after it match
/// the leader's frame by frame, and its high watermark equals the leader's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_purged_log_start_catches_up_from_a_snapshot() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let mut acked = write_seeds(&nodes[&leader].raft, 0..200).await;

    let follower = *nodes.keys().find(|&&id| id != leader).expect("a follower");
    router.remove(follower);
    let stopped = nodes.remove(&follower).expect("the follower");
    stopped.raft.shutdown().await.unwrap();
    drop(stopped);

    acked.extend(write_seeds(&nodes[&leader].raft, 200..400).await);
    let raft = &nodes[&leader].raft;
    raft.trigger().snapshot().await.unwrap();
    let applied = raft
        .metrics()
        .borrow_watched()
        .last_applied
        .expect("applied entries");
    let snapshot = raft
        .wait(Some(crate::support::WAIT))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied.index),
            "a snapshot",
        )
        .await
        .unwrap();
    // The snapshot may cover entries applied after `applied` was read: purge what it covers.
    let applied = snapshot.snapshot.expect("waited for a snapshot");
    raft.trigger().purge_log(applied.index).await.unwrap();
    raft.wait(Some(crate::support::WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= applied.index),
            "the purge",
        )
        .await
        .unwrap();

    nodes.insert(
        follower,
        start_node(&router, follower, dirs[follower as usize - 1].path()).await,
    );
    acked.extend(write_seeds(&nodes[&leader].raft, 400..500).await);
    assert_eq!(acked.len(), 500);
    let last = nodes[&leader]
        .raft
        .metrics()
        .borrow_watched()
        .last_log_index
        .expect("a log");
    converged_log(&nodes, leader).await;
    let after_snapshot = applied.index + 1;
    let reference = nodes[&leader]
        .store
        .frames(after_snapshot, last + 1)
        .await
        .unwrap();
    assert_eq!(reference.len() as u64, last + 1 - after_snapshot);
    let caught_up = nodes[&follower].store.frames(0, last + 1).await.unwrap();
    assert_eq!(
        caught_up, reference,
        "the follower's log after the snapshot"
    );
    let hwm = nodes[&leader].sm.high_watermark();
    assert_eq!(nodes[&follower].sm.high_watermark(), hwm, "high watermark");
    let newest = acked.values().map(|a| a.next_offset).max().expect("writes");
    assert_eq!(hwm, newest);
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

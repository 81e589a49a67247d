//! Replicas that fail: a Raft stopped by a storage error, a replica that cannot reopen, a
//! snapshot that cannot be written. The node reopens them or leaves them offline, and the
//! group's other replicas carry on (issue 15).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::Instant;
use openraft::async_runtime::watch::WatchReceiver;
use stave_raft::group::partition_group_id;
use stave_raft::{FramePayload, PartitionRaft};

use super::{Cluster, WAIT};
use crate::support::batch;

/// Polls `check` until it gives a value (for state nothing announces: a node's problem list).
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes `raft`'s core stop with a storage error, as issue 15's produce did: an entry the log
/// refuses. Returns once its metrics say it stopped.
async fn stop_with_a_storage_error(raft: &PartitionRaft) {
    let refused = raft.client_write(FramePayload(bytes::Bytes::from_static(b"not a frame")));
    let _ = tokio::time::timeout(Duration::from_secs(5), refused).await;
    let metrics = raft.metrics();
    eventually("the core stopped", || {
        metrics
            .borrow_watched()
            .running_state
            .is_err()
            .then_some(())
    })
    .await;
}

/// A 3-replica group whose leader's Raft stops on a storage error: the other two elect a
/// leader within an election timeout and keep taking writes; the stopped replica's node
/// notices, reports it, reopens it from disk after its backoff, and it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_raft_stops_is_reopened_while_the_others_carry_on() {
    let cluster = Cluster::new(3, 3).await;
    cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.sick", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    for id in 1..=3 {
        cluster.wait_group(id, group, &voters).await;
    }
    cluster.write(group, 0..5).await;
    let leader = cluster.leader_raft(group).unwrap();
    let sick = leader.metrics().borrow_watched().id;

    tracing::info!("--- stop the leader's raft with a storage error");
    stop_with_a_storage_error(&leader).await;
    let stopped_at = tokio::time::Instant::now();
    let other = if sick == 1 { 2 } else { 1 };
    let other_raft = cluster.node(other).replica(group).unwrap().raft;
    let new_leader = other_raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != sick),
            "a leader other than the stopped one",
        )
        .await
        .unwrap()
        .current_leader
        .unwrap();
    let elected_in = stopped_at.elapsed();
    assert!(
        elected_in < Duration::from_secs(5),
        "a new leader took {elected_in:?}"
    );
    let new_leader = cluster.node(new_leader).replica(group).unwrap().raft;
    let since = openraft::TokioInstant::now();
    let _ = new_leader
        .wait(Some(WAIT))
        .leader_with_quorum_acked(Some(since), "the new leader's lease")
        .await;
    let written = new_leader
        .client_write(FramePayload(batch(99, 2, 100)))
        .await
        .expect("the other replicas take writes");

    tracing::info!("--- the stopped replica is reported, reopened and catches up");
    let groups = cluster.slots[&sick].groups.clone();
    let problem = eventually("the stopped replica reported", || {
        groups
            .problems()
            .list()
            .into_iter()
            .find(|p| p.group == group)
    })
    .await;
    assert!(problem.reason.contains("stopped"), "{problem:?}");
    assert!(!problem.offline);
    let reopened = eventually("the replica reopened", || {
        let replica = cluster.node(sick).replica(group)?;
        let ok = replica
            .raft
            .metrics()
            .borrow_watched()
            .running_state
            .is_ok();
        ok.then_some(replica.raft)
    })
    .await;
    reopened
        .wait(Some(WAIT))
        .applied_index_at_least(Some(written.log_id.index), "the reopened replica caught up")
        .await
        .unwrap();
    let listed = groups.problems().list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].reopens, listed[0].offline), (1, false));
}

/// A replica that stops and then cannot be opened again (its vote file is damaged) is
/// reopened as many times as the backoff allows, then left offline and reported so; the
/// partition's other replicas serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_reopen_is_left_offline_and_reported() {
    let cluster = Cluster::new(3, 3).await;
    cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.broken", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    for id in 1..=3 {
        cluster.wait_group(id, group, &voters).await;
    }
    cluster.write(group, 0..3).await;
    let leader = cluster.leader_raft(group).unwrap();
    let sick = leader.metrics().borrow_watched().id;
    let vote = cluster.slots[&sick]
        .dir
        .path()
        .join("partitions")
        .join(format!("v1.broken-{incarnation}-0"))
        .join("vote");
    std::fs::write(&vote, vec![0xab; 128]).unwrap();
    stop_with_a_storage_error(&leader).await;

    let groups = cluster.slots[&sick].groups.clone();
    let problem = eventually("the replica left offline", || {
        groups
            .problems()
            .list()
            .into_iter()
            .find(|p| p.group == group && p.offline)
    })
    .await;
    assert_eq!(problem.reopens, 3, "{problem:?}");
    assert!(problem.reason.contains("cannot open"), "{problem:?}");
    assert!(cluster.node(sick).replica(group).is_none());
    assert!(cluster.write(group, 3..6).await > 0);
}

/// A snapshot that cannot be written (ENOSPC there, or any write failure: here its temporary
/// file's name is taken by a directory) never leaves the replica silently dead. openraft
/// stops a group whose snapshot fails (a storage error is fatal to its core); the node
/// reopens the replica from disk and it catches up, while the partition keeps taking writes.
/// (Snapshots may use the disk reserve, so a full disk alone does not get here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_be_written_leaves_no_dead_replica() {
    let cluster = Cluster::new(3, 3).await;
    cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.snap", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    for id in 1..=3 {
        cluster.wait_group(id, group, &voters).await;
    }
    cluster.write(group, 0..5).await;
    let leader = cluster.leader_raft(group).unwrap();
    let target = leader.metrics().borrow_watched().id;
    let dir = cluster.slots[&target]
        .dir
        .path()
        .join("partitions")
        .join(format!("v1.snap-{incarnation}-0"));
    std::fs::create_dir(dir.join("snapshot.tmp")).unwrap();
    let triggered = leader.trigger().snapshot().await;
    tracing::info!(?triggered, "--- snapshot triggered");
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let metrics = leader.metrics();
        loop {
            let m = metrics.borrow_watched().clone();
            if m.running_state.is_err() || m.snapshot.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let state = leader.metrics().borrow_watched().running_state.clone();
    tracing::info!(?state, "--- after the failed snapshot");
    std::fs::remove_dir(dir.join("snapshot.tmp")).unwrap();
    assert!(cluster.write(group, 5..10).await > 0);
    let replica = eventually("the replica runs", || {
        let replica = cluster.node(target).replica(group)?;
        let ok = replica
            .raft
            .metrics()
            .borrow_watched()
            .running_state
            .is_ok();
        ok.then_some(replica.raft)
    })
    .await;
    let last = cluster
        .leader_raft(group)
        .unwrap()
        .metrics()
        .borrow_watched()
        .last_log_index;
    replica
        .wait(Some(WAIT))
        .applied_index_at_least(last, "the replica caught up")
        .await
        .unwrap();
}

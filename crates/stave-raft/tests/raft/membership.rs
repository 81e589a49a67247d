//! Replica changes while writes go on.

use std::collections::BTreeSet;

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use stave_raft::membership::{self, MembershipError};
use stave_raft::sim_network::{Router, TEST_GROUP, fast_raft_config};
use stave_raft::{PartitionSnapshot, start_partition};

use crate::support::{
    Node, assert_acknowledged_present, converged_log, start_cluster, start_node, wait_leader,
    write_seeds,
};

/// How long a learner may take to catch up before it is reported instead of promoted.
const DEADLINE: Duration = Duration::from_secs(20);

fn voters(node: &Node) -> BTreeSet<u64> {
    node.raft
        .metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

fn learners(node: &Node) -> BTreeSet<u64> {
    node.raft
        .metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .learner_ids()
        .collect()
}

/// Adds a fourth replica as a learner while writes go on, promotes it to voter, then removes
/// an original replica, still writing. Proves the membership frames round-trip through the
/// log store (every replica, including the new one, applies the final membership), the new
/// replica holds the same log as the others, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_added_and_another_removed_while_writes_go_on() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs[..3]).await;
    let leader = wait_leader(&nodes, None).await;
    let mut acked = write_seeds(&nodes[&leader].raft, 0..200).await;

    nodes.insert(4, start_node(&router, 4, dirs[3].path()).await);
    let raft = nodes[&leader].raft.clone();
    let writes = tokio::spawn(async move { write_seeds(&raft, 200..400).await });
    membership::add_replica(&nodes[&leader].raft, 4, "node-4", DEADLINE)
        .await
        .unwrap();
    acked.extend(writes.await.unwrap());

    let removed = *nodes
        .keys()
        .find(|&&id| id != leader && id != 4)
        .expect("a follower");
    let voters: BTreeSet<u64> = nodes.keys().copied().filter(|&id| id != removed).collect();
    let raft = nodes[&leader].raft.clone();
    let writes = tokio::spawn(async move { write_seeds(&raft, 400..600).await });
    membership::remove_replica(&nodes[&leader].raft, removed)
        .await
        .unwrap();
    acked.extend(writes.await.unwrap());
    assert_eq!(
        acked.len(),
        600,
        "every write during the changes is acknowledged"
    );

    router.remove(removed);
    let gone = nodes.remove(&removed).expect("the removed replica");
    gone.raft.shutdown().await.unwrap();
    let log = converged_log(&nodes, leader).await;
    assert_acknowledged_present(&log, &acked);
    for (id, node) in &nodes {
        let metrics = node.raft.metrics().borrow_watched().clone();
        let members: BTreeSet<u64> = metrics.membership_config.membership().voter_ids().collect();
        assert_eq!(members, voters, "replica {id} applied the final membership");
    }
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

/// A new replica that cannot catch up (its links are cut) is reported after the deadline and
/// stays a learner: the voters, and so the quorum, do not change. Once it can catch up, the
/// same call promotes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_that_cannot_catch_up_is_reported_not_promoted() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs[..3]).await;
    let leader = wait_leader(&nodes, None).await;
    write_seeds(&nodes[&leader].raft, 0..300).await;

    nodes.insert(4, start_node(&router, 4, dirs[3].path()).await);
    for id in 1..=3 {
        router.cut(4, id);
    }
    let deadline = Duration::from_secs(2);
    let refused = membership::add_replica(&nodes[&leader].raft, 4, "node-4", deadline).await;
    match refused {
        Err(MembershipError::LearnerBehind { node: 4, lag, .. }) => {
            assert!(lag > membership::CAUGHT_UP_LAG, "reported lag {lag}")
        }
        other => panic!("expected LearnerBehind for node 4, got {other:?}"),
    }
    assert_eq!(voters(&nodes[&leader]), BTreeSet::from([1, 2, 3]));
    assert_eq!(learners(&nodes[&leader]), BTreeSet::from([4]));
    let written = write_seeds(&nodes[&leader].raft, 300..350).await;
    assert_eq!(written.len(), 50, "the quorum is unchanged: writes go on");

    router.heal();
    membership::add_replica(&nodes[&leader].raft, 4, "node-4", DEADLINE)
        .await
        .unwrap();
    assert_eq!(voters(&nodes[&leader]), BTreeSet::from([1, 2, 3, 4]));
    converged_log(&nodes, leader).await;
}

/// A replica whose directory was wiped comes back empty: it refuses to vote (it forgot its
/// vote) until the leader has demoted it to learner, let it catch up, and promoted it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_replica_rejoins_as_a_learner_and_votes_only_after_promotion() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = start_cluster(&router, &dirs).await;
    let leader = wait_leader(&nodes, None).await;
    let mut acked = write_seeds(&nodes[&leader].raft, 0..300).await;

    let wiped = *nodes.keys().find(|&&id| id != leader).unwrap();
    router.remove(wiped);
    nodes.remove(&wiped).unwrap().raft.shutdown().await.unwrap();
    let empty = tempfile::tempdir().unwrap();
    let network = router.network::<PartitionSnapshot>(wiped, TEST_GROUP);
    let log_config = stave_log::LogConfig {
        flush: stave_log::FlushPolicy::Always,
        segment_bytes: 1 << 20,
        ..stave_log::LogConfig::default()
    };
    let replica = start_partition(wiped, empty.path(), log_config, fast_raft_config(), network)
        .await
        .unwrap();
    // Demoted before its empty replica is reachable; then reachable, but not voting.
    membership::rejoin_as_learner(&nodes[&leader].raft, wiped, "rejoined")
        .await
        .unwrap();
    assert_eq!(learners(&nodes[&leader]), BTreeSet::from([wiped]));
    let groups = router.node(wiped);
    groups.insert_not_voting(TEST_GROUP, Arc::new(replica.raft.clone()));
    let ballot = openraft::raft::VoteRequest::new(openraft::Vote::new(99, leader), None);
    let refused = groups.get(TEST_GROUP).unwrap().vote(ballot, false).await;
    assert!(refused.is_err(), "a wiped replica must not vote");

    let raft = nodes[&leader].raft.clone();
    let writes = tokio::spawn(async move { write_seeds(&raft, 300..400).await });
    membership::promote_when_caught_up(&nodes[&leader].raft, wiped, DEADLINE)
        .await
        .unwrap();
    acked.extend(writes.await.unwrap());
    assert_eq!(acked.len(), 400);
    // Promoted: it sees itself a voter, and takes part in elections again.
    replica
        .raft
        .wait(Some(DEADLINE))
        .metrics(
            |m| {
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|id| id == wiped)
            },
            "promoted",
        )
        .await
        .unwrap();
    groups.insert(TEST_GROUP, Arc::new(replica.raft.clone()));
    nodes.insert(wiped, replica);
    assert_eq!(voters(&nodes[&leader]), BTreeSet::from([1, 2, 3]));
    let log = converged_log(&nodes, leader).await;
    assert_acknowledged_present(&log, &acked);
}

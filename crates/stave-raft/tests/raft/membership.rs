//! Replica changes while writes go on.

use std::collections::BTreeSet;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_raft::sim_network::Router;

use crate::support::{
    assert_acknowledged_present, converged_log, start_cluster, start_node, wait_leader, write_seeds,
};

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
    nodes[&leader]
        .raft
        .add_learner(4, BasicNode::new("node-4"), true)
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
    nodes[&leader]
        .raft
        .change_membership(voters.clone(), false)
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

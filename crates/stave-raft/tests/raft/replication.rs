//! Three replicas of one partition in one process, over the in-process router.

use std::collections::BTreeMap;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_raft::FramePayload;
use stave_raft::sim_network::Router;

use crate::support::{WAIT, batch, start_node};

/// Elects a leader among three replicas, replicates 10,000 batches (at most 4 KiB each,
/// written 100 at a time), and proves that every replica's committed log is identical frame
/// by frame up to the commit index, that every acknowledged write got its own dense offset
/// range, and that every replica's high watermark counts every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_hold_identical_committed_logs() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for (id, dir) in (1..=3u64).zip(&dirs) {
        nodes.insert(id, start_node(&router, id, dir.path()).await);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    nodes[&1].raft.initialize(members).await.unwrap();
    let metrics = nodes[&1]
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap();
    let leader = &nodes[&metrics.current_leader.unwrap()].raft;
    // A new leader refuses writes until a quorum has answered it (its lease).
    leader
        .wait(Some(WAIT))
        .leader_with_quorum_acked(None, "the leader's lease")
        .await
        .unwrap();

    const BATCHES: u64 = 10_000;
    let mut acknowledged = Vec::new();
    for chunk in 0..BATCHES / 100 {
        let writes = (0..100).map(|i| {
            let seed = chunk * 100 + i;
            let frame = batch(seed, 1 + (seed % 4) as u32, 100 + (seed % 700) as usize);
            leader.client_write(FramePayload(frame))
        });
        for response in futures_util::future::join_all(writes).await {
            acknowledged.push(response.unwrap().data);
        }
    }
    acknowledged.sort_by_key(|a| a.base_offset);
    let mut expected_offset = 0;
    for applied in &acknowledged {
        assert_eq!(
            applied.base_offset, expected_offset,
            "offsets of acknowledged writes"
        );
        expected_offset = applied.next_offset;
    }

    let last = leader.metrics().borrow_watched().last_log_index.unwrap();
    for node in nodes.values() {
        node.raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(last), "replica applied everything")
            .await
            .unwrap();
        assert_eq!(node.sm.high_watermark(), expected_offset, "high watermark");
    }
    let reference = nodes[&1].store.frames(0, last + 1).await.unwrap();
    assert_eq!(reference.len() as u64, last + 1);
    for (id, node) in &nodes {
        let frames = node.store.frames(0, last + 1).await.unwrap();
        assert_eq!(frames.len(), reference.len(), "node {id}: frame count");
        for (mine, theirs) in frames.iter().zip(&reference) {
            assert_eq!(mine, theirs, "node {id}: frame {} differs", mine.log_id);
        }
    }
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

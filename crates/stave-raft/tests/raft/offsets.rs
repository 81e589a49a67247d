//! An `__offsets` partition: commits are records; the table they build is replicated,
//! survives snapshot + purge (the log's compaction) and a restart, and reaches a replica
//! behind the purged log start through the snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_log::batch::BatchBuilder;
use stave_raft::offsets::{Committed, OffsetKey, as_record, commit_record};
use stave_raft::sim_network::{Router, TEST_GROUP, fast_raft_config};
use stave_raft::{FramePayload, PartitionKind, PartitionSnapshot};

use crate::support::{Node, WAIT, converged_log, wait_leader};

async fn start(router: &Router, id: u64, dir: &std::path::Path) -> Node {
    let network = router.network::<PartitionSnapshot>(id, TEST_GROUP);
    let log_config = stave_log::LogConfig {
        segment_bytes: 64 << 10,
        ..stave_log::LogConfig::default()
    };
    let replica = stave_raft::replica::start_partition_seeded(
        id,
        dir,
        log_config,
        fast_raft_config(),
        network,
        None,
        PartitionKind::Offsets,
    )
    .await
    .unwrap();
    router.add_group(id, TEST_GROUP, Arc::new(replica.raft.clone()));
    replica
}

fn key(group: &str, partition: u32) -> OffsetKey {
    OffsetKey {
        group: group.into(),
        topic: "v1.orders".into(),
        partition,
    }
}

fn commit(entries: &[(OffsetKey, u64)]) -> Bytes {
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(key, offset)| {
            let committed = Committed {
                offset: *offset,
                commit_ms: 0,
                metadata: String::new(),
            };
            commit_record(key, Some(&committed))
        })
        .collect();
    let mut builder = BatchBuilder::new();
    for (k, v) in &encoded {
        builder.push(&as_record(k, v.as_deref(), 0));
    }
    Bytes::from(builder.finish())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_compaction_and_restarts() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for (id, dir) in (1..).zip(&dirs) {
        nodes.insert(id, start(&router, id, dir.path()).await);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    nodes[&1].raft.initialize(members).await.unwrap();
    let leader = wait_leader(&nodes, None).await;

    // 300 commits over 2 groups × 3 partitions: the last one of each key wins.
    for round in 0..50u64 {
        let entries: Vec<(OffsetKey, u64)> = ["email", "billing"]
            .iter()
            .flat_map(|group| (0..3).map(move |p| (key(group, p), round * 10 + u64::from(p))))
            .collect();
        nodes[&leader]
            .raft
            .client_write(FramePayload(commit(&entries)))
            .await
            .unwrap();
    }
    converged_log(&nodes, leader).await;
    for (id, node) in &nodes {
        let table = node.sm.offsets().unwrap();
        assert_eq!(table.len(), 6, "replica {id}");
        assert_eq!(
            node.sm.committed(&key("email", 2)).unwrap().offset,
            492,
            "replica {id}"
        );
    }

    // A follower stops; more commits; then compaction: snapshot, and purge everything it
    // covers, so the follower can only catch up through the snapshot.
    let behind = *nodes.keys().find(|&&id| id != leader).unwrap();
    router.remove(behind);
    nodes
        .remove(&behind)
        .unwrap()
        .raft
        .shutdown()
        .await
        .unwrap();
    nodes[&leader]
        .raft
        .client_write(FramePayload(commit(&[(key("email", 0), 1000)])))
        .await
        .unwrap();
    let raft = &nodes[&leader].raft;
    raft.trigger().snapshot().await.unwrap();
    let snapshot = raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "a snapshot")
        .await
        .unwrap()
        .snapshot
        .unwrap();
    raft.trigger().purge_log(snapshot.index).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= snapshot.index),
            "purged",
        )
        .await
        .unwrap();
    let dir = dirs[behind as usize - 1].path();
    nodes.insert(behind, start(&router, behind, dir).await);
    nodes[&leader]
        .raft
        .client_write(FramePayload(commit(&[(key("billing", 1), 2000)])))
        .await
        .unwrap();
    converged_log(&nodes, leader).await;
    let restored = nodes[&behind].sm.offsets().unwrap();
    assert_eq!(restored, nodes[&leader].sm.offsets().unwrap());
    assert_eq!(restored.get(&key("email", 0)).unwrap().offset, 1000);
    assert_eq!(restored.get(&key("billing", 1)).unwrap().offset, 2000);
    assert_eq!(restored.get(&key("billing", 2)).unwrap().offset, 492);

    // The leader restarts from its directory: snapshot + log tail give the same table.
    let before = nodes[&leader].sm.offsets().unwrap();
    router.remove(leader);
    nodes
        .remove(&leader)
        .unwrap()
        .raft
        .shutdown()
        .await
        .unwrap();
    let dir = dirs[leader as usize - 1].path();
    let back = start(&router, leader, dir).await;
    back.raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.last_applied.is_some_and(|a| a.index > snapshot.index),
            "replayed",
        )
        .await
        .unwrap();
    assert_eq!(back.sm.offsets().unwrap(), before);
    let _ = back.raft.metrics().borrow_watched().id;
}

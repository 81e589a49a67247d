//! Shared helpers: starting replicas over the in-process router, building batches.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use openraft::Instant;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_log::StoredFrame;
use stave_log::batch::{BatchBuilder, BatchView, Record};
use stave_log::frame::{FrameType, HEADER_LEN};
use stave_log::{FlushPolicy, LogConfig};
use stave_raft::FramePayload;
use stave_raft::sim_network::{PartitionRaft, Router, fast_raft_config};

pub const WAIT: Duration = Duration::from_secs(30);

pub type Node = stave_raft::sim_network::SimReplica;

pub async fn start_node(router: &Router, id: u64, dir: &Path) -> Node {
    let log_config = LogConfig {
        flush: FlushPolicy::Always,
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    router
        .start_replica(id, dir, log_config, fast_raft_config())
        .await
        .unwrap()
}

/// A batch of `count` records, each about `value_len` bytes, whose contents depend on `seed`.
pub fn batch(seed: u64, count: u32, value_len: usize) -> Bytes {
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let value = vec![(seed as u8).wrapping_add(i as u8); value_len];
        builder.push(&Record {
            timestamp: seed as i64,
            key: Some(&seed.to_le_bytes()),
            value: Some(&value),
            headers: &[],
        });
    }
    Bytes::from(builder.finish())
}

/// Starts replicas 1..=n (one per directory), initializes the group on replica 1, and waits
/// for a leader whose lease a quorum has acknowledged.
pub async fn start_cluster(router: &Router, dirs: &[tempfile::TempDir]) -> BTreeMap<u64, Node> {
    let mut nodes = BTreeMap::new();
    for (id, dir) in (1..).zip(dirs) {
        nodes.insert(id, start_node(router, id, dir.path()).await);
    }
    let members: BTreeMap<u64, BasicNode> = nodes
        .keys()
        .map(|&id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    nodes[&1].raft.initialize(members).await.unwrap();
    wait_leader(&nodes, None).await;
    nodes
}

/// Waits until the live replicas agree on a leader other than `not`, whose lease a quorum has
/// acknowledged since this call (a fresh leader refuses writes before that, and an old one
/// cut off from the others may still believe it leads). Returns its id.
pub async fn wait_leader(nodes: &BTreeMap<u64, Node>, not: Option<u64>) -> u64 {
    let since = openraft::TokioInstant::now();
    for attempt in 0.. {
        let leader = claimed_leader(nodes, not, attempt).await;
        let acked = nodes[&leader]
            .raft
            .wait(Some(Duration::from_secs(2)))
            .leader_with_quorum_acked(Some(since), "the leader's lease")
            .await;
        if acked.is_ok() {
            return leader;
        }
        assert!(
            since.elapsed() < WAIT,
            "no leader with a quorum within {WAIT:?}"
        );
    }
    unreachable!("the loop returns or fails")
}

/// The leader that a live replica (other than `not`, a different one on each attempt)
/// believes in.
async fn claimed_leader(nodes: &BTreeMap<u64, Node>, not: Option<u64>, attempt: usize) -> u64 {
    let observers: Vec<&Node> = nodes
        .values()
        .filter(|n| Some(n.raft.metrics().borrow_watched().id) != not)
        .collect();
    let observer = observers.get(attempt % observers.len().max(1)).copied();
    let metrics = observer
        .expect("a live replica")
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| Some(l) != not),
            "a new leader",
        )
        .await
        .unwrap();
    metrics.current_leader.expect("waited for a leader")
}

/// Writes the batches for `seeds` to `raft`, all at once; returns the acknowledged ones.
pub async fn write_seeds(
    raft: &PartitionRaft,
    seeds: std::ops::Range<u64>,
) -> BTreeMap<u64, stave_raft::Applied> {
    let writes = seeds
        .clone()
        .map(|seed| raft.client_write(FramePayload(seed_batch(seed))));
    let results = futures_util::future::join_all(writes).await;
    seeds
        .zip(results)
        .filter_map(|(seed, r)| r.ok().map(|r| (seed, r.data)))
        .collect()
}

/// The batch written for `seed` in the failover tests.
pub fn seed_batch(seed: u64) -> Bytes {
    batch(seed, 1 + (seed % 3) as u32, 50 + (seed % 300) as usize)
}

/// Waits until every replica applied up to the leader's last index, then checks that their
/// logs are identical frame by frame and returns the reference log.
pub async fn converged_log(nodes: &BTreeMap<u64, Node>, leader: u64) -> Vec<StoredFrame> {
    let last = nodes[&leader]
        .raft
        .metrics()
        .borrow_watched()
        .last_log_index
        .expect("a log");
    for node in nodes.values() {
        node.raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(last), "replica caught up")
            .await
            .unwrap();
    }
    // Retention may have purged a different prefix on each replica: compare from the latest
    // start on.
    let mut logs = BTreeMap::new();
    for (id, node) in nodes {
        logs.insert(*id, node.store.frames(0, last + 1).await.unwrap());
    }
    // A replica that purged everything up to `last` (retention right after a snapshot)
    // holds no frame: its log starts after `last`.
    let start = logs
        .values()
        .map(|log| log.first().map_or(last + 1, |f| f.log_id.index.0))
        .max()
        .unwrap_or(0);
    let common = |log: &Vec<StoredFrame>| -> Vec<StoredFrame> {
        log.iter()
            .filter(|f| f.log_id.index.0 >= start)
            .cloned()
            .collect()
    };
    let reference = common(&logs[&leader]);
    assert_eq!(
        reference.len() as u64,
        last + 1 - start,
        "the leader's log has a hole"
    );
    for (id, log) in &logs {
        assert_eq!(
            common(log),
            reference,
            "replica {id} differs from the leader"
        );
    }
    reference
}

/// The seed of every data frame in `log` (its first record's key), with the frame.
pub fn frames_by_seed(log: &[StoredFrame]) -> BTreeMap<u64, Vec<&StoredFrame>> {
    let mut by_seed: BTreeMap<u64, Vec<&StoredFrame>> = BTreeMap::new();
    for frame in log.iter().filter(|f| f.frame_type == FrameType::Data) {
        let view = BatchView::parse(frame.bytes.clone()).unwrap();
        let record = view.records().next().unwrap().unwrap();
        let seed = u64::from_le_bytes(record.key.unwrap().try_into().unwrap());
        by_seed.entry(seed).or_default().push(frame);
    }
    by_seed
}

/// Every acknowledged write is in `log` exactly once, at its acknowledged offset, with the
/// bytes that were written; writes below the log's first offset were purged by retention.
pub fn assert_acknowledged_present(
    log: &[StoredFrame],
    acked: &BTreeMap<u64, stave_raft::Applied>,
) {
    let by_seed = frames_by_seed(log);
    // An empty log was purged up to its end (see `converged_log`): retention took every
    // acknowledged write there is.
    let retained_from = log.first().map_or(u64::MAX, |f| f.base_offset.0);
    for (seed, applied) in acked.iter().filter(|(_, a)| a.base_offset >= retained_from) {
        let frames = by_seed.get(seed).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            frames.len(),
            1,
            "acknowledged write {seed} is held {} times",
            frames.len()
        );
        assert_eq!(
            frames[0].base_offset.0, applied.base_offset,
            "write {seed} moved"
        );
        let written = seed_batch(*seed);
        assert_eq!(
            &frames[0].bytes[HEADER_LEN..],
            &written[HEADER_LEN..],
            "write {seed} changed"
        );
    }
}

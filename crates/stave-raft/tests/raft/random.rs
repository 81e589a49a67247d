//! Randomized faults over many seeds: message loss, delays (reordering), cut links, killed and
//! restarted replicas, snapshots and purges on the leader, with writes throughout. After every run the faults stop and the group
//! must converge. `STAVE_SEEDS=N` runs N seeds (from `STAVE_SEED_FIRST`, default 0) and
//! prints the range it covered.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_raft::sim_network::{Faults, Router};
use stave_raft::{Applied, FramePayload};

use crate::support::{
    Node, assert_acknowledged_present, converged_log, seed_batch, start_cluster, start_node,
    wait_leader,
};

const SEEDS_DEFAULT: u64 = 6;
const STEPS: usize = 8;
const WRITE_WAIT: Duration = Duration::from_secs(3);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Prints the seed of a run that fails, so it can be replayed.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "randomized raft run failed: STAVE_SEED_FIRST={} STAVE_SEEDS=1",
                self.0
            );
        }
    }
}

/// Sends the writes for `seeds` to whichever replica `leader` is, each with a deadline;
/// returns the acknowledged ones (a write that fails or times out may or may not commit).
async fn write_through(
    nodes: &BTreeMap<u64, Node>,
    leader: u64,
    seeds: std::ops::Range<u64>,
) -> BTreeMap<u64, Applied> {
    let Some(node) = nodes.get(&leader) else {
        return BTreeMap::new();
    };
    let writes = seeds.clone().map(|seed| {
        let raft = node.raft.clone();
        async move {
            let write = raft.client_write(FramePayload(seed_batch(seed)));
            tokio::time::timeout(WRITE_WAIT, write).await
        }
    });
    let results = futures_util::future::join_all(writes).await;
    seeds
        .zip(results)
        .filter_map(|(seed, result)| match result {
            Ok(Ok(response)) => Some((seed, response.data)),
            _ => None,
        })
        .collect()
}

async fn run_seed(seed: u64) {
    let _guard = SeedGuard(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::with_seed(seed);
    let mut nodes = start_cluster(&router, &dirs).await;
    router.set_faults(Faults {
        drop_ratio: 0.05,
        delay_ms_max: 10,
    });
    let mut down: Vec<u64> = Vec::new();
    let mut acked = BTreeMap::new();
    let mut next = 0u64;
    for _ in 0..STEPS {
        match rng.random_range(0..6) {
            5 => {
                // Retention on the claimed leader: snapshot, then purge what it covers, so
                // lagging or restarted replicas must catch up from a snapshot.
                let claimed = nodes
                    .values()
                    .find_map(|n| n.raft.metrics().borrow_watched().current_leader);
                if let Some(node) = claimed.and_then(|leader| nodes.get(&leader)) {
                    let _ = node.raft.trigger().snapshot().await;
                    let snapshot = node
                        .raft
                        .wait(Some(Duration::from_secs(2)))
                        .metrics(|m| m.snapshot.is_some(), "a snapshot")
                        .await;
                    if let Some(upto) = snapshot.ok().and_then(|m| m.snapshot) {
                        let _ = node.raft.trigger().purge_log(upto.index).await;
                    }
                }
            }
            0 | 1 => {
                let claimed = nodes
                    .values()
                    .find_map(|n| n.raft.metrics().borrow_watched().current_leader);
                if let Some(leader) = claimed {
                    acked.extend(write_through(&nodes, leader, next..next + 40).await);
                }
                next += 40;
            }
            2 if down.is_empty() => {
                let ids: Vec<u64> = nodes.keys().copied().collect();
                let victim = ids[rng.random_range(0..ids.len())];
                router.remove(victim);
                let node = nodes.remove(&victim).expect("a live replica");
                node.raft.shutdown().await.unwrap();
                down.push(victim);
            }
            2 | 3 => {
                if let Some(id) = down.pop() {
                    nodes.insert(
                        id,
                        start_node(&router, id, dirs[id as usize - 1].path()).await,
                    );
                }
            }
            _ => {
                let a = rng.random_range(1..=3u64);
                let b = 1 + (a + rng.random_range(0..2)) % 3;
                router.cut(a, b);
            }
        }
    }
    router.heal();
    router.set_faults(Faults::default());
    for id in down.drain(..) {
        nodes.insert(
            id,
            start_node(&router, id, dirs[id as usize - 1].path()).await,
        );
    }
    let leader = wait_leader(&nodes, None).await;
    acked.extend(write_through(&nodes, leader, next..next + 10).await);
    let log = converged_log(&nodes, leader).await;
    assert_acknowledged_present(&log, &acked);
    // Writes that retention purged are still below every replica's high watermark.
    let acked_end = acked.values().map(|a| a.next_offset).max().unwrap_or(0);
    for (id, node) in &nodes {
        let hwm = node.sm.high_watermark();
        assert!(
            hwm >= acked_end,
            "replica {id}: high watermark {hwm} below acknowledged offset {acked_end}"
        );
    }
    eprintln!(
        "seed {seed}: {} writes acknowledged, {} frames converged",
        acked.len(),
        log.len()
    );
    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}

/// Under message loss, delays, cut links and replicas killed and restarted from their data
/// directories, no acknowledged write is ever lost, duplicated, moved or changed, and once the
/// faults stop every replica converges to the same log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_faults_never_lose_or_change_an_acknowledged_write() {
    let first = env_u64("STAVE_SEED_FIRST").unwrap_or(0);
    let count = env_u64("STAVE_SEEDS").unwrap_or(SEEDS_DEFAULT);
    for seed in first..first + count {
        run_seed(seed).await;
    }
    eprintln!(
        "randomized raft runs passed: seeds {first}..{}",
        first + count
    );
}

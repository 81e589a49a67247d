//! Replicated append throughput: 256 KiB batches of 1 KiB records written through a group of
//! three replicas in one process (in-process router, `flush=always` on each replica, up to 32
//! writes in flight, refilled as each commits), against `PartitionLog` appends of the same frames in the same run
//! (`flush=always`, all issued without waiting, so group commit at its best). Three replicas
//! share one disk and two cores here, so 0.33x is the ceiling.
//!
//! Run with `cargo bench -p stave-raft --bench replication`.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use openraft::impls::BasicNode;
use stave_log::batch::{BatchBuilder, Record};
use stave_log::storage::{FsStorage, Storage};
use stave_log::{FlushPolicy, LogConfig, LogId, PartitionLog};
use stave_raft::FramePayload;
use stave_raft::sim_network::{Router, fast_raft_config};

const BATCH_BYTES: usize = 256 * 1024;
const IN_FLIGHT_MAX: usize = 32;

fn frame() -> Bytes {
    let value = vec![0x5au8; 1024];
    let mut builder = BatchBuilder::with_capacity(BATCH_BYTES + 4096);
    for i in 0..BATCH_BYTES / 1040 {
        let key = (i as u64).to_le_bytes();
        builder.push(&Record {
            timestamp: i as i64,
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        });
    }
    Bytes::from(builder.finish())
}

fn scratch() -> tempfile::TempDir {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn log_config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Always,
        ..LogConfig::default()
    }
}

/// `iters` appends to a fresh single log, all issued at once; the time until all are durable.
fn single_log(frame: &Bytes, iters: u64) -> Duration {
    let dir = scratch();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    let mut log = PartitionLog::open(storage, dir.path(), log_config()).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..iters {
        let appended = log.append(frame, LogId::new(1, i)).unwrap();
        let done_tx = done_tx.clone();
        log.on_durable(
            appended.pos,
            Box::new(move |result| done_tx.send(result).unwrap()),
        );
    }
    for _ in 0..iters {
        done_rx.recv().unwrap().unwrap();
    }
    start.elapsed()
}

/// `iters` writes through a fresh three-replica group; the time until all are committed.
async fn three_replicas(frame: &Bytes, iters: u64) -> Duration {
    let dirs: Vec<_> = (0..3).map(|_| scratch()).collect();
    let router = Router::default();
    let mut replicas = BTreeMap::new();
    for (id, dir) in (1..=3u64).zip(&dirs) {
        let replica = router
            .start_replica(id, dir.path(), log_config(), fast_raft_config())
            .await
            .unwrap();
        replicas.insert(id, replica);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::new(id))).collect();
    replicas[&1].raft.initialize(members).await.unwrap();
    let wait = Some(Duration::from_secs(30));
    let metrics = replicas[&1]
        .raft
        .wait(wait)
        .metrics(|m| m.current_leader.is_some(), "leader")
        .await
        .unwrap();
    let leader = &replicas[&metrics.current_leader.unwrap()].raft;
    leader
        .wait(wait)
        .leader_with_quorum_acked(None, "lease")
        .await
        .unwrap();

    // A window of writes in flight, refilled as each commits (as a pipelining producer does).
    let start = Instant::now();
    let writes = (0..iters).map(|_| leader.client_write(FramePayload(frame.clone())));
    let mut committed = futures_util::stream::iter(writes).buffer_unordered(IN_FLIGHT_MAX);
    while let Some(result) = committed.next().await {
        result.unwrap();
    }
    let elapsed = start.elapsed();
    for replica in replicas.values() {
        replica.raft.shutdown().await.unwrap();
    }
    elapsed
}

fn replicated_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let frame = frame();
    let mut group = c.benchmark_group("replicated_append");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("baseline_single_log", |b| {
        b.iter_custom(|iters| single_log(&frame, iters))
    });
    group.bench_function("three_replicas", |b| {
        b.iter_custom(|iters| runtime.block_on(three_replicas(&frame, iters)))
    });
    group.finish();
}

criterion_group!(benches, replicated_append);
criterion_main!(benches);

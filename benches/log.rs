//! Criterion benches of the partition log (`stave-log`), each group with a raw baseline
//! measured in the same run, so results read as ratios on a noisy, shared machine.
//!
//! - `batch_codec/*/size=S`: encode (`BatchBuilder`) and decode (`BatchView` + every record)
//!   of 256 KiB batches of S-byte records; baseline: memcpy + CRC of the same bytes.
//! - `segment_append/*`: 256 KiB appends under `flush=never` and under `flush=always` (waiting
//!   for each to be durable); baselines: `pwrite` of the same bytes to a file in the same
//!   directory, without and with `fdatasync` per batch.
//! - `group_commit/*`: 4 KiB appends under `flush=always`, waiting for each sync, or issued
//!   without waiting (completions registered, waited for at the end).
//! - `sequential_read/size=S`: read a log from the start in 1 MiB fetches, CRC-checking and
//!   decoding every record as a consumer would; baseline: memcpy + CRC of the same bytes.
//!
//! Run with `cargo bench --bench log`; `scripts/bench-log.sh` runs it and prints the ratios.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stave_log::batch::{BatchBuilder, BatchView, Record};
use stave_log::storage::{FsStorage, Storage};
use stave_log::{FlushPolicy, LogConfig, LogId, Offset, PartitionLog};

const BATCH_BYTES: usize = 256 * 1024;
const SMALL_APPEND_BYTES: usize = 4 * 1024;

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A data frame of records of `record_bytes` values, about `total_bytes` long.
fn build_frame(record_bytes: usize, total_bytes: usize) -> Vec<u8> {
    let value = payload(record_bytes, record_bytes as u64);
    let count = (total_bytes / (record_bytes + 16)).max(1);
    let mut builder = BatchBuilder::with_capacity(total_bytes + 1024);
    for i in 0..count {
        let key = (i as u64).to_le_bytes();
        builder.push(&Record {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        });
    }
    builder.finish()
}

fn storage() -> Arc<dyn Storage> {
    Arc::new(FsStorage)
}

fn bench_dir() -> tempfile::TempDir {
    // Benches write where `target/` is (a real disk), not to a tmpfs /tmp.
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        flush,
        retention: stave_log::RetentionPolicy {
            retention_ms: None,
            retention_bytes: None,
        },
        ..LogConfig::default()
    }
}

fn batch_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_codec");
    for record_bytes in [100usize, 1024] {
        let frame = build_frame(record_bytes, BATCH_BYTES);
        let bytes = Bytes::from(frame.clone());
        let value = payload(record_bytes, record_bytes as u64);
        let count = BatchView::parse_unstamped(bytes.clone())
            .unwrap()
            .record_count();
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(
            BenchmarkId::new("encode", format!("size={record_bytes}")),
            |b| {
                b.iter(|| {
                    let mut builder = BatchBuilder::with_capacity(frame.len());
                    for i in 0..count {
                        let key = u64::from(i).to_le_bytes();
                        builder.push(&Record {
                            timestamp: 1_700_000_000_000 + i64::from(i),
                            key: Some(&key),
                            value: Some(&value),
                            headers: &[],
                        });
                    }
                    black_box(builder.finish())
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("decode", format!("size={record_bytes}")),
            |b| {
                b.iter(|| {
                    let view = BatchView::parse_unstamped(bytes.clone()).unwrap();
                    let mut sum = 0usize;
                    for record in view.records() {
                        let record = record.unwrap();
                        sum +=
                            record.value.map_or(0, <[u8]>::len) + record.key.map_or(0, <[u8]>::len);
                    }
                    black_box(sum)
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("baseline_memcpy_crc", format!("size={record_bytes}")),
            |b| {
                let mut copy = vec![0u8; frame.len()];
                b.iter(|| {
                    copy.copy_from_slice(&frame);
                    black_box(crc32fast::hash(&copy))
                })
            },
        );
    }
    group.finish();
}

/// Appends `iters` copies of `frame` to a fresh log; under `always`, waits for each.
fn time_log_appends(frame: &[u8], iters: u64, flush: FlushPolicy) -> Duration {
    let dir = bench_dir();
    let mut log = PartitionLog::open(storage(), dir.path(), config(flush)).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..iters {
        let appended = log.append(frame, LogId::new(1, i)).unwrap();
        if flush == FlushPolicy::Always {
            let done_tx = done_tx.clone();
            log.on_durable(
                appended.pos,
                Box::new(move |result| done_tx.send(result).unwrap()),
            );
            done_rx.recv().unwrap().unwrap();
        }
    }
    let elapsed = start.elapsed();
    drop(log);
    elapsed
}

/// Writes `iters` copies of `frame` with plain `pwrite` to a fresh file, syncing each if told.
fn time_pwrites(frame: &[u8], iters: u64, sync: bool) -> Duration {
    let dir = bench_dir();
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("baseline"))
        .unwrap();
    let start = Instant::now();
    for i in 0..iters {
        file.write_all_at(frame, i * frame.len() as u64).unwrap();
        if sync {
            file.sync_data().unwrap();
        }
    }
    start.elapsed()
}

fn segment_append(c: &mut Criterion) {
    let frame = build_frame(1024, BATCH_BYTES);
    let mut group = c.benchmark_group("segment_append");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("never", |b| {
        b.iter_custom(|iters| time_log_appends(&frame, iters, FlushPolicy::Never))
    });
    group.bench_function("baseline_pwrite", |b| {
        b.iter_custom(|iters| time_pwrites(&frame, iters, false))
    });
    group.bench_function("always", |b| {
        b.iter_custom(|iters| time_log_appends(&frame, iters, FlushPolicy::Always))
    });
    group.bench_function("baseline_pwrite_fdatasync", |b| {
        b.iter_custom(|iters| time_pwrites(&frame, iters, true))
    });
    group.finish();
}

/// 4 KiB appends under `always` issued without waiting: returns the time until the last is
/// durable, and prints the number of syncs the run took.
fn time_pipelined(frame: &[u8], iters: u64) -> Duration {
    let dir = bench_dir();
    let mut log = PartitionLog::open(storage(), dir.path(), config(FlushPolicy::Always)).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let syncs_before = log.syncs();
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
    let elapsed = start.elapsed();
    if iters >= 1000 {
        eprintln!(
            "group_commit/pipelined: {iters} appends, {} syncs",
            log.syncs() - syncs_before
        );
    }
    elapsed
}

fn group_commit(c: &mut Criterion) {
    let frame = build_frame(1024, SMALL_APPEND_BYTES);
    let mut group = c.benchmark_group("group_commit");
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("wait_each", |b| {
        b.iter_custom(|iters| time_log_appends(&frame, iters, FlushPolicy::Always))
    });
    group.bench_function("pipelined", |b| {
        b.iter_custom(|iters| time_pipelined(&frame, iters))
    });
    group.finish();
}

/// Reads the whole log from offset 0 in 1 MiB fetches, decoding and CRC-checking every record.
fn read_all(log: &PartitionLog) -> usize {
    let mut from = Offset(0);
    let mut sum = 0usize;
    while from < log.log_end_offset() {
        let read = log.read(from, 1 << 20).unwrap();
        for batch in read.batches() {
            for record in batch.unwrap().records() {
                sum += record.unwrap().value.map_or(0, <[u8]>::len);
            }
        }
        from = read.next_offset;
    }
    sum
}

fn sequential_read(c: &mut Criterion) {
    const LOG_BYTES: usize = 64 << 20;
    let mut group = c.benchmark_group("sequential_read");
    for record_bytes in [100usize, 1024] {
        let dir = bench_dir();
        let mut log =
            PartitionLog::open(storage(), dir.path(), config(FlushPolicy::Never)).unwrap();
        let frame = build_frame(record_bytes, BATCH_BYTES);
        let mut stored = Vec::with_capacity(LOG_BYTES + frame.len());
        let mut index = 0;
        while stored.len() < LOG_BYTES {
            log.append(&frame, LogId::new(1, index)).unwrap();
            index += 1;
            stored.extend_from_slice(&frame);
        }
        group.throughput(Throughput::Bytes(stored.len() as u64));
        group.sample_size(20);
        read_all(&log);
        group.bench_function(
            BenchmarkId::new("read_decode", format!("size={record_bytes}")),
            |b| b.iter(|| black_box(read_all(&log))),
        );
        group.bench_function(
            BenchmarkId::new("baseline_memcpy_crc", format!("size={record_bytes}")),
            |b| {
                let mut copy = vec![0u8; stored.len()];
                b.iter(|| {
                    copy.copy_from_slice(&stored);
                    black_box(crc32fast::hash(&copy))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    batch_codec,
    segment_append,
    group_commit,
    sequential_read
);
criterion_main!(benches);

//! Edge cases found by a review of the log: restarts followed by power cuts, damaged headers,
//! extreme configuration values and indexes, and panicking completions.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use stave_log::storage::{CrashMode, FsStorage, SimStorage, Storage};
use stave_log::{
    Clock, FlushPolicy, LogConfig, LogError, LogId, LogIndex, Offset, PartitionLog, RetentionPolicy,
};

use crate::support::{frame, open_fs, small_config};

const DIR: &str = "/edge";

fn sim_open(storage: &Arc<dyn Storage>, config: &LogConfig) -> PartitionLog {
    PartitionLog::open(storage.clone(), DIR, config.clone()).unwrap()
}

fn config_with(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        flush,
        segment_ms: None,
        background_flusher: false,
        ..small_config()
    }
}

fn append_n(log: &mut PartitionLog, from: u64, count: u64) {
    for i in from..from + count {
        log.append(&frame(i, 2, 300, 0), LogId::new(1, i)).unwrap();
    }
}

/// Under `always`, a process killed (no drop, page cache kept) after appending entries it
/// had not synced yet restarts and serves those entries, which Raft takes as persisted.
/// Proves recovery syncs what it serves: a power cut after the restart keeps them.
#[test]
fn entries_served_after_a_restart_and_a_flush_survive_a_power_cut() {
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let config = config_with(FlushPolicy::Always);
    let mut log = sim_open(&storage, &config);
    append_n(&mut log, 0, 3);
    log.flush().unwrap();
    append_n(&mut log, 3, 2);
    // SIGKILL: no drop, so no sync; the simulated page cache keeps the writes.
    std::mem::forget(log);
    let log = sim_open(&storage, &config);
    assert_eq!(log.last_log_id(), Some(LogId::new(1, 4)));
    log.flush().unwrap();
    log.close().unwrap();
    sim.power_cut(7, CrashMode::DropUnsynced);
    let log = sim_open(&storage, &config);
    assert_eq!(
        log.last_log_id(),
        Some(LogId::new(1, 4)),
        "entries served after the restart, and flushed, were lost at a power cut"
    );
}

/// A log written under `never` (segments sealed without a sync) is reopened under another
/// policy, and an entry is appended and acknowledged durable. Proves the acknowledged entry
/// survives a power cut: recovery syncs the unsynced sealed segments it opens, so it never
/// later cuts the log before an acknowledged entry.
#[test]
fn an_acknowledged_append_after_a_restart_survives_a_power_cut() {
    let cases = [
        (FlushPolicy::Never, FlushPolicy::Always, false),
        (
            FlushPolicy::Interval(Duration::from_secs(3600)),
            FlushPolicy::Interval(Duration::from_secs(3600)),
            true,
        ),
        (
            FlushPolicy::Never,
            FlushPolicy::Interval(Duration::from_secs(3600)),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (before, after, kill) in cases {
        let sim = SimStorage::new();
        let storage: Arc<dyn Storage> = Arc::new(sim.clone());
        let mut log = sim_open(&storage, &config_with(before));
        append_n(&mut log, 0, 40);
        assert!(log.segment_bases().len() >= 3, "the run must roll");
        if kill {
            std::mem::forget(log);
        } else {
            drop(log);
        }
        let config = config_with(after);
        let mut log = sim_open(&storage, &config);
        let appended = log
            .append(&frame(40, 2, 300, 0), LogId::new(1, 40))
            .unwrap();
        let acked = Arc::new(AtomicBool::new(false));
        let flag = acked.clone();
        log.on_durable(
            appended.pos,
            Box::new(move |result| flag.store(result.is_ok(), Ordering::SeqCst)),
        );
        log.flush().unwrap();
        assert!(acked.load(Ordering::SeqCst));
        drop(log);
        sim.power_cut(3, CrashMode::DropUnsynced);
        let log = sim_open(&storage, &config);
        let last = log.last_log_id();
        if last != Some(LogId::new(1, 40)) {
            failures.push(format!(
                "{before} then {after} (kill: {kill}): acknowledged entry 40 lost, log ends at {last:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Under `interval`, a roll syncs the segment it seals, so later damage to an old segment is
/// corruption, as under `always`: the log opens with every entry and segment kept (nothing
/// is cut), and reading the damaged frame returns `LogError::Corrupt`, never its bytes.
#[test]
fn damage_in_an_old_segment_sealed_under_interval_is_reported_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(FlushPolicy::Interval(Duration::from_secs(3600)));
    let mut log = open_fs(dir.path(), config.clone());
    append_n(&mut log, 0, 40);
    let segments = log.segment_bases();
    assert!(segments.len() >= 4);
    log.close().unwrap();
    let first = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = fs::read(&first).unwrap();
    bytes[64 + 38 + 45] ^= 0x10;
    fs::write(&first, bytes).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    let log = PartitionLog::open(storage, dir.path(), config).unwrap();
    assert_eq!(
        log.last_log_id(),
        Some(LogId::new(1, 39)),
        "entries were cut"
    );
    assert_eq!(log.segment_bases(), segments, "segments were dropped");
    let read = log.read_by_index(LogIndex(0), LogIndex(1), usize::MAX);
    assert!(matches!(read, Err(LogError::Corrupt { .. })), "{read:?}");
}

/// A damaged header on the last segment, with frames after it, is corruption, not a roll cut
/// short (a roll syncs the header before any frame): open fails and deletes nothing.
#[test]
fn a_damaged_tail_header_is_not_taken_for_an_interrupted_roll() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(FlushPolicy::Always);
    let mut log = open_fs(dir.path(), config.clone());
    append_n(&mut log, 0, 5);
    log.close().unwrap();
    let tail = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = fs::read(&tail).unwrap();
    bytes[20] ^= 0x01;
    fs::write(&tail, bytes).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    match PartitionLog::open(storage, dir.path(), config) {
        Err(_) => {}
        Ok(log) => panic!(
            "opened without error; the log now ends at {:?} (was 5 acknowledged entries)",
            log.last_log_id()
        ),
    }
}

/// `retention_ms` above `i64::MAX` (say `u64::MAX` for "forever", or Kafka's -1 cast) keeps
/// every segment: no wrap to a negative age that would expire them all.
#[test]
fn retention_ms_of_u64_max_keeps_everything() {
    let now = Arc::new(AtomicI64::new(1_700_000_000_000));
    let config = LogConfig {
        retention: RetentionPolicy {
            retention_ms: Some(u64::MAX),
            retention_bytes: None,
        },
        clock: Clock::Manual(now.clone()),
        ..config_with(FlushPolicy::Always)
    };
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim);
    let mut log = sim_open(&storage, &config);
    for i in 0..40 {
        let ts = now.load(Ordering::SeqCst);
        log.append(&frame(i, 2, 300, ts), LogId::new(1, i)).unwrap();
    }
    assert!(log.segment_bases().len() >= 3);
    // A second later, the records are a second old.
    now.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(
        log.retention_point(),
        None,
        "retention.ms = u64::MAX expires segments"
    );
}

/// `segment_ms` above `i64::MAX` never rolls by age (no wrap to a negative age).
#[test]
fn segment_ms_of_u64_max_never_rolls_by_age() {
    let config = LogConfig {
        segment_ms: Some(u64::MAX),
        ..config_with(FlushPolicy::Always)
    };
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim);
    let mut log = sim_open(&storage, &config);
    for i in 0..4 {
        log.append(&frame(i, 1, 10, 0), LogId::new(1, i)).unwrap();
    }
    assert_eq!(log.segment_bases().len(), 1, "{:?}", log.segment_bases());
}

/// `truncate_after(Some(u64::MAX))` keeps everything (nothing comes after it): no overflow
/// that would panic, or wrap to a cut at 0 that truncates the whole log.
#[test]
fn truncate_after_the_largest_index_keeps_everything() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Always));
    append_n(&mut log, 0, 3);
    let result = catch_unwind(AssertUnwindSafe(|| {
        log.truncate_after(Some(LogIndex(u64::MAX)))
    }));
    assert!(result.is_ok(), "truncate_after(Some(u64::MAX)) panicked");
    assert_eq!(log.next_index(), LogIndex(3));
}

/// `reset_to` at the largest index is refused before it stores anything, so the log still
/// opens afterwards.
#[test]
fn reset_to_the_largest_index_does_not_brick_the_log() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let config = config_with(FlushPolicy::Always);
    let mut log = sim_open(&storage, &config);
    append_n(&mut log, 0, 3);
    let reset = catch_unwind(AssertUnwindSafe(|| {
        log.reset_to(LogId::new(1, u64::MAX), Offset(0))
    }));
    drop(log);
    let reopened = catch_unwind(AssertUnwindSafe(|| {
        PartitionLog::open(storage.clone(), DIR, config.clone()).map(|_| ())
    }));
    assert!(
        reset.is_ok() && reopened.is_ok(),
        "reset_to panicked: {}, reopen panicked: {}",
        reset.is_err(),
        reopened.is_err()
    );
}

/// A completion that panics is caught and logged: the one after it still runs (a panic
/// must not leave the completion queue marked busy forever, nor kill the flusher thread).
#[test]
fn completions_still_run_after_one_panicked() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Never));
    let appended = log.append(&frame(0, 1, 10, 0), LogId::new(1, 0)).unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        log.on_durable(appended.pos, Box::new(|_| panic!("a buggy completion")));
    }));
    assert!(
        panicked.is_ok(),
        "the completion's panic reached the caller"
    );
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    log.on_durable(
        appended.pos,
        Box::new(move |_| flag.store(true, Ordering::SeqCst)),
    );
    assert!(
        ran.load(Ordering::SeqCst),
        "the second completion never ran"
    );
}

/// After `reset_to` just below the largest index, an append that would overflow the index is
/// refused with an error, not a panic.
#[test]
fn an_append_after_reset_to_near_the_largest_index_does_not_panic() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Always));
    log.reset_to(LogId::new(1, u64::MAX - 1), Offset(0))
        .unwrap();
    let appended = catch_unwind(AssertUnwindSafe(|| {
        log.append(&frame(0, 1, 10, 0), LogId::new(1, u64::MAX))
            .map(|_| ())
    }));
    assert!(
        appended.is_ok(),
        "append after reset_to(u64::MAX - 1) panicked"
    );
}

/// After `reset_to` with an offset near `u64::MAX`, a data append that would overflow the
/// offset is refused with an error, not a panic or a wrap.
#[test]
fn an_append_after_reset_to_near_the_largest_offset_does_not_panic() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Always));
    log.reset_to(LogId::new(1, 10), Offset(u64::MAX - 1))
        .unwrap();
    let appended = catch_unwind(AssertUnwindSafe(|| {
        log.append(&frame(0, 3, 10, 0), LogId::new(1, 11))
            .map(|_| ())
    }));
    assert!(
        appended.is_ok(),
        "append after reset_to(offset u64::MAX - 1) panicked"
    );
}

//! Review tests: each states a behaviour the log should have and that a reading of the code
//! suggests it lacks. A failing test here confirms a finding of the review.

use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_log::storage::{CrashMode, FsStorage, SimStorage, Storage, StorageFile};
use stave_log::{
    Clock, FlushPolicy, LogConfig, LogId, LogIndex, Offset, PartitionLog, RetentionPolicy,
};

use crate::support::{frame, open_fs, small_config};

const DIR: &str = "/review";

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
/// had not synced yet restarts and serves those entries; Raft takes them as persisted. A
/// `flush()` on the restarted log returns Ok, yet a power cut then takes them away: recovery
/// never syncs what it recovered, and `flush` sees nothing written since the open.
#[test]
fn review_entries_served_after_a_restart_and_a_flush_survive_a_power_cut() {
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

/// Segments sealed without a sync (`never`, or `interval` killed before its next sync) are
/// never synced by a later instance: not on open, not by `flush`. An entry appended and
/// acknowledged durable after the restart is then lost at a power cut, because recovery cuts
/// the log at the short sealed segment and deletes every segment after it.
#[test]
fn review_an_acknowledged_append_after_a_restart_survives_a_power_cut() {
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

/// `prev_synced = false` is written once and never cleared, even after the segment is synced.
/// A single damaged byte in an old segment sealed under `interval` (long synced since) then
/// silently cuts the log there and deletes every later segment, instead of being reported
/// as corruption as it is under `always`.
#[test]
fn review_damage_in_an_old_segment_sealed_under_interval_is_not_silently_cut() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(FlushPolicy::Interval(Duration::from_secs(3600)));
    let mut log = open_fs(dir.path(), config.clone());
    append_n(&mut log, 0, 40);
    assert!(log.segment_bases().len() >= 4);
    log.flush().unwrap();
    log.close().unwrap();
    let first = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = fs::read(&first).unwrap();
    bytes[64 + 38 + 45] ^= 0x10;
    fs::write(&first, bytes).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    match PartitionLog::open(storage, dir.path(), config) {
        Err(_) => {}
        Ok(log) => panic!(
            "opened without error; the log now ends at {:?} with segments {:?} (was 40 entries)",
            log.last_log_id(),
            log.segment_bases()
        ),
    }
}

/// A damaged header on the last segment is taken for an interrupted roll, and the segment,
/// with every acknowledged entry in it, is deleted without an error.
#[test]
fn review_a_damaged_tail_header_is_not_taken_for_an_interrupted_roll() {
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

/// `retention_ms` above `i64::MAX` (say `u64::MAX` for "forever", or Kafka's -1 cast) is cast
/// to a negative number and makes every sealed segment expire.
#[test]
fn review_retention_ms_of_u64_max_keeps_everything() {
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

/// `segment_ms` above `i64::MAX` rolls on every append.
#[test]
fn review_segment_ms_of_u64_max_never_rolls_by_age() {
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

/// `truncate_after(Some(u64::MAX))` keeps everything (nothing comes after it). It overflows
/// in `LogIndex::next`: a panic in debug builds, and in release a wrap to 0 that truncates
/// the whole log.
#[test]
fn review_truncate_after_the_largest_index_keeps_everything() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Always));
    append_n(&mut log, 0, 3);
    let result = catch_unwind(AssertUnwindSafe(|| {
        log.truncate_after(Some(LogIndex(u64::MAX)))
    }));
    assert!(result.is_ok(), "truncate_after(Some(u64::MAX)) panicked");
    assert_eq!(log.next_index(), LogIndex(3));
}

/// `reset_to` at the largest index panics after it has stored the new start, and every
/// later open panics too (`LogMeta::first_index` overflows).
#[test]
fn review_reset_to_the_largest_index_does_not_brick_the_log() {
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

/// A completion that panics leaves `completing` set: no later completion ever runs, and no
/// error says so.
#[test]
fn review_completions_still_run_after_one_panicked() {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut log = sim_open(&storage, &config_with(FlushPolicy::Never));
    let appended = log.append(&frame(0, 1, 10, 0), LogId::new(1, 0)).unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        log.on_durable(appended.pos, Box::new(|_| panic!("a buggy completion")));
    }));
    assert!(panicked.is_err());
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

/// Blocks the flusher thread's `sync_data` of one file once a successor segment exists.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    path: Option<PathBuf>,
    successor_created: bool,
    blocked: bool,
    released: bool,
}

#[derive(Debug, Clone)]
struct GatedStorage {
    sim: SimStorage,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    path: PathBuf,
    gate: Arc<Gate>,
}

impl Storage for GatedStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list_dir(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.sim.open(path, create)?;
        {
            let mut state = self.gate.state.lock().unwrap();
            let is_log = path.extension().is_some_and(|e| e == "log");
            if create && is_log && state.path.as_deref().is_some_and(|p| p != path) {
                state.successor_created = true;
            }
        }
        Ok(Arc::new(GatedFile {
            inner,
            path: path.to_path_buf(),
            gate: self.gate.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.sim.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sim.sync_dir(dir)
    }
}

impl StorageFile for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        self.inner.write_all_at(bufs, pos)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }
    fn view(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.inner.view(pos, len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if std::thread::current().name() == Some("stave-flush") {
            let mut state = self.gate.state.lock().unwrap();
            if state.path.as_deref() == Some(self.path.as_path())
                && state.successor_created
                && !state.released
            {
                state.blocked = true;
                self.gate.changed.notify_all();
                while !state.released {
                    state = self.gate.changed.wait(state).unwrap();
                }
            }
        }
        self.inner.sync_data()
    }
}

/// Under `interval`, the flusher takes the sealed-unsynced list and syncs it outside the lock;
/// a `flush()` from the owner meanwhile sees an empty list, syncs only the tail and returns
/// Ok (and a purge's "flush first" relies on it). A power cut at that moment loses what the
/// owner's flush covered: the sealed segment is short, recovery cuts there and deletes the
/// tail.
#[test]
fn review_flush_under_interval_waits_for_the_sealed_segments_the_flusher_took() {
    let gate = Arc::new(Gate::default());
    let first = Path::new(DIR).join(format!("{:020}.log", 0));
    gate.state.lock().unwrap().path = Some(first);
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(GatedStorage {
        sim: sim.clone(),
        gate: gate.clone(),
    });
    let config = LogConfig {
        flush: FlushPolicy::Interval(Duration::from_millis(50)),
        background_flusher: true,
        segment_ms: None,
        ..small_config()
    };
    let mut log = sim_open(&storage, &config);
    let mut next = 0;
    while log.segment_bases().len() < 2 {
        append_n(&mut log, next, 1);
        next += 1;
    }
    append_n(&mut log, next, 2);
    next += 2;
    // Wait (bounded) for the flusher to be inside the sealed segment's sync.
    let deadline = Instant::now() + Duration::from_secs(10);
    {
        let mut state = gate.state.lock().unwrap();
        while !state.blocked {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the flusher never synced the sealed segment"
            );
            state = gate.changed.wait_timeout(state, left).unwrap().0;
        }
    }
    log.flush().unwrap();
    sim.power_cut(11, CrashMode::DropUnsynced);
    {
        let mut state = gate.state.lock().unwrap();
        state.released = true;
        gate.changed.notify_all();
    }
    drop(log);
    let reopened = PartitionLog::open(
        Arc::new(sim) as Arc<dyn Storage>,
        DIR,
        config_with(FlushPolicy::Always),
    )
    .unwrap();
    assert_eq!(
        reopened.last_log_id(),
        Some(LogId::new(1, next - 1)),
        "entries covered by a flush() that returned Ok were lost"
    );
}

//! Power cuts under [`SimStorage`]: for many seeds, a random run of appends, flushes,
//! truncations, purges, resets and clean reopens; a crash armed at a random mutating
//! operation; a power cut that keeps what was synced and loses or tears the rest; then
//! recovery, checked against a model of what the program wrote and what it was told is durable.
//!
//! The model's rules, which are the log's durability contract:
//! - an entry is *acknowledged* once its `on_durable` completion returned `Ok` (or once a
//!   recovery or a clean reopen found it on disk). An acknowledged entry survives every power
//!   cut with the same Raft index, term, base offset and bytes, unless a `truncate_after`,
//!   `purge_to` or `reset_to` that returned `Ok` removed it;
//! - an entry written but not acknowledged may or may not survive. What survives is a prefix
//!   of what was written: nothing truncated comes back, nothing is out of order, and every frame
//!   is whole and passes its checks through `read`, `read_until` and `read_by_index`;
//! - an operation the crash interrupted leaves its state before or after: a purge's or a
//!   reset's new start is in `meta` whole or not at all. An interrupted truncation may leave any
//!   prefix of the log between its cut and the old end (it removes later segments last first),
//!   never more;
//! - after recovery the log takes appends and serves them back.
//!
//! Crashes also land in the log's creation and in recovery itself. Every seed replays alone
//! with `STAVE_SEED=<n>`; `STAVE_SOAK=1` runs twenty times more seeds.

use std::collections::BTreeMap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_log::batch::BatchView;
use stave_log::frame::{FrameHeader, FrameType};
use stave_log::storage::{CrashMode, SimStorage, Storage, StorageFile};
use stave_log::{
    Clock, FlushPolicy, LogConfig, LogError, LogId, LogIndex, Offset, PartitionLog, WritePos,
};

use crate::support::{control_frame, frame, stamped};

/// Seeds in the default run; `STAVE_SOAK=1` multiplies them by `SOAK_FACTOR`.
const SEEDS_COUNT: u64 = 300;
const SOAK_FACTOR: u64 = 20;
/// Power cuts per seed, at most.
const CYCLES_MAX: u32 = 3;
/// Operations between two power cuts, at most.
const STEPS_MAX: u32 = 60;
/// Attempts to open a log whose recovery itself may crash.
const RECOVERY_ATTEMPTS_MAX: u32 = 4;
/// Where in the disk's tree the partition lives.
const DIR: &str = "/stave/partition-0";
/// Kinds of operation that every full run must have crashed inside at least once.
const SITES_REQUIRED: &[&str] = &[
    "create",
    "append",
    "roll",
    "flush",
    "truncate/remove",
    "truncate/cut",
    "purge/flush",
    "purge/meta",
    "purge/remove",
    "reset/meta",
    "reset/remove",
    "reset/create",
    "reopen",
    "recovery",
];

/// Runs every seed of the power-cut schedule (or the one named by `STAVE_SEED`) and checks,
/// after each power cut, that the recovered log keeps every acknowledged entry, holds nothing
/// that was not written or was truncated, shows each interrupted operation as done or not
/// done, and takes appends again. Over the whole run, crashes must have landed inside every
/// kind of operation (creation, append, roll, flush, truncation, purge, reset, reopen and
/// recovery).
#[test]
fn power_cuts_keep_acknowledged_entries_and_never_resurrect_removed_ones() {
    let seeds: Vec<u64> = match std::env::var("STAVE_SEED") {
        Ok(seed) => vec![seed.parse().expect("STAVE_SEED is a number")],
        Err(_) => {
            let soak = std::env::var("STAVE_SOAK").is_ok_and(|v| v == "1");
            (0..SEEDS_COUNT * if soak { SOAK_FACTOR } else { 1 }).collect()
        }
    };
    let mut sites: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failed: Vec<(u64, String)> = Vec::new();
    for &seed in &seeds {
        let mut run = Run::new(seed);
        let outcome = catch_unwind(AssertUnwindSafe(|| run.run()));
        if let Err(panic) = outcome {
            let message = panic_message(panic.as_ref());
            eprintln!("power-cut schedule failed: {message}; last operations:");
            for line in run.history.iter().rev().take(40).rev() {
                eprintln!("  {line}");
            }
            eprintln!("replay with STAVE_SEED={seed}");
            if seeds.len() == 1 {
                resume_unwind(panic);
            }
            failed.push((seed, message));
        }
        for (site, count) in run.sites {
            *sites.entry(site).or_default() += count;
        }
    }
    eprintln!("crash sites over {} seeds: {sites:?}", seeds.len());
    if let Some((seed, message)) = failed.first() {
        let failed_seeds: Vec<u64> = failed.iter().map(|(seed, _)| *seed).collect();
        panic!(
            "{} of {} seeds failed ({failed_seeds:?}); the first: {message}; replay with STAVE_SEED={seed}",
            failed.len(),
            seeds.len()
        );
    }
    if seeds.len() as u64 >= SEEDS_COUNT {
        for site in SITES_REQUIRED {
            assert!(
                sites.get(site).is_some_and(|&n| n > 0),
                "no crash landed in {site}: {sites:?}"
            );
        }
    }
}

/// Regression for seed 40 of the schedule above: power is lost while the log is being
/// created, at each of its creation's mutating calls in turn, under every way the disk may
/// keep or tear what was not synced. The log never held an entry, so it must then open empty
/// and take appends; a half-written first `meta` store must not make it unopenable.
#[test]
fn a_power_cut_while_creating_the_log_leaves_one_that_opens_empty() {
    let config = LogConfig {
        background_flusher: false,
        ..crate::support::small_config()
    };
    for crash_at in 1..=12 {
        for cut_seed in 0..16 {
            for mode in [CrashMode::DropUnsynced, CrashMode::Reorder] {
                let sim = SimStorage::new();
                let storage: Arc<dyn Storage> = Arc::new(sim.clone());
                sim.crash_after(crash_at);
                let created = PartitionLog::open(storage.clone(), DIR, config.clone());
                if !sim.crashed() {
                    assert!(created.is_ok(), "creation failed without a crash");
                    continue;
                }
                assert!(
                    created.is_err(),
                    "creation returned Ok although the disk failed"
                );
                sim.power_cut(cut_seed, mode);
                let case = format!("crash at call {crash_at}, power cut {cut_seed} {mode:?}");
                let mut log = PartitionLog::open(storage, DIR, config.clone())
                    .unwrap_or_else(|err| panic!("{case}: the log does not open: {err}"));
                assert_eq!(log.next_index(), LogIndex(0), "{case}");
                assert_eq!(log.log_end_offset(), Offset(0), "{case}");
                let bytes = frame(1, 2, 10, 5);
                log.append(&bytes, LogId::new(1, 0)).unwrap();
                let read = log
                    .read_by_index(LogIndex(0), LogIndex(1), usize::MAX)
                    .unwrap();
                assert_eq!(
                    read[0].bytes[..],
                    stamped(&bytes, LogId::new(1, 0), Offset(0))[..]
                );
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(message), _) => message.clone(),
        (None, Some(message)) => (*message).to_owned(),
        (None, None) => "a panic without a message".to_owned(),
    }
}

/// What the test was doing when the crash struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Create,
    Append,
    Flush,
    Truncate,
    Purge,
    Reset,
    Reopen,
    Recover,
}

/// A mutating call on the simulated disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Remove,
    SyncDir,
    Allocate,
    Write,
    Sync,
}

/// The call the crash failed, and on which path.
#[derive(Debug, Clone)]
struct FailedCall {
    call: Call,
    path: PathBuf,
}

/// `SimStorage`, recording the first call that failed because of the crash, so that the test
/// can tell which part of an operation (a roll inside an append, the meta store of a purge...)
/// the crash hit.
#[derive(Debug, Clone)]
struct TracedStorage {
    sim: SimStorage,
    failed: Arc<Mutex<Option<FailedCall>>>,
}

fn note<T>(
    failed: &Mutex<Option<FailedCall>>,
    result: io::Result<T>,
    call: Call,
    path: &Path,
) -> io::Result<T> {
    // The simulated disk fails with `Other` only for the crash; `NotFound` is an answer.
    if let Err(err) = &result
        && err.kind() == io::ErrorKind::Other
    {
        let mut failed = failed.lock().unwrap();
        if failed.is_none() {
            *failed = Some(FailedCall {
                call,
                path: path.to_path_buf(),
            });
        }
    }
    result
}

impl TracedStorage {
    fn take_failed(&self) -> Option<FailedCall> {
        self.failed.lock().unwrap().take()
    }
}

impl Storage for TracedStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list_dir(dir)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = note(
            &self.failed,
            self.sim.open(path, create),
            Call::Create,
            path,
        )?;
        Ok(Arc::new(TracedFile {
            inner,
            path: path.to_path_buf(),
            failed: self.failed.clone(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        note(&self.failed, self.sim.remove_file(path), Call::Remove, path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        note(&self.failed, self.sim.sync_dir(dir), Call::SyncDir, dir)
    }

    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        self.sim.available_bytes(path)
    }
}

#[derive(Debug)]
struct TracedFile {
    inner: Arc<dyn StorageFile>,
    path: PathBuf,
    failed: Arc<Mutex<Option<FailedCall>>>,
}

impl StorageFile for TracedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let result = self.inner.allocate(len);
        note(&self.failed, result, Call::Allocate, &self.path)
    }

    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        let result = self.inner.write_all_at(bufs, pos);
        note(&self.failed, result, Call::Write, &self.path)
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }

    fn view(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.inner.view(pos, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        note(&self.failed, self.inner.sync_data(), Call::Sync, &self.path)
    }
}

/// Names the part of an operation that a crash interrupted. `tail_base` is the tail
/// segment's base when the operation began: during an append, any call on another segment,
/// any sync and any creation belong to a roll.
fn crash_site(phase: Phase, failed: &FailedCall, tail_base: LogIndex) -> &'static str {
    let name = failed
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let on_tail = name.starts_with(&format!("{:020}.", tail_base.0));
    let on_meta = name == "meta";
    let dir_call = matches!(failed.call, Call::Remove | Call::SyncDir);
    match phase {
        Phase::Create => "create",
        Phase::Append => {
            let rolling = matches!(failed.call, Call::Sync | Call::SyncDir | Call::Create);
            if rolling || !on_tail {
                "roll"
            } else {
                "append"
            }
        }
        Phase::Flush => "flush",
        Phase::Truncate if dir_call => "truncate/remove",
        Phase::Truncate => "truncate/cut",
        Phase::Purge if on_meta => "purge/meta",
        Phase::Purge if dir_call => "purge/remove",
        Phase::Purge => "purge/flush",
        Phase::Reset if on_meta => "reset/meta",
        Phase::Reset if failed.call == Call::Remove => "reset/remove",
        Phase::Reset => "reset/create",
        Phase::Reopen => "reopen",
        Phase::Recover => "recovery",
    }
}

/// One entry the program appended.
#[derive(Debug, Clone)]
struct Entry {
    id: LogId,
    frame_type: FrameType,
    base_offset: Offset,
    record_count: u32,
    /// The frame as appended (unstamped).
    frame: Arc<Vec<u8>>,
    /// The append's position in the current log instance, until the entry is acknowledged.
    pos: Option<WritePos>,
    acked: bool,
}

impl Entry {
    fn next_offset(&self) -> Offset {
        Offset(self.base_offset.0 + u64::from(self.record_count))
    }

    /// What every read must return for this entry.
    fn stored(&self) -> Vec<u8> {
        stamped(&self.frame, self.id, self.base_offset)
    }
}

/// Where the log starts, as `meta` stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Start {
    first: LogIndex,
    offset: Offset,
    last_purged: Option<LogId>,
}

/// An operation that the crash interrupted, whose effect may or may not be on disk.
#[derive(Debug, Clone, Copy)]
enum InFlight {
    /// Entries from the cut on are no longer required.
    Truncate,
    /// The log may start here instead.
    Purge(Start),
    /// The log may be empty, starting here.
    Reset(Start),
}

/// What the program wrote and was told, in Raft order.
#[derive(Debug)]
struct Model {
    start: Start,
    /// Entries from `start.first` on, contiguous.
    entries: Vec<Entry>,
    in_flight: Option<InFlight>,
}

impl Model {
    fn next_index(&self) -> LogIndex {
        LogIndex(self.start.first.0 + self.entries.len() as u64)
    }

    fn end_offset(&self) -> Offset {
        self.entries
            .last()
            .map_or(self.start.offset, Entry::next_offset)
    }

    fn entry(&self, index: LogIndex) -> &Entry {
        &self.entries[(index.0 - self.start.first.0) as usize]
    }

    /// Marks every entry whose append position is at or below `durable` as acknowledged.
    fn acknowledge(&mut self, durable: WritePos) {
        for entry in &mut self.entries {
            if entry.pos.is_some_and(|pos| pos <= durable) {
                entry.acked = true;
                entry.pos = None;
            }
        }
    }

    /// After a recovery or a clean reopen: what is on disk is durable, and positions of the
    /// old log instance mean nothing to the new one.
    fn all_on_disk(&mut self) {
        for entry in &mut self.entries {
            entry.acked = true;
            entry.pos = None;
        }
        self.in_flight = None;
    }
}

/// The `on_durable` completions of one log instance: the highest position reported durable.
type Acks = Arc<Mutex<Option<WritePos>>>;

/// One seed's schedule.
struct Run {
    seed: u64,
    rng: StdRng,
    storage: TracedStorage,
    config: LogConfig,
    log: Option<PartitionLog>,
    acks: Acks,
    model: Model,
    term: u64,
    frames_made: u64,
    history: Vec<String>,
    sites: BTreeMap<&'static str, u64>,
}

/// An operation chosen by the schedule.
#[derive(Debug, Clone, Copy)]
enum Op {
    Append,
    Flush,
    Truncate,
    Purge,
    Reset,
    Reopen,
    Check,
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = LogConfig {
            segment_bytes: rng.random_range(4096..=16384),
            segment_ms: None,
            extent_bytes: 4096,
            index_interval_bytes: rng.random_range(64..=1024),
            flush: FlushPolicy::Always,
            background_flusher: false,
            clock: Clock::Manual(Arc::new(AtomicI64::new(1_700_000_000_000))),
            ..LogConfig::default()
        };
        Run {
            seed,
            rng,
            storage: TracedStorage {
                sim: SimStorage::new(),
                failed: Arc::default(),
            },
            config,
            log: None,
            acks: Acks::default(),
            model: Model {
                start: Start {
                    first: LogIndex(0),
                    offset: Offset(0),
                    last_purged: None,
                },
                entries: Vec::new(),
                in_flight: None,
            },
            term: 1,
            frames_made: 0,
            history: Vec::new(),
            sites: BTreeMap::new(),
        }
    }

    fn run(&mut self) {
        self.history.push(format!(
            "seed {}: segment_bytes {}, index_interval_bytes {}",
            self.seed, self.config.segment_bytes, self.config.index_interval_bytes
        ));
        if self.rng.random_bool(0.1) {
            let after = self.rng.random_range(1..=8);
            self.arm(after);
        }
        if self.open(Phase::Create) {
            self.power_cut_and_recover();
        } else {
            self.disarm();
        }
        let cycles = self.rng.random_range(1..=CYCLES_MAX);
        for _ in 0..cycles {
            let steps = self.rng.random_range(5..=STEPS_MAX);
            let arm_at = self.rng.random_range(0..steps);
            for step in 0..steps {
                let targeted = step == arm_at;
                if targeted {
                    let after = if self.rng.random_bool(0.7) {
                        self.rng.random_range(1..=6)
                    } else {
                        self.rng.random_range(1..=40)
                    };
                    self.arm(after);
                }
                let op = self.choose(targeted);
                if self.step(op) {
                    break;
                }
            }
            self.power_cut_and_recover();
        }
    }

    /// Right after arming a crash, every kind of mutating operation is equally likely, so
    /// that crashes land in the rare ones too.
    fn choose(&mut self, targeted: bool) -> Op {
        if targeted {
            const OPS: [Op; 6] = [
                Op::Append,
                Op::Flush,
                Op::Truncate,
                Op::Purge,
                Op::Reset,
                Op::Reopen,
            ];
            return OPS[self.rng.random_range(0..OPS.len())];
        }
        match self.rng.random_range(0..100) {
            0..50 => Op::Append,
            50..64 => Op::Flush,
            64..73 => Op::Truncate,
            73..82 => Op::Purge,
            82..86 => Op::Reset,
            86..91 => Op::Reopen,
            _ => Op::Check,
        }
    }

    fn arm(&mut self, after: u64) {
        self.history
            .push(format!("arm crash at mutating call {after} from now"));
        self.storage.sim.crash_after(after);
    }

    fn disarm(&mut self) {
        self.storage.sim.crash_after(1 << 60);
    }

    fn log(&self) -> &PartitionLog {
        self.log
            .as_ref()
            .expect("the log is open between operations")
    }

    fn log_mut(&mut self) -> &mut PartitionLog {
        self.log
            .as_mut()
            .expect("the log is open between operations")
    }

    fn check_live(&mut self) {
        let log = self
            .log
            .as_ref()
            .expect("the log is open between operations");
        check_live(log, &self.model, &mut self.rng);
    }

    fn tail_base(&self) -> LogIndex {
        self.log.as_ref().map_or(LogIndex(0), |log| {
            *log.segment_bases().last().expect("a log has a tail")
        })
    }

    /// Runs one operation. Returns whether the crash struck.
    fn step(&mut self, op: Op) -> bool {
        match op {
            Op::Append => self.append(),
            Op::Flush => self.flush(),
            Op::Truncate => self.truncate(),
            Op::Purge => self.purge(),
            Op::Reset => self.reset(),
            Op::Reopen => self.reopen(),
            Op::Check => {
                self.history.push("check".into());
                self.check_live();
                false
            }
        }
    }

    /// Settles an operation: records acknowledgements, and, if the disk failed under it,
    /// where. Returns whether the crash struck. An error without a crash fails the test.
    fn settle<T>(
        &mut self,
        phase: Phase,
        tail_base: LogIndex,
        result: &Result<T, LogError>,
    ) -> bool {
        self.collect_acks();
        if !self.storage.sim.crashed() {
            if let Err(err) = result {
                panic!("{phase:?} failed without a crash: {err}");
            }
            return false;
        }
        assert!(
            result.is_err(),
            "{phase:?} returned Ok although the disk failed under it"
        );
        let failed = self
            .storage
            .take_failed()
            .expect("a crash fails the call it strikes");
        let site = crash_site(phase, &failed, tail_base);
        self.history.push(format!(
            "crash in {site}: {:?} {}",
            failed.call,
            failed.path.display()
        ));
        *self.sites.entry(site).or_default() += 1;
        true
    }

    fn collect_acks(&mut self) {
        let durable = *self.acks.lock().unwrap();
        if let Some(durable) = durable {
            self.model.acknowledge(durable);
        }
    }

    fn next_frame(&mut self) -> (Vec<u8>, FrameType) {
        self.frames_made += 1;
        let seed = self.seed << 24 | self.frames_made;
        if self.rng.random_bool(0.1) {
            let len = self.rng.random_range(0..=64);
            return (control_frame(seed, len), FrameType::Blank);
        }
        let count = self.rng.random_range(1..=4);
        // Now and then a frame larger than a whole segment.
        let value_len = if self.rng.random_bool(0.03) {
            self.rng.random_range(2000..=6000)
        } else {
            self.rng.random_range(0..=700)
        };
        let timestamp = 1_700_000_000_000 + self.frames_made as i64 * 10;
        (frame(seed, count, value_len, timestamp), FrameType::Data)
    }

    fn append(&mut self) -> bool {
        if self.rng.random_bool(0.05) {
            self.term += 1;
        }
        let count = self.rng.random_range(1..=5);
        let mut entries = Vec::with_capacity(count);
        let mut index = self.model.next_index();
        let mut offset = self.model.end_offset();
        for _ in 0..count {
            let (bytes, frame_type) = self.next_frame();
            let (_, body) = stave_log::frame::check_frame(&bytes, false).unwrap();
            let entry = Entry {
                id: LogId::new(self.term, index.0),
                frame_type,
                base_offset: offset,
                record_count: body.record_count,
                frame: Arc::new(bytes),
                pos: None,
                acked: false,
            };
            offset = entry.next_offset();
            index = index.next();
            entries.push(entry);
        }
        self.history.push(format!(
            "append {} frames at {} ({} bytes)",
            count,
            entries[0].id,
            entries.iter().map(|e| e.frame.len()).sum::<usize>()
        ));
        let tail_base = self.tail_base();
        let result = self
            .log_mut()
            .append_all(entries.iter().map(|e| (e.frame.as_slice(), e.id)));
        if let Ok(appended) = &result {
            assert_eq!(appended.len(), entries.len());
            for (got, entry) in appended.iter().zip(&mut entries) {
                assert_eq!(got.log_id, entry.id);
                assert_eq!(got.base_offset, entry.base_offset, "append at {}", entry.id);
                assert_eq!(got.next_offset, entry.next_offset());
                entry.pos = Some(got.pos);
            }
            let pos = appended[0].pos;
            let acks = self.acks.clone();
            self.log().on_durable(
                pos,
                Box::new(move |result| {
                    if result.is_ok() {
                        let mut durable = acks.lock().unwrap();
                        *durable = (*durable).max(Some(pos));
                    }
                }),
            );
        }
        // Written or not, the frames may be on disk now.
        self.model.entries.extend(entries);
        self.settle(Phase::Append, tail_base, &result)
    }

    fn flush(&mut self) -> bool {
        self.history.push("flush".into());
        let tail_base = self.tail_base();
        let result = self.log().flush();
        let crashed = self.settle(Phase::Flush, tail_base, &result);
        if !crashed {
            self.assert_all_acknowledged("flush");
        }
        crashed
    }

    /// A sync covers every append before it: nothing may be left waiting.
    fn assert_all_acknowledged(&self, after: &str) {
        if let Some(entry) = self.model.entries.iter().find(|e| !e.acked) {
            panic!("{} is not acknowledged after {after}", entry.id);
        }
    }

    fn truncate(&mut self) -> bool {
        let (first, next) = (self.model.start.first.0, self.model.next_index().0);
        let cut = LogIndex(self.rng.random_range(first..=next));
        let last_kept = cut.0.checked_sub(1).map(LogIndex);
        self.history.push(format!(
            "truncate_after({last_kept:?}) of [{first}, {next})"
        ));
        let tail_base = self.tail_base();
        let result = self.log_mut().truncate_after(last_kept);
        let crashed = self.settle(Phase::Truncate, tail_base, &result);
        let kept = (cut.0 - first) as usize;
        if crashed {
            for entry in &mut self.model.entries[kept..] {
                entry.acked = false;
            }
            self.model.in_flight = Some(InFlight::Truncate);
        } else {
            self.model.entries.truncate(kept);
            if self.rng.random_bool(0.5) {
                self.term += 1;
            }
        }
        crashed
    }

    fn purge(&mut self) -> bool {
        let (first, next) = (self.model.start.first.0, self.model.next_index().0);
        if first == next {
            return false;
        }
        let index = LogIndex(self.rng.random_range(first..next));
        let purged = self.model.entry(index);
        let after = Start {
            first: index.next(),
            offset: purged.next_offset(),
            last_purged: Some(purged.id),
        };
        self.history
            .push(format!("purge_to({index}) of [{first}, {next})"));
        let tail_base = self.tail_base();
        let result = self.log_mut().purge_to(index);
        let crashed = self.settle(Phase::Purge, tail_base, &result);
        if crashed {
            self.model.in_flight = Some(InFlight::Purge(after));
        } else {
            self.assert_all_acknowledged("purge (which syncs first)");
            self.model.entries.drain(..(after.first.0 - first) as usize);
            self.model.start = after;
        }
        crashed
    }

    fn reset(&mut self) -> bool {
        if self.rng.random_bool(0.5) {
            self.term += 1;
        }
        let (first, next) = (self.model.start.first.0, self.model.next_index().0);
        let index = self.rng.random_range(first.saturating_sub(3)..=next + 10);
        let last = LogId::new(self.term, index);
        let offset = Offset(self.model.end_offset().0 + self.rng.random_range(0..50));
        let after = Start {
            first: last.index.next(),
            offset,
            last_purged: Some(last),
        };
        self.history
            .push(format!("reset_to({last}, {offset}) of [{first}, {next})"));
        let tail_base = self.tail_base();
        let result = self.log_mut().reset_to(last, offset);
        let crashed = self.settle(Phase::Reset, tail_base, &result);
        if crashed {
            self.model.in_flight = Some(InFlight::Reset(after));
        } else {
            self.model.entries.clear();
            self.model.start = after;
        }
        crashed
    }

    fn reopen(&mut self) -> bool {
        self.history.push("reopen".into());
        let tail_base = self.tail_base();
        // Dropping the log syncs it (best effort: a failed sync shows as a crashed disk).
        drop(self.log.take());
        self.collect_acks();
        if self.storage.sim.crashed() {
            let closed: Result<(), LogError> = Err(LogError::Stopped {
                path: PathBuf::from(DIR),
            });
            return self.settle(Phase::Reopen, tail_base, &closed);
        }
        self.assert_all_acknowledged("a clean close");
        if self.open(Phase::Reopen) {
            return true;
        }
        self.check_live();
        self.model.all_on_disk();
        false
    }

    /// Opens the log over the disk. Returns whether the crash struck.
    fn open(&mut self, phase: Phase) -> bool {
        self.acks = Acks::default();
        let storage: Arc<dyn Storage> = Arc::new(self.storage.clone());
        let result = PartitionLog::open(storage, DIR, self.config.clone());
        let crashed = self.settle(phase, LogIndex(0), &result);
        self.log = result.ok();
        crashed
    }

    /// Loses power, reopens (recovery may itself crash, and is then retried after another
    /// power cut), checks the recovered log against the model, and appends to it.
    fn power_cut_and_recover(&mut self) {
        for attempt in 0..RECOVERY_ATTEMPTS_MAX {
            let mode = if self.rng.random_bool(0.5) {
                CrashMode::DropUnsynced
            } else {
                CrashMode::Reorder
            };
            let cut_seed = self.rng.random();
            self.history.push(format!("power cut {mode:?} {cut_seed}"));
            self.storage.sim.power_cut(cut_seed, mode);
            self.storage.take_failed();
            // Handles of the old instance fail now: its waiters get errors, not acks.
            drop(self.log.take());
            let last = attempt + 1 == RECOVERY_ATTEMPTS_MAX;
            if !last && self.rng.random_bool(0.2) {
                let after = self.rng.random_range(1..=6);
                self.arm(after);
            }
            self.history.push("recover".into());
            if !self.open(Phase::Recover) {
                break;
            }
        }
        self.disarm();
        let log = self
            .log
            .as_ref()
            .expect("recovery succeeds once nothing crashes");
        check_recovered(log, &mut self.model, &mut self.rng);
        self.history.push(format!(
            "recovered [{}, {})",
            self.model.start.first,
            self.model.next_index()
        ));
        // The log takes appends again, and serves them back.
        let crashed = self.append() || self.flush();
        assert!(!crashed, "no crash is armed after recovery");
        self.check_live();
    }
}

/// Checks a log that has not lost power against the model: same bounds, same entries.
fn check_live(log: &PartitionLog, model: &Model, rng: &mut StdRng) {
    check_entries(log, &model.start, &model.entries, rng);
}

/// Checks a recovered log against the model, then makes the model what was recovered.
fn check_recovered(log: &PartitionLog, model: &mut Model, rng: &mut StdRng) {
    let found = Start {
        first: log.first_index(),
        offset: log.log_start_offset(),
        last_purged: log.state().last_purged,
    };
    match model.in_flight {
        Some(InFlight::Reset(after)) if found == after && log.next_index() == after.first => {
            model.start = after;
            model.entries.clear();
        }
        Some(InFlight::Purge(after)) if found == after => {
            model
                .entries
                .drain(..(after.first.0 - model.start.first.0) as usize);
            model.start = after;
        }
        _ => assert_eq!(
            found, model.start,
            "the recovered start is neither the one before nor the one after the last operation ({:?})",
            model.in_flight
        ),
    }
    let next = log.next_index();
    assert!(
        next >= found.first && next <= model.next_index(),
        "recovered log ends at {next}, outside [{}, {}]: entries that were never written or were truncated",
        found.first,
        model.next_index()
    );
    let kept = (next.0 - found.first.0) as usize;
    if let Some(lost) = model.entries[kept..].iter().find(|e| e.acked) {
        panic!(
            "acknowledged entry {} (base offset {}) lost: the log ends at {next}",
            lost.id, lost.base_offset
        );
    }
    model.entries.truncate(kept);
    check_entries(log, &model.start, &model.entries, rng);
    model.all_on_disk();
}

/// Checks the log's bounds and every entry: by Raft index (one call and frame by frame) and
/// data frames by offset (in runs with random byte budgets, and at random records).
fn check_entries(log: &PartitionLog, start: &Start, entries: &[Entry], rng: &mut StdRng) {
    let next = LogIndex(start.first.0 + entries.len() as u64);
    let end_offset = entries.last().map_or(start.offset, Entry::next_offset);
    let last = entries.last().map(|e| e.id).or(start.last_purged);
    assert_eq!(log.first_index(), start.first, "first index");
    assert_eq!(log.next_index(), next, "next index");
    assert_eq!(log.log_start_offset(), start.offset, "log start offset");
    assert_eq!(log.log_end_offset(), end_offset, "log end offset");
    assert_eq!(log.state().last_purged, start.last_purged, "last purged");
    assert_eq!(log.last_log_id(), last, "last log id");
    let bases = log.segment_bases();
    assert!(bases.windows(2).all(|w| w[0] < w[1]), "segments {bases:?}");
    assert!(
        bases[0] <= start.first,
        "segments {bases:?} start after {}",
        start.first
    );

    let frames = log.read_by_index(start.first, next, usize::MAX).unwrap();
    assert_eq!(frames.len(), entries.len(), "frames read by index");
    for (frame, entry) in frames.iter().zip(entries) {
        assert_eq!(frame.log_id, entry.id);
        assert_eq!(frame.frame_type, entry.frame_type, "type of {}", entry.id);
        assert_eq!(
            frame.base_offset, entry.base_offset,
            "base offset of {}",
            entry.id
        );
        assert_eq!(frame.record_count, entry.record_count);
        assert!(
            frame.bytes[..] == entry.stored()[..],
            "bytes of {} differ from those appended",
            entry.id
        );
    }
    if !entries.is_empty() {
        for _ in 0..3 {
            let i = rng.random_range(0..entries.len());
            let from = entries[i].id.index;
            let one = log.read_by_index(from, next, 1).unwrap();
            assert_eq!(one.len(), 1, "a byte budget of 1 still returns one frame");
            assert_eq!(one[0].log_id, entries[i].id);
        }
    }

    let data: Vec<&Entry> = entries.iter().filter(|e| e.frame_type.is_data()).collect();
    let mut from = start.offset;
    let mut expected = data.iter();
    while from < end_offset {
        let budget = rng.random_range(1..4000);
        let read = log.read(from, budget).unwrap();
        assert!(
            !read.is_empty(),
            "read at {from} returned nothing before the end"
        );
        let mut count = 0;
        for chunk in &read.chunks {
            for batch in BatchView::split(chunk) {
                let batch = batch.unwrap();
                let entry = expected
                    .next()
                    .expect("read returned frames past the model");
                assert!(
                    batch.frame()[..] == entry.stored()[..],
                    "read at {from} returned other bytes for {}",
                    entry.id
                );
                count += 1;
            }
        }
        assert!(
            count == 1 || read.len_bytes() <= budget,
            "read over its budget"
        );
        from = read.next_offset;
    }
    assert!(
        expected.next().is_none(),
        "data frames missing from reads by offset"
    );
    for _ in 0..3 {
        if data.is_empty() {
            break;
        }
        let entry = data[rng.random_range(0..data.len())];
        let offset =
            Offset(entry.base_offset.0 + rng.random_range(0..u64::from(entry.record_count)));
        let read = log.read_until(offset, end_offset, 1).unwrap();
        let batch = read.batches().next().expect("a record is there").unwrap();
        assert_eq!(
            batch.header().log_id,
            entry.id,
            "frame holding offset {offset}"
        );
        let header: &FrameHeader = batch.header();
        assert!(header.base_offset <= offset && offset < batch.next_offset());
    }
}

/// Under `flush=never` and `flush=interval` a roll does not sync the segment it seals, so a
/// power cut may leave a sealed segment short. Proves the log still opens (cutting there and
/// dropping what came after), holds a prefix of what was written with every byte intact, and
/// takes appends afterwards; under `always` the same damage would be reported as corruption.
#[test]
fn a_power_cut_under_flush_never_leaves_an_openable_prefix() {
    let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(i, 2, 300, i as i64)).collect();
    for seed in 0..200u64 {
        let storage = SimStorage::new();
        let shared: Arc<dyn Storage> = Arc::new(storage.clone());
        let flush = if seed % 3 == 0 {
            FlushPolicy::Interval(std::time::Duration::from_secs(3600))
        } else {
            FlushPolicy::Never
        };
        let config = LogConfig {
            flush,
            segment_bytes: 4096,
            extent_bytes: 4096,
            index_interval_bytes: 256,
            background_flusher: false,
            ..LogConfig::default()
        };
        let dir = Path::new("/never");
        let mut log = PartitionLog::open(shared.clone(), dir, config.clone()).unwrap();
        let mut offset = Offset(0);
        let mut expected = Vec::new();
        for (i, body) in frames.iter().enumerate() {
            let appended = log.append(body, LogId::new(1, i as u64)).unwrap();
            expected.push(stamped(body, appended.log_id, offset));
            offset = appended.next_offset;
        }
        assert!(
            log.segment_bases().len() > 3,
            "seed {seed}: the run must roll"
        );
        drop(log);
        let mode = if seed % 2 == 0 {
            CrashMode::DropUnsynced
        } else {
            CrashMode::Reorder
        };
        storage.power_cut(seed, mode);
        let mut log = PartitionLog::open(shared.clone(), dir, config.clone())
            .unwrap_or_else(|err| panic!("seed {seed}: reopen failed: {err}"));
        let next = log.next_index();
        let stored = log.read_by_index(LogIndex(0), next, usize::MAX).unwrap();
        assert_eq!(stored.len() as u64, next.0, "seed {seed}");
        for (i, frame) in stored.iter().enumerate() {
            assert_eq!(
                frame.bytes.as_ref(),
                expected[i].as_slice(),
                "seed {seed}: frame {i}"
            );
        }
        let appended = log.append(&frames[0], LogId::new(2, next.0)).unwrap();
        assert_eq!(appended.log_id.index, next, "seed {seed}");
    }
}

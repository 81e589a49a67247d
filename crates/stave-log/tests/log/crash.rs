//! The SIGKILL crash test: a child process appends under `flush=always` and reports every
//! frame the log tells it is durable; the parent kills it with SIGKILL at a random moment,
//! reopens the log and checks that every reported frame is there with its exact bytes,
//! exactly once, and that nothing partial can be read. Then the next round's child recovers
//! the same directory and carries on.
//!
//! The child is this test binary, re-executed with `crash::child_writer` as its only test.
//! Every frame's bytes are a function of its first offset and record number
//! (`record_value`), so the parent checks any frame without being told what was written.
//! SIGKILL keeps the page cache, so this proves recovery and the acknowledgement contract,
//! not power-cut durability (`power_cut.rs` covers that with `SimStorage`).
//!
//! Replay a failure with `STAVE_SEED=<seed>`; `STAVE_SOAK=1` runs ten times as many rounds.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_log::batch::{BatchBuilder, BatchView, Record};
use stave_log::frame::{FrameType, HEADER_LEN, encode_control_frame};
use stave_log::{FlushPolicy, LogConfig, LogId, LogIndex, Offset, PartitionLog};

use crate::support::{open_fs, value_for};

/// Tells a re-executed test binary that it is the child, and where the log is.
const CHILD_DIR_ENV: &str = "STAVE_CRASH_CHILD_DIR";
/// The child's seed (sizes and record counts of its frames).
const CHILD_SEED_ENV: &str = "STAVE_CRASH_CHILD_SEED";
/// The Raft term the child appends at: one more every round, as after an election.
const CHILD_TERM_ENV: &str = "STAVE_CRASH_CHILD_TERM";
/// The child's test, as libtest names it.
const CHILD_TEST: &str = "crash::every_frame_reported_durable_survives_sigkill_exactly_once";

/// Rounds per directory; `STAVE_SOAK` runs `SOAK_DIRS` directories one after the other (one
/// ever-growing log would make every verification slower than the last).
const ROUNDS: usize = 30;
const SOAK_DIRS: usize = 10;
/// A round kills the child after between 1 and this many durable frames.
const KILL_AFTER_FRAMES_MAX: u64 = 400;
/// A child that reports nothing for this long is stuck: the round fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Appends the child keeps in flight (written, durability not yet reported).
const IN_FLIGHT_MAX: u64 = 48;
/// Bounds on a child nobody kills (a parent that died without reaping it).
const CHILD_APPENDS_MAX: u64 = 200_000;
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

/// One line per durable frame: `durable <base_offset> <record_count>`.
const DURABLE: &str = "@child-durable";
/// Printed once the child has opened (recovered) the log and appended its blank frame.
const OPENED: &str = "@child-opened";
/// Printed by the child when a completion arrives for a lower position than one before it.
const OUT_OF_ORDER: &str = "@child-out-of-order";

fn crash_config() -> LogConfig {
    LogConfig {
        segment_bytes: 32 * 1024,
        extent_bytes: 4096,
        index_interval_bytes: 1024,
        flush: FlushPolicy::Always,
        background_flusher: true,
        ..LogConfig::default()
    }
}

/// The value of record `record` of the frame whose first offset is `base_offset`.
fn record_value(base_offset: u64, record: u32) -> Vec<u8> {
    let len = (base_offset.wrapping_mul(31) + u64::from(record) * 17) % 300;
    value_for(base_offset, record, len as usize)
}

/// The data frame the child appends at `base_offset`.
fn data_frame(base_offset: u64, record_count: u32) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for record in 0..record_count {
        let value = record_value(base_offset, record);
        let key = format!("{base_offset}/{record}");
        builder.push(&Record {
            timestamp: base_offset as i64,
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
        });
    }
    builder.finish()
}

// ---------------------------------------------------------------------------------------------
// The child.

/// The child: the crash test re-runs itself in a child process with `STAVE_CRASH_CHILD_DIR`
/// set, and then runs this. It recovers the log, appends a blank frame for its term, then
/// appends data frames forever with many in flight, printing a line for each frame the log
/// reports durable, until it is killed.
fn child_writer(dir: std::ffi::OsString) {
    let seed: u64 = env_number(CHILD_SEED_ENV);
    let term: u64 = env_number(CHILD_TERM_ENV);
    let mut log = open_fs(Path::new(&dir), crash_config());
    let blank = encode_control_frame(FrameType::Blank, &term.to_le_bytes());
    let index = log.next_index();
    log.append(&blank, LogId::new(term, index.0)).unwrap();
    let mut out = std::io::stdout().lock();
    // A newline first: libtest may have left "test crash::... " unterminated.
    if writeln!(out, "\n{OPENED} {}", log.log_end_offset()).is_err() || out.flush().is_err() {
        return;
    }
    drop(out);
    ChildWriter::new(log, seed, term).run();
}

fn env_number(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{name} must be a number"))
}

struct ChildWriter {
    log: PartitionLog,
    rng: StdRng,
    term: u64,
    /// One message per completion that ran; `false` when the parent's pipe is gone.
    done_tx: Sender<bool>,
    done_rx: Receiver<bool>,
    /// The highest position a completion has reported, to catch reports out of order.
    reported: Arc<AtomicU64>,
}

impl ChildWriter {
    fn new(log: PartitionLog, seed: u64, term: u64) -> Self {
        let (done_tx, done_rx) = channel();
        ChildWriter {
            log,
            rng: StdRng::seed_from_u64(seed),
            term,
            done_tx,
            done_rx,
            reported: Arc::new(AtomicU64::new(0)),
        }
    }

    fn run(mut self) {
        let started = Instant::now();
        let mut in_flight = 0u64;
        for _ in 0..CHILD_APPENDS_MAX {
            if started.elapsed() > CHILD_LIFETIME {
                return;
            }
            self.append_some();
            in_flight += 1;
            // Count the completions that already ran; wait only when too many are in flight.
            loop {
                let done = if in_flight >= IN_FLIGHT_MAX {
                    self.done_rx.recv_timeout(STALL_TIMEOUT).ok()
                } else {
                    self.done_rx.try_recv().ok()
                };
                match done {
                    Some(true) => in_flight -= 1,
                    // The parent is gone: nothing left to report to.
                    Some(false) => return,
                    None if in_flight >= IN_FLIGHT_MAX => return,
                    None => break,
                }
            }
        }
    }

    /// Appends one to four data frames in one `append_all` and registers their completion.
    fn append_some(&mut self) {
        let frame_count = self.rng.random_range(1..=4u64);
        let mut base = self.log.log_end_offset().0;
        let first_index = self.log.next_index().0;
        let mut frames = Vec::new();
        for index in first_index..first_index + frame_count {
            let record_count = self.rng.random_range(1..=8u32);
            frames.push((data_frame(base, record_count), LogId::new(self.term, index)));
            base += u64::from(record_count);
        }
        let inputs = frames.iter().map(|(bytes, id)| (bytes.as_slice(), *id));
        let appended = self.log.append_all(inputs).unwrap();
        let mut lines = String::new();
        for frame in &appended {
            let count = frame.next_offset.0 - frame.base_offset.0;
            lines.push_str(&format!("{DURABLE} {} {count}\n", frame.base_offset));
        }
        let pos = appended[0].pos;
        let (done_tx, reported) = (self.done_tx.clone(), self.reported.clone());
        self.log.on_durable(
            pos,
            Box::new(move |result| {
                if let Err(err) = result {
                    lines = format!("failed {err}\n");
                }
                let previous = reported.fetch_max(pos.0, Ordering::SeqCst);
                if previous > pos.0 {
                    lines.push_str(&format!("{OUT_OF_ORDER} {} after {previous}\n", pos.0));
                }
                // One write per completion: a pipe write this small is atomic, so a kill never
                // leaves half a line for the parent.
                let mut out = std::io::stdout().lock();
                let sent = out.write_all(lines.as_bytes()).is_ok() && out.flush().is_ok();
                let _ = done_tx.send(sent);
            }),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// Kills and reaps the child when dropped, so that a failed assertion never leaves a writer
/// running against the directory (or a zombie behind).
struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    fn kill_and_reap(&mut self) -> std::process::ExitStatus {
        // SIGKILL on unix. An error means it already exited; `wait` tells how.
        let _ = self.child.kill();
        self.reaped = true;
        self.child.wait().unwrap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A line from the child, or how its output ended.
enum Event {
    Line(String),
    /// The child closed stdout (it exited, or was killed).
    Closed,
}

/// Reads the child's stdout on a thread, so the parent can wait with a deadline.
fn spawn_reader(stdout: ChildStdout) -> (Receiver<Event>, JoinHandle<()>) {
    let (tx, rx) = channel();
    let handle = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                // A line cut by the kill has no newline: it was never a report.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if tx.send(Event::Line(line)).is_err() {
                        return;
                    }
                }
                _ => {
                    let _ = tx.send(Event::Closed);
                    return;
                }
            }
        }
    });
    (rx, handle)
}

/// Frames the children reported durable: base offset → record count, over every round.
#[derive(Default)]
struct Acknowledged {
    frames: BTreeMap<u64, u64>,
}

impl Acknowledged {
    /// Records one line of child output; returns whether it was a durable report.
    fn note(&mut self, line: &str, context: &str) -> bool {
        let line = line.trim();
        assert!(!line.starts_with("failed"), "{context}: child: {line}");
        assert!(
            !line.contains(OUT_OF_ORDER),
            "{context}: child reported {line}"
        );
        let Some(at) = line.find(DURABLE) else {
            return false;
        };
        let mut fields = line[at + DURABLE.len()..].split_whitespace();
        let mut number = || -> u64 {
            fields
                .next()
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("{context}: bad line {line:?}"))
        };
        let (base, count) = (number(), number());
        if let Some(previous) = self.frames.insert(base, count) {
            // The same offset reported twice must be the same frame (it cannot be: offsets
            // are only reported once the frame is durable, and durable frames never move).
            panic!("{context}: offset {base} reported twice ({previous} then {count} records)");
        }
        true
    }
}

/// How one round goes: after how many durable frames the child dies.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Right after spawning: the child may be anywhere in start-up or recovery.
    Spawn,
    /// Once it has opened the log and appended its blank frame.
    Opened,
    /// After this many durable reports.
    Durable(u64),
}

struct Round<'a> {
    dir: &'a Path,
    number: usize,
    seed: u64,
    kill_at: KillAt,
}

impl Round<'_> {
    fn context(&self) -> String {
        format!(
            "round {} (kill at {:?}, child seed {})",
            self.number, self.kill_at, self.seed
        )
    }

    /// Runs one child until the kill, recording what it reported.
    fn run(&self, acked: &mut Acknowledged) {
        let context = self.context();
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, self.dir)
            .env(CHILD_SEED_ENV, self.seed.to_string())
            .env(CHILD_TERM_ENV, (self.number + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut guard = ChildGuard {
            child,
            reaped: false,
        };
        let stdout = guard.child.stdout.take().expect("stdout is piped");
        let (lines, reader) = spawn_reader(stdout);
        if !matches!(self.kill_at, KillAt::Spawn) {
            self.wait_for_kill_point(&lines, acked, &context);
        }
        let status = guard.kill_and_reap();
        // Whatever the child wrote before it died is still in the pipe: every line counts.
        loop {
            match lines.recv_timeout(STALL_TIMEOUT) {
                Ok(Event::Line(line)) => {
                    acked.note(&line, &context);
                }
                Ok(Event::Closed) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{context}: stdout still open"),
            }
        }
        reader.join().unwrap();
        assert!(
            status.code().is_none(),
            "{context}: the child exited by itself: {status}"
        );
    }

    /// Reads lines until the kill point; fails if the child stalls or exits first.
    fn wait_for_kill_point(&self, lines: &Receiver<Event>, acked: &mut Acknowledged, ctx: &str) {
        let mut durable = 0u64;
        loop {
            let line = match lines.recv_timeout(STALL_TIMEOUT) {
                Ok(Event::Line(line)) => line,
                Ok(Event::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("{ctx}: the child exited before the kill ({durable} frames durable)")
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{ctx}: no report for {STALL_TIMEOUT:?} ({durable} frames durable)")
                }
            };
            if acked.note(&line, ctx) {
                durable += 1;
            }
            let reached = match self.kill_at {
                KillAt::Spawn => true,
                KillAt::Opened => line.contains(OPENED),
                KillAt::Durable(frames) => durable >= frames,
            };
            if reached {
                return;
            }
        }
    }
}

/// What a recovered log holds, read back in full.
#[derive(Debug, PartialEq, Eq)]
struct Recovered {
    last: Option<LogId>,
    next_index: LogIndex,
    log_end_offset: Offset,
    data_frames: u64,
}

/// Opens the log as recovery leaves it and checks every frame: dense indexes and offsets,
/// terms never going down, blank frames empty, data frames holding exactly the bytes the child
/// derived from their base offset; then that every acknowledged frame is among them.
fn verify(dir: &Path, acked: &Acknowledged, context: &str) -> Recovered {
    let log = open_fs(dir, crash_config());
    assert_eq!(log.first_index(), LogIndex(0), "{context}");
    assert_eq!(log.log_start_offset(), Offset(0), "{context}");
    let next_index = log.next_index();
    let frames = log
        .read_by_index(LogIndex(0), next_index, usize::MAX)
        .unwrap_or_else(|err| panic!("{context}: read_by_index: {err}"));
    assert_eq!(
        frames.len() as u64,
        next_index.0,
        "{context}: every index readable"
    );
    let mut data = BTreeMap::new();
    let mut offset = 0u64;
    let mut term = 0u64;
    for (i, frame) in frames.iter().enumerate() {
        let what = format!("{context}: frame {}", frame.log_id);
        assert_eq!(
            frame.log_id.index,
            LogIndex(i as u64),
            "{what}: dense indexes"
        );
        assert!(frame.log_id.term.0 >= term, "{what}: term went down");
        term = frame.log_id.term.0;
        assert_eq!(frame.base_offset, Offset(offset), "{what}: dense offsets");
        let view = BatchView::parse(frame.bytes.clone())
            .unwrap_or_else(|err| panic!("{what}: stored frame does not parse: {err}"));
        assert_eq!(
            view.frame().len(),
            frame.bytes.len(),
            "{what}: one whole frame"
        );
        if frame.frame_type == FrameType::Blank {
            assert_eq!(frame.record_count, 0, "{what}");
            assert_eq!(
                view.payload().as_ref(),
                term.to_le_bytes(),
                "{what}: blank payload"
            );
            continue;
        }
        assert_eq!(frame.frame_type, FrameType::Data, "{what}");
        let expected = data_frame(offset, frame.record_count);
        assert_eq!(
            &frame.bytes[HEADER_LEN..],
            &expected[HEADER_LEN..],
            "{what}: body bytes"
        );
        data.insert(offset, u64::from(frame.record_count));
        offset += u64::from(frame.record_count);
    }
    assert_eq!(log.log_end_offset(), Offset(offset), "{context}: log end");
    check_read_by_offset(&log, context);
    for (&base, &count) in &acked.frames {
        assert_eq!(
            data.get(&base),
            Some(&count),
            "{context}: acknowledged frame at offset {base} ({count} records) lost"
        );
    }
    Recovered {
        last: log.last_log_id(),
        next_index,
        log_end_offset: log.log_end_offset(),
        data_frames: data.len() as u64,
    }
}

/// Reads every record by offset: each offset exactly once, in order, with its value.
fn check_read_by_offset(log: &PartitionLog, context: &str) {
    let mut from = Offset(0);
    let mut expected_offset = 0u64;
    while from < log.log_end_offset() {
        let read = log
            .read(from, 256 * 1024)
            .unwrap_or_else(|err| panic!("{context}: read({from}): {err}"));
        assert!(!read.is_empty(), "{context}: read({from}) made no progress");
        for batch in read.batches() {
            let batch = batch.unwrap_or_else(|err| panic!("{context}: {err}"));
            let base = batch.base_offset().0;
            for (i, record) in batch.records().enumerate() {
                let record = record.unwrap_or_else(|err| panic!("{context}: {err}"));
                assert_eq!(
                    record.offset,
                    Offset(expected_offset),
                    "{context}: dense offsets"
                );
                let value = record_value(base, i as u32);
                assert_eq!(
                    record.value,
                    Some(value.as_slice()),
                    "{context}: record value"
                );
                expected_offset += 1;
            }
        }
        from = read.next_offset;
    }
    assert_eq!(
        expected_offset,
        log.log_end_offset().0,
        "{context}: every record read"
    );
}

fn seed() -> u64 {
    match std::env::var("STAVE_SEED") {
        Ok(text) => text.parse().expect("STAVE_SEED must be a number"),
        Err(_) => rand::rng().random(),
    }
}

fn kill_point(rng: &mut StdRng) -> KillAt {
    match rng.random_range(0..20) {
        0 => KillAt::Spawn,
        1 => KillAt::Opened,
        _ => KillAt::Durable(rng.random_range(1..=KILL_AFTER_FRAMES_MAX)),
    }
}

/// Rounds of: a child appends under `flush=always` with many appends in flight and reports
/// what the log says is durable; SIGKILL at a random report (or during start-up and
/// recovery); the parent reopens the log. Proves that every frame reported durable survives
/// with its exact bytes, exactly once at its offset, that recovery leaves only whole frames
/// with dense indexes and offsets, that recovering twice gives the same log, and that
/// durability reports never go back in write position.
#[test]
fn every_frame_reported_durable_survives_sigkill_exactly_once() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        return child_writer(dir);
    }
    let seed = seed();
    eprintln!("crash test: STAVE_SEED={seed}");
    let dirs = if std::env::var_os("STAVE_SOAK").is_some() {
        SOAK_DIRS
    } else {
        1
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut in_flight_rounds = 0;
    for _ in 0..dirs {
        in_flight_rounds += run_rounds(seed, &mut rng);
    }
    // Frames written but not yet reported when the child died are still there (SIGKILL keeps
    // the page cache): evidence that kills landed with appends in flight.
    assert!(
        in_flight_rounds > 0,
        "STAVE_SEED={seed}: no kill ever landed with an append in flight"
    );
}

/// Runs `ROUNDS` rounds in a fresh directory. Returns in how many rounds the log held frames
/// beyond those reported durable.
fn run_rounds(seed: u64, rng: &mut StdRng) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Acknowledged::default();
    let mut in_flight_rounds = 0;
    let mut data_frames_before = 0;
    for number in 0..ROUNDS {
        let acked_before = acked.frames.len() as u64;
        let round = Round {
            dir: dir.path(),
            number,
            seed: rng.random(),
            kill_at: kill_point(rng),
        };
        let context = format!("STAVE_SEED={seed} {}", round.context());
        round.run(&mut acked);
        let recovered = verify(dir.path(), &acked, &context);
        let again = verify(dir.path(), &acked, &context);
        assert_eq!(
            recovered, again,
            "{context}: a second recovery changed the log"
        );
        let acked_now = acked.frames.len() as u64 - acked_before;
        if recovered.data_frames - data_frames_before > acked_now {
            in_flight_rounds += 1;
        }
        data_frames_before = recovered.data_frames;
    }
    eprintln!(
        "crash test: {ROUNDS} rounds, {} frames acknowledged, {in_flight_rounds} rounds \
         killed with appends in flight",
        acked.frames.len()
    );
    in_flight_rounds
}

// ---------------------------------------------------------------------------------------------
// Acknowledgement order, which the child above checks statistically.

/// Two appends under `flush=always` with the flusher thread on: the flusher syncs the first
/// and runs its completion, which is still running (held here by a channel, standing in for
/// the thread being preempted) when the second append's completion becomes due through a
/// roll, which syncs on the appending thread. Proves that completions run in write order, as
/// `flush.rs` promises ("completions run in order after each sync"): a caller that moves a
/// "durable up to" watermark from its completions must never see it go back.
#[test]
fn durability_completions_run_in_write_order_when_a_roll_syncs() {
    const EVENT_DEADLINE: Duration = Duration::from_secs(10);
    // How long the first completion holds the flusher at most. A log that serializes
    // completions blocks the roll below until then, and the test still passes, just slower.
    const HOLD_DEADLINE: Duration = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4096,
        extent_bytes: 4096,
        flush: FlushPolicy::Always,
        background_flusher: true,
        ..LogConfig::default()
    };
    let mut log = open_fs(dir.path(), config);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (started_tx, started_rx) = channel();
    let (release_tx, release_rx) = channel::<()>();
    let (finished_tx, finished_rx) = channel();
    let second_finished_tx = finished_tx.clone();
    let first = log.append(&data_frame(0, 1), LogId::new(1, 0)).unwrap();
    let first_order = order.clone();
    log.on_durable(
        first.pos,
        Box::new(move |result| {
            result.unwrap();
            started_tx.send(()).unwrap();
            // Hold the flusher inside this completion until the test releases it.
            let _ = release_rx.recv_timeout(HOLD_DEADLINE);
            first_order.lock().unwrap().push(first.pos);
            finished_tx.send(()).unwrap();
        }),
    );
    started_rx.recv_timeout(EVENT_DEADLINE).unwrap();
    let second = log.append(&data_frame(1, 1), LogId::new(1, 1)).unwrap();
    let second_order = order.clone();
    log.on_durable(
        second.pos,
        Box::new(move |result| {
            result.unwrap();
            second_order.lock().unwrap().push(second.pos);
            second_finished_tx.send(()).unwrap();
        }),
    );
    // A frame that does not fit the segment: the roll seals (syncs) it on this thread.
    let big = data_frame(2, 30);
    assert!(big.len() > 3000, "the frame must force a roll");
    log.append(&big, LogId::new(1, 2)).unwrap();
    assert!(log.segment_bases().len() > 1, "the append rolled");
    // The completion may have stopped waiting already (see `HOLD_DEADLINE`).
    let _ = release_tx.send(());
    for _ in 0..2 {
        finished_rx.recv_timeout(EVENT_DEADLINE).unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order, vec![first.pos, second.pos], "completion order");
}

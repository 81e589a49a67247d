//! Model-based test of `PartitionLog`, after Quickwit's mrecordlog: generated sequences of
//! appends (data and control frames, term bumps, invalid inputs), truncations, purges, resets,
//! retention runs, reopens and flushes run against a real log in a temporary directory and
//! against `Model`, a `Vec` of segments of entries in memory. After every step the two must
//! agree on the bounds, the segment layout, every frame read by index, the records read by
//! offset from many offsets, timestamp lookups and the errors of out-of-range requests.
//!
//! The model is deliberately plain: it keeps every entry (with the bytes that were appended)
//! in the segment it should land in, and derives every answer by walking that list. Segment
//! boundaries are modelled because retention and `segment_bases` depend on them: a segment
//! rolls before a frame that would take it past `segment_bytes` (or, for the first frame of an
//! append, when it is older than `segment_ms`), never when it is empty.
//!
//! One choice goes beyond what the code documents: a sealed segment holding only purged
//! entries is deleted as soon as it exists (`purge_to` and `open` delete such segments, so a
//! roll must too), so that a reopen never changes what the log reports.
//!
//! `ops` generates the operations, `in_memory` is the model, `checks` compares the two.
//! Failures print the shrunk operation list; copy it into a named test at the bottom.
//! `STAVE_SOAK=1` runs twenty times as many cases.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use stave_log::batch::{BatchBuilder, Record};
use stave_log::frame::{FrameType, encode_control_frame};
use stave_log::{
    Clock, FlushPolicy, LogConfig, LogId, LogIndex, Offset, PartitionLog, RetentionPolicy,
    TimestampMs, WritePos,
};

use crate::support::{frame, open_fs, value_for};

mod checks;
mod in_memory;
mod ops;

use in_memory::{Entry, Expected, Input, Model, ModelRecord, assert_error};
use ops::{Fault, FrameSpec, Op, Params, Pick, RecordSpec, op, params};

/// Cases per run; `STAVE_SOAK` multiplies them by `SOAK_FACTOR`.
const CASES: u32 = 64;
const SOAK_FACTOR: u32 = 20;
const OPS_MAX: usize = 40;
/// Where the manual clock starts (November 2023), so record timestamps look real.
const CLOCK_START_MS: TimestampMs = 1_700_000_000_000;
/// The largest frame the log under test accepts; some generated frames are larger.
const FRAME_BYTES_MAX: u64 = 5000;
/// How long a durability completion may take to arrive once its sync is done.
const COMPLETION_DEADLINE: Duration = Duration::from_secs(10);

fn cases() -> u32 {
    if std::env::var_os("STAVE_SOAK").is_some() {
        CASES * SOAK_FACTOR
    } else {
        CASES
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: the real log, the model, and the completions the log owes.

/// Durability completions registered with the log and those that have arrived.
struct Completions {
    tx: Sender<bool>,
    rx: Receiver<bool>,
    registered: u64,
    arrived: u64,
}

impl Completions {
    fn new() -> Self {
        let (tx, rx) = channel();
        Completions {
            tx,
            rx,
            registered: 0,
            arrived: 0,
        }
    }

    fn register(&mut self, log: &PartitionLog, pos: WritePos) {
        let tx = self.tx.clone();
        log.on_durable(
            pos,
            Box::new(move |result| {
                // The receiver lives as long as the test; a send can only fail after it.
                let _ = tx.send(result.is_ok());
            }),
        );
        self.registered += 1;
    }

    /// Counts the completions that have arrived without waiting.
    fn poll(&mut self) {
        while let Ok(ok) = self.rx.try_recv() {
            assert!(ok, "a durability completion reported an error");
            self.arrived += 1;
        }
    }

    /// Waits (bounded) for every registered completion.
    fn wait_all(&mut self) {
        let deadline = Instant::now() + COMPLETION_DEADLINE;
        while self.arrived < self.registered {
            let left = deadline.saturating_duration_since(Instant::now());
            let ok = self.rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "only {} of {} durability completions arrived",
                    self.arrived, self.registered
                )
            });
            assert!(ok, "a durability completion reported an error");
            self.arrived += 1;
        }
    }
}

struct Harness {
    dir: tempfile::TempDir,
    params: Params,
    clock: Arc<AtomicI64>,
    retention: RetentionPolicy,
    background_flusher: bool,
    log: Option<PartitionLog>,
    model: Model,
    /// The term the next append uses (never below the log's last term).
    term: u64,
    completions: Completions,
    /// The position of the last append since the log was opened.
    last_pos: Option<WritePos>,
    /// Feeds the pseudo-random choices of the checks.
    check_seed: u64,
}

impl Harness {
    fn new(params: Params) -> Self {
        let clock = Arc::new(AtomicI64::new(CLOCK_START_MS));
        let mut harness = Harness {
            dir: tempfile::tempdir().unwrap(),
            background_flusher: params.background_flusher,
            params,
            clock,
            retention: RetentionPolicy {
                retention_ms: None,
                retention_bytes: None,
            },
            log: None,
            model: Model::new(CLOCK_START_MS),
            term: 1,
            completions: Completions::new(),
            last_pos: None,
            check_seed: 0x5eed,
        };
        harness.log = Some(open_fs(harness.dir.path(), harness.config()));
        harness
    }

    fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.params.segment_bytes,
            segment_ms: self.params.segment_ms,
            extent_bytes: 4096,
            index_interval_bytes: self.params.index_interval_bytes,
            frame_bytes_max: FRAME_BYTES_MAX,
            reserve_bytes: 0,
            flush: self.params.flush,
            retention: self.retention,
            background_flusher: self.background_flusher,
            clock: Clock::Manual(self.clock.clone()),
        }
    }

    fn now(&self) -> TimestampMs {
        self.clock.load(Ordering::SeqCst)
    }

    fn log(&self) -> &PartitionLog {
        self.log.as_ref().expect("the log is open between steps")
    }

    fn log_mut(&mut self) -> &mut PartitionLog {
        self.log.as_mut().expect("the log is open between steps")
    }

    fn reopen(&mut self) {
        drop(self.log.take());
        // Closing or dropping the log syncs and runs every completion it owed.
        self.completions.wait_all();
        self.last_pos = None;
        self.log = Some(open_fs(self.dir.path(), self.config()));
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append {
                frames,
                bump_at,
                fault,
            } => self.append(frames, *bump_at, *fault),
            Op::BumpTerm => self.term += 1,
            Op::TruncateAfter { pick, valid } => self.truncate_after(*pick, *valid),
            Op::PurgeTo { pick, valid } => self.purge_to(*pick, *valid),
            Op::ResetTo {
                index_delta,
                term_bump,
                offset_delta,
            } => self.reset_to(*index_delta, *term_bump, *offset_delta),
            Op::Retention { advance_ms, policy } => self.retention(*advance_ms, *policy),
            Op::AdvanceClock { ms } => {
                self.clock.fetch_add(i64::from(*ms), Ordering::SeqCst);
            }
            Op::Reopen {
                background_flusher,
                close,
                segment_bytes,
                index_interval_bytes,
            } => {
                self.background_flusher = *background_flusher;
                if let Some(bytes) = segment_bytes {
                    self.params.segment_bytes = *bytes;
                }
                if let Some(bytes) = index_interval_bytes {
                    self.params.index_interval_bytes = *bytes;
                }
                if *close {
                    let log = self.log.take().expect("the log is open between steps");
                    log.close().unwrap();
                }
                self.reopen();
            }
            Op::Flush => self.flush(),
        }
    }

    fn append(
        &mut self,
        frames: &[FrameSpec],
        bump_at: Option<Pick>,
        fault: Option<(Fault, Pick)>,
    ) {
        let inputs = self.build_inputs(frames, bump_at, fault);
        let expected = self.model.check_append(&inputs);
        let pairs: Vec<(&[u8], LogId)> = inputs
            .iter()
            .map(|input| (input.frame.as_slice(), input.log_id))
            .collect();
        let result = self.log_mut().append_all(pairs);
        match (result, expected) {
            (Ok(appended), None) => {
                assert_eq!(appended.len(), inputs.len());
                for (done, input) in appended.iter().zip(&inputs) {
                    assert_eq!(done.log_id, input.log_id);
                    assert_eq!(done.base_offset, Offset(input.entry.base_offset));
                    assert_eq!(done.next_offset, Offset(input.entry.next_offset()));
                    assert_eq!(
                        done.pos, appended[0].pos,
                        "one write position per append_all"
                    );
                }
                let pos = appended[0].pos;
                assert!(
                    self.last_pos.is_none_or(|last| pos > last),
                    "positions grow"
                );
                self.last_pos = Some(pos);
                self.term = self.term.max(inputs.last().map_or(0, |i| i.log_id.term.0));
                let now = self.now();
                let entries = inputs.into_iter().map(|input| input.entry).collect();
                self.model.append(entries, &self.params, now);
                self.register_completion(pos);
            }
            // The model stays as it was; the checks after the step prove the log did too.
            (Err(err), Some(expected)) => assert_error(&err, &expected, "append_all"),
            (Ok(appended), Some(expected)) => {
                panic!("append_all succeeded ({appended:?}), the model expected {expected:?}")
            }
            (Err(err), None) => panic!("append_all failed: {err:?}"),
        }
    }

    /// Registers a completion for `pos`. Under `always` with no flusher thread nothing syncs
    /// the last append by itself, so its completion must not have arrived yet.
    fn register_completion(&mut self, pos: WritePos) {
        let log = self.log.as_ref().expect("the log is open between steps");
        self.completions.register(log, pos);
        if self.params.flush == FlushPolicy::Always && !self.background_flusher {
            self.completions.poll();
            assert!(
                self.completions.arrived < self.completions.registered,
                "append at {pos} reported durable before any sync"
            );
            assert!(self.log().durable_pos() < pos);
        }
    }

    fn build_inputs(
        &self,
        frames: &[FrameSpec],
        bump_at: Option<Pick>,
        fault: Option<(Fault, Pick)>,
    ) -> Vec<Input> {
        let bump_at = bump_at.map(|i| i.index(frames.len()));
        let fault = fault.map(|(f, i)| (f, i.index(frames.len())));
        let now = self.now();
        let mut base_offset = self.model.end_offset();
        let mut inputs = Vec::new();
        for ((k, spec), index) in frames.iter().enumerate().zip(self.model.next_index()..) {
            let term = self.term + u64::from(bump_at.is_some_and(|b| k >= b));
            let (frame, mut entry) = build_frame(spec, now);
            entry.log_id = LogId::new(term, index);
            entry.base_offset = base_offset;
            let mut input = Input {
                frame,
                log_id: entry.log_id,
                corrupt_crc: false,
                entry,
            };
            if let Some((fault, _)) = fault.filter(|&(_, at)| at == k) {
                apply_fault(&mut input, fault);
            }
            base_offset = input.entry.next_offset();
            inputs.push(input);
        }
        inputs
    }

    fn truncate_after(&mut self, pick: Pick, valid: bool) {
        let (first, next) = (self.model.first_index(), self.model.next_index());
        // `last_kept` as i64, -1 standing for `None`.
        let last_kept = if valid || first == 0 {
            let low = first as i64 - 1;
            low + pick.index((next as i64 - low + 1) as usize) as i64
        } else {
            -1 + pick.index(first as usize) as i64
        };
        let arg = u64::try_from(last_kept).ok().map(LogIndex);
        let cut = (last_kept + 1) as u64;
        let result = self.log_mut().truncate_after(arg);
        if cut < first {
            let err = result.expect_err("truncation below the start");
            let expected = Expected::IndexOutOfRange {
                requested: LogIndex(cut),
                first: LogIndex(first),
                last_plus_one: LogIndex(next),
            };
            assert_error(&err, &expected, "truncate_after");
            return;
        }
        result.unwrap();
        if cut < next {
            self.model.truncate_at(cut);
        }
    }

    fn purge_to(&mut self, pick: Pick, valid: bool) {
        let (first, next) = (self.model.first_index(), self.model.next_index());
        let index = if valid && next > 0 {
            let low = first.saturating_sub(2);
            low + pick.index((next - low) as usize) as u64
        } else {
            next + pick.index(3) as u64
        };
        let result = self.log_mut().purge_to(LogIndex(index));
        if index >= next {
            let err = result.expect_err("purge past the end");
            let expected = Expected::IndexOutOfRange {
                requested: LogIndex(index),
                first: LogIndex(first),
                last_plus_one: LogIndex(next),
            };
            assert_error(&err, &expected, "purge_to");
            return;
        }
        result.unwrap();
        if index >= first {
            self.model.purge_to(index);
        }
    }

    fn reset_to(&mut self, index_delta: i16, term_bump: u8, offset_delta: i16) {
        let index = (self.model.next_index() as i64 + i64::from(index_delta)).max(0) as u64;
        let last_term = self.model.last_log_id().map_or(0, |id| id.term.0);
        let last = LogId::new(last_term + u64::from(term_bump), index);
        let offset = (self.model.end_offset() as i64 + i64::from(offset_delta)).max(0) as u64;
        self.log_mut().reset_to(last, Offset(offset)).unwrap();
        let now = self.now();
        self.model.reset_to(last, offset, now);
        self.term = self.term.max(last.term.0);
    }

    fn retention(&mut self, advance_ms: u32, policy: RetentionPolicy) {
        self.clock
            .fetch_add(i64::from(advance_ms), Ordering::SeqCst);
        if policy != self.retention {
            self.retention = policy;
            self.reopen();
        }
        let expected = self.model.retention_point(policy, self.now());
        let point = self.log_mut().apply_retention().unwrap();
        assert_eq!(point, expected, "apply_retention with {policy:?}");
        if let Some(point) = point {
            self.model.purge_to(point.0);
        }
    }

    fn flush(&mut self) {
        self.log().flush().unwrap();
        if let Some(pos) = self.last_pos {
            assert!(self.log().durable_pos() >= pos, "flush covers every append");
        }
        self.completions.wait_all();
    }

    /// A pseudo-random number below `bound` (xorshift; the checks need no shrinking).
    fn check_rand(&mut self, bound: u64) -> u64 {
        let mut x = self.check_seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.check_seed = x;
        if bound == 0 { 0 } else { x % bound }
    }
}

/// Builds the unstamped frame for `spec`, and the entry it should become (log id and base
/// offset filled in by the caller).
fn build_frame(spec: &FrameSpec, now: TimestampMs) -> (Vec<u8>, Entry) {
    let (frame_type, frame, records) = match spec {
        FrameSpec::Data { seed, records } => {
            let mut builder = BatchBuilder::new();
            let mut model_records = Vec::new();
            for (i, record) in records.iter().enumerate() {
                let value = value_for(*seed, i as u32, record.value_len);
                let key = record.keyed.then(|| format!("key-{seed}-{i}").into_bytes());
                let timestamp = now + TimestampMs::from(record.timestamp_delta_ms);
                builder.push(&Record {
                    timestamp,
                    key: key.as_deref(),
                    value: Some(&value),
                    headers: &[("h", b"v")],
                });
                model_records.push(ModelRecord {
                    timestamp,
                    key,
                    value,
                });
            }
            (FrameType::Data, builder.finish(), model_records)
        }
        FrameSpec::Control {
            frame_type,
            payload_len,
        } => {
            let payload = value_for(*payload_len as u64, 0, *payload_len);
            let frame = encode_control_frame(*frame_type, &payload);
            (*frame_type, frame, Vec::new())
        }
    };
    let entry = Entry {
        log_id: LogId::default(),
        frame_type,
        base_offset: 0,
        records,
        frame: frame.clone(),
    };
    (frame, entry)
}

fn apply_fault(input: &mut Input, fault: Fault) {
    let id = input.log_id;
    match fault {
        Fault::IndexAhead => input.log_id = LogId::new(id.term.0, id.index.0 + 1),
        Fault::IndexBehind => {
            input.log_id = LogId::new(id.term.0, id.index.0.checked_sub(1).unwrap_or(7));
        }
        // An empty log has no last term to regress from: the model then expects success.
        Fault::TermRegressed => input.log_id = LogId::new(id.term.0.saturating_sub(1), id.index.0),
        Fault::BadCrc => {
            let last = input.frame.len() - 1;
            input.frame[last] ^= 0x5a;
            input.corrupt_crc = true;
        }
        Fault::TrailingByte => input.frame.push(0),
    }
    input.entry.log_id = input.log_id;
}

/// Runs `ops` against a fresh log and the model, checking after every step and after a final
/// reopen.
fn run(params: Params, ops: &[Op]) {
    let mut harness = Harness::new(params);
    harness.check("open");
    for (n, op) in ops.iter().enumerate() {
        harness.run(op);
        harness.check(&format!("step {n} ({op:?})"));
    }
    harness.reopen();
    harness.check("final reopen");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    })]

    /// Random sequences of every log operation, valid and invalid, leave the real log and the
    /// in-memory model in agreement after every step: bounds, segment layout, frames by index
    /// (bytes included), records by offset, timestamp lookups, retention points and errors.
    #[test]
    fn log_agrees_with_the_model_after_every_operation(
        params in params(),
        ops in vec(op(), 1..=OPS_MAX),
    ) {
        run(params, &ops);
    }
}

// ---------------------------------------------------------------------------------------------
// Shrunk failures, kept as named tests.

/// A data frame spec with keyed records of these (value length, timestamp delta) pairs.
fn data(seed: u64, records: &[(usize, i16)]) -> FrameSpec {
    FrameSpec::Data {
        seed,
        records: records
            .iter()
            .map(|&(value_len, timestamp_delta_ms)| RecordSpec {
                value_len,
                timestamp_delta_ms,
                keyed: true,
            })
            .collect(),
    }
}

/// Shrunk from `log_agrees_with_the_model_after_every_operation`: one frame fills most of
/// the only segment, `purge_to` covers it (the log start passes the whole tail), and the next
/// append rolls. The sealed segment then holds only purged entries: `open` deletes such a
/// segment, so the log must too, or its layout and `size_bytes` change on a mere reopen.
/// Proves that the model and the log agree on that layout.
#[test]
fn model_roll_after_purging_the_whole_tail_deletes_the_purged_segment() {
    let params = Params {
        segment_bytes: 5758,
        segment_ms: None,
        index_interval_bytes: 1,
        flush: FlushPolicy::Always,
        background_flusher: false,
    };
    run(
        params,
        &[
            Op::Append {
                frames: vec![data(0, &[(1545, 0), (1565, -65)])],
                bump_at: None,
                fault: None,
            },
            Op::PurgeTo {
                pick: Pick(0),
                valid: true,
            },
            Op::Append {
                frames: vec![data(1_000_000_000_000_000_000, &[(73, 0), (2238, -65)])],
                bump_at: None,
                fault: None,
            },
        ],
    );
}

/// The same failure through the public API alone: after `purge_to` covers the whole tail and
/// an append rolls, the segments and `size_bytes` the log reports are those it reports after
/// a reopen. Proves that a reopen changes nothing that a reader or retention can see.
#[test]
fn segment_layout_after_a_roll_past_a_full_purge_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = || LogConfig {
        segment_bytes: 4096,
        extent_bytes: 4096,
        ..LogConfig::default()
    };
    let mut log = open_fs(dir.path(), config());
    log.append(&frame(0, 2, 1500, 10), LogId::new(1, 0))
        .unwrap();
    log.purge_to(LogIndex(0)).unwrap();
    log.append(&frame(1, 2, 1500, 20), LogId::new(1, 1))
        .unwrap();
    let (bases, size_bytes) = (log.segment_bases(), log.size_bytes());
    drop(log);
    let log = open_fs(dir.path(), config());
    assert_eq!(log.segment_bases(), bases, "segments after reopen");
    assert_eq!(log.size_bytes(), size_bytes, "size_bytes after reopen");
}

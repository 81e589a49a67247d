//! The idempotent producer table of a partition (Kafka's `ProducerStateManager`): for each
//! producer id, its epoch and its last [`BATCHES_RETAINED`] batches with the offsets they were
//! written at. The leader checks every batch against it *before* proposing it (a committed
//! duplicate would already be visible to consumers), so a retried batch is answered with its
//! first write's offsets instead of being written twice.
//!
//! **What the table counts is the appended log**, committed or not, because the check on the
//! leader must see batches that are proposed but not committed yet. Every replica keeps it up
//! to date as it appends (the [`LogStore`](crate::LogStore) records each appended frame), so a
//! node that becomes leader already holds the table of its log: it is built from the log once,
//! when the log store opens (the last snapshot's table plus the log after the snapshot), and
//! from then on follows the log.
//!
//! Invariants ([`ProducerTable`]):
//! - `producers` is the fold of the log's idempotent batches, in index order, over the table of
//!   the last installed snapshot, minus expired producers.
//! - `journal` holds, for every idempotent batch appended above `applied` (the state machine's
//!   applied index), the batch and its producer's state before it. Raft never truncates at or
//!   below the applied index, so that is enough to roll back a truncation
//!   ([`ProducerTable::truncate_after`]), to compute the table as of any index from `applied`
//!   on ([`ProducerTable::snapshot_at`], for snapshots), and to replay onto an installed
//!   snapshot's table the entries the log keeps after it ([`ProducerTable::install`]).
//! - `pending` holds reservations: checks that answered [`Verdict::New`] for a batch that is not
//!   appended yet. A second check of the same batch answers [`Verdict::Duplicate`] with no
//!   offsets, and the next batch of the producer is checked against it, so a pipelining
//!   producer (up to 5 batches in flight) is not refused while its earlier batches travel.
//!
//! Check and proposal are not atomic (`client_write` is asynchronous and its failure is only
//! known later), hence reservations. A reservation ends when its batch is appended (the append
//! consumes it) or when the [`Reservation`] is dropped. When a proposal fails:
//! - before the batch was appended (not leader, shut down): dropping the reservation releases
//!   it, and a retry is accepted again;
//! - after it was appended (leadership lost while replicating): the batch stays counted while
//!   it is in this node's log. If a new leader truncates it, the truncation rolls it back; if
//!   the new leader commits it, a retry there is a duplicate. Either way the retry goes to the
//!   new leader, whose table is that of its own log.
//!
//! The broker must submit proposals in the order their checks answered (for example by
//! checking and enqueueing with `Raft::client_write_ff` under one per-partition lock): the table
//! expects a producer's batches to reach the log in reservation order.
//!
//! The table is bounded: a producer none of whose batches is newer than
//! [`ProducerConfig::expiry_ms`] (by the batch's `max_timestamp`, as Kafka's
//! `producer.id.expiration.ms`, default 7 days) is forgotten, once its batches are applied.
//! Its next batch is then accepted with any sequence, as Kafka accepts an unknown producer.
//!
//! Lock order: state machine, then table; log, then table. The table takes no other lock.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::{Deserialize, Serialize};
use stave_log::frame::{BodyHeader, FrameType, HEADER_LEN};
use stave_log::{CorruptReason, LogIndex, PartitionLog, StoredFrame, TimestampMs};

#[cfg(test)]
mod tests;

/// How many of a producer's last batches are kept for duplicate detection: Kafka's client has
/// at most 5 requests in flight per connection, so any retry is of one of the last 5.
pub const BATCHES_RETAINED: usize = 5;

/// Kafka's default `producer.id.expiration.ms`: 7 days.
pub const PRODUCER_EXPIRY_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;

/// How often the table looks for expired producers (by the log's clock), so an append does
/// not scan every producer.
pub const EXPIRY_CHECK_INTERVAL_MS: i64 = 60 * 1000;

/// The most bytes of frames one read of the log returns while the table is rebuilt.
const REPLAY_READ_BYTES_MAX: usize = 8 << 20;

/// The table's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// A producer whose newest batch is older than this (by its `max_timestamp`) is forgotten.
    pub expiry_ms: i64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            expiry_ms: PRODUCER_EXPIRY_MS_DEFAULT,
        }
    }
}

/// `sequence + delta`, wrapping from `i32::MAX` to 0 as Kafka's sequences do
/// (`DefaultRecordBatch.incrementSequence`). A negative sequence is not one a producer sends;
/// it is only added to, so a batch's range stays comparable with its retries.
pub fn sequence_add(sequence: i32, delta: u32) -> i32 {
    let sum = i64::from(sequence) + i64::from(delta);
    let wrapped = if sum > i64::from(i32::MAX) {
        sum.rem_euclid(i64::from(i32::MAX) + 1)
    } else {
        sum
    };
    i32::try_from(wrapped).expect("at least i32::MIN, and at most i32::MAX once wrapped")
}

/// The producer fields of one batch: what the table needs of a frame's body header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Negative: the producer is not idempotent, and its batches are never checked.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: u32,
    pub max_timestamp: TimestampMs,
}

impl ProducerBatch {
    pub fn from_body(body: &BodyHeader) -> ProducerBatch {
        ProducerBatch {
            producer_id: body.producer_id,
            producer_epoch: body.producer_epoch,
            base_sequence: body.base_sequence,
            record_count: body.record_count,
            max_timestamp: body.max_timestamp,
        }
    }

    /// The producer fields of a frame (stamped or not: only its body header is read).
    pub fn from_frame(frame: &[u8]) -> Result<ProducerBatch, CorruptReason> {
        let body = frame.get(HEADER_LEN..).unwrap_or_default();
        BodyHeader::decode(body).map(|body| ProducerBatch::from_body(&body))
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence of the batch's last record (a batch holds at least one).
    pub fn last_sequence(&self) -> i32 {
        sequence_add(self.base_sequence, self.record_count.saturating_sub(1))
    }
}

/// Where a batch was written: its Raft index and its offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub index: u64,
    pub base_offset: u64,
    /// The offset after the batch's last record.
    pub next_offset: u64,
}

/// One of a producer's last batches (Kafka's `BatchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetadata {
    pub base_sequence: i32,
    pub last_sequence: i32,
    pub written: Written,
}

/// What the table knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    pub epoch: i16,
    /// The producer's last batches of this epoch, oldest first, at most [`BATCHES_RETAINED`].
    pub batches: VecDeque<BatchMetadata>,
    /// The `max_timestamp` of its newest batch: when it expires is counted from here.
    pub last_timestamp_ms: TimestampMs,
}

impl ProducerState {
    fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|batch| batch.last_sequence)
    }

    fn newest_index(&self) -> Option<u64> {
        self.batches.back().map(|batch| batch.written.index)
    }
}

/// The table as a snapshot holds it: every producer's state as of the snapshot's last index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    pub producers: BTreeMap<i64, ProducerState>,
}

/// A reservation in the table (see [`Reservation`] for the handle that releases it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReservationId(u64);

/// What the leader does with a batch, after checking it against the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict<R = Reservation> {
    /// Propose the batch. `R` reserves its sequences until it is appended: keep it until the
    /// proposal's outcome is known (drop it when `client_write` returns).
    New(R),
    /// The batch was written before (same producer id, epoch and sequence range), at `written`.
    /// Answer with those offsets once the high watermark reaches `written.next_offset`; a
    /// batch not committed yet may still be truncated, so check again after the wait. `None`:
    /// an earlier check accepted the batch and it is not in the log yet (a concurrent retry);
    /// answer with a retriable error.
    Duplicate { written: Option<Written> },
    /// The batch does not follow the producer's last sequence (or starts a new epoch at a
    /// sequence other than 0): Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    OutOfOrderSequence { expected: i32, received: i32 },
    /// The batch's epoch is older than the producer's: another instance with the same id took
    /// over (Kafka's `INVALID_PRODUCER_EPOCH`).
    FencedEpoch { current: i16, received: i16 },
}

impl<R> Verdict<R> {
    /// The same verdict, with `f` applied to a [`Verdict::New`]'s reservation.
    pub fn map_new<S>(self, f: impl FnOnce(R) -> S) -> Verdict<S> {
        match self {
            Verdict::New(reservation) => Verdict::New(f(reservation)),
            Verdict::Duplicate { written } => Verdict::Duplicate { written },
            Verdict::OutOfOrderSequence { expected, received } => {
                Verdict::OutOfOrderSequence { expected, received }
            }
            Verdict::FencedEpoch { current, received } => {
                Verdict::FencedEpoch { current, received }
            }
        }
    }
}

/// A truncation or a snapshot asked for an index below the applied one, whose entries the
/// table no longer remembers. Raft never truncates there, so this is a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the producer table can not go back to index {requested:?}: entries up to {applied:?} are applied and forgotten"
)]
pub struct BelowApplied {
    pub requested: Option<u64>,
    pub applied: Option<u64>,
}

impl From<BelowApplied> for io::Error {
    fn from(err: BelowApplied) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}

/// An accepted check whose batch is not appended yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    id: ReservationId,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    last_sequence: i32,
}

impl Pending {
    fn is_batch(&self, batch: &ProducerBatch) -> bool {
        self.producer_id == batch.producer_id
            && self.epoch == batch.producer_epoch
            && self.base_sequence == batch.base_sequence
            && self.last_sequence == batch.last_sequence()
    }
}

/// An idempotent batch appended above the applied index, and its producer's state before it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JournalEntry {
    batch: ProducerBatch,
    written: Written,
    previous: Option<ProducerState>,
}

/// The newest epoch and sequence a producer is known by, counting reservations.
#[derive(Debug, Clone, Copy)]
struct Tail {
    epoch: i16,
    last_sequence: Option<i32>,
}

/// The table itself: a pure data structure (no I/O, no clock, no lock). [`Producers`] shares
/// it between the log store, the state machine and the broker.
#[derive(Debug, Clone)]
pub struct ProducerTable {
    config: ProducerConfig,
    producers: BTreeMap<i64, ProducerState>,
    /// Idempotent batches appended above `applied`, in index order.
    journal: VecDeque<JournalEntry>,
    /// The state machine's applied index: the table never goes back below it.
    applied: Option<u64>,
    /// Reservations, in the order their checks answered.
    pending: Vec<Pending>,
    reservation_next: u64,
    expiry_checked_ms: TimestampMs,
}

impl Default for ProducerTable {
    fn default() -> Self {
        ProducerTable::new(ProducerConfig::default())
    }
}

/// Records `batch`, written at `written`, in `producers` (the log is the truth: no check).
/// Kafka's rule: a new epoch starts a new list of batches.
fn fold_batch(
    producers: &mut BTreeMap<i64, ProducerState>,
    batch: &ProducerBatch,
    written: Written,
) {
    let metadata = BatchMetadata {
        base_sequence: batch.base_sequence,
        last_sequence: batch.last_sequence(),
        written,
    };
    match producers.get_mut(&batch.producer_id) {
        Some(state) if state.epoch == batch.producer_epoch => {
            state.batches.push_back(metadata);
            while state.batches.len() > BATCHES_RETAINED {
                state.batches.pop_front();
            }
            state.last_timestamp_ms = batch.max_timestamp;
        }
        _ => {
            let state = ProducerState {
                epoch: batch.producer_epoch,
                batches: VecDeque::from([metadata]),
                last_timestamp_ms: batch.max_timestamp,
            };
            producers.insert(batch.producer_id, state);
        }
    }
}

/// Puts `previous` back as `producer_id`'s state (none: the producer was unknown).
fn restore(
    producers: &mut BTreeMap<i64, ProducerState>,
    producer_id: i64,
    previous: Option<ProducerState>,
) {
    match previous {
        Some(state) => producers.insert(producer_id, state),
        None => producers.remove(&producer_id),
    };
}

impl ProducerTable {
    pub fn new(config: ProducerConfig) -> ProducerTable {
        ProducerTable {
            config,
            producers: BTreeMap::new(),
            journal: VecDeque::new(),
            applied: None,
            pending: Vec::new(),
            reservation_next: 0,
            expiry_checked_ms: TimestampMs::MIN,
        }
    }

    /// The producers, as of the last appended index.
    pub fn producers(&self) -> &BTreeMap<i64, ProducerState> {
        &self.producers
    }

    /// The index of the last batch the table counts (or the applied index, if later).
    pub fn last_index(&self) -> Option<u64> {
        let journal = self.journal.back().map(|entry| entry.written.index);
        journal.max(self.applied)
    }

    /// How many reservations are waiting for their batches.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    fn tail(&self, producer_id: i64) -> Option<Tail> {
        let pending = self
            .pending
            .iter()
            .rev()
            .find(|p| p.producer_id == producer_id);
        if let Some(pending) = pending {
            return Some(Tail {
                epoch: pending.epoch,
                last_sequence: Some(pending.last_sequence),
            });
        }
        self.producers.get(&producer_id).map(|state| Tail {
            epoch: state.epoch,
            last_sequence: state.last_sequence(),
        })
    }

    /// An earlier write of `batch` in this epoch: appended (`Some`) or reserved (`None`).
    fn find_duplicate(&self, batch: &ProducerBatch) -> Option<Option<Written>> {
        let last_sequence = batch.last_sequence();
        let appended = self
            .producers
            .get(&batch.producer_id)
            .filter(|state| state.epoch == batch.producer_epoch)
            .and_then(|state| {
                state.batches.iter().find(|b| {
                    b.base_sequence == batch.base_sequence && b.last_sequence == last_sequence
                })
            });
        if let Some(appended) = appended {
            return Some(Some(appended.written));
        }
        self.pending
            .iter()
            .any(|p| p.is_batch(batch))
            .then_some(None)
    }

    /// Checks `batch` against the table, as Kafka's leader does before appending, and reserves
    /// it when it is new. A producer the table does not know is accepted with any sequence.
    pub fn check(&mut self, batch: &ProducerBatch) -> Verdict<Option<ReservationId>> {
        if !batch.is_idempotent() {
            return Verdict::New(None);
        }
        let received = batch.base_sequence;
        let Some(tail) = self.tail(batch.producer_id) else {
            if received < 0 {
                return Verdict::OutOfOrderSequence {
                    expected: 0,
                    received,
                };
            }
            return Verdict::New(Some(self.reserve(batch)));
        };
        if batch.producer_epoch == tail.epoch
            && let Some(written) = self.find_duplicate(batch)
        {
            return Verdict::Duplicate { written };
        }
        if batch.producer_epoch < tail.epoch {
            return Verdict::FencedEpoch {
                current: tail.epoch,
                received: batch.producer_epoch,
            };
        }
        let expected = match tail.last_sequence {
            Some(last) if batch.producer_epoch == tail.epoch => sequence_add(last, 1),
            // A new epoch starts at 0, and so does an epoch with no batch left.
            _ => 0,
        };
        if received != expected {
            return Verdict::OutOfOrderSequence { expected, received };
        }
        Verdict::New(Some(self.reserve(batch)))
    }

    fn reserve(&mut self, batch: &ProducerBatch) -> ReservationId {
        let id = ReservationId(self.reservation_next);
        self.reservation_next += 1;
        self.pending.push(Pending {
            id,
            producer_id: batch.producer_id,
            epoch: batch.producer_epoch,
            base_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
        });
        id
    }

    /// Ends a reservation whose batch will not be appended (its proposal failed). A no-op if
    /// the batch was appended.
    pub fn release(&mut self, id: ReservationId) {
        self.pending.retain(|pending| pending.id != id);
    }

    /// Counts `batch`, appended to the log at `written` (after every index counted so far).
    /// Consumes the batch's reservation, if any. Not idempotent: ignored.
    pub fn append(&mut self, batch: &ProducerBatch, written: Written) {
        if !batch.is_idempotent() {
            return;
        }
        debug_assert!(
            self.last_index().is_none_or(|last| written.index > last),
            "batch at {} appended after index {:?}",
            written.index,
            self.last_index()
        );
        if let Some(at) = self.pending.iter().position(|p| p.is_batch(batch)) {
            self.pending.remove(at);
        }
        let previous = self.producers.get(&batch.producer_id).cloned();
        fold_batch(&mut self.producers, batch, written);
        self.journal.push_back(JournalEntry {
            batch: *batch,
            written,
            previous,
        });
    }

    /// Forgets every batch appended after `last_kept` (all for `None`): Raft's conflict
    /// truncation removed them from the log.
    pub fn truncate_after(&mut self, last_kept: Option<u64>) -> Result<(), BelowApplied> {
        if last_kept < self.applied {
            return Err(BelowApplied {
                requested: last_kept,
                applied: self.applied,
            });
        }
        while let Some(entry) = self.journal.back() {
            if Some(entry.written.index) <= last_kept {
                break;
            }
            let entry = self.journal.pop_back().expect("the loop saw an entry");
            restore(&mut self.producers, entry.batch.producer_id, entry.previous);
        }
        Ok(())
    }

    /// The state machine applied the log up to `index`: Raft will never truncate there, so
    /// the journal forgets it.
    pub fn mark_applied(&mut self, index: u64) {
        self.applied = self.applied.max(Some(index));
        while self
            .journal
            .front()
            .is_some_and(|entry| entry.written.index <= index)
        {
            self.journal.pop_front();
        }
    }

    /// The table as of `index` (the last index a snapshot covers, not below the applied one).
    pub fn snapshot_at(&self, index: Option<u64>) -> Result<ProducerSnapshot, BelowApplied> {
        if index < self.applied {
            return Err(BelowApplied {
                requested: index,
                applied: self.applied,
            });
        }
        let mut producers = self.producers.clone();
        for entry in self.journal.iter().rev() {
            if Some(entry.written.index) <= index {
                break;
            }
            restore(
                &mut producers,
                entry.batch.producer_id,
                entry.previous.clone(),
            );
        }
        Ok(ProducerSnapshot { producers })
    }

    /// Starts again from a snapshot's table, as of `last` (a replica installs a snapshot, or
    /// opens with one): the batches counted after `last`, which the log keeps, are counted
    /// again on top of it.
    pub fn install(&mut self, last: Option<u64>, snapshot: ProducerSnapshot) {
        let kept: Vec<JournalEntry> = self
            .journal
            .drain(..)
            .filter(|entry| Some(entry.written.index) > last)
            .collect();
        self.producers = snapshot.producers;
        self.applied = self.applied.max(last);
        for entry in kept {
            let previous = self.producers.get(&entry.batch.producer_id).cloned();
            fold_batch(&mut self.producers, &entry.batch, entry.written);
            self.journal.push_back(JournalEntry { previous, ..entry });
        }
    }

    /// Forgets producers whose newest batch is older than the expiry at `now_ms` and applied
    /// (one with batches in the journal stays: a truncation may need its state).
    pub fn expire(&mut self, now_ms: TimestampMs) {
        let (expiry_ms, applied) = (self.config.expiry_ms, self.applied);
        self.producers.retain(|_, state| {
            let idle = now_ms.saturating_sub(state.last_timestamp_ms) >= expiry_ms;
            let settled = state.newest_index() <= applied;
            !(idle && settled)
        });
        self.expiry_checked_ms = now_ms;
    }

    /// [`ProducerTable::expire`], at most once per [`EXPIRY_CHECK_INTERVAL_MS`].
    pub fn expire_every_interval(&mut self, now_ms: TimestampMs) {
        if now_ms
            >= self
                .expiry_checked_ms
                .saturating_add(EXPIRY_CHECK_INTERVAL_MS)
        {
            self.expire(now_ms);
        }
    }
}

fn lock(table: &Mutex<ProducerTable>) -> MutexGuard<'_, ProducerTable> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn invalid_frame(reason: CorruptReason) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// A partition's producer table, shared by its log store (which records appends and
/// truncations), its state machine (applied index, snapshots) and the broker (which checks
/// batches on the leader). Clones share the table.
#[derive(Debug, Clone, Default)]
pub struct Producers {
    table: Arc<Mutex<ProducerTable>>,
}

/// Holds a [`Verdict::New`] batch's sequences until the batch is appended; dropping it before
/// that releases them (the proposal failed, a retry may be accepted). Dropping it after is a
/// no-op.
#[derive(Debug)]
pub struct Reservation {
    table: Weak<Mutex<ProducerTable>>,
    id: Option<ReservationId>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let (Some(id), Some(table)) = (self.id, self.table.upgrade()) {
            lock(&table).release(id);
        }
    }
}

impl Producers {
    pub fn new(config: ProducerConfig) -> Producers {
        Producers {
            table: Arc::new(Mutex::new(ProducerTable::new(config))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ProducerTable> {
        lock(&self.table)
    }

    /// Checks a frame (as its producer built it) on the leader, before `client_write`. See
    /// [`Verdict`] for what to do with each answer.
    pub fn check(&self, frame: &[u8]) -> Result<Verdict, CorruptReason> {
        Ok(self.check_batch(&ProducerBatch::from_frame(frame)?))
    }

    /// [`Producers::check`], for a batch already decoded.
    pub fn check_batch(&self, batch: &ProducerBatch) -> Verdict {
        let verdict = self.lock().check(batch);
        verdict.map_new(|id| Reservation {
            table: Arc::downgrade(&self.table),
            id,
        })
    }

    /// What the table knows of `producer_id`, as of the last appended index.
    pub fn state(&self, producer_id: i64) -> Option<ProducerState> {
        self.lock().producers().get(&producer_id).cloned()
    }

    /// The whole table, as of the last appended index.
    pub fn snapshot(&self) -> ProducerSnapshot {
        ProducerSnapshot {
            producers: self.lock().producers().clone(),
        }
    }

    /// Counts frames the log just appended, each with where it landed.
    pub(crate) fn record_appended<'a>(
        &self,
        appended: impl IntoIterator<Item = (&'a [u8], &'a stave_log::Appended)>,
        now_ms: TimestampMs,
    ) -> io::Result<()> {
        let batches: Vec<(ProducerBatch, Written)> = appended
            .into_iter()
            .map(|(frame, at)| {
                let batch = ProducerBatch::from_frame(frame).map_err(invalid_frame)?;
                let written = Written {
                    index: at.log_id.index.0,
                    base_offset: at.base_offset.0,
                    next_offset: at.next_offset.0,
                };
                Ok((batch, written))
            })
            .collect::<io::Result<_>>()?;
        let mut table = self.lock();
        for (batch, written) in &batches {
            table.append(batch, *written);
        }
        table.expire_every_interval(now_ms);
        Ok(())
    }

    pub(crate) fn truncate_after(&self, last_kept: Option<u64>) -> io::Result<()> {
        Ok(self.lock().truncate_after(last_kept)?)
    }

    pub(crate) fn mark_applied(&self, index: u64) {
        self.lock().mark_applied(index);
    }

    pub(crate) fn snapshot_at(&self, index: Option<u64>) -> io::Result<ProducerSnapshot> {
        Ok(self.lock().snapshot_at(index)?)
    }

    pub(crate) fn install(&self, last: Option<u64>, snapshot: ProducerSnapshot) {
        self.lock().install(last, snapshot);
    }

    /// Counts the log's frames after the last one counted (after the snapshot the table was
    /// installed from): the rebuild when the log store opens.
    pub(crate) fn replay_log(&self, log: &PartitionLog) -> io::Result<()> {
        let mut table = self.lock();
        let counted_next = table.last_index().map_or(0, |last| last + 1);
        let (first, end) = (log.first_index().0, log.next_index().0);
        if counted_next < first {
            tracing::warn!(
                counted_next,
                first,
                "the log starts after the producer table's snapshot"
            );
        }
        let mut from = counted_next.max(first);
        while from < end {
            let frames = log
                .read_by_index(LogIndex(from), LogIndex(end), REPLAY_READ_BYTES_MAX)
                .map_err(io::Error::other)?;
            let Some(last) = frames.last() else {
                break;
            };
            from = last.log_id.index.0 + 1;
            for frame in frames.iter().filter(|f| f.frame_type == FrameType::Data) {
                let (batch, written) = stored_batch(frame)?;
                table.append(&batch, written);
            }
        }
        Ok(())
    }
}

/// A stored data frame's producer fields and position.
fn stored_batch(frame: &StoredFrame) -> io::Result<(ProducerBatch, Written)> {
    let batch = ProducerBatch::from_frame(&frame.bytes).map_err(invalid_frame)?;
    let written = Written {
        index: frame.log_id.index.0,
        base_offset: frame.base_offset.0,
        next_offset: frame.base_offset.0 + u64::from(frame.record_count),
    };
    Ok((batch, written))
}

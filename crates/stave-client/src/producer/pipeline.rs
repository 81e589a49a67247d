//! The batches of one partition and their sequence numbers: pure bookkeeping, no I/O and no
//! clock of its own (the caller passes `now`), so every retry rule is testable without a
//! broker. The worker (`worker.rs`) runs it against the network.
//!
//! A record joins the *open* batch; the batch closes when it reaches `batch_bytes`, when the
//! next record would push its frame past `request_bytes_max`, on flush, or when it is sent:
//! after `linger`, at the first moment the window has room (records keep joining it until
//! then).
//! Closed batches wait in `queued`, are sent in order (at most `in_flight_max` at once) and
//! answered in order.
//!
//! **Sequences.** A batch's frame is built when it is first sent, with the producer identity
//! (id, epoch) and the next sequence number of this partition. A retry sends the *same frame*,
//! so the leader recognises a batch it already wrote and answers with the first write's
//! offsets instead of writing it twice.
//!
//! **A window** is the batches in flight. When one of them fails, nothing new is sent until
//! every batch in flight has been answered; then the failed ones go back to the front of the
//! queue, in their order, after a backoff. So a retry never overtakes an earlier batch.
//! A window that failed on a redirect (NOT_LEADER naming a leader to follow) goes again at
//! once, without the backoff, unless the window before it did too (two nodes naming each
//! other still back off).
//! The window opens to `in_flight_max` only once a batch was written: a new identity, and
//! every retry round, start with one batch at a time. The first batch of a producer the
//! broker does not know is accepted at any sequence, so were a later batch to reach it first
//! (the broker is not required to process a stream strictly in order), the earlier ones
//! would be refused for good; one batch alone establishes the sequence.
//!
//! **Gaps.** A batch refused for good (too large, fenced) or expired in doubt leaves a hole
//! in its identity's sequence that no later batch of that identity can cross. Later batches
//! that were not written are built again under a new identity (the worker asks for a new
//! producer id; the broker accepts an unknown producer at any sequence); later batches that
//! may have been written fail with the expired one, as rebuilding them could write them twice.
//! An OUT_OF_ORDER_SEQUENCE answer first means "retry after the predecessors settle" (the
//! broker may have seen batches in another order); a second one for the same batch means a
//! real gap, and the batch is rebuilt.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_log::frame::{BODY_HEADER_LEN, HEADER_LEN};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use tracing::debug;

use super::outcome::Outcome;
use crate::error::ClientError;
use crate::record::RecordMetadata;

/// Bytes of a frame before its first record.
pub(crate) const FRAME_OVERHEAD_BYTES: usize = HEADER_LEN + BODY_HEADER_LEN;

/// The longest varint a record's i32 fields take.
const VARINT_I32_BYTES_MAX: usize = 5;
/// The longest varint of an i64 (the timestamp delta).
const VARINT_I64_BYTES_MAX: usize = 10;

/// An upper bound of the bytes one record takes in a frame.
pub(crate) fn record_bytes_max(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
    headers: &[(String, Bytes)],
) -> usize {
    let optional = |b: Option<&Bytes>| VARINT_I32_BYTES_MAX + b.map_or(0, Bytes::len);
    let headers: usize = headers
        .iter()
        .map(|(k, v)| 2 * VARINT_I32_BYTES_MAX + k.len() + v.len())
        .sum();
    // length, attributes, timestamp delta, offset delta, key, value, header count, headers
    VARINT_I32_BYTES_MAX
        + 1
        + VARINT_I64_BYTES_MAX
        + VARINT_I32_BYTES_MAX
        + optional(key)
        + optional(value)
        + VARINT_I32_BYTES_MAX
        + headers
}

/// A record accepted by `send`, waiting for its batch's answer.
#[derive(Debug)]
pub(crate) struct PendingRecord {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Bytes)>,
    pub(crate) timestamp: i64,
    /// [`record_bytes_max`] of this record.
    pub(crate) bytes: usize,
    /// When its delivery times out.
    pub(crate) deadline: Instant,
    pub(crate) reply: Reply,
    /// Its share of the producer's buffer, released when the record is dropped (answered).
    #[allow(dead_code, reason = "held for its drop")]
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Where a record's outcome goes: its [`DeliveryFuture`](super::DeliveryFuture), or the
/// callback given to [`Producer::enqueue_with`](super::Producer::enqueue_with).
pub(crate) enum Reply {
    Future(oneshot::Sender<Result<RecordMetadata, ClientError>>),
    Callback(Box<dyn FnOnce(Result<RecordMetadata, ClientError>) + Send>),
}

impl Reply {
    pub(crate) fn send(self, result: Result<RecordMetadata, ClientError>) {
        match self {
            // The caller may have stopped waiting; the outcome stands all the same.
            Reply::Future(sender) => {
                let _ = sender.send(result);
            }
            Reply::Callback(callback) => {
                // A panicking callback must not take the partition's task (and the other
                // records' callbacks) down with it.
                let called =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(result)));
                if called.is_err() {
                    tracing::error!("a delivery callback panicked");
                }
            }
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Future(_) => "Reply::Future",
            Reply::Callback(_) => "Reply::Callback",
        })
    }
}

/// A producer id and epoch; [`Identity::NONE`] for a producer that is not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

impl Identity {
    pub(crate) const NONE: Identity = Identity {
        producer_id: -1,
        epoch: -1,
    };

    fn is_idempotent(self) -> bool {
        self.producer_id >= 0
    }
}

/// `sequence + delta`, wrapping from `i32::MAX` to 0 as Kafka's sequences do (and
/// `stave_raft::producers::sequence_add`).
pub(crate) fn sequence_add(sequence: i32, delta: u32) -> i32 {
    let sum = i64::from(sequence) + i64::from(delta);
    let wrapped = sum.rem_euclid(i64::from(i32::MAX) + 1);
    // In range by the modulus.
    wrapped as i32
}

#[derive(Debug, Clone)]
pub(crate) struct PipelineConfig {
    pub(crate) linger: Duration,
    pub(crate) batch_bytes: usize,
    pub(crate) request_bytes_max: usize,
    pub(crate) in_flight_max: usize,
    pub(crate) backoff: Duration,
    pub(crate) backoff_max: Duration,
}

impl PipelineConfig {
    fn backoff(&self, failures: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(self.backoff_max)
    }
}

#[derive(Debug)]
struct Built {
    identity: Identity,
    frame: Bytes,
}

#[derive(Debug)]
struct Batch {
    id: u64,
    records: Vec<PendingRecord>,
    /// Upper bound of the frame's size.
    bytes: usize,
    opened: Instant,
    /// The earliest delivery deadline of its records.
    deadline: Instant,
    built: Option<Built>,
    sends: u32,
    out_of_order: u32,
}

impl Batch {
    /// Sent under an identity and not known to be refused: it may have been written.
    fn in_doubt(&self) -> bool {
        self.built.is_some() && self.sends > 0
    }
}

/// What the worker should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing can be sent now.
    Idle,
    /// A batch must be built, and the current identity is spent: obtain a new producer id
    /// and call [`Pipeline::set_identity`].
    NeedIdentity,
    /// Send this frame for batch `batch_id`.
    Send { batch_id: u64, frame: Bytes },
}

/// A hole in `identity`'s sequence: batches with an id from `from_batch` on cannot follow.
#[derive(Debug, Clone, Copy)]
struct Gap {
    identity: Identity,
    from_batch: u64,
}

#[derive(Debug)]
pub(crate) struct Pipeline {
    topic: Arc<str>,
    partition: u32,
    config: PipelineConfig,
    /// `None`: spent (a gap); the next build needs a new one.
    identity: Option<Identity>,
    next_sequence: i32,
    open: Option<Batch>,
    queued: VecDeque<Batch>,
    in_flight: VecDeque<Batch>,
    /// A batch of the window failed: send nothing until `in_flight` drains.
    window_failed: bool,
    /// How many batches may be in flight now: 1 until a batch of the current round was
    /// written, then `in_flight_max`.
    window_open: bool,
    /// Failed batches of the window, in send order, to go back to the queue.
    retry: Vec<Batch>,
    gaps: Vec<Gap>,
    /// Consecutive failed windows (for the backoff).
    failures: u32,
    /// A batch of the failing window was redirected to a leader to follow.
    window_redirected: bool,
    /// The last failed window went again at once, on a redirect.
    redirected_last: bool,
    pause_until: Option<Instant>,
    last_error: Option<ClientError>,
    next_batch_id: u64,
}

impl Pipeline {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: u32,
        config: PipelineConfig,
        identity: Identity,
    ) -> Pipeline {
        Pipeline {
            topic,
            partition,
            config,
            identity: Some(identity),
            next_sequence: 0,
            open: None,
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            window_failed: false,
            window_open: false,
            retry: Vec::new(),
            gaps: Vec::new(),
            failures: 0,
            window_redirected: false,
            redirected_last: false,
            pause_until: None,
            last_error: None,
            next_batch_id: 0,
        }
    }

    /// Adds a record to the open batch, closing batches as they fill.
    pub(crate) fn push(&mut self, record: PendingRecord, now: Instant) {
        if let Some(open) = &self.open
            && open.bytes + record.bytes > self.config.request_bytes_max
        {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| {
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            Batch {
                id,
                records: Vec::new(),
                bytes: FRAME_OVERHEAD_BYTES,
                opened: now,
                deadline: record.deadline,
                built: None,
                sends: 0,
                out_of_order: 0,
            }
        });
        open.bytes += record.bytes;
        open.deadline = open.deadline.min(record.deadline);
        open.records.push(record);
        if open.bytes >= self.config.batch_bytes {
            self.close_open();
        }
    }

    /// Closes the open batch (linger passed, or a flush).
    pub(crate) fn close_open(&mut self) {
        if let Some(batch) = self.open.take() {
            self.queued.push_back(batch);
        }
    }

    /// When the open batch's linger ends, if it has not ended by `now` (a batch that lingered
    /// goes with the next send: no timer for it).
    pub(crate) fn linger_deadline(&self, now: Instant) -> Option<Instant> {
        self.open
            .as_ref()
            .map(|b| b.opened + self.config.linger)
            .filter(|deadline| *deadline > now)
    }

    /// The open batch's linger has ended: it may be sent.
    fn lingered(&self, now: Instant) -> bool {
        self.open
            .as_ref()
            .is_some_and(|b| b.opened + self.config.linger <= now)
    }

    /// When the worker must wake up even if nothing happens: the end of a backoff, or the
    /// delivery deadline of a waiting batch (the open one included). Only instants after
    /// `now`: one already passed has been acted on (or waits for answers in flight), and
    /// waking for it again would spin.
    pub(crate) fn wake_at(&self, now: Instant) -> Option<Instant> {
        let deadline = self
            .open
            .iter()
            .chain(self.queued.iter())
            .map(|b| b.deadline)
            .filter(|deadline| *deadline > now)
            .min();
        let pause = self.pause_until.filter(|until| *until > now);
        match (pause, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn window_limit(&self) -> usize {
        if self.window_open {
            self.config.in_flight_max
        } else {
            1
        }
    }

    /// Whether a batch could be sent now (given a leader): a closed one, or the open one
    /// once its linger ended. As Kafka's accumulator, a batch that lingered keeps taking
    /// records until there is room to send it, so `linger` 0 sends a lone record at once
    /// and still batches what arrives while the window is full.
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        !self.window_failed
            && self.pause_until.is_none_or(|until| until <= now)
            && self.in_flight.len() < self.window_limit()
            && (!self.queued.is_empty() || self.lingered(now))
    }

    /// The next frame to send, built when needed, moved to the window.
    pub(crate) fn next_send(&mut self, now: Instant) -> Next {
        if !self.can_send(now) {
            return Next::Idle;
        }
        if self.queued.is_empty() {
            // `can_send`: the open batch lingered.
            self.close_open();
        }
        let needs_identity = self
            .queued
            .front()
            .is_some_and(|batch| batch.built.is_none() && self.identity.is_none());
        if needs_identity {
            return Next::NeedIdentity;
        }
        let Some(mut batch) = self.queued.pop_front() else {
            return Next::Idle;
        };
        if batch.built.is_none()
            && let Some(identity) = self.identity
        {
            batch.built = Some(self.build(&batch, identity));
        }
        let Some(built) = &batch.built else {
            // Unreachable: `needs_identity` covered a missing identity.
            self.queued.push_front(batch);
            return Next::NeedIdentity;
        };
        let frame = built.frame.clone();
        let batch_id = batch.id;
        batch.sends += 1;
        self.in_flight.push_back(batch);
        Next::Send { batch_id, frame }
    }

    fn build(&mut self, batch: &Batch, identity: Identity) -> Built {
        let mut builder = BatchBuilder::with_capacity(batch.bytes);
        let base_sequence = if identity.is_idempotent() {
            let base = self.next_sequence;
            self.next_sequence = sequence_add(base, batch.records.len() as u32);
            base
        } else {
            -1
        };
        builder.producer(ProducerFields {
            producer_id: identity.producer_id,
            producer_epoch: identity.epoch,
            base_sequence,
        });
        for record in &batch.records {
            let headers: Vec<(&str, &[u8])> = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_ref()))
                .collect();
            builder.push(&Record {
                timestamp: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
            });
        }
        let frame = Bytes::from(builder.finish());
        debug_assert!(
            frame.len() <= batch.bytes,
            "record_bytes_max is an upper bound"
        );
        Built { identity, frame }
    }

    /// A new producer identity (after a gap): sequences start again at 0.
    pub(crate) fn set_identity(&mut self, identity: Identity) {
        self.identity = Some(identity);
        self.next_sequence = 0;
        self.window_open = false;
    }

    /// Sending failed before a request went out (no leader known, no connection): pause.
    pub(crate) fn on_send_failure(&mut self, err: ClientError, now: Instant) {
        self.failures += 1;
        self.pause_until = Some(now + self.config.backoff(self.failures));
        self.last_error = Some(err);
    }

    /// The answer for `batch_id`, one of the window's batches.
    pub(crate) fn on_response(&mut self, batch_id: u64, outcome: Outcome, now: Instant) {
        let Some(position) = self.in_flight.iter().position(|b| b.id == batch_id) else {
            debug_assert!(
                false,
                "an answer for batch {batch_id}, which is not in flight"
            );
            return;
        };
        let Some(mut batch) = self.in_flight.remove(position) else {
            return;
        };
        match outcome {
            Outcome::Written { base_offset } => {
                self.complete(batch, base_offset);
                if !self.window_failed {
                    self.failures = 0;
                    self.redirected_last = false;
                    self.window_open = true;
                }
            }
            Outcome::Retry(err) => {
                debug!(batch_id, error = %err, "batch will be retried");
                self.last_error = Some(err);
                self.window_failed = true;
                self.retry.push(batch);
            }
            Outcome::OutOfOrder(err) => {
                debug!(batch_id, error = %err, "batch refused for its sequence");
                batch.out_of_order += 1;
                if batch.out_of_order >= 2
                    && let Some(built) = &batch.built
                {
                    self.gaps.push(Gap {
                        identity: built.identity,
                        from_batch: batch.id,
                    });
                }
                self.last_error = Some(err);
                self.window_failed = true;
                self.retry.push(batch);
            }
            Outcome::Fail(err) => {
                if let Some(built) = &batch.built {
                    self.gaps.push(Gap {
                        identity: built.identity,
                        from_batch: batch.id + 1,
                    });
                }
                self.window_failed = true;
                self.fail(batch, &err);
            }
        }
        if self.window_failed && self.in_flight.is_empty() {
            self.finish_window(now);
        }
    }

    /// The failure about to be passed to [`Pipeline::on_response`] named the leader to
    /// follow (the worker follows it): the window may go again without a backoff.
    pub(crate) fn note_redirect(&mut self) {
        self.window_redirected = true;
    }

    /// Every batch of the failed window is answered: put the failed ones back in front of the
    /// queue, rebuild what a gap cut off, and back off (not after a first redirect).
    fn finish_window(&mut self, now: Instant) {
        let mut retry = std::mem::take(&mut self.retry);
        retry.extend(self.queued.drain(..));
        self.queued = retry.into();
        let gaps = std::mem::take(&mut self.gaps);
        for batch in &mut self.queued {
            let cut = batch.built.as_ref().is_some_and(|built| {
                gaps.iter()
                    .any(|gap| gap.identity == built.identity && batch.id >= gap.from_batch)
            });
            if cut {
                // Refused, or behind a batch refused for good: never written, so built
                // again under a new identity.
                batch.built = None;
                batch.out_of_order = 0;
            }
        }
        for gap in &gaps {
            self.spend(gap.identity);
        }
        self.window_failed = false;
        self.window_open = false;
        let redirected = std::mem::take(&mut self.window_redirected) && !self.redirected_last;
        self.redirected_last = redirected;
        if redirected {
            self.pause_until = None;
        } else {
            self.failures += 1;
            self.pause_until = Some(now + self.config.backoff(self.failures));
        }
    }

    /// `identity`'s sequence has a gap: stop building batches with it.
    fn spend(&mut self, identity: Identity) {
        if identity.is_idempotent() && self.identity == Some(identity) {
            self.identity = None;
        }
    }

    /// Fails waiting batches whose delivery deadline passed. One that may have been written
    /// takes with it the later batches of its identity that may have been written too.
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.window_failed {
            return;
        }
        if self.open.as_ref().is_some_and(|b| b.deadline <= now) {
            // A batch that lingered stays open until it can be sent: it expires as well.
            self.close_open();
        }
        if !self.queued.iter().any(|b| b.deadline <= now) {
            return;
        }
        let mut expired_in_doubt: Vec<(Identity, u64)> = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queued.len());
        for batch in std::mem::take(&mut self.queued) {
            let follows_expired = batch.in_doubt()
                && batch.built.as_ref().is_some_and(|built| {
                    expired_in_doubt
                        .iter()
                        .any(|(identity, id)| *identity == built.identity && batch.id > *id)
                });
            if batch.deadline > now && !follows_expired {
                kept.push_back(batch);
                continue;
            }
            if let Some(built) = batch.built.as_ref().filter(|_| batch.in_doubt()) {
                expired_in_doubt.push((built.identity, batch.id));
            }
            let err = ClientError::Timeout {
                what: format!(
                    "delivery to {}/{}{}",
                    self.topic,
                    self.partition,
                    if batch.in_doubt() {
                        " (the batch may have been written)"
                    } else {
                        ""
                    }
                ),
                elapsed: now.saturating_duration_since(batch.opened),
                last: self.last_error.as_ref().map(|e| Box::new(e.replicate())),
            };
            self.fail(batch, &err);
        }
        self.queued = kept;
        for (identity, _) in expired_in_doubt {
            self.spend(identity);
        }
    }

    fn complete(&mut self, batch: Batch, base_offset: u64) {
        for (index, record) in batch.records.into_iter().enumerate() {
            let metadata = RecordMetadata {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: base_offset + index as u64,
                timestamp: record.timestamp,
            };
            record.reply.send(Ok(metadata));
        }
    }

    fn fail(&mut self, batch: Batch, err: &ClientError) {
        debug!(batch_id = batch.id, error = %err, "batch failed");
        for record in batch.records {
            record.reply.send(Err(err.replicate()));
        }
    }

    /// No record waits anywhere in the pipeline.
    pub(crate) fn is_idle(&self) -> bool {
        self.open.is_none()
            && self.queued.is_empty()
            && self.in_flight.is_empty()
            && self.retry.is_empty()
    }

    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The id the next batch will get: a flush waits until every batch below it is done.
    pub(crate) fn next_batch_id(&self) -> u64 {
        self.next_batch_id
    }

    /// The smallest id of a batch not yet done.
    pub(crate) fn oldest_unfinished(&self) -> Option<u64> {
        self.open
            .iter()
            .chain(self.queued.iter())
            .chain(self.in_flight.iter())
            .chain(self.retry.iter())
            .map(|b| b.id)
            .min()
    }
}

impl Pipeline {
    /// Answers every record still waiting, oldest batch first, with "the producer closed"
    /// (its task is going away: the runtime shut down). A callback runs once whatever happens.
    pub(crate) fn abandon(&mut self) {
        let mut batches: Vec<Batch> = self
            .open
            .take()
            .into_iter()
            .chain(self.queued.drain(..))
            .chain(self.in_flight.drain(..))
            .chain(self.retry.drain(..))
            .collect();
        batches.sort_by_key(|batch| batch.id);
        for batch in batches {
            for record in batch.records {
                record.reply.send(Err(ClientError::Closed {
                    what: "the producer",
                }));
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.abandon();
    }
}

#[cfg(test)]
mod tests;

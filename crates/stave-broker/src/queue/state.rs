//! One partition as a queue group sees it: which records are done, which are locked to a
//! member, which wait to go out (now or after a delay), and which are on their way to the
//! dead-letter topic. Pure state: the engine ([`super::engine`]) feeds it records read from
//! the log, deliveries, settlements and the clock, and persists [`Persisted`] snapshots.
//!
//! Invariants:
//! - `floor` is the first offset not done; `done` holds only offsets above it.
//! - An offset is in at most one of `ready`, `in_flight`, `dead_lettering`, `done`.
//! - Nothing at or past `floor + max_unacked_span` is delivered.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use stave_client::ConsumerRecord;

use super::Settings;

/// Why a delivery cannot be settled as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleError {
    /// Never delivered to this member, settled already, or locked to a later delivery.
    NotHeld,
}

/// What a member asked for one record it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Ack,
    /// Deliver again, not before `delay_ms` from now.
    Release {
        delay_ms: u64,
        reason: String,
    },
    Reject {
        reason: String,
    },
    Extend,
}

/// A record read from the log and not delivered (or given back).
#[derive(Debug, Clone)]
pub struct Waiting {
    pub record: ConsumerRecord,
    /// Deliveries so far.
    pub deliveries: u32,
    /// Not delivered before this time (ms).
    pub not_before_ms: i64,
    /// The member and delivery it last went to: an ack from it is still taken while no
    /// later delivery happened (its lock expired, nobody else had it yet).
    pub last: Option<(u64, u32)>,
    pub reason: String,
}

/// A record locked to a member.
#[derive(Debug, Clone)]
pub struct Locked {
    pub record: ConsumerRecord,
    pub deliveries: u32,
    pub member: u64,
    pub deadline_ms: i64,
    pub reason: String,
}

/// A record going to the dead-letter topic (done once that write succeeded).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: ConsumerRecord,
    pub deliveries: u32,
    pub reason: String,
}

/// What a partition's state survives a failover with (the `__offsets` record's value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    pub floor: u64,
    /// Done offsets above the floor, as `[start, end)` ranges.
    pub done: Vec<(u64, u64)>,
    /// Delivery counts of records delivered more than once and not done.
    pub deliveries: Vec<(u64, u32)>,
    /// Records released with a delay: not before this time (ms).
    pub delayed: Vec<(u64, i64)>,
    pub dead_lettered: u64,
}

const PERSISTED_V1: u8 = 1;

impl Persisted {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.done.len() * 16 + self.deliveries.len() * 12 + self.delayed.len() * 16,
        );
        out.push(PERSISTED_V1);
        out.extend_from_slice(&self.floor.to_le_bytes());
        out.extend_from_slice(&self.dead_lettered.to_le_bytes());
        out.extend_from_slice(&(self.done.len() as u32).to_le_bytes());
        for (start, end) in &self.done {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&(self.deliveries.len() as u32).to_le_bytes());
        for (offset, count) in &self.deliveries {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out.extend_from_slice(&(self.delayed.len() as u32).to_le_bytes());
        for (offset, at) in &self.delayed {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
        }
        out
    }

    /// `None` when the bytes are not a state this version wrote.
    pub fn decode(bytes: &[u8]) -> Option<Persisted> {
        let mut reader = Reader(bytes);
        if reader.take::<1>()? != [PERSISTED_V1] {
            return None;
        }
        let floor = u64::from_le_bytes(reader.take()?);
        let dead_lettered = u64::from_le_bytes(reader.take()?);
        let mut done = Vec::new();
        for _ in 0..u32::from_le_bytes(reader.take()?) {
            done.push((
                u64::from_le_bytes(reader.take()?),
                u64::from_le_bytes(reader.take()?),
            ));
        }
        let mut deliveries = Vec::new();
        for _ in 0..u32::from_le_bytes(reader.take()?) {
            deliveries.push((
                u64::from_le_bytes(reader.take()?),
                u32::from_le_bytes(reader.take()?),
            ));
        }
        let mut delayed = Vec::new();
        for _ in 0..u32::from_le_bytes(reader.take()?) {
            delayed.push((
                u64::from_le_bytes(reader.take()?),
                i64::from_le_bytes(reader.take()?),
            ));
        }
        reader.0.is_empty().then_some(Persisted {
            floor,
            done,
            deliveries,
            delayed,
            dead_lettered,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_at_checked(N)?;
        self.0 = tail;
        head.try_into().ok()
    }
}

/// What a settlement or an expiry did to a record, for the engine's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (acked).
    Done,
    /// Back to waiting.
    Waiting,
    /// On its way to the dead-letter topic.
    DeadLettering,
    /// Lock renewed.
    Extended,
}

/// One partition's queue state.
#[derive(Debug)]
pub struct PartitionQueue {
    pub floor: u64,
    /// The next offset to read from the log.
    pub next_read: u64,
    pub done: BTreeSet<u64>,
    pub waiting: BTreeMap<u64, Waiting>,
    /// The waiting records a state write must name (delivered before, or delayed): so a
    /// write does not walk every record read ahead.
    marked: BTreeSet<u64>,
    pub locked: BTreeMap<u64, Locked>,
    pub dead_lettering: BTreeMap<u64, DeadLetter>,
    /// Restored from a persisted state, applied when the record is read again.
    restored_deliveries: BTreeMap<u64, u32>,
    restored_delays: BTreeMap<u64, i64>,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    /// Changed since last persisted.
    pub dirty: bool,
    /// The floor last persisted.
    pub persisted_floor: u64,
}

impl PartitionQueue {
    /// A partition read from `floor`, with what a previous coordinator persisted (when it
    /// is for the same floor).
    pub fn new(floor: u64, persisted: Option<Persisted>) -> PartitionQueue {
        let mut queue = PartitionQueue {
            floor,
            next_read: floor,
            done: BTreeSet::new(),
            waiting: BTreeMap::new(),
            marked: BTreeSet::new(),
            locked: BTreeMap::new(),
            dead_lettering: BTreeMap::new(),
            restored_deliveries: BTreeMap::new(),
            restored_delays: BTreeMap::new(),
            redeliveries: 0,
            dead_lettered: 0,
            dirty: false,
            persisted_floor: floor,
        };
        if let Some(state) = persisted.filter(|state| state.floor == floor) {
            for (start, end) in state.done {
                // A forged or damaged range must not make the set huge.
                let end = end.min(start.saturating_add(super::SPAN_MAX));
                queue
                    .done
                    .extend((start.max(floor + 1)..end).take(super::SPAN_MAX as usize));
            }
            queue.restored_deliveries = state.deliveries.into_iter().collect();
            queue.restored_delays = state.delayed.into_iter().collect();
            queue.dead_lettered = state.dead_lettered;
        }
        queue
    }

    /// What to persist now.
    pub fn persisted(&self) -> Persisted {
        let mut done = Vec::new();
        for &offset in &self.done {
            match done.last_mut() {
                Some((_, end)) if *end == offset => *end += 1,
                _ => done.push((offset, offset + 1)),
            }
        }
        let marked = self
            .marked
            .iter()
            .filter_map(|o| self.waiting.get(o).map(|w| (*o, w)));
        let mut deliveries: Vec<(u64, u32)> = marked
            .clone()
            .map(|(o, w)| (o, w.deliveries))
            .chain(self.locked.iter().map(|(o, l)| (*o, l.deliveries)))
            .chain(self.dead_lettering.iter().map(|(o, d)| (*o, d.deliveries)))
            .filter(|(_, count)| *count > 1)
            .collect();
        // Restored counts of records not read again yet still count.
        deliveries.extend(self.restored_deliveries.iter().map(|(o, c)| (*o, *c)));
        deliveries.sort_unstable();
        let mut delayed: Vec<(u64, i64)> = marked
            .filter(|(_, w)| w.not_before_ms > 0)
            .map(|(o, w)| (o, w.not_before_ms))
            .collect();
        delayed.extend(self.restored_delays.iter().map(|(o, t)| (*o, *t)));
        delayed.sort_unstable();
        Persisted {
            floor: self.floor,
            done,
            deliveries,
            delayed,
            dead_lettered: self.dead_lettered,
        }
    }

    /// Takes a record read from the log; false when it was not needed (read before, or done).
    pub fn take_read(&mut self, record: ConsumerRecord) -> bool {
        let offset = record.offset;
        if offset < self.next_read {
            return false;
        }
        self.next_read = offset + 1;
        if offset < self.floor {
            return false;
        }
        if self.done.contains(&offset) {
            // Done above the floor: the floor moves once the records below it are done.
            return false;
        }
        let deliveries = self.restored_deliveries.remove(&offset).unwrap_or(0);
        let not_before_ms = self.restored_delays.remove(&offset).unwrap_or(0);
        if deliveries > 1 || not_before_ms > 0 {
            self.marked.insert(offset);
        }
        self.waiting.insert(
            offset,
            Waiting {
                record,
                deliveries,
                not_before_ms,
                last: None,
                reason: String::new(),
            },
        );
        true
    }

    /// The log has nothing at `offset` any more (retention): skip to `to`.
    pub fn skip_to(&mut self, to: u64) {
        if to <= self.floor {
            return;
        }
        self.floor = to;
        self.next_read = self.next_read.max(to);
        self.done = self.done.split_off(&to);
        self.waiting = self.waiting.split_off(&to);
        self.marked = self.marked.split_off(&to);
        self.dirty = true;
        self.advance_floor();
    }

    fn advance_floor(&mut self) {
        loop {
            if self.done.remove(&self.floor) {
                self.floor += 1;
                self.dirty = true;
                continue;
            }
            // Between the floor and the first record still held, nothing is left: records
            // read and done are gone, records not read yet start at `next_read`.
            let held = [
                self.waiting.keys().next(),
                self.locked.keys().next(),
                self.dead_lettering.keys().next(),
                self.done.iter().next(),
            ]
            .into_iter()
            .flatten()
            .min()
            .copied();
            let first_kept = held.unwrap_or(self.next_read).min(self.next_read);
            if first_kept > self.floor {
                self.floor = first_kept;
                self.dirty = true;
                continue;
            }
            return;
        }
    }

    /// Locks the waiting record at `offset` to `member` until `deadline_ms`; its delivery
    /// count.
    pub fn lock(&mut self, offset: u64, member: u64, deadline_ms: i64) -> Option<&Locked> {
        let waiting = self.waiting.remove(&offset)?;
        self.marked.remove(&offset);
        let deliveries = waiting.deliveries + 1;
        if deliveries > 1 {
            self.redeliveries += 1;
        }
        self.locked.insert(
            offset,
            Locked {
                record: waiting.record,
                deliveries,
                member,
                deadline_ms,
                reason: waiting.reason,
            },
        );
        self.locked.get(&offset)
    }

    /// A member's settlement of the delivery (`offset`, `deliveries`).
    pub fn settle(
        &mut self,
        member: u64,
        offset: u64,
        deliveries: u32,
        action: Action,
        now_ms: i64,
        settings: &Settings,
    ) -> Result<Outcome, SettleError> {
        let (lock_ms, max_deliveries) = (settings.lock_ms, settings.max_deliveries);
        let held = self
            .locked
            .get(&offset)
            .is_some_and(|l| l.member == member && l.deliveries == deliveries);
        if !held {
            // An ack just after the lock expired, before anyone else got the record.
            let late = self
                .waiting
                .get(&offset)
                .is_some_and(|w| w.last == Some((member, deliveries)));
            if late && action == Action::Ack {
                self.waiting.remove(&offset);
                self.marked.remove(&offset);
                self.mark_done(offset);
                return Ok(Outcome::Done);
            }
            return Err(SettleError::NotHeld);
        }
        if action == Action::Extend {
            if let Some(locked) = self.locked.get_mut(&offset) {
                locked.deadline_ms = now_ms.saturating_add(lock_ms);
            }
            return Ok(Outcome::Extended);
        }
        let Some(locked) = self.locked.remove(&offset) else {
            return Err(SettleError::NotHeld);
        };
        Ok(match action {
            Action::Ack | Action::Extend => {
                self.mark_done(offset);
                Outcome::Done
            }
            Action::Release { delay_ms, reason } => {
                let not_before = if delay_ms > 0 {
                    now_ms.saturating_add(delay_ms as i64)
                } else {
                    0
                };
                self.give_back(offset, locked, reason, not_before, max_deliveries)
            }
            Action::Reject { reason } => {
                self.dead_letter(offset, locked.record, locked.deliveries, reason);
                Outcome::DeadLettering
            }
        })
    }

    /// Locks that expired by `now_ms`: their records go back (or to the dead-letter topic);
    /// answers each one's member and outcome.
    pub fn expire(&mut self, now_ms: i64, max_deliveries: u32) -> Vec<(u64, Outcome, Locked)> {
        let expired: Vec<u64> = self
            .locked
            .iter()
            .filter(|(_, l)| l.deadline_ms <= now_ms)
            .map(|(o, _)| *o)
            .collect();
        let mut out = Vec::with_capacity(expired.len());
        for offset in expired {
            let Some(locked) = self.locked.remove(&offset) else {
                continue;
            };
            let copy = locked.clone();
            let reason = if locked.reason.is_empty() {
                "lock expired".to_string()
            } else {
                locked.reason.clone()
            };
            let outcome = self.give_back(offset, locked, reason, 0, max_deliveries);
            out.push((offset, outcome, copy));
        }
        out
    }

    /// A member let go of everything it held (it left): back to waiting, no delay.
    pub fn release_member(
        &mut self,
        member: u64,
        max_deliveries: u32,
    ) -> Vec<(u64, Outcome, Locked)> {
        let held: Vec<u64> = self
            .locked
            .iter()
            .filter(|(_, l)| l.member == member)
            .map(|(o, _)| *o)
            .collect();
        let mut out = Vec::with_capacity(held.len());
        for offset in held {
            let Some(locked) = self.locked.remove(&offset) else {
                continue;
            };
            let copy = locked.clone();
            let reason = locked.reason.clone();
            let outcome = self.give_back(offset, locked, reason, 0, max_deliveries);
            out.push((offset, outcome, copy));
        }
        out
    }

    fn give_back(
        &mut self,
        offset: u64,
        locked: Locked,
        reason: String,
        not_before_ms: i64,
        max_deliveries: u32,
    ) -> Outcome {
        if locked.deliveries >= max_deliveries {
            self.dead_letter(offset, locked.record, locked.deliveries, reason);
            return Outcome::DeadLettering;
        }
        if locked.deliveries > 1 || not_before_ms > 0 {
            self.dirty = true;
            self.marked.insert(offset);
        }
        self.waiting.insert(
            offset,
            Waiting {
                last: Some((locked.member, locked.deliveries)),
                record: locked.record,
                deliveries: locked.deliveries,
                not_before_ms,
                reason,
            },
        );
        Outcome::Waiting
    }

    fn dead_letter(
        &mut self,
        offset: u64,
        record: ConsumerRecord,
        deliveries: u32,
        reason: String,
    ) {
        self.dead_lettering.insert(
            offset,
            DeadLetter {
                record,
                deliveries,
                reason,
            },
        );
    }

    /// The dead letter of `offset` is written: the record is done.
    pub fn dead_lettered(&mut self, offset: u64) -> Option<DeadLetter> {
        let letter = self.dead_lettering.remove(&offset)?;
        self.dead_lettered += 1;
        self.mark_done(offset);
        Some(letter)
    }

    fn mark_done(&mut self, offset: u64) {
        if offset >= self.floor {
            self.done.insert(offset);
            self.restored_deliveries.remove(&offset);
            self.restored_delays.remove(&offset);
            self.dirty = true;
            self.advance_floor();
        }
    }

    /// How far past the floor records may go out.
    pub fn limit(&self, max_unacked_span: u64) -> u64 {
        self.floor.saturating_add(max_unacked_span)
    }

    /// The key of a record, for key order.
    pub fn key_of(record: &ConsumerRecord) -> Option<&Bytes> {
        record.key.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn limits(max_deliveries: u32) -> Settings {
        Settings {
            lock_ms: 100,
            max_deliveries,
            ordering: super::super::Ordering::None,
            max_unacked_span: 1_000,
        }
    }

    fn record(offset: u64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        }
    }

    fn read(queue: &mut PartitionQueue, offsets: std::ops::Range<u64>) {
        for offset in offsets {
            queue.take_read(record(offset));
        }
    }

    #[test]
    fn the_floor_moves_over_done_records_in_any_order() {
        let mut queue = PartitionQueue::new(10, None);
        read(&mut queue, 10..14);
        for offset in 10..14 {
            queue.lock(offset, 1, 1_000).unwrap();
        }
        for offset in [12, 11, 13] {
            assert_eq!(
                queue.settle(1, offset, 1, Action::Ack, 0, &limits(5)),
                Ok(Outcome::Done)
            );
            assert_eq!(queue.floor, 10);
        }
        queue.settle(1, 10, 1, Action::Ack, 0, &limits(5)).unwrap();
        assert_eq!(queue.floor, 14);
        assert!(queue.done.is_empty());
    }

    #[test]
    fn a_delivery_is_settled_once_and_only_by_its_member() {
        let mut queue = PartitionQueue::new(0, None);
        read(&mut queue, 0..1);
        queue.lock(0, 1, 1_000).unwrap();
        assert_eq!(
            queue.settle(2, 0, 1, Action::Ack, 0, &limits(5)),
            Err(SettleError::NotHeld)
        );
        assert_eq!(
            queue.settle(1, 0, 2, Action::Ack, 0, &limits(5)),
            Err(SettleError::NotHeld)
        );
        queue.settle(1, 0, 1, Action::Ack, 0, &limits(5)).unwrap();
        assert_eq!(
            queue.settle(1, 0, 1, Action::Ack, 0, &limits(5)),
            Err(SettleError::NotHeld)
        );
    }

    #[test]
    fn an_expired_lock_redelivers_and_refuses_the_old_delivery_after() {
        let mut queue = PartitionQueue::new(0, None);
        read(&mut queue, 0..1);
        queue.lock(0, 1, 100).unwrap();
        let expired = queue.expire(100, 5);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].1, Outcome::Waiting);
        assert_eq!(queue.lock(0, 2, 200).unwrap().deliveries, 2);
        assert_eq!(
            queue.settle(1, 0, 1, Action::Ack, 150, &limits(5)),
            Err(SettleError::NotHeld)
        );
        assert_eq!(queue.redeliveries, 1);
    }

    #[test]
    fn an_ack_after_expiry_counts_while_nobody_else_has_the_record() {
        let mut queue = PartitionQueue::new(0, None);
        read(&mut queue, 0..1);
        queue.lock(0, 1, 100).unwrap();
        queue.expire(100, 5);
        assert_eq!(
            queue.settle(1, 0, 1, Action::Ack, 150, &limits(5)),
            Ok(Outcome::Done)
        );
        assert_eq!(queue.floor, 1);
    }

    #[test]
    fn the_last_allowed_delivery_goes_to_the_dead_letter_topic() {
        let mut queue = PartitionQueue::new(0, None);
        read(&mut queue, 0..1);
        for delivery in 1..=3 {
            queue.lock(0, 1, 1_000).unwrap();
            let outcome = queue
                .settle(
                    1,
                    0,
                    delivery,
                    Action::Release {
                        delay_ms: 0,
                        reason: format!("try {delivery}"),
                    },
                    0,
                    &limits(3),
                )
                .unwrap();
            let expected = if delivery < 3 {
                Outcome::Waiting
            } else {
                Outcome::DeadLettering
            };
            assert_eq!(outcome, expected);
        }
        assert_eq!(queue.floor, 0);
        let letter = queue.dead_lettered(0).unwrap();
        assert_eq!((letter.deliveries, letter.reason.as_str()), (3, "try 3"));
        assert_eq!((queue.floor, queue.dead_lettered), (1, 1));
    }

    #[test]
    fn persisted_state_restores_done_records_counts_and_delays() {
        let mut queue = PartitionQueue::new(0, None);
        read(&mut queue, 0..5);
        for offset in 0..5 {
            queue.lock(offset, 1, 1_000).unwrap();
        }
        queue.settle(1, 1, 1, Action::Ack, 0, &limits(5)).unwrap();
        queue.settle(1, 2, 1, Action::Ack, 0, &limits(5)).unwrap();
        let release = Action::Release {
            delay_ms: 0,
            reason: String::new(),
        };
        queue.settle(1, 3, 1, release, 0, &limits(5)).unwrap();
        queue.lock(3, 1, 1_000).unwrap();
        let delay = Action::Release {
            delay_ms: 500,
            reason: String::new(),
        };
        queue.settle(1, 4, 1, delay, 1_000, &limits(5)).unwrap();
        let persisted = queue.persisted();
        let bytes = persisted.encode();
        let back = Persisted::decode(&bytes).unwrap();
        assert_eq!(back, persisted);
        assert_eq!(back.done, vec![(1, 3)]);
        assert_eq!(back.deliveries, vec![(3, 2)]);
        assert_eq!(back.delayed, vec![(4, 1_500)]);

        let mut again = PartitionQueue::new(0, Some(back));
        read(&mut again, 0..5);
        let waiting: Vec<u64> = again.waiting.keys().copied().collect();
        assert_eq!(waiting, vec![0, 3, 4]);
        assert_eq!(again.waiting[&3].deliveries, 2);
        assert_eq!(again.waiting[&4].not_before_ms, 1_500);
    }

    #[test]
    fn a_state_for_another_floor_is_ignored() {
        let persisted = Persisted {
            floor: 3,
            done: vec![(5, 6)],
            ..Persisted::default()
        };
        let mut queue = PartitionQueue::new(7, Some(persisted));
        read(&mut queue, 7..8);
        assert!(queue.done.is_empty());
        assert_eq!(queue.waiting.len(), 1);
    }

    #[test]
    fn undecodable_state_is_refused() {
        assert_eq!(Persisted::decode(&[]), None);
        assert_eq!(Persisted::decode(&[9, 0, 0]), None);
        let mut bytes = Persisted::default().encode();
        bytes.push(0);
        assert_eq!(Persisted::decode(&bytes), None);
    }
}

//! Exactly-once publish by message id. Per partition this node leads, a table of the ids
//! written within the topic's `dedupe.window.ms` (at most `dedupe.max.ids` of them), kept as
//! 128-bit xxh3 hashes of the `id` header, each with the offset it was written at. A Publish
//! record whose id is in the table is answered with that offset and `duplicate`, and nothing
//! is written; one whose id is being written right now is answered DUPLICATE_IN_FLIGHT.
//!
//! The table is the leader's: it is built for one Raft term, from the log's tail (every
//! record of the window, whichever client wrote it), before the first Publish of that term
//! is checked against it; a term change rebuilds it. So a retry that reaches a new leader
//! after a failover still finds the first write.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use stave_log::batch::BatchView;
use stave_log::message_id::MESSAGE_ID_HEADER;
use stave_raft::Partition;
use stave_raft::group::RaftGroupId;
use tokio::sync::Mutex;

use crate::broker::{Broker, lock};
use crate::error::BrokerError;
use crate::routing::Target;

/// The hash an id is kept as.
pub(crate) fn id_hash(id: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id)
}

/// What the table knows of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    New,
    /// Written at this offset, within the window.
    Written(u64),
    /// Being written by another request now.
    InFlight,
}

/// One partition's ids, for one leader term.
#[derive(Debug)]
pub(crate) struct IdTable {
    term: u64,
    window_ms: i64,
    max_ids: usize,
    /// Hash → (offset, written at in epoch ms), or [`IN_FLIGHT`] while it is being written
    /// (one map, so checking an id and marking it in flight is one lookup).
    written: HashMap<u128, (u64, i64), ById>,
    /// (written at, hash) of the written ids, oldest first; an entry whose hash was written
    /// again later is skipped when it expires.
    order: VecDeque<(i64, u128)>,
    /// Ids the cap evicted while younger than the window (the first one is logged).
    evicted_young: u64,
    /// While the cap cuts the table short of the window: when the oldest id kept was
    /// written (the effective window reaches back to it).
    cut_since: Option<i64>,
    /// `cut_since` as last reported with the partition's leadership.
    noted: Option<i64>,
}

impl IdTable {
    pub(crate) fn new(term: u64, window_ms: u64, max_ids: usize) -> IdTable {
        IdTable {
            term,
            window_ms: i64::try_from(window_ms).unwrap_or(i64::MAX),
            max_ids: max_ids.max(1),
            written: HashMap::default(),
            order: VecDeque::new(),
            evicted_young: 0,
            cut_since: None,
            noted: None,
        }
    }

    /// `Some(note)` when the effective window changed (by a second or more, or the cut began
    /// or ended) since the last call: what to report with the partition's leadership.
    pub(crate) fn note_change(&mut self) -> Option<Option<i64>> {
        let changed = match (self.noted, self.cut_since) {
            (Some(noted), Some(now)) => now.abs_diff(noted) >= 1_000,
            (noted, now) => noted != now,
        };
        changed.then(|| {
            self.noted = self.cut_since;
            self.cut_since
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.written.len()
    }

    fn expire(&mut self, now_ms: i64) {
        while let Some(&(at, hash)) = self.order.front() {
            if now_ms.saturating_sub(at) < self.window_ms {
                break;
            }
            self.order.pop_front();
            // Ids leave by age again: the table holds the whole window.
            self.cut_since = None;
            if self
                .written
                .get(&hash)
                .is_some_and(|(_, written)| *written == at)
            {
                self.written.remove(&hash);
            }
        }
    }

    /// What the table knows of `hash` now; a new one is marked in flight (its writer must
    /// [`end`](IdTable::end) it).
    pub(crate) fn begin(&mut self, hash: u128, now_ms: i64) -> Seen {
        self.expire(now_ms);
        match self.written.entry(hash) {
            Entry::Occupied(seen) if *seen.get() == IN_FLIGHT => Seen::InFlight,
            Entry::Occupied(seen) => Seen::Written(seen.get().0),
            Entry::Vacant(new) => {
                new.insert(IN_FLIGHT);
                Seen::New
            }
        }
    }

    /// The write of `hash` ended: at `offset` if it was written.
    pub(crate) fn end(&mut self, hash: u128, written: Option<(u64, i64)>) {
        match written {
            Some((offset, at)) => self.insert(hash, offset, at),
            None => {
                if self.written.get(&hash) == Some(&IN_FLIGHT) {
                    self.written.remove(&hash);
                }
            }
        }
    }

    /// Records `hash` written at `offset` at `at_ms`; past the cap, the oldest id goes.
    pub(crate) fn insert(&mut self, hash: u128, offset: u64, at_ms: i64) {
        self.written.insert(hash, (offset, at_ms));
        self.order.push_back((at_ms, hash));
        while self.written.len() > self.max_ids {
            let Some((at, oldest)) = self.order.pop_front() else {
                break;
            };
            if self
                .written
                .get(&oldest)
                .is_some_and(|(_, written)| *written == at)
            {
                self.written.remove(&oldest);
                if at_ms.saturating_sub(at) < self.window_ms {
                    if self.evicted_young == 0 {
                        tracing::warn!(
                            max_ids = self.max_ids,
                            kept_ms = at_ms.saturating_sub(at),
                            window_ms = self.window_ms,
                            "dedupe.max.ids evicts ids younger than dedupe.window.ms: retries \
                             older than kept_ms are no longer recognised (raise dedupe.max.ids)"
                        );
                    }
                    self.evicted_young += 1;
                    self.cut_since = self.order.front().map(|(at, _)| *at);
                } else {
                    self.cut_since = None;
                }
            }
        }
    }
}

/// The value of an id being written (no record is written at time `i64::MIN`).
const IN_FLIGHT: (u64, i64) = (u64::MAX, i64::MIN);

/// The tables of the partitions this node leads (or led until the last housekeeping pass),
/// by Raft group.
pub(crate) type IdTables = std::sync::Mutex<HashMap<RaftGroupId, Arc<Mutex<IdTable>>>>;

/// Hashes an id hash (already uniform: xxh3) by taking its low 64 bits, not by hashing it
/// again with SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; any other input still gets a fair hash.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

/// A map or set keyed by id hashes.
pub(crate) type ById = std::hash::BuildHasherDefault<IdHasher>;

/// Bytes read per step when a table is rebuilt.
const REBUILD_READ_BYTES: usize = 4 << 20;

impl Broker {
    /// Forgets the tables of partitions this node no longer leads (a new term rebuilds them
    /// anyway) or that are gone.
    pub(crate) fn drop_id_tables_not_led(&self) {
        lock(&self.id_tables).retain(|group, _| {
            let led = self
                .node()
                .partition(*group)
                .is_some_and(|partition| partition.leads());
            if !led {
                self.node().groups().set_note(*group, None);
            }
            led
        });
    }

    /// Reports `table`'s effective window with `group`'s leadership, if it changed.
    pub(crate) fn note_effective_window(&self, group: RaftGroupId, table: &mut IdTable) {
        if let Some(note) = table.note_change() {
            self.node().groups().set_note(group, note);
        }
    }

    /// `target`'s id table on `partition` (which leads), rebuilt from the log's tail first if
    /// it was built in another term. `None` if the topic has dedupe off.
    pub(crate) async fn id_table(
        &self,
        target: &Target,
        partition: &Partition,
    ) -> Result<Option<Arc<Mutex<IdTable>>>, BrokerError> {
        let window_ms = target.config.dedupe_window_ms;
        if window_ms == 0 {
            return Ok(None);
        }
        let max_ids = target.config.dedupe_max_ids;
        let shared = lock(&self.id_tables)
            .entry(target.raft_group)
            .or_insert_with(|| Arc::new(Mutex::new(IdTable::new(0, window_ms, max_ids))))
            .clone();
        let mut table = shared.lock().await;
        let term = partition.term();
        if table.term != term || table.window_ms != window_ms as i64 || table.max_ids != max_ids {
            *table = self
                .rebuild(target, partition, term, window_ms, max_ids)
                .await?;
            self.node().groups().set_note(target.raft_group, None);
            self.note_effective_window(target.raft_group, &mut table);
        }
        drop(table);
        Ok(Some(shared))
    }

    /// A table for `term`, from every record of the window in the log, once everything the
    /// log holds is committed (a new leader's first commit covers its predecessors' entries).
    async fn rebuild(
        &self,
        target: &Target,
        partition: &Partition,
        term: u64,
        window_ms: u64,
        max_ids: usize,
    ) -> Result<IdTable, BrokerError> {
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.config().produce_timeout();
        let watermarks = loop {
            let watermarks = partition
                .watermarks()
                .await
                .map_err(|err| self.replication_error(target, err))?;
            if watermarks.high_watermark >= watermarks.log_end {
                break watermarks;
            }
            let mut moved = partition.subscribe_high_watermark();
            let caught_up = tokio::time::timeout_at(
                deadline,
                moved.wait_for(|hwm| *hwm >= watermarks.log_end.0),
            )
            .await;
            if !matches!(caught_up, Ok(Ok(_))) {
                return Err(self.leader_not_available(target));
            }
        };
        let mut table = IdTable::new(term, window_ms, max_ids);
        let since = crate::consumer_group::now_ms().saturating_sub(window_ms as i64);
        let from = partition
            .offset_for_timestamp(since)
            .await
            .map_err(|err| self.replication_error(target, err))?
            .unwrap_or(watermarks.high_watermark)
            .max(watermarks.log_start);
        let mut at = from;
        while at < watermarks.high_watermark {
            let frames = partition
                .read_committed(at, watermarks.high_watermark, REBUILD_READ_BYTES)
                .await
                .map_err(|err| self.replication_error(target, err))?;
            let next = frames.next_offset;
            for batch in frames.batches().flatten() {
                add_batch(&mut table, &batch);
            }
            if next <= at {
                break;
            }
            at = next;
        }
        tracing::debug!(
            topic = %target.topic,
            partition = target.partition,
            ids = table.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "id table rebuilt from the log's tail"
        );
        Ok(table)
    }
}

/// Adds every id of a stored batch to `table`.
fn add_batch(table: &mut IdTable, batch: &BatchView) {
    for record in batch.records().flatten() {
        let id = record
            .headers()
            .find(|(key, _)| *key == MESSAGE_ID_HEADER)
            .map(|(_, value)| value);
        if let Some(id) = id {
            table.insert(id_hash(id), record.offset.0, record.timestamp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_then_in_flight_then_written_at_its_offset() {
        let mut table = IdTable::new(1, 60_000, 100);
        let id = id_hash(b"order-7");
        assert_eq!(table.begin(id, 1_000), Seen::New);
        assert_eq!(table.begin(id, 1_001), Seen::InFlight);
        table.end(id, Some((42, 1_002)));
        assert_eq!(table.begin(id, 1_003), Seen::Written(42));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_its_id_free_for_a_retry() {
        let mut table = IdTable::new(1, 60_000, 100);
        let id = id_hash(b"order-7");
        assert_eq!(table.begin(id, 1_000), Seen::New);
        table.end(id, None);
        assert_eq!(table.begin(id, 1_001), Seen::New);
    }

    #[test]
    fn ids_leave_the_table_after_the_window() {
        let mut table = IdTable::new(1, 60_000, 100);
        let (old, young) = (id_hash(b"old"), id_hash(b"young"));
        table.insert(old, 1, 1_000);
        table.insert(young, 2, 30_000);
        assert_eq!(table.begin(old, 60_999), Seen::Written(1));
        assert_eq!(table.begin(old, 61_000), Seen::New, "60 s after its write");
        assert_eq!(table.begin(young, 61_000), Seen::Written(2));
    }

    #[test]
    fn the_cap_evicts_the_oldest_ids_first() {
        let mut table = IdTable::new(1, 60_000, 2);
        let ids: Vec<u128> = (0..3u8).map(|i| id_hash(&[i])).collect();
        for (offset, id) in ids.iter().enumerate() {
            table.insert(*id, offset as u64, 1_000 + offset as i64);
        }
        assert_eq!(table.len(), 2);
        assert_eq!(table.evicted_young, 1);
        assert_eq!(
            table.note_change(),
            Some(Some(1_001)),
            "the window reaches back to the oldest id kept"
        );
        assert_eq!(table.note_change(), None, "reported once");
        assert_eq!(table.begin(ids[0], 1_010), Seen::New);
        assert_eq!(table.begin(ids[2], 1_010), Seen::Written(2));
        assert_eq!(table.begin(ids[2], 62_000), Seen::New, "expired");
        assert_eq!(table.note_change(), Some(None), "the whole window again");
    }
}

//! The partition state machine: what Raft has committed and applied. For a partition that is
//! the high watermark (the offset after the last applied record: consumers read below it) and
//! the membership. Its snapshot is a few numbers and the idempotent producer table as of its
//! last index (kept in `{dir}/snapshot`, replaced atomically): the data itself stays in the
//! log, and retention moves the log start after a snapshot.
//!
//! The producer table ([`Producers`]) follows the *appended* log, so the log store keeps it;
//! the state machine owns it, hands it to the log store (through [`InstalledSnapshots`]),
//! tells it the applied index, takes it into snapshots and restores it from them.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use stave_log::frame::{BodyHeader, HEADER_LEN};

use serde::{Deserialize, Serialize};

use crate::offsets::OffsetsTable;
use crate::producers::{ProducerConfig, ProducerSnapshot, Producers};
use crate::snapshot_file::{SnapshotFile, SnapshotLayout, StoredMeta};
use crate::stats::ReplicaCounters;
use crate::types::{Applied, FramePayload, LogIdOf, SnapshotCodec, StoredMembershipOf, TypeConfig};

pub type SnapshotMetaOf = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type SnapshotOf = openraft::alias::SnapshotOf<TypeConfig, PartitionSnapshot>;

/// A partition's snapshot: the offset after the last record it covers, and the producer
/// table as of its last index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    pub next_offset: u64,
    #[serde(default)]
    pub producers: ProducerSnapshot,
    /// An `__offsets` partition's committed offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<OffsetsTable>,
}

/// What a partition's records mean to its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionKind {
    /// A user topic's: the state machine only counts them.
    #[default]
    Data,
    /// `__offsets`: committed offsets, applied to an [`OffsetsTable`].
    Offsets,
}

impl SnapshotCodec for PartitionSnapshot {
    fn encode_snapshot(&self) -> io::Result<bytes::Bytes> {
        serde_json::to_vec(self)
            .map(bytes::Bytes::from)
            .map_err(io::Error::other)
    }

    fn decode_snapshot(bytes: &[u8]) -> io::Result<Self> {
        serde_json::from_slice(bytes).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }
}

#[derive(Debug, Clone, Default)]
pub struct PartitionStateMachine {
    state: Arc<Mutex<State>>,
    installed: InstalledSnapshots,
    /// The high watermark, for fetches that wait for data.
    high_watermark: Arc<HighWatermark>,
    /// Where the current snapshot is kept (`{dir}/snapshot`); none keeps it in memory only.
    file: Option<SnapshotFile<PartitionSnapshot>>,
    /// Held while a snapshot is written and made current: a snapshot built here (retention,
    /// on any replica) and one installed from the leader never interleave, and an older one
    /// never replaces a newer one.
    persisting: Arc<tokio::sync::Mutex<()>>,
}

/// The high watermark as a watch.
#[derive(Debug)]
struct HighWatermark(tokio::sync::watch::Sender<u64>);

impl Default for HighWatermark {
    fn default() -> Self {
        HighWatermark(tokio::sync::watch::Sender::new(0))
    }
}

/// The snapshot as stored: JSON, small, replaced atomically. The meta's fields come first,
/// at the top level beside the snapshot's.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    #[serde(flatten)]
    meta: StoredMeta,
    next_offset: u64,
    #[serde(default)]
    producers: ProducerSnapshot,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offsets: Option<OffsetsTable>,
}

impl SnapshotLayout for PartitionSnapshot {
    const FILE_NAME: &'static str = "snapshot";

    fn encode_file(meta: &SnapshotMetaOf, snapshot: &Self) -> io::Result<Vec<u8>> {
        let stored = StoredSnapshot {
            meta: StoredMeta::from_meta(meta)?,
            next_offset: snapshot.next_offset,
            producers: snapshot.producers.clone(),
            offsets: snapshot.offsets.clone(),
        };
        serde_json::to_vec(&stored).map_err(io::Error::other)
    }

    fn decode_file(bytes: &[u8]) -> io::Result<(SnapshotMetaOf, Self)> {
        let stored: StoredSnapshot = serde_json::from_slice(bytes).map_err(io::Error::other)?;
        let snapshot = PartitionSnapshot {
            next_offset: stored.next_offset,
            producers: stored.producers,
            offsets: stored.offsets,
        };
        Ok((stored.meta.into_meta()?, snapshot))
    }
}

/// Where the last installed snapshot ends: `(last Raft index, next offset)`. The log store
/// reads it when openraft purges past the log's end after an install, to start the log at
/// the snapshot's offset. It also carries the partition's producer table, which the log store
/// keeps up to date.
#[derive(Debug, Clone)]
pub struct InstalledSnapshots {
    sender: Arc<tokio::sync::watch::Sender<Option<(u64, u64)>>>,
    producers: Producers,
    /// The replica's event counts (snapshots here, purges in the log store, leaderships
    /// from the Raft core), which the state machine and the log store both reach through this.
    counters: Arc<ReplicaCounters>,
}

impl Default for InstalledSnapshots {
    fn default() -> Self {
        InstalledSnapshots::with_producers(Producers::default())
    }
}

impl InstalledSnapshots {
    fn with_producers(producers: Producers) -> Self {
        InstalledSnapshots {
            sender: Arc::new(tokio::sync::watch::Sender::new(None)),
            producers,
            counters: Arc::default(),
        }
    }

    /// The replica's event counts.
    pub fn counters(&self) -> &Arc<ReplicaCounters> {
        &self.counters
    }

    /// The partition's producer table.
    pub fn producers(&self) -> &Producers {
        &self.producers
    }

    /// Announces that a snapshot ending at Raft index `last_index` is installed, with
    /// `next_offset` the offset after it: the log store, purging past its end, restarts the
    /// log there. A state machine calls it once the snapshot is in place.
    pub fn publish(&self, last_index: u64, next_offset: u64) {
        self.sender.send_replace(Some((last_index, next_offset)));
    }

    /// Waits (at most `wait_max`) until a snapshot ending at `index` is installed; returns the
    /// offset after it.
    pub async fn next_offset_at(&self, index: u64, wait_max: std::time::Duration) -> Option<u64> {
        let mut receiver = self.sender.subscribe();
        let found = tokio::time::timeout(
            wait_max,
            receiver.wait_for(|installed| installed.is_some_and(|(last, _)| last == index)),
        )
        .await
        .ok()?
        .ok()?;
        found.map(|(_, next_offset)| next_offset)
    }
}

#[derive(Debug, Default)]
struct State {
    applied: Option<LogIdOf>,
    membership: StoredMembershipOf,
    /// The high watermark: the offset after the last applied record.
    next_offset: u64,
    current_snapshot: Option<(SnapshotMetaOf, PartitionSnapshot)>,
    /// `__offsets` partitions: the committed offsets as of `applied`.
    offsets: Option<OffsetsTable>,
}

impl PartitionStateMachine {
    /// A state machine that keeps its snapshot in `dir`, starting from the one found there
    /// (a restarted replica whose log was purged resumes after it).
    pub fn open(dir: &Path) -> io::Result<PartitionStateMachine> {
        PartitionStateMachine::open_with(dir, ProducerConfig::default())
    }

    /// [`PartitionStateMachine::open`], with the producer table's settings.
    pub fn open_with(dir: &Path, producers: ProducerConfig) -> io::Result<PartitionStateMachine> {
        PartitionStateMachine::open_kind(dir, producers, PartitionKind::Data)
    }

    /// [`PartitionStateMachine::open_with`], for a partition of `kind`.
    pub fn open_kind(
        dir: &Path,
        producers: ProducerConfig,
        kind: PartitionKind,
    ) -> io::Result<PartitionStateMachine> {
        let file = SnapshotFile::new(dir);
        let stored = file.read()?;
        let sm = PartitionStateMachine {
            file: Some(file),
            installed: InstalledSnapshots::with_producers(Producers::new(producers)),
            ..Default::default()
        };
        if kind == PartitionKind::Offsets {
            sm.lock().offsets = Some(OffsetsTable::default());
        }
        if let Some((meta, snapshot)) = stored {
            let mut state = sm.lock();
            if let (Some(table), Some(saved)) = (state.offsets.as_mut(), &snapshot.offsets) {
                *table = saved.clone();
            }
            let last = meta.last_log_id.map(|id| id.index);
            sm.installed
                .producers
                .install(last, snapshot.producers.clone());
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.next_offset = snapshot.next_offset;
            sm.high_watermark.0.send_replace(snapshot.next_offset);
            state.current_snapshot = Some((meta, snapshot));
        }
        Ok(sm)
    }

    /// Persists a snapshot (when there is a directory), from a blocking thread.
    async fn persist(&self, meta: &SnapshotMetaOf, data: &PartitionSnapshot) -> io::Result<()> {
        match &self.file {
            Some(file) => file.persist(meta, data).await,
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where installed snapshots end, for this partition's [`crate::LogStore`].
    pub fn installed_snapshots(&self) -> InstalledSnapshots {
        self.installed.clone()
    }

    /// The high watermark: consumers may read offsets below it.
    pub fn high_watermark(&self) -> u64 {
        self.lock().next_offset
    }

    /// An `__offsets` partition's committed offsets, as of the applied index (none for other
    /// partitions).
    pub fn offsets(&self) -> Option<OffsetsTable> {
        self.lock().offsets.clone()
    }

    /// One committed offset of an `__offsets` partition.
    pub fn committed(&self, key: &crate::offsets::OffsetKey) -> Option<crate::offsets::Committed> {
        self.lock()
            .offsets
            .as_ref()
            .and_then(|t| t.get(key).cloned())
    }

    /// A receiver that sees the high watermark move (fetches waiting for data).
    pub fn subscribe_high_watermark(&self) -> tokio::sync::watch::Receiver<u64> {
        self.high_watermark.0.subscribe()
    }

    /// The partition's idempotent producer table: the leader checks each batch against it
    /// before proposing it.
    pub fn producers(&self) -> Producers {
        self.installed.producers.clone()
    }
}

fn record_count(frame: &FramePayload) -> io::Result<u32> {
    let body = frame.0.get(HEADER_LEN..).unwrap_or_default();
    BodyHeader::decode(body)
        .map(|header| header.record_count)
        .map_err(|reason| io::Error::new(io::ErrorKind::InvalidData, reason.to_string()))
}

impl RaftSnapshotBuilder<TypeConfig> for PartitionStateMachine {
    type SnapshotData = PartitionSnapshot;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf, io::Error> {
        let _persisting = self.persisting.lock().await;
        let (meta, data) = {
            // The state's lock is held while the table is read at the applied index: apply
            // tells the table an applied index only after setting it here.
            let state = self.lock();
            let meta = SnapshotMetaOf {
                last_log_id: state.applied,
                last_membership: state.membership.clone(),
            };
            let last = state.applied.map(|id| id.index);
            (
                meta,
                PartitionSnapshot {
                    next_offset: state.next_offset,
                    producers: self.installed.producers.snapshot_at(last)?,
                    offsets: state.offsets.clone(),
                },
            )
        };
        // A snapshot installed from the leader while this one waited may be as new: keep it.
        let current = self.lock().current_snapshot.clone();
        if let Some((current_meta, current)) = current
            && current_meta.last_log_id >= meta.last_log_id
        {
            return Ok(SnapshotOf {
                meta: current_meta,
                snapshot: current,
            });
        }
        self.persist(&meta, &data).await?;
        self.installed.counters.snapshot_taken();
        self.lock().current_snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for PartitionStateMachine {
    type SnapshotData = PartitionSnapshot;
    type SnapshotBuilder = PartitionStateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf>, StoredMembershipOf), io::Error> {
        let state = self.lock();
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut last_applied = None;
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            last_applied = Some(entry.log_id.index);
            let mut state = self.lock();
            state.applied = Some(entry.log_id);
            let base_offset = state.next_offset;
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(frame) => {
                    state.next_offset += u64::from(record_count(frame)?);
                    if let Some(table) = state.offsets.as_mut() {
                        table.apply_frame(&frame.0);
                    }
                }
                EntryPayload::Membership(membership) => {
                    state.membership =
                        StoredMembershipOf::new(Some(entry.log_id), membership.clone());
                }
            }
            let applied = Applied {
                base_offset,
                next_offset: state.next_offset,
                reply: bytes::Bytes::new(),
            };
            drop(state);
            if let Some(responder) = responder {
                responder.send(applied);
            }
        }
        let high_watermark = self.lock().next_offset;
        self.high_watermark.0.send_if_modified(|current| {
            let moved = *current != high_watermark;
            *current = high_watermark;
            moved
        });
        // Raft never truncates applied entries: the producer table forgets how to undo them.
        if let Some(index) = last_applied {
            self.installed.producers.mark_applied(index);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf,
        snapshot: PartitionSnapshot,
    ) -> Result<(), io::Error> {
        let _persisting = self.persisting.lock().await;
        self.persist(meta, &snapshot).await?;
        self.installed.counters.snapshot_taken();
        let mut state = self.lock();
        let last = meta.last_log_id.map(|id| id.index);
        self.installed
            .producers
            .install(last, snapshot.producers.clone());
        state.applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.next_offset = snapshot.next_offset;
        let next_offset = snapshot.next_offset;
        if let Some(table) = state.offsets.as_mut() {
            *table = snapshot.offsets.clone().unwrap_or_default();
        }
        state.current_snapshot = Some((meta.clone(), snapshot));
        drop(state);
        self.high_watermark.0.send_replace(next_offset);
        if let Some(last) = meta.last_log_id {
            self.installed.publish(last.index, next_offset);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf>, io::Error> {
        let state = self.lock();
        Ok(state
            .current_snapshot
            .clone()
            .map(|(meta, snapshot)| SnapshotOf { meta, snapshot }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::snapshot_file::SnapshotLayout;

    /// Snapshot files as this crate wrote them before the file handling was shared with the
    /// controller (commit 05eaea9): a node restarted on old data reads them, and writes the
    /// same bytes again.
    const WRITTEN_WITH_OFFSETS: &str = r#"{"last":[3,57],"membership_log_id":[2,41],"membership":"{\"configs\":[[1,2]],\"nodes\":{\"1\":\"10.0.0.1:7070\",\"2\":\"10.0.0.2:7070\",\"3\":\"10.0.0.3:7070\"}}","next_offset":105,"producers":{"producers":{"7":{"epoch":2,"batches":[{"base_sequence":0,"last_sequence":4,"written":{"index":50,"base_offset":100,"next_offset":105}}],"last_timestamp_ms":1700000000000}}},"offsets":{"entries":[[{"group":"g","topic":"t","partition":1},{"offset":9,"commit_ms":5,"metadata":"m"}]]}}"#;
    const WRITTEN_WITHOUT_OFFSETS: &str = r#"{"last":[3,57],"membership_log_id":[2,41],"membership":"{\"configs\":[[1,2]],\"nodes\":{\"1\":\"10.0.0.1:7070\",\"2\":\"10.0.0.2:7070\",\"3\":\"10.0.0.3:7070\"}}","next_offset":105,"producers":{"producers":{"7":{"epoch":2,"batches":[{"base_sequence":0,"last_sequence":4,"written":{"index":50,"base_offset":100,"next_offset":105}}],"last_timestamp_ms":1700000000000}}}}"#;
    const WRITTEN_EMPTY: &str = r#"{"last":null,"membership_log_id":null,"membership":"{\"configs\":[],\"nodes\":{}}","next_offset":0,"producers":{"producers":{}}}"#;

    fn written_meta() -> SnapshotMetaOf {
        let nodes: std::collections::BTreeMap<u64, openraft::impls::BasicNode> = (1..=3)
            .map(|id| {
                (
                    id,
                    openraft::impls::BasicNode::new(format!("10.0.0.{id}:7070")),
                )
            })
            .collect();
        let membership = crate::types::MembershipOf::new(vec![[1, 2].into()], nodes).unwrap();
        let log_id = |term, index| crate::types::from_log_id(stave_log::LogId::new(term, index));
        SnapshotMetaOf {
            last_log_id: Some(log_id(3, 57)),
            last_membership: StoredMembershipOf::new(Some(log_id(2, 41)), membership),
        }
    }

    #[test]
    fn snapshot_files_written_before_read_back_and_write_the_same_bytes() {
        for written in [WRITTEN_WITH_OFFSETS, WRITTEN_WITHOUT_OFFSETS, WRITTEN_EMPTY] {
            let (meta, snapshot) = PartitionSnapshot::decode_file(written.as_bytes()).unwrap();
            let encoded = PartitionSnapshot::encode_file(&meta, &snapshot).unwrap();
            assert_eq!(String::from_utf8(encoded).unwrap(), written);
        }
        let (meta, snapshot) =
            PartitionSnapshot::decode_file(WRITTEN_WITH_OFFSETS.as_bytes()).unwrap();
        assert_eq!(meta, written_meta());
        assert_eq!(snapshot.next_offset, 105);
        assert_eq!(snapshot.producers.producers[&7].epoch, 2);
        assert_eq!(snapshot.offsets.map(|table| table.len()), Some(1));
        let (meta, snapshot) = PartitionSnapshot::decode_file(WRITTEN_EMPTY.as_bytes()).unwrap();
        assert_eq!(meta, SnapshotMetaOf::default());
        assert_eq!(snapshot, PartitionSnapshot::default());
    }

    #[tokio::test]
    async fn a_state_machine_resumes_from_its_snapshot_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("snapshot"), WRITTEN_WITH_OFFSETS).unwrap();
        let mut sm = PartitionStateMachine::open_kind(
            dir.path(),
            ProducerConfig::default(),
            PartitionKind::Offsets,
        )
        .unwrap();
        assert_eq!(sm.high_watermark(), 105);
        assert_eq!(sm.offsets().map(|table| table.len()), Some(1));
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, written_meta().last_log_id);
        let snapshot = sm.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta, written_meta());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("snapshot")).unwrap(),
            WRITTEN_WITH_OFFSETS,
            "the state machine keeps the snapshot it opened on"
        );
    }
}

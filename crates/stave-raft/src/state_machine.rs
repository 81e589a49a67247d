//! The partition state machine: what Raft has committed and applied. For a partition that is
//! the high watermark (the offset after the last applied record: consumers read below it) and
//! the membership. Its snapshot is a few numbers: the data itself stays in the log, and
//! retention moves the log start after a snapshot.
//!
//! TODO(#3): the idempotent producer table, rebuilt from the log on leadership.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use stave_log::frame::{BodyHeader, HEADER_LEN};

use crate::types::{Applied, FramePayload, LogIdOf, StoredMembershipOf, TypeConfig};

pub type SnapshotMetaOf = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type SnapshotOf = openraft::alias::SnapshotOf<TypeConfig, PartitionSnapshot>;

/// A partition's snapshot: the offset after the last record it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionSnapshot {
    pub next_offset: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PartitionStateMachine {
    state: Arc<Mutex<State>>,
    installed: InstalledSnapshots,
}

/// Where the last installed snapshot ends: `(last Raft index, next offset)`. The log store
/// reads it when openraft purges past the log's end after an install, to start the log at
/// the snapshot's offset.
#[derive(Debug, Clone)]
pub struct InstalledSnapshots {
    sender: Arc<tokio::sync::watch::Sender<Option<(u64, u64)>>>,
}

impl Default for InstalledSnapshots {
    fn default() -> Self {
        InstalledSnapshots {
            sender: Arc::new(tokio::sync::watch::Sender::new(None)),
        }
    }
}

impl InstalledSnapshots {
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
}

impl PartitionStateMachine {
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
        let mut state = self.lock();
        let meta = SnapshotMetaOf {
            last_log_id: state.applied,
            last_membership: state.membership.clone(),
        };
        let data = PartitionSnapshot {
            next_offset: state.next_offset,
        };
        state.current_snapshot = Some((meta.clone(), data));
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
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let mut state = self.lock();
            state.applied = Some(entry.log_id);
            let base_offset = state.next_offset;
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(frame) => {
                    state.next_offset += u64::from(record_count(frame)?);
                }
                EntryPayload::Membership(membership) => {
                    state.membership =
                        StoredMembershipOf::new(Some(entry.log_id), membership.clone());
                }
            }
            let applied = Applied {
                base_offset,
                next_offset: state.next_offset,
            };
            drop(state);
            if let Some(responder) = responder {
                responder.send(applied);
            }
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
        let mut state = self.lock();
        state.applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.next_offset = snapshot.next_offset;
        state.current_snapshot = Some((meta.clone(), snapshot));
        if let Some(last) = meta.last_log_id {
            self.installed
                .sender
                .send_replace(Some((last.index, snapshot.next_offset)));
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

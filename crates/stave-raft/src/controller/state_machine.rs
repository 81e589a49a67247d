//! [`ControllerStateMachine`]: the controller group's state machine. It applies `command`
//! frames (a prost `Command` after the control body header) to the [`ClusterMetadata`],
//! answers each with an encoded `CommandReply` in [`Applied::reply`], and publishes every new
//! metadata on a watch channel.
//!
//! Its snapshot is the whole metadata ([`ControllerSnapshot`], sent as a prost `Metadata`).
//! The current one is kept in `{dir}/controller-snapshot`, replaced atomically (temporary
//! file, fsync, rename, directory fsync) and reloaded on open, so the controller's log can be
//! purged behind it:
//!
//! ```text
//! 0   magic      u32  SNAPSHOT_MAGIC
//! 4   crc        u32  crc32 over every byte after this field
//! 8   meta_len   u32  length of the meta that follows
//! 12  meta       JSON: last log id, membership log id, membership (as partition snapshots)
//! ..  metadata   the prost `Metadata`, to the end of the file
//! ```

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::StreamExt;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use prost::Message;
use stave_log::frame::{BODY_HEADER_LEN, FrameHeader, FrameType, HEADER_LEN};
use stave_proto::internal::controller as proto;
use stave_proto::internal::controller::ErrorCode;
use stave_proto::internal::controller::command_reply::Result as Outcome;
use tokio::sync::watch;

use super::metadata::ClusterMetadata;
use crate::snapshot_file::{SnapshotFile, SnapshotLayout, StoredMeta};
use crate::state_machine::InstalledSnapshots;
use crate::types::{Applied, FramePayload, LogIdOf, SnapshotCodec, StoredMembershipOf, TypeConfig};

pub type SnapshotMetaOf = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type ControllerSnapshotOf = openraft::alias::SnapshotOf<TypeConfig, ControllerSnapshot>;

const SNAPSHOT_MAGIC: u32 = 0x5343_5453; // "STCS"
const SNAPSHOT_PREFIX_LEN: usize = 12;

/// The controller's snapshot: the whole metadata. Travels as a prost `Metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerSnapshot {
    pub metadata: Arc<ClusterMetadata>,
}

impl SnapshotCodec for ControllerSnapshot {
    fn encode_snapshot(&self) -> io::Result<Bytes> {
        Ok(Bytes::from(
            proto::Metadata::from(self.metadata.as_ref()).encode_to_vec(),
        ))
    }

    fn decode_snapshot(bytes: &[u8]) -> io::Result<Self> {
        let metadata = proto::Metadata::decode(bytes).map_err(invalid)?;
        let metadata = ClusterMetadata::try_from(metadata).map_err(invalid)?;
        Ok(ControllerSnapshot {
            metadata: Arc::new(metadata),
        })
    }
}

fn invalid(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// The controller group's state machine. Cheap to clone: clones share the state (the snapshot
/// builder and the [`Controller`](super::Controller) handle are clones).
#[derive(Debug, Clone)]
pub struct ControllerStateMachine {
    state: Arc<Mutex<State>>,
    /// The metadata after the last applied entry, for nodes that react to changes.
    metadata: watch::Sender<Arc<ClusterMetadata>>,
    /// `{dir}/controller-snapshot`, newer-only: a slower build never replaces a newer install
    /// on disk.
    file: SnapshotFile<ControllerSnapshot>,
    /// Tells the log store where an installed snapshot ends. The controller's log holds only
    /// control frames, so its offsets stay 0: every install is published with offset 0.
    installed: InstalledSnapshots,
}

#[derive(Debug, Default)]
struct State {
    applied: Option<LogIdOf>,
    membership: StoredMembershipOf,
    metadata: Arc<ClusterMetadata>,
    current_snapshot: Option<(SnapshotMetaOf, ControllerSnapshot)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ControllerStateMachine {
    /// A state machine that keeps its snapshot in `dir`, starting from the one found there (a
    /// restarted replica whose log was purged resumes after it).
    pub fn open(dir: &Path) -> io::Result<ControllerStateMachine> {
        let mut state = State::default();
        let file = SnapshotFile::<ControllerSnapshot>::new(dir).newer_only();
        if let Some((meta, snapshot)) = file.read()? {
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.metadata = snapshot.metadata.clone();
            state.current_snapshot = Some((meta, snapshot));
        }
        Ok(ControllerStateMachine {
            metadata: watch::Sender::new(state.metadata.clone()),
            state: Arc::new(Mutex::new(state)),
            file,
            installed: InstalledSnapshots::default(),
        })
    }

    /// Where installed snapshots end, for the controller's [`crate::LogStore`].
    pub fn installed_snapshots(&self) -> InstalledSnapshots {
        self.installed.clone()
    }

    /// The metadata after the last applied entry.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.metadata.borrow().clone()
    }

    /// A receiver that sees every new metadata (the current one is marked seen).
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.metadata.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Keeps `(meta, snapshot)` as the current snapshot unless a newer one is there already.
    fn keep_current(&self, meta: &SnapshotMetaOf, snapshot: &ControllerSnapshot) {
        let mut state = self.lock();
        let newer = state
            .current_snapshot
            .as_ref()
            .is_none_or(|(current, _)| current.last_log_id <= meta.last_log_id);
        if newer {
            state.current_snapshot = Some((meta.clone(), snapshot.clone()));
        }
    }
}

/// Applies one client frame to `metadata`. Anything but a decodable command frame answers
/// INVALID and changes nothing: a bad command must not stop the controller.
pub(super) fn apply_frame(
    metadata: &mut Arc<ClusterMetadata>,
    frame: &FramePayload,
) -> proto::CommandReply {
    match decode_command(&frame.0) {
        Ok(command) => ClusterMetadata::apply(metadata, command),
        Err(message) => proto::CommandReply {
            result: Some(Outcome::Error(proto::CommandError {
                code: ErrorCode::Invalid as i32,
                message,
            })),
        },
    }
}

fn decode_command(frame: &[u8]) -> Result<proto::Command, String> {
    let header = FrameHeader::decode_unchecked(frame).map_err(|reason| reason.to_string())?;
    if header.frame_type != FrameType::Command {
        return Err(format!("a {:?} frame is not a command", header.frame_type));
    }
    let payload = frame
        .get(HEADER_LEN + BODY_HEADER_LEN..header.frame_len())
        .ok_or_else(|| format!("a command frame of {} bytes is truncated", frame.len()))?;
    proto::Command::decode(payload).map_err(|err| format!("undecodable command: {err}"))
}

impl RaftSnapshotBuilder<TypeConfig> for ControllerStateMachine {
    type SnapshotData = ControllerSnapshot;

    async fn build_snapshot(&mut self) -> Result<ControllerSnapshotOf, io::Error> {
        let (meta, snapshot) = {
            let state = self.lock();
            let meta = SnapshotMetaOf {
                last_log_id: state.applied,
                last_membership: state.membership.clone(),
            };
            let snapshot = ControllerSnapshot {
                metadata: state.metadata.clone(),
            };
            (meta, snapshot)
        };
        self.file.persist(&meta, &snapshot).await?;
        self.installed.counters().snapshot_taken();
        self.keep_current(&meta, &snapshot);
        Ok(ControllerSnapshotOf { meta, snapshot })
    }
}

impl RaftStateMachine<TypeConfig> for ControllerStateMachine {
    type SnapshotData = ControllerSnapshot;
    type SnapshotBuilder = ControllerStateMachine;

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
            let reply = {
                let mut state = self.lock();
                state.applied = Some(entry.log_id);
                match &entry.payload {
                    EntryPayload::Blank => Bytes::new(),
                    EntryPayload::Normal(frame) => {
                        let before = state.metadata.clone();
                        let reply = apply_frame(&mut state.metadata, frame);
                        if !Arc::ptr_eq(&before, &state.metadata) {
                            self.metadata.send_replace(state.metadata.clone());
                        }
                        Bytes::from(reply.encode_to_vec())
                    }
                    EntryPayload::Membership(membership) => {
                        state.membership =
                            StoredMembershipOf::new(Some(entry.log_id), membership.clone());
                        Bytes::new()
                    }
                }
            };
            // Answered after the watch moved: a proposer that reads the metadata next sees
            // its own command.
            if let Some(responder) = responder {
                responder.send(Applied {
                    reply,
                    ..Applied::default()
                });
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
        snapshot: ControllerSnapshot,
    ) -> Result<(), io::Error> {
        self.file.persist(meta, &snapshot).await?;
        self.installed.counters().snapshot_taken();
        {
            let mut state = self.lock();
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.metadata = snapshot.metadata.clone();
            self.metadata.send_replace(state.metadata.clone());
        }
        self.keep_current(meta, &snapshot);
        if let Some(last) = meta.last_log_id {
            self.installed.publish(last.index, 0);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<ControllerSnapshotOf>, io::Error> {
        let state = self.lock();
        Ok(state
            .current_snapshot
            .clone()
            .map(|(meta, snapshot)| ControllerSnapshotOf { meta, snapshot }))
    }
}

impl SnapshotLayout for ControllerSnapshot {
    const FILE_NAME: &'static str = "controller-snapshot";

    fn encode_file(meta: &SnapshotMetaOf, snapshot: &Self) -> io::Result<Vec<u8>> {
        let meta_bytes =
            serde_json::to_vec(&StoredMeta::from_meta(meta)?).map_err(io::Error::other)?;
        let metadata = snapshot.encode_snapshot()?;
        let meta_len = u32::try_from(meta_bytes.len()).map_err(io::Error::other)?;
        let mut bytes = Vec::with_capacity(SNAPSHOT_PREFIX_LEN + meta_bytes.len() + metadata.len());
        bytes.extend_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&meta_len.to_le_bytes());
        bytes.extend_from_slice(&meta_bytes);
        bytes.extend_from_slice(&metadata);
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }

    fn decode_file(bytes: &[u8]) -> io::Result<(SnapshotMetaOf, Self)> {
        let damaged = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let u32_at = |at: usize| -> io::Result<u32> {
            let field = bytes
                .get(at..at + 4)
                .ok_or_else(|| damaged("a truncated snapshot file"))?;
            Ok(u32::from_le_bytes(
                field.try_into().map_err(io::Error::other)?,
            ))
        };
        if u32_at(0)? != SNAPSHOT_MAGIC {
            return Err(damaged("not a controller snapshot file"));
        }
        let crc = u32_at(4)?;
        if crc != crc32fast::hash(bytes.get(8..).unwrap_or_default()) {
            return Err(damaged("the controller snapshot file fails its crc"));
        }
        let meta_end = SNAPSHOT_PREFIX_LEN.saturating_add(u32_at(8)? as usize);
        let meta_bytes = bytes
            .get(SNAPSHOT_PREFIX_LEN..meta_end)
            .ok_or_else(|| damaged("a truncated snapshot meta"))?;
        let stored: StoredMeta = serde_json::from_slice(meta_bytes).map_err(invalid)?;
        let meta = stored.into_meta()?;
        let snapshot = ControllerSnapshot::decode_snapshot(&bytes[meta_end..])?;
        Ok((meta, snapshot))
    }
}

//! [`Controller`]: the node's handle on its controller replica. It proposes commands (and
//! decodes their replies), reads the applied metadata, and hands out a watch of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::Instant;
use openraft::error::{ClientWriteError, Fatal, ForwardReason, RaftError};
use openraft::network::{NetSnapshot, RaftNetworkFactory};
use prost::Message;
use stave_log::frame::{FrameType, encode_control_frame};
use stave_log::storage::{FsStorage, Storage};
use stave_log::{FlushPolicy, LogConfig, RetentionPolicy};
use stave_proto::internal::controller as proto;
use tokio::sync::watch;

use super::metadata::ClusterMetadata;
use super::state_machine::{ControllerSnapshot, ControllerStateMachine};
use crate::LogStore;
use crate::types::{FramePayload, TypeConfig};

pub type ControllerRaft = openraft::Raft<TypeConfig, ControllerStateMachine>;

/// The largest encoded command `propose` accepts (the controller log takes frames up to
/// [`controller_log_config`]'s `frame_bytes_max`, larger).
pub const COMMAND_BYTES_MAX: usize = 4 << 20;

/// How many times `propose` waits for a fresh leader's lease before giving up.
const LEASE_WAITS_MAX: u32 = 3;

/// Why a proposal got no reply. A command the metadata refuses is not an error: its reply
/// holds a `CommandError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// This replica does not lead, or leads without a quorum; propose to `leader_hint`, or
    /// retry once one is known.
    #[error("this node is not the controller leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<u64> },
    /// The command's entry was dropped by a leader change; it may still commit through the
    /// new leader. Retrying may apply it twice.
    #[error(
        "the command was dropped by a leader change and may or may not apply (leader hint: {leader_hint:?})"
    )]
    OutcomeUnknown { leader_hint: Option<u64> },
    #[error("a command of {bytes} bytes is larger than {max}")]
    CommandTooLarge { bytes: usize, max: usize },
    /// The controller's Raft stopped (shut down, or a storage failure).
    #[error("the controller raft group stopped")]
    Stopped(#[source] Fatal<TypeConfig>),
    #[error("the controller raft group refused the write")]
    Refused(#[source] ClientWriteError<TypeConfig>),
    #[error("the state machine's reply is not a command reply")]
    BadReply(#[source] prost::DecodeError),
    #[error("failed to open the controller replica in {}", .dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A node's controller replica: its Raft, its state machine and its log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Controller {
    pub raft: ControllerRaft,
    pub sm: ControllerStateMachine,
    pub store: LogStore,
}

/// The controller's log settings: every entry synced before it counts (Raft's safety rests on
/// it), small segments so purges free space, and no retention (snapshots move the log start).
pub fn controller_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 20,
        flush: FlushPolicy::Always,
        retention: RetentionPolicy {
            retention_ms: None,
            retention_bytes: None,
        },
        ..LogConfig::default()
    }
}

impl Controller {
    /// Opens node `id`'s controller replica in `dir` (its snapshot, log and vote) and starts
    /// its Raft. The caller makes it reachable on its transport and, on a new cluster,
    /// initializes the group.
    pub async fn open<N>(
        id: u64,
        dir: &Path,
        log_config: LogConfig,
        raft_config: Arc<openraft::Config>,
        network: N,
    ) -> Result<Controller, ControllerError>
    where
        N: RaftNetworkFactory<TypeConfig>,
        N::Network: NetSnapshot<TypeConfig, SnapshotData = ControllerSnapshot>,
    {
        let open_error = |source| ControllerError::Open {
            dir: dir.to_path_buf(),
            source,
        };
        let owned_dir = dir.to_path_buf();
        let (sm, store) = tokio::task::spawn_blocking(move || {
            let storage: Arc<dyn Storage> = Arc::new(FsStorage);
            let sm = ControllerStateMachine::open(&owned_dir)?;
            let store = LogStore::open(storage, &owned_dir, log_config, sm.installed_snapshots())?;
            Ok((sm, store))
        })
        .await
        .map_err(|err| open_error(std::io::Error::other(err)))?
        .map_err(open_error)?;
        let raft = ControllerRaft::new(id, raft_config, network, store.clone(), sm.clone())
            .await
            .map_err(ControllerError::Stopped)?;
        sm.installed_snapshots().counters().install(&raft).await;
        Ok(Controller { raft, sm, store })
    }

    /// The controller replica's Raft state and event counts, for monitoring.
    pub fn raft_stats(&self) -> crate::stats::RaftStats {
        crate::stats::read(&self.raft, self.sm.installed_snapshots().counters())
    }

    /// The controller's leader as this replica knows it.
    pub fn leader(&self) -> Option<u64> {
        use openraft::async_runtime::watch::WatchReceiver;
        self.raft.metrics().borrow_watched().current_leader
    }

    /// Waits (at most `timeout`) until this replica knows a leader; returns it.
    pub async fn wait_for_leader(&self, timeout: std::time::Duration) -> Option<u64> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a controller leader")
            .await
            .ok()?;
        metrics.current_leader
    }

    /// The metadata this replica has applied (a follower's may lag the leader's).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.sm.metadata()
    }

    /// A receiver that sees every metadata this replica applies (the current one is marked
    /// seen): nodes start and stop partition groups from it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.sm.subscribe()
    }

    /// Proposes `command` and returns its reply once applied. Only the leader accepts; a
    /// fresh leader whose lease no quorum has acknowledged yet is waited for, briefly.
    pub async fn propose(
        &self,
        command: proto::Command,
    ) -> Result<proto::CommandReply, ControllerError> {
        let encoded = command.encode_to_vec();
        if encoded.len() > COMMAND_BYTES_MAX {
            return Err(ControllerError::CommandTooLarge {
                bytes: encoded.len(),
                max: COMMAND_BYTES_MAX,
            });
        }
        let frame = Bytes::from(encode_control_frame(FrameType::Command, &encoded));
        let mut lease_waits = 0;
        loop {
            let forward = match self.raft.client_write(FramePayload(frame.clone())).await {
                Ok(response) => {
                    return proto::CommandReply::decode(response.data.reply)
                        .map_err(ControllerError::BadReply);
                }
                Err(RaftError::Fatal(fatal)) => return Err(ControllerError::Stopped(fatal)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => forward,
                Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward))) => {
                    return Err(ControllerError::OutcomeUnknown {
                        leader_hint: forward.leader_id,
                    });
                }
                Err(RaftError::APIError(other)) => return Err(ControllerError::Refused(other)),
            };
            let leader_hint = forward.leader_id;
            if forward.reason != ForwardReason::LeaseExpired || lease_waits == LEASE_WAITS_MAX {
                return Err(ControllerError::NotLeader { leader_hint });
            }
            lease_waits += 1;
            if !self.wait_for_lease().await {
                return Err(ControllerError::NotLeader { leader_hint });
            }
        }
    }

    /// Waits (at most an election timeout) until this replica leads with a lease a quorum
    /// acknowledged from now on. False if it did not.
    async fn wait_for_lease(&self) -> bool {
        let since = openraft::alias::InstantOf::<TypeConfig>::now();
        let wait_max = Duration::from_millis(self.raft.config().election_timeout_max);
        self.raft
            .wait(Some(wait_max))
            .leader_with_quorum_acked(Some(since), "the controller leader's lease")
            .await
            .is_ok()
    }
}

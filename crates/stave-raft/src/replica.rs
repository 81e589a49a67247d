//! A partition replica: its log store, its state machine and its `Raft`, opened from the
//! replica's directory over any network (gRPC between nodes, the in-process router in tests).

use std::path::Path;
use std::sync::Arc;

use openraft::network::{NetSnapshot, RaftNetworkFactory};

use crate::state_machine::PartitionSnapshot;
use crate::types::TypeConfig;
use crate::{LogStore, PartitionStateMachine};

pub type PartitionRaft = openraft::Raft<TypeConfig, PartitionStateMachine>;

/// One replica of a partition group on a node.
#[derive(Debug, Clone)]
pub struct PartitionReplica {
    pub raft: PartitionRaft,
    pub store: LogStore,
    pub sm: PartitionStateMachine,
}

impl PartitionReplica {
    /// Stops the replica's `Raft`; an append waiting for disk space gives up first.
    pub async fn shutdown(&self) {
        self.store.close();
        let _ = self.raft.shutdown().await;
    }
}

/// Opens node `id`'s replica in `dir` (log, vote, snapshot) and starts its `Raft`.
pub async fn start_partition<N>(
    id: u64,
    dir: &Path,
    log_config: stave_log::LogConfig,
    raft_config: Arc<openraft::Config>,
    network: N,
) -> std::io::Result<PartitionReplica>
where
    N: RaftNetworkFactory<TypeConfig>,
    N::Network: NetSnapshot<TypeConfig, SnapshotData = PartitionSnapshot>,
{
    start_partition_seeded(
        id,
        dir,
        log_config,
        raft_config,
        network,
        None,
        crate::PartitionKind::Data,
    )
    .await
}

/// [`start_partition`], first seeding a pristine replica of a new group with its initial
/// membership ([`LogStore::seed_membership`]).
pub async fn start_partition_seeded<N>(
    id: u64,
    dir: &Path,
    log_config: stave_log::LogConfig,
    raft_config: Arc<openraft::Config>,
    network: N,
    initial: Option<crate::types::MembershipOf>,
    kind: crate::PartitionKind,
) -> std::io::Result<PartitionReplica>
where
    N: RaftNetworkFactory<TypeConfig>,
    N::Network: NetSnapshot<TypeConfig, SnapshotData = PartitionSnapshot>,
{
    // Opening recovers the log's tail and replays the producer table: blocking work.
    let owned = dir.to_path_buf();
    let (sm, store) = tokio::task::spawn_blocking(move || {
        let storage: Arc<dyn stave_log::storage::Storage> = Arc::new(stave_log::storage::FsStorage);
        let sm = PartitionStateMachine::open_kind(
            &owned,
            crate::producers::ProducerConfig::default(),
            kind,
        )?;
        let store = LogStore::open(storage, &owned, log_config, sm.installed_snapshots())?;
        if let Some(membership) = &initial {
            store.seed_membership(membership)?;
        }
        Ok::<_, std::io::Error>((sm, store))
    })
    .await
    .map_err(std::io::Error::other)??;
    let raft = PartitionRaft::new(id, raft_config, network, store.clone(), sm.clone())
        .await
        .map_err(std::io::Error::other)?;
    sm.installed_snapshots().counters().install(&raft).await;
    Ok(PartitionReplica { raft, store, sm })
}

/// Raft settings for partition groups between nodes: slow heartbeats (every second;
/// openraft's tick runs at 13/64 of that, and the ticks of hundreds of idle groups are most
/// of a node's idle CPU), none while data flows, elections in 2–4 s (a follower misses one
/// heartbeat without starting one), pre-vote so a restarted node does not bump terms, and
/// the log start moved by retention only, never by openraft itself.
pub fn partition_raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 1000,
        heartbeat_min_interval: Some(500),
        election_timeout_min: 2000,
        election_timeout_max: 4000,
        enable_pre_vote: Some(true),
        install_snapshot_timeout: 2000,
        max_payload_entries: 64,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..openraft::Config::default()
    };
    Arc::new(
        config
            .validate()
            .expect("the partition timer settings are valid"),
    )
}

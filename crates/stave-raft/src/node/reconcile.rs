//! The partition replicas that follow the metadata: each pass stores the cluster id, starts
//! (or rejoins) the replicas assigned here, takes a replica that stopped on its own out of
//! service (reopened later, see [`crate::problems`]), and stops the ones no longer assigned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;

use super::NodeConfig;
use super::bootstrap::promoted_since;
use super::converge::{membership_of, node_addrs};
use super::identity::write_atomically;
use super::{NodeError, RaftNode, RunningPartition, blocking, io_error, lock};
use crate::controller::{ClusterMetadata, TopicMetadata};
use crate::group::{GroupHandle, RaftGroupId};
use crate::replica::PartitionReplica;
use crate::state_machine::PartitionSnapshot;

/// In a partition directory: this replica was created empty for a group that already
/// existed, and votes only once promoted. Holds the learner entry's log index once known.
const REJOINING_FILE: &str = "rejoining";

/// How often a node looks at its groups again without a metadata change (leader changes,
/// promotions of rejoined replicas, retries).
const RECHECK: Duration = Duration::from_secs(2);

impl RaftNode {
    /// Follows the metadata: stores the cluster id, and starts, initializes, changes and
    /// stops partition groups to match the assignment.
    pub(super) async fn follow_metadata(&self) {
        let mut metadata = self.inner.controller.subscribe();
        let mut stop = self.inner.stop.subscribe();
        loop {
            let current = metadata.borrow_and_update().clone();
            self.apply_metadata(&current).await;
            tokio::select! {
                changed = metadata.changed() => if changed.is_err() { return },
                _ = stop.wait_for(|stopped| *stopped) => return,
                // Membership convergence and rejoins may need another pass after a leader
                // change, which the metadata does not show.
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// One pass over the metadata: stores the cluster id, does the controller leader's work,
    /// runs the replicas assigned here and stops the others.
    async fn apply_metadata(&self, metadata: &ClusterMetadata) {
        self.store_cluster_id(metadata.cluster_id()).await;
        if self.stopped() {
            return;
        }
        if self.leads_controller() {
            self.promote_controller_learners(metadata);
            if metadata.cluster_id().is_none() {
                self.spawn_write_cluster();
            }
        }
        let Some(assigned) = self.ensure_assigned(metadata).await else {
            return; // The node is stopping.
        };
        self.stop_unassigned(&assigned, metadata).await;
        let problems = self.inner.groups.problems();
        for problem in problems.list() {
            if !assigned.contains(&problem.group) {
                problems.forget(problem.group);
            }
        }
    }

    /// Runs every replica the metadata assigns to this node; the groups assigned, or none if
    /// the node stopped meanwhile.
    async fn ensure_assigned(&self, metadata: &ClusterMetadata) -> Option<BTreeSet<RaftGroupId>> {
        let me = self.inner.config.id;
        let mut assigned = BTreeSet::new();
        for (name, topic) in metadata.topics() {
            for (partition, replicas) in topic.partitions() {
                if !replicas.contains(&me) {
                    continue;
                }
                if self.stopped() {
                    return None;
                }
                let wanted =
                    WantedReplica::new(&self.inner.config, name, topic, partition, replicas);
                let group = wanted.group;
                assigned.insert(group);
                if let Err(err) = self.ensure_partition(metadata, wanted).await {
                    tracing::error!(group = %group, %err, "partition replica not started");
                }
            }
        }
        Some(assigned)
    }

    /// Whether a replica of a topic of `incarnation` created empty here must rejoin.
    fn rejoin_mode(&self, incarnation: u64) -> bool {
        lock(&self.inner.node_file)
            .rejoin_below_incarnation
            .is_some_and(|below| incarnation < below)
    }

    /// Runs this node's replica of a partition: starts it (through a rejoin if it was
    /// created empty for a group that existed), initializes the group if this node is the
    /// creation assignment's first replica, lets a rejoined replica vote once promoted, and,
    /// on the leader, converges the membership.
    async fn ensure_partition(
        &self,
        metadata: &ClusterMetadata,
        wanted: WantedReplica,
    ) -> Result<(), NodeError> {
        let group = wanted.group;
        let running = lock(&self.inner.partitions)
            .get(&group)
            .map(|running| (running.replica.clone(), running.learner_since));
        let Some((replica, learner_since)) = running else {
            return self.start_partition(metadata, wanted).await;
        };
        if let Some(reason) = stopped_reason(&replica) {
            self.stop_failed(group, &replica).await;
            self.replica_failed(group, reason);
            return Ok(());
        }
        self.inner.groups.problems().running(group);
        self.after_start(metadata, &wanted, &replica, learner_since)
            .await
    }

    /// Starts this node's replica of a partition that does not run here: from its directory,
    /// or new (seeded with a new partition's initial membership; the first replica campaigns
    /// at once), or, created empty for a group that existed, through a rejoin.
    async fn start_partition(
        &self,
        metadata: &ClusterMetadata,
        wanted: WantedReplica,
    ) -> Result<(), NodeError> {
        let group = wanted.group;
        if lock(&self.inner.rejoining).contains(&group) {
            return Ok(()); // Its rejoin is under way.
        }
        let problems = self.inner.groups.problems();
        if !problems.may_open(group) {
            return Ok(()); // Offline, or its reopen is not due yet.
        }
        let rejoin_mode = self.rejoin_mode(wanted.incarnation);
        let dir = wanted.dir.clone();
        let (rejoining, fresh) = blocking(move || prepare_dir(&dir, rejoin_mode)).await?;
        if rejoining {
            self.spawn_rejoin(metadata, wanted);
            return Ok(());
        }
        // A new partition's replicas all start from its initial membership (none waits for
        // another to initialize the group); a wiped one rejoins instead (above).
        let initial = if wanted.may_initialize {
            membership_of(&node_addrs(metadata, &wanted.replicas), &wanted.replicas)
        } else {
            None
        };
        let seeded = fresh && initial.is_some();
        let replica = match self.open_partition(&wanted, initial).await {
            Ok(replica) => replica,
            Err(err) => {
                self.replica_failed(group, format!("cannot open: {}", with_sources(&err)));
                return Ok(());
            }
        };
        if !self.register(&wanted, replica.clone(), None).await {
            return Ok(());
        }
        problems.opened(group);
        if seeded && wanted.replicas.first() == Some(&self.inner.config.id) {
            // The first replica campaigns at once (the preferred leader; the others
            // would wait an election timeout).
            let _ = replica.raft.trigger().elect(false).await;
        }
        self.after_start(metadata, &wanted, &replica, None).await
    }

    /// Hands a replica created empty for a group that existed to a rejoin, in a task of its
    /// own.
    fn spawn_rejoin(&self, metadata: &ClusterMetadata, wanted: WantedReplica) {
        let group = wanted.group;
        lock(&self.inner.rejoining).insert(group);
        // Every node's address, not only the assigned replicas': the group's leader
        // may be a replica the partition is moving away from.
        let addrs = metadata.nodes().clone();
        self.spawn(|node| async move {
            node.rejoin_partition(wanted, addrs).await;
            lock(&node.inner.rejoining).remove(&group);
        });
    }

    /// Takes a replica whose Raft stopped on its own out of service: unreachable, no longer
    /// running here (the next pass may reopen it from disk).
    async fn stop_failed(&self, group: RaftGroupId, replica: &PartitionReplica) {
        let removed = lock(&self.inner.partitions).remove(&group).is_some();
        if removed {
            self.inner.groups.remove(group);
            self.publish_partitions();
        }
        replica.shutdown().await;
    }

    /// Records a failure of `group`'s replica (logged once per failure) and when, if ever,
    /// it is reopened.
    fn replica_failed(&self, group: RaftGroupId, reason: String) {
        let backoff = &self.inner.config.reopen_backoff;
        match self
            .inner
            .groups
            .problems()
            .failed(group, reason.clone(), backoff)
        {
            crate::problems::Next::ReopenAfter(delay) => {
                let after_ms = delay.as_millis() as u64;
                tracing::error!(group = %group, %reason, after_ms, "partition replica failed, reopening it from disk");
            }
            crate::problems::Next::Offline => {
                tracing::error!(group = %group, %reason, "partition replica failed again, leaving it offline (its other replicas serve the partition)");
            }
        }
    }

    async fn open_partition(
        &self,
        wanted: &WantedReplica,
        initial: Option<crate::types::MembershipOf>,
    ) -> Result<PartitionReplica, NodeError> {
        let inner = &self.inner;
        let network = inner.clients.network::<PartitionSnapshot>(wanted.group);
        crate::replica::start_partition_seeded(
            inner.config.id,
            &wanted.dir,
            wanted.log_config.clone(),
            inner.config.partition_raft.clone(),
            network,
            initial,
            wanted.kind,
        )
        .await
        .map_err(io_error(&wanted.dir))
    }

    /// Makes a started replica reachable (not voting while `learner_since`) and records it;
    /// false (and the replica stopped) if the node is shutting down.
    async fn register(
        &self,
        wanted: &WantedReplica,
        replica: PartitionReplica,
        learner_since: Option<u64>,
    ) -> bool {
        let inner = &self.inner;
        let registered = {
            let mut partitions = lock(&inner.partitions);
            if self.stopped() {
                false
            } else {
                let handle: Arc<dyn GroupHandle> = Arc::new(replica.raft.clone());
                match learner_since {
                    Some(_) => inner.groups.insert_not_voting(wanted.group, handle),
                    None => inner.groups.insert(wanted.group, handle),
                }
                partitions.insert(
                    wanted.group,
                    RunningPartition {
                        replica: replica.clone(),
                        dir: wanted.dir.clone(),
                        learner_since,
                    },
                );
                true
            }
        };
        if registered {
            self.publish_partitions();
        } else {
            replica.shutdown().await;
        }
        registered
    }

    /// A replica created empty for a group that existed: asks the group's leader to take it
    /// back as a learner, then makes it reachable (not voting). Retried by later passes if no
    /// leader took it.
    async fn rejoin_partition(&self, wanted: WantedReplica, addrs: BTreeMap<u64, String>) {
        let me = self.inner.config.id;
        let candidates: Vec<u64> = wanted
            .replicas
            .iter()
            .copied()
            .filter(|id| *id != me)
            .collect();
        let Some(since) = self.rejoin(wanted.group, &candidates, &addrs).await else {
            return;
        };
        let dir = wanted.dir.clone();
        let marked =
            blocking(move || write_atomically(&dir, REJOINING_FILE, since.to_string().as_bytes()))
                .await;
        if let Err(err) = marked {
            tracing::error!(group = %wanted.group, %err, "cannot record the rejoin");
            return;
        }
        match self.open_partition(&wanted, None).await {
            Ok(replica) => {
                self.register(&wanted, replica, Some(since)).await;
            }
            Err(err) => {
                tracing::error!(group = %wanted.group, %err, "rejoining replica not started")
            }
        }
    }

    async fn after_start(
        &self,
        metadata: &ClusterMetadata,
        wanted: &WantedReplica,
        replica: &PartitionReplica,
        learner_since: Option<u64>,
    ) -> Result<(), NodeError> {
        let inner = &self.inner;
        let me = inner.config.id;
        let group = wanted.group;
        let raft = &replica.raft;
        let promoted = learner_since
            .is_some_and(|since| promoted_since(&raft.metrics().borrow_watched(), me, since));
        if promoted {
            // A rejoined replica votes again once promoted.
            let dir = wanted.dir.clone();
            let cleared = blocking(move || {
                std::fs::remove_file(dir.join(REJOINING_FILE)).map_err(io_error(&dir))
            })
            .await;
            if let Err(err) = cleared {
                tracing::error!(group = %group, %err, "cannot clear the rejoin marker");
            } else {
                let mut partitions = lock(&inner.partitions);
                if let Some(running) = partitions.get_mut(&group) {
                    running.learner_since = None;
                    inner.groups.insert(group, Arc::new(raft.clone()));
                }
            }
        }
        self.converge_if_leads(metadata, group, raft, &wanted.replicas);
        Ok(())
    }
}

/// A partition replica this node should run, as the metadata says.
struct WantedReplica {
    group: RaftGroupId,
    kind: crate::PartitionKind,
    log_config: stave_log::LogConfig,
    incarnation: u64,
    /// Whether a new replica starts from the creation assignment as its initial membership
    /// (every replica of a new partition does): only if the partition was never reassigned.
    may_initialize: bool,
    replicas: Vec<u64>,
    dir: PathBuf,
}

impl WantedReplica {
    /// This node's replica of `topic`'s partition `partition`, assigned to `replicas`.
    fn new(
        config: &NodeConfig,
        name: &str,
        topic: &TopicMetadata,
        partition: u32,
        replicas: &[u64],
    ) -> WantedReplica {
        let dir = config
            .data_dir
            .join("partitions")
            .join(format!("{name}-{}-{partition}", topic.incarnation()));
        let log_config = match &config.partition_log_for {
            Some(config_for) => (config_for.0)(topic),
            None => config.partition_log.clone(),
        };
        let kind = if name == crate::controller::OFFSETS_TOPIC {
            crate::PartitionKind::Offsets
        } else {
            crate::PartitionKind::Data
        };
        WantedReplica {
            group: topic.group_id(partition),
            kind,
            log_config,
            incarnation: topic.incarnation(),
            may_initialize: !topic.is_reassigned(partition),
            replicas: replicas.to_vec(),
            dir,
        }
    }
}

/// `err` and every error under it, as one line: what `cluster status` shows must name the
/// cause, not only the directory.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a running replica's Raft stopped on its own, if it did.
fn stopped_reason(replica: &PartitionReplica) -> Option<String> {
    match &replica.raft.metrics().borrow_watched().running_state {
        Err(fatal) => Some(format!("stopped: {fatal}")),
        Ok(()) => None,
    }
}

/// Creates a replica's directory if it is new (marked `rejoining` in `rejoin_mode`) and
/// syncs its parent; whether the replica rejoins, and whether its directory is new.
fn prepare_dir(dir: &Path, rejoin_mode: bool) -> Result<(bool, bool), NodeError> {
    let marker = dir.join(REJOINING_FILE);
    let fresh = !dir.exists();
    if fresh {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        if rejoin_mode {
            write_atomically(dir, REJOINING_FILE, b"")?;
        }
        std::fs::File::open(dir.parent().unwrap_or(dir))
            .and_then(|parent| parent.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok((marker.exists(), fresh))
}

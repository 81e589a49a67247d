//! The partition replicas that follow the metadata: each pass stores the cluster id, starts
//! (or rejoins) the replicas assigned here, takes a replica that stopped on its own out of
//! service (reopened later, see [`crate::problems`]), and stops the ones no longer assigned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;

use super::bootstrap::promoted_since;
use super::converge::{assigned_replicas, membership_of, node_addrs};
use super::identity::write_atomically;
use super::{NodeError, RaftNode, RunningPartition, blocking, io_error, lock};
use crate::controller::ClusterMetadata;
use crate::group::{GroupHandle, GroupId, incarnation_of};
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

    async fn apply_metadata(&self, metadata: &ClusterMetadata) {
        let inner = &self.inner;
        if let Some(cluster_id) = metadata.cluster_id()
            && inner.identity.cluster_id().as_deref() != Some(cluster_id)
        {
            // Stored first: whoever sees the identity's cluster id finds it on disk.
            let owned = cluster_id.to_string();
            match self
                .update_node_file(|file| file.cluster_id = Some(owned))
                .await
            {
                Ok(()) => inner.identity.set_cluster_id(cluster_id),
                Err(err) => tracing::error!(%err, "cluster id not stored"),
            }
        }
        if self.stopped() {
            return;
        }
        let leads_controller = inner
            .controller
            .raft
            .metrics()
            .borrow_watched()
            .current_leader
            == Some(inner.config.id);
        if leads_controller {
            self.promote_controller_learners(metadata);
        }
        if metadata.cluster_id().is_none()
            && leads_controller
            && !inner
                .writing_cluster
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let node = self.clone();
            self.spawn(|_| async move {
                node.write_cluster().await;
                node.inner
                    .writing_cluster
                    .store(false, std::sync::atomic::Ordering::Release);
            });
        }
        let me = inner.config.id;
        let mut assigned = BTreeSet::new();
        for (name, topic) in metadata.topics() {
            for (partition, replicas) in topic.partitions() {
                if !replicas.contains(&me) {
                    continue;
                }
                if self.stopped() {
                    return;
                }
                let group = topic.group_id(partition);
                assigned.insert(group);
                let dir = inner
                    .config
                    .data_dir
                    .join("partitions")
                    .join(format!("{name}-{}-{partition}", topic.incarnation()));
                let log_config = match &inner.config.partition_log_for {
                    Some(config_for) => (config_for.0)(topic),
                    None => inner.config.partition_log.clone(),
                };
                let kind = if name == crate::controller::OFFSETS_TOPIC {
                    crate::PartitionKind::Offsets
                } else {
                    crate::PartitionKind::Data
                };
                let wanted = WantedReplica {
                    group,
                    kind,
                    log_config,
                    incarnation: topic.incarnation(),
                    may_initialize: !topic.is_reassigned(partition),
                    replicas: replicas.to_vec(),
                    dir,
                };
                if let Err(err) = self.ensure_partition(metadata, wanted).await {
                    tracing::error!(group, %err, "partition replica not started");
                }
            }
        }
        self.stop_unassigned(&assigned, metadata).await;
        let problems = inner.groups.problems();
        for problem in problems.list() {
            if !assigned.contains(&problem.group) {
                problems.forget(problem.group);
            }
        }
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
        let inner = &self.inner;
        let group = wanted.group;
        let running = lock(&inner.partitions)
            .get(&group)
            .map(|running| (running.replica.clone(), running.learner_since));
        let problems = inner.groups.problems();
        let Some((replica, learner_since)) = running else {
            if lock(&inner.rejoining).contains(&group) {
                return Ok(()); // Its rejoin is under way.
            }
            if !problems.may_open(group) {
                return Ok(()); // Offline, or its reopen is not due yet.
            }
            let rejoin_mode = self.rejoin_mode(wanted.incarnation);
            let dir = wanted.dir.clone();
            let (rejoining, fresh) = blocking(move || {
                let marker = dir.join(REJOINING_FILE);
                let fresh = !dir.exists();
                if fresh {
                    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                    if rejoin_mode {
                        write_atomically(&dir, REJOINING_FILE, b"")?;
                    }
                    std::fs::File::open(dir.parent().unwrap_or(&dir))
                        .and_then(|parent| parent.sync_all())
                        .map_err(io_error(&dir))?;
                }
                Ok((marker.exists(), fresh))
            })
            .await?;
            if rejoining {
                lock(&inner.rejoining).insert(group);
                // Every node's address, not only the assigned replicas': the group's leader
                // may be a replica the partition is moving away from.
                let addrs = metadata.nodes().clone();
                self.spawn(|node| async move {
                    node.rejoin_partition(wanted, addrs).await;
                    lock(&node.inner.rejoining).remove(&group);
                });
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
                    self.replica_failed(group, format!("cannot open: {err}"));
                    return Ok(());
                }
            };
            if !self.register(&wanted, replica.clone(), None).await {
                return Ok(());
            }
            problems.opened(group);
            if seeded && wanted.replicas.first() == Some(&inner.config.id) {
                // The first replica campaigns at once (the preferred leader; the others
                // would wait an election timeout).
                let _ = replica.raft.trigger().elect(false).await;
            }
            return self.after_start(metadata, &wanted, &replica, None).await;
        };
        let stopped = match &replica.raft.metrics().borrow_watched().running_state {
            Err(fatal) => Some(format!("stopped: {fatal}")),
            Ok(()) => None,
        };
        if let Some(reason) = stopped {
            self.stop_failed(group, &replica).await;
            self.replica_failed(group, reason);
            return Ok(());
        }
        problems.running(group);
        self.after_start(metadata, &wanted, &replica, learner_since)
            .await
    }

    /// Takes a replica whose Raft stopped on its own out of service: unreachable, no longer
    /// running here (the next pass may reopen it from disk).
    async fn stop_failed(&self, group: GroupId, replica: &PartitionReplica) {
        let removed = lock(&self.inner.partitions).remove(&group).is_some();
        if removed {
            self.inner.groups.remove(group);
            self.publish_partitions();
        }
        replica.shutdown().await;
    }

    /// Records a failure of `group`'s replica (logged once per failure) and when, if ever,
    /// it is reopened.
    fn replica_failed(&self, group: GroupId, reason: String) {
        let backoff = &self.inner.config.reopen_backoff;
        match self
            .inner
            .groups
            .problems()
            .failed(group, reason.clone(), backoff)
        {
            crate::problems::Next::ReopenAfter(delay) => {
                let after_ms = delay.as_millis() as u64;
                tracing::error!(group, %reason, after_ms, "partition replica failed, reopening it from disk");
            }
            crate::problems::Next::Offline => {
                tracing::error!(group, %reason, "partition replica failed again, leaving it offline (its other replicas serve the partition)");
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
            tracing::error!(group = wanted.group, %err, "cannot record the rejoin");
            return;
        }
        match self.open_partition(&wanted, None).await {
            Ok(replica) => {
                self.register(&wanted, replica, Some(since)).await;
            }
            Err(err) => {
                tracing::error!(group = wanted.group, %err, "rejoining replica not started")
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
                tracing::error!(group, %err, "cannot clear the rejoin marker");
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

    /// Stops the replicas no longer assigned here: a deleted topic's at once, a moved one
    /// once the group's leader has committed a membership without this node (it has added
    /// the new replicas first); their directories go. Also removes directories left by
    /// topics deleted while this node was down.
    async fn stop_unassigned(&self, assigned: &BTreeSet<GroupId>, metadata: &ClusterMetadata) {
        let me = self.inner.config.id;
        let live: BTreeSet<u64> = metadata
            .topics()
            .values()
            .map(|topic| topic.incarnation())
            .collect();
        let unassigned: Vec<GroupId> = lock(&self.inner.partitions)
            .keys()
            .filter(|group| !assigned.contains(group))
            .copied()
            .collect();
        let mut removed = BTreeSet::new();
        for group in unassigned {
            let incarnation = incarnation_of(group);
            let deleted = !live.contains(&incarnation);
            if deleted || self.removed_from(metadata, group, me).await {
                removed.insert(group);
            } else {
                // Moved away from this node while it leads the group: no assigned replica
                // can change the membership, so this one must (it adds the new replicas,
                // then removes itself last, and openraft hands the leadership on).
                self.converge_moved_away(metadata, group);
            }
        }
        let stopping: Vec<(GroupId, RunningPartition)> = {
            let mut partitions = lock(&self.inner.partitions);
            removed
                .into_iter()
                .filter_map(|group| partitions.remove(&group).map(|p| (group, p)))
                .collect()
        };
        let stopped_any = !stopping.is_empty();
        for (group, partition) in stopping {
            self.inner.groups.remove(group);
            partition.replica.shutdown().await;
            let dir = partition.dir.clone();
            let cleared =
                blocking(move || std::fs::remove_dir_all(&dir).map_err(io_error(&dir))).await;
            if let Err(err) = cleared {
                tracing::warn!(group, %err, "removed replica's directory not removed");
            }
        }
        if stopped_any {
            self.publish_partitions();
        }
        // Directories of deleted topics that no replica runs in (deleted while this node was
        // down, or moved away earlier).
        let running: BTreeSet<GroupId> = lock(&self.inner.partitions).keys().copied().collect();
        let root = self.inner.config.data_dir.join("partitions");
        let left = blocking(move || {
            let mut removed = 0;
            let entries = std::fs::read_dir(&root).map_err(io_error(&root))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let mut parts = name.rsplitn(3, '-');
                let (Some(partition), Some(incarnation)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let (Ok(partition), Ok(incarnation)) =
                    (partition.parse::<u32>(), incarnation.parse::<u64>())
                else {
                    continue;
                };
                let group = crate::group::partition_group_id(incarnation, partition);
                if !live.contains(&incarnation) && !running.contains(&group) {
                    std::fs::remove_dir_all(entry.path()).map_err(io_error(&entry.path()))?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await;
        if let Err(err) = left {
            tracing::warn!(%err, "leftover partition directories not removed");
        }
    }

    /// Whether the group's current replicas (as the metadata assigns them) have committed a
    /// membership without `me`: asks them, the leader's answer first.
    async fn removed_from(&self, metadata: &ClusterMetadata, group: GroupId, me: u64) -> bool {
        let Some(replicas) = assigned_replicas(metadata, group) else {
            return false;
        };
        let addrs = node_addrs(metadata, replicas);
        for (id, addr) in &addrs {
            if *id == me {
                continue;
            }
            let Ok(status) = self.inner.clients.group_status(*id, addr, group).await else {
                continue;
            };
            if status.leader == Some(*id) {
                return !status.voters.contains(&me) && !status.learners.contains(&me);
            }
        }
        false
    }
}

/// A partition replica this node should run, as the metadata says.
struct WantedReplica {
    group: GroupId,
    kind: crate::PartitionKind,
    log_config: stave_log::LogConfig,
    incarnation: u64,
    /// Only the creation assignment's first replica initializes a group, and only if the
    /// partition was never reassigned.
    may_initialize: bool,
    replicas: Vec<u64>,
    dir: PathBuf,
}

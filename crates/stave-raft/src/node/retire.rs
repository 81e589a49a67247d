//! The replicas that no longer belong here: a deleted topic's stop at once, a moved one once
//! its group's leader has committed a membership without this node; their directories go,
//! and so do directories left by topics deleted while this node was down.

use std::collections::BTreeSet;
use std::path::Path;

use super::converge::{assigned_replicas, node_addrs};
use super::{NodeError, RaftNode, RunningPartition, blocking, io_error, lock};
use crate::controller::ClusterMetadata;
use crate::group::{RaftGroupId, incarnation_of};

impl RaftNode {
    /// Stops the replicas no longer assigned here: a deleted topic's at once, a moved one
    /// once the group's leader has committed a membership without this node (it has added
    /// the new replicas first); their directories go. Also removes directories left by
    /// topics deleted while this node was down.
    pub(super) async fn stop_unassigned(
        &self,
        assigned: &BTreeSet<RaftGroupId>,
        metadata: &ClusterMetadata,
    ) {
        let live: BTreeSet<u64> = metadata
            .topics()
            .values()
            .map(|topic| topic.incarnation())
            .collect();
        let removed = self.removed_replicas(assigned, metadata, &live).await;
        self.stop_removed(removed).await;
        // Directories of deleted topics that no replica runs in (deleted while this node was
        // down, or moved away earlier).
        let running: BTreeSet<RaftGroupId> = lock(&self.inner.partitions).keys().copied().collect();
        let root = self.inner.config.data_dir.join("partitions");
        let left = blocking(move || remove_dead_dirs(&root, &live, &running)).await;
        if let Err(err) = left {
            tracing::warn!(%err, "leftover partition directories not removed");
        }
    }

    /// Of the replicas running here that are not `assigned`, the ones to stop: their topic
    /// is no longer `live`, or their group has committed a membership without this node.
    /// Converges the others' membership if this node leads their group.
    async fn removed_replicas(
        &self,
        assigned: &BTreeSet<RaftGroupId>,
        metadata: &ClusterMetadata,
        live: &BTreeSet<u64>,
    ) -> BTreeSet<RaftGroupId> {
        let me = self.inner.config.id;
        let unassigned: Vec<RaftGroupId> = lock(&self.inner.partitions)
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
        removed
    }

    /// Stops the `removed` replicas and removes their directories.
    async fn stop_removed(&self, removed: BTreeSet<RaftGroupId>) {
        let stopping: Vec<(RaftGroupId, RunningPartition)> = {
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
                tracing::warn!(group = %group, %err, "removed replica's directory not removed");
            }
        }
        if stopped_any {
            self.publish_partitions();
        }
    }

    /// Whether the group's current replicas (as the metadata assigns them) have committed a
    /// membership without `me`: asks them, the leader's answer first.
    async fn removed_from(&self, metadata: &ClusterMetadata, group: RaftGroupId, me: u64) -> bool {
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

/// Removes the directories under `root` (the partitions directory) of topics no longer
/// `live` that no replica runs in (`running`); how many it removed.
fn remove_dead_dirs(
    root: &Path,
    live: &BTreeSet<u64>,
    running: &BTreeSet<RaftGroupId>,
) -> Result<usize, NodeError> {
    let mut removed = 0;
    let entries = std::fs::read_dir(root).map_err(io_error(root))?;
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
}

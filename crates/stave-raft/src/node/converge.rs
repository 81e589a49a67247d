//! On a partition group's leader: converges the group's membership to the replicas the
//! metadata assigns (adds the missing ones as learners, promoted once caught up, then removes
//! the ones left over, itself last).

use std::collections::{BTreeMap, BTreeSet};

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;

use super::{RaftNode, lock};
use crate::controller::ClusterMetadata;
use crate::group::{RaftGroupId, incarnation_of};
use crate::membership;

impl RaftNode {
    /// If this node leads the group and its members are not the assigned `replicas` (voters
    /// missing or left over, or a learner left over from a move that changed course),
    /// converges the membership in a task of its own, unless one is at it already.
    pub(super) fn converge_if_leads(
        &self,
        metadata: &ClusterMetadata,
        group: RaftGroupId,
        raft: &crate::PartitionRaft,
        replicas: &[u64],
    ) {
        let wanted: BTreeSet<u64> = replicas.iter().copied().collect();
        let done = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow_watched();
            if metrics.current_leader != Some(self.inner.config.id) {
                return;
            }
            let membership = metrics.membership_config.membership();
            membership.voter_ids().collect::<BTreeSet<u64>>() == wanted
                && membership.learner_ids().all(|id| wanted.contains(&id))
        };
        if done || !lock(&self.inner.converging).insert(group) {
            return;
        }
        let raft = raft.clone();
        let replicas = replicas.to_vec();
        let addrs = node_addrs(metadata, &replicas);
        self.spawn(|node| async move {
            node.converge_membership(&raft, group, &replicas, &addrs)
                .await;
            lock(&node.inner.converging).remove(&group);
        });
    }

    /// On a group's leader: adds the assigned replicas it lacks (as learners, promoted once
    /// caught up), then removes the voters and learners no longer assigned.
    async fn converge_membership(
        &self,
        raft: &crate::PartitionRaft,
        group: RaftGroupId,
        replicas: &[u64],
        addrs: &BTreeMap<u64, String>,
    ) {
        let membership = raft.metrics().borrow_watched().membership_config.clone();
        let voters: BTreeSet<u64> = membership.membership().voter_ids().collect();
        let deadline = self.inner.config.catch_up_deadline;
        for id in replicas.iter().filter(|id| !voters.contains(id)) {
            let Some(addr) = addrs.get(id) else {
                // A later pass retries, once the controller has the node's address.
                tracing::warn!(
                    group = %group,
                    node = id,
                    "replica not added: its address is unknown"
                );
                return;
            };
            if let Err(err) = membership::add_replica(raft, *id, addr, deadline).await {
                // Not promoted: keep the old replicas until it is (a later pass retries).
                tracing::warn!(group = %group, node = id, %err, "replica not added");
                return;
            }
        }
        // This node last, when it is one of them: once removed, it leads no more.
        let me = self.inner.config.id;
        let mut removing: Vec<u64> = voters
            .iter()
            .copied()
            .chain(membership.membership().learner_ids())
            .filter(|id| !replicas.contains(id))
            .collect();
        removing.sort_by_key(|id| *id == me);
        for id in &removing {
            if let Err(err) = membership::remove_replica(raft, *id).await {
                tracing::warn!(group = %group, node = id, %err, "replica not removed");
            }
        }
    }

    /// Converges the membership of `group`, a replica running here that the metadata no
    /// longer assigns here, if this replica leads the group.
    pub(super) fn converge_moved_away(&self, metadata: &ClusterMetadata, group: RaftGroupId) {
        let Some(replicas) = assigned_replicas(metadata, group) else {
            return;
        };
        let Some(raft) = lock(&self.inner.partitions)
            .get(&group)
            .map(|running| running.replica.raft.clone())
        else {
            return;
        };
        self.converge_if_leads(metadata, group, &raft, replicas);
    }
}

/// The replicas the metadata assigns to `group` (none if its topic is gone).
pub(super) fn assigned_replicas(metadata: &ClusterMetadata, group: RaftGroupId) -> Option<&[u64]> {
    metadata
        .topics()
        .values()
        .find(|topic| topic.incarnation() == incarnation_of(group))
        .and_then(|topic| topic.replicas(crate::group::partition_of(group)))
}

/// A new group's initial membership: every replica a voter (none if an address is unknown).
pub(super) fn membership_of(
    addrs: &BTreeMap<u64, String>,
    replicas: &[u64],
) -> Option<crate::types::MembershipOf> {
    if addrs.len() != replicas.len() {
        return None;
    }
    let voters: BTreeSet<u64> = replicas.iter().copied().collect();
    let nodes: BTreeMap<u64, BasicNode> = addrs
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    crate::types::MembershipOf::new(vec![voters], nodes).ok()
}

pub(super) fn node_addrs(metadata: &ClusterMetadata, replicas: &[u64]) -> BTreeMap<u64, String> {
    replicas
        .iter()
        .filter_map(|id| metadata.node_addr(*id).map(|addr| (*id, addr.to_string())))
        .collect()
}

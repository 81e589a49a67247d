//! Raft groups on a node, as the transport sees them. A node runs many groups (one per
//! partition replica, plus the controller, group 0), each a full `Raft` with its own log and
//! state machine; they share the node's connections. An incoming RPC names its group, and
//! [`Groups`] finds the group's [`GroupHandle`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;

use crate::types::{SnapshotCodec, TypeConfig, VoteOf};

/// A Raft group's id, unique in the cluster. Group 0 is the controller; a partition's group
/// id comes from its topic's incarnation and its number ([`partition_group_id`]).
pub use crate::types::RaftGroupId;

/// The controller group: cluster metadata.
pub const CONTROLLER_GROUP: RaftGroupId = RaftGroupId(0);

/// Bits of a partition group id that hold the partition number.
const PARTITION_BITS: u32 = 20;

/// The most partitions a topic may have (group ids reserve 20 bits for the number).
pub const MAX_PARTITIONS: u32 = 1 << PARTITION_BITS;

/// The Raft group id of partition `partition` of the topic incarnation `incarnation`
/// (incarnations start at 1, so no partition is group 0).
pub fn partition_group_id(incarnation: u64, partition: u32) -> RaftGroupId {
    RaftGroupId((incarnation << PARTITION_BITS) | u64::from(partition & (MAX_PARTITIONS - 1)))
}

/// The partition number of a partition group id.
pub fn partition_of(group: RaftGroupId) -> u32 {
    (group.0 & u64::from(MAX_PARTITIONS - 1)) as u32
}

/// The topic incarnation a partition group id belongs to.
pub fn incarnation_of(group: RaftGroupId) -> u64 {
    group.0 >> PARTITION_BITS
}

pub type SnapshotMetaOf = openraft::alias::SnapshotMetaOf<TypeConfig>;

/// Why an RPC could not reach its group's Raft on the target node.
pub type RemoteFailure = String;

/// What a leader reports of its group: its term, and the voters within reach of its log
/// (itself included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub term: u64,
    pub in_sync: Vec<u64>,
}

/// What the transport calls on a group that runs on this node. Implemented for every
/// `openraft::Raft` whose snapshot has a [`SnapshotCodec`]: snapshots arrive encoded.
pub trait GroupHandle: Send + Sync + 'static {
    fn append_entries(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<AppendEntriesResponse<TypeConfig>, RemoteFailure>>;

    fn vote(
        &self,
        rpc: VoteRequest<TypeConfig>,
        pre_vote: bool,
    ) -> BoxFuture<'static, Result<VoteResponse<TypeConfig>, RemoteFailure>>;

    fn install_snapshot(
        &self,
        vote: VoteOf,
        meta: SnapshotMetaOf,
        data: Bytes,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, RemoteFailure>>;

    fn transfer_leader(
        &self,
        rpc: TransferLeaderRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<TransferLeaderResponse<TypeConfig>, RemoteFailure>>;

    /// The leader this replica knows of.
    fn current_leader(&self) -> Option<u64>;

    /// Whether this replica holds Raft state (a vote or a log entry).
    fn has_state(&self) -> BoxFuture<'static, bool>;

    /// The committed membership this replica knows: voters (of every configuration, if
    /// joint) and learners.
    fn committed_members(&self) -> (Vec<u64>, Vec<u64>);

    /// If this replica leads: its term and the voters whose log is within
    /// [`crate::membership::CAUGHT_UP_LAG`] entries of its own (itself included).
    fn leadership(&self) -> Option<Leadership>;

    /// On the leader: takes back `node`, whose data was wiped, as a learner
    /// ([`crate::membership::rejoin_as_learner`]).
    fn rejoin(
        &self,
        node: u64,
        addr: String,
    ) -> BoxFuture<'static, Result<Rejoined, RemoteFailure>>;

    /// On the leader: promotes learner `node` once it has caught up, waiting at most
    /// `deadline`.
    fn promote(
        &self,
        node: u64,
        deadline: std::time::Duration,
    ) -> BoxFuture<'static, Result<Promotion, RemoteFailure>>;
}

/// What a leader answered a wiped replica that asked to rejoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejoined {
    /// It is a learner since the membership entry at this log index: it may make its replica
    /// reachable, and vote once it has applied a later committed membership listing it as a
    /// voter.
    Learner { since: u64 },
    /// This replica does not lead; ask the hinted one.
    NotLeader(Option<u64>),
}

/// How a promotion attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    Promoted,
    /// Still too far behind after the deadline: it stays a learner.
    Behind,
    /// Nothing to do here: this replica does not lead, or `node` is no learner.
    NotApplicable,
}

fn self_leads<SM>(raft: &openraft::Raft<TypeConfig, SM>) -> bool
where
    SM: RaftStateMachine<TypeConfig>,
{
    use openraft::async_runtime::watch::WatchReceiver;
    let metrics = raft.metrics();
    let metrics = metrics.borrow_watched();
    metrics.current_leader == Some(metrics.id)
}

impl<SM> GroupHandle for openraft::Raft<TypeConfig, SM>
where
    SM: RaftStateMachine<TypeConfig>,
    SM::SnapshotData: SnapshotCodec,
{
    fn current_leader(&self) -> Option<u64> {
        use openraft::async_runtime::watch::WatchReceiver;
        self.metrics().borrow_watched().current_leader
    }

    fn committed_members(&self) -> (Vec<u64>, Vec<u64>) {
        use openraft::async_runtime::watch::WatchReceiver;
        let metrics = self.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.committed_membership_config.membership();
        (
            membership.voter_ids().collect(),
            membership.learner_ids().collect(),
        )
    }

    fn leadership(&self) -> Option<Leadership> {
        use openraft::async_runtime::watch::WatchReceiver;
        let metrics = self.metrics();
        let metrics = metrics.borrow_watched();
        if metrics.current_leader != Some(metrics.id) {
            return None;
        }
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.as_ref();
        // In sync: close to the leader's log, and heard from within an election timeout
        // (a dead follower's log stops falling behind while nothing is written).
        let recent = std::time::Duration::from_millis(self.config().election_timeout_max);
        let heard = |id: &u64| {
            metrics
                .heartbeat
                .as_ref()
                .and_then(|acks| acks.get(id).cloned().flatten())
                .is_some_and(|at| {
                    use openraft::Instant as _;
                    (*at).elapsed() <= recent
                })
        };
        let in_sync = metrics
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| {
                *id == metrics.id
                    || (heard(id)
                        && replication
                            .and_then(|r| r.get(id).cloned().flatten())
                            .is_some_and(|matched| {
                                last.saturating_sub(matched.index)
                                    <= crate::membership::CAUGHT_UP_LAG
                            }))
            })
            .collect();
        Some(Leadership {
            term: metrics.current_term,
            in_sync,
        })
    }

    fn has_state(&self) -> BoxFuture<'static, bool> {
        let raft = self.clone();
        // Through the Raft core: its metrics are published only after it starts.
        Box::pin(async move { raft.is_initialized().await.unwrap_or(true) })
    }

    fn rejoin(
        &self,
        node: u64,
        addr: String,
    ) -> BoxFuture<'static, Result<Rejoined, RemoteFailure>> {
        use crate::membership::{self, MembershipError};
        let raft = self.clone();
        Box::pin(async move {
            match membership::rejoin_as_learner(&raft, node, &addr).await {
                Ok(since) => Ok(Rejoined::Learner { since }),
                Err(MembershipError::NotLeader { leader }) => Ok(Rejoined::NotLeader(leader)),
                Err(err) => Err(err.to_string()),
            }
        })
    }

    fn promote(
        &self,
        node: u64,
        deadline: std::time::Duration,
    ) -> BoxFuture<'static, Result<Promotion, RemoteFailure>> {
        use crate::membership::{self, MembershipError};
        let raft = self.clone();
        Box::pin(async move {
            if !self_leads(&raft) || !membership::is_learner(&raft, node) {
                return Ok(Promotion::NotApplicable);
            }
            match membership::promote_when_caught_up(&raft, node, deadline).await {
                Ok(()) => Ok(Promotion::Promoted),
                Err(MembershipError::LearnerBehind { .. }) => Ok(Promotion::Behind),
                Err(MembershipError::NotLeader { .. }) => Ok(Promotion::NotApplicable),
                Err(err) => Err(err.to_string()),
            }
        })
    }

    fn append_entries(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<AppendEntriesResponse<TypeConfig>, RemoteFailure>> {
        let raft = self.clone();
        Box::pin(async move { raft.append_entries(rpc).await.map_err(|e| e.to_string()) })
    }

    fn vote(
        &self,
        rpc: VoteRequest<TypeConfig>,
        pre_vote: bool,
    ) -> BoxFuture<'static, Result<VoteResponse<TypeConfig>, RemoteFailure>> {
        let raft = self.clone();
        Box::pin(async move {
            let result = if pre_vote {
                raft.pre_vote(rpc).await
            } else {
                raft.vote(rpc).await
            };
            result.map_err(|e| e.to_string())
        })
    }

    fn install_snapshot(
        &self,
        vote: VoteOf,
        meta: SnapshotMetaOf,
        data: Bytes,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, RemoteFailure>> {
        let raft = self.clone();
        Box::pin(async move {
            let snapshot = SM::SnapshotData::decode_snapshot(&data)
                .map_err(|e| format!("undecodable snapshot: {e}"))?;
            let snapshot =
                openraft::alias::SnapshotOf::<TypeConfig, SM::SnapshotData> { meta, snapshot };
            raft.install_full_snapshot(vote, snapshot)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn transfer_leader(
        &self,
        rpc: TransferLeaderRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<TransferLeaderResponse<TypeConfig>, RemoteFailure>> {
        let raft = self.clone();
        Box::pin(async move {
            raft.handle_transfer_leader(rpc)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A group that answers everything but votes (see [`Groups::insert_not_voting`]).
struct NotVoting {
    inner: Arc<dyn GroupHandle>,
}

impl GroupHandle for NotVoting {
    fn append_entries(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<AppendEntriesResponse<TypeConfig>, RemoteFailure>> {
        self.inner.append_entries(rpc)
    }

    fn vote(
        &self,
        _rpc: VoteRequest<TypeConfig>,
        _pre_vote: bool,
    ) -> BoxFuture<'static, Result<VoteResponse<TypeConfig>, RemoteFailure>> {
        Box::pin(async {
            Err("this replica lost its data and does not vote until it is a voter again".into())
        })
    }

    fn install_snapshot(
        &self,
        vote: VoteOf,
        meta: SnapshotMetaOf,
        data: Bytes,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, RemoteFailure>> {
        self.inner.install_snapshot(vote, meta, data)
    }

    fn transfer_leader(
        &self,
        _rpc: TransferLeaderRequest<TypeConfig>,
    ) -> BoxFuture<'static, Result<TransferLeaderResponse<TypeConfig>, RemoteFailure>> {
        Box::pin(async { Err("this replica is rejoining and cannot lead yet".into()) })
    }

    fn current_leader(&self) -> Option<u64> {
        self.inner.current_leader()
    }

    fn has_state(&self) -> BoxFuture<'static, bool> {
        self.inner.has_state()
    }

    fn committed_members(&self) -> (Vec<u64>, Vec<u64>) {
        self.inner.committed_members()
    }

    fn leadership(&self) -> Option<Leadership> {
        None
    }

    fn rejoin(
        &self,
        _node: u64,
        _addr: String,
    ) -> BoxFuture<'static, Result<Rejoined, RemoteFailure>> {
        Box::pin(async { Ok(Rejoined::NotLeader(None)) })
    }

    fn promote(
        &self,
        _node: u64,
        _deadline: std::time::Duration,
    ) -> BoxFuture<'static, Result<Promotion, RemoteFailure>> {
        Box::pin(async { Ok(Promotion::NotApplicable) })
    }
}

/// The groups running on one node, by id, and the replicas in trouble. Cheap to clone
/// (shared).
#[derive(Clone, Default)]
pub struct Groups {
    inner: Arc<RwLock<HashMap<RaftGroupId, Arc<dyn GroupHandle>>>>,
    problems: crate::problems::Problems,
    /// A number the application attaches to a group this node leads, reported with its
    /// leadership (the broker: since when its message-id table reaches back, when its cap
    /// cut it short).
    notes: Arc<std::sync::Mutex<HashMap<RaftGroupId, i64>>>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<RaftGroupId> = self.read().keys().copied().collect();
        ids.sort_unstable();
        f.debug_struct("Groups").field("ids", &ids).finish()
    }
}

impl Groups {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<RaftGroupId, Arc<dyn GroupHandle>>> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<RaftGroupId, Arc<dyn GroupHandle>>> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `group` reachable; replaces an earlier handle of the same group.
    pub fn insert(&self, group: RaftGroupId, handle: Arc<dyn GroupHandle>) {
        self.write().insert(group, handle);
    }

    /// Makes `group` reachable for everything but votes: a replica whose data was wiped must
    /// not vote with a forgotten vote until its group has demoted it to learner and promoted
    /// it again ([`crate::membership::rejoin_as_learner`]). Replace it with [`Groups::insert`]
    /// once it is a voter again.
    pub fn insert_not_voting(&self, group: RaftGroupId, handle: Arc<dyn GroupHandle>) {
        self.write()
            .insert(group, Arc::new(NotVoting { inner: handle }));
    }

    /// Makes `group` unreachable (RPCs for it fail as "not running here").
    pub fn remove(&self, group: RaftGroupId) -> Option<Arc<dyn GroupHandle>> {
        self.write().remove(&group)
    }

    pub fn get(&self, group: RaftGroupId) -> Result<Arc<dyn GroupHandle>, RemoteFailure> {
        self.read()
            .get(&group)
            .cloned()
            .ok_or_else(|| format!("group {group} is not running on this node"))
    }

    /// The partition replicas of this node that stopped or could not open.
    pub fn problems(&self) -> &crate::problems::Problems {
        &self.problems
    }

    /// Attaches `note` to `group` (reported with its leadership while this node leads it),
    /// or takes it off.
    pub fn set_note(&self, group: RaftGroupId, note: Option<i64>) {
        let mut notes = self
            .notes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match note {
            Some(note) => notes.insert(group, note),
            None => notes.remove(&group),
        };
    }

    /// The note attached to `group`, if any.
    pub fn note(&self, group: RaftGroupId) -> Option<i64> {
        self.notes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&group)
            .copied()
    }

    /// The groups running here, by id.
    pub fn ids(&self) -> Vec<RaftGroupId> {
        self.read().keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_group_ids_are_unique_and_never_the_controller() {
        let mut seen = std::collections::BTreeSet::new();
        for incarnation in 1..50 {
            for partition in [0, 1, 2, 1000, MAX_PARTITIONS - 1] {
                let id = partition_group_id(incarnation, partition);
                assert_ne!(id, CONTROLLER_GROUP);
                assert!(seen.insert(id), "{incarnation}/{partition} collides");
            }
        }
    }
}

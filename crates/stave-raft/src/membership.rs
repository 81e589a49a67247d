//! Replica changes of any group (a partition or the controller), run on its leader:
//! - [`add_replica`]: the new node joins as a learner, and becomes a voter only once it has
//!   caught up within a deadline; a learner that does not is reported
//!   ([`MembershipError::LearnerBehind`]) and stays a learner, so a slow or cut-off node never
//!   weakens the quorum;
//! - [`remove_replica`];
//! - [`rejoin_as_learner`] then [`promote_when_caught_up`]: a voter whose data directory was
//!   wiped comes back with no vote and no log. It must not vote with a forgotten vote (it
//!   could vote twice in a term and elect two leaders), so it is demoted to learner first, and
//!   promoted when caught up. Its node refuses votes for the group meanwhile
//!   ([`crate::group::Groups::insert_not_voting`]).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use openraft::storage::RaftStateMachine;

use crate::types::TypeConfig;

/// A learner is caught up when it is at most this many entries behind the leader.
pub const CAUGHT_UP_LAG: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(
        "node {node} is still {lag} entries behind after {deadline:?}: it stays a learner, not promoted"
    )]
    LearnerBehind {
        node: u64,
        lag: u64,
        deadline: Duration,
    },
    #[error("this node is not the group's leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("membership change failed: {0}")]
    Raft(String),
}

fn raft_error<E>(err: openraft::error::RaftError<TypeConfig, E>) -> MembershipError
where
    E: std::fmt::Display
        + std::fmt::Debug
        + openraft::TryAsRef<openraft::error::ForwardToLeader<TypeConfig>>,
{
    if let Some(forward) = err.forward_to_leader() {
        return MembershipError::NotLeader {
            leader: forward.leader_id,
        };
    }
    MembershipError::Raft(err.to_string())
}

/// How far `node` is behind this leader's log (`u64::MAX`: not replicating to it at all).
fn lag<SM>(raft: &openraft::Raft<TypeConfig, SM>, node: u64) -> u64
where
    SM: RaftStateMachine<TypeConfig>,
{
    let metrics = raft.metrics().borrow_watched().clone();
    let last = metrics.last_log_index.unwrap_or(0);
    let matched = metrics
        .replication
        .as_ref()
        .and_then(|replication| replication.get(&node).cloned())
        .flatten();
    match matched {
        Some(matched) => last.saturating_sub(matched.index),
        None => u64::MAX,
    }
}

/// Waits until `node` is within [`CAUGHT_UP_LAG`] entries of the leader and has answered
/// it within an election timeout (what the leader knows of a node that went silent, say
/// wiped, may be stale), at most `deadline`.
async fn wait_caught_up<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
    deadline: Duration,
) -> Result<(), MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    let recent = Duration::from_millis(raft.config().election_timeout_max);
    let caught_up = raft
        .wait(Some(deadline))
        .metrics(
            |m| {
                let last = m.last_log_index.unwrap_or(0);
                let close = m
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&node).cloned())
                    .flatten()
                    .is_some_and(|matched| last.saturating_sub(matched.index) <= CAUGHT_UP_LAG);
                let heard = m
                    .heartbeat
                    .as_ref()
                    .and_then(|acks| acks.get(&node).cloned().flatten())
                    .is_some_and(|at| {
                        use openraft::Instant as _;
                        (*at).elapsed() <= recent
                    });
                close && heard
            },
            "learner caught up",
        )
        .await;
    match caught_up {
        Ok(_) => Ok(()),
        Err(openraft::metrics::WaitError::Timeout(..)) => Err(MembershipError::LearnerBehind {
            node,
            lag: lag(raft, node),
            deadline,
        }),
        Err(err) => Err(MembershipError::Raft(err.to_string())),
    }
}

fn is_voter<SM>(raft: &openraft::Raft<TypeConfig, SM>, node: u64) -> bool
where
    SM: RaftStateMachine<TypeConfig>,
{
    raft.metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .voter_ids()
        .any(|id| id == node)
}

/// Promotes learner `node` once it has caught up (within `deadline`).
async fn promote<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
    deadline: Duration,
) -> Result<(), MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    wait_caught_up(raft, node, deadline).await?;
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node])), false)
        .await
        .map_err(raft_error)?;
    Ok(())
}

/// Adds `node` (at `addr`) to the group led by `raft`: as a learner, promoted to voter once
/// caught up within `deadline`. On [`MembershipError::LearnerBehind`] it stays a learner (it
/// keeps receiving entries; call again to retry the promotion, or remove it).
pub async fn add_replica<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
    addr: &str,
    deadline: Duration,
) -> Result<(), MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    if is_voter(raft, node) {
        return Ok(());
    }
    raft.add_learner(node, BasicNode::new(addr), false)
        .await
        .map_err(raft_error)?;
    promote(raft, node, deadline).await
}

/// Removes `node` from the group led by `raft` (voter or learner).
pub async fn remove_replica<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
) -> Result<(), MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    let membership = raft.metrics().borrow_watched().membership_config.clone();
    let membership = membership.membership();
    let change = if membership.voter_ids().any(|id| id == node) {
        ChangeMembers::RemoveVoters(BTreeSet::from([node]))
    } else if membership.learner_ids().any(|id| id == node) {
        ChangeMembers::RemoveNodes(BTreeSet::from([node]))
    } else {
        return Ok(());
    };
    raft.change_membership(change, false)
        .await
        .map_err(raft_error)?;
    Ok(())
}

/// First step of taking back `node`, whose data was wiped, before its empty replica is
/// reachable: removes it from the group entirely (so the leader forgets how far it had
/// replicated to it, and cannot promote it on the strength of what it held before the wipe),
/// then adds it back as a learner. Returns the log index of that learner entry: the replica
/// may vote again once it has applied a committed membership after it that lists it as a
/// voter. Then make the replica reachable (not voting) and call [`promote_when_caught_up`].
pub async fn rejoin_as_learner<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
    addr: &str,
) -> Result<u64, MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    let membership = raft.metrics().borrow_watched().membership_config.clone();
    let membership = membership.membership();
    let change = if membership.voter_ids().any(|id| id == node) {
        Some(ChangeMembers::RemoveVoters(BTreeSet::from([node])))
    } else if membership.learner_ids().any(|id| id == node) {
        Some(ChangeMembers::RemoveNodes(BTreeSet::from([node])))
    } else {
        None
    };
    if let Some(change) = change {
        raft.change_membership(change, false)
            .await
            .map_err(raft_error)?;
    }
    let added = raft
        .add_learner(node, BasicNode::new(addr), false)
        .await
        .map_err(raft_error)?;
    Ok(added.log_id.index)
}

/// Whether `node` is a learner of the group led by `raft` (what a promotion waits on).
pub fn is_learner<SM>(raft: &openraft::Raft<TypeConfig, SM>, node: u64) -> bool
where
    SM: RaftStateMachine<TypeConfig>,
{
    raft.metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .learner_ids()
        .any(|id| id == node)
}

/// Promotes learner `node` to voter once it has caught up, waiting at most `deadline`; on
/// [`MembershipError::LearnerBehind`] it stays a learner.
pub async fn promote_when_caught_up<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    node: u64,
    deadline: Duration,
) -> Result<(), MembershipError>
where
    SM: RaftStateMachine<TypeConfig>,
{
    promote(raft, node, deadline).await
}

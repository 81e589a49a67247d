//! What every node reports of the Raft groups it leads, and of its replicas out of service,
//! gathered for Metadata ([`crate::routing`] gathers it). Plain data: it imports nothing of
//! the broker.

use std::collections::HashMap;

use stave_raft::group::RaftGroupId;
use stave_raft::problems::ReplicaProblem;

/// Who leads a Raft group and which voters are in sync, as gathered for Metadata.
#[derive(Debug, Clone)]
pub struct Leader {
    pub node: u64,
    pub term: u64,
    pub in_sync: Vec<u64>,
    /// The leader's note (`stave_raft::group::Groups::set_note`): since when (epoch ms) its
    /// message-id table reaches back, if dedupe.max.ids cut it short of the window.
    pub note: Option<i64>,
}

/// A replica some node took out of service.
#[derive(Debug, Clone)]
pub struct NodeProblem {
    pub node: u64,
    pub problem: ReplicaProblem,
}

/// Who leads every Raft group, and which replicas are out of service, as gathered from
/// every node.
#[derive(Debug, Clone, Default)]
pub struct Leaderships {
    pub leaders: HashMap<RaftGroupId, Leader>,
    pub problems: HashMap<RaftGroupId, Vec<NodeProblem>>,
}

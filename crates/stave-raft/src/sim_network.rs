//! An in-process Raft transport for tests: a `Router` that hands each RPC straight to the
//! target node's `Raft` handle. A link can be cut between chosen nodes (both directions) and
//! healed; a cut link answers `Unreachable`, as a dead connection would.
//!
//! TODO(#3): seeded drops, delays and reordering; group ids for multi-Raft.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, OptionalSend};

use crate::state_machine::{PartitionSnapshot, SnapshotOf};
use crate::types::{TypeConfig, VoteOf};

pub type PartitionRaft = openraft::Raft<TypeConfig, crate::PartitionStateMachine>;

#[derive(Debug, Clone, Default)]
pub struct Router {
    inner: Arc<Mutex<RouterState>>,
}

#[derive(Debug, Default)]
struct RouterState {
    nodes: BTreeMap<u64, PartitionRaft>,
    /// Cut links, stored as (smaller id, larger id).
    cut: BTreeSet<(u64, u64)>,
}

fn link(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl Router {
    fn lock(&self) -> MutexGuard<'_, RouterState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add(&self, id: u64, raft: PartitionRaft) {
        self.lock().nodes.insert(id, raft);
    }

    pub fn remove(&self, id: u64) -> Option<PartitionRaft> {
        self.lock().nodes.remove(&id)
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        self.lock().cut.insert(link(a, b));
    }

    /// Heals every cut link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// A connection from `source` to `target`.
    pub fn connect(&self, source: u64) -> NodeRouter {
        NodeRouter {
            router: self.clone(),
            source,
        }
    }

    fn target(&self, source: u64, target: u64) -> Result<PartitionRaft, Unreachable<TypeConfig>> {
        let state = self.lock();
        if state.cut.contains(&link(source, target)) {
            return Err(Unreachable::new(&AnyError::error(format!(
                "link {source}-{target} is cut"
            ))));
        }
        state
            .nodes
            .get(&target)
            .cloned()
            .ok_or_else(|| Unreachable::new(&AnyError::error(format!("node {target} is down"))))
    }
}

/// The router as one node sees it: the network factory given to that node's `Raft`.
#[derive(Debug, Clone)]
pub struct NodeRouter {
    router: Router,
    source: u64,
}

/// One node's connection to another.
#[derive(Debug, Clone)]
pub struct Connection {
    router: Router,
    source: u64,
    target: u64,
}

impl RaftNetworkFactory<TypeConfig> for NodeRouter {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &openraft::impls::BasicNode) -> Connection {
        Connection {
            router: self.router.clone(),
            source: self.source,
            target,
        }
    }
}

fn unreachable(err: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::new(&AnyError::error(err.to_string()))
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = PartitionSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.target(self.source, self.target)?;
        raft.append_entries(rpc)
            .await
            .map_err(|err| RPCError::Unreachable(unreachable(err)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.target(self.source, self.target)?;
        raft.vote(rpc)
            .await
            .map_err(|err| RPCError::Unreachable(unreachable(err)))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf,
        snapshot: SnapshotOf,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let raft = self.router.target(self.source, self.target)?;
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|err| StreamingError::Unreachable(unreachable(err)))
    }
}

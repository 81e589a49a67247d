//! An in-process Raft transport for tests: a `Router` that hands each RPC straight to the
//! target node's `Raft` handle, through faults drawn from a seeded random generator:
//! - a cut link (both directions, between chosen nodes) answers `Unreachable`, as a dead
//!   connection would, until healed;
//! - [`Faults::drop_ratio`]: a request is lost before delivery, or its response after it (the
//!   target acted, the sender never learns);
//! - [`Faults::delay_ms_max`]: each message waits a random time, so concurrent messages
//!   overtake each other (reordering).
//!
//! The faults come from one seed, but tokio's scheduling decides in which order RPCs draw
//! them: a seed replays the same kind of run, not the same interleaving.
//!
//! Every message names its Raft group (openraft-multi's `GroupRouter`): a node runs many
//! groups, and cutting a link cuts it for all of them, as a real network would.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, OptionalSend};
use openraft_multi::{GroupNetworkAdapter, GroupRouter};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::group::{GroupHandle, Groups, RaftGroupId};
use crate::state_machine::PartitionSnapshot;
use crate::types::{SnapshotCodec, TypeConfig, VoteOf};

pub use crate::replica::PartitionRaft;

/// The group that [`Router::start_replica`] and [`Router::add`] use: tests of one partition
/// need not name it.
pub const TEST_GROUP: RaftGroupId = RaftGroupId(1);

/// Raft settings for partition groups in one process: fast timers (there is no network to
/// wait for), and the log start moved by retention only, never by openraft itself.
pub fn fast_raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..openraft::Config::default()
    };
    Arc::new(config.validate().expect("these timer settings are valid"))
}

/// One replica of a group on the router, for tests and benches.
pub type SimReplica = crate::replica::PartitionReplica;

/// Random faults on every message, as data (after TigerBeetle's `PacketSimulatorOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// The chance that a request, or its response, is lost.
    pub drop_ratio: f64,
    /// Each message waits up to this long before delivery.
    pub delay_ms_max: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    inner: Arc<Mutex<RouterState>>,
}

#[derive(Debug)]
struct RouterState {
    /// The nodes that are up, with the groups each runs.
    nodes: BTreeMap<u64, Groups>,
    /// Cut links, stored as (smaller id, larger id).
    cut: BTreeSet<(u64, u64)>,
    faults: Faults,
    rng: StdRng,
}

impl Default for RouterState {
    fn default() -> Self {
        RouterState {
            nodes: BTreeMap::new(),
            cut: BTreeSet::new(),
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(0),
        }
    }
}

/// What the router decided for one message.
#[derive(Debug, Clone, Copy)]
struct Fate {
    delay_ms: u64,
    drop_request: bool,
    drop_response: bool,
}

fn link(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

fn unreachable(err: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::new(&AnyError::error(err.to_string()))
}

impl Router {
    /// A router whose faults are drawn from `seed`.
    pub fn with_seed(seed: u64) -> Router {
        let router = Router::default();
        router.lock().rng = StdRng::seed_from_u64(seed);
        router
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The groups of node `id` (the node is up from now on).
    pub fn node(&self, id: u64) -> Groups {
        self.lock().nodes.entry(id).or_default().clone()
    }

    /// Makes `raft` reachable as node `id`'s replica of `group`.
    pub fn add_group(&self, id: u64, group: RaftGroupId, raft: Arc<dyn GroupHandle>) {
        self.node(id).insert(group, raft);
    }

    /// Makes `raft` reachable as node `id`'s replica of [`TEST_GROUP`].
    pub fn add(&self, id: u64, raft: PartitionRaft) {
        self.add_group(id, TEST_GROUP, Arc::new(raft));
    }

    /// Takes node `id` down: every group on it becomes unreachable.
    pub fn remove(&self, id: u64) -> Option<Groups> {
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

    /// Sets the random faults applied from now on (`Faults::default()`: none).
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Opens replica `id`'s log in `dir`, starts its `Raft` for [`TEST_GROUP`] and adds it to
    /// the router.
    pub async fn start_replica(
        &self,
        id: u64,
        dir: &std::path::Path,
        log_config: stave_log::LogConfig,
        raft_config: Arc<openraft::Config>,
    ) -> std::io::Result<SimReplica> {
        self.start_group_replica(id, TEST_GROUP, dir, log_config, raft_config)
            .await
    }

    /// Opens node `id`'s replica of partition group `group` in `dir`, starts its `Raft` and
    /// adds it to the router.
    pub async fn start_group_replica(
        &self,
        id: u64,
        group: RaftGroupId,
        dir: &std::path::Path,
        log_config: stave_log::LogConfig,
        raft_config: Arc<openraft::Config>,
    ) -> std::io::Result<SimReplica> {
        let network = self.network::<PartitionSnapshot>(id, group);
        let replica =
            crate::replica::start_partition(id, dir, log_config, raft_config, network).await?;
        self.add_group(id, group, Arc::new(replica.raft.clone()));
        Ok(replica)
    }

    /// The network factory for node `source`'s replica of `group`, whose snapshots are `S`.
    pub fn network<S: SnapshotCodec>(&self, source: u64, group: RaftGroupId) -> SimNetwork<S> {
        SimNetwork {
            router: SimGroupRouter {
                router: self.clone(),
                source,
                snapshot: PhantomData,
            },
            group,
        }
    }

    fn fate(&self) -> Fate {
        let mut state = self.lock();
        let Faults {
            drop_ratio,
            delay_ms_max,
        } = state.faults;
        let drop = drop_ratio.clamp(0.0, 1.0);
        let rng = &mut state.rng;
        Fate {
            delay_ms: if delay_ms_max == 0 {
                0
            } else {
                rng.random_range(0..=delay_ms_max)
            },
            drop_request: drop > 0.0 && rng.random_bool(drop),
            drop_response: drop > 0.0 && rng.random_bool(drop),
        }
    }

    fn target(
        &self,
        source: u64,
        target: u64,
        group: RaftGroupId,
    ) -> Result<Arc<dyn GroupHandle>, Unreachable<TypeConfig>> {
        let state = self.lock();
        if state.cut.contains(&link(source, target)) {
            return Err(unreachable(format!("link {source}-{target} is cut")));
        }
        state
            .nodes
            .get(&target)
            .ok_or_else(|| unreachable(format!("node {target} is down")))?
            .get(group)
            .map_err(unreachable)
    }

    /// Delivers one message from `source` to `target`'s replica of `group` through the
    /// faults: `call` runs on it unless the link is cut or the request is lost.
    async fn deliver<T, F, Fut>(
        &self,
        source: u64,
        target: u64,
        group: RaftGroupId,
        call: F,
    ) -> Result<T, Unreachable<TypeConfig>>
    where
        F: FnOnce(Arc<dyn GroupHandle>) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let fate = self.fate();
        if fate.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fate.delay_ms)).await;
        }
        let raft = self.target(source, target, group)?;
        if fate.drop_request {
            return Err(unreachable("request lost"));
        }
        let response = call(raft).await.map_err(unreachable)?;
        if fate.drop_response {
            return Err(unreachable("response lost"));
        }
        Ok(response)
    }
}

/// The router as one node sees it, for groups whose snapshots are `S`.
#[derive(Debug)]
pub struct SimGroupRouter<S> {
    router: Router,
    source: u64,
    snapshot: PhantomData<fn() -> S>,
}

impl<S> Clone for SimGroupRouter<S> {
    fn clone(&self) -> Self {
        SimGroupRouter {
            router: self.router.clone(),
            source: self.source,
            snapshot: PhantomData,
        }
    }
}

/// The network factory given to one group's `Raft` on one node.
#[derive(Debug, Clone)]
pub struct SimNetwork<S> {
    router: SimGroupRouter<S>,
    group: RaftGroupId,
}

impl<S: SnapshotCodec> RaftNetworkFactory<TypeConfig> for SimNetwork<S> {
    type Network = GroupNetworkAdapter<TypeConfig, RaftGroupId, SimGroupRouter<S>>;

    async fn new_client(
        &mut self,
        target: u64,
        _node: &openraft::impls::BasicNode,
    ) -> Self::Network {
        GroupNetworkAdapter::new(self.router.clone(), target, self.group)
    }
}

impl<S: SnapshotCodec> GroupRouter<TypeConfig, RaftGroupId> for SimGroupRouter<S> {
    type SnapshotData = S;

    async fn append_entries(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let call = |raft: Arc<dyn GroupHandle>| raft.append_entries(rpc);
        Ok(self
            .router
            .deliver(self.source, target, group, call)
            .await?)
    }

    async fn vote(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let call = |raft: Arc<dyn GroupHandle>| raft.vote(rpc, false);
        Ok(self
            .router
            .deliver(self.source, target, group, call)
            .await?)
    }

    async fn pre_vote(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let call = |raft: Arc<dyn GroupHandle>| raft.vote(rpc, true);
        Ok(self
            .router
            .deliver(self.source, target, group, call)
            .await?)
    }

    async fn full_snapshot(
        &self,
        target: u64,
        group: RaftGroupId,
        vote: VoteOf,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, S>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // Snapshots travel encoded, as over a real network.
        let data = snapshot
            .snapshot
            .encode_snapshot()
            .map_err(|e| StreamingError::from(unreachable(e)))?;
        let meta = snapshot.meta;
        let call = |raft: Arc<dyn GroupHandle>| raft.install_snapshot(vote, meta, data);
        Ok(self
            .router
            .deliver(self.source, target, group, call)
            .await?)
    }

    async fn transfer_leader(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let call = |raft: Arc<dyn GroupHandle>| raft.transfer_leader(rpc);
        Ok(self
            .router
            .deliver(self.source, target, group, call)
            .await?)
    }
}

/// The snapshot type of partition groups, for the default network.
pub type PartitionNetwork = SimNetwork<PartitionSnapshot>;

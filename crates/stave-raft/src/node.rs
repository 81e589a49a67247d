//! A node's Raft side: the controller replica, the partition replicas the metadata assigns
//! to this node, and the rules of DESIGN.md "Replication" that tie them together.
//!
//! - **Bootstrap.** Every node of a new cluster starts with the same peers. A node with no
//!   cluster state asks its peers (`Hello`). If none holds cluster state and all answered,
//!   the cluster is new: the lowest id initializes the controller group with every peer as a
//!   voter and writes the cluster id (`InitCluster`) and the nodes; the others wait to be
//!   contacted. Every node stores the cluster id in `{data}/node` once it sees it.
//! - **A wiped node** (no state, but a peer holds a cluster) must not vote with a forgotten
//!   vote: before its empty controller replica is reachable it asks the controller leader to
//!   take it back as a learner (`Rejoin`); it answers everything but votes until the leader
//!   promotes it, once caught up. Its partition replicas of topics that existed before it
//!   came back rejoin the same way, each through its group's leader.
//! - **Partition groups** follow the metadata: a node runs a replica of every partition
//!   assigned to it (in `{data}/partitions/{topic}-{incarnation}-{partition}`, so a recreated
//!   topic never meets an old group's data); the first replica of the assignment initializes
//!   the group; replicas of deleted topics stop and their directories go; the leader of a
//!   group whose assignment changed adds (as a learner, promoted once caught up) and removes
//!   replicas to match.
//!
//! The node does not serve: add [`RaftNode::services`] to the node's gRPC server.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use serde::{Deserialize, Serialize};
use stave_proto::internal::controller as proto;
use tokio::sync::watch;

use crate::controller::{
    ClusterMetadata, Controller, ControllerError, ControllerSnapshot, controller_log_config,
};
use crate::group::{CONTROLLER_GROUP, GroupHandle, GroupId, Groups, Rejoined};
use crate::membership;
use crate::replica::{PartitionReplica, start_partition};
use crate::state_machine::PartitionSnapshot;
use crate::transport::{NodeIdentity, RaftClients, TransportConfig};
use crate::types::TypeConfig;

/// How a node runs its Raft groups.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    /// This node's address (host:port) as its peers reach it.
    pub addr: String,
    /// Every node of the initial cluster, this one included: id → address.
    pub peers: BTreeMap<u64, String>,
    pub transport: TransportConfig,
    pub partition_log: stave_log::LogConfig,
    pub partition_raft: Arc<openraft::Config>,
    pub controller_raft: Arc<openraft::Config>,
    /// How long a new or rejoining replica may take to catch up before it is reported
    /// instead of promoted.
    pub catch_up_deadline: Duration,
    /// How often a starting node retries its peers while it cannot tell a new cluster from
    /// an existing one.
    pub bootstrap_retry: Duration,
}

impl NodeConfig {
    /// Production settings for node `id` with data in `data_dir`, reachable at `addr`.
    pub fn new(id: u64, data_dir: PathBuf, addr: String, peers: BTreeMap<u64, String>) -> Self {
        NodeConfig {
            id,
            data_dir,
            addr,
            peers,
            transport: TransportConfig::default(),
            partition_log: stave_log::LogConfig::default(),
            partition_raft: crate::replica::partition_raft_config(),
            controller_raft: crate::controller::controller_raft_config(Default::default()),
            catch_up_deadline: Duration::from_secs(30),
            bootstrap_retry: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory {dir} belongs to node {found}, not node {expected}")]
    WrongNode {
        dir: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("node {id} is not among the peers {peers:?}")]
    NotAPeer { id: u64, peers: Vec<u64> },
    #[error("I/O on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Controller(#[from] ControllerError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const NODE_FILE: &str = "node";

/// How often a node looks at its groups again without a metadata change (leader changes,
/// promotions of rejoined replicas, retries).
const RECHECK: Duration = Duration::from_secs(2);

/// `{data}/node`: which node the directory belongs to, and its cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct NodeFile {
    node_id: u64,
    cluster_id: Option<String>,
}

fn read_node_file(dir: &Path) -> Result<Option<NodeFile>, NodeError> {
    let path = dir.join(NODE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_error(&path)(std::io::Error::other(e))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error(&path)(err)),
    }
}

/// Replaces `{data}/node` atomically (temporary file, sync, rename, directory sync).
fn write_node_file(dir: &Path, file: &NodeFile) -> Result<(), NodeError> {
    let path = dir.join(NODE_FILE);
    let temporary = dir.join(format!("{NODE_FILE}.tmp"));
    let bytes = serde_json::to_vec(file).map_err(|e| io_error(&path)(std::io::Error::other(e)))?;
    let write = || -> std::io::Result<()> {
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(io_error(&path))
}

/// A node's Raft groups. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.inner.config.id)
            .field("groups", &self.inner.groups)
            .finish()
    }
}

struct NodeInner {
    config: NodeConfig,
    groups: Groups,
    clients: RaftClients,
    identity: NodeIdentity,
    controller: Controller,
    partitions: Mutex<BTreeMap<GroupId, RunningPartition>>,
    /// Set while this node came back wiped: topics below this incarnation existed before, so
    /// its new, empty replicas of them rejoin as learners instead of joining as voters.
    rejoin_below_incarnation: Mutex<Option<u64>>,
    /// The groups whose membership this node (their leader) is converging.
    converging: Mutex<BTreeSet<GroupId>>,
    writing_cluster: std::sync::atomic::AtomicBool,
    /// The partition groups running here, for whoever waits on them.
    running: watch::Sender<BTreeSet<GroupId>>,
    stop: watch::Sender<bool>,
}

struct RunningPartition {
    replica: PartitionReplica,
    dir: PathBuf,
    /// Reachable for votes (false while a wiped replica rejoins).
    voting: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a Raft replica holds any state (a vote, or a log).
fn has_raft_state<SM>(raft: &openraft::Raft<TypeConfig, SM>) -> bool
where
    SM: openraft::storage::RaftStateMachine<TypeConfig>,
{
    let metrics = raft.metrics();
    let metrics = metrics.borrow_watched();
    metrics.vote.leader_id.term > 0 || metrics.last_log_index.is_some()
}

impl RaftNode {
    /// Opens the node's data directory and starts its controller replica; bootstrap (or the
    /// rejoin of a wiped node) and the partition groups proceed in the background.
    pub async fn start(config: NodeConfig) -> Result<RaftNode, NodeError> {
        let identity = NodeIdentity::new(config.id, config.catch_up_deadline);
        RaftNode::start_with(config, Groups::default(), identity).await
    }

    /// [`RaftNode::start`] with the groups registry and identity its server already serves
    /// (a node restarted in the same process, as tests do).
    pub async fn start_with(
        config: NodeConfig,
        groups: Groups,
        identity: NodeIdentity,
    ) -> Result<RaftNode, NodeError> {
        if !config.peers.contains_key(&config.id) {
            return Err(NodeError::NotAPeer {
                id: config.id,
                peers: config.peers.keys().copied().collect(),
            });
        }
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(dir.join("partitions")).map_err(io_error(&dir))?;
        let node_file = read_node_file(&dir)?;
        if let Some(file) = &node_file
            && file.node_id != config.id
        {
            return Err(NodeError::WrongNode {
                dir,
                found: file.node_id,
                expected: config.id,
            });
        }
        if node_file.is_none() {
            write_node_file(
                &dir,
                &NodeFile {
                    node_id: config.id,
                    cluster_id: None,
                },
            )?;
        }

        let clients = RaftClients::new(config.transport.clone());
        identity.reset_cluster_id(node_file.as_ref().and_then(|f| f.cluster_id.as_deref()));
        let controller_dir = dir.join("controller");
        std::fs::create_dir_all(&controller_dir).map_err(io_error(&controller_dir))?;
        let controller = Controller::open(
            config.id,
            &controller_dir,
            controller_log_config(),
            config.controller_raft.clone(),
            clients.network::<ControllerSnapshot>(CONTROLLER_GROUP),
        )
        .await?;
        let has_state = has_raft_state(&controller.raft);
        let (stop, _) = watch::channel(false);
        let node = RaftNode {
            inner: Arc::new(NodeInner {
                config,
                groups,
                clients,
                identity,
                controller,
                partitions: Mutex::new(BTreeMap::new()),
                rejoin_below_incarnation: Mutex::new(None),
                converging: Mutex::new(BTreeSet::new()),
                writing_cluster: std::sync::atomic::AtomicBool::new(false),
                running: watch::channel(BTreeSet::new()).0,
                stop,
            }),
        };
        if has_state {
            node.inner.groups.insert(
                CONTROLLER_GROUP,
                Arc::new(node.inner.controller.raft.clone()),
            );
        } else {
            let bootstrapping = node.clone();
            tokio::spawn(async move { bootstrapping.bootstrap().await });
        }
        let following = node.clone();
        tokio::spawn(async move { following.follow_metadata().await });
        Ok(node)
    }

    pub fn id(&self) -> u64 {
        self.inner.config.id
    }

    /// The groups running here, for the node's Raft services.
    pub fn groups(&self) -> &Groups {
        &self.inner.groups
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.inner.identity
    }

    pub fn controller(&self) -> &Controller {
        &self.inner.controller
    }

    /// The Raft services to add to the node's gRPC server.
    pub fn services(
        &self,
    ) -> (
        stave_proto::internal::raft::raft_control_server::RaftControlServer<
            crate::transport::ControlService,
        >,
        stave_proto::internal::raft::raft_data_server::RaftDataServer<
            crate::transport::DataService,
        >,
    ) {
        crate::transport::services(
            &self.inner.groups,
            &self.inner.identity,
            &self.inner.config.transport,
        )
    }

    /// This node's replica of partition group `group`, if it runs one.
    pub fn partition(&self, group: GroupId) -> Option<PartitionReplica> {
        lock(&self.inner.partitions)
            .get(&group)
            .map(|running| running.replica.clone())
    }

    /// The partition groups running here.
    pub fn partition_groups(&self) -> Vec<GroupId> {
        lock(&self.inner.partitions).keys().copied().collect()
    }

    /// A receiver that sees the set of partition groups running here change.
    pub fn subscribe_partitions(&self) -> watch::Receiver<BTreeSet<GroupId>> {
        self.inner.running.subscribe()
    }

    fn publish_partitions(&self) {
        let running: BTreeSet<GroupId> = lock(&self.inner.partitions).keys().copied().collect();
        self.inner.running.send_if_modified(|current| {
            let changed = *current != running;
            *current = running;
            changed
        });
    }

    /// Stops every group on this node (their data stays).
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        self.inner.groups.remove(CONTROLLER_GROUP);
        let running: Vec<(GroupId, RunningPartition)> =
            std::mem::take(&mut *lock(&self.inner.partitions))
                .into_iter()
                .collect();
        for (group, partition) in running {
            self.inner.groups.remove(group);
            let _ = partition.replica.raft.shutdown().await;
        }
        let _ = self.inner.controller.raft.shutdown().await;
    }

    fn stopped(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Waits `retry`, or less if the node stops; false once it has stopped.
    async fn pause(&self) -> bool {
        let mut stop = self.inner.stop.subscribe();
        let retry = self.inner.config.bootstrap_retry;
        let _ = tokio::time::timeout(retry, stop.wait_for(|stopped| *stopped)).await;
        !self.stopped()
    }

    /// A node without controller state: a new cluster, or this node was wiped.
    async fn bootstrap(&self) {
        let config = &self.inner.config;
        let others: Vec<(u64, String)> = config
            .peers
            .iter()
            .filter(|(id, _)| **id != config.id)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        loop {
            let mut answered = 0;
            let mut cluster_leader: Option<(Option<u64>, u64)> = None;
            for (id, addr) in &others {
                match self.inner.clients.hello(*id, addr, config.id).await {
                    Ok(hello) => {
                        answered += 1;
                        if !hello.cluster_id.is_empty() {
                            cluster_leader = Some((hello.controller_leader, *id));
                        }
                    }
                    Err(err) => tracing::debug!(peer = id, %err, "peer not reachable yet"),
                }
            }
            if let Some((leader, asked)) = cluster_leader {
                // A cluster exists and this node holds nothing of it: it was wiped (or is
                // new to an existing cluster).
                if self.rejoin_controller(leader.unwrap_or(asked)).await {
                    return;
                }
            } else if answered == others.len() {
                self.inner.groups.insert(
                    CONTROLLER_GROUP,
                    Arc::new(self.inner.controller.raft.clone()),
                );
                if config.peers.keys().next() == Some(&config.id) {
                    self.initialize_cluster().await;
                }
                return;
            }
            if !self.pause().await {
                return;
            }
        }
    }

    /// The lowest node of a new cluster: initializes the controller group, then writes the
    /// cluster id and the nodes.
    async fn initialize_cluster(&self) {
        let config = &self.inner.config;
        let members: BTreeMap<u64, BasicNode> = config
            .peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        if let Err(err) = self.inner.controller.raft.initialize(members).await {
            tracing::warn!(%err, "controller group not initialized");
        }
        self.write_cluster().await;
    }

    /// Writes the cluster id and the initial nodes (on the controller leader, while the
    /// metadata has no cluster id: also after a restart between initialization and these
    /// writes; a second `InitCluster` is refused, `RegisterNode` is idempotent).
    async fn write_cluster(&self) {
        let config = &self.inner.config;
        let cluster_id = format!("{:016x}", rand::random::<u64>());
        // The nodes first: whoever sees the cluster id finds them registered.
        let mut commands: Vec<proto::Command> = config
            .peers
            .iter()
            .map(|(id, addr)| proto::Command {
                command: Some(proto::command::Command::RegisterNode(proto::RegisterNode {
                    node: Some(proto::Node {
                        id: *id,
                        addr: addr.clone(),
                    }),
                })),
            })
            .collect();
        commands.push(proto::Command {
            command: Some(proto::command::Command::InitCluster(proto::InitCluster {
                cluster_id,
            })),
        });
        for command in commands {
            loop {
                match self.inner.controller.propose(command.clone()).await {
                    Ok(_) => break,
                    Err(err) => {
                        tracing::debug!(%err, "bootstrap command not applied yet");
                        if !self.pause().await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Asks the controller leader (starting with `ask`) to take this wiped node back; true
    /// once it has (the controller replica is then reachable, not voting).
    async fn rejoin_controller(&self, ask: u64) -> bool {
        let inner = &self.inner;
        let raft: Arc<dyn GroupHandle> = Arc::new(inner.controller.raft.clone());
        // Until the controller replica has caught up, every partition replica this node
        // (re)creates rejoins: none initializes a group or votes.
        *lock(&inner.rejoin_below_incarnation) = Some(u64::MAX);
        if self
            .rejoin(CONTROLLER_GROUP, ask, &inner.config.peers)
            .await
        {
            inner.groups.insert_not_voting(CONTROLLER_GROUP, raft);
            let node = self.clone();
            tokio::spawn(async move { node.vote_again_when_promoted().await });
            return true;
        }
        *lock(&inner.rejoin_below_incarnation) = None;
        false
    }

    /// Asks the leader of `group` (starting with node `ask`, following hints) to take back
    /// this node's wiped replica as a learner.
    async fn rejoin(&self, group: GroupId, ask: u64, addrs: &BTreeMap<u64, String>) -> bool {
        let config = &self.inner.config;
        let mut ask = ask;
        for _ in 0..addrs.len() * 2 {
            let Some(addr) = addrs.get(&ask) else {
                return false;
            };
            match self
                .inner
                .clients
                .rejoin(ask, addr, group, config.id, &config.addr)
                .await
            {
                Ok(Rejoined::Demoted) => return true,
                Ok(Rejoined::NotLeader(Some(leader))) if leader != ask => ask = leader,
                Ok(Rejoined::NotLeader(_)) => return false,
                Err(err) => {
                    tracing::debug!(group, node = ask, %err, "rejoin refused");
                    return false;
                }
            }
        }
        false
    }

    /// A rejoining controller replica votes again once the leader has promoted it. Once it
    /// has applied what was committed then, the topics it knows are the ones that existed
    /// before this node came back: its replicas of later topics join normally.
    async fn vote_again_when_promoted(&self) {
        let raft = self.inner.controller.raft.clone();
        let me = self.inner.config.id;
        let mut stop = self.inner.stop.subscribe();
        let caught_up = async {
            let promoted = raft
                .wait(None)
                .metrics(
                    |m| {
                        m.membership_config
                            .membership()
                            .voter_ids()
                            .any(|id| id == me)
                    },
                    "promoted",
                )
                .await
                .ok()?;
            let committed = promoted.cluster_committed.map(|id| id.index);
            raft.wait(None)
                .applied_index_at_least(committed, "caught up")
                .await
                .ok()
        };
        tokio::select! {
            caught_up = caught_up => if caught_up.is_some() {
                self.inner.groups.insert(CONTROLLER_GROUP, Arc::new(raft));
                let below = self.inner.controller.metadata().next_incarnation();
                *lock(&self.inner.rejoin_below_incarnation) = Some(below);
            },
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    }

    /// Follows the metadata: stores the cluster id, and starts, initializes, changes and
    /// stops partition groups to match the assignment.
    async fn follow_metadata(&self) {
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
            let file = NodeFile {
                node_id: inner.config.id,
                cluster_id: Some(cluster_id.to_string()),
            };
            match write_node_file(&inner.config.data_dir, &file) {
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
        if metadata.cluster_id().is_none()
            && leads_controller
            && !inner
                .writing_cluster
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let node = self.clone();
            tokio::spawn(async move {
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
                let group = topic.group_id(partition);
                assigned.insert(group);
                let dir = inner
                    .config
                    .data_dir
                    .join("partitions")
                    .join(format!("{name}-{}-{partition}", topic.incarnation()));
                if let Err(err) = self
                    .ensure_partition(metadata, group, topic.incarnation(), replicas, &dir)
                    .await
                {
                    tracing::error!(group, %err, "partition replica not started");
                }
            }
        }
        self.stop_unassigned(&assigned, metadata).await;
    }

    /// Runs this node's replica of `group` (replicas `replicas`), initializing the group if
    /// this node is its first replica, and, if it leads, converging its membership.
    async fn ensure_partition(
        &self,
        metadata: &ClusterMetadata,
        group: GroupId,
        incarnation: u64,
        replicas: &[u64],
        dir: &Path,
    ) -> Result<(), NodeError> {
        let inner = &self.inner;
        let me = inner.config.id;
        let addrs = || -> BTreeMap<u64, String> {
            replicas
                .iter()
                .filter_map(|id| metadata.node_addr(*id).map(|addr| (*id, addr.to_string())))
                .collect()
        };
        let rejoin_mode =
            lock(&inner.rejoin_below_incarnation).is_some_and(|below| incarnation < below);
        let running = lock(&inner.partitions)
            .get(&group)
            .map(|running| (running.replica.clone(), running.voting));
        let (replica, voting) = match running {
            Some(running) => running,
            None => {
                let existed = dir.exists();
                std::fs::create_dir_all(dir).map_err(io_error(dir))?;
                let network = inner.clients.network::<PartitionSnapshot>(group);
                let replica = start_partition(
                    me,
                    dir,
                    inner.config.partition_log.clone(),
                    inner.config.partition_raft.clone(),
                    network,
                )
                .await
                .map_err(io_error(dir))?;
                let voting = existed || !rejoin_mode;
                if !voting {
                    // Reachable only once its leader has demoted it (see `rejoin`).
                    let leader = replicas.iter().copied().find(|id| *id != me);
                    let demoted = match leader {
                        Some(leader) => self.rejoin(group, leader, &addrs()).await,
                        None => false,
                    };
                    if !demoted {
                        let _ = replica.raft.shutdown().await;
                        return Ok(()); // The next pass retries.
                    }
                    inner
                        .groups
                        .insert_not_voting(group, Arc::new(replica.raft.clone()));
                } else {
                    inner.groups.insert(group, Arc::new(replica.raft.clone()));
                }
                lock(&inner.partitions).insert(
                    group,
                    RunningPartition {
                        replica: replica.clone(),
                        dir: dir.to_path_buf(),
                        voting,
                    },
                );
                self.publish_partitions();
                (replica, voting)
            }
        };
        let raft = &replica.raft;
        // One look at the metrics: this pass runs every few seconds for every partition.
        let (has_state, is_voter, voters) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow_watched();
            let leads = metrics.current_leader == Some(me);
            let membership = metrics.membership_config.membership();
            (
                metrics.vote.leader_id.term > 0 || metrics.last_log_index.is_some(),
                membership.voter_ids().any(|id| id == me),
                leads.then(|| membership.voter_ids().collect::<BTreeSet<u64>>()),
            )
        };
        if replicas.first() == Some(&me) && !rejoin_mode && !has_state {
            let addrs = addrs();
            if addrs.len() == replicas.len() {
                let members: BTreeMap<u64, BasicNode> = addrs
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect();
                if let Err(err) = raft.initialize(members).await {
                    tracing::debug!(group, %err, "partition group not initialized");
                }
            }
        }
        if !voting && is_voter {
            // A rejoined replica votes again once promoted.
            inner.groups.insert(group, Arc::new(raft.clone()));
            if let Some(running) = lock(&inner.partitions).get_mut(&group) {
                running.voting = true;
            }
        }
        let wanted: BTreeSet<u64> = replicas.iter().copied().collect();
        if let Some(voters) = voters
            && voters != wanted
            && lock(&inner.converging).insert(group)
        {
            let node = self.clone();
            let raft = raft.clone();
            let replicas = replicas.to_vec();
            let addrs = addrs();
            tokio::spawn(async move {
                node.converge_membership(&raft, group, &replicas, &addrs)
                    .await;
                lock(&node.inner.converging).remove(&group);
            });
        }
        Ok(())
    }

    /// On a group's leader: adds the assigned replicas it lacks (as learners, promoted once
    /// caught up) and removes the ones no longer assigned.
    async fn converge_membership(
        &self,
        raft: &crate::PartitionRaft,
        group: GroupId,
        replicas: &[u64],
        addrs: &BTreeMap<u64, String>,
    ) {
        let membership = raft.metrics().borrow_watched().membership_config.clone();
        let voters: BTreeSet<u64> = membership.membership().voter_ids().collect();
        let deadline = self.inner.config.catch_up_deadline;
        for id in replicas.iter().filter(|id| !voters.contains(id)) {
            let Some(addr) = addrs.get(id) else { continue };
            if let Err(err) = membership::add_replica(raft, *id, addr, deadline).await {
                tracing::warn!(group, node = id, %err, "replica not added");
            }
        }
        for id in voters.iter().filter(|id| !replicas.contains(id)) {
            if let Err(err) = membership::remove_replica(raft, *id).await {
                tracing::warn!(group, node = id, %err, "replica not removed");
            }
        }
    }

    /// Stops the partition replicas no longer assigned here; deletes the directories of
    /// deleted topics' partitions (a replica moved away keeps its data until its topic goes).
    async fn stop_unassigned(&self, assigned: &BTreeSet<GroupId>, metadata: &ClusterMetadata) {
        let stopping: Vec<(GroupId, RunningPartition)> = {
            let mut partitions = lock(&self.inner.partitions);
            let gone: Vec<GroupId> = partitions
                .keys()
                .filter(|group| !assigned.contains(group))
                .copied()
                .collect();
            gone.into_iter()
                .filter_map(|group| partitions.remove(&group).map(|p| (group, p)))
                .collect()
        };
        let live: BTreeSet<u64> = metadata
            .topics()
            .values()
            .map(|topic| topic.incarnation())
            .collect();
        let stopped_any = !stopping.is_empty();
        for (group, partition) in stopping {
            self.inner.groups.remove(group);
            let _ = partition.replica.raft.shutdown().await;
            let incarnation = crate::group::incarnation_of(group);
            if !live.contains(&incarnation)
                && let Err(err) = std::fs::remove_dir_all(&partition.dir)
            {
                tracing::warn!(group, %err, "deleted topic's directory not removed");
            }
        }
        if stopped_any {
            self.publish_partitions();
        }
    }
}

//! A node's Raft side: the controller replica, the partition replicas the metadata assigns
//! to this node, and the rules that tie them together (docs/architecture.md, "Replication").
//!
//! - **Bootstrap.** Every node of a new cluster starts with the same peers. A node with no
//!   cluster state asks its peers (`Hello`). If none has a cluster id and all answered, the
//!   cluster is new: the lowest id initializes the controller group with every peer as a
//!   voter (only if no peer holds Raft state yet: otherwise the cluster is forming and it
//!   waits for its id) and writes the nodes and the cluster id (`InitCluster`); the others
//!   wait to be contacted. Every node stores the cluster id in `{data}/node` once it sees it.
//!   A node wiped in the moment between the controller's initialization and its cluster id
//!   reaching the peers would be taken for a new one: a window of one round of writes.
//! - **A wiped node** (no state, but a peer holds cluster state) must not vote with a
//!   forgotten vote: before its empty controller replica is reachable it asks the controller
//!   leader to take it back as a learner (`Rejoin`: removed, then added back, so the leader
//!   forgets what it held); it answers everything but votes until it has a committed
//!   membership, newer than that, listing it as a voter (the leader promotes it once caught
//!   up). Its replicas of topics that existed before it came back rejoin the same way, each
//!   through its group's leader. Both facts survive a crash (`{data}/node`, and a
//!   `rejoining` file in a partition directory).
//! - **WantedReplica groups** follow the metadata: a node runs a replica of every partition
//!   assigned to it (in `{data}/partitions/{topic}-{incarnation}-{partition}`, so a recreated
//!   topic never meets an old group's data); every replica of a new partition starts from the
//!   creation assignment as its initial membership, written into its empty log at log id
//!   (0, 0) (what `Raft::initialize` writes, on all replicas alike: none waits for another, so
//!   one dying early leaves no replica without a membership; never after a reassignment); the
//!   leader of a group whose assignment changed adds replicas (as learners, promoted once
//!   caught up) and removes the ones no longer assigned; a replica moved away runs until its
//!   group's committed membership no longer holds it; replicas of deleted topics stop and
//!   their directories go.
//!
//! The node does not serve: add [`RaftNode::services`] to the node's gRPC server.

use std::collections::{BTreeMap, BTreeSet};
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
use crate::group::{CONTROLLER_GROUP, GroupHandle, GroupId, Groups, Rejoined, incarnation_of};
use crate::membership;
use crate::partition::Partition;
use crate::replica::PartitionReplica;
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
    /// The log settings of partitions without a [`NodeConfig::partition_log_for`].
    pub partition_log: stave_log::LogConfig,
    /// The log settings of a topic's partitions, from its metadata (topic configs).
    pub partition_log_for: Option<PartitionLogConfig>,
    pub partition_raft: Arc<openraft::Config>,
    pub controller_raft: Arc<openraft::Config>,
    /// How long a new or rejoining replica may take to catch up before it is reported
    /// instead of promoted.
    pub catch_up_deadline: Duration,
    /// How often a starting node retries its peers while it cannot tell a new cluster from
    /// an existing one.
    pub bootstrap_retry: Duration,
    /// After a partition replica stops on its own or fails to open, the delays before each
    /// reopen from disk; once spent, the replica stays offline (see [`crate::problems`]).
    pub reopen_backoff: Vec<Duration>,
}

/// [`NodeConfig::reopen_backoff`] by default: three reopens, 1 s, 5 s and 30 s after a failure.
pub const REOPEN_BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

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
            partition_log_for: None,
            partition_raft: crate::replica::partition_raft_config(),
            controller_raft: crate::controller::controller_raft_config(Default::default()),
            catch_up_deadline: Duration::from_secs(30),
            bootstrap_retry: Duration::from_millis(500),
            reopen_backoff: REOPEN_BACKOFF.to_vec(),
        }
    }
}

/// Computes a topic's partition log settings from its metadata.
#[derive(Clone)]
pub struct PartitionLogConfig(
    pub Arc<dyn Fn(&crate::controller::TopicMetadata) -> stave_log::LogConfig + Send + Sync>,
);

impl std::fmt::Debug for PartitionLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartitionLogConfig(..)")
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

/// In a partition directory: this replica was created empty for a group that already
/// existed, and votes only once promoted. Holds the learner entry's log index once known.
const REJOINING_FILE: &str = "rejoining";

/// How often a node looks at its groups again without a metadata change (leader changes,
/// promotions of rejoined replicas, retries).
const RECHECK: Duration = Duration::from_secs(2);

/// `{data}/node`: which node the directory belongs to, its cluster, and what a wiped node
/// still has to finish.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct NodeFile {
    node_id: u64,
    cluster_id: Option<String>,
    /// Set once this node came back wiped: replicas it creates for topics below this
    /// incarnation rejoin as learners (`u64::MAX` until its controller replica caught up).
    #[serde(default)]
    rejoin_below_incarnation: Option<u64>,
    /// While its controller replica rejoins: the learner entry's log index.
    #[serde(default)]
    controller_learner_since: Option<u64>,
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

/// Replaces `dir/name` with `bytes` atomically ([`crate::files::replace_atomically`]).
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), NodeError> {
    crate::files::replace_atomically(dir, name, bytes).map_err(io_error(&dir.join(name)))
}

fn write_node_file(dir: &Path, file: &NodeFile) -> Result<(), NodeError> {
    let bytes = serde_json::to_vec(file)
        .map_err(|e| io_error(&dir.join(NODE_FILE))(std::io::Error::other(e)))?;
    write_atomically(dir, NODE_FILE, &bytes)
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NodeError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?
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
    /// `{data}/node` as last written.
    node_file: Mutex<NodeFile>,
    partitions: Mutex<BTreeMap<GroupId, RunningPartition>>,
    /// WantedReplica groups whose replica is being created through a rejoin.
    rejoining: Mutex<BTreeSet<GroupId>>,
    /// The groups whose membership this node (their leader) is converging; the controller's
    /// (`CONTROLLER_GROUP`) while it promotes the controller's learners.
    converging: Mutex<BTreeSet<GroupId>>,
    writing_cluster: std::sync::atomic::AtomicBool,
    /// The partition groups running here, for whoever waits on them.
    running: watch::Sender<BTreeSet<GroupId>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

struct RunningPartition {
    replica: PartitionReplica,
    dir: PathBuf,
    /// While a rejoined replica waits for its promotion: its learner entry's log index
    /// (it votes only once promoted).
    learner_since: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `metrics` show a committed membership newer than `since` that makes `me` a voter:
/// a rejoined replica votes from then on.
fn promoted_since(metrics: &openraft::RaftMetrics<TypeConfig>, me: u64, since: u64) -> bool {
    let committed = &metrics.committed_membership_config;
    committed.log_id().is_some_and(|id| id.index > since)
        && committed.membership().voter_ids().any(|id| id == me)
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
        let id = config.id;
        let node_file = blocking(move || {
            std::fs::create_dir_all(dir.join("partitions")).map_err(io_error(&dir))?;
            let file = read_node_file(&dir)?;
            if let Some(file) = &file
                && file.node_id != id
            {
                return Err(NodeError::WrongNode {
                    dir,
                    found: file.node_id,
                    expected: id,
                });
            }
            let file = file.unwrap_or(NodeFile {
                node_id: id,
                ..NodeFile::default()
            });
            write_node_file(&dir, &file)?;
            std::fs::create_dir_all(dir.join("controller")).map_err(io_error(&dir))?;
            Ok(file)
        })
        .await?;

        let clients = RaftClients::new(config.transport.clone());
        identity.reset_cluster_id(node_file.cluster_id.as_deref());
        identity.open();
        let controller = Controller::open(
            config.id,
            &config.data_dir.join("controller"),
            controller_log_config(),
            config.controller_raft.clone(),
            clients.network::<ControllerSnapshot>(CONTROLLER_GROUP),
        )
        .await?;
        // Through the Raft core: its metrics show the loaded state only once it has run.
        let has_state = controller.raft.is_initialized().await.unwrap_or(true);
        let learner_since = node_file.controller_learner_since;
        let (stop, _) = watch::channel(false);
        let node = RaftNode {
            inner: Arc::new(NodeInner {
                config,
                groups,
                clients,
                identity,
                controller,
                node_file: Mutex::new(node_file),
                partitions: Mutex::new(BTreeMap::new()),
                rejoining: Mutex::new(BTreeSet::new()),
                converging: Mutex::new(BTreeSet::new()),
                writing_cluster: std::sync::atomic::AtomicBool::new(false),
                running: watch::channel(BTreeSet::new()).0,
                tasks: Mutex::new(Vec::new()),
                stop,
            }),
        };
        let controller: Arc<dyn GroupHandle> = Arc::new(node.inner.controller.raft.clone());
        if let Some(since) = learner_since {
            // It crashed while its controller replica rejoined: still not voting.
            node.inner
                .groups
                .insert_not_voting(CONTROLLER_GROUP, controller);
            node.spawn(|node| async move { node.vote_again_when_promoted(since).await });
        } else if has_state {
            node.inner.groups.insert(CONTROLLER_GROUP, controller);
        } else {
            node.spawn(|node| async move { node.bootstrap().await });
        }
        node.spawn(|node| async move { node.follow_metadata().await });
        Ok(node)
    }

    /// Runs a background task of this node; [`RaftNode::shutdown`] waits for it.
    fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce(RaftNode) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        // Under the lock `shutdown` takes its tasks from, after it has said stop: a task is
        // either awaited by `shutdown` or never started.
        let mut tasks = lock(&self.inner.tasks);
        if self.stopped() {
            return;
        }
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::spawn(task(self.clone())));
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

    /// The node's connections to its peers' Raft services.
    pub fn clients(&self) -> &RaftClients {
        &self.inner.clients
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
    pub fn partition(&self, group: GroupId) -> Option<Partition> {
        let replica = self.replica(group)?;
        Some(Partition::new(self.inner.config.id, replica))
    }

    /// The internals of this node's replica of `group`, for this crate's tests and tools
    /// (the broker uses [`RaftNode::partition`]).
    #[doc(hidden)]
    pub fn replica(&self, group: GroupId) -> Option<PartitionReplica> {
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

    /// Stops every group on this node (their data stays): background work first, so nothing
    /// starts a replica behind the shutdown.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        self.inner.identity.close();
        let tasks: Vec<_> = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            let _ = task.await;
        }
        self.inner.groups.remove(CONTROLLER_GROUP);
        let running: Vec<(GroupId, RunningPartition)> =
            std::mem::take(&mut *lock(&self.inner.partitions))
                .into_iter()
                .collect();
        for (group, partition) in running {
            self.inner.groups.remove(group);
            partition.replica.shutdown().await;
        }
        self.publish_partitions();
        self.inner.controller.store.close();
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

    /// Updates `{data}/node` (off the async threads).
    async fn update_node_file(&self, change: impl FnOnce(&mut NodeFile)) -> Result<(), NodeError> {
        let file = {
            let mut file = lock(&self.inner.node_file);
            change(&mut file);
            file.clone()
        };
        let dir = self.inner.config.data_dir.clone();
        blocking(move || write_node_file(&dir, &file)).await
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
        let lowest = config.peers.keys().next() == Some(&config.id);
        loop {
            let mut answered = 0;
            let mut peers_with_state = 0;
            let mut cluster: Option<(Option<u64>, u64)> = None;
            for (id, addr) in &others {
                match self.inner.clients.hello(*id, addr, config.id).await {
                    Ok(hello) => {
                        answered += 1;
                        peers_with_state += usize::from(hello.has_state);
                        if !hello.cluster_id.is_empty() {
                            cluster = Some((hello.controller_leader, *id));
                        }
                    }
                    Err(err) => tracing::debug!(peer = id, %err, "peer not reachable yet"),
                }
            }
            if let Some((leader, asked)) = cluster {
                // A cluster exists and this node holds nothing of it: it was wiped (or is
                // new to an existing cluster).
                if self.rejoin_controller(leader.unwrap_or(asked)).await {
                    return;
                }
            } else if answered == others.len() && !(lowest && peers_with_state > 0) {
                // A new cluster. (Peers with state but no cluster id yet: it is forming; the
                // lowest node waits for its id rather than initializing a second time.)
                if self.stopped() {
                    return;
                }
                self.inner.groups.insert(
                    CONTROLLER_GROUP,
                    Arc::new(self.inner.controller.raft.clone()),
                );
                if lowest {
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
    /// nodes and the cluster id.
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

    /// Writes the initial nodes and the cluster id (on the controller leader, while the
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
        // Until its controller replica has caught up, every partition replica this node
        // creates rejoins: none initializes a group or votes. Stored before anything else.
        let marked = self
            .update_node_file(|file| file.rejoin_below_incarnation = Some(u64::MAX))
            .await;
        if let Err(err) = marked {
            tracing::error!(%err, "cannot record the rejoin");
            return false;
        }
        let peers = self.inner.config.peers.clone();
        let mut candidates: Vec<u64> = vec![ask];
        candidates.extend(peers.keys().copied().filter(|id| *id != ask));
        let Some(since) = self.rejoin(CONTROLLER_GROUP, &candidates, &peers).await else {
            return false;
        };
        if let Err(err) = self
            .update_node_file(|file| file.controller_learner_since = Some(since))
            .await
        {
            tracing::error!(%err, "cannot record the rejoin");
            return false;
        }
        if self.stopped() {
            return true;
        }
        let raft: Arc<dyn GroupHandle> = Arc::new(self.inner.controller.raft.clone());
        self.inner.groups.insert_not_voting(CONTROLLER_GROUP, raft);
        let node = self.clone();
        self.spawn(|_| async move { node.vote_again_when_promoted(since).await });
        true
    }

    /// Asks the leader of `group` (trying `candidates` in turn, following hints) to take back
    /// this node's wiped replica as a learner; the learner entry's log index once it has.
    async fn rejoin(
        &self,
        group: GroupId,
        candidates: &[u64],
        addrs: &BTreeMap<u64, String>,
    ) -> Option<u64> {
        let config = &self.inner.config;
        for &first in candidates {
            let mut ask = first;
            for _ in 0..=addrs.len() {
                let addr = addrs.get(&ask)?;
                match self
                    .inner
                    .clients
                    .rejoin(ask, addr, group, config.id, &config.addr)
                    .await
                {
                    Ok(Rejoined::Learner { since }) => return Some(since),
                    Ok(Rejoined::NotLeader(Some(leader)))
                        if leader != ask && leader != config.id =>
                    {
                        ask = leader
                    }
                    Ok(Rejoined::NotLeader(_)) => break,
                    Err(err) => {
                        tracing::debug!(group, node = ask, %err, "rejoin refused");
                        break;
                    }
                }
            }
        }
        None
    }

    /// A rejoining controller replica votes again once the leader has promoted it. Once it
    /// has applied what was committed then, the topics it knows are the ones that existed
    /// before this node came back: its replicas of later topics join normally.
    async fn vote_again_when_promoted(&self, since: u64) {
        let raft = self.inner.controller.raft.clone();
        let me = self.inner.config.id;
        let mut stop = self.inner.stop.subscribe();
        let caught_up = async {
            let promoted = raft
                .wait(None)
                .metrics(|m| promoted_since(m, me, since), "promoted")
                .await
                .ok()?;
            let committed = promoted.cluster_committed.map(|id| id.index);
            raft.wait(None)
                .applied_index_at_least(committed, "caught up")
                .await
                .ok()
        };
        let caught_up = tokio::select! {
            caught_up = caught_up => caught_up.is_some(),
            _ = stop.wait_for(|stopped| *stopped) => false,
        };
        if !caught_up || self.stopped() {
            return;
        }
        self.inner.groups.insert(CONTROLLER_GROUP, Arc::new(raft));
        let below = self.inner.controller.metadata().next_incarnation();
        let stored = self
            .update_node_file(|file| {
                file.controller_learner_since = None;
                file.rejoin_below_incarnation = Some(below);
            })
            .await;
        if let Err(err) = stored {
            tracing::error!(%err, "cannot record the end of the controller's rejoin");
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

    /// On the controller's leader: promotes the controller's learners that are nodes of the
    /// cluster (wiped nodes taken back) once they have caught up. The leader that took a
    /// rejoin back promotes it too, but only while it leads; this finishes the job after a
    /// leader change (else the node never votes again, and the controller has a voter less).
    fn promote_controller_learners(&self, metadata: &ClusterMetadata) {
        let raft = self.inner.controller.raft.clone();
        let learners: Vec<u64> = raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .learner_ids()
            .filter(|id| metadata.nodes().contains_key(id))
            .collect();
        if learners.is_empty() || !lock(&self.inner.converging).insert(CONTROLLER_GROUP) {
            return;
        }
        let deadline = self.inner.config.catch_up_deadline;
        self.spawn(|node| async move {
            for id in learners {
                let promoted = membership::promote_when_caught_up(&raft, id, deadline).await;
                if let Err(err) = promoted {
                    tracing::warn!(node = id, %err, "controller learner not promoted yet");
                }
            }
            lock(&node.inner.converging).remove(&CONTROLLER_GROUP);
        });
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

    /// If this node leads the group and its members are not the assigned `replicas` (voters
    /// missing or left over, or a learner left over from a move that changed course),
    /// converges the membership in a task of its own, unless one is at it already.
    fn converge_if_leads(
        &self,
        metadata: &ClusterMetadata,
        group: GroupId,
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
        group: GroupId,
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
                    group,
                    node = id,
                    "replica not added: its address is unknown"
                );
                return;
            };
            if let Err(err) = membership::add_replica(raft, *id, addr, deadline).await {
                // Not promoted: keep the old replicas until it is (a later pass retries).
                tracing::warn!(group, node = id, %err, "replica not added");
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
                tracing::warn!(group, node = id, %err, "replica not removed");
            }
        }
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
}

impl RaftNode {
    /// Converges the membership of `group`, a replica running here that the metadata no
    /// longer assigns here, if this replica leads the group.
    fn converge_moved_away(&self, metadata: &ClusterMetadata, group: GroupId) {
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

/// The replicas the metadata assigns to `group` (none if its topic is gone).
fn assigned_replicas(metadata: &ClusterMetadata, group: GroupId) -> Option<&[u64]> {
    metadata
        .topics()
        .values()
        .find(|topic| topic.incarnation() == incarnation_of(group))
        .and_then(|topic| topic.replicas(crate::group::partition_of(group)))
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

/// A new group's initial membership: every replica a voter (none if an address is unknown).
fn membership_of(
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

fn node_addrs(metadata: &ClusterMetadata, replicas: &[u64]) -> BTreeMap<u64, String> {
    replicas
        .iter()
        .filter_map(|id| metadata.node_addr(*id).map(|addr| (*id, addr.to_string())))
        .collect()
}

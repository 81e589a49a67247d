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
//! - **Partition groups** follow the metadata: a node runs a replica of every partition
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
//!
//! Its parts: `config` (how a node runs), `identity` (`{data}/node`), `bootstrap` (a new
//! cluster, a wiped node's rejoin, the controller's learners), `reconcile` (the partition
//! replicas that follow the metadata, and the ones that fail), `converge` (a group leader's
//! membership changes), `retire` (the replicas no longer assigned here). This file holds the
//! [`RaftNode`] handle: start, accessors, shutdown.

mod bootstrap;
mod config;
mod converge;
mod identity;
mod reconcile;
mod retire;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::controller::{Controller, ControllerError, ControllerSnapshot, controller_log_config};
use crate::group::{CONTROLLER_GROUP, GroupHandle, Groups, RaftGroupId};
use crate::partition::Partition;
use crate::replica::PartitionReplica;
use crate::transport::{NodeIdentity, RaftClients};

pub use config::{NodeConfig, PartitionLogConfig, REOPEN_BACKOFF};
use identity::{NodeFile, open_data_dir};

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
    partitions: Mutex<BTreeMap<RaftGroupId, RunningPartition>>,
    /// Partition groups whose replica is being created through a rejoin.
    rejoining: Mutex<BTreeSet<RaftGroupId>>,
    /// The groups whose membership this node (their leader) is converging; the controller's
    /// (`CONTROLLER_GROUP`) while it promotes the controller's learners.
    converging: Mutex<BTreeSet<RaftGroupId>>,
    writing_cluster: std::sync::atomic::AtomicBool,
    /// The partition groups running here, for whoever waits on them.
    running: watch::Sender<BTreeSet<RaftGroupId>>,
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
        let node_file = open_data_dir(config.data_dir.clone(), config.id).await?;
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
        crate::transport::ControlServer,
        crate::transport::DataServer,
    ) {
        crate::transport::services(
            &self.inner.groups,
            &self.inner.identity,
            &self.inner.config.transport,
        )
    }

    /// This node's replica of partition group `group`, if it runs one.
    pub fn partition(&self, group: RaftGroupId) -> Option<Partition> {
        let replica = self.replica(group)?;
        Some(Partition::new(self.inner.config.id, replica))
    }

    /// The internals of this node's replica of `group`, for this crate's tests and tools
    /// (the broker uses [`RaftNode::partition`]).
    #[doc(hidden)]
    pub fn replica(&self, group: RaftGroupId) -> Option<PartitionReplica> {
        lock(&self.inner.partitions)
            .get(&group)
            .map(|running| running.replica.clone())
    }

    /// The partition groups running here.
    pub fn partition_groups(&self) -> Vec<RaftGroupId> {
        lock(&self.inner.partitions).keys().copied().collect()
    }

    /// A receiver that sees the set of partition groups running here change.
    pub fn subscribe_partitions(&self) -> watch::Receiver<BTreeSet<RaftGroupId>> {
        self.inner.running.subscribe()
    }

    fn publish_partitions(&self) {
        let running: BTreeSet<RaftGroupId> = lock(&self.inner.partitions).keys().copied().collect();
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
        let running: Vec<(RaftGroupId, RunningPartition)> =
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
}

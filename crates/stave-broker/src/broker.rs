//! `Broker`: a node serving the public API, and the state its request families share. The
//! families live beside it ([`crate::produce`], [`crate::fetch`], [`crate::admin`],
//! [`crate::consumer_group`]); [`crate::grpc`] is the edge that decodes requests, calls them
//! and encodes their answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use stave_proto::v1::stave_client::StaveClient;
use stave_raft::group::RaftGroupId;
use stave_raft::node::{NodeConfig, PartitionLogConfig, RaftNode};
use stave_raft::transport::ClusterSecret;
use stave_raft::transport::auth::AttachSecret;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::auth::AuthState;
use crate::config::BrokerConfig;
use crate::consumer_group::{ConsumerGroup, Coordinating};
use crate::error::BrokerError;
use crate::leaderships::Leaderships;
use crate::tls::NodeTls;
use crate::topic_config::topic_config;

/// Another node's public API, each call carrying the cluster secret.
pub(crate) type PeerClient = StaveClient<InterceptedService<Channel, AttachSecret>>;

/// A node serving the public API.
pub struct Broker {
    /// This broker, for tasks that outlive a request (pipelined produce).
    pub(crate) this: std::sync::Weak<Broker>,
    node: RaftNode,
    config: BrokerConfig,
    /// Per partition: the check and proposal of idempotent batches happen under it.
    order: Mutex<HashMap<RaftGroupId, Arc<tokio::sync::Mutex<()>>>>,
    /// Public-API clients to other nodes (forwarding, gathering), their calls signed with
    /// the cluster secret.
    pub(crate) peers: Mutex<HashMap<String, PeerClient>>,
    /// The cluster's shared secret: what marks a call as one from another node.
    pub(crate) cluster_secret: ClusterSecret,
    /// The node's TLS (its certificate, the CA), when it serves TLS and dials peers with it.
    tls: Option<NodeTls>,
    /// Who may do what: the auth mode, users and ACLs (see [`crate::auth`]).
    pub(crate) auth: Arc<AuthState>,
    pub(crate) leaderships: Mutex<Option<(Instant, Leaderships)>>,
    /// Consumer groups this node coordinates: membership, in memory (members rejoin when
    /// the coordinator moves; committed offsets are in `__offsets`).
    consumer_groups: Mutex<HashMap<String, ConsumerGroup>>,
    /// Queue groups this node coordinates: their tasks.
    pub(crate) queue_groups: Mutex<HashMap<String, crate::queue::engine::Handle>>,
    /// Per `__offsets` partition this node leads: the term it leads in and since when.
    coordinating: Mutex<HashMap<RaftGroupId, Coordinating>>,
    /// The client Consume streams read through (bootstrapped at this node), made on first use.
    pub(crate) consume_client: tokio::sync::OnceCell<stave_client::Client>,
    /// Per partition led here: the message ids written within its dedupe window.
    pub(crate) id_tables: crate::dedupe::IdTables,
    /// When this node started serving.
    pub(crate) started: Instant,
    /// The metrics counted as they happen (`crate::metrics`).
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node", &self.node).finish()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The reserve topic writes leave free on the data directory's disk: configured, or 1% of it.
fn disk_reserve_bytes(config: &BrokerConfig) -> Result<u64, BrokerError> {
    if let Some(bytes) = config.disk_reserve_bytes {
        return Ok(bytes);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|err| BrokerError::Config {
        message: format!("cannot create {}: {err}", config.data_dir.display()),
    })?;
    let disk =
        stave_log::storage::disk_bytes(&config.data_dir).map_err(|err| BrokerError::Config {
            message: format!(
                "cannot read the size of {}'s disk: {err}",
                config.data_dir.display()
            ),
        })?;
    Ok(crate::config::default_disk_reserve_bytes(disk.total))
}

impl Broker {
    /// Starts the node's Raft side (bootstrap, controller, partitions) for `config`.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        let mut node_config = NodeConfig::new(
            config.node_id,
            config.data_dir.clone(),
            config.advertised().to_string(),
            config.cluster(),
        );
        // TLS files first: a node that cannot use them stops before it writes anything.
        let tls = config.tls.as_ref().map(NodeTls::load).transpose()?;
        node_config.transport.tls = tls.as_ref().map(NodeTls::transport_config);
        let reserve_bytes = disk_reserve_bytes(&config)?;
        let cluster_secret = crate::cluster_secret::resolve(&config)?;
        node_config.transport.secret = Some(cluster_secret.clone());
        tracing::info!(reserve_bytes, "disk space kept free of topic writes");
        node_config.partition_log_for = Some(PartitionLogConfig(Arc::new(move |topic| {
            stave_log::LogConfig {
                reserve_bytes,
                ..topic_config(topic).log_config()
            }
        })));
        let node = RaftNode::start(node_config).await?;
        let auth = Arc::new(AuthState::new(
            config.auth,
            cluster_secret.clone(),
            node.controller().subscribe(),
        ));
        let metrics_partition_series = config.metrics_partition_series;
        Ok(Arc::new_cyclic(|this| Broker {
            this: this.clone(),
            node,
            config,
            order: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            cluster_secret,
            tls,
            auth,
            leaderships: Mutex::new(None),
            consumer_groups: Mutex::new(HashMap::new()),
            coordinating: Mutex::new(HashMap::new()),
            queue_groups: Mutex::new(HashMap::new()),
            consume_client: tokio::sync::OnceCell::new(),
            id_tables: Default::default(),
            started: Instant::now(),
            metrics: Arc::new(crate::metrics::Metrics::new(metrics_partition_series)),
        }))
    }

    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The node's TLS, when it has some.
    pub fn tls(&self) -> Option<&NodeTls> {
        self.tls.as_ref()
    }

    pub(crate) fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    pub(crate) fn consumer_groups_lock(&self) -> MutexGuard<'_, HashMap<String, ConsumerGroup>> {
        lock(&self.consumer_groups)
    }

    pub(crate) fn coordinating_lock(&self) -> MutexGuard<'_, HashMap<RaftGroupId, Coordinating>> {
        lock(&self.coordinating)
    }

    /// The lock under which Raft group `raft_group`'s idempotent batches are checked and
    /// proposed.
    pub(crate) fn order_lock(&self, raft_group: RaftGroupId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.order).entry(raft_group).or_default().clone()
    }
}

//! How a node runs its Raft groups ([`NodeConfig`]): its peers, transport, log and Raft
//! settings, and the reopen backoff of a failing replica ([`REOPEN_BACKOFF`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::TransportConfig;

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

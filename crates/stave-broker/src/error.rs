//! The broker's one error type. The gRPC edge maps it to the API's typed errors
//! (`grpc::convert`).

/// A node and its address, as a hint: where the leader or the coordinator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub node_id: u64,
    pub addr: String,
}

impl From<(u64, String)> for NodeAddr {
    fn from((node_id, addr): (u64, String)) -> Self {
        NodeAddr { node_id, addr }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("configuration: {message}")]
    Config { message: String },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("this node does not lead {topic}/{partition}")]
    NotLeader {
        topic: String,
        partition: u32,
        leader: Option<NodeAddr>,
    },
    #[error("{topic}/{partition} has no leader yet")]
    LeaderNotAvailable { topic: String, partition: u32 },
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("invalid topic name: {0}")]
    InvalidTopicName(String),
    #[error("topic names starting with `__` are reserved for internal topics: {0:?}")]
    ReservedTopicName(String),
    #[error("topic {0:?} exists")]
    TopicExists(String),
    #[error("a batch of {bytes} bytes is larger than the limit of {max}")]
    MessageTooLarge { bytes: usize, max: usize },
    #[error("corrupt batch: {0}")]
    CorruptBatch(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("out of order sequence: expected {expected}, got {received}")]
    OutOfOrderSequence { expected: i32, received: i32 },
    #[error("producer fenced: epoch {received} is older than {current}")]
    ProducerFenced { current: i16, received: i16 },
    #[error("the same batch, or a record with the same id, is being written right now: retry")]
    DuplicateInFlight,
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("replication factor {asked} is more than the {nodes} nodes")]
    NotEnoughNodes { asked: u32, nodes: usize },
    #[error(
        "node {node} has no disk space for {needed_bytes} more bytes under {}: \
         {available_bytes} bytes free, {reserve_bytes} kept in reserve (retry once space \
         is freed: lower a topic's retention or delete a topic)",
        .path.display()
    )]
    StorageFull {
        node: u64,
        path: std::path::PathBuf,
        needed_bytes: u64,
        available_bytes: u64,
        reserve_bytes: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// A typed answer from the node a request was forwarded to, passed on as it came (`code`
    /// is the API's error code).
    #[error("{message}")]
    Forwarded {
        code: i32,
        message: String,
        leader: Option<NodeAddr>,
    },
    #[error("this node does not coordinate consumer group {consumer_group:?}")]
    NotCoordinator {
        consumer_group: String,
        coordinator: Option<NodeAddr>,
    },
    #[error("consumer group {0:?} has no coordinator yet")]
    CoordinatorNotAvailable(String),
    #[error("consumer group {0:?} has members: stop its consumers before resetting its offsets")]
    ConsumerGroupNotEmpty(String),
    #[error(
        "this member does not hold {topic}/{partition} offset {offset} delivery \
         {delivery_count}: never delivered to it, settled already, or its lock expired and the \
         record went out again"
    )]
    DeliveryNotHeld {
        topic: String,
        partition: u32,
        offset: u64,
        delivery_count: u32,
    },
    #[error("group {group:?}: {why}")]
    GroupMismatch { group: String, why: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error(transparent)]
    ConsumerGroupMembership(#[from] crate::consumer_group::GroupMembershipError),
    /// A replication failure with no answer of its own (a stopped replica, an I/O error).
    #[error(transparent)]
    Replication(#[from] stave_raft::ReplicationError),
    #[error(transparent)]
    Node(#[from] stave_raft::node::NodeError),
    #[error("cannot serve on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {addr} (--metrics-listen)")]
    MetricsListen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

impl BrokerError {
    /// The log's refusal of a write for lack of disk space, as node `node`'s answer; any
    /// other log error is internal.
    pub fn from_log(node: u64, err: stave_log::LogError) -> BrokerError {
        match err {
            stave_log::LogError::StorageFull {
                path,
                needed_bytes,
                available_bytes,
                reserve_bytes,
            } => BrokerError::StorageFull {
                node,
                path,
                needed_bytes,
                available_bytes,
                reserve_bytes,
            },
            other => BrokerError::Internal(other.to_string()),
        }
    }
}

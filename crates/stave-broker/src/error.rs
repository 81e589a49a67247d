//! The broker's one error type, and its mapping to the API's typed errors at the edge.

use stave_proto::v1 as pb;

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
        leader: Option<(u64, String)>,
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
    #[error("the same batch is being written right now")]
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
    #[error("this node does not coordinate group {group:?}")]
    NotCoordinator {
        group: String,
        coordinator: Option<(u64, String)>,
    },
    #[error("group {0:?} has no coordinator yet")]
    CoordinatorNotAvailable(String),
    #[error("group {0:?} has members: stop its consumers before resetting its offsets")]
    GroupNotEmpty(String),
    #[error(transparent)]
    Membership(#[from] crate::membership::MembershipError),
    #[error(transparent)]
    Node(#[from] stave_raft::node::NodeError),
    #[error("cannot serve on {addr}: {source}")]
    Listen {
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

    /// The typed error the API answers with.
    pub fn to_proto(&self) -> pb::Error {
        use pb::ErrorCode as C;
        let code = match self {
            BrokerError::UnknownTopic(_) => C::UnknownTopic,
            BrokerError::UnknownPartition { .. } => C::UnknownPartition,
            BrokerError::NotLeader { .. } => C::NotLeader,
            BrokerError::LeaderNotAvailable { .. } => C::LeaderNotAvailable,
            BrokerError::OffsetOutOfRange { .. } => C::OffsetOutOfRange,
            BrokerError::InvalidTopicName(_) => C::InvalidTopicName,
            BrokerError::ReservedTopicName(_) => C::ReservedTopicName,
            BrokerError::TopicExists(_) => C::TopicExists,
            BrokerError::MessageTooLarge { .. } => C::MessageTooLarge,
            BrokerError::CorruptBatch(_) => C::CorruptBatch,
            BrokerError::InvalidRequest(_) | BrokerError::Config { .. } => C::InvalidRequest,
            BrokerError::InvalidConfig(_) => C::InvalidConfig,
            BrokerError::OutOfOrderSequence { .. } => C::OutOfOrderSequence,
            BrokerError::ProducerFenced { .. } => C::ProducerFenced,
            BrokerError::DuplicateInFlight => C::DuplicateInFlight,
            BrokerError::Timeout(_) => C::RequestTimedOut,
            BrokerError::NotEnoughNodes { .. } => C::NotEnoughNodes,
            BrokerError::NotCoordinator { .. } => C::NotCoordinator,
            BrokerError::CoordinatorNotAvailable(_) => C::CoordinatorNotAvailable,
            BrokerError::GroupNotEmpty(_) => C::GroupNotEmpty,
            BrokerError::StorageFull { .. } => C::StorageFull,
            BrokerError::Membership(err) => match err {
                crate::membership::MembershipError::UnknownMember(_) => C::UnknownMemberId,
                crate::membership::MembershipError::FencedEpoch { .. } => C::FencedMemberEpoch,
                crate::membership::MembershipError::BadSubscription(_) => C::InvalidRequest,
            },
            BrokerError::Internal(_)
            | BrokerError::Node(_)
            | BrokerError::Listen { .. }
            | BrokerError::Serve(_) => C::Internal,
        };
        let (leader_id, leader_addr) = match self {
            BrokerError::NotLeader {
                leader: Some((id, addr)),
                ..
            }
            | BrokerError::NotCoordinator {
                coordinator: Some((id, addr)),
                ..
            } => (Some(*id), addr.clone()),
            _ => (None, String::new()),
        };
        pb::Error {
            code: code as i32,
            message: self.to_string(),
            leader_id,
            leader_addr,
        }
    }
}

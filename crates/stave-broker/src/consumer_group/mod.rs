//! Consumer groups: a service's instances share a subscription, the coordinator spreads its
//! partitions over them (KIP-848 style: the broker computes assignments from heartbeats) and
//! keeps their committed offsets.
//!
//! - [`coordinator`]: the coordinator's requests (heartbeat, commit, fetch, describe, list,
//!   reset). A group's coordinator is the leader of its `__offsets` partition
//!   (`murmur2(group) % 16`); commits are records proposed to that partition, whose state
//!   machine keeps the table (`stave_raft::offsets`). `__offsets` is created on first use.
//! - [`membership`]: one group's members and incremental assignment (pure state).
//! - [`assignor`]: the balanced, sticky target assignment.
//! - [`pattern`]: subscriptions by pattern (`v1.user.*`, `v1.#`).
//!
//! "Group" alone means a Raft group in `stave-raft`; here it is always a consumer group.

pub mod assignor;
mod coordinator;
pub mod membership;
pub mod pattern;

use std::collections::BTreeSet;

use stave_raft::controller::OFFSETS_PARTITION_COUNT;

pub use self::assignor::TopicPartition;
pub use self::membership::{ConsumerGroup, GroupMembershipError};

/// A member not heard from for this long leaves the group (Kafka's default is 45 s).
pub const SESSION_TIMEOUT_MS: i64 = 10_000;

/// How often members heartbeat.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1_000;

/// The `__offsets` partition that holds `group`'s offsets.
pub fn offsets_partition(group: &str) -> u32 {
    stave_log::hash::partition_for_key(group.as_bytes(), OFFSETS_PARTITION_COUNT)
}

/// Since when (ms) and in which Raft term this node coordinates an `__offsets` partition, as
/// first seen here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coordinating {
    pub term: u64,
    pub since_ms: i64,
}

/// A member's heartbeat, as it arrives.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub consumer_group: String,
    /// Empty: join.
    pub member_id: String,
    pub member_epoch: u64,
    /// Topic names or patterns.
    pub subscription: Vec<String>,
    /// What the member holds now.
    pub owned: BTreeSet<TopicPartition>,
    /// Leave the consumer group.
    pub leave: bool,
}

/// What a heartbeat answers.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: u64,
    /// What the member may hold now.
    pub assignment: BTreeSet<TopicPartition>,
    pub heartbeat_interval_ms: u32,
    pub session_timeout_ms: u32,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: u32,
    /// The next offset the consumer group will read.
    pub offset: u64,
    pub metadata: String,
}

/// A commit of offsets; by a member (checked against its epoch) or from outside the
/// membership (empty `member_id`: tools, reset).
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub consumer_group: String,
    pub offsets: Vec<OffsetCommit>,
    pub member_id: String,
    pub member_epoch: u64,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub metadata: String,
    pub commit_ms: i64,
}

/// A member as DescribeGroup shows it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub member_epoch: u64,
    pub owned: BTreeSet<TopicPartition>,
    pub target: BTreeSet<TopicPartition>,
}

/// A committed offset beside its partition's high watermark.
#[derive(Debug, Clone)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    /// None when no leader answered.
    pub high_watermark: Option<u64>,
}

/// A consumer group's members and committed offsets with lag.
#[derive(Debug, Clone, Default)]
pub struct GroupDescription {
    pub members: Vec<MemberDescription>,
    pub offsets: Vec<PartitionLag>,
    /// A queue group's state (when the group is one).
    pub queue: Option<crate::queue::QueueDescription>,
}

/// One consumer group of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub consumer_group: String,
    /// The node coordinating it.
    pub coordinator: u64,
    pub members: u32,
}

/// Every consumer group, and the nodes that did not answer.
#[derive(Debug, Clone, Default)]
pub struct GroupListing {
    pub consumer_groups: Vec<ListedGroup>,
    pub unreachable: Vec<u64>,
}

/// Where a reset moves a consumer group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// Clamped to the partition's records.
    Offset(u64),
    /// The first record at or after this time (ms); the end when none.
    Timestamp(i64),
}

/// A reset of one topic's committed offsets.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    pub consumer_group: String,
    pub topic: String,
    /// Empty: every partition.
    pub partitions: Vec<u32>,
    pub to: Option<ResetTo>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

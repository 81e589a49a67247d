//! The openraft type config. Log ids are standard Raft (term, index), as a frame stores them.

use std::fmt;

use bytes::Bytes;

/// A client write: one unstamped frame (a record batch or a command), as its producer built
/// it. The log stamps offset, term and index when it appends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePayload(pub Bytes);

impl fmt::Display for FramePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame of {} bytes", self.0.len())
    }
}

/// The state machine's answer to a write: where its records landed, and for a command (the
/// controller's) what applying it produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    pub base_offset: u64,
    /// The offset after the write's last record: the new high watermark.
    pub next_offset: u64,
    /// A command's encoded reply; empty for record batches.
    pub reply: Bytes,
}

/// How a state machine's snapshot travels between nodes: as bytes, encoded by its owner.
pub trait SnapshotCodec: Sized + Send + Sync + 'static {
    fn encode_snapshot(&self) -> std::io::Result<Bytes>;
    fn decode_snapshot(bytes: &[u8]) -> std::io::Result<Self>;
}

openraft::declare_raft_types!(
    /// Stave's Raft types: `u64` node ids and terms, one leader per term.
    pub TypeConfig:
        D = FramePayload,
        R = Applied,
        NodeId = u64,
        Node = openraft::impls::BasicNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

pub type LogIdOf = openraft::alias::LogIdOf<TypeConfig>;
pub type EntryOf = openraft::alias::EntryOf<TypeConfig>;
pub type VoteOf = openraft::alias::VoteOf<TypeConfig>;
pub type MembershipOf = openraft::Membership<u64, openraft::impls::BasicNode>;
pub type StoredMembershipOf = openraft::alias::StoredMembershipOf<TypeConfig>;

/// A stave-log id from an openraft one.
pub(crate) fn to_log_id(id: &LogIdOf) -> stave_log::LogId {
    stave_log::LogId::new(id.leader_id.term, id.index)
}

/// An openraft log id from a stave-log one.
pub(crate) fn from_log_id(id: stave_log::LogId) -> LogIdOf {
    openraft::LogId::new(
        openraft::vote::leader_id_std::CommittedLeaderId::new(id.term.0),
        id.index.0,
    )
}

/// A Raft group's id: the controller's (0) or a partition's (its topic's incarnation and its
/// number, [`crate::group::partition_group_id`]). On the wire it is a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RaftGroupId(pub u64);

impl std::fmt::Display for RaftGroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

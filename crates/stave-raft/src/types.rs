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

/// The state machine's answer to a write: where its records landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    pub base_offset: u64,
    /// The offset after the write's last record: the new high watermark.
    pub next_offset: u64,
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

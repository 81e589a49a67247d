//! Raft entries as frames, and back. Blank and membership entries are control frames (a Raft
//! index, no offset); client writes are the frames their producers built.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use bytes::Bytes;
use openraft::EntryPayload;
use openraft::impls::BasicNode;
use serde::{Deserialize, Serialize};
use stave_log::StoredFrame;
use stave_log::frame::{BODY_HEADER_LEN, FrameType, HEADER_LEN, encode_control_frame};

use crate::types::{EntryOf, FramePayload, MembershipOf, from_log_id};

/// A membership as stored in a membership frame (JSON: small, rare, readable).
#[derive(Debug, Serialize, Deserialize)]
struct StoredConfig {
    configs: Vec<BTreeSet<u64>>,
    nodes: BTreeMap<u64, String>,
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub(crate) fn encode_membership(membership: &MembershipOf) -> io::Result<Vec<u8>> {
    let stored = StoredConfig {
        configs: membership.get_joint_config().clone(),
        nodes: membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect(),
    };
    serde_json::to_vec(&stored).map_err(invalid)
}

pub(crate) fn decode_membership(payload: &[u8]) -> io::Result<MembershipOf> {
    let stored: StoredConfig = serde_json::from_slice(payload).map_err(invalid)?;
    let nodes: BTreeMap<u64, BasicNode> = stored
        .nodes
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr)))
        .collect();
    MembershipOf::new(stored.configs, nodes).map_err(invalid)
}

/// The frame an entry is stored as.
pub(crate) fn to_frame(entry: &EntryOf) -> io::Result<Bytes> {
    Ok(match &entry.payload {
        EntryPayload::Blank => Bytes::from(encode_control_frame(FrameType::Blank, &[])),
        EntryPayload::Normal(FramePayload(frame)) => frame.clone(),
        EntryPayload::Membership(membership) => Bytes::from(encode_control_frame(
            FrameType::Membership,
            &encode_membership(membership)?,
        )),
    })
}

/// The entry a stored frame holds.
pub(crate) fn from_frame(frame: StoredFrame) -> io::Result<EntryOf> {
    let payload = match frame.frame_type {
        FrameType::Blank => EntryPayload::Blank,
        FrameType::Membership => {
            let body = frame
                .bytes
                .get(HEADER_LEN + BODY_HEADER_LEN..)
                .unwrap_or_default();
            EntryPayload::Membership(decode_membership(body)?)
        }
        FrameType::Data | FrameType::Command => EntryPayload::Normal(FramePayload(frame.bytes)),
    };
    Ok(openraft::Entry {
        log_id: from_log_id(frame.log_id),
        payload,
    })
}

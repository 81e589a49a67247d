//! openraft messages to and from the transport's prost messages. Entry frames travel as the
//! `Bytes` the log store returned (a slice of the leader's segment mmap) and arrive as a slice
//! of tonic's decode buffer: never re-encoded.
//!
//! An arriving append is checked as the log store would check it before openraft sees it
//! (issue 15): every frame whole (length, body CRC, body header, a data or command type), and
//! log ids in sequence (consecutive indexes from the previous log id's, terms never going
//! down and never past the sender's). openraft takes a storage error as fatal, so an entry
//! the log would refuse must never reach it: one malformed append from anyone stopped the
//! group on the replica that took it.

use openraft::EntryPayload;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, TransferLeaderError, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use stave_proto::internal::raft as pb;

use crate::entry::{decode_membership, encode_membership};
use crate::types::{EntryOf, FramePayload, LogIdOf, TypeConfig, VoteOf, from_log_id};

/// A message that does not decode into an openraft message.
#[derive(Debug, thiserror::Error)]
#[error("malformed raft message: {0}")]
pub struct Malformed(pub String);

fn missing(what: &str) -> Malformed {
    Malformed(format!("{what} is missing"))
}

pub fn log_id_to_pb(id: &LogIdOf) -> pb::LogId {
    pb::LogId {
        term: id.leader_id.term,
        index: id.index,
    }
}

pub fn log_id_from_pb(id: &pb::LogId) -> LogIdOf {
    from_log_id(stave_log::LogId::new(id.term, id.index))
}

fn opt_log_id_to_pb(id: &Option<LogIdOf>) -> Option<pb::LogId> {
    id.as_ref().map(log_id_to_pb)
}

fn opt_log_id_from_pb(id: &Option<pb::LogId>) -> Option<LogIdOf> {
    id.as_ref().map(log_id_from_pb)
}

pub fn vote_to_pb(vote: &VoteOf) -> pb::Vote {
    pb::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.voted_for,
        committed: vote.committed,
    }
}

pub fn vote_from_pb(vote: Option<&pb::Vote>) -> Result<VoteOf, Malformed> {
    let vote = vote.ok_or_else(|| missing("vote"))?;
    Ok(if vote.committed {
        VoteOf::new_committed(vote.term, vote.node_id)
    } else {
        VoteOf::new(vote.term, vote.node_id)
    })
}

fn entry_to_pb(entry: &EntryOf) -> Result<pb::Entry, Malformed> {
    let payload = match &entry.payload {
        EntryPayload::Blank => pb::entry::Payload::Blank(true),
        EntryPayload::Normal(FramePayload(frame)) => pb::entry::Payload::Frame(frame.clone()),
        EntryPayload::Membership(membership) => pb::entry::Payload::Membership(
            encode_membership(membership)
                .map_err(|e| Malformed(e.to_string()))?
                .into(),
        ),
    };
    Ok(pb::Entry {
        log_id: Some(log_id_to_pb(&entry.log_id)),
        payload: Some(payload),
    })
}

/// Checks a client write's frame as the log checks it on append: within the format's
/// bound, whole (header, body CRC, body header), nothing after it, and a data or command
/// frame (blank and membership entries travel as their own payloads).
fn check_frame(frame: &[u8]) -> Result<(), Malformed> {
    use stave_log::frame::{FRAME_BYTES_LIMIT, FrameType};
    let malformed = |what: String| Malformed(format!("entry frame: {what}"));
    if frame.len() as u64 > FRAME_BYTES_LIMIT {
        return Err(malformed(format!("{} bytes", frame.len())));
    }
    let (header, _) =
        stave_log::frame::check_frame(frame, false).map_err(|e| malformed(e.to_string()))?;
    if header.frame_len() != frame.len() {
        return Err(malformed(format!(
            "{} bytes after the frame",
            frame.len().saturating_sub(header.frame_len())
        )));
    }
    if !matches!(header.frame_type, FrameType::Data | FrameType::Command) {
        return Err(malformed(format!("a {:?} frame", header.frame_type)));
    }
    Ok(())
}

fn entry_from_pb(entry: pb::Entry) -> Result<EntryOf, Malformed> {
    let log_id = log_id_from_pb(entry.log_id.as_ref().ok_or_else(|| missing("log id"))?);
    let payload = match entry.payload.ok_or_else(|| missing("entry payload"))? {
        pb::entry::Payload::Blank(_) => EntryPayload::Blank,
        pb::entry::Payload::Frame(frame) => {
            check_frame(&frame)?;
            EntryPayload::Normal(FramePayload(frame))
        }
        pb::entry::Payload::Membership(json) => EntryPayload::Membership(
            decode_membership(&json).map_err(|e| Malformed(e.to_string()))?,
        ),
    };
    Ok(openraft::Entry { log_id, payload })
}

pub fn append_to_pb(
    rpc: &AppendEntriesRequest<TypeConfig>,
) -> Result<pb::AppendEntries, Malformed> {
    Ok(pb::AppendEntries {
        vote: Some(vote_to_pb(&rpc.vote)),
        prev_log_id: opt_log_id_to_pb(&rpc.prev_log_id),
        entries: rpc
            .entries
            .iter()
            .map(entry_to_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_to_pb(&rpc.leader_commit),
    })
}

/// Checks that an append's log ids follow on from its previous log id: consecutive
/// indexes, terms never going down, none past the sender's term.
fn check_sequence(rpc: &pb::AppendEntries, vote_term: u64) -> Result<(), Malformed> {
    let mut previous = rpc.prev_log_id.as_ref().map(|id| (id.term, id.index));
    for entry in &rpc.entries {
        let id = entry.log_id.as_ref().ok_or_else(|| missing("log id"))?;
        let index = match previous {
            Some((_, index)) => index.checked_add(1),
            None => Some(0),
        };
        if index != Some(id.index) {
            return Err(Malformed(format!(
                "entry at index {} follows {previous:?}",
                id.index
            )));
        }
        let after = previous.map_or(0, |(term, _)| term);
        if id.term < after || id.term > vote_term {
            return Err(Malformed(format!(
                "entry of term {} after term {after}, sent in term {vote_term}",
                id.term
            )));
        }
        previous = Some((id.term, id.index));
    }
    Ok(())
}

pub fn append_from_pb(
    rpc: Option<pb::AppendEntries>,
) -> Result<AppendEntriesRequest<TypeConfig>, Malformed> {
    let rpc = rpc.ok_or_else(|| missing("append entries"))?;
    let vote_term = rpc.vote.as_ref().ok_or_else(|| missing("vote"))?.term;
    check_sequence(&rpc, vote_term)?;
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(rpc.vote.as_ref())?,
        prev_log_id: opt_log_id_from_pb(&rpc.prev_log_id),
        entries: rpc
            .entries
            .into_iter()
            .map(entry_from_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_from_pb(&rpc.leader_commit),
    })
}

pub fn append_response_to_pb(
    response: &AppendEntriesResponse<TypeConfig>,
) -> pb::AppendEntriesResponse {
    use pb::append_entries_response::Result as R;
    let result = match response {
        AppendEntriesResponse::Success => R::Success(true),
        AppendEntriesResponse::PartialSuccess(last) => R::PartialSuccess(pb::PartialSuccess {
            last: opt_log_id_to_pb(last),
        }),
        AppendEntriesResponse::Conflict => R::Conflict(true),
        AppendEntriesResponse::HigherVote(vote) => R::HigherVote(vote_to_pb(vote)),
    };
    pb::AppendEntriesResponse {
        result: Some(result),
    }
}

pub fn append_response_from_pb(
    response: pb::AppendEntriesResponse,
) -> Result<AppendEntriesResponse<TypeConfig>, Malformed> {
    use pb::append_entries_response::Result as R;
    Ok(
        match response.result.ok_or_else(|| missing("append result"))? {
            R::Success(_) => AppendEntriesResponse::Success,
            R::PartialSuccess(partial) => {
                AppendEntriesResponse::PartialSuccess(opt_log_id_from_pb(&partial.last))
            }
            R::Conflict(_) => AppendEntriesResponse::Conflict,
            R::HigherVote(vote) => AppendEntriesResponse::HigherVote(vote_from_pb(Some(&vote))?),
        },
    )
}

pub fn vote_request_to_pb(
    group_id: u64,
    rpc: &VoteRequest<TypeConfig>,
    pre_vote: bool,
) -> pb::VoteRequest {
    pb::VoteRequest {
        group_id,
        pre_vote,
        vote: Some(vote_to_pb(&rpc.vote)),
        last_log_id: opt_log_id_to_pb(&rpc.last_log_id),
        leadership_transfer: rpc.leadership_transfer,
    }
}

pub fn vote_request_from_pb(rpc: &pb::VoteRequest) -> Result<VoteRequest<TypeConfig>, Malformed> {
    let mut request = VoteRequest::new(
        vote_from_pb(rpc.vote.as_ref())?,
        opt_log_id_from_pb(&rpc.last_log_id),
    );
    request.leadership_transfer = rpc.leadership_transfer;
    Ok(request)
}

pub fn vote_response_to_pb(response: &VoteResponse<TypeConfig>) -> pb::VoteReply {
    pb::VoteReply {
        vote: Some(vote_to_pb(&response.vote)),
        vote_granted: response.vote_granted,
        last_log_id: opt_log_id_to_pb(&response.last_log_id),
    }
}

pub fn vote_response_from_pb(reply: &pb::VoteReply) -> Result<VoteResponse<TypeConfig>, Malformed> {
    Ok(VoteResponse::new(
        vote_from_pb(reply.vote.as_ref())?,
        opt_log_id_from_pb(&reply.last_log_id),
        reply.vote_granted,
    ))
}

pub fn transfer_to_pb(
    group_id: u64,
    rpc: &TransferLeaderRequest<TypeConfig>,
) -> pb::TransferLeaderRequest {
    pb::TransferLeaderRequest {
        group_id,
        from_leader: Some(vote_to_pb(rpc.from_leader())),
        to_node_id: *rpc.to_node_id(),
        last_log_id: rpc.last_log_id().map(log_id_to_pb),
    }
}

pub fn transfer_from_pb(
    rpc: &pb::TransferLeaderRequest,
) -> Result<TransferLeaderRequest<TypeConfig>, Malformed> {
    Ok(TransferLeaderRequest::new(
        vote_from_pb(rpc.from_leader.as_ref())?,
        rpc.to_node_id,
        opt_log_id_from_pb(&rpc.last_log_id),
    ))
}

pub fn transfer_response_to_pb(
    response: &TransferLeaderResponse<TypeConfig>,
) -> pb::transfer_leader_response::Result {
    use pb::transfer_leader_response::Result as R;
    match response {
        Ok(()) => R::Accepted(true),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => {
            R::VoteChanged(pb::VoteChanged {
                expected: Some(vote_to_pb(expected)),
                actual: Some(vote_to_pb(actual)),
            })
        }
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
            R::LogNotFlushed(pb::LogNotFlushed {
                expected: opt_log_id_to_pb(expected),
                actual: opt_log_id_to_pb(actual),
            })
        }
    }
}

/// The target's answer; `Err` holds a failure on the target side (group not running there).
pub fn transfer_response_from_pb(
    response: pb::TransferLeaderResponse,
) -> Result<Result<TransferLeaderResponse<TypeConfig>, String>, Malformed> {
    use pb::transfer_leader_response::Result as R;
    Ok(
        match response.result.ok_or_else(|| missing("transfer result"))? {
            R::Accepted(_) => Ok(Ok(())),
            R::VoteChanged(changed) => Ok(Err(TransferLeaderError::VoteChanged {
                expected: vote_from_pb(changed.expected.as_ref())?,
                actual: vote_from_pb(changed.actual.as_ref())?,
            })),
            R::LogNotFlushed(not_flushed) => Ok(Err(TransferLeaderError::LogNotFlushed {
                expected: opt_log_id_from_pb(&not_flushed.expected),
                actual: opt_log_id_from_pb(&not_flushed.actual),
            })),
            R::Failure(failure) => Err(failure.message),
        },
    )
}

pub fn snapshot_meta_to_pb(
    meta: &crate::group::SnapshotMetaOf,
) -> Result<(Option<pb::LogId>, Option<pb::LogId>, bytes::Bytes), Malformed> {
    let membership = encode_membership(meta.last_membership.membership())
        .map_err(|e| Malformed(e.to_string()))?;
    Ok((
        opt_log_id_to_pb(&meta.last_log_id),
        opt_log_id_to_pb(meta.last_membership.log_id()),
        membership.into(),
    ))
}

pub fn snapshot_meta_from_pb(
    request: &pb::SnapshotRequest,
) -> Result<crate::group::SnapshotMetaOf, Malformed> {
    let membership =
        decode_membership(&request.membership).map_err(|e| Malformed(e.to_string()))?;
    Ok(crate::group::SnapshotMetaOf {
        last_log_id: opt_log_id_from_pb(&request.last_log_id),
        last_membership: crate::types::StoredMembershipOf::new(
            opt_log_id_from_pb(&request.membership_log_id),
            membership,
        ),
    })
}

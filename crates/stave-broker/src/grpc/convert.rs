//! Proto messages to domain values and back, and the one table from `BrokerError` to the
//! API's typed error codes.

mod queue;

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use stave_proto::v1 as pb;

use crate::admin::{PartitionState, TopicSpec};
use crate::consume::{ConsumeInput, ConsumeOutput, Start, Subscription};
use crate::consumer_group::{
    CommitRequest, GroupDescription, GroupListing, GroupMembershipError, GroupOffset,
    HeartbeatAnswer, HeartbeatRequest, ListedGroup, OffsetCommit, ResetRequest, ResetTo,
    TopicPartition,
};
use crate::error::BrokerError;
use crate::fetch::{FetchRequest, Fetched, OffsetSpec};
use crate::produce::{ProduceRequest, Produced};
use crate::publish::{Answer, PublishRecord, PublishedRecord, RecordOutcome};
use stave_client::{AssignmentChange, ConsumerRecord};

pub(crate) use self::queue::{queue_fetch, queue_fetched, queue_settled, settle_item};

/// The typed error the API answers with.
pub(crate) fn error(err: &BrokerError) -> pb::Error {
    use pb::ErrorCode as C;
    if let BrokerError::Forwarded {
        code,
        message,
        leader,
    } = err
    {
        return pb::Error {
            code: *code,
            message: message.clone(),
            leader_id: leader.as_ref().map(|hint| hint.node_id),
            leader_addr: leader
                .as_ref()
                .map(|hint| hint.addr.clone())
                .unwrap_or_default(),
        };
    }
    let code = match err {
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
        BrokerError::ConsumerGroupNotEmpty(_) => C::GroupNotEmpty,
        BrokerError::StorageFull { .. } => C::StorageFull,
        BrokerError::DeliveryNotHeld { .. } => C::DeliveryNotHeld,
        BrokerError::GroupMismatch { .. } => C::GroupMismatch,
        BrokerError::NotFound(_) => C::NotFound,
        BrokerError::AlreadyExists(_) => C::AlreadyExists,
        BrokerError::ConsumerGroupMembership(err) => match err {
            GroupMembershipError::UnknownMember(_) => C::UnknownMemberId,
            GroupMembershipError::FencedEpoch { .. } => C::FencedMemberEpoch,
            GroupMembershipError::BadSubscription(_) => C::InvalidRequest,
        },
        BrokerError::Internal(_)
        | BrokerError::Forwarded { .. }
        | BrokerError::Replication(_)
        | BrokerError::Node(_)
        | BrokerError::Listen { .. }
        | BrokerError::MetricsListen { .. }
        | BrokerError::Serve(_) => C::Internal,
    };
    let hint = match err {
        BrokerError::NotLeader { leader: hint, .. }
        | BrokerError::NotCoordinator {
            coordinator: hint, ..
        } => hint.clone(),
        _ => None,
    };
    pb::Error {
        code: code as i32,
        message: err.to_string(),
        leader_id: hint.as_ref().map(|hint| hint.node_id),
        leader_addr: hint.map(|hint| hint.addr).unwrap_or_default(),
    }
}

/// A forwarded request's typed answer, passed on as it came.
pub(crate) fn forwarded_error(error: pb::Error) -> BrokerError {
    let leader = error.leader_id.map(|node_id| crate::error::NodeAddr {
        node_id,
        addr: error.leader_addr,
    });
    BrokerError::Forwarded {
        code: error.code,
        message: error.message,
        leader,
    }
}

fn some_error(err: &BrokerError) -> Option<pb::Error> {
    Some(error(err))
}

pub(crate) fn produce_request(request: pb::ProduceRequest) -> ProduceRequest {
    ProduceRequest {
        topic: request.topic,
        partition: request.partition,
        batch: request.batch,
    }
}

pub(crate) fn produced(
    sequence: u64,
    result: Result<Produced, BrokerError>,
) -> pb::ProduceResponse {
    match result {
        Ok(produced) => pb::ProduceResponse {
            sequence,
            error: None,
            base_offset: produced.base_offset.0,
            next_offset: produced.next_offset.0,
            duplicate: produced.duplicate,
        },
        Err(err) => pb::ProduceResponse {
            sequence,
            error: some_error(&err),
            ..Default::default()
        },
    }
}

/// A forwarded record's answer from the node that wrote it.
pub(crate) fn published_record_from_pb(result: pb::PublishResult) -> Answer {
    match result.error {
        Some(error) if error.code != pb::ErrorCode::None as i32 => {
            Err(std::sync::Arc::new(forwarded_error(error)))
        }
        _ => Ok(PublishedRecord {
            offset: result.offset,
            duplicate: result.duplicate,
        }),
    }
}

pub(crate) fn publish_records_to_pb(records: Vec<PublishRecord>) -> Vec<pb::PublishRecord> {
    records
        .into_iter()
        .map(|record| pb::PublishRecord {
            topic: record.topic,
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|(key, value)| pb::Header { key, value })
                .collect(),
            partition: record.partition,
            timestamp_ms: record.timestamp_ms,
        })
        .collect()
}

pub(crate) fn publish_records(records: Vec<pb::PublishRecord>) -> Vec<PublishRecord> {
    records
        .into_iter()
        .map(|record| PublishRecord {
            topic: record.topic,
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|header| (header.key, header.value))
                .collect(),
            partition: record.partition,
            timestamp_ms: record.timestamp_ms,
        })
        .collect()
}

pub(crate) fn published(sequence: u64, outcomes: Vec<RecordOutcome>) -> pb::PublishResponse {
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome.result {
            Ok(written) => pb::PublishResult {
                error: None,
                partition: outcome.partition,
                offset: written.offset,
                duplicate: written.duplicate,
                id: outcome.id,
            },
            Err(err) => pb::PublishResult {
                error: some_error(&err),
                partition: outcome.partition,
                offset: 0,
                duplicate: false,
                id: outcome.id,
            },
        })
        .collect();
    pb::PublishResponse { results, sequence }
}

pub(crate) fn subscription(subscribe: pb::Subscribe) -> Subscription {
    use pb::subscribe::Start as S;
    let start = match subscribe.start {
        Some(S::Earliest(true)) => Start::Earliest,
        Some(S::Offset(offset)) => Start::Offset(offset),
        Some(S::TimestampMs(ms)) => Start::Timestamp(ms),
        Some(S::Latest(_) | S::Earliest(false)) | None => Start::Latest,
    };
    let queue = (subscribe.mode == pb::ConsumeMode::Queue as i32)
        .then(|| queue::queue_options(subscribe.queue.unwrap_or_default()));
    Subscription {
        topics: subscribe.topics,
        group: subscribe.group,
        partitions: subscribe.partitions,
        auto_commit: subscribe.auto_commit,
        start,
        queue,
    }
}

/// A message after the subscribe; `None` for an empty one. A second subscribe is refused.
pub(crate) fn consume_input(
    request: pb::ConsumeRequest,
) -> Result<Option<ConsumeInput>, BrokerError> {
    use pb::consume_request::Request as R;
    Ok(match request.request {
        Some(R::Credit(credit)) => Some(ConsumeInput::Credit {
            records: credit.records,
            bytes: credit.bytes,
        }),
        Some(R::Commit(commit)) => Some(ConsumeInput::Commit {
            id: commit.id,
            offsets: commit
                .offsets
                .into_iter()
                .map(|o| (o.topic, o.partition, o.offset))
                .collect(),
        }),
        // A settlement that cannot be taken is answered on its own: the others go on.
        Some(R::Settle(settle)) => Some(ConsumeInput::Settle {
            id: settle.id,
            items: settle
                .settlements
                .into_iter()
                .map(|s| {
                    let mut item = settle_item(s)?;
                    item.check()?;
                    Ok(queue::stream_settlement(item))
                })
                .collect(),
        }),
        Some(R::Subscribe(_)) => {
            return Err(BrokerError::InvalidRequest(
                "a Consume stream subscribes once, in its first message".into(),
            ));
        }
        None => None,
    })
}

fn partition_offsets<'a>(
    partitions: impl IntoIterator<Item = (&'a std::sync::Arc<str>, u32, u64)>,
) -> Vec<pb::CommitOffset> {
    partitions
        .into_iter()
        .map(|(topic, partition, offset)| pb::CommitOffset {
            topic: topic.to_string(),
            partition,
            offset,
        })
        .collect()
}

fn assignment(change: AssignmentChange) -> pb::Assignment {
    match change {
        AssignmentChange::Assigned {
            member_id,
            member_epoch,
            partitions,
        } => pb::Assignment {
            member_id,
            member_epoch,
            assigned: partition_offsets(partitions.iter().map(|(t, p, o)| (t, *p, *o))),
            ..Default::default()
        },
        AssignmentChange::Revoked {
            member_id,
            member_epoch,
            partitions,
        } => pb::Assignment {
            member_id,
            member_epoch,
            revoked: partition_offsets(partitions.iter().map(|(t, p)| (t, *p, 0))),
            ..Default::default()
        },
        AssignmentChange::Lost { partitions } => pb::Assignment {
            lost: partition_offsets(partitions.iter().map(|(t, p)| (t, *p, 0))),
            ..Default::default()
        },
    }
}

fn consumed(record: ConsumerRecord) -> pb::ConsumedRecord {
    pb::ConsumedRecord {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp,
        key: record.key,
        value: record.value.unwrap_or_default(),
        headers: record
            .headers
            .into_iter()
            .map(|(key, value)| pb::Header { key, value })
            .collect(),
        delivery_count: 0,
        lock_deadline_ms: 0,
    }
}

pub(crate) fn consume_output(output: ConsumeOutput) -> pb::ConsumeResponse {
    use pb::consume_response::Response as R;
    let response = match output {
        ConsumeOutput::Records(records) => R::Records(pb::Records {
            records: records.into_iter().map(consumed).collect(),
        }),
        ConsumeOutput::Queued(records) => R::Records(pb::Records {
            records: records
                .into_iter()
                .map(|q| queue::locked(q.record, q.delivery_count, q.lock_deadline_ms))
                .collect(),
        }),
        ConsumeOutput::Settled { id, result } => match result {
            Ok(results) => R::Settled(pb::Settled {
                id,
                results: queue::settle_results(results),
            }),
            // Refused whole (a Settle on a stream that is no queue member): one answer.
            Err(err) => R::Settled(pb::Settled {
                id,
                results: vec![error(&err)],
            }),
        },
        ConsumeOutput::Assignment(change) => R::Assignment(assignment(change)),
        ConsumeOutput::Committed { id, result } => R::Committed(pb::Committed {
            id,
            error: result.err().as_ref().map(error),
        }),
        ConsumeOutput::Failed(err) => R::Error(error(&err)),
    };
    pb::ConsumeResponse {
        response: Some(response),
    }
}

pub(crate) fn consume_failed(err: &BrokerError) -> pb::ConsumeResponse {
    pb::ConsumeResponse {
        response: Some(pb::consume_response::Response::Error(error(err))),
    }
}

pub(crate) fn fetch_request(request: pb::FetchRequest) -> FetchRequest {
    FetchRequest::new(
        request.topic,
        request.partition,
        request.offset,
        (request.max_bytes, request.min_bytes),
        request.max_wait_ms,
    )
}

pub(crate) fn fetched(result: Result<Fetched, BrokerError>) -> pb::FetchResponse {
    let fetched = match result {
        Ok(fetched) => fetched,
        Err(err) => {
            // Out of range: say where the log starts and ends, so the consumer can reset.
            let (log_start_offset, high_watermark) = match &err {
                BrokerError::OffsetOutOfRange { start, end, .. } => (*start, *end),
                _ => (0, 0),
            };
            return pb::FetchResponse {
                error: some_error(&err),
                log_start_offset,
                high_watermark,
                ..Default::default()
            };
        }
    };
    let (batches, next_offset) = match fetched.frames {
        Some(frames) if !frames.is_empty() => {
            let (next, len) = (frames.next_offset.0, frames.len_bytes());
            (joined(frames.chunks, len), next)
        }
        _ => (Bytes::new(), fetched.offset.0),
    };
    pb::FetchResponse {
        error: None,
        batches,
        high_watermark: fetched.high_watermark.0,
        log_start_offset: fetched.log_start.0,
        next_offset,
    }
}

/// A fetch as asked of another node (its defaults and caps already applied here).
pub(crate) fn fetch_request_to_pb(request: &FetchRequest) -> pb::FetchRequest {
    pb::FetchRequest {
        topic: request.topic.clone(),
        partition: request.partition,
        offset: request.offset.0,
        max_bytes: u32::try_from(request.bytes_max).unwrap_or(u32::MAX),
        min_bytes: u32::try_from(request.bytes_min).unwrap_or(u32::MAX),
        max_wait_ms: u32::try_from(request.wait.as_millis()).unwrap_or(u32::MAX),
    }
}

/// Another node's answer to a fetch from `offset`; out of range as
/// [`BrokerError::OffsetOutOfRange`] with the bounds it gave.
pub(crate) fn fetched_from_pb(
    offset: u64,
    answer: pb::FetchResponse,
) -> Result<Fetched, BrokerError> {
    if let Some(error) = answer.error
        && error.code != pb::ErrorCode::None as i32
    {
        if error.code == pb::ErrorCode::OffsetOutOfRange as i32 {
            return Err(BrokerError::OffsetOutOfRange {
                offset,
                start: answer.log_start_offset,
                end: answer.high_watermark,
            });
        }
        return Err(BrokerError::Forwarded {
            code: error.code,
            message: error.message,
            leader: None,
        });
    }
    let chunks = if answer.batches.is_empty() {
        Vec::new()
    } else {
        vec![answer.batches]
    };
    Ok(Fetched {
        frames: Some(stave_log::ReadFrames {
            chunks,
            next_offset: stave_log::Offset(answer.next_offset),
        }),
        offset: stave_log::Offset(offset),
        high_watermark: stave_log::Offset(answer.high_watermark),
        log_start: stave_log::Offset(answer.log_start_offset),
    })
}

/// Runs of frames as one buffer (no copy when there is one run).
fn joined(chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    let mut joined = BytesMut::with_capacity(len);
    for chunk in &chunks {
        joined.extend_from_slice(chunk);
    }
    joined.freeze()
}

pub(crate) fn offset_spec_from_pb(spec: pb::list_offsets_request::Spec) -> OffsetSpec {
    use pb::list_offsets_request::Spec;
    match spec {
        Spec::Earliest(_) => OffsetSpec::Earliest,
        Spec::Latest(_) => OffsetSpec::Latest,
        Spec::TimestampMs(ms) => OffsetSpec::Timestamp(ms),
    }
}

pub(crate) fn offset_spec_to_pb(spec: OffsetSpec) -> pb::list_offsets_request::Spec {
    use pb::list_offsets_request::Spec;
    match spec {
        OffsetSpec::Earliest => Spec::Earliest(true),
        OffsetSpec::Latest => Spec::Latest(true),
        OffsetSpec::Timestamp(ms) => Spec::TimestampMs(ms),
    }
}

pub(crate) fn partition_metadata(state: PartitionState) -> pb::PartitionMetadata {
    pb::PartitionMetadata {
        partition: state.partition,
        leader: state.leader,
        replicas: state.replicas,
        in_sync: state.in_sync,
        dedupe_window_effective_ms: state.dedupe_window_effective_ms,
        problems: state
            .problems
            .into_iter()
            .map(|found| pb::ReplicaProblem {
                node_id: found.node,
                reason: found.problem.reason,
                reopens: found.problem.reopens,
                offline: found.problem.offline,
            })
            .collect(),
    }
}

pub(crate) fn topic_spec(spec: pb::TopicSpec) -> TopicSpec {
    TopicSpec {
        name: spec.name,
        partitions: spec.partitions,
        replication_factor: spec.replication_factor,
        configs: config_pairs(spec.configs),
    }
}

pub(crate) fn config_pairs(entries: Vec<pb::ConfigEntry>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|entry| (entry.key, entry.value))
        .collect()
}

pub(crate) fn config_entries(pairs: Vec<(String, String)>) -> Vec<pb::ConfigEntry> {
    pairs
        .into_iter()
        .map(|(key, value)| pb::ConfigEntry { key, value })
        .collect()
}

pub(crate) fn topic_result(name: String, result: Result<(), BrokerError>) -> pb::TopicResult {
    pb::TopicResult {
        name,
        error: result.err().as_ref().and_then(some_error),
    }
}

pub(crate) fn coordinator_answer(
    found: Result<(u64, String), BrokerError>,
) -> pb::FindCoordinatorResponse {
    match found {
        Ok((node_id, addr)) => pb::FindCoordinatorResponse {
            error: None,
            node_id,
            addr,
        },
        Err(err) => pb::FindCoordinatorResponse {
            error: some_error(&err),
            ..Default::default()
        },
    }
}

/// `None` on success, the typed error otherwise.
pub(crate) fn outcome(result: Result<(), BrokerError>) -> Option<pb::Error> {
    result.err().as_ref().and_then(some_error)
}

fn partitions_from_pb(sets: Vec<pb::TopicPartitions>) -> BTreeSet<TopicPartition> {
    sets.into_iter()
        .flat_map(|tp| {
            let topic = tp.topic;
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect()
}

fn partitions_to_pb(set: &BTreeSet<TopicPartition>) -> Vec<pb::TopicPartitions> {
    let mut by_topic: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (topic, partition) in set {
        by_topic.entry(topic.clone()).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| pb::TopicPartitions { topic, partitions })
        .collect()
}

pub(crate) fn heartbeat_request(request: pb::GroupHeartbeatRequest) -> HeartbeatRequest {
    HeartbeatRequest {
        consumer_group: request.group,
        member_id: request.member_id,
        member_epoch: request.member_epoch,
        subscription: request.subscription,
        owned: partitions_from_pb(request.owned),
        leave: request.leave,
    }
}

pub(crate) fn heartbeat_answer(
    result: Result<HeartbeatAnswer, BrokerError>,
) -> pb::GroupHeartbeatResponse {
    match result {
        Ok(answer) => pb::GroupHeartbeatResponse {
            error: None,
            member_id: answer.member_id,
            member_epoch: answer.member_epoch,
            assignment: partitions_to_pb(&answer.assignment),
            heartbeat_interval_ms: answer.heartbeat_interval_ms,
            session_timeout_ms: answer.session_timeout_ms,
        },
        Err(err) => pb::GroupHeartbeatResponse {
            error: some_error(&err),
            ..Default::default()
        },
    }
}

pub(crate) fn commit_request(request: pb::CommitOffsetsRequest) -> CommitRequest {
    CommitRequest {
        consumer_group: request.group,
        offsets: request
            .offsets
            .into_iter()
            .map(|entry| OffsetCommit {
                topic: entry.topic,
                partition: entry.partition,
                offset: entry.offset,
                metadata: entry.metadata,
            })
            .collect(),
        member_id: request.member_id,
        member_epoch: request.member_epoch,
    }
}

pub(crate) fn group_offsets(offsets: Vec<GroupOffset>) -> Vec<pb::GroupOffset> {
    offsets
        .into_iter()
        .map(|offset| pb::GroupOffset {
            topic: offset.topic,
            partition: offset.partition,
            offset: offset.offset,
            metadata: offset.metadata,
            commit_ms: offset.commit_ms,
        })
        .collect()
}

pub(crate) fn group_description(
    result: Result<GroupDescription, BrokerError>,
) -> pb::DescribeGroupResponse {
    let result = result.map(|mut description| {
        let high_watermarks: BTreeMap<(String, u32), u64> = description
            .offsets
            .iter()
            .filter_map(|lag| Some(((lag.topic.clone(), lag.partition), lag.high_watermark?)))
            .collect();
        let queue = description.queue.take().map(|queue| {
            let mut state = queue::queue_state(queue);
            for partition in &mut state.partitions {
                let key = (partition.topic.clone(), partition.partition);
                partition.high_watermark = high_watermarks.get(&key).copied().unwrap_or(0);
            }
            state
        });
        (description, queue)
    });
    let (description, queue) = match result {
        Ok(found) => found,
        Err(err) => {
            return pb::DescribeGroupResponse {
                error: some_error(&err),
                ..Default::default()
            };
        }
    };
    pb::DescribeGroupResponse {
        error: None,
        members: description
            .members
            .into_iter()
            .map(|member| pb::GroupMember {
                member_id: member.member_id,
                member_epoch: member.member_epoch,
                owned: partitions_to_pb(&member.owned),
                target: partitions_to_pb(&member.target),
            })
            .collect(),
        offsets: description
            .offsets
            .into_iter()
            .map(|lag| pb::PartitionLag {
                lag: lag
                    .high_watermark
                    .map_or(0, |hwm| hwm.saturating_sub(lag.committed)),
                high_watermark: lag.high_watermark.unwrap_or(0),
                committed: lag.committed,
                topic: lag.topic,
                partition: lag.partition,
            })
            .collect(),
        queue,
    }
}

pub(crate) fn listed_group_to_pb(group: ListedGroup) -> pb::ListedGroup {
    pb::ListedGroup {
        group: group.consumer_group,
        coordinator: group.coordinator,
        members: group.members,
    }
}

pub(crate) fn listed_group_from_pb(group: pb::ListedGroup) -> ListedGroup {
    ListedGroup {
        consumer_group: group.group,
        coordinator: group.coordinator,
        members: group.members,
    }
}

pub(crate) fn group_listing(listing: GroupListing) -> pb::ListGroupsResponse {
    pb::ListGroupsResponse {
        error: None,
        groups: listing
            .consumer_groups
            .into_iter()
            .map(listed_group_to_pb)
            .collect(),
        unreachable: listing.unreachable,
    }
}

pub(crate) fn reset_request(request: pb::ResetOffsetsRequest) -> ResetRequest {
    use pb::reset_offsets_request::To;
    ResetRequest {
        consumer_group: request.group,
        topic: request.topic,
        partitions: request.partitions,
        to: request.to.map(|to| match to {
            To::Earliest(_) => ResetTo::Earliest,
            To::Latest(_) => ResetTo::Latest,
            To::Offset(offset) => ResetTo::Offset(offset),
            To::TimestampMs(ms) => ResetTo::Timestamp(ms),
        }),
    }
}

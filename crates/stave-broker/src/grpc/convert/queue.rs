//! Queue groups' messages: options, fetches, settlements, their answers, and a group's
//! state for DescribeGroup.

use stave_client::ConsumerRecord;
use stave_proto::v1 as pb;

use super::{consumed, error, some_error};
use crate::consume::Start;
use crate::error::BrokerError;
use crate::queue::{
    Action, Ordering, QueueDescription, QueueFetch, QueueFetched, QueueOptions, Settings,
    SettleItem,
};

/// A record as pushed or fetched, locked to its member: with its delivery count and lock.
pub(super) fn locked(
    record: ConsumerRecord,
    delivery_count: u32,
    lock_deadline_ms: i64,
) -> pb::ConsumedRecord {
    pb::ConsumedRecord {
        delivery_count,
        lock_deadline_ms,
        ..consumed(record)
    }
}

pub(super) fn queue_options(options: pb::QueueOptions) -> QueueOptions {
    QueueOptions {
        lock_ms: options.lock_ms,
        max_deliveries: options.max_deliveries,
        ordering: if options.ordering == pb::QueueOrdering::Key as i32 {
            Ordering::Key
        } else {
            Ordering::None
        },
        max_unacked_span: options.max_unacked_span,
    }
}

fn queue_options_to_pb(settings: &Settings) -> pb::QueueOptions {
    pb::QueueOptions {
        lock_ms: Some(settings.lock_ms),
        max_deliveries: Some(settings.max_deliveries),
        ordering: match settings.ordering {
            Ordering::None => pb::QueueOrdering::None,
            Ordering::Key => pb::QueueOrdering::Key,
        } as i32,
        max_unacked_span: Some(settings.max_unacked_span),
    }
}

pub(crate) fn queue_fetch(request: pb::QueueFetchRequest) -> Result<QueueFetch, BrokerError> {
    use pb::queue_fetch_request::Start as S;
    let start = match request.start {
        Some(S::Earliest(true)) => Start::Earliest,
        Some(S::Offset(offset)) => Start::Offset(offset),
        Some(S::TimestampMs(ms)) => Start::Timestamp(ms),
        Some(S::Latest(_) | S::Earliest(false)) | None => Start::Latest,
    };
    Ok(QueueFetch {
        group: request.group,
        member_id: request.member_id,
        topics: request.topics,
        options: queue_options(request.options.unwrap_or_default()),
        start,
        max_records: request.max_records,
        max_wait_ms: request.max_wait_ms,
        leave: request.leave,
    })
}

/// A settlement as it arrives (unchecked).
pub(crate) fn settle_item(settlement: pb::Settlement) -> Result<SettleItem, BrokerError> {
    let action = match pb::SettleAction::try_from(settlement.action) {
        Ok(pb::SettleAction::SettleAck) => Action::Ack,
        Ok(pb::SettleAction::SettleRelease) => Action::Release {
            delay_ms: settlement.delay_ms,
            reason: settlement.reason,
        },
        Ok(pb::SettleAction::SettleReject) => Action::Reject {
            reason: settlement.reason,
        },
        Ok(pb::SettleAction::SettleExtend) => Action::Extend,
        Err(_) => {
            return Err(BrokerError::InvalidRequest(format!(
                "unknown settle action {}",
                settlement.action
            )));
        }
    };
    Ok(SettleItem {
        topic: settlement.topic,
        partition: settlement.partition,
        offset: settlement.offset,
        delivery_count: settlement.delivery_count,
        action,
    })
}

/// The client library's settlement, for a Consume stream's member.
pub(super) fn stream_settlement(item: SettleItem) -> stave_client::Settlement {
    let settle = match item.action {
        Action::Ack => stave_client::Settle::Ack,
        Action::Release { delay_ms, reason } => stave_client::Settle::Release {
            delay: std::time::Duration::from_millis(delay_ms),
            reason,
        },
        Action::Reject { reason } => stave_client::Settle::Reject { reason },
        Action::Extend => stave_client::Settle::Extend,
    };
    stave_client::Settlement {
        topic: item.topic,
        partition: item.partition,
        offset: item.offset,
        delivery_count: item.delivery_count,
        settle,
    }
}

pub(crate) fn queue_fetched(result: Result<QueueFetched, BrokerError>) -> pb::QueueFetchResponse {
    match result {
        Ok(fetched) => pb::QueueFetchResponse {
            error: None,
            member_id: fetched.member_id,
            records: fetched
                .records
                .into_iter()
                .map(|d| locked(d.record, d.delivery_count, d.lock_deadline_ms))
                .collect(),
        },
        Err(err) => pb::QueueFetchResponse {
            error: some_error(&err),
            ..Default::default()
        },
    }
}

pub(super) fn settle_results(results: Vec<Result<(), BrokerError>>) -> Vec<pb::Error> {
    results
        .into_iter()
        .map(|result| match result {
            Ok(()) => pb::Error::default(),
            Err(err) => error(&err),
        })
        .collect()
}

pub(crate) fn queue_settled(
    result: Result<Vec<Result<(), BrokerError>>, BrokerError>,
) -> pb::QueueSettleResponse {
    match result {
        Ok(results) => pb::QueueSettleResponse {
            error: None,
            results: settle_results(results),
        },
        Err(err) => pb::QueueSettleResponse {
            error: some_error(&err),
            results: Vec::new(),
        },
    }
}

pub(super) fn queue_state(description: QueueDescription) -> pb::QueueGroupState {
    pb::QueueGroupState {
        options: description.settings.as_ref().map(queue_options_to_pb),
        members: description
            .members
            .into_iter()
            .map(|member| pb::QueueMember {
                member_id: member.member_id,
                in_flight: member.in_flight,
                delivered: member.delivered,
                acked: member.acked,
            })
            .collect(),
        partitions: description
            .partitions
            .into_iter()
            .map(|p| pb::QueuePartitionState {
                topic: p.topic.to_string(),
                partition: p.partition,
                ack_floor: p.ack_floor,
                high_watermark: 0,
                in_flight: p.in_flight,
                delayed: p.delayed,
                redeliveries: p.redeliveries,
                dead_lettered: p.dead_lettered,
                oldest_unacked_age_s: p.oldest_unacked_age_s,
                blocked: p.blocked,
            })
            .collect(),
    }
}

//! Consumer groups through [`Admin`]: list them, describe one (members, committed offsets,
//! lag), and move a group's committed offsets.
//!
//! ListGroups goes to any node, which asks the others; a node that does not answer is
//! named in [`GroupListing::unreachable`] rather than failing the whole listing. DescribeGroup
//! and ResetOffsets go to the group's coordinator, found and followed by [`Coordinator`].
//! A reset is refused with GROUP_NOT_EMPTY while the group has members. That code is not
//! retried: only stopping the group's consumers can change the answer.

use stave_proto::v1 as proto;
use stave_proto::v1::ErrorCode;

use crate::admin::Admin;
use crate::coordinator::Coordinator;
use crate::error::ClientError;

/// Every consumer group the cluster knows of, as ListGroups reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupListing {
    /// Sorted by group name.
    pub groups: Vec<GroupSummary>,
    /// Nodes that did not answer: the groups they coordinate are missing from `groups`.
    pub unreachable: Vec<u64>,
}

/// One group in a [`GroupListing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    /// The id of the node coordinating the group.
    pub coordinator: u64,
    pub members: u32,
}

/// A group's members and committed offsets, as its coordinator reports them.
///
/// A group the coordinator has never heard of is not an error: it has no members and no
/// committed offsets ([`GroupDescription::is_empty`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub group: String,
    /// Sorted by member id.
    pub members: Vec<MemberDescription>,
    /// Sorted by topic, then partition.
    pub offsets: Vec<GroupPartitionLag>,
    /// Set for a queue group whose coordinator runs it now.
    pub queue: Option<QueueGroupDescription>,
}

/// A queue group's settings, members and per-partition state.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueGroupDescription {
    /// The group runs on its coordinator now. When it does not (no member for a while, or
    /// the coordinator changed), the state shown is what was last written, and the settings
    /// below are 0: the next member to join sets them.
    pub running: bool,
    pub lock_ms: i64,
    pub max_deliveries: u32,
    pub key_order: bool,
    pub max_unacked_span: u64,
    /// Sorted by member id.
    pub members: Vec<QueueMemberState>,
    /// Sorted by topic, then partition.
    pub partitions: Vec<QueuePartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMemberState {
    pub member_id: String,
    pub in_flight: u32,
    pub delivered: u64,
    pub acked: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuePartitionState {
    pub topic: String,
    pub partition: u32,
    /// Everything below is acknowledged.
    pub ack_floor: u64,
    pub high_watermark: u64,
    pub in_flight: u32,
    pub delayed: u32,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    pub oldest_unacked_age_s: f64,
    /// Why the partition delivers nothing more now (empty: it does).
    pub blocked: String,
}

fn queue_description(state: proto::QueueGroupState) -> QueueGroupDescription {
    let running = state.options.is_some();
    let options = state.options.unwrap_or_default();
    let mut members: Vec<QueueMemberState> = state
        .members
        .into_iter()
        .map(|m| QueueMemberState {
            member_id: m.member_id,
            in_flight: m.in_flight,
            delivered: m.delivered,
            acked: m.acked,
        })
        .collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut partitions: Vec<QueuePartitionState> = state
        .partitions
        .into_iter()
        .map(|p| QueuePartitionState {
            topic: p.topic,
            partition: p.partition,
            ack_floor: p.ack_floor,
            high_watermark: p.high_watermark,
            in_flight: p.in_flight,
            delayed: p.delayed,
            redeliveries: p.redeliveries,
            dead_lettered: p.dead_lettered,
            oldest_unacked_age_s: p.oldest_unacked_age_s,
            blocked: p.blocked,
        })
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    QueueGroupDescription {
        running,
        lock_ms: options.lock_ms.unwrap_or(0),
        max_deliveries: options.max_deliveries.unwrap_or(0),
        key_order: options.ordering == proto::QueueOrdering::Key as i32,
        max_unacked_span: options.max_unacked_span.unwrap_or(0),
        members,
        partitions,
    }
}

impl GroupDescription {
    /// No members and no committed offsets: an unknown group looks like this.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.offsets.is_empty()
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub member_epoch: u64,
    /// The partitions the member last reported holding, as (topic, partition), sorted.
    pub owned: Vec<(String, u32)>,
    /// The partitions the assignor wants it to hold; differs from `owned` mid-rebalance.
    pub target: Vec<(String, u32)>,
}

/// A group's committed offset in one partition, and how far behind the log it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionLag {
    pub topic: String,
    pub partition: u32,
    /// The next offset the group will read.
    pub committed: u64,
    /// 0 when the coordinator could not learn it (see [`Self::is_high_watermark_known`]).
    pub high_watermark: u64,
    /// `high_watermark - committed`, 0 when the high watermark is unknown.
    pub lag: u64,
}

impl GroupPartitionLag {
    /// The broker reports an unknown high watermark (the partition's leader did not answer,
    /// or the topic is gone) as 0, so a 0 below a committed offset means "unknown". A 0 with
    /// nothing committed is a real, empty partition.
    pub fn is_high_watermark_known(&self) -> bool {
        self.high_watermark > 0 || self.committed == 0
    }
}

/// Where [`Admin::reset_offsets`] moves a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start: replay everything retention kept.
    Earliest,
    /// The high watermark: skip everything written so far.
    Latest,
    /// This offset, clamped by the broker to the log start .. high watermark.
    Offset(u64),
    /// The first record at or after this time (epoch milliseconds); the end when none.
    Timestamp(i64),
}

impl ResetTo {
    fn to_proto(self) -> proto::reset_offsets_request::To {
        use proto::reset_offsets_request::To;
        match self {
            ResetTo::Earliest => To::Earliest(true),
            ResetTo::Latest => To::Latest(true),
            ResetTo::Offset(offset) => To::Offset(offset),
            ResetTo::Timestamp(ms) => To::TimestampMs(ms),
        }
    }
}

impl Admin {
    /// Every consumer group (with a committed offset or a member), from every node that
    /// answers.
    pub async fn list_groups(&self) -> Result<GroupListing, ClientError> {
        let client = &self.client;
        let response = client
            .call_any("list consumer groups", |addr, mut node| async move {
                let answer = client
                    .unary(&addr, node.list_groups(proto::ListGroupsRequest {}))
                    .await?;
                ClientError::check(answer.error.clone())?;
                Ok(answer)
            })
            .await?;
        let mut groups: Vec<GroupSummary> = response
            .groups
            .into_iter()
            .map(|listed| GroupSummary {
                group: listed.group,
                coordinator: listed.coordinator,
                members: listed.members,
            })
            .collect();
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        let mut unreachable = response.unreachable;
        unreachable.sort_unstable();
        Ok(GroupListing {
            groups,
            unreachable,
        })
    }

    /// `group`'s members, and its committed offsets with the high watermark and lag of each
    /// partition. An unknown group comes back empty, not as an error.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        let client = &self.client;
        let what = format!("describe group {group:?}");
        let coordinator = Coordinator::new(client.clone(), group);
        let response = coordinator
            .call(
                &what,
                client.config().retry_timeout,
                |addr, mut node| async move {
                    let request = proto::DescribeGroupRequest {
                        group: group.to_string(),
                    };
                    let answer = client.unary(&addr, node.describe_group(request)).await?;
                    ClientError::check(answer.error.clone())?;
                    Ok(answer)
                },
            )
            .await?;
        let mut members: Vec<MemberDescription> = response
            .members
            .into_iter()
            .map(|member| MemberDescription {
                member_id: member.member_id,
                member_epoch: member.member_epoch,
                owned: flatten(member.owned),
                target: flatten(member.target),
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        let mut offsets: Vec<GroupPartitionLag> = response
            .offsets
            .into_iter()
            .map(|lag| GroupPartitionLag {
                topic: lag.topic,
                partition: lag.partition,
                committed: lag.committed,
                high_watermark: lag.high_watermark,
                lag: lag.lag,
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(GroupDescription {
            group: group.to_string(),
            members,
            offsets,
            queue: response.queue.map(queue_description),
        })
    }

    /// Moves `group`'s committed offsets in `topic` (in `partitions`, or every partition
    /// when empty) and answers the offsets committed as (partition, offset), sorted.
    ///
    /// Fails with GROUP_NOT_EMPTY ([`ClientError::Broker`]) while the group has members,
    /// [`ClientError::UnknownTopic`], or UNKNOWN_PARTITION.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[u32],
        to: ResetTo,
    ) -> Result<Vec<(u32, u64)>, ClientError> {
        let client = &self.client;
        let what = format!("reset the offsets of group {group:?} in topic {topic:?}");
        let coordinator = Coordinator::new(client.clone(), group);
        let result = coordinator
            .call(
                &what,
                client.config().retry_timeout,
                |addr, mut node| async move {
                    let request = proto::ResetOffsetsRequest {
                        group: group.to_string(),
                        topic: topic.to_string(),
                        partitions: partitions.to_vec(),
                        to: Some(to.to_proto()),
                    };
                    let answer = client.unary(&addr, node.reset_offsets(request)).await?;
                    ClientError::check(answer.error.clone())?;
                    Ok(answer)
                },
            )
            .await;
        let response = match result {
            Ok(response) => response,
            Err(err) if err.code() == Some(ErrorCode::UnknownTopic) => {
                return Err(ClientError::UnknownTopic {
                    topic: topic.to_string(),
                });
            }
            Err(err) => return Err(err),
        };
        let mut offsets: Vec<(u32, u64)> = response
            .offsets
            .into_iter()
            .filter(|entry| entry.topic == topic)
            .map(|entry| (entry.partition, entry.offset))
            .collect();
        offsets.sort_unstable();
        Ok(offsets)
    }
}

/// Per-topic partition lists as sorted (topic, partition) pairs.
fn flatten(sets: Vec<proto::TopicPartitions>) -> Vec<(String, u32)> {
    let mut pairs: Vec<(String, u32)> = sets
        .into_iter()
        .flat_map(|set| {
            let topic = set.topic;
            set.partitions
                .into_iter()
                .map(move |partition| (topic.clone(), partition))
        })
        .collect();
    pairs.sort();
    pairs
}

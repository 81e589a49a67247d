//! Consumer groups' committed offsets (so far: coordinator lookup, commit, fetch). A group's
//! coordinator is the leader of its `__offsets` partition (`murmur2(group) % 16`, as DESIGN
//! says); commits are records proposed to that partition, and its state machine keeps the
//! table (`stave_raft::offsets`). `__offsets` is created on first use by the controller
//! leader; its log is compacted by snapshot + purge ([`compact`]).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use stave_log::batch::BatchBuilder;
use stave_proto::internal::controller as cproto;
use stave_proto::v1 as pb;
use stave_raft::PartitionReplica;
use stave_raft::controller::{OFFSETS_PARTITION_COUNT, OFFSETS_TOPIC};
use stave_raft::offsets::{Committed, OffsetKey, as_record, commit_record};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::assignor::TopicPartition;
use crate::error::BrokerError;
use crate::membership::{Group, Heartbeat};
use crate::service::Broker;
use crate::topics::assign;

/// A member not heard from for this long leaves the group (Kafka's default is 45 s).
pub const SESSION_TIMEOUT_MS: i64 = 10_000;

/// How often members heartbeat.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1_000;

/// An `__offsets` partition is compacted once this many entries follow its last snapshot.
const COMPACT_AFTER_ENTRIES: u64 = 1000;

/// Partitions a reset looks up at once (each lookup may ask another node).
const RESET_LOOKUPS_IN_FLIGHT_MAX: usize = 16;

/// The `__offsets` partition that holds `group`'s offsets.
pub fn offsets_partition(group: &str) -> u32 {
    stave_log::hash::partition_for_key(group.as_bytes(), OFFSETS_PARTITION_COUNT)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The most bytes of metadata one committed offset carries (Kafka's default
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Refuses commits no table should keep: metadata past [`OFFSET_METADATA_BYTES_MAX`], or a
/// topic name no topic can have. Every entry stays in the `__offsets` table (in memory, in
/// every snapshot): unbounded metadata and 100 KB names let one client grow it by megabytes
/// per commit (issue 15).
fn check_commits(offsets: &[pb::OffsetCommit]) -> Result<(), BrokerError> {
    for entry in offsets {
        if entry.metadata.len() > OFFSET_METADATA_BYTES_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "offset metadata has at most {OFFSET_METADATA_BYTES_MAX} bytes, not {}",
                entry.metadata.len()
            )));
        }
        stave_raft::controller::validate_topic_name(&entry.topic)
            .map_err(|err| BrokerError::InvalidTopicName(err.to_string()))?;
    }
    Ok(())
}

fn check_group(group: &str) -> Result<(), BrokerError> {
    if group.is_empty() || group.len() > 255 {
        return Err(BrokerError::InvalidRequest(
            "a group name has 1 to 255 bytes".into(),
        ));
    }
    Ok(())
}

impl Broker {
    /// Creates `__offsets` (on the controller leader) if it does not exist yet.
    pub(crate) async fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        let metadata = self.node().controller().metadata();
        if metadata.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let nodes: Vec<u64> = metadata.nodes().keys().copied().collect();
        if nodes.is_empty() {
            return Err(BrokerError::CoordinatorNotAvailable(
                "(the cluster is forming)".into(),
            ));
        }
        let replication = 3.min(nodes.len() as u32);
        let assignment = assign(&nodes, OFFSETS_PARTITION_COUNT, replication, 0)?;
        let command = cproto::Command {
            command: Some(cproto::command::Command::CreateTopic(cproto::CreateTopic {
                name: OFFSETS_TOPIC.into(),
                partitions: (0u32..)
                    .zip(assignment)
                    .map(|(partition, replicas)| cproto::Partition {
                        partition,
                        replicas,
                    })
                    .collect(),
                configs: vec![
                    // Compaction, not retention, bounds `__offsets`.
                    cproto::ConfigEntry {
                        key: "retention.ms".into(),
                        value: "-1".into(),
                    },
                    cproto::ConfigEntry {
                        key: "segment.bytes".into(),
                        value: (4u64 << 20).to_string(),
                    },
                ],
            })),
        };
        let reply = self.command(command).await?;
        match reply.result {
            Some(cproto::command_reply::Result::Error(error))
                if error.code != cproto::ErrorCode::TopicExists as i32 =>
            {
                Err(BrokerError::Internal(format!(
                    "cannot create {OFFSETS_TOPIC}: {}",
                    error.message
                )))
            }
            _ => Ok(()),
        }
    }

    /// Where `group`'s coordinator runs (after `__offsets` exists).
    pub(crate) async fn coordinator(&self, group: &str) -> Result<(u64, String), BrokerError> {
        check_group(group)?;
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(OFFSETS_TOPIC)
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable(group.to_string()))?;
        let group_id = topic.group_id(offsets_partition(group));
        let leader = self
            .leader_of(group_id)
            .await
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable(group.to_string()))?;
        let addr = metadata
            .node_addr(leader)
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable(group.to_string()))?;
        Ok((leader, addr.to_string()))
    }

    /// This node's replica of `group`'s `__offsets` partition (and its Raft group), if this
    /// node is the coordinator.
    async fn coordinator_replica(
        &self,
        group: &str,
    ) -> Result<(PartitionReplica, stave_raft::group::GroupId), BrokerError> {
        check_group(group)?;
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(OFFSETS_TOPIC)
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable(group.to_string()))?;
        let group_id = topic.group_id(offsets_partition(group));
        if let Some(replica) = self.node().partition(group_id)
            && self.leads(&replica)
        {
            self.note_coordinating(&replica, group_id);
            return Ok((replica, group_id));
        }
        let coordinator = self.coordinator(group).await.ok();
        match coordinator {
            Some(coordinator) => Err(BrokerError::NotCoordinator {
                group: group.to_string(),
                coordinator: Some(coordinator),
            }),
            None => Err(BrokerError::CoordinatorNotAvailable(group.to_string())),
        }
    }

    /// Notes that this node leads `__offsets` partition `group_id`. In a new term, the groups
    /// it held from an earlier term are dropped: their members moved on meanwhile.
    fn note_coordinating(&self, replica: &PartitionReplica, group_id: stave_raft::group::GroupId) {
        use openraft::async_runtime::watch::WatchReceiver;
        let term = replica.raft.metrics().borrow_watched().current_term;
        let fresh = {
            let mut coordinating = self.coordinating_lock();
            let entry = coordinating.entry(group_id).or_insert((term, now_ms()));
            let fresh = entry.0 != term;
            if fresh {
                *entry = (term, now_ms());
            }
            fresh
        };
        if fresh {
            let partition = stave_raft::group::partition_of(group_id);
            self.groups_lock()
                .retain(|name, _| offsets_partition(name) != partition);
        }
    }

    /// The state of `group` on this coordinator, made on first use. A group that committed
    /// under a previous coordinator, met by one that took over less than a session timeout
    /// ago, may have members of the previous one still holding partitions: it hands out
    /// nothing new until that session timeout has passed.
    fn group_state<'a>(
        &self,
        groups: &'a mut HashMap<String, Group>,
        group: &str,
        replica: &PartitionReplica,
        group_id: stave_raft::group::GroupId,
    ) -> &'a mut Group {
        groups.entry(group.to_string()).or_insert_with(|| {
            let since = self
                .coordinating_lock()
                .get(&group_id)
                .map_or(0, |(_, since)| *since);
            // Committed before this node took over: members of the previous coordinator
            // were reading. (A commit since then came from a member known here.)
            let last_commit = replica
                .sm
                .offsets()
                .and_then(|table| table.group(group).map(|(_, c)| c.commit_ms).max());
            let before = last_commit.is_some_and(|at| at < since);
            if before && now_ms() - since < SESSION_TIMEOUT_MS {
                Group::holding(since + SESSION_TIMEOUT_MS)
            } else {
                Group::default()
            }
        })
    }

    /// A member's heartbeat (this node must coordinate the group).
    pub(crate) async fn group_heartbeat(
        &self,
        request: pb::GroupHeartbeatRequest,
    ) -> Result<pb::GroupHeartbeatResponse, BrokerError> {
        let (replica, group_id) = self.coordinator_replica(&request.group).await?;
        let metadata = self.node().controller().metadata();
        let topics: BTreeMap<String, u32> = metadata
            .topics()
            .iter()
            .filter(|(name, _)| !stave_raft::controller::is_internal_topic(name))
            .map(|(name, topic)| (name.clone(), topic.partition_count()))
            .collect();
        let owned: BTreeSet<TopicPartition> = request
            .owned
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
            .collect();
        let mut groups = self.groups_lock();
        let group = self.group_state(&mut groups, &request.group, &replica, group_id);
        if request.leave {
            group.leave(&request.member_id, &topics);
            return Ok(pb::GroupHeartbeatResponse {
                member_id: request.member_id,
                ..Default::default()
            });
        }
        let beat = Heartbeat {
            member_id: &request.member_id,
            member_epoch: request.member_epoch,
            subscription: &request.subscription,
            owned: &owned,
        };
        let reply = group.heartbeat(beat, &topics, now_ms(), SESSION_TIMEOUT_MS)?;
        let mut assignment: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (topic, partition) in reply.assignment {
            assignment.entry(topic).or_default().push(partition);
        }
        Ok(pb::GroupHeartbeatResponse {
            error: None,
            member_id: reply.member_id,
            member_epoch: reply.member_epoch,
            assignment: assignment
                .into_iter()
                .map(|(topic, partitions)| pb::TopicPartitions { topic, partitions })
                .collect(),
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            session_timeout_ms: SESSION_TIMEOUT_MS as u32,
        })
    }

    /// Commits `offsets` for `group` (this node must coordinate it): one batch of records,
    /// answered once committed. A member's commit must carry its current epoch.
    pub(crate) async fn commit_offsets(
        &self,
        request: pb::CommitOffsetsRequest,
    ) -> Result<(), BrokerError> {
        let (replica, group_id) = self.coordinator_replica(&request.group).await?;
        check_commits(&request.offsets)?;
        if !request.member_id.is_empty() {
            let groups = self.groups_lock();
            let group = groups.get(&request.group).ok_or_else(|| {
                crate::membership::MembershipError::UnknownMember(request.member_id.clone())
            })?;
            group.validate_commit(&request.member_id, request.member_epoch)?;
        }
        if request.offsets.is_empty() {
            return Ok(());
        }
        let commit_ms = now_ms();
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = request
            .offsets
            .into_iter()
            .map(|entry| {
                let key = OffsetKey {
                    group: request.group.clone(),
                    topic: entry.topic,
                    partition: entry.partition,
                };
                let committed = Committed {
                    offset: entry.offset,
                    commit_ms,
                    metadata: entry.metadata,
                };
                commit_record(&key, Some(&committed))
            })
            .collect();
        let mut builder = BatchBuilder::new();
        for (key, value) in &records {
            builder.push(&as_record(key, value.as_deref(), commit_ms));
        }
        let batch = Bytes::from(builder.finish());
        self.propose_internal(&replica, OFFSETS_TOPIC, group_id, batch)
            .await
    }

    /// `group`'s committed offsets (this node must coordinate it).
    pub(crate) async fn fetch_offsets(
        &self,
        group: &str,
    ) -> Result<Vec<pb::GroupOffset>, BrokerError> {
        let (replica, _) = self.coordinator_replica(group).await?;
        let table = replica.sm.offsets().unwrap_or_default();
        Ok(table
            .group(group)
            .map(|(key, committed)| pb::GroupOffset {
                topic: key.topic.clone(),
                partition: key.partition,
                offset: committed.offset,
                metadata: committed.metadata.clone(),
                commit_ms: committed.commit_ms,
            })
            .collect())
    }
}

fn topic_partitions(set: &BTreeSet<TopicPartition>) -> Vec<pb::TopicPartitions> {
    let mut by_topic: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (topic, partition) in set {
        by_topic.entry(topic.clone()).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| pb::TopicPartitions { topic, partitions })
        .collect()
}

impl Broker {
    /// `group`'s members and committed offsets with lag (this node must coordinate it).
    pub(crate) async fn describe_group(
        &self,
        group: &str,
    ) -> Result<pb::DescribeGroupResponse, BrokerError> {
        let committed = self.fetch_offsets(group).await?;
        let members = self
            .groups_lock()
            .get(group)
            .map(|g| g.describe())
            .unwrap_or_default()
            .into_iter()
            .map(|member| pb::GroupMember {
                member_id: member.member_id,
                member_epoch: member.member_epoch,
                owned: topic_partitions(&member.owned),
                target: topic_partitions(&member.target),
            })
            .collect();
        let metadata = self.node().controller().metadata();
        let mut offsets = Vec::with_capacity(committed.len());
        for entry in committed {
            let high_watermark = match metadata.topic(&entry.topic) {
                Some(topic) if entry.partition < topic.partition_count() => {
                    let group_id = topic.group_id(entry.partition);
                    match self.node().partition(group_id) {
                        Some(replica) if self.leads(&replica) => Some(replica.sm.high_watermark()),
                        _ => {
                            self.remote_high_watermark(&entry.topic, entry.partition, group_id)
                                .await
                        }
                    }
                }
                _ => None,
            };
            offsets.push(pb::PartitionLag {
                lag: high_watermark.map_or(0, |hwm| hwm.saturating_sub(entry.offset)),
                high_watermark: high_watermark.unwrap_or(0),
                committed: entry.offset,
                topic: entry.topic,
                partition: entry.partition,
            });
        }
        Ok(pb::DescribeGroupResponse {
            error: None,
            members,
            offsets,
        })
    }
}

impl Broker {
    /// The groups this node coordinates: those with committed offsets in the `__offsets`
    /// partitions it leads, and those with members here.
    pub(crate) fn local_groups(&self) -> Vec<pb::ListedGroup> {
        let metadata = self.node().controller().metadata();
        let Some(topic) = metadata.topic(OFFSETS_TOPIC) else {
            return Vec::new();
        };
        let mut found: BTreeMap<String, u32> = BTreeMap::new();
        let mut led = BTreeSet::new();
        for (partition, _) in topic.partitions() {
            let Some(replica) = self.node().partition(topic.group_id(partition)) else {
                continue;
            };
            if !self.leads(&replica) {
                continue;
            }
            led.insert(partition);
            for group in replica.sm.offsets().unwrap_or_default().groups() {
                found.insert(group, 0);
            }
        }
        for (name, group) in self.groups_lock().iter() {
            if led.contains(&offsets_partition(name)) {
                found.insert(name.clone(), group.describe().len() as u32);
            }
        }
        found
            .into_iter()
            .map(|(group, members)| pb::ListedGroup {
                group,
                coordinator: self.node().id(),
                members,
            })
            .collect()
    }

    /// Every group in the cluster: this node's, and each other node's (asked in parallel).
    pub(crate) async fn list_groups_everywhere(&self) -> pb::ListGroupsResponse {
        let metadata = self.node().controller().metadata();
        let mut groups = self.local_groups();
        let mut unreachable = Vec::new();
        let mut asks = tokio::task::JoinSet::new();
        for (&id, addr) in metadata.nodes() {
            if id == self.node().id() {
                continue;
            }
            let Ok(mut client) = self.peer_client(addr) else {
                unreachable.push(id);
                continue;
            };
            asks.spawn(async move {
                let request = crate::service::forward_request(pb::ListGroupsRequest {});
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), client.list_groups(request)).await;
                match answer {
                    Ok(Ok(answer)) => Ok(answer.into_inner().groups),
                    _ => Err(id),
                }
            });
        }
        while let Some(answer) = asks.join_next().await {
            match answer {
                Ok(Ok(found)) => groups.extend(found),
                Ok(Err(id)) => unreachable.push(id),
                Err(_) => {}
            }
        }
        // During a leadership change two nodes may both still claim a partition: keep the
        // entry with members.
        groups.sort_by(|a, b| a.group.cmp(&b.group).then(b.members.cmp(&a.members)));
        groups.dedup_by(|later, earlier| later.group == earlier.group);
        unreachable.sort_unstable();
        pb::ListGroupsResponse {
            error: None,
            groups,
            unreachable,
        }
    }

    /// Moves `group`'s committed offsets for one topic (this node must coordinate it, and the
    /// group must have no members); answers the offsets committed.
    pub(crate) async fn reset_offsets(
        &self,
        request: pb::ResetOffsetsRequest,
    ) -> Result<Vec<pb::GroupOffset>, BrokerError> {
        self.coordinator_replica(&request.group).await?;
        self.check_no_members(&request.group)?;
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(&request.topic)
            .filter(|_| !stave_raft::controller::is_internal_topic(&request.topic))
            .ok_or_else(|| BrokerError::UnknownTopic(request.topic.clone()))?;
        let count = topic.partition_count();
        // Each partition once, however often the request names it: a partition named 1,000
        // times was looked up (at its leader, maybe another node) 1,000 times (issue 15).
        let partitions: Vec<u32> = if request.partitions.is_empty() {
            (0..count).collect()
        } else {
            let named: BTreeSet<u32> = request.partitions.iter().copied().collect();
            named.into_iter().collect()
        };
        if let Some(&partition) = partitions.iter().find(|&&p| p >= count) {
            return Err(BrokerError::UnknownPartition {
                topic: request.topic.clone(),
                partition,
            });
        }
        let Some(to) = request.to else {
            return Err(BrokerError::InvalidRequest(
                "say earliest, latest, offset or timestamp_ms".into(),
            ));
        };
        let lookups = partitions
            .into_iter()
            .map(|partition| self.reset_target(&request.topic, partition, to));
        // A few lookups at a time: a topic's partitions may lead on other nodes.
        let offsets: Vec<pb::OffsetCommit> = futures_util::stream::iter(lookups)
            .buffered(RESET_LOOKUPS_IN_FLIGHT_MAX)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        // A consumer may have joined while the offsets were looked up.
        self.check_no_members(&request.group)?;
        let committed: Vec<pb::GroupOffset> = offsets
            .iter()
            .map(|entry| pb::GroupOffset {
                topic: entry.topic.clone(),
                partition: entry.partition,
                offset: entry.offset,
                metadata: String::new(),
                commit_ms: now_ms(),
            })
            .collect();
        self.commit_offsets(pb::CommitOffsetsRequest {
            group: request.group,
            offsets,
            member_id: String::new(),
            member_epoch: 0,
        })
        .await?;
        Ok(committed)
    }

    /// Where a reset moves one partition, as the offset to commit.
    async fn reset_target(
        &self,
        topic: &str,
        partition: u32,
        to: pb::reset_offsets_request::To,
    ) -> Result<pb::OffsetCommit, BrokerError> {
        use pb::list_offsets_request::Spec;
        use pb::reset_offsets_request::To;
        let ask = |spec: Spec| pb::ListOffsetsRequest {
            topic: topic.to_string(),
            partition,
            spec: Some(spec),
        };
        let offset = match to {
            To::Earliest(_) => {
                self.list_offsets_anywhere(ask(Spec::Earliest(true)))
                    .await?
            }
            To::Latest(_) => self.list_offsets_anywhere(ask(Spec::Latest(true))).await?,
            To::TimestampMs(ms) => {
                self.list_offsets_anywhere(ask(Spec::TimestampMs(ms)))
                    .await?
            }
            To::Offset(offset) => {
                let start = self
                    .list_offsets_anywhere(ask(Spec::Earliest(true)))
                    .await?;
                let end = self.list_offsets_anywhere(ask(Spec::Latest(true))).await?;
                offset.clamp(start, end)
            }
        };
        Ok(pb::OffsetCommit {
            topic: topic.to_string(),
            partition,
            offset,
            metadata: String::new(),
        })
    }

    fn check_no_members(&self, group: &str) -> Result<(), BrokerError> {
        let now = now_ms();
        let mut groups = self.groups_lock();
        match groups.get_mut(group) {
            Some(state) => {
                state.expire(now, SESSION_TIMEOUT_MS);
                if state.is_empty() {
                    Ok(())
                } else {
                    Err(BrokerError::GroupNotEmpty(group.to_string()))
                }
            }
            None => Ok(()),
        }
    }
}

/// Expires the members of the groups this node coordinates that went silent, so their
/// partitions move on even when nobody else heartbeats; drops groups left empty.
pub fn expire_members(broker: &Broker) {
    let now = now_ms();
    let mut groups = broker.groups_lock();
    for group in groups.values_mut() {
        group.expire(now, SESSION_TIMEOUT_MS);
    }
    groups.retain(|_, group| !group.is_empty());
}

/// Compacts the `__offsets` partition replicas on this node, leader and followers alike
/// (each its own log): once enough entries follow the last snapshot, a snapshot (the whole
/// table), then a purge of what it covers. A partition that fails is reported and skipped.
pub async fn compact(broker: &Broker) {
    let metadata = broker.node().controller().metadata();
    let Some(topic) = metadata.topic(OFFSETS_TOPIC) else {
        return;
    };
    for (partition, _) in topic.partitions() {
        let Some(replica) = broker.node().partition(topic.group_id(partition)) else {
            continue;
        };
        if let Err(err) = compact_one(&replica).await {
            tracing::warn!(partition, %err, "__offsets compaction failed");
        }
    }
}

async fn compact_one(replica: &stave_raft::PartitionReplica) -> Result<(), BrokerError> {
    let (applied, snapshot) = crate::topics::applied_and_snapshot(replica);
    if applied.saturating_sub(snapshot.unwrap_or(0)) < COMPACT_AFTER_ENTRIES {
        return Ok(());
    }
    crate::topics::purge_through_snapshot(replica, applied, "offsets snapshot").await?;
    Ok(())
}

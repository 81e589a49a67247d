//! The consumer-group coordinator's requests: heartbeats, commits, committed offsets,
//! describe, list and reset. This node coordinates a consumer group while it leads the
//! group's `__offsets` partition; a request for one it does not coordinate is answered
//! NOT_COORDINATOR with the coordinator it knows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use futures_util::StreamExt;
use stave_log::batch::BatchBuilder;
use stave_raft::Partition;
use stave_raft::controller::{OFFSETS_PARTITION_COUNT, OFFSETS_TOPIC, is_internal_topic};
use stave_raft::group::RaftGroupId;
use stave_raft::offsets::{Committed, OffsetKey, as_record, commit_record};

use super::membership::{ConsumerGroup, GroupMembershipError, Heartbeat};
use super::{
    CommitRequest, Coordinating, GroupDescription, GroupListing, GroupOffset,
    HEARTBEAT_INTERVAL_MS, HeartbeatAnswer, HeartbeatRequest, ListedGroup, MemberDescription,
    OffsetCommit, PartitionLag, ResetRequest, ResetTo, SESSION_TIMEOUT_MS, now_ms,
    offsets_partition,
};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::fetch::OffsetSpec;

/// How many partitions a reset looks up at once (their leaders may be other nodes).
const RESET_LOOKUPS_IN_FLIGHT_MAX: usize = 8;

/// The most bytes of metadata one committed offset carries (Kafka's default
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Refuses commits no table should keep: metadata past [`OFFSET_METADATA_BYTES_MAX`], or a
/// topic name no topic can have. Every entry stays in the `__offsets` table (in memory, in
/// every snapshot): unbounded metadata and 100 KB names let one client grow it by megabytes
/// per commit (issue 15).
fn check_commits(offsets: &[OffsetCommit]) -> Result<(), BrokerError> {
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

fn check_name(consumer_group: &str) -> Result<(), BrokerError> {
    if consumer_group.is_empty() || consumer_group.len() > 255 {
        return Err(BrokerError::InvalidRequest(
            "a consumer group name has 1 to 255 bytes".into(),
        ));
    }
    Ok(())
}

/// How long after its start a node waits for every configured node to register before it
/// creates `__offsets` with fewer replicas.
const OFFSETS_WAIT_FOR_PEERS: std::time::Duration = std::time::Duration::from_secs(60);

impl Broker {
    /// Creates `__offsets` (on the controller leader) if it does not exist yet.
    pub(crate) async fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        let metadata = self.node().controller().metadata();
        if metadata.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let nodes: Vec<u64> = metadata.nodes().keys().copied().collect();
        // As many replicas as the cluster was configured with nodes (up to 3), not as many as
        // have registered: a group used while the cluster forms would otherwise get
        // `__offsets` with one replica for good. A node that has not come after
        // `OFFSETS_WAIT_FOR_PEERS` is not waited for any longer.
        let configured = self.config().peers.len().max(1);
        let wanted = 3.min(configured);
        let forming = self.started.elapsed() < OFFSETS_WAIT_FOR_PEERS;
        if nodes.is_empty() || (nodes.len() < wanted && forming) {
            return Err(BrokerError::CoordinatorNotAvailable(format!(
                "(the cluster is forming: {} of {configured} nodes registered)",
                nodes.len()
            )));
        }
        let replication = wanted.min(nodes.len()) as u32;
        if (replication as usize) < wanted {
            tracing::warn!(
                replicas = replication,
                wanted,
                "creating {OFFSETS_TOPIC} with fewer replicas than wanted: not every \
                 configured node registered in time"
            );
        }
        // Compaction, not retention, bounds `__offsets`.
        let configs = [
            ("retention.ms".to_string(), "-1".to_string()),
            ("segment.bytes".to_string(), (4u64 << 20).to_string()),
        ];
        let command = crate::placement::create_topic_command(
            OFFSETS_TOPIC,
            &nodes,
            (OFFSETS_PARTITION_COUNT, replication, 0),
            &configs,
        )?;
        match crate::admin::command_result(self.command(command).await?, OFFSETS_TOPIC) {
            Err(BrokerError::TopicExists(_)) | Ok(()) => Ok(()),
            Err(other) => Err(BrokerError::Internal(format!(
                "cannot create {OFFSETS_TOPIC}: {other}"
            ))),
        }
    }

    /// Where `consumer_group`'s coordinator runs (after `__offsets` exists).
    pub(crate) async fn coordinator(
        &self,
        consumer_group: &str,
    ) -> Result<(u64, String), BrokerError> {
        check_name(consumer_group)?;
        let not_available = || BrokerError::CoordinatorNotAvailable(consumer_group.to_string());
        let metadata = self.node().controller().metadata();
        let topic = metadata.topic(OFFSETS_TOPIC).ok_or_else(not_available)?;
        let raft_group = topic.group_id(offsets_partition(consumer_group));
        let leader = self.leader_of(raft_group).await.ok_or_else(not_available)?;
        let addr = metadata.node_addr(leader).ok_or_else(not_available)?;
        Ok((leader, addr.to_string()))
    }

    /// This node's replica of `consumer_group`'s `__offsets` partition (and its Raft group),
    /// if this node is the coordinator.
    pub(crate) async fn coordinator_partition(
        &self,
        consumer_group: &str,
    ) -> Result<(Partition, RaftGroupId), BrokerError> {
        check_name(consumer_group)?;
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(OFFSETS_TOPIC)
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable(consumer_group.to_string()))?;
        let raft_group = topic.group_id(offsets_partition(consumer_group));
        if let Some(partition) = self.node().partition(raft_group)
            && partition.leads()
        {
            self.note_coordinating(&partition, raft_group);
            return Ok((partition, raft_group));
        }
        match self.coordinator(consumer_group).await.ok() {
            Some(coordinator) => Err(BrokerError::NotCoordinator {
                consumer_group: consumer_group.to_string(),
                coordinator: Some(coordinator.into()),
            }),
            None => Err(BrokerError::CoordinatorNotAvailable(
                consumer_group.to_string(),
            )),
        }
    }

    /// Notes that this node leads `__offsets` partition `raft_group`. In a new term, the
    /// consumer groups it held from an earlier term are dropped: their members moved on.
    fn note_coordinating(&self, partition: &Partition, raft_group: RaftGroupId) {
        let term = partition.term();
        let now = Coordinating {
            term,
            since_ms: now_ms(),
        };
        let fresh = {
            let mut coordinating = self.coordinating_lock();
            let entry = coordinating.entry(raft_group).or_insert(now);
            let fresh = entry.term != term;
            if fresh {
                *entry = now;
            }
            fresh
        };
        if fresh {
            let offsets = stave_raft::group::partition_of(raft_group);
            self.consumer_groups_lock()
                .retain(|name, _| offsets_partition(name) != offsets);
        }
    }

    /// The state of `consumer_group` on this coordinator, made on first use. One that
    /// committed under a previous coordinator, met by one that took over less than a session
    /// timeout ago, may have members of the previous one still holding partitions: it hands
    /// out nothing new until that session timeout has passed.
    fn group_state<'a>(
        &self,
        consumer_groups: &'a mut HashMap<String, ConsumerGroup>,
        consumer_group: &str,
        partition: &Partition,
        raft_group: RaftGroupId,
    ) -> &'a mut ConsumerGroup {
        consumer_groups
            .entry(consumer_group.to_string())
            .or_insert_with(|| {
                let since = self
                    .coordinating_lock()
                    .get(&raft_group)
                    .map_or(0, |coordinating| coordinating.since_ms);
                // Committed before this node took over: members of the previous coordinator
                // were reading. (A commit since then came from a member known here.)
                let last_commit = partition
                    .offsets_table()
                    .and_then(|table| table.group(consumer_group).map(|(_, c)| c.commit_ms).max());
                let before = last_commit.is_some_and(|at| at < since);
                if before && now_ms() - since < SESSION_TIMEOUT_MS {
                    ConsumerGroup::holding(since + SESSION_TIMEOUT_MS)
                } else {
                    ConsumerGroup::default()
                }
            })
    }

    /// A member's heartbeat (this node must coordinate its consumer group).
    pub(crate) async fn group_heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatAnswer, BrokerError> {
        let (partition, raft_group) = self.coordinator_partition(&request.consumer_group).await?;
        if !request.leave && self.queue_members(&request.consumer_group) > 0 {
            return Err(BrokerError::GroupMismatch {
                group: request.consumer_group.clone(),
                why: "it is a queue group with members: a consumer group needs its own name".into(),
            });
        }
        let metadata = self.node().controller().metadata();
        let topics: BTreeMap<String, u32> = metadata
            .topics()
            .iter()
            .filter(|(name, _)| !is_internal_topic(name))
            .map(|(name, topic)| (name.clone(), topic.partition_count()))
            .collect();
        let mut consumer_groups = self.consumer_groups_lock();
        let state = self.group_state(
            &mut consumer_groups,
            &request.consumer_group,
            &partition,
            raft_group,
        );
        if request.leave {
            state.leave(&request.member_id, &topics);
            return Ok(HeartbeatAnswer {
                member_id: request.member_id,
                ..HeartbeatAnswer::default()
            });
        }
        let beat = Heartbeat {
            member_id: &request.member_id,
            member_epoch: request.member_epoch,
            subscription: &request.subscription,
            owned: &request.owned,
        };
        let reply = state.heartbeat(beat, &topics, now_ms(), SESSION_TIMEOUT_MS)?;
        Ok(HeartbeatAnswer {
            member_id: reply.member_id,
            member_epoch: reply.member_epoch,
            assignment: reply.assignment,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            session_timeout_ms: SESSION_TIMEOUT_MS as u32,
        })
    }

    /// Commits offsets (this node must coordinate the consumer group): one batch of
    /// records, answered once committed. A member's commit must carry its current epoch.
    pub(crate) async fn commit_offsets(&self, request: CommitRequest) -> Result<(), BrokerError> {
        let (partition, raft_group) = self.coordinator_partition(&request.consumer_group).await?;
        check_commits(&request.offsets)?;
        if !request.member_id.is_empty() {
            let consumer_groups = self.consumer_groups_lock();
            let state = consumer_groups
                .get(&request.consumer_group)
                .ok_or_else(|| GroupMembershipError::UnknownMember(request.member_id.clone()))?;
            state.validate_commit(&request.member_id, request.member_epoch)?;
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
                    group: request.consumer_group.clone(),
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
        self.propose_internal(&partition, OFFSETS_TOPIC, raft_group, batch)
            .await
    }

    /// A consumer group's committed offsets (this node must coordinate it).
    pub(crate) async fn fetch_offsets(
        &self,
        consumer_group: &str,
    ) -> Result<Vec<GroupOffset>, BrokerError> {
        let (partition, _) = self.coordinator_partition(consumer_group).await?;
        let table = partition.offsets_table().unwrap_or_default();
        Ok(table
            .group(consumer_group)
            .map(|(key, committed)| GroupOffset {
                topic: key.topic.clone(),
                partition: key.partition,
                offset: committed.offset,
                metadata: committed.metadata.clone(),
                commit_ms: committed.commit_ms,
            })
            .collect())
    }

    /// A consumer group's members and committed offsets with lag (this node must
    /// coordinate it).
    pub(crate) async fn describe_group(
        &self,
        consumer_group: &str,
    ) -> Result<GroupDescription, BrokerError> {
        let committed = self.fetch_offsets(consumer_group).await?;
        let members = self
            .consumer_groups_lock()
            .get(consumer_group)
            .map(|state| state.describe())
            .unwrap_or_default()
            .into_iter()
            .map(|member| MemberDescription {
                member_id: member.member_id,
                member_epoch: member.member_epoch,
                owned: member.owned,
                target: member.target,
            })
            .collect();
        let mut offsets = Vec::with_capacity(committed.len());
        for entry in committed {
            let high_watermark = self
                .high_watermark_anywhere(&entry.topic, entry.partition)
                .await;
            offsets.push(PartitionLag {
                high_watermark,
                committed: entry.offset,
                topic: entry.topic,
                partition: entry.partition,
            });
        }
        let queue = self.describe_queue(consumer_group).await;
        Ok(GroupDescription {
            members,
            offsets,
            queue,
        })
    }

    /// A partition's high watermark, here if this node leads it, else asked of its leader.
    async fn high_watermark_anywhere(&self, topic: &str, partition: u32) -> Option<u64> {
        let metadata = self.node().controller().metadata();
        let meta = metadata
            .topic(topic)
            .filter(|meta| partition < meta.partition_count())?;
        let raft_group = meta.group_id(partition);
        match self.node().partition(raft_group) {
            Some(local) if local.leads() => Some(local.high_watermark().0),
            _ => {
                self.remote_high_watermark(topic, partition, raft_group)
                    .await
            }
        }
    }

    /// The consumer groups this node coordinates: those with committed offsets in the
    /// `__offsets` partitions it leads, and those with members here.
    pub(crate) fn local_groups(&self) -> Vec<ListedGroup> {
        let metadata = self.node().controller().metadata();
        let Some(topic) = metadata.topic(OFFSETS_TOPIC) else {
            return Vec::new();
        };
        let mut found: BTreeMap<String, u32> = BTreeMap::new();
        let mut led = BTreeSet::new();
        for (offsets, _) in topic.partitions() {
            let Some(partition) = self.node().partition(topic.group_id(offsets)) else {
                continue;
            };
            if !partition.leads() {
                continue;
            }
            led.insert(offsets);
            for name in partition.offsets_table().unwrap_or_default().groups() {
                found.insert(name, 0);
            }
        }
        for (name, state) in self.consumer_groups_lock().iter() {
            if led.contains(&offsets_partition(name)) {
                found.insert(name.clone(), state.describe().len() as u32);
            }
        }
        let queues: Vec<(String, usize)> = crate::broker::lock(&self.queue_groups)
            .iter()
            .map(|(name, handle)| (name.clone(), handle.members()))
            .collect();
        for (name, members) in queues {
            if led.contains(&offsets_partition(&name)) && members > 0 {
                found.insert(name, members as u32);
            }
        }
        found
            .into_iter()
            .map(|(consumer_group, members)| ListedGroup {
                consumer_group,
                coordinator: self.node().id(),
                members,
            })
            .collect()
    }

    /// Every consumer group in the cluster: this node's, and each other node's (asked in
    /// parallel).
    pub(crate) async fn list_groups_everywhere(&self) -> GroupListing {
        let metadata = self.node().controller().metadata();
        let mut consumer_groups = self.local_groups();
        let mut unreachable = Vec::new();
        let asks = metadata
            .nodes()
            .iter()
            .filter(|(id, _)| **id != self.node().id())
            .map(|(&id, addr)| self.remote_consumer_groups(id, addr));
        for answer in futures_util::future::join_all(asks).await {
            match answer {
                Ok(found) => consumer_groups.extend(found),
                Err(id) => unreachable.push(id),
            }
        }
        // During a leadership change two nodes may both still claim a partition: keep the
        // entry with members.
        consumer_groups.sort_by(|a, b| {
            a.consumer_group
                .cmp(&b.consumer_group)
                .then(b.members.cmp(&a.members))
        });
        consumer_groups.dedup_by(|later, earlier| later.consumer_group == earlier.consumer_group);
        unreachable.sort_unstable();
        GroupListing {
            consumer_groups,
            unreachable,
        }
    }

    /// Moves a consumer group's committed offsets for one topic (this node must coordinate
    /// it, and it must have no members); answers the offsets committed.
    pub(crate) async fn reset_offsets(
        &self,
        request: ResetRequest,
    ) -> Result<Vec<GroupOffset>, BrokerError> {
        self.coordinator_partition(&request.consumer_group).await?;
        self.check_no_members(&request.consumer_group)?;
        let partitions = self.reset_partitions(&request)?;
        let Some(to) = request.to else {
            return Err(BrokerError::InvalidRequest(
                "say earliest, latest, offset or timestamp_ms".into(),
            ));
        };
        let lookups = partitions
            .into_iter()
            .map(|partition| self.reset_target(&request.topic, partition, to));
        // A few lookups at a time: a topic's partitions may lead on other nodes.
        let offsets: Vec<OffsetCommit> = futures_util::stream::iter(lookups)
            .buffered(RESET_LOOKUPS_IN_FLIGHT_MAX)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        // A consumer may have joined while the offsets were looked up.
        self.check_no_members(&request.consumer_group)?;
        // A queue group's task holds its offsets in memory: it stops first (refused while
        // it has members), and the next member starts from the offsets reset here.
        self.stop_queue(&request.consumer_group).await?;
        let committed: Vec<GroupOffset> = offsets
            .iter()
            .map(|entry| GroupOffset {
                topic: entry.topic.clone(),
                partition: entry.partition,
                offset: entry.offset,
                metadata: String::new(),
                commit_ms: now_ms(),
            })
            .collect();
        self.commit_offsets(CommitRequest {
            consumer_group: request.consumer_group,
            offsets,
            member_id: String::new(),
            member_epoch: 0,
        })
        .await?;
        Ok(committed)
    }

    /// The partitions a reset names: each once, however often the request names it (a
    /// partition named 1,000 times was looked up, maybe on another node, 1,000 times).
    fn reset_partitions(&self, request: &ResetRequest) -> Result<Vec<u32>, BrokerError> {
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(&request.topic)
            .filter(|_| !is_internal_topic(&request.topic))
            .ok_or_else(|| BrokerError::UnknownTopic(request.topic.clone()))?;
        let count = topic.partition_count();
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
        Ok(partitions)
    }

    /// Where a reset moves one partition, as the offset to commit.
    async fn reset_target(
        &self,
        topic: &str,
        partition: u32,
        to: ResetTo,
    ) -> Result<OffsetCommit, BrokerError> {
        let ask = |spec| self.list_offsets_anywhere(topic, partition, spec);
        let offset = match to {
            ResetTo::Earliest => ask(OffsetSpec::Earliest).await?,
            ResetTo::Latest => ask(OffsetSpec::Latest).await?,
            ResetTo::Timestamp(ms) => ask(OffsetSpec::Timestamp(ms)).await?,
            ResetTo::Offset(offset) => {
                let start = ask(OffsetSpec::Earliest).await?;
                let end = ask(OffsetSpec::Latest).await?;
                offset.clamp(start, end)
            }
        };
        Ok(OffsetCommit {
            topic: topic.to_string(),
            partition,
            offset,
            metadata: String::new(),
        })
    }

    fn check_no_members(&self, consumer_group: &str) -> Result<(), BrokerError> {
        if self.queue_members(consumer_group) > 0 {
            return Err(BrokerError::ConsumerGroupNotEmpty(
                consumer_group.to_string(),
            ));
        }
        let now = now_ms();
        let mut consumer_groups = self.consumer_groups_lock();
        match consumer_groups.get_mut(consumer_group) {
            Some(state) => {
                state.expire(now, SESSION_TIMEOUT_MS);
                if state.is_empty() {
                    Ok(())
                } else {
                    Err(BrokerError::ConsumerGroupNotEmpty(
                        consumer_group.to_string(),
                    ))
                }
            }
            None => Ok(()),
        }
    }
}

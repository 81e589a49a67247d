//! Where a request goes: the topic and partition it names, resolved against the metadata;
//! whether this node leads it (or who does); and the leaderships of every node, gathered
//! for Metadata and cached briefly. Leadership is soft state: each node reports the Raft
//! groups it leads (`Leaderships`), and the newest term wins.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stave_raft::group::RaftGroupId;
use stave_raft::problems::ReplicaProblem;
use stave_raft::{Partition, ReplicationError};

use crate::broker::{Broker, lock};
use crate::error::{BrokerError, NodeAddr};
use crate::leaderships::{Leader, Leaderships, NodeProblem};
use crate::topic_config::{TopicConfig, topic_config};

/// How long Metadata reuses the leaderships it gathered.
const LEADERS_TTL: Duration = Duration::from_millis(500);

/// The topic and partition a request names, resolved against the metadata.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub topic: String,
    pub partition: u32,
    pub raft_group: RaftGroupId,
    pub config: TopicConfig,
}

impl Broker {
    pub(crate) fn target(&self, topic: &str, partition: u32) -> Result<Target, BrokerError> {
        let metadata = self.node().controller().metadata();
        let meta = metadata
            .topic(topic)
            .ok_or_else(|| BrokerError::UnknownTopic(topic.to_string()))?;
        if partition >= meta.partition_count() {
            return Err(BrokerError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(Target {
            topic: topic.to_string(),
            partition,
            raft_group: meta.group_id(partition),
            config: topic_config(meta),
        })
    }

    /// This node's replica of `target` if it leads; otherwise NOT_LEADER with the best hint,
    /// or LEADER_NOT_AVAILABLE.
    pub(crate) async fn leader_partition(&self, target: &Target) -> Result<Partition, BrokerError> {
        if let Some(partition) = self.node().partition(target.raft_group) {
            if partition.leads() {
                return Ok(partition);
            }
            if let Some(leader) = partition.leader() {
                return Err(self.not_leader(target, leader));
            }
        }
        match self.leaders().await.get(&target.raft_group) {
            Some(leader) if leader.node != self.node().id() => {
                Err(self.not_leader(target, leader.node))
            }
            _ => Err(self.leader_not_available(target)),
        }
    }

    pub(crate) fn not_leader(&self, target: &Target, leader: u64) -> BrokerError {
        let metadata = self.node().controller().metadata();
        BrokerError::NotLeader {
            topic: target.topic.clone(),
            partition: target.partition,
            leader: metadata.node_addr(leader).map(|addr| NodeAddr {
                node_id: leader,
                addr: addr.to_string(),
            }),
        }
    }

    pub(crate) fn leader_not_available(&self, target: &Target) -> BrokerError {
        BrokerError::LeaderNotAvailable {
            topic: target.topic.clone(),
            partition: target.partition,
        }
    }

    /// A replication failure on `target`, as the API answers it.
    pub(crate) fn replication_error(&self, target: &Target, err: ReplicationError) -> BrokerError {
        match err {
            ReplicationError::NotLeader {
                leader_hint: Some(leader),
            } => self.not_leader(target, leader),
            ReplicationError::NotLeader { leader_hint: None } | ReplicationError::NoLeader => {
                self.leader_not_available(target)
            }
            ReplicationError::Timeout(why) => {
                BrokerError::Timeout(format!("{}/{}: {why}", target.topic, target.partition))
            }
            ReplicationError::Log(log) => BrokerError::from_log(self.node().id(), log),
            // The replica stopped under the request (its topic deleted, the node stopping, a
            // storage error): whether the write committed is not known; the answer is the
            // retriable, in-doubt one, and a retry finds the partition's new leader (or that
            // the topic is gone).
            ReplicationError::Stopped(why) => BrokerError::Timeout(format!(
                "{}/{}: the replica stopped before the outcome was known ({why})",
                target.topic, target.partition
            )),
            other => BrokerError::Replication(other),
        }
    }

    /// Who leads every Raft group, from every node (cached for [`LEADERS_TTL`]).
    pub(crate) async fn leaders(&self) -> HashMap<RaftGroupId, Leader> {
        self.leaderships().await.leaders
    }

    /// The leader of Raft group `raft_group` as this node or the cluster's leaderships know
    /// it.
    pub(crate) async fn leader_of(&self, raft_group: RaftGroupId) -> Option<u64> {
        if let Some(leader) = self.node().partition(raft_group).and_then(|p| p.leader()) {
            return Some(leader);
        }
        self.leaders()
            .await
            .get(&raft_group)
            .map(|leader| leader.node)
    }

    /// Leaders and replica problems, from every node (cached for [`LEADERS_TTL`]).
    pub(crate) async fn leaderships(&self) -> Leaderships {
        if let Some((at, leaderships)) = lock(&self.leaderships).as_ref()
            && at.elapsed() < LEADERS_TTL
        {
            return leaderships.clone();
        }
        let mut gathered = self.local_leaderships();
        let metadata = self.node().controller().metadata();
        let me = self.node().id();
        let asks = metadata
            .nodes()
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, addr)| self.node().clients().leaderships(*id, addr));
        for answer in futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
        {
            for problem in answer.problems {
                gathered
                    .problems
                    .entry(RaftGroupId(problem.group_id))
                    .or_default()
                    .push(NodeProblem {
                        node: answer.node_id,
                        problem: ReplicaProblem {
                            group: RaftGroupId(problem.group_id),
                            reason: problem.reason,
                            reopens: problem.reopens,
                            offline: problem.offline,
                        },
                    });
            }
            for group in answer.groups {
                let newer = gathered
                    .leaders
                    .get(&RaftGroupId(group.group_id))
                    .is_none_or(|known| known.term < group.term);
                if newer {
                    let leader = Leader {
                        node: answer.node_id,
                        term: group.term,
                        in_sync: group.in_sync,
                        note: group.note,
                    };
                    gathered.leaders.insert(RaftGroupId(group.group_id), leader);
                }
            }
        }
        *lock(&self.leaderships) = Some((Instant::now(), gathered.clone()));
        gathered
    }

    /// The Raft groups this node leads, and its replicas in trouble.
    fn local_leaderships(&self) -> Leaderships {
        let me = self.node().id();
        let mut leaderships = Leaderships::default();
        for problem in self.node().groups().problems().list() {
            leaderships
                .problems
                .entry(problem.group)
                .or_default()
                .push(NodeProblem { node: me, problem });
        }
        for group in self.node().partition_groups() {
            if let Ok(handle) = self.node().groups().get(group)
                && let Some(leadership) = handle.leadership()
            {
                let leader = Leader {
                    node: me,
                    term: leadership.term,
                    in_sync: leadership.in_sync,
                    note: self.node().groups().note(group),
                };
                leaderships.leaders.insert(group, leader);
            }
        }
        leaderships
    }
}

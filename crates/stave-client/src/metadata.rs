//! The client's picture of the cluster: nodes, topics, partitions and their leaders, as the
//! last Metadata answer gave it plus the leader hints of NOT_LEADER answers since.

use std::collections::BTreeMap;

use stave_proto::v1 as proto;

use crate::error::ClientError;

/// One partition: its leader (when one is known), replicas and in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    pub leader: Option<u64>,
    /// Assigned replicas, in preference order.
    pub replicas: Vec<u64>,
    /// Replicas caught up with the leader.
    pub in_sync: Vec<u64>,
    /// Replicas their nodes took out of service (a storage error), as they report them.
    pub problems: Vec<ReplicaProblem>,
    /// How far back (ms) the leader recognises a retried message id, when the topic's
    /// dedupe.max.ids cut its table short of dedupe.window.ms; `None`: the whole window.
    pub dedupe_window_effective_ms: Option<u64>,
}

/// A replica out of service: its Raft stopped on its own, or it could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProblem {
    pub node: u64,
    /// Why it last failed.
    pub reason: String,
    /// Reopens from disk its node tried so far.
    pub reopens: u32,
    /// No more reopens: down until its node restarts.
    pub offline: bool,
}

impl PartitionInfo {
    /// Fewer replicas in sync than assigned (or no leader at all).
    pub fn is_under_replicated(&self) -> bool {
        self.leader.is_none() || self.in_sync.len() < self.replicas.len()
    }
}

impl From<proto::PartitionMetadata> for PartitionInfo {
    fn from(p: proto::PartitionMetadata) -> Self {
        PartitionInfo {
            partition: p.partition,
            leader: p.leader,
            replicas: p.replicas,
            in_sync: p.in_sync,
            dedupe_window_effective_ms: p.dedupe_window_effective_ms,
            problems: p
                .problems
                .into_iter()
                .map(|problem| ReplicaProblem {
                    node: problem.node_id,
                    reason: problem.reason,
                    reopens: problem.reopens,
                    offline: problem.offline,
                })
                .collect(),
        }
    }
}

/// A topic's partitions, indexed by partition number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    pub fn partition(&self, partition: u32) -> Option<&PartitionInfo> {
        self.partitions
            .get(partition as usize)
            .filter(|p| p.partition == partition)
            .or_else(|| self.partitions.iter().find(|p| p.partition == partition))
    }
}

/// Nodes and topics of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: String,
    pub controller_id: Option<u64>,
    /// Node id → `host:port`.
    pub nodes: BTreeMap<u64, String>,
    pub topics: BTreeMap<String, TopicInfo>,
}

impl ClusterMetadata {
    pub(crate) fn from_proto(response: proto::MetadataResponse) -> ClusterMetadata {
        let nodes = response
            .nodes
            .into_iter()
            .map(|node| (node.id, node.addr))
            .collect();
        let mut topics = BTreeMap::new();
        for topic in response.topics {
            if ClientError::from_proto(topic.error).is_some() {
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .into_iter()
                .map(PartitionInfo::from)
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.insert(
                topic.name.clone(),
                TopicInfo {
                    name: topic.name,
                    partitions,
                },
            );
        }
        ClusterMetadata {
            cluster_id: response.cluster_id,
            controller_id: response.controller_id,
            nodes,
            topics,
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The address of `topic`/`partition`'s leader, when one is known.
    pub fn leader_addr(&self, topic: &str, partition: u32) -> Option<&str> {
        let leader = self.topic(topic)?.partition(partition)?.leader?;
        self.nodes.get(&leader).map(String::as_str)
    }

    /// Records a NOT_LEADER hint: `leader_id` (when given) leads `topic`/`partition` at `addr`.
    pub(crate) fn note_leader(
        &mut self,
        topic: &str,
        partition: u32,
        leader_id: Option<u64>,
        addr: &str,
    ) {
        let id = leader_id.or_else(|| {
            self.nodes
                .iter()
                .find(|(_, node_addr)| node_addr.as_str() == addr)
                .map(|(id, _)| *id)
        });
        let Some(id) = id else { return };
        self.nodes.entry(id).or_insert_with(|| addr.to_string());
        if let Some(info) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.iter_mut().find(|p| p.partition == partition))
        {
            info.leader = Some(id);
        }
    }

    /// Forgets `topic`/`partition`'s leader, so the next request refreshes metadata.
    pub(crate) fn forget_leader(&mut self, topic: &str, partition: u32) {
        if let Some(info) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.iter_mut().find(|p| p.partition == partition))
        {
            info.leader = None;
        }
    }

    /// The addresses of the nodes that lead a partition.
    pub(crate) fn leader_addrs(&self) -> impl Iterator<Item = &str> {
        let leaders: std::collections::BTreeSet<u64> = self
            .topics
            .values()
            .flat_map(|t| t.partitions.iter().filter_map(|p| p.leader))
            .collect();
        leaders
            .into_iter()
            .filter_map(|id| self.nodes.get(&id).map(String::as_str))
    }

    /// Partitions whose leader is `node`, as `(topic, partition)`.
    pub fn led_by(&self, node: u64) -> Vec<(&str, u32)> {
        let mut led = Vec::new();
        for topic in self.topics.values() {
            for p in &topic.partitions {
                if p.leader == Some(node) {
                    led.push((topic.name.as_str(), p.partition));
                }
            }
        }
        led
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> ClusterMetadata {
        ClusterMetadata::from_proto(proto::MetadataResponse {
            cluster_id: "c".into(),
            controller_id: Some(1),
            nodes: vec![
                proto::Node {
                    id: 1,
                    addr: "a:1".into(),
                },
                proto::Node {
                    id: 2,
                    addr: "b:2".into(),
                },
            ],
            topics: vec![proto::TopicMetadata {
                name: "t".into(),
                error: None,
                partitions: vec![
                    proto::PartitionMetadata {
                        partition: 1,
                        leader: None,
                        replicas: vec![1, 2],
                        in_sync: vec![1],
                        problems: vec![],
                        dedupe_window_effective_ms: None,
                    },
                    proto::PartitionMetadata {
                        partition: 0,
                        leader: Some(2),
                        replicas: vec![2, 1],
                        in_sync: vec![2, 1],
                        problems: vec![],
                        dedupe_window_effective_ms: None,
                    },
                ],
            }],
        })
    }

    #[test]
    fn partitions_are_sorted_and_leaders_resolve_to_addresses() {
        let m = metadata();
        let t = m.topic("t").map(|t| t.partition_count());
        assert_eq!(t, Some(2));
        assert_eq!(m.leader_addr("t", 0), Some("b:2"));
        assert_eq!(m.leader_addr("t", 1), None);
        assert_eq!(m.leader_addr("t", 2), None);
        assert_eq!(m.led_by(2), vec![("t", 0)]);
    }

    #[test]
    fn a_not_leader_hint_moves_the_leader() {
        let mut m = metadata();
        m.note_leader("t", 1, None, "a:1");
        assert_eq!(m.leader_addr("t", 1), Some("a:1"));
        m.note_leader("t", 0, Some(3), "c:3");
        assert_eq!(m.leader_addr("t", 0), Some("c:3"));
        m.forget_leader("t", 0);
        assert_eq!(m.leader_addr("t", 0), None);
    }

    #[test]
    fn under_replicated_means_missing_in_sync_replicas_or_no_leader() {
        let m = metadata();
        let t = &m.topics["t"];
        assert!(!t.partitions[0].is_under_replicated());
        assert!(t.partitions[1].is_under_replicated());
    }
}

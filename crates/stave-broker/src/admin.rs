//! Topic admin and producer ids, through the controller (the gRPC edge forwards them to the
//! node that leads it), and the cluster's picture for Metadata and DescribeTopics.

use std::collections::BTreeMap;
use std::time::Duration;

use stave_proto::internal::controller as cproto;
use stave_raft::controller::{
    ClusterMetadata, ControllerError, TopicNameError, is_internal_topic, validate_user_topic_name,
};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::leaderships::NodeProblem;
use crate::topic_config::TopicConfig;

/// Default partitions of a new topic.
const DEFAULT_PARTITIONS: u32 = 3;

/// How long a controller request waits for the controller to have a leader.
const CONTROLLER_LEADER_WAIT: Duration = Duration::from_secs(5);

/// A topic to create, as asked.
#[derive(Debug, Clone, Default)]
pub struct TopicSpec {
    pub name: String,
    /// 0: the default (3).
    pub partitions: u32,
    /// 0: the smaller of 3 and the node count.
    pub replication_factor: u32,
    pub configs: Vec<(String, String)>,
}

/// One partition, as Metadata and DescribeTopics show it.
#[derive(Debug, Clone)]
pub struct PartitionState {
    pub partition: u32,
    pub leader: Option<u64>,
    /// The assigned replicas, in preference order.
    pub replicas: Vec<u64>,
    pub in_sync: Vec<u64>,
    pub problems: Vec<NodeProblem>,
    /// How far back (ms) the leader recognises a retried message id, when dedupe.max.ids
    /// cut its table short of dedupe.window.ms; `None`: the whole window.
    pub dedupe_window_effective_ms: Option<u64>,
}

/// Where this node stands with the controller.
pub(crate) enum ControllerLeader {
    Here,
    /// Another node leads it, at this address.
    At(String),
}

impl Broker {
    /// Who leads the controller, once it has a leader (waits a little for one).
    pub(crate) async fn controller_leader(&self) -> Result<ControllerLeader, BrokerError> {
        let not_available = || BrokerError::LeaderNotAvailable {
            topic: "(controller)".into(),
            partition: 0,
        };
        let leader = self
            .node()
            .controller()
            .wait_for_leader(CONTROLLER_LEADER_WAIT)
            .await
            .ok_or_else(not_available)?;
        if leader == self.node().id() {
            return Ok(ControllerLeader::Here);
        }
        let metadata = self.node().controller().metadata();
        let addr = metadata.node_addr(leader).ok_or_else(|| {
            BrokerError::Internal(format!("no address for controller leader {leader}"))
        })?;
        Ok(ControllerLeader::At(addr.to_string()))
    }

    /// Proposes a controller command here (this node leads the controller).
    pub(crate) async fn command(
        &self,
        command: cproto::Command,
    ) -> Result<cproto::CommandReply, BrokerError> {
        self.node()
            .controller()
            .propose(command)
            .await
            .map_err(|err| match err {
                ControllerError::NotLeader { .. } | ControllerError::OutcomeUnknown { .. } => {
                    BrokerError::LeaderNotAvailable {
                        topic: "(controller)".into(),
                        partition: 0,
                    }
                }
                other => BrokerError::Internal(other.to_string()),
            })
    }

    /// A new producer id (this node leads the controller).
    pub(crate) async fn allocate_producer_id(&self) -> Result<i64, BrokerError> {
        let command = cproto::Command {
            command: Some(cproto::command::Command::AllocateProducerIds(
                cproto::AllocateProducerIds { count: 1 },
            )),
        };
        match self.command(command).await?.result {
            Some(cproto::command_reply::Result::FirstProducerId(id)) => Ok(id as i64),
            other => Err(BrokerError::Internal(format!(
                "unexpected controller reply {other:?}"
            ))),
        }
    }

    pub(crate) async fn create_topic(&self, spec: TopicSpec) -> Result<(), BrokerError> {
        validate_user_topic_name(&spec.name).map_err(|err| match err {
            TopicNameError::Internal => BrokerError::ReservedTopicName(spec.name.clone()),
            other => BrokerError::InvalidTopicName(other.to_string()),
        })?;
        let settings: BTreeMap<String, String> = spec.configs.iter().cloned().collect();
        if settings.len() != spec.configs.len() {
            return Err(BrokerError::InvalidConfig("a key is given twice".into()));
        }
        TopicConfig::parse(&settings)?;
        let metadata = self.node().controller().metadata();
        if metadata.cluster_id().is_none() || metadata.nodes().is_empty() {
            // The cluster is still forming (the nodes are registered before its id).
            return Err(BrokerError::LeaderNotAvailable {
                topic: spec.name,
                partition: 0,
            });
        }
        if metadata.topic(&spec.name).is_some() {
            return Err(BrokerError::TopicExists(spec.name));
        }
        let nodes: Vec<u64> = metadata.nodes().keys().copied().collect();
        let partitions = match spec.partitions {
            0 => DEFAULT_PARTITIONS,
            asked => asked,
        };
        if partitions > stave_raft::group::MAX_PARTITIONS {
            return Err(BrokerError::InvalidRequest(format!(
                "a topic has at most {} partitions",
                stave_raft::group::MAX_PARTITIONS
            )));
        }
        let replication_factor = match spec.replication_factor {
            0 => 3.min(nodes.len() as u32),
            asked => asked,
        };
        let rotation = metadata.next_incarnation() as usize;
        let command = crate::placement::create_topic_command(
            &spec.name,
            &nodes,
            (partitions, replication_factor, rotation),
            &spec.configs,
        )?;
        command_result(self.command(command).await?, &spec.name)
    }

    pub(crate) async fn delete_topic(&self, name: String) -> Result<(), BrokerError> {
        if is_internal_topic(&name) {
            return Err(BrokerError::ReservedTopicName(name));
        }
        let command = cproto::Command {
            command: Some(cproto::command::Command::DeleteTopic(cproto::DeleteTopic {
                name: name.clone(),
            })),
        };
        command_result(self.command(command).await?, &name)
    }

    /// Sets topic settings; an empty value resets a key to its default.
    pub(crate) async fn alter_topic(
        &self,
        name: String,
        set: Vec<(String, String)>,
    ) -> Result<(), BrokerError> {
        if is_internal_topic(&name) {
            return Err(BrokerError::ReservedTopicName(name));
        }
        let metadata = self.node().controller().metadata();
        let topic = metadata
            .topic(&name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.clone()))?;
        let mut merged = topic.configs().clone();
        for (key, value) in &set {
            if value.is_empty() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
        TopicConfig::parse(&merged)?;
        let command = cproto::Command {
            command: Some(cproto::command::Command::AlterTopicConfig(
                cproto::AlterTopicConfig {
                    name: name.clone(),
                    set: set
                        .into_iter()
                        .map(|(key, value)| cproto::ConfigEntry { key, value })
                        .collect(),
                },
            )),
        };
        command_result(self.command(command).await?, &name)
    }

    /// Partitions of `topic` with replicas, leaders, in-sync replicas and problems.
    pub(crate) async fn partitions_of(
        &self,
        metadata: &ClusterMetadata,
        name: &str,
    ) -> Vec<PartitionState> {
        let Some(topic) = metadata.topic(name) else {
            return Vec::new();
        };
        let leaderships = self.leaderships().await;
        topic
            .partitions()
            .map(|(partition, replicas)| {
                let group = topic.group_id(partition);
                let leader = leaderships.leaders.get(&group);
                PartitionState {
                    partition,
                    leader: leader.map(|l| l.node),
                    replicas: replicas.to_vec(),
                    in_sync: leader.map(|l| l.in_sync.clone()).unwrap_or_default(),
                    dedupe_window_effective_ms: leader.and_then(|l| l.note).map(|since| {
                        u64::try_from(crate::consumer_group::now_ms().saturating_sub(since))
                            .unwrap_or(0)
                    }),
                    problems: leaderships
                        .problems
                        .get(&group)
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The topics asked for, or every user topic when none is.
    pub(crate) fn topic_names(
        &self,
        metadata: &ClusterMetadata,
        asked: Vec<String>,
    ) -> Vec<String> {
        if !asked.is_empty() {
            return asked;
        }
        metadata
            .topics()
            .keys()
            .filter(|name| !is_internal_topic(name))
            .cloned()
            .collect()
    }
}

/// A controller command's reply as this API's result.
pub(crate) fn command_result(reply: cproto::CommandReply, name: &str) -> Result<(), BrokerError> {
    use cproto::command_reply::Result as R;
    match reply.result {
        Some(R::Error(error)) => Err(match cproto::ErrorCode::try_from(error.code) {
            Ok(cproto::ErrorCode::TopicExists) => BrokerError::TopicExists(name.to_string()),
            Ok(cproto::ErrorCode::UnknownTopic) => BrokerError::UnknownTopic(name.to_string()),
            _ => BrokerError::InvalidRequest(error.message),
        }),
        Some(_) => Ok(()),
        None => Err(BrokerError::Internal("an empty controller reply".into())),
    }
}

//! [`Admin`]: topics (create, delete, describe, alter config), offsets and the cluster's
//! state. Requests go to any node (the node forwards to the controller) and retry "no leader
//! yet" and restarting nodes within the client's `retry_timeout`.
//!
//! A create retried after an answer was lost may find its own topic: TOPIC_EXISTS after a
//! retry counts as success, and so does UNKNOWN_TOPIC for a retried delete.

use std::time::Duration;

use stave_proto::v1 as proto;
use stave_proto::v1::ErrorCode;
use tokio::time::Instant;

use crate::client::Client;
use crate::config::StartPosition;
use crate::error::ClientError;
use crate::metadata::{ClusterMetadata, PartitionInfo};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// 0: the broker's default (3).
    pub partitions: u32,
    /// 0: the smaller of 3 and the node count.
    pub replication_factor: u32,
    /// Topic settings (`retention.ms`, `segment.bytes`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: u32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 0,
            configs: Vec::new(),
        }
    }

    pub fn replication_factor(mut self, replication_factor: u32) -> NewTopic {
        self.replication_factor = replication_factor;
        self
    }

    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A topic as DescribeTopics reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
    /// Every setting, defaults included, sorted by key.
    pub configs: Vec<(String, String)>,
}

impl TopicDescription {
    /// The number of replicas of each partition (of the first; they are all alike).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// Administers topics and inspects the cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    pub(crate) client: Client,
}

impl Client {
    /// Topics, the cluster and consumer groups, through any node.
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }
}

impl Admin {
    pub(crate) fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// Creates `topic`. Fails with the broker's code: TOPIC_EXISTS, INVALID_TOPIC_NAME,
    /// RESERVED_TOPIC_NAME, INVALID_CONFIG, NOT_ENOUGH_NODES.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<(), ClientError> {
        let what = format!("create topic {:?}", topic.name);
        let spec = proto::TopicSpec {
            name: topic.name.clone(),
            partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: config_entries(&topic.configs),
        };
        let mut retried = false;
        let client = &self.client;
        let result = client
            .call_any(&what, |addr, mut node| {
                let request = proto::CreateTopicsRequest {
                    topics: vec![spec.clone()],
                };
                let first = !std::mem::replace(&mut retried, true);
                let name = spec.name.clone();
                async move {
                    let response = client.unary(&addr, node.create_topics(request)).await?;
                    match topic_result(response.results, &name) {
                        Err(err) if !first && err.code() == Some(ErrorCode::TopicExists) => Ok(()),
                        other => other,
                    }
                }
            })
            .await;
        if result.is_ok() {
            let _ = client.refresh_metadata().await;
        }
        result
    }

    /// Deletes `name` and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let what = format!("delete topic {name:?}");
        let mut retried = false;
        let client = &self.client;
        let result = client
            .call_any(&what, |addr, mut node| {
                let request = proto::DeleteTopicsRequest {
                    names: vec![name.to_string()],
                };
                let first = !std::mem::replace(&mut retried, true);
                async move {
                    let response = client.unary(&addr, node.delete_topics(request)).await?;
                    match topic_result(response.results, name) {
                        Err(err) if !first && err.code() == Some(ErrorCode::UnknownTopic) => Ok(()),
                        other => other,
                    }
                }
            })
            .await;
        if result.is_ok() {
            let _ = client.refresh_metadata().await;
        }
        result
    }

    /// Describes `names` (every topic when empty, internal ones excluded).
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let client = &self.client;
        let response = client
            .call_any("describe topics", |addr, mut node| {
                let request = proto::DescribeTopicsRequest {
                    names: names.iter().map(|n| n.to_string()).collect(),
                };
                async move { client.unary(&addr, node.describe_topics(request)).await }
            })
            .await?;
        let mut topics = Vec::with_capacity(response.topics.len());
        for topic in response.topics {
            if let Some(err) = ClientError::from_proto(topic.error) {
                if err.code() == Some(ErrorCode::UnknownTopic) {
                    return Err(ClientError::UnknownTopic { topic: topic.name });
                }
                return Err(err);
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .into_iter()
                .map(PartitionInfo::from)
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let mut configs: Vec<(String, String)> = topic
                .configs
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect();
            configs.sort();
            topics.push(TopicDescription {
                name: topic.name,
                partitions,
                configs,
            });
        }
        Ok(topics)
    }

    /// Describes one topic ([`ClientError::UnknownTopic`] if there is none).
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        let mut topics = self.describe_topics(&[name]).await?;
        match topics.iter().position(|t| t.name == name) {
            Some(index) => Ok(topics.swap_remove(index)),
            None => Err(ClientError::UnknownTopic {
                topic: name.to_string(),
            }),
        }
    }

    /// The names of every topic (internal ones excluded), sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let metadata = self.cluster().await?;
        Ok(metadata.topics.keys().cloned().collect())
    }

    /// Sets topic settings; an empty value resets a key to its default.
    pub async fn alter_topic_config(
        &self,
        name: &str,
        set: &[(String, String)],
    ) -> Result<(), ClientError> {
        let what = format!("alter the config of topic {name:?}");
        let client = &self.client;
        client
            .call_any(&what, |addr, mut node| {
                let request = proto::AlterTopicConfigRequest {
                    name: name.to_string(),
                    set: config_entries(set),
                };
                async move {
                    let response = client
                        .unary(&addr, node.alter_topic_config(request))
                        .await?;
                    ClientError::check(response.error)
                }
            })
            .await
    }

    /// Fresh metadata: nodes, the controller, topics, partitions, leaders and in-sync replicas.
    pub async fn cluster(&self) -> Result<ClusterMetadata, ClientError> {
        let client = &self.client;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            match client.refresh_metadata().await {
                Ok(metadata) => return Ok(ClusterMetadata::clone(&metadata)),
                Err(err) if err.is_retriable() => {
                    let pause = client.config().backoff(attempt);
                    if start.elapsed() + pause > client.config().retry_timeout {
                        return Err(ClientError::Timeout {
                            what: "read the cluster metadata".into(),
                            elapsed: start.elapsed(),
                            last: Some(Box::new(err)),
                        });
                    }
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The offset `position` names in `topic`/`partition`: the log start, the high
    /// watermark, or the first record at or after a timestamp.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        position: StartPosition,
    ) -> Result<u64, ClientError> {
        self.client
            .resolve_position(topic, partition, position)
            .await
    }

    /// Waits until every partition of `topic` has a leader (after a create), at most
    /// `timeout`.
    pub async fn wait_for_leaders(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let metadata = self.cluster().await?;
            let ready = metadata.topic(topic).is_some_and(|t| {
                !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader.is_some())
            });
            if ready {
                return Ok(());
            }
            let pause = self.client.config().backoff(attempt);
            if start.elapsed() + pause > timeout {
                return Err(ClientError::Timeout {
                    what: format!("wait for leaders of topic {topic:?}"),
                    elapsed: start.elapsed(),
                    last: None,
                });
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}

fn config_entries(configs: &[(String, String)]) -> Vec<proto::ConfigEntry> {
    configs
        .iter()
        .map(|(key, value)| proto::ConfigEntry {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// The outcome for `name` among a create or delete's per-topic results.
fn topic_result(results: Vec<proto::TopicResult>, name: &str) -> Result<(), ClientError> {
    let Some(result) = results.into_iter().find(|r| r.name == name) else {
        return Err(ClientError::Broker {
            code: ErrorCode::Internal,
            message: format!("the answer has no result for topic {name:?}"),
            leader_id: None,
            leader_addr: None,
        });
    };
    ClientError::check(result.error)
}

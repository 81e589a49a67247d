//! [`ClusterMetadata`] as the prost `Metadata` (the controller's snapshot, and what the broker
//! can answer from), and back. The encoding is canonical: nodes by id, topics by name, configs
//! by key, so equal metadata encodes to equal bytes on every replica.
//!
//! Decoding checks what applying commands guarantees, so a damaged or foreign snapshot is
//! refused instead of installed.

use std::collections::{BTreeMap, BTreeSet};

use stave_proto::internal::controller as proto;

use super::metadata::{ClusterMetadata, INCARNATION_MAX, PRODUCER_ID_MAX, TopicMetadata};
use super::security::SecurityMetadata;
use super::topic_name::{TopicNameError, validate_topic_name};

/// Why a `Metadata` is not valid cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    #[error("node {node} is listed twice")]
    DuplicateNode { node: u64 },
    #[error("topic {name:?} is listed twice")]
    DuplicateTopic { name: String },
    #[error("topic {name:?} has an invalid name")]
    TopicName {
        name: String,
        #[source]
        source: TopicNameError,
    },
    #[error("topic {name:?} lists partition {partition} at position {position}")]
    PartitionOrder {
        name: String,
        partition: u32,
        position: u32,
    },
    #[error("topic {name:?} has incarnation {incarnation}, outside [1, {next_incarnation})")]
    Incarnation {
        name: String,
        incarnation: u64,
        next_incarnation: u64,
    },
    #[error("incarnation {incarnation} belongs to two topics")]
    DuplicateIncarnation { incarnation: u64 },
    #[error("topic {name:?} has config key {key:?} twice, or an empty one")]
    ConfigKey { name: String, key: String },
    #[error("next incarnation {next_incarnation} is outside [1, {max}]", max = INCARNATION_MAX + 1)]
    NextIncarnation { next_incarnation: u64 },
    #[error("next producer id {next_producer_id} is outside [1, {max}]", max = PRODUCER_ID_MAX + 1)]
    NextProducerId { next_producer_id: u64 },
    #[error("users and ACLs: {0}")]
    Security(String),
}

impl From<&ClusterMetadata> for proto::Metadata {
    fn from(metadata: &ClusterMetadata) -> Self {
        let (users, acls, security_generation) = metadata.security.to_proto();
        proto::Metadata {
            cluster_id: metadata.cluster_id.clone().unwrap_or_default(),
            nodes: metadata
                .nodes
                .iter()
                .map(|(&id, addr)| proto::Node {
                    id,
                    addr: addr.clone(),
                })
                .collect(),
            topics: metadata
                .topics
                .iter()
                .map(|(name, topic)| topic_to_proto(name, topic))
                .collect(),
            next_incarnation: metadata.next_incarnation,
            next_producer_id: metadata.next_producer_id,
            users,
            acls,
            security_generation,
        }
    }
}

fn topic_to_proto(name: &str, topic: &TopicMetadata) -> proto::Topic {
    proto::Topic {
        name: name.to_owned(),
        incarnation: topic.incarnation,
        partitions: topic
            .partitions()
            .map(|(partition, replicas)| proto::Partition {
                partition,
                replicas: replicas.to_vec(),
            })
            .collect(),
        configs: topic
            .configs
            .iter()
            .map(|(key, value)| proto::ConfigEntry {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        reassigned: topic.reassigned.iter().copied().collect(),
    }
}

impl TryFrom<proto::Metadata> for ClusterMetadata {
    type Error = MetadataError;

    fn try_from(metadata: proto::Metadata) -> Result<Self, Self::Error> {
        let proto::Metadata {
            cluster_id,
            nodes: node_list,
            topics: topic_list,
            next_incarnation,
            next_producer_id,
            users,
            acls,
            security_generation,
        } = metadata;
        let security = SecurityMetadata::from_proto(users, acls, security_generation)
            .map_err(MetadataError::Security)?;
        if !(1..=INCARNATION_MAX + 1).contains(&next_incarnation) {
            return Err(MetadataError::NextIncarnation { next_incarnation });
        }
        if !(1..=PRODUCER_ID_MAX + 1).contains(&next_producer_id) {
            return Err(MetadataError::NextProducerId { next_producer_id });
        }
        let mut nodes = BTreeMap::new();
        for node in node_list {
            if nodes.insert(node.id, node.addr).is_some() {
                return Err(MetadataError::DuplicateNode { node: node.id });
            }
        }
        let mut topics = BTreeMap::new();
        let mut incarnations = BTreeSet::new();
        for topic in topic_list {
            let (name, topic) = topic_from_proto(topic, next_incarnation)?;
            if !incarnations.insert(topic.incarnation) {
                return Err(MetadataError::DuplicateIncarnation {
                    incarnation: topic.incarnation,
                });
            }
            if topics.contains_key(&name) {
                return Err(MetadataError::DuplicateTopic { name });
            }
            topics.insert(name, topic);
        }
        Ok(ClusterMetadata {
            cluster_id: (!cluster_id.is_empty()).then_some(cluster_id),
            nodes,
            topics,
            next_incarnation,
            next_producer_id,
            security,
        })
    }
}

fn topic_from_proto(
    topic: proto::Topic,
    next_incarnation: u64,
) -> Result<(String, TopicMetadata), MetadataError> {
    let proto::Topic {
        name,
        incarnation,
        partitions: partition_list,
        configs: config_list,
        reassigned,
    } = topic;
    if let Err(source) = validate_topic_name(&name) {
        return Err(MetadataError::TopicName { name, source });
    }
    if incarnation == 0 || incarnation >= next_incarnation {
        return Err(MetadataError::Incarnation {
            name,
            incarnation,
            next_incarnation,
        });
    }
    let mut partitions = Vec::with_capacity(partition_list.len());
    for (position, partition) in (0u32..).zip(partition_list) {
        if partition.partition != position {
            return Err(MetadataError::PartitionOrder {
                name,
                partition: partition.partition,
                position,
            });
        }
        partitions.push(partition.replicas);
    }
    let mut configs = BTreeMap::new();
    for entry in config_list {
        if entry.key.is_empty() || configs.contains_key(&entry.key) {
            return Err(MetadataError::ConfigKey {
                name,
                key: entry.key,
            });
        }
        configs.insert(entry.key, entry.value);
    }
    let reassigned = reassigned
        .into_iter()
        .filter(|partition| (*partition as usize) < partitions.len())
        .collect();
    let topic = TopicMetadata {
        incarnation,
        partitions,
        configs,
        reassigned,
    };
    Ok((name, topic))
}

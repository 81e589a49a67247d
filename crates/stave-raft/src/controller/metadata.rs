//! [`ClusterMetadata`]: what the controller group agrees on (nodes, topics, partition replicas,
//! configs, the next incarnation and producer id), and how a command changes it.
//!
//! Applying a command is deterministic and never fails: every replica applies the same
//! commands in the same order and must reach the same metadata, so a command that cannot apply
//! (the topic exists, an unknown topic, a bad partition layout, a second InitCluster) answers a
//! `CommandError` and changes nothing. Each command is first validated against the metadata
//! (a [`Change`] or a rejection), then committed; only commit mutates.
//!
//! Invariants: `next_incarnation` is above every topic's incarnation and never goes back (a
//! deleted and recreated topic gets a new one); `next_producer_id` only grows, so allocated
//! producer id ranges never overlap; partition `i` of a topic is at index `i`, with at least
//! one replica, each a registered node, none twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stave_proto::internal::controller as proto;
use stave_proto::internal::controller::ErrorCode;
use stave_proto::internal::controller::command::Command as Kind;
use stave_proto::internal::controller::command_reply::Result as Outcome;

use super::security::{SecurityChange, SecurityMetadata};
use super::topic_name::validate_topic_name;
use crate::group::{MAX_PARTITIONS, RaftGroupId, partition_group_id};

/// The internal topic holding consumer groups' committed offsets (docs/architecture.md,
/// "Consumer groups").
pub const OFFSETS_TOPIC: &str = "__offsets";
/// `__offsets` has this many partitions; a group's is `murmur2(group) % 16`.
pub const OFFSETS_PARTITION_COUNT: u32 = 16;
/// The most producer ids one AllocateProducerIds may ask for.
pub const PRODUCER_IDS_COUNT_MAX: u64 = 1 << 20;
/// Frames store producer ids as `i64` (-1: none): the controller never hands out more.
pub const PRODUCER_ID_MAX: u64 = i64::MAX as u64;
/// Incarnations share a group id with 20 bits of partition number ([`partition_group_id`]).
pub const INCARNATION_MAX: u64 = u64::MAX / MAX_PARTITIONS as u64;

/// The cluster metadata. Cheap to share (the controller hands out `Arc`s of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub(super) cluster_id: Option<String>,
    /// Node id → the address of its gRPC listener (`host:port`).
    pub(super) nodes: BTreeMap<u64, String>,
    pub(super) topics: BTreeMap<String, TopicMetadata>,
    pub(super) next_incarnation: u64,
    pub(super) next_producer_id: u64,
    /// Users and ACLs.
    pub(super) security: SecurityMetadata,
}

/// One topic: its incarnation, its partitions' replicas and its configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub(super) incarnation: u64,
    /// The replicas of partition `i` at index `i`, in preference order (the first one
    /// initializes the partition's Raft group and is its preferred leader).
    pub(super) partitions: Vec<Vec<u64>>,
    /// Raw `key=value` settings; the broker parses them into a typed config at its edge.
    pub(super) configs: BTreeMap<String, String>,
    /// Partitions whose replicas changed since creation (their groups exist already).
    pub(super) reassigned: std::collections::BTreeSet<u32>,
}

impl Default for ClusterMetadata {
    fn default() -> Self {
        ClusterMetadata {
            cluster_id: None,
            nodes: BTreeMap::new(),
            topics: BTreeMap::new(),
            next_incarnation: 1,
            next_producer_id: 1,
            security: SecurityMetadata::default(),
        }
    }
}

impl ClusterMetadata {
    /// The cluster id, once InitCluster is applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Registered nodes: id → address.
    pub fn nodes(&self) -> &BTreeMap<u64, String> {
        &self.nodes
    }

    pub fn node_addr(&self, node: u64) -> Option<&str> {
        self.nodes.get(&node).map(String::as_str)
    }

    /// Topics by name.
    pub fn topics(&self) -> &BTreeMap<String, TopicMetadata> {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// The incarnation the next created topic gets.
    pub fn next_incarnation(&self) -> u64 {
        self.next_incarnation
    }

    /// The first producer id of the next allocated range.
    pub fn next_producer_id(&self) -> u64 {
        self.next_producer_id
    }

    /// Users and ACLs.
    pub fn security(&self) -> &SecurityMetadata {
        &self.security
    }

    /// Applies `command` to shared metadata: clones it only when the command changes something.
    pub(crate) fn apply(
        metadata: &mut Arc<ClusterMetadata>,
        command: proto::Command,
    ) -> proto::CommandReply {
        let outcome = match metadata.validate(command) {
            Ok(change) => Arc::make_mut(metadata).commit(change),
            Err(error) => Outcome::Error(error),
        };
        proto::CommandReply {
            result: Some(outcome),
        }
    }

    /// What `command` would change, or why it cannot apply. Reads only.
    fn validate(&self, command: proto::Command) -> Result<Change, proto::CommandError> {
        match command.command {
            None => Err(rejection(ErrorCode::Invalid, "empty command")),
            Some(Kind::InitCluster(init)) => self.validate_init(init),
            Some(Kind::RegisterNode(register)) => validate_register(register),
            Some(Kind::CreateTopic(create)) => self.validate_create(create),
            Some(Kind::DeleteTopic(delete)) => {
                self.existing_topic(&delete.name)?;
                Ok(Change::DeleteTopic { name: delete.name })
            }
            Some(Kind::AlterTopicConfig(alter)) => {
                self.existing_topic(&alter.name)?;
                let set = config_map(alter.set)?;
                Ok(Change::AlterTopicConfig {
                    name: alter.name,
                    set,
                })
            }
            Some(Kind::AllocateProducerIds(allocate)) => self.validate_allocate(allocate.count),
            Some(Kind::SetReplicas(set)) => self.validate_set_replicas(set),
            Some(Kind::CreateUser(create)) => Ok(self
                .security
                .validate_create_user(create)?
                .map_or(Change::Nothing, Change::Security)),
            Some(Kind::DeleteUser(delete)) => Ok(Change::Security(
                self.security.validate_delete_user(delete)?,
            )),
            Some(Kind::AddAcl(add)) => {
                Ok(Change::Security(self.security.validate_add_acl(add.entry)?))
            }
            Some(Kind::RemoveAcl(remove)) => Ok(Change::Security(
                self.security.validate_remove_acl(remove.entry)?,
            )),
        }
    }

    fn validate_init(&self, init: proto::InitCluster) -> Result<Change, proto::CommandError> {
        if let Some(existing) = &self.cluster_id {
            let message = format!("the cluster is already initialized as {existing:?}");
            return Err(rejection(ErrorCode::AlreadyInitialized, message));
        }
        if init.cluster_id.is_empty() {
            return Err(rejection(ErrorCode::Invalid, "an empty cluster id"));
        }
        Ok(Change::InitCluster {
            cluster_id: init.cluster_id,
        })
    }

    fn validate_create(&self, create: proto::CreateTopic) -> Result<Change, proto::CommandError> {
        validate_topic_name(&create.name)
            .map_err(|err| rejection(ErrorCode::Invalid, err.to_string()))?;
        if self.topics.contains_key(&create.name) {
            let message = format!("topic {:?} already exists", create.name);
            return Err(rejection(ErrorCode::TopicExists, message));
        }
        if self.next_incarnation > INCARNATION_MAX {
            return Err(rejection(
                ErrorCode::Invalid,
                "topic incarnations are exhausted",
            ));
        }
        if create.partitions.is_empty() || create.partitions.len() > MAX_PARTITIONS as usize {
            let message = format!(
                "a topic has 1 to {MAX_PARTITIONS} partitions, not {}",
                create.partitions.len()
            );
            return Err(rejection(ErrorCode::Invalid, message));
        }
        let mut partitions = Vec::with_capacity(create.partitions.len());
        for (index, partition) in (0u32..).zip(create.partitions) {
            if partition.partition != index {
                let message = format!(
                    "partition {} is listed at position {index}",
                    partition.partition
                );
                return Err(rejection(ErrorCode::Invalid, message));
            }
            self.check_replicas(index, &partition.replicas)?;
            partitions.push(partition.replicas);
        }
        Ok(Change::CreateTopic {
            name: create.name,
            topic: TopicMetadata {
                incarnation: self.next_incarnation,
                partitions,
                configs: config_map(create.configs)?,
                reassigned: Default::default(),
            },
        })
    }

    fn validate_allocate(&self, count: u64) -> Result<Change, proto::CommandError> {
        if count == 0 || count > PRODUCER_IDS_COUNT_MAX {
            let message =
                format!("allocate 1 to {PRODUCER_IDS_COUNT_MAX} producer ids, not {count}");
            return Err(rejection(ErrorCode::Invalid, message));
        }
        let last = self.next_producer_id.checked_add(count - 1);
        if last.is_none_or(|last| last > PRODUCER_ID_MAX) {
            return Err(rejection(ErrorCode::Invalid, "producer ids are exhausted"));
        }
        Ok(Change::AllocateProducerIds { count })
    }

    fn validate_set_replicas(
        &self,
        set: proto::SetReplicas,
    ) -> Result<Change, proto::CommandError> {
        let topic = self.existing_topic(&set.name)?;
        if topic.incarnation != set.incarnation {
            let message = format!(
                "topic {:?} is incarnation {}, not {}",
                set.name, topic.incarnation, set.incarnation
            );
            return Err(rejection(ErrorCode::UnknownTopic, message));
        }
        if set.partition >= topic.partition_count() {
            let message = format!(
                "topic {:?} has {} partitions, no partition {}",
                set.name,
                topic.partition_count(),
                set.partition
            );
            return Err(rejection(ErrorCode::Invalid, message));
        }
        self.check_replicas(set.partition, &set.replicas)?;
        Ok(Change::SetReplicas {
            name: set.name,
            partition: set.partition,
            replicas: set.replicas,
        })
    }

    fn existing_topic(&self, name: &str) -> Result<&TopicMetadata, proto::CommandError> {
        self.topics.get(name).ok_or_else(|| {
            rejection(
                ErrorCode::UnknownTopic,
                format!("topic {name:?} does not exist"),
            )
        })
    }

    /// A partition's replicas: at least one, each a registered node, none twice.
    fn check_replicas(&self, partition: u32, replicas: &[u64]) -> Result<(), proto::CommandError> {
        if replicas.is_empty() {
            let message = format!("partition {partition} has no replicas");
            return Err(rejection(ErrorCode::Invalid, message));
        }
        let mut seen = BTreeSet::new();
        for &node in replicas {
            if !seen.insert(node) {
                let message = format!("node {node} is twice a replica of partition {partition}");
                return Err(rejection(ErrorCode::Invalid, message));
            }
            if !self.nodes.contains_key(&node) {
                let message =
                    format!("replica {node} of partition {partition} is not a registered node");
                return Err(rejection(ErrorCode::Invalid, message));
            }
        }
        Ok(())
    }

    /// Makes a validated change; its outcome is the command's reply.
    fn commit(&mut self, change: Change) -> Outcome {
        match change {
            Change::InitCluster { cluster_id } => self.cluster_id = Some(cluster_id),
            Change::RegisterNode { node, addr } => {
                self.nodes.insert(node, addr);
            }
            Change::CreateTopic { name, topic } => {
                let incarnation = topic.incarnation;
                debug_assert_eq!(incarnation, self.next_incarnation);
                self.next_incarnation += 1;
                self.topics.insert(name, topic);
                return Outcome::Incarnation(incarnation);
            }
            Change::DeleteTopic { name } => {
                self.topics.remove(&name);
            }
            Change::AlterTopicConfig { name, set } => {
                let topic = self
                    .topics
                    .get_mut(&name)
                    .expect("validated: the topic exists");
                for (key, value) in set {
                    if value.is_empty() {
                        topic.configs.remove(&key);
                    } else {
                        topic.configs.insert(key, value);
                    }
                }
            }
            Change::AllocateProducerIds { count } => {
                let first = self.next_producer_id;
                self.next_producer_id += count;
                return Outcome::FirstProducerId(first);
            }
            Change::SetReplicas {
                name,
                partition,
                replicas,
            } => {
                let topic = self
                    .topics
                    .get_mut(&name)
                    .expect("validated: the topic exists");
                topic.partitions[partition as usize] = replicas;
                topic.reassigned.insert(partition);
            }
            Change::Security(change) => self.security.commit(change),
            Change::Nothing => return Outcome::Ok(false),
        }
        Outcome::Ok(true)
    }
}

impl TopicMetadata {
    /// Unique for the cluster's lifetime: part of the partitions' group ids and directories.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The replicas of `partition`, in preference order.
    pub fn replicas(&self, partition: u32) -> Option<&[u64]> {
        self.partitions.get(partition as usize).map(Vec::as_slice)
    }

    /// Every partition with its replicas, in partition order.
    pub fn partitions(&self) -> impl Iterator<Item = (u32, &[u64])> {
        (0u32..).zip(self.partitions.iter().map(Vec::as_slice))
    }

    /// The Raft group id of `partition`.
    pub fn group_id(&self, partition: u32) -> RaftGroupId {
        partition_group_id(self.incarnation, partition)
    }

    /// Settings by key.
    pub fn configs(&self) -> &BTreeMap<String, String> {
        &self.configs
    }

    /// Whether `partition`'s replicas changed since the topic was created. Only a partition
    /// never reassigned may be initialized, by the first replica of its assignment.
    pub fn is_reassigned(&self, partition: u32) -> bool {
        self.reassigned.contains(&partition)
    }
}

/// A validated command: applying it cannot fail.
#[derive(Debug)]
enum Change {
    InitCluster {
        cluster_id: String,
    },
    RegisterNode {
        node: u64,
        addr: String,
    },
    CreateTopic {
        name: String,
        topic: TopicMetadata,
    },
    DeleteTopic {
        name: String,
    },
    /// An empty value removes the key.
    AlterTopicConfig {
        name: String,
        set: BTreeMap<String, String>,
    },
    AllocateProducerIds {
        count: u64,
    },
    SetReplicas {
        name: String,
        partition: u32,
        replicas: Vec<u64>,
    },
    /// Users and ACLs.
    Security(SecurityChange),
    /// A command that applies and changes nothing (a bootstrap user when users exist).
    Nothing,
}

fn validate_register(register: proto::RegisterNode) -> Result<Change, proto::CommandError> {
    let Some(node) = register.node else {
        return Err(rejection(ErrorCode::Invalid, "RegisterNode without a node"));
    };
    if node.addr.is_empty() {
        let message = format!("node {} has an empty address", node.id);
        return Err(rejection(ErrorCode::Invalid, message));
    }
    Ok(Change::RegisterNode {
        node: node.id,
        addr: node.addr,
    })
}

/// Config entries as a map: keys non-empty, none twice.
pub(super) fn config_map(
    entries: Vec<proto::ConfigEntry>,
) -> Result<BTreeMap<String, String>, proto::CommandError> {
    let mut configs = BTreeMap::new();
    for entry in entries {
        if entry.key.is_empty() {
            return Err(rejection(
                ErrorCode::Invalid,
                "a config entry with an empty key",
            ));
        }
        if configs.contains_key(&entry.key) {
            let message = format!("config key {:?} is given twice", entry.key);
            return Err(rejection(ErrorCode::Invalid, message));
        }
        configs.insert(entry.key, entry.value);
    }
    Ok(configs)
}

fn rejection(code: ErrorCode, message: impl Into<String>) -> proto::CommandError {
    proto::CommandError {
        code: code as i32,
        message: message.into(),
    }
}

//! The node's periodic work, every `retention_check_ms`: retention on every partition
//! replica here, compaction of `__offsets`, and expiry of silent consumer-group members.
//! Retention moves a replica's log start as its topic allows: a snapshot, then a purge of
//! the log it covers. Every replica does this on its own log, leader and followers alike
//! (openraft purges only the log of the replica it is asked on); a follower that falls
//! behind its leader's log start catches up from the leader's snapshot.

use std::sync::Arc;
use std::time::Duration;

use stave_log::LogIndex;
use stave_raft::controller::{ClusterMetadata, OFFSETS_TOPIC, TopicMetadata};

use crate::broker::Broker;
use crate::consumer_group::{SESSION_TIMEOUT_MS, now_ms};
use crate::topic_config::topic_config;

/// Runs the periodic work until the task is dropped.
pub async fn housekeeping_loop(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config().retention_check_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        apply_retention(&broker).await;
        compact_offsets(&broker).await;
        expire_members(&broker);
        broker.drop_id_tables_not_led();
    }
}

/// An `__offsets` partition is compacted once this many entries follow its last snapshot.
const COMPACT_AFTER_ENTRIES: u64 = 1000;

/// One retention pass over the partition replicas on this node. A partition that fails is
/// reported and skipped; the others still get their pass.
pub async fn apply_retention(broker: &Broker) {
    let node = broker.node();
    let metadata = node.controller().metadata();
    for topic in metadata.topics().values() {
        let policy = topic_config(topic).retention();
        if policy.retention_ms.is_none() && policy.retention_bytes.is_none() {
            continue;
        }
        for (partition, _) in topic.partitions() {
            let Some(replica) = node.partition(topic.group_id(partition)) else {
                continue;
            };
            let name = topic_name(&metadata, topic);
            match replica.retain(policy).await {
                Ok(Some(upto)) => {
                    tracing::info!(
                        topic = name,
                        partition,
                        upto = upto.0,
                        "retention moved the log start"
                    )
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(topic = name, partition, %err, "retention pass failed"),
            }
        }
    }
}

fn topic_name<'a>(metadata: &'a ClusterMetadata, topic: &TopicMetadata) -> &'a str {
    metadata
        .topics()
        .iter()
        .find(|(_, t)| t.incarnation() == topic.incarnation())
        .map_or("?", |(name, _)| name.as_str())
}

/// Expires the members of the consumer groups this node coordinates that went silent, so
/// their partitions move on even when nobody else heartbeats; drops groups left empty.
pub fn expire_members(broker: &Broker) {
    let now = now_ms();
    let mut consumer_groups = broker.consumer_groups_lock();
    for consumer_group in consumer_groups.values_mut() {
        consumer_group.expire(now, SESSION_TIMEOUT_MS);
    }
    consumer_groups.retain(|_, consumer_group| !consumer_group.is_empty());
}

/// Compacts the `__offsets` partition replicas on this node, leader and followers alike
/// (each its own log): once enough entries follow the last snapshot, a snapshot (the whole
/// table), then a purge of what it covers. A partition that fails is reported and skipped.
pub async fn compact_offsets(broker: &Broker) {
    let metadata = broker.node().controller().metadata();
    let Some(topic) = metadata.topic(OFFSETS_TOPIC) else {
        return;
    };
    for (partition, _) in topic.partitions() {
        let Some(replica) = broker.node().partition(topic.group_id(partition)) else {
            continue;
        };
        let (applied, snapshot) = replica.applied_and_snapshot();
        let since_snapshot = applied.0.saturating_sub(snapshot.map_or(0, |s| s.0));
        if since_snapshot < COMPACT_AFTER_ENTRIES {
            continue;
        }
        let compacted = replica
            .compact_through(LogIndex(applied.0), "offsets snapshot")
            .await;
        if let Err(err) = compacted {
            tracing::warn!(partition, %err, "__offsets compaction failed");
        }
    }
}

//! The node's periodic work, every `retention_check_ms`: retention on every partition
//! replica here, compaction of `__offsets`, and expiry of silent consumer-group members.
//! Retention moves a replica's log start as its topic allows: a snapshot, then a purge of
//! the log it covers. Every replica does this on its own log, leader and followers alike
//! (openraft purges only the log of the replica it is asked on); a follower that falls
//! behind its leader's log start catches up from the leader's snapshot.

use std::sync::Arc;
use std::time::Duration;

use stave_raft::controller::{ClusterMetadata, TopicMetadata};

use crate::broker::Broker;
use crate::consumer_group;
use crate::topic_config::topic_config;

/// Runs the periodic work until the task is dropped.
pub async fn housekeeping_loop(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config().retention_check_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        apply_retention(&broker).await;
        consumer_group::compact(&broker).await;
        consumer_group::expire_members(&broker);
    }
}

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

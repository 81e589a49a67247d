//! Topic configs (typed at this edge, stored as strings in the controller), replica
//! assignment for new topics, and retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stave_log::{FlushPolicy, LogConfig, RetentionPolicy};
use stave_raft::controller::TopicMetadata;

use crate::error::BrokerError;
use crate::service::Broker;

/// A topic's settings, with Kafka's names where Kafka has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `retention.ms`: segments whose newest record is older go (-1: kept forever).
    pub retention_ms: Option<u64>,
    /// `retention.bytes`: oldest segments go while the partition is larger (-1: no limit).
    pub retention_bytes: Option<u64>,
    /// `segment.bytes`: a partition rolls to a new segment past this size.
    pub segment_bytes: u64,
    /// `segment.ms`: and past this age.
    pub segment_ms: Option<u64>,
    /// `max.message.bytes`: the largest batch a producer may send.
    pub max_message_bytes: u64,
    /// `flush`: `always` (a batch is acknowledged once synced on a majority), `never`, or
    /// `interval:<ms>`.
    pub flush: FlushPolicy,
}

pub const KEYS: [&str; 6] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "flush",
];

/// `segment.bytes` at least this (a segment holds at least one batch).
const SEGMENT_BYTES_MIN: u64 = 64 << 10;

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            segment_bytes: 128 << 20,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            max_message_bytes: 1 << 20,
            flush: FlushPolicy::Always,
        }
    }
}

fn invalid(key: &str, value: &str, why: &str) -> BrokerError {
    BrokerError::InvalidConfig(format!("{key}={value}: {why}"))
}

/// A size or duration where `-1` means "no limit".
fn limit(key: &str, value: &str) -> Result<Option<u64>, BrokerError> {
    match value.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 0 => Ok(Some(n as u64)),
        _ => Err(invalid(key, value, "expected a non-negative integer or -1")),
    }
}

fn positive(key: &str, value: &str, min: u64) -> Result<u64, BrokerError> {
    match value.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(
            key,
            value,
            &format!("expected an integer of at least {min}"),
        )),
    }
}

fn flush_policy(value: &str) -> Result<FlushPolicy, BrokerError> {
    value
        .parse::<FlushPolicy>()
        .map_err(|err| invalid("flush", value, &err.to_string()))
}

impl TopicConfig {
    /// The config a topic's stored settings describe; unknown keys or bad values are
    /// refused.
    pub fn parse(settings: &BTreeMap<String, String>) -> Result<TopicConfig, BrokerError> {
        let mut config = TopicConfig::default();
        for (key, value) in settings {
            config.set(key, value)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), BrokerError> {
        match key {
            "retention.ms" => self.retention_ms = limit(key, value)?,
            "retention.bytes" => self.retention_bytes = limit(key, value)?,
            "segment.bytes" => self.segment_bytes = positive(key, value, SEGMENT_BYTES_MIN)?,
            "segment.ms" => self.segment_ms = limit(key, value)?,
            "max.message.bytes" => self.max_message_bytes = positive(key, value, 1)?,
            "flush" => self.flush = flush_policy(value)?,
            _ => {
                return Err(BrokerError::InvalidConfig(format!(
                    "unknown topic config {key:?} (known: {})",
                    KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every setting, defaults included, as `key=value` strings.
    pub fn entries(&self) -> Vec<(String, String)> {
        let limit = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
        vec![
            ("retention.ms".into(), limit(self.retention_ms)),
            ("retention.bytes".into(), limit(self.retention_bytes)),
            ("segment.bytes".into(), self.segment_bytes.to_string()),
            ("segment.ms".into(), limit(self.segment_ms)),
            (
                "max.message.bytes".into(),
                self.max_message_bytes.to_string(),
            ),
            ("flush".into(), self.flush.to_string()),
        ]
    }

    pub fn retention(&self) -> RetentionPolicy {
        RetentionPolicy {
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
        }
    }

    /// The log settings of the topic's partitions.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            flush: self.flush,
            retention: self.retention(),
            // The format's bound, not the topic's: `max.message.bytes` can be raised while a
            // replica runs (or differ between nodes' configs), and a follower's log must
            // never refuse a frame its leader accepted. The broker enforces the topic's limit.
            frame_bytes_max: stave_log::frame::FRAME_BYTES_LIMIT,
            ..LogConfig::default()
        }
    }
}

/// A topic's config from its metadata; a stored value that no longer parses falls back to
/// the default for that key (the controller only stores validated settings).
pub fn topic_config(topic: &TopicMetadata) -> TopicConfig {
    let mut config = TopicConfig::default();
    for (key, value) in topic.configs() {
        if let Err(err) = config.set(key, value) {
            tracing::warn!(%err, "ignoring a stored topic setting");
        }
    }
    config
}

/// Replicas for `partitions` partitions over `nodes`, `replication_factor` each: partition
/// `p`'s replicas start at node `(p + rotation) % n`, so partitions (and their first
/// replicas, which become their first leaders) spread over the nodes.
pub fn assign(
    nodes: &[u64],
    partitions: u32,
    replication_factor: u32,
    rotation: usize,
) -> Result<Vec<Vec<u64>>, BrokerError> {
    if replication_factor as usize > nodes.len() {
        return Err(BrokerError::NotEnoughNodes {
            asked: replication_factor,
            nodes: nodes.len(),
        });
    }
    Ok((0..partitions as usize)
        .map(|p| {
            (0..replication_factor as usize)
                .map(|r| nodes[(p + rotation + r) % nodes.len()])
                .collect()
        })
        .collect())
}

/// Moves the log start of the partition replicas on this node as their topics' retention
/// allows: a snapshot, then a purge of the log it covers. Every replica does this on its
/// own log, leader and followers alike (openraft purges only the log of the replica it is
/// asked on); a follower that falls behind its leader's log start catches up from the
/// leader's snapshot.
pub async fn retention_loop(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config().retention_check_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        apply_retention(&broker).await;
        crate::groups::compact(&broker).await;
        crate::groups::expire_members(&broker);
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
            match retain(&replica, policy).await {
                Ok(Some(upto)) => {
                    tracing::info!(
                        topic = name,
                        partition,
                        upto,
                        "retention moved the log start"
                    )
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(topic = name, partition, %err, "retention pass failed"),
            }
        }
    }
}

/// Retention on one replica: the index its log start moved to, if it moved.
async fn retain(
    replica: &stave_raft::PartitionReplica,
    policy: RetentionPolicy,
) -> Result<Option<u64>, BrokerError> {
    let point = replica
        .store
        .retention_point(policy)
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    let Some(point) = point else {
        return Ok(None);
    };
    // Only what is applied (committed) can be in a snapshot.
    let (applied, _) = applied_and_snapshot(replica);
    let upto = point.min(applied);
    Ok(purge_through_snapshot(replica, upto, "retention snapshot")
        .await?
        .then_some(upto))
}

/// A replica's applied index and the index its last snapshot covers.
pub(crate) fn applied_and_snapshot(replica: &stave_raft::PartitionReplica) -> (u64, Option<u64>) {
    use openraft::async_runtime::watch::WatchReceiver;
    let metrics = replica.raft.metrics();
    let metrics = metrics.borrow_watched();
    (
        metrics.last_applied.map_or(0, |id| id.index),
        metrics.snapshot.map(|id| id.index),
    )
}

/// Purges this replica's log up to `upto` (applied), first building a snapshot that covers
/// it unless the last one does; false if the snapshot was not built within 10 s.
pub(crate) async fn purge_through_snapshot(
    replica: &stave_raft::PartitionReplica,
    upto: u64,
    what: &'static str,
) -> Result<bool, BrokerError> {
    let internal =
        |e: openraft::error::Fatal<stave_raft::TypeConfig>| BrokerError::Internal(e.to_string());
    let (_, snapshot_at) = applied_and_snapshot(replica);
    if snapshot_at.is_none_or(|at| at < upto) {
        replica.raft.trigger().snapshot().await.map_err(internal)?;
        let built = replica
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.snapshot.is_some_and(|id| id.index >= upto), what)
            .await;
        if built.is_err() {
            return Ok(false);
        }
    }
    replica
        .raft
        .trigger()
        .purge_log(upto)
        .await
        .map_err(internal)?;
    Ok(true)
}

fn topic_name<'a>(
    metadata: &'a stave_raft::controller::ClusterMetadata,
    topic: &TopicMetadata,
) -> &'a str {
    metadata
        .topics()
        .iter()
        .find(|(_, t)| t.incarnation() == topic.incarnation())
        .map_or("?", |(name, _)| name.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_and_refuse_bad_values() {
        let mut settings = BTreeMap::new();
        settings.insert("retention.bytes".to_string(), "1048576".to_string());
        settings.insert("retention.ms".to_string(), "-1".to_string());
        settings.insert("flush".to_string(), "never".to_string());
        let config = TopicConfig::parse(&settings).unwrap();
        assert_eq!(config.retention_bytes, Some(1 << 20));
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.flush, FlushPolicy::Never);

        for (key, value) in [
            ("retention.ms", "soon"),
            ("retention.bytes", "-2"),
            ("segment.bytes", "10"),
            ("flush", "sometimes"),
            ("cleanup.policy", "compact"),
        ] {
            let settings = BTreeMap::from([(key.to_string(), value.to_string())]);
            assert!(
                matches!(
                    TopicConfig::parse(&settings),
                    Err(BrokerError::InvalidConfig(_))
                ),
                "{key}={value} accepted"
            );
        }
    }

    #[test]
    fn entries_round_trip() {
        let config = TopicConfig {
            retention_bytes: Some(4096 * 1024),
            flush: FlushPolicy::Interval(Duration::from_millis(50)),
            ..TopicConfig::default()
        };
        let settings: BTreeMap<String, String> = config.entries().into_iter().collect();
        assert_eq!(TopicConfig::parse(&settings).unwrap(), config);
    }

    #[test]
    fn assignment_spreads_partitions_and_first_replicas() {
        let nodes = [1, 2, 3];
        let replicas = assign(&nodes, 6, 3, 0).unwrap();
        let firsts: Vec<u64> = replicas.iter().map(|r| r[0]).collect();
        assert_eq!(firsts, vec![1, 2, 3, 1, 2, 3]);
        for r in &replicas {
            let mut sorted = r.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "distinct replicas: {r:?}");
        }
        assert!(matches!(
            assign(&nodes, 1, 4, 0),
            Err(BrokerError::NotEnoughNodes { asked: 4, nodes: 3 })
        ));
    }
}

//! Topic configs: typed here, at the edge, and stored as strings in the controller's
//! metadata. Inner code never sees a `key=value` string.

use std::collections::BTreeMap;

use stave_log::{FlushPolicy, LogConfig, RetentionPolicy, SEGMENT_BYTES_MAX};
use stave_raft::controller::TopicMetadata;

use crate::error::BrokerError;

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
    /// `dedupe.window.ms`: how long a Publish record's message id is remembered, so a retry
    /// is answered with the first write (0: off).
    pub dedupe_window_ms: u64,
    /// `dedupe.max.ids`: at most this many ids per partition (the oldest go first).
    pub dedupe_max_ids: usize,
}

pub const KEYS: [&str; 8] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "flush",
    "dedupe.window.ms",
    "dedupe.max.ids",
];

/// `dedupe.max.ids` at most this: 10 million ids (a few hundred MB per partition).
const DEDUPE_MAX_IDS_LIMIT: u64 = 10_000_000;

/// `segment.bytes` at least this (a segment holds at least one batch), and at most the log's
/// [`SEGMENT_BYTES_MAX`] (1 GiB).
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
            dedupe_window_ms: 2 * 60 * 1000,
            dedupe_max_ids: 1_000_000,
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

fn within(key: &str, value: &str, min: u64, max: u64) -> Result<u64, BrokerError> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            value,
            &format!("expected an integer within [{min}, {max}]"),
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
        // A partition whose log refuses its config could never open: refused here, not
        // found by every replica of a topic already created.
        config
            .log_config()
            .validate()
            .map_err(|err| BrokerError::InvalidConfig(err.to_string()))?;
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), BrokerError> {
        match key {
            "retention.ms" => self.retention_ms = limit(key, value)?,
            "retention.bytes" => self.retention_bytes = limit(key, value)?,
            "segment.bytes" => {
                self.segment_bytes = within(key, value, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)?
            }
            "segment.ms" => self.segment_ms = limit(key, value)?,
            "max.message.bytes" => self.max_message_bytes = within(key, value, 1, u64::MAX)?,
            "flush" => self.flush = flush_policy(value)?,
            "dedupe.window.ms" => self.dedupe_window_ms = within(key, value, 0, u64::MAX)?,
            "dedupe.max.ids" => {
                self.dedupe_max_ids = within(key, value, 1, DEDUPE_MAX_IDS_LIMIT)? as usize
            }
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
            ("dedupe.window.ms".into(), self.dedupe_window_ms.to_string()),
            ("dedupe.max.ids".into(), self.dedupe_max_ids.to_string()),
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
            // Past the log's largest segment: every replica would fail to open.
            ("segment.bytes", "1073741825"),
            ("segment.bytes", "18446744073709551615"),
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
            flush: FlushPolicy::Interval(std::time::Duration::from_millis(50)),
            ..TopicConfig::default()
        };
        let settings: BTreeMap<String, String> = config.entries().into_iter().collect();
        assert_eq!(TopicConfig::parse(&settings).unwrap(), config);
    }
}

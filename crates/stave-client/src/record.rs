//! Records as the application sees them: [`ProducerRecord`] to send, [`RecordMetadata`] once it
//! is written, [`ConsumerRecord`] when read back. Keys, values and header values are
//! `Bytes`; a consumer's are sliced from the fetched frame without a copy.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;

pub use stave_log::message_id::MESSAGE_ID_HEADER;

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Shared, so a producer writing many records to one topic clones a pointer, not the name.
    pub topic: Arc<str>,
    /// `None`: by key, or the sticky partition for a keyless record.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the epoch; `None`: when `send` is called.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A keyless record with `value`.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }

    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where a sent record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    /// Milliseconds since the epoch, as the producer stamped it.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

impl ConsumerRecord {
    /// The first header named `key`.
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh message id in UUIDv7 layout (RFC 9562): 48 bits of Unix milliseconds, then 74
/// random bits, so ids sort roughly by creation time and never repeat in practice.
pub fn message_id() -> String {
    stave_log::message_id::uuid_v7(now_ms(), rand::rng().random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_differ() {
        assert_ne!(message_id(), message_id());
        assert_eq!(message_id().len(), 36);
        assert_eq!(&message_id()[14..15], "7");
    }
}

//! Dead letters: a record rejected, or given back after its last allowed delivery, is
//! published by the group's coordinator to `_dlq.{group}.{topic}`, under a message id
//! derived from where it came from, so a second write (after a failover) is dropped.

use std::sync::Arc;

use bytes::Bytes;
use stave_client::ConsumerRecord;
use stave_log::message_id::MESSAGE_ID_HEADER;

use super::dead_letter_topic;
use crate::admin::TopicSpec;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::publish::PublishRecord;

/// How long a dead-letter topic remembers the ids of the letters written to it.
const DEAD_LETTER_DEDUPE_MS: u64 = 3_600_000;

impl Broker {
    /// Writes one dead letter: the record with headers naming where it came from, into
    /// `_dlq.{group}.{topic}` (created if missing), with a message id derived from (group,
    /// topic, partition, offset), so a second write of it (after a failover) is dropped by
    /// the topic's id table. Produce takes records Publish refuses (a timestamp before 1970,
    /// a header without a name): those are mended (the timestamp in `stave-dlq-timestamp`
    /// either way, an unnamed header named `stave-dlq-unnamed`). A letter still refused for
    /// good (too large for the node, say) is written without its key, value and headers,
    /// with `stave-dlq-error` saying why; if even that is refused, the record is let go
    /// (logged): a partition must never stop on a letter that cannot be written.
    pub(super) async fn write_dead_letter(
        &self,
        group: &str,
        record: &ConsumerRecord,
        deliveries: u32,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let topic = dead_letter_topic(group, &record.topic);
        if self.node().controller().metadata().topic(&topic).is_none() {
            let spec = TopicSpec {
                name: topic.clone(),
                partitions: 1,
                replication_factor: 0,
                // A second write of a letter (after a failover redelivered its record) is
                // dropped by id within the dedupe window: an hour, not the default 2 min.
                configs: vec![
                    ("max.message.bytes".into(), (16u64 << 20).to_string()),
                    ("dedupe.window.ms".into(), DEAD_LETTER_DEDUPE_MS.to_string()),
                ],
            };
            match self.create_topic(spec).await {
                Ok(()) | Err(BrokerError::TopicExists(_)) => {}
                Err(err) => return Err(err),
            }
        }
        let whole = dead_letter(group, &topic, record, deliveries, reason, None);
        let why = match self.publish_one(whole).await {
            Err(err) if permanent(&err) => err.to_string(),
            other => return other,
        };
        tracing::warn!(group, %why, "a dead letter of {}/{} offset {} is written without its record", record.topic, record.partition, record.offset);
        let stub = dead_letter(group, &topic, record, deliveries, reason, Some(&why));
        match self.publish_one(stub).await {
            Err(err) if permanent(&err) => {
                tracing::error!(group, %err, "the dead letter of {}/{} offset {} cannot be written; the record is let go", record.topic, record.partition, record.offset);
                Ok(())
            }
            other => other,
        }
    }

    async fn publish_one(&self, record: PublishRecord) -> Result<(), BrokerError> {
        let mut outcomes = self.publish(vec![record], false).await;
        match outcomes.pop().map(|outcome| outcome.result) {
            Some(Ok(_)) => Ok(()),
            Some(Err(err)) => Err(match Arc::try_unwrap(err) {
                Ok(err) => err,
                Err(shared) => BrokerError::Forwarded {
                    code: crate::grpc::convert::error(&shared).code,
                    message: shared.to_string(),
                    leader: None,
                },
            }),
            None => Err(BrokerError::Internal("dead letter not answered".into())),
        }
    }
}

/// A refusal that a retry of the same letter cannot change.
fn permanent(err: &BrokerError) -> bool {
    use stave_proto::v1::ErrorCode as C;
    let code = crate::grpc::convert::error(err).code;
    [
        C::InvalidRequest,
        C::MessageTooLarge,
        C::CorruptBatch,
        C::InvalidTopicName,
        C::ReservedTopicName,
        C::InvalidConfig,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

/// The dead letter of `record`: itself with headers naming where it came from and why
/// (`error`: a letter refused whole, written without the record's key, value and headers).
fn dead_letter(
    group: &str,
    topic: &str,
    record: &ConsumerRecord,
    deliveries: u32,
    reason: &str,
    error: Option<&str>,
) -> PublishRecord {
    let id = {
        let mut source = Vec::new();
        for part in [group.as_bytes(), record.topic.as_bytes()] {
            source.extend_from_slice(&(part.len() as u32).to_le_bytes());
            source.extend_from_slice(part);
        }
        source.extend_from_slice(&record.partition.to_le_bytes());
        source.extend_from_slice(&record.offset.to_le_bytes());
        format!("dlq-{:032x}", xxhash_rust::xxh3::xxh3_128(&source))
    };
    let text = |s: String| Bytes::from(s.into_bytes());
    let mut headers: Vec<(String, Bytes)> = Vec::with_capacity(record.headers.len() + 9);
    if error.is_none() {
        for (key, value) in &record.headers {
            let key = match key.as_str() {
                MESSAGE_ID_HEADER => "stave-dlq-id",
                "" => "stave-dlq-unnamed",
                other => other,
            };
            headers.push((key.to_string(), value.clone()));
        }
    }
    headers.push(("stave-dlq-group".into(), text(group.to_string())));
    headers.push(("stave-dlq-topic".into(), text(record.topic.to_string())));
    headers.push((
        "stave-dlq-partition".into(),
        text(record.partition.to_string()),
    ));
    headers.push(("stave-dlq-offset".into(), text(record.offset.to_string())));
    headers.push(("stave-dlq-deliveries".into(), text(deliveries.to_string())));
    headers.push(("stave-dlq-reason".into(), text(reason.to_string())));
    headers.push((
        "stave-dlq-timestamp".into(),
        text(record.timestamp.to_string()),
    ));
    if let Some(error) = error {
        headers.push(("stave-dlq-error".into(), text(error.to_string())));
    }
    headers.push((MESSAGE_ID_HEADER.into(), text(id)));
    let (key, value) = match error {
        None => (record.key.clone(), record.value.clone().unwrap_or_default()),
        Some(_) => (None, Bytes::new()),
    };
    PublishRecord {
        topic: topic.to_string(),
        key,
        value,
        headers,
        partition: None,
        timestamp_ms: Some(record.timestamp.max(0)),
    }
}

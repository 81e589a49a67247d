//! The fetch loop of one assigned partition: a task that long-polls the partition's leader
//! (in process when the client runs inside that node: `LocalNode`) from the consumer's position, decodes and CRC-checks the returned frames (end-to-end
//! integrity, docs/batch-format.md), and hands the records over a channel of capacity 1. So
//! one fetch runs ahead of the consumer while it works through the previous one (prefetch),
//! and no more: a slow consumer holds at most two fetches' worth of records per partition.
//!
//! Leader changes and nodes restarting are retried (with a metadata refresh) for up to the
//! consumer's `retry_timeout` in a row. One fetch waits at most its long poll
//! (`fetch_wait_max`) plus the client's `request_timeout`: a leader that stopped answering is
//! left for the new one then (or sooner, when keep-alive closes its connection). A position outside the partition's records follows
//! the `offset_reset` policy.

use std::sync::Arc;

use bytes::Bytes;
use stave_log::LogError;
use stave_log::batch::BatchView;
use stave_proto::v1::FetchRequest;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::client::Client;
use crate::config::{ConsumerConfig, OffsetReset, StartPosition};
use crate::error::ClientError;
use crate::record::ConsumerRecord;

/// What the fetch loop hands to the consumer: records, or the error that stopped it.
pub(crate) type Chunk = Result<Vec<ConsumerRecord>, ClientError>;

pub(crate) struct Fetcher {
    pub(crate) client: Client,
    pub(crate) config: ConsumerConfig,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) position: u64,
    pub(crate) chunks: mpsc::Sender<Chunk>,
}

impl Fetcher {
    pub(crate) async fn run(mut self) {
        let mut failing_since: Option<Instant> = None;
        let mut attempt = 0;
        loop {
            let err = match self.fetch_once().await {
                Ok(records) => {
                    failing_since = None;
                    attempt = 0;
                    if records.is_empty() {
                        if self.chunks.is_closed() {
                            return;
                        }
                        continue;
                    }
                    if self.chunks.send(Ok(records)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(err) => err,
            };
            if err.code() == Some(stave_proto::v1::ErrorCode::OffsetOutOfRange) {
                match self.reset().await {
                    Ok(()) => continue,
                    Err(err) => {
                        let _ = self.chunks.send(Err(err)).await;
                        return;
                    }
                }
            }
            let retriable = err.is_retriable() || err.needs_metadata_refresh();
            let since = *failing_since.get_or_insert_with(Instant::now);
            let pause = self.client.config().backoff(attempt);
            if !retriable || since.elapsed() + pause > self.config.retry_timeout {
                let err = if retriable {
                    ClientError::Timeout {
                        what: format!("fetching {}/{}", self.topic, self.partition),
                        elapsed: since.elapsed(),
                        last: Some(Box::new(err)),
                    }
                } else {
                    err
                };
                let _ = self.chunks.send(Err(err)).await;
                return;
            }
            debug!(topic = %self.topic, partition = self.partition, error = %err, "fetch retry");
            if self.client.hint_to_follow(&err).is_none() {
                tokio::time::sleep(pause).await;
            }
            attempt += 1;
        }
    }

    /// One fetch from the leader; the position moves past what it returned.
    async fn fetch_once(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        let (addr, mut node) = self.client.leader(&self.topic, self.partition).await?;
        let wait = self.config.fetch_wait_max;
        let request = FetchRequest {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.position,
            max_bytes: self.config.fetch_bytes_max,
            min_bytes: self.config.fetch_bytes_min,
            max_wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        let answered = match self.client.local_at(&addr) {
            Some(local) => Ok(local.fetch(request).await),
            None => {
                self.client
                    .unary_with(&addr, wait, node.fetch(request))
                    .await
            }
        };
        let response = answered
            .and_then(|response| ClientError::check(response.error.clone()).map(|()| response));
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                self.client
                    .observe_failure(&self.topic, self.partition, &addr, &err);
                return Err(err);
            }
        };
        let (records, next) = decode(
            &self.topic,
            self.partition,
            self.position,
            &response.batches,
        )
        .map_err(|source| ClientError::Corrupt {
            topic: self.topic.to_string(),
            partition: self.partition,
            source,
        })?;
        self.position = next;
        Ok(records)
    }

    /// The position is outside `[log start, high watermark]`: apply the reset policy.
    async fn reset(&mut self) -> Result<(), ClientError> {
        let earliest = self
            .client
            .resolve_position(&self.topic, self.partition, StartPosition::Earliest)
            .await?;
        let latest = self
            .client
            .resolve_position(&self.topic, self.partition, StartPosition::Latest)
            .await?;
        if (earliest..=latest).contains(&self.position) {
            // The range moved meanwhile (a new leader caught up): fetch again.
            return Ok(());
        }
        let target = match self.config.offset_reset {
            OffsetReset::Earliest => earliest,
            OffsetReset::Latest => latest,
            OffsetReset::Error => {
                return Err(ClientError::OffsetOutOfRange {
                    topic: self.topic.to_string(),
                    partition: self.partition,
                    offset: self.position,
                    log_start_offset: earliest,
                    high_watermark: latest,
                });
            }
        };
        if self.position < earliest {
            warn!(topic = %self.topic, partition = self.partition, from = self.position,
                to = target, skipped = earliest - self.position,
                "position below the log start (retention removed it): reset");
        } else {
            info!(topic = %self.topic, partition = self.partition, from = self.position,
                to = target, "position beyond the high watermark: reset");
        }
        self.position = target;
        Ok(())
    }
}

/// Decodes fetched frames into records from `position` on, and the position after them.
/// Frames may start before `position` (a batch is returned whole).
pub(crate) fn decode(
    topic: &Arc<str>,
    partition: u32,
    position: u64,
    batches: &Bytes,
) -> Result<(Vec<ConsumerRecord>, u64), LogError> {
    let mut records = Vec::new();
    let mut next = position;
    for view in BatchView::split(batches) {
        let view = view?;
        next = next.max(view.next_offset().0);
        if !view.frame_type().is_data() {
            continue;
        }
        for record in view.records() {
            let record = record.map_err(|reason| LogError::InvalidFrame { reason })?;
            if record.offset.0 < position {
                continue;
            }
            records.push(ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset: record.offset.0,
                timestamp: record.timestamp,
                key: record.key.map(|key| view.slice_ref(key)),
                value: record.value.map(|value| view.slice_ref(value)),
                headers: record
                    .headers()
                    .map(|(key, value)| (key.to_string(), view.slice_ref(value)))
                    .collect(),
            });
        }
    }
    Ok((records, next))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::{Bytes, BytesMut};
    use stave_log::LogId;
    use stave_log::batch::{BatchBuilder, Record};
    use stave_log::frame::{FrameHeader, HEADER_LEN};

    use super::*;

    /// A stored frame (as a fetch returns it) of `values` from `base_offset`.
    fn stored_frame(base_offset: u64, values: &[&str]) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        for (i, value) in values.iter().enumerate() {
            builder.push(&Record {
                timestamp: 100 + i as i64,
                key: Some(b"k"),
                value: Some(value.as_bytes()),
                headers: &[("id", b"x")],
            });
        }
        let mut frame = builder.finish();
        let mut header = FrameHeader::decode_unchecked(&frame[..HEADER_LEN]).unwrap();
        header.base_offset = stave_log::Offset(base_offset);
        header.log_id = LogId::new(1, base_offset + 1);
        frame[..HEADER_LEN].copy_from_slice(&header.encode());
        frame
    }

    /// A fetch may return a whole batch that starts before the position: records below it
    /// are skipped, and the position moves past the last frame.
    #[test]
    fn decode_skips_records_before_the_position_and_moves_past_the_frames() {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&stored_frame(10, &["a", "b", "c"]));
        bytes.extend_from_slice(&stored_frame(13, &["d"]));
        let topic: Arc<str> = Arc::from("t");
        let (records, next) = decode(&topic, 1, 11, &bytes.freeze()).unwrap();
        let seen: Vec<(u64, &[u8])> = records
            .iter()
            .map(|r| (r.offset, r.value.as_deref().unwrap()))
            .collect();
        assert_eq!(seen, [(11, &b"b"[..]), (12, b"c"), (13, b"d")]);
        assert_eq!(next, 14);
        assert_eq!(records[0].timestamp, 101);
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[0].header("id").map(|v| &v[..]), Some(&b"x"[..]));
        assert_eq!(&*records[0].topic, "t");
        assert_eq!(records[0].partition, 1);
    }

    #[test]
    fn decode_of_nothing_keeps_the_position() {
        let topic: Arc<str> = Arc::from("t");
        let (records, next) = decode(&topic, 0, 7, &Bytes::new()).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 7);
    }

    /// A flipped byte fails the CRC check: the consumer reports it instead of handing out
    /// damaged records.
    #[test]
    fn decode_refuses_a_damaged_frame() {
        let mut frame = stored_frame(0, &["hello"]);
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        let topic: Arc<str> = Arc::from("t");
        assert!(decode(&topic, 0, 0, &Bytes::from(frame)).is_err());
    }
}

//! Fetch and ListOffsets: committed data from the partition's leader, long-polling on the
//! high watermark; an offset between a new leader's high watermark and its log end waits
//! rather than failing. Out of range answers say where the log starts and ends.

use std::time::{Duration, Instant};

use stave_log::{Offset, ReadFrames};

use crate::broker::Broker;
use crate::config::FETCH_BYTES_MAX;
use crate::error::BrokerError;

/// The longest a fetch long-polls, whatever it asks (`FetchRequest.max_wait_ms`).
pub(crate) const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// What `FetchRequest.max_bytes = 0` means.
pub(crate) const FETCH_BYTES_DEFAULT: usize = 1 << 20;

/// A fetch, with its defaults and caps applied ([`FetchRequest::new`]).
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub topic: String,
    pub partition: u32,
    pub offset: Offset,
    pub bytes_max: usize,
    pub bytes_min: usize,
    pub wait: Duration,
}

impl FetchRequest {
    /// A fetch as a client asks it: `bytes_max` 0 means [`FETCH_BYTES_DEFAULT`] and is
    /// clamped to what one answer can carry, `bytes_min` 0 means 1, waits are capped at
    /// [`FETCH_WAIT_MAX`].
    pub fn new(
        topic: String,
        partition: u32,
        offset: u64,
        (bytes_max, bytes_min): (u32, u32),
        wait_ms: u32,
    ) -> FetchRequest {
        let bytes_max = match bytes_max {
            0 => FETCH_BYTES_DEFAULT,
            asked => (asked as usize).min(FETCH_BYTES_MAX),
        };
        FetchRequest {
            topic,
            partition,
            offset: Offset(offset),
            bytes_max,
            bytes_min: (bytes_min as usize).max(1),
            wait: Duration::from_millis(u64::from(wait_ms)).min(FETCH_WAIT_MAX),
        }
    }
}

/// What a fetch found: committed frames from `offset` (maybe none), and the watermarks.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub frames: Option<ReadFrames>,
    /// The offset asked for.
    pub offset: Offset,
    pub high_watermark: Offset,
    pub log_start: Offset,
}

/// Which offset ListOffsets looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose record timestamp is at or after this (ms); `Latest` if none.
    Timestamp(i64),
}

impl Broker {
    /// A fetch, counted in the partition's fetched records and bytes.
    pub(crate) async fn fetch(&self, request: FetchRequest) -> Result<Fetched, BrokerError> {
        let (topic, partition) = (request.topic.clone(), request.partition);
        let fetched = self.fetch_uncounted(request).await?;
        if let Some(frames) = &fetched.frames {
            // The first frame may start before the offset asked: count from there.
            let records = frames.next_offset.0.saturating_sub(fetched.offset.0);
            let bytes = frames.len_bytes() as u64;
            self.metrics().fetched(&topic, partition, records, bytes);
        }
        Ok(fetched)
    }

    /// A fetch that the metrics do not count (monitoring's own reads).
    pub(crate) async fn fetch_uncounted(
        &self,
        request: FetchRequest,
    ) -> Result<Fetched, BrokerError> {
        let target = self.target(&request.topic, request.partition)?;
        let partition = self.leader_partition(&target).await?;
        let deadline = Instant::now() + request.wait;
        let mut high_watermark_seen = partition.subscribe_high_watermark();
        loop {
            high_watermark_seen.borrow_and_update();
            let marks = partition
                .watermarks()
                .await
                .map_err(|err| self.replication_error(&target, err))?;
            let offset = request.offset;
            if offset < marks.log_start || offset > marks.log_end.max(marks.high_watermark) {
                return Err(BrokerError::OffsetOutOfRange {
                    offset: offset.0,
                    start: marks.log_start.0,
                    end: marks.high_watermark.0,
                });
            }
            let fetched = |frames| Fetched {
                frames,
                offset,
                high_watermark: marks.high_watermark,
                log_start: marks.log_start,
            };
            let mut frames = None;
            if offset < marks.high_watermark {
                let read = partition
                    .read_committed(offset, marks.high_watermark, request.bytes_max)
                    .await
                    .map_err(|err| self.replication_error(&target, err))?;
                let enough = read.len_bytes() >= request.bytes_min;
                frames = Some(read);
                if enough {
                    return Ok(fetched(frames));
                }
            }
            if Instant::now() >= deadline {
                return Ok(fetched(frames));
            }
            let moved =
                tokio::time::timeout_at(deadline.into(), high_watermark_seen.changed()).await;
            if let Ok(Err(_)) = moved {
                return Err(self.leader_not_available(&target));
            }
        }
    }

    /// ListOffsets on this node, which must lead the partition. The target is checked
    /// first, then the leadership, then `spec` (none: INVALID_REQUEST).
    pub(crate) async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        spec: Option<OffsetSpec>,
    ) -> Result<u64, BrokerError> {
        let target = self.target(topic, partition)?;
        let leader = self.leader_partition(&target).await?;
        let spec = spec.ok_or_else(|| {
            BrokerError::InvalidRequest("say earliest, latest or timestamp_ms".into())
        })?;
        let marks = leader
            .watermarks()
            .await
            .map_err(|err| self.replication_error(&target, err))?;
        let (start, end) = (marks.log_start.0, marks.high_watermark.0);
        Ok(match spec {
            OffsetSpec::Earliest => start,
            OffsetSpec::Latest => end,
            OffsetSpec::Timestamp(ms) => leader
                .offset_for_timestamp(ms)
                .await
                .map_err(|err| self.replication_error(&target, err))?
                .map_or(end, |offset| offset.0.clamp(start, end)),
        })
    }

    /// ListOffsets answered here if this node leads the partition, else by its leader.
    pub(crate) async fn list_offsets_anywhere(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64, BrokerError> {
        let target = self.target(topic, partition)?;
        let local = self
            .node()
            .partition(target.raft_group)
            .is_some_and(|partition| partition.leads());
        if local {
            return self.list_offsets(topic, partition, Some(spec)).await;
        }
        let leader = self
            .leader_of(target.raft_group)
            .await
            .ok_or_else(|| self.leader_not_available(&target))?;
        let addr = self
            .node()
            .controller()
            .metadata()
            .node_addr(leader)
            .ok_or_else(|| self.leader_not_available(&target))?
            .to_string();
        self.remote_list_offsets(&addr, &target, spec).await
    }
}

//! Reading: data frames by record offset (consumers), frames of every type by Raft index
//! (replication), and the offset of a timestamp (ListOffsets).
//!
//! Invariants: every frame returned was checked (header and body CRC) by this read, and is a
//! slice of its segment's mmap; no purged frame (below the first index) is returned; a read
//! returns at least one frame when there is one, whatever its byte budget.

use bytes::Bytes;

use crate::batch::BatchView;
use crate::error::{LogError, Result};
use crate::frame::FrameType;
use crate::types::{LogId, LogIndex, Offset, TimestampMs};

use super::PartitionLog;

/// A stored frame, as Raft replication reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    pub log_id: LogId,
    pub frame_type: FrameType,
    pub base_offset: Offset,
    pub record_count: u32,
    /// The whole frame, header included: a slice of the segment's mmap. Bytes of entries above
    /// the Raft commit index may be rewritten by a later truncation: copy them to keep them.
    pub bytes: Bytes,
}

/// Data frames read by offset: runs of whole, checked frames, each run one slice of a
/// segment's mmap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadFrames {
    pub chunks: Vec<Bytes>,
    /// The offset after the last record returned (the `from` asked for when nothing was).
    pub next_offset: Offset,
}

impl ReadFrames {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn len_bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// The frames, parsed (their body CRCs were checked by the read).
    pub fn batches(&self) -> impl Iterator<Item = Result<BatchView>> + '_ {
        self.chunks.iter().flat_map(BatchView::split_checked)
    }
}

impl PartitionLog {
    /// Data frames from the one holding `from`, up to the log end. See [`PartitionLog::read_until`].
    pub fn read(&self, from: Offset, bytes_max: usize) -> Result<ReadFrames> {
        self.read_until(from, self.log_end_offset(), bytes_max)
    }

    /// Whole data frames holding offsets in `[from, end)`, at most `bytes_max` of them but
    /// always at least one when there is one (a consumer must progress past a large batch).
    /// The first frame may start before `from`. Every frame is CRC-checked.
    pub fn read_until(&self, from: Offset, end: Offset, bytes_max: usize) -> Result<ReadFrames> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if from < log_start || from > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: from,
                log_start,
                log_end,
            });
        }
        let end = end.min(log_end);
        let mut out = ReadFrames {
            chunks: Vec::new(),
            next_offset: from,
        };
        let first_index = self.first_index();
        let mut budget = bytes_max;
        let start = self.segments.partition_point(|s| s.next_offset <= from);
        for segment in &self.segments[start..] {
            if out.next_offset >= end {
                break;
            }
            let position = segment.position_for_offset(out.next_offset)?;
            let mut cursor = segment.frames_from(position)?;
            let mut run: Option<(u64, u64)> = None;
            let mut full = false;
            while let Some(frame) = cursor.next() {
                let frame = frame?;
                let header = &frame.header;
                let next = Offset(header.base_offset.0 + u64::from(frame.body.record_count));
                let wanted = header.log_id.index >= first_index
                    && header.frame_type.is_data()
                    && next > out.next_offset;
                if !wanted {
                    if let Some(run) = run.take() {
                        out.chunks.push(cursor.slice(run));
                    }
                    continue;
                }
                let len = frame.bytes.len();
                let started = !out.chunks.is_empty() || run.is_some();
                if header.base_offset >= end || (started && len > budget) {
                    full = true;
                    break;
                }
                budget = budget.saturating_sub(len);
                out.next_offset = next;
                let frame_end = frame.position + len as u64;
                run = Some(run.map_or((frame.position, frame_end), |(s, _)| (s, frame_end)));
            }
            if let Some(run) = run {
                out.chunks.push(cursor.slice(run));
            }
            if full || budget == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Frames (every type) with Raft indexes in `[from, until)`, at most `bytes_max` of them
    /// but at least one, for Raft replication.
    pub fn read_by_index(
        &self,
        from: LogIndex,
        until: LogIndex,
        bytes_max: usize,
    ) -> Result<Vec<StoredFrame>> {
        let (first, next) = (self.first_index(), self.next_index());
        if from < first || from > next {
            return Err(LogError::IndexOutOfRange {
                requested: from,
                first,
                last_plus_one: next,
            });
        }
        let until = until.min(next);
        let mut frames = Vec::new();
        let mut budget = bytes_max;
        let start = self.segments.partition_point(|s| s.next_index <= from);
        'segments: for segment in &self.segments[start..] {
            let position = segment.position_for_index(from)?;
            for frame in segment.frames_from(position)? {
                let frame = frame?;
                let index = frame.header.log_id.index;
                if index < from {
                    continue;
                }
                if index >= until || (!frames.is_empty() && frame.bytes.len() > budget) {
                    break 'segments;
                }
                budget = budget.saturating_sub(frame.bytes.len());
                frames.push(StoredFrame {
                    log_id: frame.header.log_id,
                    frame_type: frame.header.frame_type,
                    base_offset: frame.header.base_offset,
                    record_count: frame.body.record_count,
                    bytes: frame.bytes,
                });
            }
        }
        Ok(frames)
    }

    /// The offset of the first record with a timestamp at or after `timestamp`, if any.
    pub fn offset_for_timestamp(&self, timestamp: TimestampMs) -> Result<Option<Offset>> {
        let (first_index, log_start) = (self.first_index(), self.log_start_offset());
        for segment in self
            .segments
            .iter()
            .filter(|s| s.max_timestamp >= timestamp)
        {
            let position = segment.position_for_timestamp(timestamp)?;
            for frame in segment.frames_from(position)? {
                let frame = frame?;
                let candidate = frame.header.log_id.index >= first_index
                    && frame.header.frame_type.is_data()
                    && frame.body.max_timestamp >= timestamp;
                if !candidate {
                    continue;
                }
                let corrupt = |reason| LogError::Corrupt {
                    path: segment.path.clone(),
                    position: frame.position,
                    reason,
                };
                let view = BatchView::parse(frame.bytes).map_err(|err| match err {
                    LogError::InvalidFrame { reason } => corrupt(reason),
                    other => other,
                })?;
                for record in view.records() {
                    let record = record.map_err(corrupt)?;
                    if record.timestamp >= timestamp && record.offset >= log_start {
                        return Ok(Some(record.offset));
                    }
                }
            }
        }
        Ok(None)
    }
}

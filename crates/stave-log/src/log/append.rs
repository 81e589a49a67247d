//! Appending: frames checked (length, body CRC, record count), stamped with their offset,
//! Raft term and index, and written in one `pwritev` per segment; the roll to a new segment
//! when the tail is full or old; the free-space check a leader makes before it proposes.
//!
//! Invariants: an append is all or nothing (a roll that finds no space after part of an
//! append went in takes that part back); Raft indexes continue from `next_index` with no gap
//! and terms never go down; nothing is written until every frame of the append passed.
//!
//! Crash ordering of a roll, which the power-cut tests check: sync the tail (data, index),
//! create the successor with the sealed length in its header, sync it and the directory; only
//! then write to it.

use tracing::info;

use crate::config::FlushPolicy;
use crate::error::{CorruptReason, LogError, Result};
use crate::frame::{FrameHeader, HEADER_LEN, check_frame};
use crate::segment::{PendingFrame, Segment, SegmentHeader};
use crate::space::Space;
use crate::types::{LogId, LogIndex, Offset, WritePos};

use super::{PartitionLog, ms_to_timestamp};

/// The free space beyond an append's own needs (and the reserve) that
/// [`PartitionLog::check_space`] asks for when the log must grow.
pub const CHECK_SPACE_HEADROOM_BYTES: u64 = 1 << 20;

/// What `append` did with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub log_id: LogId,
    pub base_offset: Offset,
    /// The offset after the frame's last record (equal to `base_offset` for control frames).
    pub next_offset: Offset,
    /// Register with [`PartitionLog::on_durable`] to learn when the frame is on disk.
    pub pos: WritePos,
}

impl PartitionLog {
    /// Where appends take their space from.
    fn space_for_appends(&self) -> Space<'_> {
        Space::for_appends(self.storage.as_ref(), self.config.reserve_bytes)
    }

    /// Whether an append of `bytes` of frames would find its space now, without digging
    /// into the reserve; nothing is written. A leader asks before it proposes a batch, so a
    /// write that cannot fit is refused up front (`StorageFull`) rather than once Raft holds
    /// it (where it would wait for space). Free of system calls while the tail's reservation
    /// has room. When the files must grow, it also wants [`CHECK_SPACE_HEADROOM_BYTES`] more
    /// free: other partitions and the server's own log file take space between this check
    /// and the append.
    pub fn check_space(&self, bytes: u64) -> Result<()> {
        let interval = self.config.index_interval_bytes;
        let growth = if self.would_roll(bytes) {
            let successor = crate::segment::first_extent_bytes(self.config.extent_bytes);
            successor.max(bytes) + bytes / interval.max(1) * 32 + 4096
        } else {
            self.tail().growth_for(bytes, interval)
        };
        self.space_for_appends()
            .check(&self.dir, growth, CHECK_SPACE_HEADROOM_BYTES)
    }

    /// Appends one frame (as a producer or leader sent it: the log stamps its offset, term and
    /// index). See [`PartitionLog::append_all`].
    pub fn append(&mut self, frame: &[u8], log_id: LogId) -> Result<Appended> {
        let mut appended = self.append_all([(frame, log_id)])?;
        Ok(appended.pop().expect("one frame in, one out"))
    }

    /// Appends frames with the given log ids, in one write per segment. Each frame is checked
    /// first (length, body CRC, record count); if any fails, nothing is written. Returns at
    /// once, the frames readable; [`PartitionLog::on_durable`] tells when they are on disk.
    pub fn append_all<'a>(
        &mut self,
        frames: impl IntoIterator<Item = (&'a [u8], LogId)>,
    ) -> Result<Vec<Appended>> {
        self.ensure_running()?;
        let pending = self.stamp(frames)?;
        let before = self.next_index();
        match self.or_stop(|log| log.write_pending(&pending)) {
            Err(full @ LogError::StorageFull { .. }) if self.next_index() != before => {
                // A roll found no space after part of the append went in: take that part
                // back, so an append is all or nothing and can simply be retried.
                self.or_stop(|log| log.truncate_at(before))?;
                return Err(full);
            }
            result => result?,
        }
        let pos = self.durability.note_written();
        Ok(pending
            .iter()
            .map(|frame| Appended {
                log_id: frame.log_id,
                base_offset: frame.base_offset,
                next_offset: Offset(frame.base_offset.0 + u64::from(frame.record_count)),
                pos,
            })
            .collect())
    }

    fn stamp<'a>(
        &self,
        frames: impl IntoIterator<Item = (&'a [u8], LogId)>,
    ) -> Result<Vec<PendingFrame<'a>>> {
        let invalid = |reason| LogError::InvalidFrame { reason };
        let mut next_index = self.next_index();
        let mut next_offset = self.log_end_offset();
        let mut last_term = self.last_log_id().map(|id| id.term);
        let mut pending = Vec::new();
        for (frame, log_id) in frames {
            let len = frame.len() as u64;
            if len > self.config.frame_bytes_max {
                let (min, max) = (crate::frame::FRAME_BYTES_MIN, self.config.frame_bytes_max);
                return Err(invalid(CorruptReason::LengthOutOfBounds { len, min, max }));
            }
            let (header, body) = check_frame(frame, false).map_err(invalid)?;
            if header.frame_len() != frame.len() {
                return Err(invalid(CorruptReason::BytesAfterFrame(
                    (frame.len() - header.frame_len()) as u64,
                )));
            }
            if log_id.index != next_index {
                return Err(LogError::AppendOutOfSequence {
                    expected: next_index,
                    found: log_id.index,
                });
            }
            if let Some(last) = last_term.filter(|&t| t > log_id.term) {
                return Err(LogError::AppendTermRegressed {
                    last,
                    found: log_id.term,
                });
            }
            // Near the top of the index or offset space (after a reset far out), refuse rather
            // than wrap.
            let after_index = next_index
                .0
                .checked_add(1)
                .ok_or(LogError::IndexOutOfRange {
                    requested: log_id.index,
                    first: self.first_index(),
                    last_plus_one: next_index,
                })?;
            let after_offset = next_offset
                .0
                .checked_add(u64::from(body.record_count))
                .ok_or(invalid(CorruptReason::OffsetOverflow {
                    base_offset: next_offset.0,
                    record_count: body.record_count,
                }))?;
            let stamped = FrameHeader {
                base_offset: next_offset,
                log_id,
                ..header
            };
            pending.push(PendingFrame {
                header: stamped.encode(),
                body: &frame[HEADER_LEN..],
                frame_type: header.frame_type,
                log_id,
                base_offset: next_offset,
                record_count: body.record_count,
                max_timestamp: body.max_timestamp,
            });
            next_index = LogIndex(after_index);
            next_offset = Offset(after_offset);
            last_term = Some(log_id.term);
        }
        Ok(pending)
    }

    fn write_pending(&mut self, pending: &[PendingFrame<'_>]) -> Result<()> {
        let (interval, extent) = (self.config.index_interval_bytes, self.config.extent_bytes);
        let mut start = 0;
        while start < pending.len() {
            if self
                .would_roll(pending[start].header.len() as u64 + pending[start].body.len() as u64)
            {
                self.roll()?;
            }
            let segment_bytes = self.config.segment_bytes;
            let tail_end = self.tail().end;
            let mut end = start;
            let mut size = tail_end;
            while end < pending.len() {
                let len = (HEADER_LEN + pending[end].body.len()) as u64;
                if end > start && size + len > segment_bytes {
                    break;
                }
                size += len;
                end += 1;
            }
            let space = Space::for_appends(self.storage.as_ref(), self.config.reserve_bytes);
            self.segments
                .last_mut()
                .expect("a log always has a tail segment")
                .write(
                    &pending[start..end],
                    interval,
                    (extent, segment_bytes),
                    space,
                )?;
            start = end;
        }
        Ok(())
    }

    /// Whether appending `bytes` of frames now would start a new segment (sealing the tail,
    /// creating files, syncing the directory): a caller that appends from an async thread
    /// hands such an append to a blocking one.
    pub fn would_roll(&self, bytes: u64) -> bool {
        let tail = self.tail();
        if tail.is_empty() {
            return false;
        }
        let full = tail.end + bytes > self.config.segment_bytes;
        let old = self.config.segment_ms.is_some_and(|ms| {
            self.config
                .clock
                .now_ms()
                .saturating_sub(tail.header.created_ms)
                >= ms_to_timestamp(ms)
        });
        full || old
    }

    /// Seals the tail and starts a new one. Under `always` and `interval` the sealed segment
    /// is synced first (cheap: the flusher has kept it nearly synced), so its recorded length
    /// is a promise and later damage to it is corruption. Under `never` it is not synced (a
    /// 128 MiB sync would stall the appender), and the successor's header says so: recovery
    /// then treats a short segment like a torn tail.
    fn roll(&mut self) -> Result<()> {
        let tail = self.tail();
        let synced = self.config.flush != FlushPolicy::Never;
        if synced {
            tail.seal()?;
        }
        let header = SegmentHeader {
            base_index: tail.next_index,
            base_offset: tail.next_offset,
            generation: self.meta.get().generation,
            prev: Some((tail.header.base_index, tail.end)),
            prev_synced: synced,
            created_ms: self.config.clock.now_ms(),
        };
        let sealed_len = tail.end;
        let segment = Segment::create(
            self.storage.as_ref(),
            self.space_for_appends(),
            &self.dir,
            header,
            self.config.extent_bytes,
        )?;
        self.storage
            .sync_dir(&self.dir)
            .map_err(LogError::io("sync directory", &self.dir))?;
        if synced {
            self.durability.switch_file_all_synced(segment.file.clone());
        } else {
            self.durability.switch_file_unsynced(segment.file.clone());
        }
        info!(segment = %segment.path.display(), sealed_len, "rolled to a new segment");
        self.segments.push(segment);
        self.remove_purged_segments()
    }
}

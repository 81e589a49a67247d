//! Moving the log start: `purge_to` (Raft's log compaction once a snapshot holds the entries)
//! and `reset_to` (a follower installing a snapshot starts over after it). Both store the new
//! start in `meta` before they delete a segment.
//!
//! Invariant: a purge never moves the start past what is on disk (it syncs first); the tail
//! is never deleted by a purge, even when the start has passed it.
//!
//! Crash ordering, which the power-cut tests check:
//! - purge: sync, store the new start in `meta` (synced), then delete whole segments below it;
//! - reset: store the new start with a new generation, then replace every segment (segments of
//!   an older generation are deleted on open).

use tracing::info;

use crate::error::{LogError, Result};
use crate::meta::LogMeta;
use crate::segment::{Segment, SegmentHeader};
use crate::space::Space;
use crate::types::{LogId, LogIndex, Offset};

use super::PartitionLog;

impl PartitionLog {
    /// Moves the log start past `index` (persisted), deleting whole segments below it.
    pub fn purge_to(&mut self, index: LogIndex) -> Result<()> {
        self.ensure_running()?;
        let (first, next) = (self.first_index(), self.next_index());
        if index < first {
            return Ok(());
        }
        if index >= next {
            return Err(LogError::IndexOutOfRange {
                requested: index,
                first,
                last_plus_one: next,
            });
        }
        self.or_stop(|log| log.purge_inner(index))
    }

    fn purge_inner(&mut self, index: LogIndex) -> Result<()> {
        // The new start must never point past what is on disk.
        self.durability.flush()?;
        let holder = self.segments.partition_point(|s| s.next_index <= index);
        let frame = self.segments[holder].frame_at_index(index)?;
        let start_offset = Offset(frame.header.base_offset.0 + u64::from(frame.body.record_count));
        let meta = LogMeta {
            last_purged: Some(frame.header.log_id),
            start_offset,
            ..self.meta.get()
        };
        self.meta.store(meta)?;
        let removed = self.remove_purged_segments_counted()?;
        info!(dir = %self.dir.display(), upto = %frame.header.log_id, segments_removed = removed, "purged the log");
        Ok(())
    }

    /// Deletes the segments the log start has passed (all but the tail, which is kept even
    /// when purged): after a purge, and after a roll seals a purged tail.
    pub(super) fn remove_purged_segments(&mut self) -> Result<()> {
        self.remove_purged_segments_counted().map(|_| ())
    }

    fn remove_purged_segments_counted(&mut self) -> Result<usize> {
        let first_index = self.first_index();
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1].header.base_index <= first_index {
            let segment = self.segments.remove(0);
            segment.remove(self.storage.as_ref())?;
            removed += 1;
        }
        if removed > 0 {
            self.storage
                .sync_dir(&self.dir)
                .map_err(LogError::io("sync directory", &self.dir))?;
        }
        Ok(removed)
    }

    /// Empties the log to start after `last` at `next_offset`: a follower installing a
    /// snapshot.
    pub fn reset_to(&mut self, last: LogId, next_offset: Offset) -> Result<()> {
        self.ensure_running()?;
        if last.index.0 == u64::MAX {
            let (first, last_plus_one) = (self.first_index(), self.next_index());
            return Err(LogError::IndexOutOfRange {
                requested: last.index,
                first,
                last_plus_one,
            });
        }
        self.or_stop(|log| log.reset_inner(last, next_offset))
    }

    fn reset_inner(&mut self, last: LogId, next_offset: Offset) -> Result<()> {
        let generation = self.meta.get().generation + 1;
        self.meta.store(LogMeta {
            generation,
            last_purged: Some(last),
            start_offset: next_offset,
        })?;
        for segment in self.segments.drain(..) {
            segment.remove(self.storage.as_ref())?;
        }
        let header = SegmentHeader {
            base_index: last.index.next(),
            base_offset: next_offset,
            generation,
            prev: None,
            prev_synced: false,
            created_ms: self.config.clock.now_ms(),
        };
        // A reset installs a snapshot: it may use the reserve.
        let segment = Segment::create(
            self.storage.as_ref(),
            Space::unreserved(self.storage.as_ref()),
            &self.dir,
            header,
            self.config.extent_bytes,
        )?;
        self.storage
            .sync_dir(&self.dir)
            .map_err(LogError::io("sync directory", &self.dir))?;
        self.durability.switch_file_all_synced(segment.file.clone());
        self.segments.push(segment);
        info!(dir = %self.dir.display(), %last, %next_offset, "reset the log");
        Ok(())
    }
}

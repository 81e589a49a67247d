//! Raft's conflict truncation: every entry after a kept one removed, durably, before
//! `truncate_after` returns (an append cut short by a full disk is taken back the same way).
//!
//! Crash ordering, which the power-cut tests check: remove later segments last first (the
//! directory synced after each, so a crash leaves a prefix of segments), then zero the cut
//! segment from the cut to its old end and sync it.

use tracing::info;

use crate::error::{LogError, Result};
use crate::types::LogIndex;

use super::PartitionLog;

impl PartitionLog {
    /// Removes every entry after `last_kept` (all of them for `None`): Raft's conflict
    /// truncation. Durable when it returns.
    pub fn truncate_after(&mut self, last_kept: Option<LogIndex>) -> Result<()> {
        self.ensure_running()?;
        let (first, next) = (self.first_index(), self.next_index());
        if last_kept.is_some_and(|kept| kept.0 >= next.0.saturating_sub(1)) {
            return Ok(());
        }
        let cut_index = last_kept.map_or(LogIndex(0), LogIndex::next);
        if cut_index < first {
            return Err(LogError::IndexOutOfRange {
                requested: cut_index,
                first,
                last_plus_one: next,
            });
        }
        if cut_index >= next {
            return Ok(());
        }
        self.or_stop(|log| log.truncate_at(cut_index))
    }

    pub(super) fn truncate_at(&mut self, cut_index: LogIndex) -> Result<()> {
        let keep = self
            .segments
            .partition_point(|s| s.header.base_index <= cut_index);
        // Last first, the directory synced after each: a crash leaves a prefix of segments.
        while self.segments.len() > keep.max(1) {
            let segment = self.segments.pop().expect("more segments than kept");
            segment.remove(self.storage.as_ref())?;
            self.storage
                .sync_dir(&self.dir)
                .map_err(LogError::io("sync directory", &self.dir))?;
        }
        let interval = self.config.index_interval_bytes;
        let tail = self.tail_mut();
        let position = tail.frame_at_index(cut_index)?.position;
        tail.cut(position, interval)?;
        let file = tail.file.clone();
        self.durability.switch_file_all_synced(file);
        info!(dir = %self.dir.display(), after = cut_index.0.checked_sub(1), "truncated the log");
        Ok(())
    }
}

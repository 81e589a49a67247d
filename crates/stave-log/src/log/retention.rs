//! Retention: the last Raft index that retention by time (`retention_ms`) and by size
//! (`retention_bytes`) would purge. Only whole sealed segments expire; the tail never does.
//! The Raft layer snapshots and then purges through openraft; `apply_retention` purges
//! directly, for logs without Raft.

use crate::error::Result;
use crate::types::{LogIndex, TimestampMs};

use super::{PartitionLog, ms_to_timestamp};

impl PartitionLog {
    /// The last Raft index that retention (by time and by size) would purge, if any. Only
    /// whole sealed segments expire; the tail never does.
    pub fn retention_point(&self) -> Option<LogIndex> {
        self.retention_point_with(self.config.retention)
    }

    /// [`PartitionLog::retention_point`] under `policy` instead of the log's own (a topic's
    /// retention may change while its log is open).
    pub fn retention_point_with(&self, policy: crate::config::RetentionPolicy) -> Option<LogIndex> {
        let now = self.config.clock.now_ms();
        let mut remaining = self.size_bytes();
        let mut point = None;
        for segment in &self.segments[..self.segments.len() - 1] {
            let newest = if segment.max_timestamp == TimestampMs::MIN {
                segment.header.created_ms
            } else {
                segment.max_timestamp
            };
            let too_old = policy
                .retention_ms
                .is_some_and(|ms| newest < now.saturating_sub(ms_to_timestamp(ms)));
            let too_big = policy
                .retention_bytes
                .is_some_and(|max| remaining - segment.data_bytes() >= max);
            if !(too_old || too_big) {
                break;
            }
            remaining -= segment.data_bytes();
            if !segment.is_empty() {
                point = Some(LogIndex(segment.next_index.0 - 1));
            }
        }
        point.filter(|&p| p >= self.first_index())
    }

    /// Purges what retention allows. The Raft layer instead snapshots, then purges through
    /// openraft; this is for logs without Raft (and tests).
    pub fn apply_retention(&mut self) -> Result<Option<LogIndex>> {
        let point = self.retention_point();
        if let Some(index) = point {
            self.purge_to(index)?;
        }
        Ok(point)
    }
}

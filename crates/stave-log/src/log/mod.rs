//! `PartitionLog`: a directory of segments that is both a partition's record log and its
//! Raft log. This file owns the log's state (its segments, `meta`, durability), its bounds
//! and its durability calls; each operation lives in its own file:
//!
//! - `recovery`: opening a log (leftovers deleted, the segment chain checked, the tail cut);
//! - `append`: checking, stamping and writing frames, and rolling to a new segment;
//! - `read`: reads by record offset, by Raft index and by timestamp;
//! - `truncate`: Raft's conflict truncation;
//! - `purge`: moving the log start (purge after a snapshot, reset to install one);
//! - `retention`: what retention would purge.
//!
//! ```text
//! {dir}/meta                       where the log starts (see `meta`)
//! {dir}/{base_index:020}.log       segment: header, then frames
//! {dir}/{base_index:020}.index     its sparse index
//! ```
//!
//! Invariants: segments are contiguous in Raft index and record offset; every segment but the
//! tail is sealed (its length recorded in its successor's header, its data and index synced);
//! `first_index <= next_index`, `log_start_offset <= log_end_offset`. Raft indexes are dense
//! over all frames, record offsets dense over data records.
//!
//! Crash ordering, which the power-cut tests check, is written beside the code it orders: the
//! roll in `append`, truncation in `truncate`, purge and reset in `purge`.

mod append;
mod purge;
mod read;
mod recovery;
mod retention;
mod truncate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{FlushPolicy, LogConfig};
use crate::error::{LogError, Result};
use crate::flush::{Completion, Durability};
use crate::meta::MetaFile;
use crate::segment::Segment;
use crate::storage::Storage;
use crate::types::{LogId, LogIndex, Offset, TimestampMs, WritePos};

pub use append::Appended;
pub use read::{ReadFrames, StoredFrame};

/// The log's bounds, as openraft's `get_log_state` and Kafka's ListOffsets want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    pub last_purged: Option<LogId>,
    pub last: Option<LogId>,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: LogConfig,
    meta: MetaFile,
    /// Ordered by base index; never empty; the last is the tail.
    segments: Vec<Segment>,
    durability: Durability,
}

impl PartitionLog {
    fn tail(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has a tail segment")
    }

    fn tail_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a tail segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The Raft index of the first entry the log holds (or would hold).
    pub fn first_index(&self) -> LogIndex {
        self.meta.get().first_index()
    }

    /// The Raft index the next append must carry.
    pub fn next_index(&self) -> LogIndex {
        self.tail().next_index
    }

    pub fn log_start_offset(&self) -> Offset {
        self.meta.get().start_offset
    }

    pub fn log_end_offset(&self) -> Offset {
        self.tail().next_offset
    }

    pub fn last_log_id(&self) -> Option<LogId> {
        let first = self.first_index();
        for segment in self.segments.iter().rev() {
            if let Some(term) = segment.last_term {
                let last = LogIndex(segment.next_index.0 - 1);
                if last >= first {
                    return Some(LogId { term, index: last });
                }
                break;
            }
        }
        self.meta.get().last_purged
    }

    pub fn state(&self) -> LogState {
        LogState {
            last_purged: self.meta.get().last_purged,
            last: self.last_log_id(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Bytes of frames held, over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::data_bytes).sum()
    }

    /// The base Raft index of every segment, oldest first.
    pub fn segment_bases(&self) -> Vec<LogIndex> {
        self.segments.iter().map(|s| s.header.base_index).collect()
    }

    /// How many syncs completed so far (data syncs by the flusher, rolls and cuts).
    pub fn syncs(&self) -> u64 {
        self.durability.syncs()
    }

    fn ensure_running(&self) -> Result<()> {
        if self.durability.is_stopped() {
            return Err(self.durability.stopped_error());
        }
        Ok(())
    }

    /// Runs `op`; an error from it stops the log (the disk's state is unknown after a failed
    /// write or sync).
    fn or_stop<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let result = op(self);
        if let Err(err) = &result
            && !matches!(
                err,
                LogError::InvalidFrame { .. }
                    | LogError::IndexOutOfRange { .. }
                    | LogError::StorageFull { .. }
            )
        {
            self.durability.stop();
        }
        result
    }

    /// Calls `done` once every append up to `pos` is durable under the flush policy (at once
    /// for `never` and `interval`). Never blocks.
    pub fn on_durable(&self, pos: WritePos, done: Completion) {
        self.durability.on_durable(pos, done);
    }

    /// Syncs what was written, now, from the caller's thread.
    pub fn flush(&self) -> Result<()> {
        self.durability.flush()
    }

    /// The highest position known durable.
    pub fn durable_pos(&self) -> WritePos {
        self.durability.synced()
    }

    /// Syncs and closes. Dropping the log does the same, best effort.
    pub fn close(self) -> Result<()> {
        if self.config.flush != FlushPolicy::Never {
            self.durability.flush()?;
        }
        Ok(())
    }
}

/// A configured duration in milliseconds as a timestamp difference, saturating (a `u64::MAX`
/// retention means forever, not a negative age).
fn ms_to_timestamp(ms: u64) -> TimestampMs {
    TimestampMs::try_from(ms).unwrap_or(TimestampMs::MAX)
}

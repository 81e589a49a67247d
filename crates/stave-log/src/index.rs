//! The sparse index of one segment: an entry every `index_interval_bytes` of frames, and one
//! for the first frame. Both record offsets and Raft indexes grow with position, so one table
//! answers "offset → position", "raft index → position" and, through the running maximum
//! timestamp, "timestamp → position".
//!
//! ```text
//! entry (24 bytes): rel_offset u32 | rel_index u32 | position u32 | reserved u32 | max_ts_before i64
//! ```
//!
//! `rel_*` are relative to the segment's base; `max_ts_before` is the largest data timestamp
//! of the frames before this entry's frame in the segment. Entries are written with `pwrite`
//! and read through the file's mmap view. The index has no checksum: the tail segment's index
//! is rebuilt on every open, and a sealed segment's index is synced before the seal and
//! checked for order when loaded (Kafka does the same).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::frame::{u32_at, u64_at};
use crate::space::Space;
use crate::storage::StorageFile;
use crate::types::TimestampMs;

pub(crate) const INDEX_ENTRY_LEN: usize = 24;
/// The index file grows in steps of this many bytes.
const INDEX_EXTENT_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub rel_offset: u32,
    pub rel_index: u32,
    pub position: u32,
    pub max_ts_before: TimestampMs,
}

impl IndexEntry {
    fn encode(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut out = [0u8; INDEX_ENTRY_LEN];
        out[0..4].copy_from_slice(&self.rel_offset.to_le_bytes());
        out[4..8].copy_from_slice(&self.rel_index.to_le_bytes());
        out[8..12].copy_from_slice(&self.position.to_le_bytes());
        out[16..24].copy_from_slice(&self.max_ts_before.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> IndexEntry {
        IndexEntry {
            rel_offset: u32_at(bytes, 0),
            rel_index: u32_at(bytes, 4),
            position: u32_at(bytes, 8),
            max_ts_before: u64_at(bytes, 16) as i64,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SparseIndex {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    count: usize,
    allocated: u64,
}

impl SparseIndex {
    pub fn new(file: Arc<dyn StorageFile>, path: PathBuf) -> Result<SparseIndex> {
        let allocated = file.len().map_err(LogError::io("stat", &path))?;
        Ok(SparseIndex {
            file,
            path,
            count: 0,
            allocated,
        })
    }

    /// Loads the entries of a sealed segment's index: the longest prefix that is ordered and
    /// points inside `[data_start, data_end)`.
    pub fn load(&mut self, data_start: u64, data_end: u64) -> Result<()> {
        let len = self.allocated as usize / INDEX_ENTRY_LEN * INDEX_ENTRY_LEN;
        let view = self
            .file
            .view(0, len)
            .map_err(LogError::io("map", &self.path))?;
        let mut previous: Option<IndexEntry> = None;
        let mut count = 0;
        for chunk in view.chunks_exact(INDEX_ENTRY_LEN) {
            let entry = IndexEntry::decode(chunk);
            let inside = (data_start..data_end).contains(&u64::from(entry.position));
            let ordered = previous.is_none_or(|p| {
                entry.position > p.position
                    && entry.rel_index > p.rel_index
                    && entry.rel_offset >= p.rel_offset
                    && entry.max_ts_before >= p.max_ts_before
            });
            if !inside || !ordered {
                break;
            }
            previous = Some(entry);
            count += 1;
        }
        self.count = count;
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn last(&self) -> Result<Option<IndexEntry>> {
        match self.count {
            0 => Ok(None),
            count => self.entry(count - 1).map(Some),
        }
    }

    fn entry(&self, i: usize) -> Result<IndexEntry> {
        let view = self
            .file
            .view((i * INDEX_ENTRY_LEN) as u64, INDEX_ENTRY_LEN)
            .map_err(LogError::io("map", &self.path))?;
        Ok(IndexEntry::decode(&view))
    }

    /// Reserves the space for `extra` more entries (a full disk refuses it with
    /// `StorageFull`), so that a write of frames never fails halfway for its index.
    pub fn reserve(&mut self, extra: usize, space: Space<'_>) -> Result<()> {
        let end = ((self.count + extra) * INDEX_ENTRY_LEN) as u64;
        if end <= self.allocated {
            return Ok(());
        }
        let wanted = end.div_ceil(INDEX_EXTENT_BYTES) * INDEX_EXTENT_BYTES;
        self.allocated = space.grow(self.file.as_ref(), &self.path, self.allocated, end, wanted)?;
        Ok(())
    }

    /// Bytes the file must grow by to take `extra` more entries.
    pub fn growth_for(&self, extra: usize) -> u64 {
        let end = ((self.count + extra) * INDEX_ENTRY_LEN) as u64;
        if end <= self.allocated {
            return 0;
        }
        end.div_ceil(INDEX_EXTENT_BYTES) * INDEX_EXTENT_BYTES - self.allocated
    }

    /// Appends entries after the current ones.
    pub fn push(&mut self, entries: &[IndexEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let encoded: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        let position = (self.count * INDEX_ENTRY_LEN) as u64;
        let end = position + encoded.len() as u64;
        if end > self.allocated {
            let allocated = end.div_ceil(INDEX_EXTENT_BYTES) * INDEX_EXTENT_BYTES;
            self.file
                .allocate(allocated)
                .map_err(LogError::io("allocate", &self.path))?;
            self.allocated = allocated;
        }
        self.file
            .write_all_at(&[&encoded], position)
            .map_err(LogError::io("write", &self.path))?;
        self.count += entries.len();
        Ok(())
    }

    /// Drops the entries from `keep` on, zeroing them in the file (not synced: a tail index is
    /// rebuilt on open, and a seal syncs it).
    pub fn truncate(&mut self, keep: usize) -> Result<()> {
        if keep >= self.count {
            return Ok(());
        }
        let zeros = vec![0u8; (self.count - keep) * INDEX_ENTRY_LEN];
        let position = (keep * INDEX_ENTRY_LEN) as u64;
        self.file
            .write_all_at(&[&zeros], position)
            .map_err(LogError::io("write", &self.path))?;
        self.count = keep;
        Ok(())
    }

    /// Replaces every entry (after a rescan), zeroing whatever was stored beyond them.
    pub fn rewrite(&mut self, entries: &[IndexEntry]) -> Result<()> {
        let stale = self.allocated as usize / INDEX_ENTRY_LEN;
        self.count = stale;
        self.truncate(0)?;
        self.push(entries)
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(LogError::io("sync", &self.path))
    }

    /// The last entry satisfying `before` (entries are ordered so that `before` holds for a
    /// prefix), with its number.
    pub fn last_where(
        &self,
        before: impl Fn(&IndexEntry) -> bool,
    ) -> Result<Option<(usize, IndexEntry)>> {
        if self.count == 0 {
            return Ok(None);
        }
        let view = self
            .file
            .view(0, self.count * INDEX_ENTRY_LEN)
            .map_err(LogError::io("map", &self.path))?;
        let entry = |i: usize| IndexEntry::decode(&view[i * INDEX_ENTRY_LEN..]);
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let mid = (low + high) / 2;
            if before(&entry(mid)) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok(low.checked_sub(1).map(|i| (i, entry(i))))
    }
}

//! One segment: a `.log` file of frames after a 64-byte header, and its `.index`.
//!
//! ```text
//! {dir}/{base_index:020}.log     header (64 bytes, see `header`), frames back to back, then
//!                                zeros up to the space reserved
//! {dir}/{base_index:020}.index   its sparse index (see `index`)
//! ```
//!
//! The header is written once, when the segment is created, and synced before any frame is
//! written to the file. It records the sealed length of the previous segment, so a sealed
//! segment's end is never guessed, and (flag bit 0, `prev_synced`) whether that segment was
//! synced when it was sealed: under `always` and `interval`, which makes any damage to it
//! corruption; not under `never`, where a power cut may leave it short and recovery cuts the
//! log there instead. Frames are written with `pwrite` into space reserved
//! as the segment grows; reads are slices of the file's mmap. Invariant: in the tail segment,
//! every byte from `end` to the file's length is zero (recovery and cuts write zeros).
//!
//! This file owns a segment's files (creation, growth, writes, cuts, removal) and the index
//! lookups; `header` owns the header's bytes, `scan` the checks of stored frames (opening a
//! sealed or tail segment, the rescan after a cut), `cursor` the checked reads of frames.

mod cursor;
mod header;
mod scan;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::{FrameHeader, FrameType, HEADER_LEN};
use crate::index::{IndexEntry, SparseIndex};
use crate::space::Space;
use crate::storage::{Storage, StorageFile};
use crate::types::{LogId, LogIndex, Offset, Term, TimestampMs};

pub(crate) use cursor::CheckedFrame;
pub(crate) use header::{SEGMENT_HEADER_LEN, SegmentHeader};
use scan::{ScanState, index_entry};

/// Zeros are written in pieces of this size.
const ZERO_CHUNK_BYTES: usize = 64 * 1024;

/// The first reservation of a segment's space.
const FIRST_EXTENT_BYTES: u64 = 64 * 1024;

/// How far to reserve a segment's space so that it holds `needed` bytes: the reservation
/// doubles from 64 KiB up to steps of `extent`, so an idle partition holds little space and a
/// busy one calls `fallocate` once per `extent`.
fn next_allocation(allocated: u64, needed: u64, extent: u64) -> u64 {
    let step = extent.min(allocated.max(FIRST_EXTENT_BYTES));
    let target = needed.max(allocated + step);
    target.div_ceil(4096) * 4096
}

/// The space a new segment reserves at once.
pub(crate) fn first_extent_bytes(extent: u64) -> u64 {
    next_allocation(0, SEGMENT_HEADER_LEN, extent)
}

pub(crate) fn log_path(dir: &Path, base: LogIndex) -> PathBuf {
    dir.join(format!("{:020}.log", base.0))
}

/// Deletes a segment's files, the index first (a leftover `.log` is found and handled on open;
/// a leftover `.index` is not). Missing files are fine. The caller syncs the directory.
pub(crate) fn remove_files(storage: &dyn Storage, dir: &Path, base: LogIndex) -> Result<()> {
    for path in [index_path(dir, base), log_path(dir, base)] {
        match storage.remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io("remove", &path)(err));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether any byte after the header region of a segment file is non-zero.
pub(crate) fn holds_data(file: &dyn StorageFile, path: &Path) -> Result<bool> {
    let len = file.len().map_err(LogError::io("stat", path))?;
    if len <= SEGMENT_HEADER_LEN {
        return Ok(false);
    }
    let view = file
        .view(SEGMENT_HEADER_LEN, (len - SEGMENT_HEADER_LEN) as usize)
        .map_err(LogError::io("map", path))?;
    Ok(view.iter().any(|&b| b != 0))
}

pub(crate) fn index_path(dir: &Path, base: LogIndex) -> PathBuf {
    dir.join(format!("{:020}.index", base.0))
}

/// A frame ready to be written: its stamped header and its body.
#[derive(Debug)]
pub(crate) struct PendingFrame<'a> {
    pub header: [u8; HEADER_LEN],
    pub body: &'a [u8],
    pub frame_type: FrameType,
    pub log_id: LogId,
    pub base_offset: Offset,
    pub record_count: u32,
    pub max_timestamp: TimestampMs,
}

impl PendingFrame<'_> {
    fn len(&self) -> u64 {
        (HEADER_LEN + self.body.len()) as u64
    }
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub header: SegmentHeader,
    pub path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    index: SparseIndex,
    index_path: PathBuf,
    /// End of the last frame.
    pub end: u64,
    allocated: u64,
    pub next_index: LogIndex,
    pub next_offset: Offset,
    /// Term of the last frame, if the segment has one.
    pub last_term: Option<Term>,
    /// Largest timestamp of the data frames (`TimestampMs::MIN` without any).
    pub max_timestamp: TimestampMs,
    since_index: u64,
}

impl Segment {
    /// Creates a segment file with its header (synced) and an empty index. The caller syncs
    /// the directory.
    ///
    /// Its space comes from `space`: a roll's from the space for appends, so a full disk
    /// refuses it with `StorageFull`, and the files it created are removed again (the log
    /// goes on with its old tail).
    pub fn create(
        storage: &dyn Storage,
        space: Space<'_>,
        dir: &Path,
        header: SegmentHeader,
        extent: u64,
    ) -> Result<Segment> {
        let created = Self::create_files(storage, space, dir, header, extent);
        if let Err(LogError::StorageFull { .. }) = &created {
            // Best effort: a leftover without a valid header is removed on open anyway.
            let _ = remove_files(storage, dir, header.base_index);
        }
        created
    }

    fn create_files(
        storage: &dyn Storage,
        space: Space<'_>,
        dir: &Path,
        header: SegmentHeader,
        extent: u64,
    ) -> Result<Segment> {
        let path = log_path(dir, header.base_index);
        let index_path = index_path(dir, header.base_index);
        let first_extent = next_allocation(0, SEGMENT_HEADER_LEN, extent);
        let file =
            storage
                .open(&path, true)
                .map_err(space.io_error("create", &path, first_extent))?;
        let allocated = match file.len().map_err(LogError::io("stat", &path))? {
            len if len >= SEGMENT_HEADER_LEN => len,
            len => space.grow(file.as_ref(), &path, len, SEGMENT_HEADER_LEN, first_extent)?,
        };
        file.write_all_at(&[&header.encode()], 0)
            .map_err(space.io_error("write", &path, SEGMENT_HEADER_LEN))?;
        file.sync_data().map_err(LogError::io("sync", &path))?;
        let index_file =
            storage
                .open(&index_path, true)
                .map_err(space.io_error("create", &index_path, 0))?;
        let mut index = SparseIndex::new(index_file, index_path.clone())?;
        // An index left behind by a removal that a crash interrupted must not be reused.
        index.rewrite(&[])?;
        Ok(Segment {
            header,
            path,
            file,
            index,
            index_path,
            end: SEGMENT_HEADER_LEN,
            allocated,
            next_index: header.base_index,
            next_offset: header.base_offset,
            last_term: None,
            max_timestamp: TimestampMs::MIN,
            since_index: 0,
        })
    }

    /// Reads a segment file's header. `Ok(None)` if it is short or invalid.
    pub fn read_header(
        storage: &dyn Storage,
        path: &Path,
    ) -> Result<(Arc<dyn StorageFile>, Option<SegmentHeader>)> {
        let file = storage
            .open(path, false)
            .map_err(LogError::io("open", path))?;
        let len = file.len().map_err(LogError::io("stat", path))?;
        if len < SEGMENT_HEADER_LEN {
            return Ok((file, None));
        }
        let mut bytes = [0u8; SEGMENT_HEADER_LEN as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(LogError::io("read", path))?;
        Ok((file, SegmentHeader::decode(&bytes)))
    }

    fn from_parts(
        storage: &dyn Storage,
        dir: &Path,
        header: SegmentHeader,
        file: Arc<dyn StorageFile>,
    ) -> Result<Segment> {
        let path = log_path(dir, header.base_index);
        let index_path = index_path(dir, header.base_index);
        let allocated = file.len().map_err(LogError::io("stat", &path))?;
        let index_file = storage
            .open(&index_path, true)
            .map_err(LogError::io("open", &index_path))?;
        let index = SparseIndex::new(index_file, index_path.clone())?;
        Ok(Segment {
            header,
            path,
            file,
            index,
            index_path,
            end: SEGMENT_HEADER_LEN,
            allocated,
            next_index: header.base_index,
            next_offset: header.base_offset,
            last_term: None,
            max_timestamp: TimestampMs::MIN,
            since_index: 0,
        })
    }

    fn corrupt(&self, position: u64, reason: CorruptReason) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position,
            reason,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.next_index == self.header.base_index
    }

    pub fn data_bytes(&self) -> u64 {
        self.end - SEGMENT_HEADER_LEN
    }

    /// Writes `frames` after the last one, in one `pwritev`, and indexes them. The space for
    /// the frames and their index entries is reserved first: a full disk refuses the write
    /// (`StorageFull`) before a byte of it is written.
    pub fn write(
        &mut self,
        frames: &[PendingFrame<'_>],
        interval: u64,
        (extent, segment_bytes): (u64, u64),
        space: Space<'_>,
    ) -> Result<()> {
        let total: u64 = frames.iter().map(PendingFrame::len).sum();
        let end = self.end + total;
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(frames.len() * 2);
        let mut entries = Vec::new();
        let mut state = ScanState {
            position: self.end,
            next_index: self.next_index,
            next_offset: self.next_offset,
            last_term: self.last_term,
            max_timestamp: self.max_timestamp,
            since_index: self.since_index,
            indexed: self.index.count() > 0,
        };
        for frame in frames {
            debug_assert_eq!(frame.log_id.index, state.next_index);
            debug_assert_eq!(frame.base_offset, state.next_offset);
            if !state.indexed || state.since_index >= interval {
                entries.push(index_entry(
                    &self.header,
                    state.position,
                    frame.log_id.index,
                    &state,
                ));
                state.indexed = true;
                state.since_index = 0;
            }
            state.since_index += frame.len();
            state.position += frame.len();
            state.next_index = state.next_index.next();
            state.next_offset = Offset(state.next_offset.0 + u64::from(frame.record_count));
            state.last_term = Some(frame.log_id.term);
            if frame.frame_type.is_data() {
                state.max_timestamp = state.max_timestamp.max(frame.max_timestamp);
            }
            bufs.push(&frame.header);
            bufs.push(frame.body);
        }
        self.index.reserve(entries.len(), space)?;
        if end > self.allocated {
            // Never past the segment's size (a sealed segment keeps its reservation), unless
            // one frame needs it.
            let cap = end.max(segment_bytes).div_ceil(4096) * 4096;
            let wanted = next_allocation(self.allocated, end, extent).min(cap);
            self.allocated =
                space.grow(self.file.as_ref(), &self.path, self.allocated, end, wanted)?;
        }
        // A file system that cannot reserve space ahead grows the file here: a full disk then
        // fails this write, past the log's end, which the next write overwrites.
        self.file
            .write_all_at(&bufs, self.end)
            .map_err(space.io_error("write", &self.path, total))?;
        self.index.push(&entries)?;
        self.apply(&state);
        Ok(())
    }

    /// Bytes this segment's files must grow by to take `bytes` more of frames: the data file
    /// past its reservation, and the index (at most one entry per `interval`, plus one).
    pub fn growth_for(&self, bytes: u64, interval: u64) -> u64 {
        let data = (self.end + bytes).saturating_sub(self.allocated);
        data + self
            .index
            .growth_for((bytes / interval.max(1)) as usize + 1)
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(LogError::io("sync", &self.path))
    }

    /// Makes the frames and the index durable before the successor records the sealed length.
    pub fn seal(&self) -> Result<()> {
        self.sync()?;
        self.index.sync()
    }

    /// A position at or before the frame holding `offset`.
    pub fn position_for_offset(&self, offset: Offset) -> Result<u64> {
        let rel = offset.0.saturating_sub(self.header.base_offset.0);
        let found = self.index.last_where(|e| u64::from(e.rel_offset) <= rel)?;
        self.checked_position(found)
    }

    /// A position at or before the frame with raft index `index`.
    pub fn position_for_index(&self, index: LogIndex) -> Result<u64> {
        let rel = index.0.saturating_sub(self.header.base_index.0);
        let found = self.index.last_where(|e| u64::from(e.rel_index) <= rel)?;
        self.checked_position(found)
    }

    /// A position before every frame holding a record at or after `timestamp`.
    pub fn position_for_timestamp(&self, timestamp: TimestampMs) -> Result<u64> {
        let found = self.index.last_where(|e| e.max_ts_before < timestamp)?;
        self.checked_position(found)
    }

    /// The position an index entry points to, once the frame header there is checked to carry
    /// the entry's index and offset. A damaged entry (the index has no checksum) must not send
    /// a reader past the frame it wants: fall back to the segment's first frame.
    fn checked_position(&self, found: Option<(usize, IndexEntry)>) -> Result<u64> {
        let Some((number, entry)) = found else {
            return Ok(SEGMENT_HEADER_LEN);
        };
        let position = u64::from(entry.position);
        let matches = position >= SEGMENT_HEADER_LEN
            && position + HEADER_LEN as u64 <= self.end
            && self
                .file
                .view(position, HEADER_LEN)
                .ok()
                .and_then(|bytes| FrameHeader::decode(&bytes).ok().flatten())
                .is_some_and(|header| {
                    header.log_id.index.0 == self.header.base_index.0 + u64::from(entry.rel_index)
                        && header.base_offset.0
                            == self.header.base_offset.0 + u64::from(entry.rel_offset)
                });
        if matches {
            return Ok(position);
        }
        warn!(index = %self.index_path.display(), entry = number, "index entry does not match its frame, scanning the segment");
        Ok(SEGMENT_HEADER_LEN)
    }

    /// The checked frame with raft index `index`.
    pub fn frame_at_index(&self, index: LogIndex) -> Result<CheckedFrame> {
        let position = self.position_for_index(index)?;
        for frame in self.frames_from(position)? {
            let frame = frame?;
            if frame.header.log_id.index == index {
                return Ok(frame);
            }
        }
        Err(LogError::IndexOutOfRange {
            requested: index,
            first: self.header.base_index,
            last_plus_one: self.next_index,
        })
    }

    /// Cuts the segment before the frame at `position`: zeros from there to the old end,
    /// synced before returning, so no stale frame can reappear after a crash.
    pub fn cut(&mut self, position: u64, interval: u64) -> Result<()> {
        debug_assert!((SEGMENT_HEADER_LEN..=self.end).contains(&position));
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = position;
        while at < self.end {
            let len = ZERO_CHUNK_BYTES.min((self.end - at) as usize);
            self.file
                .write_all_at(&[&zeros[..len]], at)
                .map_err(LogError::io("write", &self.path))?;
            at += len as u64;
        }
        self.sync()?;
        let keep = self
            .index
            .last_where(|e| u64::from(e.position) < position)?
            .map_or(0, |(i, _)| i + 1);
        self.index.truncate(keep)?;
        if let Some((at, reason)) = self.rescan_from_index(position, interval)? {
            return Err(self.corrupt(at, reason));
        }
        Ok(())
    }

    /// Deletes the segment's files. The caller syncs the directory.
    pub fn remove(self, storage: &dyn Storage) -> Result<()> {
        remove_files(
            storage,
            self.path.parent().unwrap_or(Path::new("")),
            self.header.base_index,
        )
    }
}

//! One segment: a `.log` file of frames after a 64-byte header, and its `.index`.
//!
//! ```text
//! header: 0 magic u32 | 4 version u16 | 6 flags u16 | 8 base_index u64 | 16 base_offset u64
//!         24 generation u64 | 32 prev_base_index u64 (u64::MAX: none) | 40 prev_sealed_len u64
//!         48 created_ms i64 | 56 header_crc u32 (over 0..56) | 60 reserved u32
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::{
    BodyHeader, FrameHeader, FrameType, HEADER_LEN, check_frame, u16_at, u32_at, u64_at,
};
use crate::index::{IndexEntry, SparseIndex};
use crate::space::Space;
use crate::storage::{Storage, StorageFile};
use crate::types::{LogId, LogIndex, Offset, Term, TimestampMs};

pub(crate) const SEGMENT_HEADER_LEN: u64 = 64;
const SEGMENT_MAGIC: u32 = 0x4753_5453; // "STSG"
const SEGMENT_VERSION: u16 = 1;
/// Zeros are written in pieces of this size.
const ZERO_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub base_index: LogIndex,
    pub base_offset: Offset,
    pub generation: u64,
    /// The previous segment's base index and sealed length, when there was one.
    pub prev: Option<(LogIndex, u64)>,
    /// Whether the previous segment was synced before this one was created.
    pub prev_synced: bool,
    pub created_ms: TimestampMs,
}

impl SegmentHeader {
    fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut out = [0u8; SEGMENT_HEADER_LEN as usize];
        out[0..4].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        out[4..6].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&u16::from(self.prev_synced).to_le_bytes());
        out[8..16].copy_from_slice(&self.base_index.0.to_le_bytes());
        out[16..24].copy_from_slice(&self.base_offset.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.generation.to_le_bytes());
        let (prev_base, prev_len) = self.prev.map_or((u64::MAX, 0), |(base, len)| (base.0, len));
        out[32..40].copy_from_slice(&prev_base.to_le_bytes());
        out[40..48].copy_from_slice(&prev_len.to_le_bytes());
        out[48..56].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&out[..56]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        if bytes.len() < SEGMENT_HEADER_LEN as usize
            || u32_at(bytes, 0) != SEGMENT_MAGIC
            || u16_at(bytes, 4) != SEGMENT_VERSION
            || u32_at(bytes, 56) != crc32fast::hash(&bytes[..56])
        {
            return None;
        }
        let prev_base = u64_at(bytes, 32);
        Some(SegmentHeader {
            base_index: LogIndex(u64_at(bytes, 8)),
            base_offset: Offset(u64_at(bytes, 16)),
            generation: u64_at(bytes, 24),
            prev: (prev_base != u64::MAX).then(|| (LogIndex(prev_base), u64_at(bytes, 40))),
            prev_synced: u16_at(bytes, 6) & 1 == 1,
            created_ms: u64_at(bytes, 48) as i64,
        })
    }
}

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

/// A stored frame, checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedFrame {
    pub position: u64,
    pub header: FrameHeader,
    pub body: BodyHeader,
    pub bytes: Bytes,
}

/// Where a scan is in the sequence of frames, and what it has seen.
#[derive(Debug, Clone, Copy)]
struct ScanState {
    position: u64,
    next_index: LogIndex,
    next_offset: Offset,
    last_term: Option<Term>,
    max_timestamp: TimestampMs,
    /// Bytes of frames since the last index entry, and whether the segment has any entry.
    since_index: u64,
    indexed: bool,
}

impl ScanState {
    /// Checks `frame` continues the sequence, then advances over it; adds an index entry when
    /// one is due.
    fn advance(
        &mut self,
        frame: &CheckedFrame,
        base: &SegmentHeader,
        interval: u64,
        entries: &mut Vec<IndexEntry>,
    ) -> std::result::Result<(), CorruptReason> {
        let header = &frame.header;
        if header.log_id.index != self.next_index {
            return Err(CorruptReason::IndexOutOfSequence {
                expected: self.next_index,
                found: header.log_id.index,
            });
        }
        if header.base_offset != self.next_offset {
            return Err(CorruptReason::OffsetOutOfSequence {
                expected: self.next_offset,
                found: header.base_offset,
            });
        }
        if let Some(previous) = self.last_term.filter(|&t| header.log_id.term < t) {
            return Err(CorruptReason::TermRegressed {
                previous,
                found: header.log_id.term,
            });
        }
        if !self.indexed || self.since_index >= interval {
            entries.push(index_entry(base, frame.position, header.log_id.index, self));
            self.indexed = true;
            self.since_index = 0;
        }
        let len = header.frame_len() as u64;
        self.since_index += len;
        self.position += len;
        self.next_index = self.next_index.next();
        self.next_offset = Offset(self.next_offset.0 + u64::from(frame.body.record_count));
        self.last_term = Some(header.log_id.term);
        if header.frame_type.is_data() {
            self.max_timestamp = self.max_timestamp.max(frame.body.max_timestamp);
        }
        Ok(())
    }
}

fn index_entry(
    base: &SegmentHeader,
    position: u64,
    index: LogIndex,
    state: &ScanState,
) -> IndexEntry {
    IndexEntry {
        rel_offset: (state.next_offset.0 - base.base_offset.0) as u32,
        rel_index: (index.0 - base.base_index.0) as u32,
        position: position as u32,
        max_ts_before: state.max_timestamp,
    }
}

/// Checks the frame at the front of `bytes` (which starts at file position `position`).
fn check_at(bytes: &Bytes, position: u64) -> std::result::Result<CheckedFrame, CorruptReason> {
    let (header, body) = check_frame(bytes, true)?;
    Ok(CheckedFrame {
        position,
        header,
        body,
        bytes: bytes.slice(..header.frame_len()),
    })
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

/// The outcome of recovering a tail segment: where it was cut, and why.
#[derive(Debug)]
pub(crate) struct TailCut {
    pub position: u64,
    pub reason: CorruptReason,
    pub bytes_zeroed: u64,
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

    /// Opens a sealed segment whose length its successor recorded. If it was synced when
    /// sealed, trusts the index after checking its order and checks every frame after its last
    /// entry; otherwise checks every frame and rebuilds the index.
    pub fn open_sealed(
        storage: &dyn Storage,
        dir: &Path,
        header: SegmentHeader,
        file: Arc<dyn StorageFile>,
        sealed_len: u64,
        synced: bool,
        interval: u64,
    ) -> Result<Segment> {
        let mut segment = Self::from_parts(storage, dir, header, file)?;
        if sealed_len > segment.allocated || sealed_len < SEGMENT_HEADER_LEN {
            let reason = CorruptReason::SealedLengthBeyondFile {
                sealed_len,
                file_len: segment.allocated,
            };
            return Err(segment.corrupt(0, reason));
        }
        // A segment sealed without a sync may have lost any frame while its index survived:
        // check every frame. A synced one was whole when sealed: check what follows the index.
        if synced {
            segment.index.load(SEGMENT_HEADER_LEN, sealed_len)?;
            if segment.rescan_from_index(sealed_len, interval)?.is_none() {
                return Ok(segment);
            }
            warn!(segment = %segment.path.display(), "sealed segment index does not match its frames, rebuilding it");
        }
        segment.index.rewrite(&[])?;
        if let Some((position, reason)) = segment.rescan_from_index(sealed_len, interval)? {
            return Err(segment.corrupt(position, reason));
        }
        segment.index.sync()?;
        Ok(segment)
    }

    /// Opens the tail segment: scans every frame from the start, cuts at the first torn,
    /// corrupt, out-of-sequence or zero frame (zeroing everything after it, synced), and
    /// rebuilds the index.
    ///
    /// A cut that would drop an entry at or below `committed` is refused before anything is
    /// zeroed ([`CorruptReason::CommittedEntryLost`]).
    pub fn open_tail(
        storage: &dyn Storage,
        dir: &Path,
        header: SegmentHeader,
        file: Arc<dyn StorageFile>,
        last_term: Option<Term>,
        interval: u64,
        committed: Option<LogIndex>,
    ) -> Result<(Segment, Option<TailCut>)> {
        let mut segment = Self::from_parts(storage, dir, header, file)?;
        let limit = segment.allocated;
        let mut state = segment.scan_state_at(SEGMENT_HEADER_LEN, None);
        state.last_term = last_term;
        let mut entries = Vec::new();
        let stop = segment.scan(&mut state, limit, interval, &mut entries)?;
        if let (Some((position, reason)), Some(committed)) = (&stop, committed) {
            let damaged =
                state.next_index <= committed && segment.holds_nonzero(*position, limit)?;
            if damaged {
                let lost = CorruptReason::CommittedEntryLost {
                    index: state.next_index,
                    committed,
                    why: Box::new(reason.clone()),
                };
                return Err(segment.corrupt(*position, lost));
            }
        }
        segment.apply(&state);
        segment.index.rewrite(&entries)?;
        let mut cut = None;
        if let Some((position, reason)) = stop {
            let bytes_zeroed = segment.zero_nonzero(position, limit)?;
            if bytes_zeroed > 0 {
                segment.sync()?;
                cut = Some(TailCut {
                    position,
                    reason,
                    bytes_zeroed,
                });
            }
        }
        Ok((segment, cut))
    }

    fn scan_state_at(&self, position: u64, entry: Option<&IndexEntry>) -> ScanState {
        ScanState {
            position,
            next_index: LogIndex(
                self.header.base_index.0 + entry.map_or(0, |e| u64::from(e.rel_index)),
            ),
            next_offset: Offset(
                self.header.base_offset.0 + entry.map_or(0, |e| u64::from(e.rel_offset)),
            ),
            last_term: None,
            max_timestamp: entry.map_or(TimestampMs::MIN, |e| e.max_ts_before),
            since_index: 0,
            indexed: entry.is_some(),
        }
    }

    fn apply(&mut self, state: &ScanState) {
        self.end = state.position;
        self.next_index = state.next_index;
        self.next_offset = state.next_offset;
        self.last_term = state.last_term;
        self.max_timestamp = state.max_timestamp;
        self.since_index = state.since_index;
    }

    /// Scans checked frames from `state` up to `limit`. Returns where and why it stopped
    /// early, if it did.
    fn scan(
        &self,
        state: &mut ScanState,
        limit: u64,
        interval: u64,
        entries: &mut Vec<IndexEntry>,
    ) -> Result<Option<(u64, CorruptReason)>> {
        let view = self
            .file
            .view(state.position, (limit - state.position) as usize)
            .map_err(LogError::io("map", &self.path))?;
        let start = state.position;
        while state.position < limit {
            let rest = view.slice((state.position - start) as usize..);
            if rest.len() < HEADER_LEN {
                let reason = if rest.iter().all(|&b| b == 0) {
                    CorruptReason::Zeroed
                } else {
                    CorruptReason::Truncated {
                        needed: HEADER_LEN as u64,
                        available: rest.len() as u64,
                    }
                };
                return Ok(Some((state.position, reason)));
            }
            let checked = check_at(&rest, state.position)
                .and_then(|frame| state.advance(&frame, &self.header, interval, entries));
            if let Err(reason) = checked {
                return Ok(Some((state.position, reason)));
            }
        }
        Ok(None)
    }

    /// Recomputes the in-memory state from the last index entry up to `limit`. Returns where
    /// and why the frames stopped short of `limit`, if they did.
    fn rescan_from_index(
        &mut self,
        limit: u64,
        interval: u64,
    ) -> Result<Option<(u64, CorruptReason)>> {
        let last = self.index.last()?;
        let position = last.map_or(SEGMENT_HEADER_LEN, |e| u64::from(e.position));
        let mut state = self.scan_state_at(position, last.as_ref());
        let mut entries = Vec::new();
        let stop = self.scan(&mut state, limit, interval, &mut entries)?;
        if stop.is_none() {
            self.index.push(&entries)?;
            self.apply(&state);
        }
        Ok(stop)
    }

    /// Whether any byte in `[from, to)` is non-zero.
    fn holds_nonzero(&self, from: u64, to: u64) -> Result<bool> {
        let view = self
            .file
            .view(from, (to - from) as usize)
            .map_err(LogError::io("map", &self.path))?;
        Ok(view.iter().any(|&b| b != 0))
    }

    /// Writes zeros over every non-zero byte in `[from, to)`. Returns how many bytes it wrote.
    fn zero_nonzero(&self, from: u64, to: u64) -> Result<u64> {
        let view = self
            .file
            .view(from, (to - from) as usize)
            .map_err(LogError::io("map", &self.path))?;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut written = 0;
        for (i, chunk) in view.chunks(ZERO_CHUNK_BYTES).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                let position = from + (i * ZERO_CHUNK_BYTES) as u64;
                self.file
                    .write_all_at(&[&zeros[..chunk.len()]], position)
                    .map_err(LogError::io("write", &self.path))?;
                written += chunk.len() as u64;
            }
        }
        Ok(written)
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

    /// Checked frames from `position` to the end of the segment.
    pub fn frames_from(&self, position: u64) -> Result<FrameCursor<'_>> {
        let view = self
            .file
            .view(position, (self.end - position) as usize)
            .map_err(LogError::io("map", &self.path))?;
        Ok(FrameCursor {
            view,
            start: position,
            at: 0,
            path: &self.path,
        })
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

/// Iterates the checked frames of a segment range; yields a `Corrupt` error and stops at the
/// first frame that fails a check.
#[derive(Debug)]
pub(crate) struct FrameCursor<'a> {
    view: Bytes,
    start: u64,
    at: usize,
    path: &'a Path,
}

impl FrameCursor<'_> {
    /// The bytes of `[start, end)` (file positions within the cursor's range).
    pub fn slice(&self, (start, end): (u64, u64)) -> Bytes {
        self.view
            .slice((start - self.start) as usize..(end - self.start) as usize)
    }
}

impl Iterator for FrameCursor<'_> {
    type Item = Result<CheckedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.view.len() {
            return None;
        }
        let position = self.start + self.at as u64;
        match check_at(&self.view.slice(self.at..), position) {
            Ok(frame) => {
                self.at += frame.bytes.len();
                Some(Ok(frame))
            }
            Err(reason) => {
                self.at = self.view.len();
                Some(Err(LogError::Corrupt {
                    path: self.path.to_path_buf(),
                    position,
                    reason,
                }))
            }
        }
    }
}

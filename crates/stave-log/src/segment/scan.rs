//! Scanning a segment's stored frames: `ScanState`, where a scan is in the sequence of frames
//! (a write advances the same state), and the scans that open a segment on recovery (a sealed
//! one bounded by its recorded length, the tail cut at its first bad frame) and recompute a
//! segment after a cut.
//!
//! Invariants: frames continue the sequence (Raft index dense, offsets dense over records,
//! terms never going down); an index entry is due at the first frame and then every
//! `interval` bytes; a tail is cut by zeroing (synced) from its first bad frame to its
//! reserved end, and a cut that would drop an entry at or below the persisted commit index is
//! refused before anything is zeroed.

use std::path::Path;
use std::sync::Arc;

use tracing::warn;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::HEADER_LEN;
use crate::index::IndexEntry;
use crate::storage::{Storage, StorageFile};
use crate::types::{LogIndex, Offset, Term, TimestampMs};

use super::cursor::{CheckedFrame, check_at};
use super::{SEGMENT_HEADER_LEN, Segment, SegmentHeader, ZERO_CHUNK_BYTES};

/// Where a scan is in the sequence of frames, and what it has seen.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScanState {
    pub(super) position: u64,
    pub(super) next_index: LogIndex,
    pub(super) next_offset: Offset,
    pub(super) last_term: Option<Term>,
    pub(super) max_timestamp: TimestampMs,
    /// Bytes of frames since the last index entry, and whether the segment has any entry.
    pub(super) since_index: u64,
    pub(super) indexed: bool,
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

pub(super) fn index_entry(
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

/// The outcome of recovering a tail segment: where it was cut, and why.
#[derive(Debug)]
pub(crate) struct TailCut {
    pub position: u64,
    pub reason: CorruptReason,
    pub bytes_zeroed: u64,
}

impl Segment {
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

    pub(super) fn apply(&mut self, state: &ScanState) {
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
    pub(super) fn rescan_from_index(
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
}

//! `PartitionLog`: a directory of segments that is both a partition's record log and its
//! Raft log.
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
//! Crash ordering, which the power-cut tests check:
//! - roll: sync the tail (data, index), create the successor with the sealed length in its
//!   header, sync it and the directory; only then write to it;
//! - truncation: remove later segments last first (directory synced after each), then zero the
//!   cut segment from the cut to its old end and sync it;
//! - purge: sync, store the new start in `meta` (synced), then delete whole segments below it;
//! - reset: store the new start with a new generation, then replace every segment (segments of
//!   an older generation are deleted on open).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::{info, warn};

use crate::batch::BatchView;
use crate::config::{FlushPolicy, LogConfig};
use crate::error::{CorruptReason, LogError, Result};
use crate::flush::{Completion, Durability};
use crate::frame::{FrameHeader, FrameType, HEADER_LEN, check_frame};
use crate::meta::{LogMeta, META_FILE, MetaFile};
use crate::segment::{PendingFrame, Segment, SegmentHeader};
use crate::space::Space;
use crate::storage::{Storage, StorageFile};
use crate::types::{LogId, LogIndex, Offset, TimestampMs, WritePos};

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

fn parse_segment_name(name: &str) -> Option<LogIndex> {
    let base = name.strip_suffix(".log")?;
    (base.len() == 20)
        .then(|| base.parse().ok().map(LogIndex))
        .flatten()
}

/// A segment file found on open.
struct Found {
    base: LogIndex,
    file: Arc<dyn StorageFile>,
    header: Option<SegmentHeader>,
}

impl PartitionLog {
    /// Opens the log in `dir`, creating it if needed, and recovers its tail.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: impl Into<PathBuf>,
        config: LogConfig,
    ) -> Result<Self> {
        Self::open_keeping(storage, dir, config, None)
    }

    /// [`PartitionLog::open`], keeping every entry up to `committed` (the Raft commit index
    /// this replica persisted): recovery may cut a torn or corrupt tail only above it. A log
    /// that would have to be cut at or below it, or that ends below it, is not opened
    /// ([`CorruptReason::CommittedEntryLost`]): those entries were acknowledged, and this
    /// replica must not serve or vote without them.
    pub fn open_keeping(
        storage: Arc<dyn Storage>,
        dir: impl Into<PathBuf>,
        config: LogConfig,
        committed: Option<LogIndex>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.into();
        storage
            .create_dir_all(&dir)
            .map_err(LogError::io("create directory", &dir))?;
        let names = storage.list_dir(&dir).map_err(LogError::io("list", &dir))?;
        let mut bases: Vec<LogIndex> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        bases.sort();
        let meta = match MetaFile::load(storage.as_ref(), &dir)? {
            Ok(meta) => meta,
            // A log whose creation was interrupted: no segment can exist yet.
            Err(_) if bases.is_empty() => {
                MetaFile::create(storage.as_ref(), &dir, LogMeta::default())?
            }
            Err(reason) => {
                let path = dir.join(META_FILE);
                return Err(LogError::Corrupt {
                    path,
                    position: 0,
                    reason,
                });
            }
        };
        let mut found = Vec::with_capacity(bases.len());
        for base in bases {
            let path = crate::segment::log_path(&dir, base);
            let (file, header) = Segment::read_header(storage.as_ref(), &path)?;
            found.push(Found { base, file, header });
        }
        let found = Self::discard_leftovers(storage.as_ref(), &dir, meta.get(), found)?;
        let keep = Keep { committed };
        let segments =
            Self::load_segments(storage.as_ref(), &dir, &config, meta.get(), found, keep)?;
        let tail = segments
            .last()
            .expect("load_segments returns at least the tail");
        if let Some(committed) = committed.filter(|&c| tail.next_index <= c) {
            // Whole entries up to the commit index are missing (the log's last writes were
            // lost, not torn).
            return Err(LogError::Corrupt {
                path: tail.path.clone(),
                position: tail.end,
                reason: CorruptReason::CommittedEntryLost {
                    index: tail.next_index,
                    committed,
                    why: Box::new(CorruptReason::Zeroed),
                },
            });
        }
        let durability = Durability::new(
            config.flush,
            config.background_flusher,
            tail.file.clone(),
            dir.clone(),
        );
        let log = PartitionLog {
            dir,
            storage,
            config,
            meta,
            segments,
            durability,
        };
        info!(dir = %log.dir.display(), state = ?log.state(), "opened partition log");
        Ok(log)
    }

    /// Deletes segments left by an interrupted reset (an older generation), an interrupted
    /// roll (an invalid header on the last file) or an interrupted purge (wholly below the
    /// start).
    fn discard_leftovers(
        storage: &dyn Storage,
        dir: &Path,
        meta: LogMeta,
        found: Vec<Found>,
    ) -> Result<Vec<(SegmentHeader, Arc<dyn StorageFile>)>> {
        let remove = |base: LogIndex| crate::segment::remove_files(storage, dir, base);
        let mut removed = 0;
        let mut current = Vec::new();
        for item in found {
            match item.header {
                Some(header) if header.generation < meta.generation => {
                    remove(item.base)?;
                    removed += 1;
                }
                _ => current.push(item),
            }
        }
        let mut kept = Vec::new();
        let count = current.len();
        for (i, item) in current.into_iter().enumerate() {
            let path = crate::segment::log_path(dir, item.base);
            match item.header {
                Some(header) if header.base_index == item.base => kept.push((header, item.file)),
                // A roll syncs the header before it writes a frame: a bad header on the last
                // file with nothing after it is a creation cut short; with frames after it,
                // it is damage.
                None if i + 1 == count
                    && !crate::segment::holds_data(item.file.as_ref(), &path)? =>
                {
                    warn!(segment = %path.display(), "removing a segment whose creation was interrupted");
                    remove(item.base)?;
                    removed += 1;
                }
                _ => {
                    let reason = CorruptReason::BadSegmentHeader;
                    return Err(LogError::Corrupt {
                        path,
                        position: 0,
                        reason,
                    });
                }
            }
        }
        let first_index = meta.first_index();
        while kept.len() > 1 && kept[1].0.base_index <= first_index {
            let (header, _) = kept.remove(0);
            remove(header.base_index)?;
            removed += 1;
        }
        if removed > 0 {
            storage
                .sync_dir(dir)
                .map_err(LogError::io("sync directory", dir))?;
        }
        Ok(kept)
    }

    /// Opens the segments found (their leftovers discarded), oldest first, and checks they
    /// continue one another from the log start. A log with none, or whose entries all end
    /// before its recorded start, starts over with one empty segment at the start.
    fn load_segments(
        storage: &dyn Storage,
        dir: &Path,
        config: &LogConfig,
        meta: LogMeta,
        found: Vec<(SegmentHeader, Arc<dyn StorageFile>)>,
        keep: Keep,
    ) -> Result<Vec<Segment>> {
        let first_index = meta.first_index();
        if let Some((header, _)) = found.first().filter(|(h, _)| h.base_index > first_index) {
            let path = crate::segment::log_path(dir, header.base_index);
            return Err(segment_gap(path, first_index, header.base_index));
        }
        let interval = config.index_interval_bytes;
        let mut segments = open_chain(storage, dir, interval, found, keep)?;
        let tail_behind_start = segments
            .last()
            .is_some_and(|tail| tail.next_index < first_index);
        if tail_behind_start {
            // Only possible when entries up to the start were lost (flush=never and a power
            // cut): start over at the recorded start rather than serve a hole.
            warn!(dir = %dir.display(), "log ends before its recorded start, starting empty there");
            for segment in segments.drain(..) {
                segment.remove(storage)?;
            }
        }
        if segments.is_empty() {
            segments.push(create_first_segment(storage, dir, config, meta)?);
        }
        Ok(segments)
    }

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
        if let Err(err) = &result {
            if !matches!(
                err,
                LogError::InvalidFrame { .. }
                    | LogError::IndexOutOfRange { .. }
                    | LogError::StorageFull { .. }
            ) {
                self.durability.stop();
            }
        }
        result
    }

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

    /// Data frames from the one holding `from`, up to the log end. See [`PartitionLog::read_until`].
    pub fn read(&self, from: Offset, max_bytes: usize) -> Result<ReadFrames> {
        self.read_until(from, self.log_end_offset(), max_bytes)
    }

    /// Whole data frames holding offsets in `[from, end)`, at most `max_bytes` of them but
    /// always at least one when there is one (a consumer must progress past a large batch).
    /// The first frame may start before `from`. Every frame is CRC-checked.
    pub fn read_until(&self, from: Offset, end: Offset, max_bytes: usize) -> Result<ReadFrames> {
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
        let mut budget = max_bytes;
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

    /// Frames (every type) with Raft indexes in `[from, until)`, at most `max_bytes` of them
    /// but at least one, for Raft replication.
    pub fn read_by_index(
        &self,
        from: LogIndex,
        until: LogIndex,
        max_bytes: usize,
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
        let mut budget = max_bytes;
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

    fn truncate_at(&mut self, cut_index: LogIndex) -> Result<()> {
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
    fn remove_purged_segments(&mut self) -> Result<()> {
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

    /// Syncs and closes. Dropping the log does the same, best effort.
    pub fn close(self) -> Result<()> {
        if self.config.flush != FlushPolicy::Never {
            self.durability.flush()?;
        }
        Ok(())
    }
}

/// What recovery must keep: entries up to the persisted Raft commit index.
#[derive(Debug, Clone, Copy)]
struct Keep {
    committed: Option<LogIndex>,
}

/// Opens the tail segment, logging where recovery cut it, and syncs it.
fn open_tail_logged(
    storage: &dyn Storage,
    dir: &Path,
    header: SegmentHeader,
    file: Arc<dyn StorageFile>,
    last_term: Option<crate::types::Term>,
    interval: u64,
    keep: Keep,
) -> Result<Segment> {
    let (segment, cut) = Segment::open_tail(
        storage,
        dir,
        header,
        file,
        last_term,
        interval,
        keep.committed,
    )?;
    if let Some(cut) = cut {
        warn!(
            segment = %segment.path.display(),
            position = cut.position,
            reason = %cut.reason,
            bytes_zeroed = cut.bytes_zeroed,
            "cut the log's torn tail"
        );
    }
    // What recovery found may be in the page cache only (the last process died before its
    // sync). The log now serves it, and Raft counts it as this node's persisted log: make it
    // so before anyone sees it.
    segment.sync()?;
    Ok(segment)
}

fn segment_gap(path: PathBuf, expected: LogIndex, found: LogIndex) -> LogError {
    LogError::Corrupt {
        path,
        position: 0,
        reason: CorruptReason::SegmentGap { expected, found },
    }
}

/// Opens the segments found, each sealed one bounded by the length its successor recorded,
/// the last as the tail. A segment sealed without a sync and found damaged becomes the tail:
/// what came after it is deleted.
fn open_chain(
    storage: &dyn Storage,
    dir: &Path,
    interval: u64,
    found: Vec<(SegmentHeader, Arc<dyn StorageFile>)>,
    keep: Keep,
) -> Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::with_capacity(found.len() + 1);
    let mut found = found.into_iter().peekable();
    while let Some((header, file)) = found.next() {
        if let Some(previous) = segments.last() {
            if previous.next_index != header.base_index
                || previous.next_offset != header.base_offset
            {
                let path = previous.path.clone();
                return Err(segment_gap(path, header.base_index, previous.next_index));
            }
        }
        let last_term = segments.last().and_then(|s| s.last_term);
        let Some(next) = found.peek().map(|(next, _)| *next) else {
            segments.push(open_tail_logged(
                storage, dir, header, file, last_term, interval, keep,
            )?);
            break;
        };
        let Some((_, sealed_len)) = next.prev.filter(|(base, _)| *base == header.base_index) else {
            let path = crate::segment::log_path(dir, next.base_index);
            return Err(segment_gap(path, header.base_index, next.base_index));
        };
        let sealed = (sealed_len, next.prev_synced);
        let segment =
            match open_sealed_logged(storage, dir, header, file.clone(), sealed, interval)? {
                Some(segment) => segment,
                // Sealed without a sync (`never`): a power cut may have left it short. Cut the
                // log there, as at a torn tail, and drop what came after.
                None => {
                    let later: Vec<_> = found.by_ref().map(|(later, _)| later).collect();
                    remove_later_segments(storage, dir, &later)?;
                    open_tail_logged(storage, dir, header, file, last_term, interval, keep)?
                }
            };
        segments.push(segment);
    }
    Ok(segments)
}

/// Opens a sealed segment given its `(sealed_len, synced)` as its successor recorded them.
/// `Ok(None)` when it was sealed without a sync and is damaged (logged): the log must be cut
/// there.
fn open_sealed_logged(
    storage: &dyn Storage,
    dir: &Path,
    header: SegmentHeader,
    file: Arc<dyn StorageFile>,
    (sealed_len, synced): (u64, bool),
    interval: u64,
) -> Result<Option<Segment>> {
    let opened = Segment::open_sealed(storage, dir, header, file, sealed_len, synced, interval);
    match opened {
        Ok(segment) if synced => Ok(Some(segment)),
        // Sealed without a sync: sync it now, for the same reason as the tail.
        Ok(segment) => {
            segment.sync()?;
            Ok(Some(segment))
        }
        Err(LogError::Corrupt {
            position, reason, ..
        }) if !synced => {
            warn!(
                segment = %crate::segment::log_path(dir, header.base_index).display(),
                position,
                %reason,
                "a segment sealed without a sync is damaged, cutting the log there"
            );
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Deletes the segments after a cut, last first, the directory synced after each: a crash
/// leaves a prefix of segments.
fn remove_later_segments(storage: &dyn Storage, dir: &Path, later: &[SegmentHeader]) -> Result<()> {
    for later in later.iter().rev() {
        crate::segment::remove_files(storage, dir, later.base_index)?;
        storage
            .sync_dir(dir)
            .map_err(LogError::io("sync directory", dir))?;
    }
    Ok(())
}

/// Creates the one empty segment of a log that starts over at its recorded start.
fn create_first_segment(
    storage: &dyn Storage,
    dir: &Path,
    config: &LogConfig,
    meta: LogMeta,
) -> Result<Segment> {
    let header = SegmentHeader {
        base_index: meta.first_index(),
        base_offset: meta.start_offset,
        generation: meta.generation,
        prev: None,
        prev_synced: false,
        created_ms: config.clock.now_ms(),
    };
    let space = Space::unreserved(storage);
    let segment = Segment::create(storage, space, dir, header, config.extent_bytes)?;
    storage
        .sync_dir(dir)
        .map_err(LogError::io("sync directory", dir))?;
    Ok(segment)
}

/// A configured duration in milliseconds as a timestamp difference, saturating (a `u64::MAX`
/// retention means forever, not a negative age).
fn ms_to_timestamp(ms: u64) -> TimestampMs {
    TimestampMs::try_from(ms).unwrap_or(TimestampMs::MAX)
}

//! Opening a log: recovery. Files left by an interrupted reset (an older generation), roll
//! (an invalid header on the last file) or purge (wholly below the start) are deleted; the
//! segments found must continue one another from the start in `meta`; each sealed segment is
//! bounded by the length its successor recorded; the tail is rescanned, cut at its first torn,
//! corrupt or stale frame, and synced before the log serves it.
//!
//! Invariant: recovery never cuts an entry at or below the persisted Raft commit index
//! (`Keep`): a log that would lose one is not opened (`CorruptReason::CommittedEntryLost`).
//! A segment sealed without a sync (`never`) and found damaged is cut like a torn tail, and
//! the segments after it are deleted, last first.
//!
//! It reads `{dir}/meta` and every `{dir}/{base_index:020}.log`; their layouts are in `meta`
//! and `segment`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::LogConfig;
use crate::error::{CorruptReason, LogError, Result};
use crate::flush::Durability;
use crate::meta::{LogMeta, META_FILE, MetaFile};
use crate::segment::{Segment, SegmentHeader};
use crate::space::Space;
use crate::storage::{Storage, StorageFile};
use crate::types::LogIndex;

use super::PartitionLog;

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

/// What recovery must keep: entries up to the persisted Raft commit index.
#[derive(Debug, Clone, Copy)]
struct Keep {
    committed: Option<LogIndex>,
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
        if let Some(previous) = segments.last()
            && (previous.next_index != header.base_index
                || previous.next_offset != header.base_offset)
        {
            let path = previous.path.clone();
            return Err(segment_gap(path, header.base_index, previous.next_index));
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

//! `LogStore`: openraft's `RaftLogStorage` over a partition's [`PartitionLog`]. One copy of the
//! data: an appended entry is a frame in a segment, conflict truncation cuts the segment tail,
//! purge moves the log start.
//!
//! File I/O runs on tokio's blocking threads, never on its workers. `append` returns once the
//! frames are written (readable); openraft's `IOFlushed` callback is completed by the log's
//! flusher once the partition's flush policy is met (group commit under `always`). The vote
//! is kept in a [`SlotFile`] synced on every store; the committed index in another, never
//! synced (openraft allows it to lag).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use stave_log::slots::{SlotContents, SlotFile};
use stave_log::storage::Storage;
use stave_log::{LogConfig, LogIndex, PartitionLog};

use crate::entry::{from_frame, to_frame};
use crate::state_machine::InstalledSnapshots;
use crate::types::{EntryOf, LogIdOf, TypeConfig, VoteOf, from_log_id, to_log_id};

const VOTE_FILE: &str = "vote";
const VOTE_MAGIC: u32 = 0x5654_5453; // "STTV"
const COMMITTED_FILE: &str = "committed";
const COMMITTED_MAGIC: u32 = 0x4354_5453; // "STTC"
/// How long a purge past the log's end waits for the snapshot install that explains it.
const SNAPSHOT_INSTALL_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(2);
/// The most bytes of entries one replication read returns (openraft has no byte cap itself).
const REPLICATION_READ_BYTES_MAX: usize = 8 << 20;

/// A cheap handle: clones share the log (the reader openraft asks for is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Set once the group stops: an append waiting for disk space gives up.
    closing: tokio::sync::watch::Sender<bool>,
    log: Mutex<PartitionLog>,
    vote: Mutex<SlotFile>,
    committed: Mutex<SlotFile>,
    vote_value: Mutex<Option<VoteOf>>,
    committed_value: Mutex<Option<LogIdOf>>,
    installed: InstalledSnapshots,
}

fn io_error(err: stave_log::LogError) -> io::Error {
    io::Error::other(err)
}

/// Whether `err` is the log's `StorageFull`: an append to retry once space is freed.
fn is_storage_full(err: &io::Error) -> bool {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<stave_log::LogError>())
        .is_some_and(|inner| matches!(inner, stave_log::LogError::StorageFull { .. }))
}

/// How long an append that found no disk space waits before it tries again: from the first
/// to the last, doubling.
const NO_SPACE_RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(50);
const NO_SPACE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Appends up to this many bytes run on the caller's thread when the log is free
/// ([`LogStore::with_log_inline`]): a copy of this size into the page cache takes microseconds.
const INLINE_APPEND_BYTES_MAX: usize = 64 << 10;

/// Reads of at most this many frames run on the caller's thread when the log is free: Raft's
/// reads of up to this many entries, and fetches of up to this many records (a frame holds
/// at least one).
const INLINE_READ_FRAMES_MAX: u64 = 4;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn encode_vote(vote: &VoteOf) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0..8].copy_from_slice(&vote.leader_id.term.to_le_bytes());
    out[8..16].copy_from_slice(&vote.leader_id.voted_for.to_le_bytes());
    out[16] = u8::from(vote.committed);
    out
}

fn decode_vote(payload: &[u8]) -> Option<VoteOf> {
    let bytes: &[u8; 17] = payload.try_into().ok()?;
    let term = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let node = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    Some(if bytes[16] == 1 {
        VoteOf::new_committed(term, node)
    } else {
        VoteOf::new(term, node)
    })
}

fn encode_log_id(id: &LogIdOf) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..8].copy_from_slice(&id.leader_id.term.to_le_bytes());
    out[8..16].copy_from_slice(&id.index.to_le_bytes());
    out
}

fn decode_log_id(payload: &[u8]) -> Option<LogIdOf> {
    let bytes: &[u8; 16] = payload.try_into().ok()?;
    let term = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let index = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    Some(from_log_id(stave_log::LogId::new(term, index)))
}

/// Reads a slot file; a damaged vote is an error (voting again in a term could elect two
/// leaders), a damaged committed index is only forgotten.
fn read_slot<T>(
    storage: &dyn Storage,
    path: &Path,
    magic: u32,
    decode: fn(&[u8]) -> Option<T>,
    damaged_is_error: bool,
) -> io::Result<(SlotFile, Option<T>)> {
    let (slots, contents) = SlotFile::open(storage, path, magic).map_err(io_error)?;
    let value = match contents {
        SlotContents::Value(payload) => decode(&payload),
        SlotContents::Empty => None,
        SlotContents::Damaged if damaged_is_error => {
            let what = format!("{} holds no valid slot", path.display());
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        SlotContents::Damaged => None,
    };
    Ok((slots, value))
}

impl LogStore {
    /// Opens (or creates) the group's log, vote and committed files in `dir`. `installed`
    /// comes from the group's state machine ([`PartitionStateMachine::installed_snapshots`]),
    /// and so does the producer table this store keeps up to date with its appends and
    /// truncations.
    ///
    /// [`PartitionStateMachine::installed_snapshots`]: crate::PartitionStateMachine::installed_snapshots
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        config: LogConfig,
        installed: InstalledSnapshots,
    ) -> io::Result<LogStore> {
        storage.create_dir_all(dir)?;
        let (committed, committed_value) = read_slot(
            storage.as_ref(),
            &dir.join(COMMITTED_FILE),
            COMMITTED_MAGIC,
            decode_log_id,
            false,
        )?;
        // Recovery keeps every entry this replica knew committed (openraft records an index
        // only once its entries were reported durable here; for a single replica it is the
        // high watermark). Under `never` and `interval`, entries are reported durable before
        // they are synced, and a power cut may take committed ones with it: that is those
        // policies' documented risk, and their logs are recovered as before.
        let keep = committed_value
            .filter(|_| config.flush == stave_log::FlushPolicy::Always)
            .map(|id| LogIndex(id.index));
        let log =
            PartitionLog::open_keeping(storage.clone(), dir, config, keep).map_err(io_error)?;
        // The producer table starts from the state machine's snapshot: count the log after it.
        installed.producers().replay_log(&log)?;
        let (vote, vote_value) = read_slot(
            storage.as_ref(),
            &dir.join(VOTE_FILE),
            VOTE_MAGIC,
            decode_vote,
            true,
        )?;
        storage.sync_dir(dir)?;
        Ok(LogStore {
            shared: Arc::new(Shared {
                closing: tokio::sync::watch::Sender::new(false),
                log: Mutex::new(log),
                vote: Mutex::new(vote),
                committed: Mutex::new(committed),
                vote_value: Mutex::new(vote_value),
                committed_value: Mutex::new(committed_value),
                installed,
            }),
        })
    }

    /// Runs `op` on the log from a blocking thread.
    async fn with_log<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut PartitionLog) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || op(&mut lock(&shared.log)))
            .await
            .map_err(io::Error::other)?
    }

    /// Runs a short `op` (a small append or read: a copy to or from the page cache) on the
    /// caller's thread when the log is free, else like [`LogStore::with_log`]. At low load a
    /// produce crosses two threads fewer (the blocking pool's hand-off both ways), which is
    /// most of its latency; a reader holding the log (CRC-checking a large fetch) is never
    /// waited for here. `inline` decides, with the log in hand, whether `op` is short enough.
    async fn with_log_inline<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut PartitionLog) -> io::Result<T> + Send + 'static,
        inline: impl FnOnce(&PartitionLog) -> bool,
    ) -> io::Result<T> {
        match self.try_inline(op, inline) {
            Ok(result) => result,
            Err(op) => self.with_log(op).await,
        }
    }

    /// Runs `op` here if the log is free and `inline` agrees; gives `op` back otherwise.
    fn try_inline<T, Op>(
        &self,
        op: Op,
        inline: impl FnOnce(&PartitionLog) -> bool,
    ) -> Result<io::Result<T>, Op>
    where
        Op: FnOnce(&mut PartitionLog) -> io::Result<T>,
    {
        let mut log = match self.shared.log.try_lock() {
            Ok(log) => log,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(op),
        };
        if inline(&log) {
            Ok(op(&mut log))
        } else {
            Err(op)
        }
    }

    /// Seeds a pristine replica (no vote, no log) of a new group with the group's initial
    /// membership at log id (term 0, index 0), synced, before its Raft starts: what
    /// `Raft::initialize` would append, written on every replica alike, so each can campaign
    /// from the start and no replica's death leaves the others without a membership. Returns
    /// whether it seeded (false: the replica holds state already).
    pub fn seed_membership(&self, membership: &crate::types::MembershipOf) -> io::Result<bool> {
        if lock(&self.shared.vote_value).is_some() {
            return Ok(false);
        }
        let entry = openraft::Entry {
            log_id: from_log_id(stave_log::LogId::new(0, 0)),
            payload: openraft::EntryPayload::Membership(membership.clone()),
        };
        let frame = to_frame(&entry)?;
        let mut log = lock(&self.shared.log);
        if log.next_index().0 != 0 || log.first_index().0 != 0 {
            return Ok(false);
        }
        log.append(&frame, stave_log::LogId::new(0, 0))
            .map_err(io_error)?;
        log.flush().map_err(io_error)?;
        Ok(true)
    }

    /// The group is stopping: an append waiting for disk space gives up (with an error to
    /// openraft, which is stopping anyway).
    pub fn close(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Whether an append of `bytes` would find disk space now (see
    /// [`PartitionLog::check_space`]): a leader asks before it proposes, so a write that
    /// cannot fit is refused with `StorageFull` instead of waiting in Raft for space.
    pub fn check_space(&self, bytes: u64) -> Result<(), stave_log::LogError> {
        lock(&self.shared.log).check_space(bytes)
    }

    /// One try at an append: all of `frames` or none. `callback` is taken (and registered
    /// for when the frames are durable) only when they went in.
    async fn append_once(
        &self,
        frames: Arc<Vec<(Bytes, stave_log::LogId)>>,
        callback: Arc<Mutex<Option<IOFlushed<TypeConfig>>>>,
    ) -> io::Result<()> {
        let producers = self.shared.installed.producers().clone();
        let bytes: usize = frames.iter().map(|(frame, _)| frame.len()).sum();
        let op = move |log: &mut PartitionLog| {
            let Some(&(_, first)) = frames.first() else {
                if let Some(callback) = lock(&callback).take() {
                    callback.io_completed(Ok(()));
                }
                return Ok(());
            };
            // An empty log may start anywhere (openraft's own suite appends at index 2 to an
            // empty store): start it right before the first entry.
            if log.first_index() == log.next_index() && first.index > log.next_index() {
                let before = stave_log::LogId::new(first.term.0, first.index.0 - 1);
                let offset = log.log_end_offset();
                log.reset_to(before, offset).map_err(io_error)?;
            }
            // Frames an earlier try wrote: it found room for them, not for all.
            let done = frames
                .iter()
                .take_while(|(_, id)| id.index < log.next_index())
                .count();
            let pos = match append_counted(log, &frames[done..], &producers)? {
                Some(pos) => pos,
                // Every frame went in, but the try failed after: make them durable here.
                None => {
                    log.flush().map_err(io_error)?;
                    log.durable_pos()
                }
            };
            // The completion runs on the flusher once the flush policy is met; it only sends
            // on openraft's channel, so it never blocks on this log's lock.
            if let Some(callback) = lock(&callback).take() {
                log.on_durable(
                    pos,
                    Box::new(move |result| callback.io_completed(result.map_err(io_error))),
                );
            }
            Ok(())
        };
        if bytes <= INLINE_APPEND_BYTES_MAX {
            // Not when the append starts a segment (a seal, new files, a directory sync).
            self.with_log_inline(op, |log| !log.would_roll(bytes as u64))
                .await
        } else {
            self.with_log(op).await
        }
    }

    /// The log's first and next record offsets: `[start, end)` is what it holds.
    pub async fn offsets(&self) -> io::Result<(u64, u64)> {
        // Two numbers held in memory: read here unless another thread holds the log.
        self.with_log_inline(
            |log| Ok((log.log_start_offset().0, log.log_end_offset().0)),
            |_| true,
        )
        .await
    }

    /// How many segments the log has and the bytes of frames they hold.
    pub async fn usage(&self) -> io::Result<crate::stats::LogUsage> {
        self.with_log_inline(
            |log| {
                Ok(crate::stats::LogUsage {
                    segments: log.segment_bases().len() as u64,
                    bytes: log.size_bytes(),
                })
            },
            |_| true,
        )
        .await
    }

    /// Data frames holding offsets in `[from, end)`, at most `bytes_max` of them (at least
    /// one), as runs of whole frames sliced from the segments. `from` must lie in the log
    /// (see [`LogStore::offsets`]); pass the high watermark as `end` to read committed data.
    pub async fn read(
        &self,
        from: u64,
        end: u64,
        bytes_max: usize,
    ) -> io::Result<stave_log::ReadFrames> {
        let op = move |log: &mut PartitionLog| {
            log.read_until(stave_log::Offset(from), stave_log::Offset(end), bytes_max)
                .map_err(io_error)
        };
        // A fetch of the last few records (a consumer keeping up) is read on the caller's
        // thread: at most that many frames to CRC-check, like the entries Raft reads inline.
        if end.saturating_sub(from) <= INLINE_READ_FRAMES_MAX {
            self.with_log_inline(op, |_| true).await
        } else {
            self.with_log(op).await
        }
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, if any.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64) -> io::Result<Option<u64>> {
        self.with_log(move |log| {
            log.offset_for_timestamp(timestamp_ms)
                .map(|offset| offset.map(|o| o.0))
                .map_err(io_error)
        })
        .await
    }

    /// The last Raft index that `policy` lets retention purge, if any (whole sealed segments
    /// only).
    pub async fn retention_point(
        &self,
        policy: stave_log::RetentionPolicy,
    ) -> io::Result<Option<u64>> {
        self.with_log(move |log| Ok(log.retention_point_with(policy).map(|index| index.0)))
            .await
    }

    /// The stored frames with Raft indexes in `[start, end)` that the log holds.
    pub async fn frames(&self, start: u64, end: u64) -> io::Result<Vec<stave_log::StoredFrame>> {
        self.read_frames(start, end, usize::MAX).await
    }

    /// Frames with indexes in `[start, end)` that the log holds, at most `bytes_max` of them
    /// (but at least one).
    async fn read_frames(
        &self,
        start: u64,
        end: u64,
        bytes_max: usize,
    ) -> io::Result<Vec<stave_log::StoredFrame>> {
        let op = move |log: &mut PartitionLog| {
            let start = start.max(log.first_index().0);
            let end = end.min(log.next_index().0);
            if start >= end {
                return Ok(Vec::new());
            }
            log.read_by_index(LogIndex(start), LogIndex(end), bytes_max)
                .map_err(io_error)
        };
        // A few entries (what the state machine applies at low load) are read from the
        // mapped segments on the caller's thread.
        if end.saturating_sub(start) <= INLINE_READ_FRAMES_MAX {
            self.with_log_inline(op, |_| true).await
        } else {
            self.with_log(op).await
        }
    }

    /// Entries with indexes in `[start, end)`, at most `bytes_max` of them (at least one).
    async fn read_entries(
        &self,
        start: u64,
        end: u64,
        bytes_max: usize,
    ) -> io::Result<Vec<EntryOf>> {
        let frames = self.read_frames(start, end, bytes_max).await?;
        frames.into_iter().map(from_frame).collect()
    }
}

/// Appends `frames` (none of them in the log yet) and counts them in the producer table,
/// under the log's lock so that the table follows the log's order. All of them at once; or,
/// when the disk lacks room for all, as many as fit one by one, so that a long append (a
/// follower catching up) progresses as space comes instead of waiting for room for all of
/// it. Returns where the last one ends (none when there was none), `StorageFull` when some
/// did not fit.
fn append_counted(
    log: &mut PartitionLog,
    frames: &[(Bytes, stave_log::LogId)],
    producers: &crate::producers::Producers,
) -> io::Result<Option<stave_log::WritePos>> {
    let now_ms = log.config().clock.now_ms();
    match log.append_all(frames.iter().map(|(frame, id)| (frame.as_ref(), *id))) {
        Ok(appended) => {
            let counted = frames
                .iter()
                .map(|(frame, _)| frame.as_ref())
                .zip(&appended);
            producers.record_appended(counted, now_ms)?;
            return Ok(appended.last().map(|a| a.pos));
        }
        Err(stave_log::LogError::StorageFull { .. }) if frames.len() > 1 => {}
        Err(err) => return Err(io_error(err)),
    }
    let mut pos = None;
    for (frame, id) in frames {
        let appended = log.append(frame, *id).map_err(io_error)?;
        producers.record_appended([(frame.as_ref(), &appended)], now_ms)?;
        pos = Some(appended.pos);
    }
    Ok(pos)
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf>, io::Error> {
        let (start, end) = bounds(&range);
        self.read_entries(start, end, usize::MAX).await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf>, io::Error> {
        Ok(*lock(&self.shared.vote_value))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<EntryOf>, io::Error> {
        self.read_entries(start, end, REPLICATION_READ_BYTES_MAX)
            .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let state = self.with_log(|log| Ok(log.state())).await?;
        Ok(LogState {
            last_purged_log_id: state.last_purged.map(from_log_id),
            last_log_id: state.last.map(from_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf) -> Result<(), io::Error> {
        let vote = *vote;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            // Always synced, whatever the flush policy: a forgotten vote can elect two leaders.
            lock(&shared.vote)
                .store(&encode_vote(&vote), true)
                .map_err(io_error)?;
            *lock(&shared.vote_value) = Some(vote);
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf>) -> Result<(), io::Error> {
        let Some(committed) = committed else {
            return Ok(());
        };
        // Not synced: a 64-byte write into the page cache, done here rather than on a
        // blocking thread.
        lock(&self.shared.committed)
            .store(&encode_log_id(&committed), false)
            .map_err(io_error)?;
        *lock(&self.shared.committed_value) = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf>, io::Error> {
        Ok(*lock(&self.shared.committed_value))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let frames: Vec<(Bytes, stave_log::LogId)> = entries
            .into_iter()
            .map(|entry| Ok((to_frame(&entry)?, to_log_id(&entry.log_id))))
            .collect::<io::Result<_>>()?;
        let frames = Arc::new(frames);
        let callback = Arc::new(Mutex::new(Some(callback)));
        let mut wait = NO_SPACE_RETRY_MIN;
        let mut waiting_since = None;
        loop {
            match self.append_once(frames.clone(), callback.clone()).await {
                Err(err) if is_storage_full(&err) => {}
                result => {
                    if let Some(since) = waiting_since {
                        let waited_ms = std::time::Instant::elapsed(&since).as_millis() as u64;
                        tracing::info!(waited_ms, "disk space found, appends resume");
                    }
                    return result;
                }
            }
            // No space on the disk: nothing was written. Openraft waits for this append, so a
            // follower stops acknowledging (the others carry on) and catches up once space is
            // freed. A leader asks `check_space` before it proposes a client's batch, so it
            // gets here only through a race or with its own entries (a blank after election).
            if waiting_since.is_none() {
                waiting_since = Some(std::time::Instant::now());
                let dir = lock(&self.shared.log).dir().display().to_string();
                tracing::warn!(%dir, "no disk space for an append, waiting for space");
            }
            let mut closing = self.shared.closing.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = closing.wait_for(|closing| *closing) => {
                    return Err(io::Error::other("the group stopped while an append waited for disk space"));
                }
            }
            wait = (wait * 2).min(NO_SPACE_RETRY_MAX);
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf>) -> Result<(), io::Error> {
        let last = last_log_id.map(|id| LogIndex(id.index));
        let producers = self.shared.installed.producers().clone();
        self.with_log(move |log| {
            log.truncate_after(last).map_err(io_error)?;
            producers.truncate_after(last.map(|index| index.0))
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf) -> Result<(), io::Error> {
        self.shared.installed.counters().purged();
        let id = to_log_id(&log_id);
        let past_end = self
            .with_log(move |log| Ok(id.index >= log.next_index()))
            .await?;
        if !past_end {
            return self
                .with_log(move |log| log.purge_to(id.index).map_err(io_error))
                .await;
        }
        // Past the end: the entries up to `log_id` are in a snapshot this node is installing;
        // the log restarts after it, at the snapshot's offset.
        let installed = self
            .shared
            .installed
            .next_offset_at(id.index.0, SNAPSHOT_INSTALL_WAIT_MAX)
            .await;
        let next_offset = match installed {
            Some(next_offset) => next_offset,
            None => {
                // Not after an install (openraft's storage suite does this): keep the offsets
                // where they are. In a running group this would be a bug, so say so loudly.
                let offset = self.with_log(|log| Ok(log.log_end_offset().0)).await?;
                tracing::error!(purged = %id, offset, "purge past the log's end without a snapshot there");
                offset
            }
        };
        self.with_log(move |log| {
            log.reset_to(id, stave_log::Offset(next_offset))
                .map_err(io_error)
        })
        .await
    }
}

//! A simulated disk for power-cut tests. Every write goes to a volatile image; `sync_data`
//! makes a file's image durable, `sync_dir` a directory's creations and removals. At a seeded
//! crash point the next mutating call fails (tearing the write it was), the process "loses
//! power", and [`SimStorage::power_cut`] decides what the disk kept:
//!
//! - [`CrashMode::DropUnsynced`]: every write since the file's last sync is lost, except the
//!   last one, which is torn: a random prefix reaches the disk, and the rest of its range is
//!   zero-filled or keeps its stale bytes;
//! - [`CrashMode::Reorder`]: each unsynced write is independently kept, lost or torn, as a
//!   disk that reorders writes might leave them.
//!
//! Unsynced directory operations survive as a random prefix (journaled metadata is ordered).
//! Handles opened before a power cut fail afterwards. `view` past a file's end panics: on a
//! real mmap it would be SIGBUS.
//!
//! A full disk is simulated too: with a capacity ([`SimStorage::set_capacity`]) a file that
//! would grow past it fails with `ENOSPC` and is left as it was (files count in 4 KiB blocks),
//! and [`SimStorage::fail_with_no_space`] makes chosen operations on chosen paths fail so,
//! whatever the capacity.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{Storage, StorageFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    DropUnsynced,
    Reorder,
}

/// A mutating operation, as [`SimStorage::fail_with_no_space`] chooses which to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    Create,
    Allocate,
    Write,
}

type NoSpaceFilter = Arc<dyn Fn(&Path, SimOp) -> bool + Send + Sync>;

/// Files take space in blocks of this size.
const BLOCK_BYTES: u64 = 4096;

/// An in-memory disk shared by every handle cloned from it.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimStorage").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct SimState {
    inodes: HashMap<u64, Inode>,
    volatile_dir: BTreeMap<PathBuf, u64>,
    durable_dir: BTreeMap<PathBuf, u64>,
    unsynced_dir_ops: Vec<DirOp>,
    next_inode: u64,
    /// Mutating operations so far; the one numbered `crash_at` fails and tears.
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    /// Bumped by every power cut; handles from an older epoch fail.
    epoch: u64,
    syncs: u64,
    /// Bytes the disk holds; none: unlimited.
    capacity: Option<u64>,
    /// Operations that fail with ENOSPC whatever the capacity.
    no_space: Option<NoSpaceFilter>,
}

impl SimState {
    /// Bytes taken by the files the directory tree names, in whole blocks.
    fn used_bytes(&self) -> u64 {
        let live: std::collections::HashSet<u64> = self.volatile_dir.values().copied().collect();
        live.iter()
            .filter_map(|inode| self.inodes.get(inode))
            .map(|inode| blocks(inode.volatile.len() as u64))
            .sum()
    }

    /// Fails with ENOSPC when `op` on `path` is to fail, or when growing a file from `from` to
    /// `to` bytes does not fit the capacity.
    fn check_space(&self, path: &Path, op: SimOp, from: u64, to: u64) -> io::Result<()> {
        if self.no_space.as_ref().is_some_and(|fail| fail(path, op)) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let growth = blocks(to).saturating_sub(blocks(from));
        match self.capacity {
            Some(capacity) if growth > 0 && self.used_bytes() + growth > capacity => {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            _ => Ok(()),
        }
    }
}

fn blocks(len: u64) -> u64 {
    len.div_ceil(BLOCK_BYTES) * BLOCK_BYTES
}

#[derive(Default, Clone)]
struct Inode {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Write>,
}

#[derive(Clone)]
enum Write {
    Data { pos: u64, bytes: Vec<u8> },
    Len(u64),
}

#[derive(Clone)]
enum DirOp {
    Create {
        parent: PathBuf,
        path: PathBuf,
        inode: u64,
    },
    Remove {
        parent: PathBuf,
        path: PathBuf,
    },
}

impl DirOp {
    fn parent(&self) -> &Path {
        match self {
            DirOp::Create { parent, .. } | DirOp::Remove { parent, .. } => parent,
        }
    }

    fn apply(&self, dir: &mut BTreeMap<PathBuf, u64>) {
        match self {
            DirOp::Create { path, inode, .. } => {
                dir.insert(path.clone(), *inode);
            }
            DirOp::Remove { path, .. } => {
                dir.remove(path);
            }
        }
    }
}

/// SplitMix64: enough randomness for fault choices, and replayable from a seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power cut")
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl SimStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes mutating operation number `op` (counted from now) fail and tear.
    pub fn crash_after(&self, op: u64) {
        let mut state = self.lock();
        state.crash_at = Some(state.ops + op);
    }

    /// Mutating operations so far (writes, allocations, syncs, creations, removals).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Limits the disk to `capacity` bytes (none: unlimited). Files already larger stay.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Bytes the files take, in whole blocks.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// Makes every operation `fail` picks fail with ENOSPC and change nothing (none: stop).
    pub fn fail_with_no_space(
        &self,
        fail: Option<impl Fn(&Path, SimOp) -> bool + Send + Sync + 'static>,
    ) {
        self.lock().no_space = fail.map(|fail| Arc::new(fail) as NoSpaceFilter);
    }

    /// Loses power: decides what reached the disk, and starts afresh from it. Handles opened
    /// before fail from now on.
    pub fn power_cut(&self, seed: u64, mode: CrashMode) {
        let mut rng = SplitMix(seed);
        let mut state = self.lock();
        let state = &mut *state;
        let kept_ops = rng.below(state.unsynced_dir_ops.len() as u64 + 1) as usize;
        for op in state.unsynced_dir_ops.drain(..).take(kept_ops) {
            op.apply(&mut state.durable_dir);
        }
        for inode in state.inodes.values_mut() {
            let mut image = std::mem::take(&mut inode.durable);
            let count = inode.unsynced.len();
            for (i, write) in inode.unsynced.drain(..).enumerate() {
                let fate = match mode {
                    CrashMode::DropUnsynced if i + 1 == count => 2,
                    CrashMode::DropUnsynced => 0,
                    CrashMode::Reorder => rng.below(3),
                };
                apply_with_fate(&mut image, write, fate, &mut rng);
            }
            inode.volatile = image.clone();
            inode.durable = image;
        }
        state.volatile_dir = state.durable_dir.clone();
        let live: std::collections::HashSet<u64> = state.durable_dir.values().copied().collect();
        state.inodes.retain(|inode, _| live.contains(inode));
        state.crash_at = None;
        state.crashed = false;
        state.epoch += 1;
    }

    /// Counts a mutating operation; fails when it is the crash point or after it.
    fn tick(state: &mut SimState, epoch: u64) -> io::Result<bool> {
        if state.crashed || epoch != state.epoch {
            return Err(power_lost());
        }
        state.ops += 1;
        if state.crash_at == Some(state.ops) {
            state.crashed = true;
            return Ok(true);
        }
        Ok(false)
    }
}

/// fate 0: lost; 1: kept; 2: torn (a prefix kept, the rest zeroed or left stale).
fn apply_with_fate(image: &mut Vec<u8>, write: Write, fate: u64, rng: &mut SplitMix) {
    match (write, fate) {
        (_, 0) => {}
        (Write::Len(len), _) => {
            if len as usize > image.len() {
                image.resize(len as usize, 0);
            }
        }
        (Write::Data { pos, bytes }, 1) => write_image(image, pos, &bytes),
        (Write::Data { pos, bytes }, _) => {
            let kept = rng.below(bytes.len() as u64 + 1) as usize;
            write_image(image, pos, &bytes[..kept]);
            if rng.below(2) == 0 {
                write_image(image, pos + kept as u64, &vec![0u8; bytes.len() - kept]);
            }
        }
    }
}

fn write_image(image: &mut Vec<u8>, pos: u64, bytes: &[u8]) {
    let end = pos as usize + bytes.len();
    if end > image.len() {
        image.resize(end, 0);
    }
    image[pos as usize..end].copy_from_slice(bytes);
}

impl Storage for SimStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        Ok(state
            .volatile_dir
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.lock();
        let epoch = state.epoch;
        let inode = match state.volatile_dir.get(path) {
            Some(&inode) => inode,
            None if create => {
                state.check_space(path, SimOp::Create, 0, 0)?;
                if SimStorage::tick(&mut state, epoch)? {
                    return Err(power_lost());
                }
                state.next_inode += 1;
                let inode = state.next_inode;
                state.inodes.insert(inode, Inode::default());
                state.volatile_dir.insert(path.to_path_buf(), inode);
                let parent = parent_of(path);
                state.unsynced_dir_ops.push(DirOp::Create {
                    parent,
                    path: path.into(),
                    inode,
                });
                inode
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    path.display().to_string(),
                ));
            }
        };
        Ok(Arc::new(SimFile {
            storage: self.clone(),
            path: path.to_path_buf(),
            inode,
            epoch,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let epoch = state.epoch;
        if SimStorage::tick(&mut state, epoch)? {
            return Err(power_lost());
        }
        if state.volatile_dir.remove(path).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                path.display().to_string(),
            ));
        }
        state.unsynced_dir_ops.push(DirOp::Remove {
            parent: parent_of(path),
            path: path.into(),
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let epoch = state.epoch;
        if SimStorage::tick(&mut state, epoch)? {
            return Err(power_lost());
        }
        let (synced, pending): (Vec<DirOp>, Vec<DirOp>) = state
            .unsynced_dir_ops
            .drain(..)
            .partition(|op| op.parent() == dir);
        for op in synced {
            op.apply(&mut state.durable_dir);
        }
        state.unsynced_dir_ops = pending;
        Ok(())
    }

    fn available_bytes(&self, _path: &Path) -> io::Result<u64> {
        let state = self.lock();
        Ok(match state.capacity {
            Some(capacity) => capacity.saturating_sub(state.used_bytes()),
            None => u64::MAX / 2,
        })
    }
}

struct SimFile {
    storage: SimStorage,
    path: PathBuf,
    inode: u64,
    epoch: u64,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("inode", &self.inode)
            .finish()
    }
}

impl SimFile {
    /// Runs a mutating operation. At the crash point, `torn` decides what the failing call
    /// leaves behind before the error.
    fn mutate(
        &self,
        growth: Option<(SimOp, u64)>,
        op: impl FnOnce(&mut Inode),
        torn: impl FnOnce(&mut Inode, &mut SplitMix),
    ) -> io::Result<()> {
        let mut state = self.storage.lock();
        if let Some((kind, to)) = growth
            && state.epoch == self.epoch
        {
            let from = state
                .inodes
                .get(&self.inode)
                .map_or(0, |i| i.volatile.len() as u64);
            state.check_space(&self.path, kind, from, to)?;
        }
        let crash_now = SimStorage::tick(&mut state, self.epoch)?;
        let seed = state.ops;
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(power_lost)?;
        if crash_now {
            torn(inode, &mut SplitMix(seed));
            return Err(power_lost());
        }
        op(inode);
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&Inode) -> io::Result<T>) -> io::Result<T> {
        let state = self.storage.lock();
        if state.epoch != self.epoch {
            return Err(power_lost());
        }
        f(state.inodes.get(&self.inode).ok_or_else(power_lost)?)
    }
}

fn record_write(inode: &mut Inode, pos: u64, bytes: Vec<u8>) {
    write_image(&mut inode.volatile, pos, &bytes);
    inode.unsynced.push(Write::Data { pos, bytes });
}

impl StorageFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        self.read(|inode| Ok(inode.volatile.len() as u64))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let grow = |inode: &mut Inode| {
            if len as usize > inode.volatile.len() {
                inode.volatile.resize(len as usize, 0);
                inode.unsynced.push(Write::Len(len));
            }
        };
        self.mutate(Some((SimOp::Allocate, len)), grow, |_, _| {})
    }

    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        let bytes: Vec<u8> = bufs.concat();
        let whole = bytes.clone();
        let end = pos + bytes.len() as u64;
        self.mutate(
            Some((SimOp::Write, end)),
            move |inode| record_write(inode, pos, whole),
            move |inode, rng| {
                let kept = rng.below(bytes.len() as u64 + 1) as usize;
                record_write(inode, pos, bytes[..kept].to_vec());
            },
        )
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.read(|inode| {
            let end = pos as usize + buf.len();
            let src = inode.volatile.get(pos as usize..end).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the file",
                )
            })?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn view(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.read(|inode| {
            let end = pos as usize + len;
            let file_len = inode.volatile.len();
            assert!(
                end <= file_len,
                "view of [{pos}, {end}) past a {file_len}-byte file: SIGBUS"
            );
            Ok(Bytes::copy_from_slice(&inode.volatile[pos as usize..end]))
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.mutate(
            None,
            |inode| {
                inode.durable = inode.volatile.clone();
                inode.unsynced.clear();
            },
            |_, _| {},
        )?;
        self.storage.lock().syncs += 1;
        Ok(())
    }
}

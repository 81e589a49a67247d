//! The file layer under the log. Two implementations: [`FsStorage`] (real files: `pwritev`,
//! `fallocate`, `fdatasync`, read-only mmap views) and [`SimStorage`] (in memory, for tests:
//! at a power cut it loses what was never synced).
//!
//! Contract the log relies on, and `SimStorage` enforces:
//! - a write is durable only after `sync_data` on its file returns;
//! - creating or removing a file is durable only after `sync_dir` on its directory;
//! - `view` never reaches past a file's length (a real mmap would raise SIGBUS), and files
//!   only grow while open (the log never shrinks a file; a cut writes zeros instead).

mod fs;
mod sim;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

pub use fs::{DiskBytes, FsStorage, disk_bytes};
pub use sim::{CrashMode, SimOp, SimStorage};

/// A directory tree of files.
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing; creates it (empty) when `create` is set and it
    /// does not exist. Never truncates.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Bytes this process may still allocate on the file system holding `path` (an existing
    /// file or directory): `statvfs`'s `f_bavail * f_frsize` for real files.
    fn available_bytes(&self, path: &Path) -> io::Result<u64>;
}

/// Whether `err` says the disk (or the user's quota) is full: an answer the log gives back
/// as `LogError::StorageFull`, not a failure that stops it.
pub fn is_no_space(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || err.kind() == io::ErrorKind::StorageFull
        || err.kind() == io::ErrorKind::QuotaExceeded
}

/// One open file.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    fn len(&self) -> io::Result<u64>;
    /// Grows the file to at least `len` bytes of zeros, reserving the space (`fallocate`).
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Writes all of `bufs`, back to back, at `pos` (`pwritev`).
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()>;
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// `len` bytes at `pos` as `Bytes`: a slice of a read-only mmap for real files (no copy).
    /// The range must lie within the file.
    fn view(&self, pos: u64, len: usize) -> io::Result<Bytes>;
    /// Makes every write made before the call durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

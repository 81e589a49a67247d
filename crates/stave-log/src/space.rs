//! Disk space for a log's files. A log reserves space ahead of its writes (`fallocate`), and
//! a full disk must be an answer, not a death: growth that does not fit is refused with
//! [`LogError::StorageFull`] before anything is written, the log keeps running, and the same
//! append succeeds once space is freed.
//!
//! Growth first tries the step the caller would like (a whole extent), then only what the
//! write needs: a 16 MiB extent that does not fit must not refuse a 4 KiB batch.
//!
//! `LogConfig::reserve_bytes` stays free for what must not fail for lack of space: recovery,
//! a new log's first segment, slot files (votes, the log start), snapshots and the
//! controller's log. Growth for appends checks the free space first and leaves the reserve
//! alone; growth for those others ([`Space::unreserved`]) may use it.

use std::path::Path;

use crate::error::{LogError, Result};
use crate::storage::{Storage, StorageFile, is_no_space};

/// Where growth takes its space from, and how much of it must stay free.
#[derive(Clone, Copy)]
pub(crate) struct Space<'a> {
    storage: &'a dyn Storage,
    reserve_bytes: u64,
}

impl<'a> Space<'a> {
    /// Growth for appends: leaves `reserve_bytes` free.
    pub fn for_appends(storage: &'a dyn Storage, reserve_bytes: u64) -> Space<'a> {
        Space {
            storage,
            reserve_bytes,
        }
    }

    /// Growth that may use the reserve (recovery, a new log, slot files).
    pub fn unreserved(storage: &'a dyn Storage) -> Space<'a> {
        Space {
            storage,
            reserve_bytes: 0,
        }
    }

    /// Grows `file` (at `path`) from `current` bytes to `wanted` if that fits, else to
    /// `needed`; returns the new length. Nothing changes when neither fits.
    pub fn grow(
        &self,
        file: &dyn StorageFile,
        path: &Path,
        current: u64,
        needed: u64,
        wanted: u64,
    ) -> Result<u64> {
        debug_assert!(current < needed && needed <= wanted);
        let available = self.available(path)?;
        let free = available.saturating_sub(self.reserve_bytes);
        let mut targets = vec![wanted];
        if needed < wanted {
            targets.push(needed);
        }
        for target in targets {
            if target - current > free {
                continue;
            }
            match file.allocate(target) {
                Ok(()) => return Ok(target),
                Err(err) if is_no_space(&err) => continue,
                Err(err) => return Err(LogError::io("allocate", path)(err)),
            }
        }
        Err(self.full(path, needed - current, available))
    }

    /// Whether `bytes` more, and `headroom_bytes` beyond them, could be allocated now without
    /// digging into the reserve.
    pub fn check(&self, path: &Path, bytes: u64, headroom_bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let available = self.available(path)?;
        if available.saturating_sub(self.reserve_bytes) < bytes + headroom_bytes {
            return Err(self.full(path, bytes, available));
        }
        Ok(())
    }

    /// The answer for a write that found no space (`needed_bytes` more were wanted).
    pub fn full(&self, path: &Path, needed_bytes: u64, available_bytes: u64) -> LogError {
        LogError::StorageFull {
            path: path.to_path_buf(),
            needed_bytes,
            available_bytes,
            reserve_bytes: self.reserve_bytes,
        }
    }

    /// Maps a failed `op` on `path` that wanted `needed_bytes`: no space is `StorageFull`,
    /// anything else an I/O error.
    pub fn io_error(
        &self,
        op: &'static str,
        path: &Path,
        needed_bytes: u64,
    ) -> impl FnOnce(std::io::Error) -> LogError + '_ {
        let path = path.to_path_buf();
        move |err| {
            if is_no_space(&err) {
                let available = self.storage.available_bytes(&path).unwrap_or(0);
                self.full(&path, needed_bytes, available)
            } else {
                LogError::io(op, path)(err)
            }
        }
    }

    fn available(&self, path: &Path) -> Result<u64> {
        self.storage
            .available_bytes(path)
            .map_err(LogError::io("check the free space of", path))
    }
}

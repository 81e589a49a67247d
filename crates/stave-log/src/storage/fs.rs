//! Real files. Writes are `pwritev`, space is reserved with `fallocate`, reads are slices of a
//! read-only mmap that is remapped (never shrunk) as the file grows.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::Mmap;

use super::{Storage, StorageFile};

/// `pwritev` takes at most this many buffers per call (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

#[derive(Debug, Default, Clone)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(FsFile {
            file,
            map: Mutex::new(Bytes::new()),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        Ok(disk_bytes(path)?.available)
    }
}

/// The size of the file system holding a path, and what this process may still allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskBytes {
    pub total: u64,
    pub available: u64,
}

/// `statvfs` of the file system holding `path` (an existing file or directory).
pub fn disk_bytes(path: &Path) -> io::Result<DiskBytes> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: `statvfs` writes only into the struct it is given, which outlives the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let (total, available, block_bytes): (u64, u64, u64) =
        (stat.f_blocks, stat.f_bavail, stat.f_frsize);
    Ok(DiskBytes {
        total: total.saturating_mul(block_bytes),
        available: available.saturating_mul(block_bytes),
    })
}

#[derive(Debug)]
struct FsFile {
    file: File,
    /// The current read-only mapping of the whole file; readers hold slices of it, so an old
    /// mapping lives on until its last slice is dropped.
    map: Mutex<Bytes>,
}

impl StorageFile for FsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.len()?;
        if len <= current {
            return Ok(());
        }
        let offset = libc::off_t::try_from(current).map_err(io::Error::other)?;
        let extra = libc::off_t::try_from(len - current).map_err(io::Error::other)?;
        // SAFETY: plain syscall on a descriptor this struct owns.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, offset, extra) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Some file systems cannot reserve space: grow the file sparsely instead. A full
            // disk then surfaces as a failed write (never SIGBUS: we never write through mmap).
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => self.file.set_len(len),
            _ => Err(err),
        }
    }

    fn write_all_at(&self, bufs: &[&[u8]], mut pos: u64) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let count = slices.len().min(IOV_MAX);
            let offset = libc::off_t::try_from(pos).map_err(io::Error::other)?;
            // SAFETY: `IoSlice` is ABI-compatible with `iovec`; the buffers outlive the call.
            let written = unsafe {
                libc::pwritev(
                    self.file.as_raw_fd(),
                    slices.as_ptr().cast::<libc::iovec>(),
                    count as libc::c_int,
                    offset,
                )
            };
            if written < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if written == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pwritev wrote nothing",
                ));
            }
            pos += written as u64;
            IoSlice::advance_slices(&mut slices, written as usize);
        }
        Ok(())
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn view(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let end = pos
            .checked_add(len as u64)
            .ok_or_else(|| io::Error::other("view overflows"))?;
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if end > map.len() as u64 {
            let file_len = self.len()?;
            if end > file_len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("view of [{pos}, {end}) past the end of a {file_len}-byte file"),
                ));
            }
            // SAFETY: read-only mapping of a file this process never shrinks (rule: grow, or
            // write zeros; see the module docs). Mapping at most the current length means no
            // page past the end of the file is ever touched.
            let mmap = unsafe { Mmap::map(&self.file)? };
            *map = Bytes::from_owner(mmap);
        }
        Ok(map.slice(pos as usize..end as usize))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

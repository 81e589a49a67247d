//! The partition's `meta` file: where the log logically starts, and its generation.
//!
//! Two 64-byte slots, A and B, each with a sequence number and a CRC. A store writes the
//! slot not holding the newest value and syncs it, so a torn store leaves the other slot
//! intact; a load takes the valid slot with the higher sequence number.
//!
//! ```text
//!  0 magic u32 | 4 version u16 | 6 flags u16 (bit 0: last_purged is set) | 8 seq u64
//! 16 generation u64 | 24 purged_term u64 | 32 purged_index u64 | 40 start_offset u64
//! 48 reserved u64 | 56 crc u32 (over 0..56) | 60 reserved u32
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::{u16_at, u32_at, u64_at};
use crate::storage::{Storage, StorageFile};
use crate::types::{LogId, LogIndex, Offset, Term};

const META_MAGIC: u32 = 0x4d56_5453; // "STVM"
const META_VERSION: u16 = 1;
const SLOT_LEN: usize = 64;
pub(crate) const META_FILE: &str = "meta";

/// Where the log starts. `generation` grows on every `reset_to`: segments written by an
/// older generation are leftovers of an interrupted reset and are deleted on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogMeta {
    pub generation: u64,
    pub last_purged: Option<LogId>,
    pub start_offset: Offset,
}

impl LogMeta {
    /// The Raft index of the first entry the log may hold.
    pub fn first_index(&self) -> LogIndex {
        self.last_purged.map_or(LogIndex(0), |id| id.index.next())
    }
}

#[derive(Debug)]
pub(crate) struct MetaFile {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    seq: u64,
    current: LogMeta,
}

fn encode_slot(seq: u64, meta: &LogMeta) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[0..4].copy_from_slice(&META_MAGIC.to_le_bytes());
    slot[4..6].copy_from_slice(&META_VERSION.to_le_bytes());
    let purged = meta.last_purged.unwrap_or_default();
    slot[6..8].copy_from_slice(&u16::from(meta.last_purged.is_some()).to_le_bytes());
    slot[8..16].copy_from_slice(&seq.to_le_bytes());
    slot[16..24].copy_from_slice(&meta.generation.to_le_bytes());
    slot[24..32].copy_from_slice(&purged.term.0.to_le_bytes());
    slot[32..40].copy_from_slice(&purged.index.0.to_le_bytes());
    slot[40..48].copy_from_slice(&meta.start_offset.0.to_le_bytes());
    let crc = crc32fast::hash(&slot[..56]);
    slot[56..60].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode_slot(slot: &[u8]) -> Option<(u64, LogMeta)> {
    if slot.len() < SLOT_LEN
        || u32_at(slot, 0) != META_MAGIC
        || u16_at(slot, 4) != META_VERSION
        || u32_at(slot, 56) != crc32fast::hash(&slot[..56])
    {
        return None;
    }
    let last_purged = (u16_at(slot, 6) & 1 == 1).then(|| LogId {
        term: Term(u64_at(slot, 24)),
        index: LogIndex(u64_at(slot, 32)),
    });
    let meta = LogMeta {
        generation: u64_at(slot, 16),
        last_purged,
        start_offset: Offset(u64_at(slot, 40)),
    };
    Some((u64_at(slot, 8), meta))
}

impl MetaFile {
    /// Loads the meta file. `Ok(Err(reason))` when it is missing (`MissingMeta`) or holds no
    /// valid slot (`NoValidMetaSlot`): the caller decides whether that is an interrupted
    /// creation (no segment exists yet, since `create` is durable before the first segment is
    /// made) or corruption.
    pub fn load(
        storage: &dyn Storage,
        dir: &Path,
    ) -> Result<std::result::Result<MetaFile, CorruptReason>> {
        let path = dir.join(META_FILE);
        let file = match storage.open(&path, false) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(CorruptReason::MissingMeta));
            }
            Err(err) => return Err(LogError::io("open", &path)(err)),
        };
        let len = file.len().map_err(LogError::io("stat", &path))?;
        let mut bytes = vec![0u8; (len as usize).min(2 * SLOT_LEN)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(LogError::io("read", &path))?;
        let newest = bytes
            .chunks(SLOT_LEN)
            .filter_map(decode_slot)
            .max_by_key(|(seq, _)| *seq);
        Ok(match newest {
            Some((seq, current)) => Ok(MetaFile {
                file,
                path,
                seq,
                current,
            }),
            None if bytes.iter().all(|&b| b == 0) => Err(CorruptReason::MissingMeta),
            None => Err(CorruptReason::NoValidMetaSlot),
        })
    }

    /// Creates (or overwrites an incomplete) meta file holding `meta`, durably.
    pub fn create(storage: &dyn Storage, dir: &Path, meta: LogMeta) -> Result<MetaFile> {
        let path = dir.join(META_FILE);
        let file = storage
            .open(&path, true)
            .map_err(LogError::io("create", &path))?;
        let mut meta_file = MetaFile {
            file,
            path,
            seq: 0,
            current: meta,
        };
        meta_file.store(meta)?;
        storage
            .sync_dir(dir)
            .map_err(LogError::io("sync directory", dir))?;
        Ok(meta_file)
    }

    pub fn get(&self) -> LogMeta {
        self.current
    }

    /// Stores `meta` durably (written and synced before returning).
    pub fn store(&mut self, meta: LogMeta) -> Result<()> {
        let seq = self.seq + 1;
        let slot = encode_slot(seq, &meta);
        let position = (seq % 2) * SLOT_LEN as u64;
        self.file
            .write_all_at(&[&slot], position)
            .map_err(LogError::io("write", &self.path))?;
        self.file
            .sync_data()
            .map_err(LogError::io("sync", &self.path))?;
        self.seq = seq;
        self.current = meta;
        Ok(())
    }
}

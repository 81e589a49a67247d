//! The partition's `meta` file: where the log logically starts, and its generation, kept in
//! a [`SlotFile`] (two CRC'd slots; every store synced).
//!
//! ```text
//! payload: 0 flags u8 (bit 0: last_purged is set) | 1 generation u64 | 9 purged_term u64
//!          17 purged_index u64 | 25 start_offset u64
//! ```

use std::path::Path;

use crate::error::{CorruptReason, LogError, Result};
use crate::frame::u64_at;
use crate::slots::{SlotContents, SlotFile};
use crate::storage::Storage;
use crate::types::{LogId, LogIndex, Offset, Term};

const META_MAGIC: u32 = 0x4d56_5453; // "STVM"
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
    slots: SlotFile,
    current: LogMeta,
}

fn encode(meta: &LogMeta) -> [u8; 33] {
    let mut out = [0u8; 33];
    let purged = meta.last_purged.unwrap_or_default();
    out[0] = u8::from(meta.last_purged.is_some());
    out[1..9].copy_from_slice(&meta.generation.to_le_bytes());
    out[9..17].copy_from_slice(&purged.term.0.to_le_bytes());
    out[17..25].copy_from_slice(&purged.index.0.to_le_bytes());
    out[25..33].copy_from_slice(&meta.start_offset.0.to_le_bytes());
    out
}

fn decode(payload: &[u8]) -> Option<LogMeta> {
    if payload.len() != 33 {
        return None;
    }
    let last_purged = (payload[0] & 1 == 1).then(|| LogId {
        term: Term(u64_at(payload, 9)),
        index: LogIndex(u64_at(payload, 17)),
    });
    Some(LogMeta {
        generation: u64_at(payload, 1),
        last_purged,
        start_offset: Offset(u64_at(payload, 25)),
    })
}

impl MetaFile {
    /// Loads the meta file. `Ok(Err(reason))` when it is missing or empty (`MissingMeta`) or
    /// holds no valid slot (`NoValidMetaSlot`): the caller decides whether that is an
    /// interrupted creation (no segment exists yet, since `create` is durable before the first
    /// segment is made) or corruption.
    pub fn load(
        storage: &dyn Storage,
        dir: &Path,
    ) -> Result<std::result::Result<MetaFile, CorruptReason>> {
        let path = dir.join(META_FILE);
        match storage.open(&path, false) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(CorruptReason::MissingMeta));
            }
            Err(err) => return Err(LogError::io("open", &path)(err)),
            Ok(_) => {}
        }
        let (slots, contents) = SlotFile::open(storage, &path, META_MAGIC)?;
        Ok(match contents {
            SlotContents::Value(payload) => match decode(&payload) {
                Some(current) => Ok(MetaFile { slots, current }),
                None => Err(CorruptReason::NoValidMetaSlot),
            },
            SlotContents::Empty => Err(CorruptReason::MissingMeta),
            SlotContents::Damaged => Err(CorruptReason::NoValidMetaSlot),
        })
    }

    /// Creates (or overwrites an incomplete) meta file holding `meta`, durably.
    pub fn create(storage: &dyn Storage, dir: &Path, meta: LogMeta) -> Result<MetaFile> {
        let path = dir.join(META_FILE);
        let (slots, _) = SlotFile::open(storage, &path, META_MAGIC)?;
        let mut meta_file = MetaFile {
            slots,
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
        self.slots.store(&encode(&meta), true)?;
        self.current = meta;
        Ok(())
    }
}

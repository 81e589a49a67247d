//! A small value kept in two 64-byte slots, A and B, each with a sequence number and a CRC,
//! for state that must survive a torn write: the log's `meta`, and the Raft layer's vote and
//! committed index.
//!
//! A store writes the slot not holding the newest value (and syncs it when asked), so a torn
//! store leaves the other slot intact; a load takes the valid slot with the higher sequence
//! number. A value stored without a sync may be lost at a power cut, and then the previous
//! one is read back, or none if there was none.
//!
//! ```text
//!  0 magic u32 | 4 payload_len u16 | 6 reserved u16 | 8 seq u64 | 16 payload (up to 40 bytes)
//! 56 crc u32 (over 0..56) | 60 reserved u32
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::frame::{u16_at, u32_at, u64_at};
use crate::storage::{Storage, StorageFile};

const SLOT_LEN: usize = 64;
/// The largest value a slot holds.
pub const SLOT_PAYLOAD_MAX: usize = 40;

/// What a slot file held when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotContents {
    /// The newest valid value.
    Value(Vec<u8>),
    /// The file is missing, empty or all zeros: nothing was ever stored durably.
    Empty,
    /// Bytes are there, but no slot is valid.
    Damaged,
}

#[derive(Debug)]
pub struct SlotFile {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    magic: u32,
    seq: u64,
}

fn encode(magic: u32, seq: u64, payload: &[u8]) -> [u8; SLOT_LEN] {
    debug_assert!(payload.len() <= SLOT_PAYLOAD_MAX);
    let mut slot = [0u8; SLOT_LEN];
    slot[0..4].copy_from_slice(&magic.to_le_bytes());
    slot[4..6].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    slot[8..16].copy_from_slice(&seq.to_le_bytes());
    slot[16..16 + payload.len()].copy_from_slice(payload);
    let crc = crc32fast::hash(&slot[..56]);
    slot[56..60].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode(magic: u32, slot: &[u8]) -> Option<(u64, Vec<u8>)> {
    if slot.len() < SLOT_LEN
        || u32_at(slot, 0) != magic
        || u32_at(slot, 56) != crc32fast::hash(&slot[..56])
    {
        return None;
    }
    let len = usize::from(u16_at(slot, 4));
    (len <= SLOT_PAYLOAD_MAX).then(|| (u64_at(slot, 8), slot[16..16 + len].to_vec()))
}

impl SlotFile {
    /// Opens (creating if needed) the slot file at `path`, whose slots carry `magic`. A file it
    /// creates is not made durable until the first synced store (and a sync of its directory).
    pub fn open(
        storage: &dyn Storage,
        path: &Path,
        magic: u32,
    ) -> Result<(SlotFile, SlotContents)> {
        let file = storage
            .open(path, true)
            .map_err(LogError::io("open", path))?;
        let mut len = file.len().map_err(LogError::io("stat", path))?;
        if len < 2 * SLOT_LEN as u64 {
            // Both slots' space is taken now, while the file is opened: a store then never
            // needs a block, so a full disk cannot fail a vote (it would stop the group).
            file.allocate(2 * SLOT_LEN as u64)
                .map_err(LogError::io("allocate", path))?;
            len = 2 * SLOT_LEN as u64;
        }
        let mut bytes = vec![0u8; (len as usize).min(2 * SLOT_LEN)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(LogError::io("read", path))?;
        let newest = bytes
            .chunks(SLOT_LEN)
            .filter_map(|s| decode(magic, s))
            .max_by_key(|(seq, _)| *seq);
        let (seq, contents) = match newest {
            Some((seq, value)) => (seq, SlotContents::Value(value)),
            None if bytes.iter().all(|&b| b == 0) => (0, SlotContents::Empty),
            None => (0, SlotContents::Damaged),
        };
        Ok((
            SlotFile {
                file,
                path: path.to_path_buf(),
                magic,
                seq,
            },
            contents,
        ))
    }

    /// Stores `payload` (at most [`SLOT_PAYLOAD_MAX`] bytes) in the older slot; durable on
    /// return when `sync` is set.
    pub fn store(&mut self, payload: &[u8], sync: bool) -> Result<()> {
        assert!(
            payload.len() <= SLOT_PAYLOAD_MAX,
            "slot payloads are small and fixed by the caller"
        );
        let seq = self.seq + 1;
        let slot = encode(self.magic, seq, payload);
        let position = (seq % 2) * SLOT_LEN as u64;
        // The slots' space was taken at open, so a full disk should never fail this; if a
        // file system does anyway, nothing was stored and the caller may retry.
        self.file.write_all_at(&[&slot], position).map_err(
            |err| match crate::storage::is_no_space(&err) {
                true => LogError::StorageFull {
                    path: self.path.clone(),
                    needed_bytes: SLOT_LEN as u64,
                    available_bytes: 0,
                    reserve_bytes: 0,
                },
                false => LogError::io("write", &self.path)(err),
            },
        )?;
        if sync {
            self.file
                .sync_data()
                .map_err(LogError::io("sync", &self.path))?;
        }
        self.seq = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::storage::{CrashMode, SimStorage};

    /// A store torn by a power cut leaves the previous value (or the new one) readable, never
    /// nothing and never garbage; an unsynced store may be lost but not the synced one before.
    #[test]
    fn a_torn_or_unsynced_store_leaves_the_previous_value() {
        for seed in 0..64 {
            let sim = SimStorage::new();
            let path = Path::new("/d/slots");
            let (mut slots, contents) = SlotFile::open(&sim, path, 7).unwrap();
            assert_eq!(contents, SlotContents::Empty);
            slots.store(b"one", true).unwrap();
            sim.sync_dir(Path::new("/d")).unwrap();
            if seed % 2 == 0 {
                sim.crash_after(1);
                assert!(slots.store(b"two", true).is_err());
            } else {
                slots.store(b"two", false).unwrap();
            }
            let mode = if seed % 4 < 2 {
                CrashMode::DropUnsynced
            } else {
                CrashMode::Reorder
            };
            sim.power_cut(seed, mode);
            let (_, contents) = SlotFile::open(&sim, path, 7).unwrap();
            let one = SlotContents::Value(b"one".to_vec());
            let two = SlotContents::Value(b"two".to_vec());
            assert!(
                contents == one || contents == two,
                "seed {seed}: {contents:?}"
            );
        }
    }

    /// A slot file takes its space when opened: on a disk with no byte left, stores (a vote)
    /// still succeed, synced.
    #[test]
    fn stores_need_no_space_once_the_file_is_open() {
        let sim = SimStorage::new();
        let path = Path::new("/d/vote");
        let (mut slots, _) = SlotFile::open(&sim, path, 7).unwrap();
        sim.set_capacity(Some(sim.used_bytes()));
        for value in [&b"one"[..], b"two", b"three"] {
            slots.store(value, true).unwrap();
        }
        let (_, contents) = SlotFile::open(&sim, path, 7).unwrap();
        assert_eq!(contents, SlotContents::Value(b"three".to_vec()));
    }
}

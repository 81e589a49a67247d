//! The 64-byte header at the start of every segment file.
//!
//! ```text
//! header: 0 magic u32 | 4 version u16 | 6 flags u16 | 8 base_index u64 | 16 base_offset u64
//!         24 generation u64 | 32 prev_base_index u64 (u64::MAX: none) | 40 prev_sealed_len u64
//!         48 created_ms i64 | 56 header_crc u32 (over 0..56) | 60 reserved u32
//! ```
//!
//! Flag bit 0 is `prev_synced`. Integers are little-endian. A header whose magic, version or
//! CRC does not match decodes to `None`: recovery decides whether that is an interrupted
//! creation or damage.

use crate::frame::{u16_at, u32_at, u64_at};
use crate::types::{LogIndex, Offset, TimestampMs};

pub(crate) const SEGMENT_HEADER_LEN: u64 = 64;
const SEGMENT_MAGIC: u32 = 0x4753_5453; // "STSG"
const SEGMENT_VERSION: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub base_index: LogIndex,
    pub base_offset: Offset,
    pub generation: u64,
    /// The previous segment's base index and sealed length, when there was one.
    pub prev: Option<(LogIndex, u64)>,
    /// Whether the previous segment was synced before this one was created.
    pub prev_synced: bool,
    pub created_ms: TimestampMs,
}

impl SegmentHeader {
    pub(super) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut out = [0u8; SEGMENT_HEADER_LEN as usize];
        out[0..4].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        out[4..6].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&u16::from(self.prev_synced).to_le_bytes());
        out[8..16].copy_from_slice(&self.base_index.0.to_le_bytes());
        out[16..24].copy_from_slice(&self.base_offset.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.generation.to_le_bytes());
        let (prev_base, prev_len) = self.prev.map_or((u64::MAX, 0), |(base, len)| (base.0, len));
        out[32..40].copy_from_slice(&prev_base.to_le_bytes());
        out[40..48].copy_from_slice(&prev_len.to_le_bytes());
        out[48..56].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&out[..56]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        if bytes.len() < SEGMENT_HEADER_LEN as usize
            || u32_at(bytes, 0) != SEGMENT_MAGIC
            || u16_at(bytes, 4) != SEGMENT_VERSION
            || u32_at(bytes, 56) != crc32fast::hash(&bytes[..56])
        {
            return None;
        }
        let prev_base = u64_at(bytes, 32);
        Some(SegmentHeader {
            base_index: LogIndex(u64_at(bytes, 8)),
            base_offset: Offset(u64_at(bytes, 16)),
            generation: u64_at(bytes, 24),
            prev: (prev_base != u64::MAX).then(|| (LogIndex(prev_base), u64_at(bytes, 40))),
            prev_synced: u16_at(bytes, 6) & 1 == 1,
            created_ms: u64_at(bytes, 48) as i64,
        })
    }
}

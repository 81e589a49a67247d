//! The frame: one Raft entry, stored on disk, sent between replicas and returned by fetch as
//! the same bytes. Little-endian throughout.
//!
//! ```text
//! header (38 bytes), stamped by `PartitionLog::append` on every replica
//!   0  magic        u8    FRAME_MAGIC
//!   1  type         u8    1 data, 2 blank, 3 membership, 4 command
//!   2  header_crc   u32   crc32 over every header byte but itself (0..2 and 6..38)
//!   6  batch_len    u32   body length in bytes (the frame is HEADER_LEN + batch_len bytes)
//!  10  base_offset  u64   offset of the first record; for control frames the next offset
//!  18  raft_term    u64
//!  26  raft_index   u64
//!  34  crc          u32   crc32 over the whole body, computed by the producer, never recomputed
//! body (40 bytes + records), built by the producer (see `batch`)
//!   0  attributes         u16  bits 0..=2 compression codec (0 = none), bit 5 control
//!   2  last_offset_delta  u32  record_count - 1 for data frames, 0 for control frames
//!   6  first_timestamp    i64  ms since the epoch
//!  14  max_timestamp      i64
//!  22  producer_id        i64  -1 when not idempotent
//!  30  producer_epoch     i16
//!  32  base_sequence      i32
//!  36  record_count       u32  0 exactly for control frames
//!  40  records (data) or an opaque payload (control)
//! ```
//!
//! Every control frame has the same body header, [`BodyHeader::CONTROL`]: the control bit,
//! zero timestamps and no producer.
//!
//! An all-zero header is never valid (magic and type are non-zero): recovery treats it as the
//! end of the log, which is why a cut zeroes everything after it.

use crate::error::CorruptReason;
use crate::types::{LogId, LogIndex, Offset, Term, TimestampMs};

pub const FRAME_MAGIC: u8 = 0xB7;
pub const HEADER_LEN: usize = 38;
pub const BODY_HEADER_LEN: usize = 40;
/// The smallest possible frame: a header and an empty body header.
pub const FRAME_BYTES_MIN: u64 = (HEADER_LEN + BODY_HEADER_LEN) as u64;
/// No frame is ever larger than this, whatever the configuration says: a corrupt length can
/// not make a reader allocate or scan more.
pub const FRAME_BYTES_LIMIT: u64 = 64 << 20;

pub const ATTR_COMPRESSION_MASK: u16 = 0b111;
pub const ATTR_CONTROL: u16 = 1 << 5;

/// What a frame carries. Only data frames take record offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Data = 1,
    /// openraft's blank entry, appended by every new leader.
    Blank = 2,
    /// A Raft membership change, encoded by the Raft layer.
    Membership = 3,
    /// A state-machine command (controller, `__offsets`), a prost message.
    Command = 4,
}

impl FrameType {
    pub fn from_u8(value: u8) -> Option<FrameType> {
        match value {
            1 => Some(FrameType::Data),
            2 => Some(FrameType::Blank),
            3 => Some(FrameType::Membership),
            4 => Some(FrameType::Command),
            _ => None,
        }
    }

    pub fn is_data(self) -> bool {
        self == FrameType::Data
    }
}

/// The stamped fields of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub frame_type: FrameType,
    pub batch_len: u32,
    pub base_offset: Offset,
    pub log_id: LogId,
    pub crc: u32,
}

/// The fixed fields at the start of every body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyHeader {
    pub attributes: u16,
    pub last_offset_delta: u32,
    pub first_timestamp: TimestampMs,
    pub max_timestamp: TimestampMs,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: u32,
}

pub(crate) fn u16_at(buf: &[u8], at: usize) -> u16 {
    let mut bytes = [0u8; 2];
    bytes.copy_from_slice(&buf[at..at + 2]);
    u16::from_le_bytes(bytes)
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

pub(crate) fn header_crc_of(header: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[0..2]);
    hasher.update(&header[6..HEADER_LEN]);
    hasher.finalize()
}

impl FrameHeader {
    /// Encodes the header, computing `header_crc`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = FRAME_MAGIC;
        out[1] = self.frame_type as u8;
        out[6..10].copy_from_slice(&self.batch_len.to_le_bytes());
        out[10..18].copy_from_slice(&self.base_offset.0.to_le_bytes());
        out[18..26].copy_from_slice(&self.log_id.term.0.to_le_bytes());
        out[26..34].copy_from_slice(&self.log_id.index.0.to_le_bytes());
        out[34..38].copy_from_slice(&self.crc.to_le_bytes());
        let header_crc = header_crc_of(&out);
        out[2..6].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    /// Decodes a stored header, checking magic, type, `header_crc` and the length bounds.
    /// `Ok(None)` means fewer than `HEADER_LEN` bytes were given.
    pub fn decode(buf: &[u8]) -> Result<Option<FrameHeader>, CorruptReason> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if header.iter().all(|&b| b == 0) {
            return Err(CorruptReason::Zeroed);
        }
        let parsed = Self::decode_unchecked(header)?;
        let stored = u32_at(header, 2);
        let computed = header_crc_of(header);
        if stored != computed {
            return Err(CorruptReason::HeaderCrcMismatch { stored, computed });
        }
        Ok(Some(parsed))
    }

    /// Decodes a header without checking `header_crc`: for frames about to be appended, whose
    /// stamped fields are rewritten anyway.
    pub fn decode_unchecked(header: &[u8]) -> Result<FrameHeader, CorruptReason> {
        if header.len() < HEADER_LEN {
            return Err(CorruptReason::Truncated {
                needed: HEADER_LEN as u64,
                available: header.len() as u64,
            });
        }
        if header[0] != FRAME_MAGIC {
            return Err(CorruptReason::BadMagic(header[0]));
        }
        let frame_type = FrameType::from_u8(header[1]).ok_or(CorruptReason::BadType(header[1]))?;
        let batch_len = u32_at(header, 6);
        let frame_len = HEADER_LEN as u64 + u64::from(batch_len);
        if !(FRAME_BYTES_MIN..=FRAME_BYTES_LIMIT).contains(&frame_len) {
            return Err(CorruptReason::LengthOutOfBounds {
                len: frame_len,
                min: FRAME_BYTES_MIN,
                max: FRAME_BYTES_LIMIT,
            });
        }
        Ok(FrameHeader {
            frame_type,
            batch_len,
            base_offset: Offset(u64_at(header, 10)),
            log_id: LogId {
                term: Term(u64_at(header, 18)),
                index: LogIndex(u64_at(header, 26)),
            },
            crc: u32_at(header, 34),
        })
    }

    /// Length of the whole frame, header included.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.batch_len as usize
    }
}

impl BodyHeader {
    /// The body header of every control frame, as `encode_control_frame` writes it.
    pub const CONTROL: BodyHeader = BodyHeader {
        attributes: ATTR_CONTROL,
        last_offset_delta: 0,
        first_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: 0,
    };

    pub fn encode_into(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.attributes.to_le_bytes());
        out[2..6].copy_from_slice(&self.last_offset_delta.to_le_bytes());
        out[6..14].copy_from_slice(&self.first_timestamp.to_le_bytes());
        out[14..22].copy_from_slice(&self.max_timestamp.to_le_bytes());
        out[22..30].copy_from_slice(&self.producer_id.to_le_bytes());
        out[30..32].copy_from_slice(&self.producer_epoch.to_le_bytes());
        out[32..36].copy_from_slice(&self.base_sequence.to_le_bytes());
        out[36..40].copy_from_slice(&self.record_count.to_le_bytes());
    }

    /// Decodes the fixed body fields; `body` must hold at least `BODY_HEADER_LEN` bytes.
    pub fn decode(body: &[u8]) -> Result<BodyHeader, CorruptReason> {
        if body.len() < BODY_HEADER_LEN {
            return Err(CorruptReason::Truncated {
                needed: BODY_HEADER_LEN as u64,
                available: body.len() as u64,
            });
        }
        Ok(BodyHeader {
            attributes: u16_at(body, 0),
            last_offset_delta: u32_at(body, 2),
            first_timestamp: u64_at(body, 6) as i64,
            max_timestamp: u64_at(body, 14) as i64,
            producer_id: u64_at(body, 22) as i64,
            producer_epoch: u16_at(body, 30) as i16,
            base_sequence: u32_at(body, 32) as i32,
            record_count: u32_at(body, 36),
        })
    }

    /// Checks the fields that the frame type constrains: data frames hold at least one
    /// record with dense offset deltas, control frames none.
    pub fn check(&self, frame_type: FrameType) -> Result<(), CorruptReason> {
        let count_ok = if frame_type.is_data() {
            self.record_count >= 1
        } else {
            self.record_count == 0
        };
        if !count_ok {
            return Err(CorruptReason::RecordCount {
                frame_type: frame_type as u8,
                record_count: self.record_count,
            });
        }
        if self.last_offset_delta != self.record_count.saturating_sub(1) {
            return Err(CorruptReason::OffsetDelta {
                last_offset_delta: self.last_offset_delta,
                record_count: self.record_count,
            });
        }
        Ok(())
    }
}

/// A frame checked end to end: header (with `header_crc` when `stamped`), length, body CRC
/// and body header. Returns the header and the body header.
pub fn check_frame(
    frame: &[u8],
    stamped: bool,
) -> Result<(FrameHeader, BodyHeader), CorruptReason> {
    check_frame_with(frame, stamped, true)
}

/// [`check_frame`], optionally without the body CRC: for frames the log checked a moment ago.
pub(crate) fn check_frame_with(
    frame: &[u8],
    stamped: bool,
    verify_body_crc: bool,
) -> Result<(FrameHeader, BodyHeader), CorruptReason> {
    let header = if stamped {
        FrameHeader::decode(frame)?.ok_or(CorruptReason::Truncated {
            needed: HEADER_LEN as u64,
            available: frame.len() as u64,
        })?
    } else {
        FrameHeader::decode_unchecked(frame)?
    };
    let frame_len = header.frame_len();
    if frame.len() < frame_len {
        return Err(CorruptReason::Truncated {
            needed: frame_len as u64,
            available: frame.len() as u64,
        });
    }
    let body = &frame[HEADER_LEN..frame_len];
    let computed = if verify_body_crc {
        crc32fast::hash(body)
    } else {
        header.crc
    };
    if computed != header.crc {
        return Err(CorruptReason::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let body_header = BodyHeader::decode(body)?;
    body_header.check(header.frame_type)?;
    Ok((header, body_header))
}

/// Builds an unstamped control frame (blank, membership or command) around `payload`.
pub fn encode_control_frame(frame_type: FrameType, payload: &[u8]) -> Vec<u8> {
    debug_assert!(!frame_type.is_data());
    encode_unstamped(frame_type, &BodyHeader::CONTROL, payload)
}

/// Builds an unstamped frame from a body header and the bytes after it, checking nothing:
/// for `encode_control_frame`, and for tests that write bodies no builder would.
pub(crate) fn encode_unstamped(
    frame_type: FrameType,
    body: &BodyHeader,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0u8; HEADER_LEN + BODY_HEADER_LEN + payload.len()];
    body.encode_into(&mut frame[HEADER_LEN..HEADER_LEN + BODY_HEADER_LEN]);
    frame[HEADER_LEN + BODY_HEADER_LEN..].copy_from_slice(payload);
    seal_unstamped(&mut frame, frame_type);
    frame
}

/// Writes the header of a frame whose body is in place: type, length and body CRC, with zero
/// offset, term and index (the log stamps those).
pub(crate) fn seal_unstamped(frame: &mut [u8], frame_type: FrameType) {
    let batch_len = (frame.len() - HEADER_LEN) as u32;
    let header = FrameHeader {
        frame_type,
        batch_len,
        base_offset: Offset(0),
        log_id: LogId::default(),
        crc: crc32fast::hash(&frame[HEADER_LEN..]),
    };
    frame[..HEADER_LEN].copy_from_slice(&header.encode());
}

#[cfg(test)]
mod tests;

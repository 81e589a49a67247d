//! `LogError`, the one error type of this crate, and `CorruptReason`, why bytes were refused.

use std::io;
use std::path::PathBuf;

use crate::types::{LogIndex, Offset, Term};

/// Why a frame, a record or a file header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptReason {
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    #[error("unknown frame type {0}")]
    BadType(u8),
    #[error("header crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrcMismatch { stored: u32, computed: u32 },
    #[error("body crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("length {len} outside [{min}, {max}]")]
    LengthOutOfBounds { len: u64, min: u64, max: u64 },
    #[error("needs {needed} bytes, {available} available")]
    Truncated { needed: u64, available: u64 },
    #[error("record count {record_count} does not fit frame type {frame_type}")]
    RecordCount { frame_type: u8, record_count: u32 },
    #[error("last offset delta {last_offset_delta} does not match record count {record_count}")]
    OffsetDelta {
        last_offset_delta: u32,
        record_count: u32,
    },
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(u8),
    #[error("malformed varint")]
    BadVarint,
    #[error("record {record}: {what}")]
    BadRecord { record: u32, what: &'static str },
    #[error("batch attributes {0:#06x} set a bit other than the compression codec")]
    BadAttributes(u16),
    #[error("base offset {base_offset} + {record_count} records overflows")]
    OffsetOverflow { base_offset: u64, record_count: u32 },
    #[error("control frame body header is not the standard one")]
    ControlBodyHeader,
    #[error("{0} bytes left after the last record")]
    TrailingBytes(u64),
    #[error("{0} bytes after the frame's end (one frame per produce request)")]
    BytesAfterFrame(u64),
    #[error("frame type {0} where a data frame was expected")]
    NotData(u8),
    #[error("index {found} where {expected} was expected")]
    IndexOutOfSequence { expected: LogIndex, found: LogIndex },
    #[error("offset {found} where {expected} was expected")]
    OffsetOutOfSequence { expected: Offset, found: Offset },
    #[error("term {found} below the previous frame's term {previous}")]
    TermRegressed { previous: Term, found: Term },
    #[error("all-zero header")]
    Zeroed,
    #[error("file is {file_len} bytes but its successor records a sealed length of {sealed_len}")]
    SealedLengthBeyondFile { sealed_len: u64, file_len: u64 },
    #[error("no valid meta slot")]
    NoValidMetaSlot,
    #[error("bad segment header")]
    BadSegmentHeader,
    #[error("meta file missing while segments exist")]
    MissingMeta,
    #[error("segment ends at {found} where its successor expects {expected}")]
    SegmentGap { expected: LogIndex, found: LogIndex },
    /// Recovery would have to drop entry `index` (for `why`), but entries up to `committed`
    /// were committed: the log is not opened rather than lose them.
    #[error("entry {index} is damaged ({why}) but entries up to {committed} were committed")]
    CommittedEntryLost {
        index: LogIndex,
        committed: LogIndex,
        why: Box<CorruptReason>,
    },
}

/// Invalid configuration, caught when the log is opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("segment_bytes {0} must be within [4096, 1 GiB]")]
    SegmentBytes(u64),
    #[error("extent_bytes {0} must be within [4096, 1 GiB]")]
    ExtentBytes(u64),
    #[error("index_interval_bytes {0} must be at least 1")]
    IndexInterval(u64),
    #[error("frame_bytes_max {value} must be within [{min}, {max}]")]
    FrameBytesMax { value: u64, min: u64, max: u64 },
    #[error("flush policy {0:?} is not one of always, never, interval:<ms>")]
    FlushPolicy(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An input frame (from a producer or a leader) was refused; nothing was written.
    #[error("invalid frame: {reason}")]
    InvalidFrame { reason: CorruptReason },
    /// Stored bytes failed a check: never served.
    #[error("{} is corrupt at position {position}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: CorruptReason,
    },
    #[error("offset {requested} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    #[error("raft index {requested} is outside [{first}, {last_plus_one})")]
    IndexOutOfRange {
        requested: LogIndex,
        first: LogIndex,
        last_plus_one: LogIndex,
    },
    #[error("append of raft index {found} where {expected} comes next")]
    AppendOutOfSequence { expected: LogIndex, found: LogIndex },
    #[error("append with term {found} below the last term {last}")]
    AppendTermRegressed { last: Term, found: Term },
    #[error("invalid log configuration")]
    Config(#[from] ConfigError),
    #[error("failed to {op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The disk has no room for what an append needs, beyond the reserve kept for recovery,
    /// snapshots and votes. An answer, not a failure: nothing was written, the log keeps
    /// running, and the same append succeeds once space is freed.
    #[error(
        "no space for {needed_bytes} more bytes under {}: {available_bytes} bytes free, \
         {reserve_bytes} kept in reserve",
        .path.display()
    )]
    StorageFull {
        path: PathBuf,
        needed_bytes: u64,
        available_bytes: u64,
        reserve_bytes: u64,
    },
    /// An earlier write or sync failed: the partition stops rather than guess what the disk
    /// holds (after a failed fsync the page cache may already have dropped the dirty pages).
    #[error("the log at {} stopped after an i/o failure", .path.display())]
    Stopped { path: PathBuf },
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}

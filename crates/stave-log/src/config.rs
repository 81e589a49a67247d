//! `LogConfig`: the per-partition settings, with the only copy of their defaults.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ConfigError;
use crate::frame::{FRAME_BYTES_LIMIT, FRAME_BYTES_MIN};
use crate::types::TimestampMs;

/// When an append is reported durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// `fdatasync` before an append is reported durable; appends waiting together share one
    /// sync (group commit).
    #[default]
    Always,
    /// Reported durable at once; synced in the background every interval. A power cut can
    /// lose up to one interval of acknowledged writes.
    Interval(Duration),
    /// Reported durable at once; never synced by the log (the OS writes back when it likes).
    /// Under Raft, a majority losing power together can then lose committed entries.
    Never,
}

impl FromStr for FlushPolicy {
    type Err = ConfigError;

    /// Parses `always`, `never` or `interval:<ms>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(FlushPolicy::Always),
            "never" => Ok(FlushPolicy::Never),
            _ => text
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|&ms| ms > 0)
                .map(|ms| FlushPolicy::Interval(Duration::from_millis(ms)))
                .ok_or_else(|| ConfigError::FlushPolicy(text.to_owned())),
        }
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::Always => f.write_str("always"),
            FlushPolicy::Never => f.write_str("never"),
            FlushPolicy::Interval(every) => write!(f, "interval:{}", every.as_millis()),
        }
    }
}

/// How much history a partition keeps. Whole sealed segments go, oldest first; the active
/// segment never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep segments whose newest record is younger than this (`retention.ms`).
    pub retention_ms: Option<u64>,
    /// Keep at most about this many bytes (`retention.bytes`).
    pub retention_bytes: Option<u64>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
        }
    }
}

/// Where the log reads the time (segment age, retention). Tests drive a manual clock.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn now_ms(&self) -> TimestampMs {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() as TimestampMs)
                .unwrap_or(0),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment past this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll to a new segment past this age (`segment.ms`).
    pub segment_ms: Option<u64>,
    /// Space is reserved as a segment grows: doubling from 64 KiB, then in steps of this size.
    pub extent_bytes: u64,
    /// A sparse-index entry every this many bytes of frames (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// The largest frame accepted by `append`.
    pub frame_bytes_max: u64,
    /// Free space that growing the log for appends must leave on the disk. Appends that would
    /// dig into it are refused with `LogError::StorageFull`; what must not fail for lack of
    /// space (recovery, a new log's first segment, snapshots and votes, the controller's log
    /// with 0 here) may use it.
    pub reserve_bytes: u64,
    pub flush: FlushPolicy,
    pub retention: RetentionPolicy,
    /// Run a flusher thread for `Always` and `Interval`. Without one, the owner calls
    /// `PartitionLog::flush` (deterministic tests do).
    pub background_flusher: bool,
    pub clock: Clock,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 << 20,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            extent_bytes: 16 << 20,
            index_interval_bytes: 4096,
            frame_bytes_max: 8 << 20,
            reserve_bytes: 0,
            flush: FlushPolicy::Always,
            retention: RetentionPolicy::default(),
            background_flusher: true,
            clock: Clock::System,
        }
    }
}

/// The largest `segment_bytes` (and `extent_bytes`) a log takes: 1 GiB.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

impl LogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        const GIB: u64 = SEGMENT_BYTES_MAX;
        if !(4096..=GIB).contains(&self.segment_bytes) {
            return Err(ConfigError::SegmentBytes(self.segment_bytes));
        }
        if !(4096..=GIB).contains(&self.extent_bytes) {
            return Err(ConfigError::ExtentBytes(self.extent_bytes));
        }
        if self.index_interval_bytes == 0 {
            return Err(ConfigError::IndexInterval(self.index_interval_bytes));
        }
        if !(FRAME_BYTES_MIN..=FRAME_BYTES_LIMIT).contains(&self.frame_bytes_max) {
            return Err(ConfigError::FrameBytesMax {
                value: self.frame_bytes_max,
                min: FRAME_BYTES_MIN,
                max: FRAME_BYTES_LIMIT,
            });
        }
        Ok(())
    }
}

//! Newtypes for every id and position in the log, so that a function taking an
//! `(Offset, LogIndex)` cannot be called with its arguments swapped.
//!
//! Order of the watermarks the log keeps (Kafka's names):
//! `log_start_offset <= high_watermark <= log_end_offset`; the high watermark belongs to the
//! Raft layer, the other two to [`crate::PartitionLog`].

use std::fmt;

/// A record offset: dense over data records, never taken by control frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

/// A Raft log index: one per frame, data or control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogIndex(pub u64);

/// A Raft term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Term(pub u64);

/// A Raft log id: with standard leader ids, (term, index) is the whole id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LogId {
    pub term: Term,
    pub index: LogIndex,
}

/// A position in the log's write sequence, returned by every append. It only ever grows
/// (a truncation does not move it back), so "durable up to `WritePos`" is unambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WritePos(pub u64);

/// Milliseconds since the Unix epoch, as producers stamp records.
pub type TimestampMs = i64;

impl LogId {
    pub fn new(term: u64, index: u64) -> Self {
        LogId {
            term: Term(term),
            index: LogIndex(index),
        }
    }
}

impl LogIndex {
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.term, self.index)
    }
}

impl fmt::Display for WritePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

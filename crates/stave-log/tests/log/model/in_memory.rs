//! `Model`: the log as a `Vec` of segments of entries in memory, deliberately plain. Every
//! answer is derived by walking that list, and every error the log must return is predicted.

use stave_log::frame::{FRAME_BYTES_MIN, FrameType};
use stave_log::{
    CorruptReason, LogError, LogId, LogIndex, Offset, RetentionPolicy, Term, TimestampMs,
};

use super::FRAME_BYTES_MAX;
use super::ops::Params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ModelRecord {
    pub(super) timestamp: TimestampMs,
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Vec<u8>,
}

/// One entry as appended: the unstamped frame bytes, and what the log should make of them.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) log_id: LogId,
    pub(super) frame_type: FrameType,
    pub(super) base_offset: u64,
    pub(super) records: Vec<ModelRecord>,
    pub(super) frame: Vec<u8>,
}

impl Entry {
    pub(super) fn index(&self) -> u64 {
        self.log_id.index.0
    }

    pub(super) fn next_offset(&self) -> u64 {
        self.base_offset + self.records.len() as u64
    }

    pub(super) fn len(&self) -> u64 {
        self.frame.len() as u64
    }

    pub(super) fn max_timestamp(&self) -> Option<TimestampMs> {
        self.records.iter().map(|r| r.timestamp).max()
    }
}

#[derive(Debug, Clone)]
pub(super) struct ModelSegment {
    pub(super) base_index: u64,
    pub(super) base_offset: u64,
    pub(super) created_ms: TimestampMs,
    /// Every frame physically in the segment, purged ones included.
    pub(super) entries: Vec<Entry>,
}

/// The segment file header; `end` and `size_bytes` count frames after it.
pub(super) const SEGMENT_HEADER_BYTES: u64 = 64;

impl ModelSegment {
    pub(super) fn new(base_index: u64, base_offset: u64, created_ms: TimestampMs) -> Self {
        ModelSegment {
            base_index,
            base_offset,
            created_ms,
            entries: Vec::new(),
        }
    }

    pub(super) fn data_bytes(&self) -> u64 {
        self.entries.iter().map(Entry::len).sum()
    }

    pub(super) fn next_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    pub(super) fn next_offset(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.base_offset, Entry::next_offset)
    }

    pub(super) fn max_timestamp(&self) -> Option<TimestampMs> {
        self.entries.iter().filter_map(Entry::max_timestamp).max()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Model {
    /// Never empty; the last is the tail.
    pub(super) segments: Vec<ModelSegment>,
    pub(super) last_purged: Option<LogId>,
    pub(super) start_offset: u64,
}

/// An input frame for `append_all`, with what the test did to it.
pub(super) struct Input {
    pub(super) frame: Vec<u8>,
    pub(super) log_id: LogId,
    pub(super) corrupt_crc: bool,
    pub(super) entry: Entry,
}

impl Model {
    pub(super) fn new(now: TimestampMs) -> Self {
        Model {
            segments: vec![ModelSegment::new(0, 0, now)],
            last_purged: None,
            start_offset: 0,
        }
    }

    pub(super) fn tail(&self) -> &ModelSegment {
        self.segments.last().expect("the model always has a tail")
    }

    pub(super) fn first_index(&self) -> u64 {
        self.last_purged.map_or(0, |id| id.index.0 + 1)
    }

    pub(super) fn next_index(&self) -> u64 {
        self.tail().next_index()
    }

    pub(super) fn end_offset(&self) -> u64 {
        self.tail().next_offset()
    }

    /// Entries not purged, in order.
    pub(super) fn entries(&self) -> impl Iterator<Item = &Entry> {
        let first = self.first_index();
        self.segments
            .iter()
            .flat_map(|s| s.entries.iter())
            .filter(move |e| e.index() >= first)
    }

    pub(super) fn entry(&self, index: u64) -> Option<&Entry> {
        self.entries().find(|e| e.index() == index)
    }

    pub(super) fn last_log_id(&self) -> Option<LogId> {
        self.entries().last().map(|e| e.log_id).or(self.last_purged)
    }

    pub(super) fn size_bytes(&self) -> u64 {
        self.segments.iter().map(ModelSegment::data_bytes).sum()
    }

    pub(super) fn segment_bases(&self) -> Vec<LogIndex> {
        self.segments
            .iter()
            .map(|s| LogIndex(s.base_index))
            .collect()
    }

    /// What `append_all` must refuse, in the order the log checks: per frame, length, CRC,
    /// trailing bytes, index, term.
    pub(super) fn check_append(&self, inputs: &[Input]) -> Option<Expected> {
        let mut last_term = self.last_log_id().map(|id| id.term);
        for (input, next_index) in inputs.iter().zip(self.next_index()..) {
            let len = input.frame.len() as u64;
            if len > FRAME_BYTES_MAX {
                return Some(Expected::TooLong { len });
            }
            if input.corrupt_crc {
                return Some(Expected::CrcMismatch);
            }
            if input.frame.len() != input.entry.frame.len() {
                let extra = (input.frame.len() - input.entry.frame.len()) as u64;
                return Some(Expected::Trailing { extra });
            }
            if input.log_id.index.0 != next_index {
                return Some(Expected::OutOfSequence {
                    expected: LogIndex(next_index),
                    found: input.log_id.index,
                });
            }
            if let Some(last) = last_term.filter(|&t| t > input.log_id.term) {
                return Some(Expected::TermRegressed {
                    last,
                    found: input.log_id.term,
                });
            }
            last_term = Some(input.log_id.term);
        }
        None
    }

    /// Places valid entries, rolling as the log does.
    pub(super) fn append(&mut self, entries: Vec<Entry>, params: &Params, now: TimestampMs) {
        for (k, entry) in entries.into_iter().enumerate() {
            let tail = self.tail();
            let end = SEGMENT_HEADER_BYTES + tail.data_bytes();
            let full = end + entry.len() > params.segment_bytes;
            let old = k == 0
                && params
                    .segment_ms
                    .is_some_and(|ms| now.saturating_sub(tail.created_ms) >= ms as TimestampMs);
            if !tail.entries.is_empty() && (full || old) {
                let next = ModelSegment::new(tail.next_index(), tail.next_offset(), now);
                self.segments.push(next);
            }
            debug_assert_eq!(entry.index(), self.next_index());
            debug_assert_eq!(entry.base_offset, self.end_offset());
            let tail = self.segments.last_mut().expect("a tail");
            tail.entries.push(entry);
        }
        self.drop_purged_segments();
    }

    /// Drops sealed segments holding only purged entries. `purge_to` and `open` delete them;
    /// so must a roll that seals a tail the log start has passed (else the layout would
    /// change on reopen, and `size_bytes` would count bytes no reader can reach).
    pub(super) fn drop_purged_segments(&mut self) {
        let first = self.first_index();
        while self.segments.len() > 1 && self.segments[1].base_index <= first {
            self.segments.remove(0);
        }
    }

    pub(super) fn truncate_at(&mut self, cut: u64) {
        let keep = self.segments.partition_point(|s| s.base_index <= cut);
        self.segments.truncate(keep.max(1));
        let tail = self.segments.last_mut().expect("a tail");
        tail.entries.retain(|e| e.index() < cut);
    }

    pub(super) fn purge_to(&mut self, index: u64) {
        let entry = self.entry(index).expect("purge inside the log");
        let (log_id, next_offset) = (entry.log_id, entry.next_offset());
        self.last_purged = Some(log_id);
        self.start_offset = next_offset;
        while self.segments.len() > 1 && self.segments[1].base_index <= index + 1 {
            self.segments.remove(0);
        }
    }

    pub(super) fn reset_to(&mut self, last: LogId, next_offset: u64, now: TimestampMs) {
        self.segments = vec![ModelSegment::new(last.index.0 + 1, next_offset, now)];
        self.last_purged = Some(last);
        self.start_offset = next_offset;
    }

    /// The last index retention may purge: a prefix of sealed segments, each older than
    /// `retention_ms` or leaving at least `retention_bytes` behind it.
    pub(super) fn retention_point(
        &self,
        policy: RetentionPolicy,
        now: TimestampMs,
    ) -> Option<LogIndex> {
        let mut remaining = self.size_bytes();
        let mut point = None;
        for segment in &self.segments[..self.segments.len() - 1] {
            let newest = segment.max_timestamp().unwrap_or(segment.created_ms);
            let too_old = policy
                .retention_ms
                .is_some_and(|ms| newest < now.saturating_sub(ms as TimestampMs));
            let too_big = policy
                .retention_bytes
                .is_some_and(|max| remaining - segment.data_bytes() >= max);
            if !(too_old || too_big) {
                break;
            }
            remaining -= segment.data_bytes();
            if !segment.entries.is_empty() {
                point = Some(segment.next_index() - 1);
            }
        }
        point.filter(|&p| p >= self.first_index()).map(LogIndex)
    }

    /// The frames `read_by_index(from, until, bytes_max)` returns.
    pub(super) fn read_by_index(&self, from: u64, until: u64, bytes_max: usize) -> Vec<&Entry> {
        let mut out = Vec::new();
        let mut budget = bytes_max as u64;
        for entry in self.entries().filter(|e| e.index() >= from) {
            if entry.index() >= until || (!out.is_empty() && entry.len() > budget) {
                break;
            }
            budget = budget.saturating_sub(entry.len());
            out.push(entry);
        }
        out
    }

    /// The data frames `read_until(from, end, bytes_max)` returns, and its `next_offset`.
    pub(super) fn read_until(&self, from: u64, end: u64, bytes_max: usize) -> (Vec<&Entry>, u64) {
        let end = end.min(self.end_offset());
        let mut out: Vec<&Entry> = Vec::new();
        if from >= end {
            return (out, from);
        }
        let mut budget = bytes_max as u64;
        let mut next = from;
        let wanted = self
            .entries()
            .filter(|e| e.frame_type.is_data() && e.next_offset() > from);
        for entry in wanted {
            if entry.base_offset >= end || (!out.is_empty() && entry.len() > budget) {
                break;
            }
            budget = budget.saturating_sub(entry.len());
            next = entry.next_offset();
            out.push(entry);
        }
        (out, next)
    }

    pub(super) fn offset_for_timestamp(&self, timestamp: TimestampMs) -> Option<Offset> {
        self.entries()
            .flat_map(|e| {
                e.records
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| (e.base_offset + i as u64, r.timestamp))
            })
            .find(|&(_, t)| t >= timestamp)
            .map(|(offset, _)| Offset(offset))
    }
}

/// An error the model predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expected {
    TooLong {
        len: u64,
    },
    CrcMismatch,
    Trailing {
        extra: u64,
    },
    OutOfSequence {
        expected: LogIndex,
        found: LogIndex,
    },
    TermRegressed {
        last: Term,
        found: Term,
    },
    IndexOutOfRange {
        requested: LogIndex,
        first: LogIndex,
        last_plus_one: LogIndex,
    },
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
}

/// Panics unless `err` is the error the model predicted.
pub(super) fn assert_error(err: &LogError, expected: &Expected, what: &str) {
    let matched = match (err, expected) {
        (LogError::InvalidFrame { reason }, Expected::TooLong { len }) => {
            *reason
                == CorruptReason::LengthOutOfBounds {
                    len: *len,
                    min: FRAME_BYTES_MIN,
                    max: FRAME_BYTES_MAX,
                }
        }
        (LogError::InvalidFrame { reason }, Expected::CrcMismatch) => {
            matches!(reason, CorruptReason::CrcMismatch { .. })
        }
        (LogError::InvalidFrame { reason }, Expected::Trailing { extra }) => {
            *reason == CorruptReason::BytesAfterFrame(*extra)
        }
        (
            LogError::AppendOutOfSequence {
                expected: e,
                found: f,
            },
            Expected::OutOfSequence { expected, found },
        ) => e == expected && f == found,
        (
            LogError::AppendTermRegressed { last: l, found: f },
            Expected::TermRegressed { last, found },
        ) => l == last && f == found,
        (
            LogError::IndexOutOfRange {
                requested: r,
                first: fi,
                last_plus_one: n,
            },
            Expected::IndexOutOfRange {
                requested,
                first,
                last_plus_one,
            },
        ) => r == requested && fi == first && n == last_plus_one,
        (
            LogError::OffsetOutOfRange {
                requested: r,
                log_start: s,
                log_end: e,
            },
            Expected::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            },
        ) => r == requested && s == log_start && e == log_end,
        _ => false,
    };
    assert!(
        matched,
        "{what}: got {err:?}, the model expected {expected:?}"
    );
}

//! The operations of the model test, and the proptest strategies that generate them.

use std::time::Duration;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use stave_log::frame::FrameType;
use stave_log::{FlushPolicy, RetentionPolicy};

/// Settings for one generated case (a reopen may change the sizes).
#[derive(Debug, Clone)]
pub(super) struct Params {
    pub(super) segment_bytes: u64,
    pub(super) segment_ms: Option<u64>,
    pub(super) index_interval_bytes: u64,
    pub(super) flush: FlushPolicy,
    pub(super) background_flusher: bool,
}

/// Picks one of `len` choices; shrinks towards the first. (proptest's `Index`, but one that a
/// named test can construct.)
#[derive(Debug, Clone, Copy)]
pub(super) struct Pick(pub(super) u64);

impl Pick {
    pub(super) fn index(self, len: usize) -> usize {
        assert!(len > 0, "a pick needs a choice");
        ((u128::from(self.0) * len as u128) >> 64) as usize
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    any::<u64>().prop_map(Pick)
}

#[derive(Debug, Clone)]
pub(super) struct RecordSpec {
    pub(super) value_len: usize,
    /// The record's timestamp against the clock at the time of the append.
    pub(super) timestamp_delta_ms: i16,
    pub(super) keyed: bool,
}

#[derive(Debug, Clone)]
pub(super) enum FrameSpec {
    Data {
        seed: u64,
        records: Vec<RecordSpec>,
    },
    Control {
        frame_type: FrameType,
        payload_len: usize,
    },
}

/// A deliberately invalid input, placed on one frame of an append.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    IndexAhead,
    IndexBehind,
    TermRegressed,
    BadCrc,
    TrailingByte,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Append {
        frames: Vec<FrameSpec>,
        /// Bump the term from this frame on.
        bump_at: Option<Pick>,
        fault: Option<(Fault, Pick)>,
    },
    BumpTerm,
    /// `valid` picks `last_kept` in `[first_index - 1, next_index]`, otherwise below.
    TruncateAfter {
        pick: Pick,
        valid: bool,
    },
    /// `valid` picks an index in `[first_index - 2, next_index)`, otherwise at or past the end.
    PurgeTo {
        pick: Pick,
        valid: bool,
    },
    ResetTo {
        index_delta: i16,
        term_bump: u8,
        offset_delta: i16,
    },
    /// Advances the clock, reopens with the given policy if it changed, applies retention.
    Retention {
        advance_ms: u32,
        policy: RetentionPolicy,
    },
    AdvanceClock {
        ms: u32,
    },
    /// Closes (or drops) the log and opens it again, maybe with other sizes.
    Reopen {
        background_flusher: bool,
        close: bool,
        segment_bytes: Option<u64>,
        index_interval_bytes: Option<u64>,
    },
    Flush,
}

pub(super) fn params() -> impl Strategy<Value = Params> {
    let flush = prop_oneof![
        6 => Just(FlushPolicy::Always),
        1 => Just(FlushPolicy::Never),
        1 => Just(FlushPolicy::Interval(Duration::from_millis(5))),
    ];
    (
        4096u64..=16384,
        option::weighted(0.5, 2_000u64..20_000),
        prop_oneof![Just(1u64), 1u64..2048],
        flush,
        any::<bool>(),
    )
        .prop_map(
            |(segment_bytes, segment_ms, index_interval_bytes, flush, background_flusher)| Params {
                segment_bytes,
                segment_ms,
                index_interval_bytes,
                flush,
                background_flusher,
            },
        )
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    (
        prop_oneof![8 => 0usize..200, 2 => 200usize..2500],
        -800i16..800,
        any::<bool>(),
    )
        .prop_map(|(value_len, timestamp_delta_ms, keyed)| RecordSpec {
            value_len,
            timestamp_delta_ms,
            keyed,
        })
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    let control_type = prop_oneof![
        Just(FrameType::Blank),
        Just(FrameType::Membership),
        Just(FrameType::Command),
    ];
    prop_oneof![
        6 => (any::<u64>(), vec(record_spec(), 1..=6))
            .prop_map(|(seed, records)| FrameSpec::Data { seed, records }),
        1 => (control_type, 0usize..300)
            .prop_map(|(frame_type, payload_len)| FrameSpec::Control { frame_type, payload_len }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::IndexAhead),
        Just(Fault::IndexBehind),
        Just(Fault::TermRegressed),
        Just(Fault::BadCrc),
        Just(Fault::TrailingByte),
    ]
}

fn retention_policy() -> impl Strategy<Value = RetentionPolicy> {
    (
        option::weighted(0.7, 500u64..20_000),
        option::weighted(0.5, 1_000u64..40_000),
    )
        .prop_map(|(retention_ms, retention_bytes)| RetentionPolicy {
            retention_ms,
            retention_bytes,
        })
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => (
            vec(frame_spec(), 1..=4),
            option::weighted(0.15, pick()),
            option::weighted(0.12, (fault(), pick())),
        )
            .prop_map(|(frames, bump_at, fault)| Op::Append { frames, bump_at, fault }),
        1 => Just(Op::BumpTerm),
        2 => (pick(), proptest::bool::weighted(0.85))
            .prop_map(|(pick, valid)| Op::TruncateAfter { pick, valid }),
        2 => (pick(), proptest::bool::weighted(0.85))
            .prop_map(|(pick, valid)| Op::PurgeTo { pick, valid }),
        1 => (-8i16..40, 0u8..3, -20i16..200).prop_map(|(index_delta, term_bump, offset_delta)| {
            Op::ResetTo { index_delta, term_bump, offset_delta }
        }),
        2 => (0u32..8_000, retention_policy())
            .prop_map(|(advance_ms, policy)| Op::Retention { advance_ms, policy }),
        1 => (0u32..5_000).prop_map(|ms| Op::AdvanceClock { ms }),
        2 => (
            any::<bool>(),
            any::<bool>(),
            option::weighted(0.2, 4096u64..=16384),
            option::weighted(0.2, 1u64..2048),
        )
            .prop_map(|(background_flusher, close, segment_bytes, index_interval_bytes)| {
                Op::Reopen { background_flusher, close, segment_bytes, index_interval_bytes }
            }),
        2 => Just(Op::Flush),
    ]
}

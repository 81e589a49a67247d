//! `BatchView::parse_produced`, the check a broker runs on a `ProduceRequest.batch` before it
//! proposes anything: one data frame filling the buffer, records that decode. And the
//! differential property the broker depends on: every frame it accepts, the log accepts (a
//! frame the log refused after Raft took it stopped the partition's group, issue 15).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use stave_log::batch::BatchView;
use stave_log::frame::{FRAME_BYTES_LIMIT, FrameType, HEADER_LEN, encode_control_frame};
use stave_log::storage::{SimStorage, Storage};
use stave_log::{CorruptReason, LogConfig, LogError, LogId, PartitionLog};

use crate::support::frame;

fn refusal(bytes: Vec<u8>, frame_bytes_max: u64) -> CorruptReason {
    match BatchView::parse_produced(Bytes::from(bytes), frame_bytes_max) {
        Err(LogError::InvalidFrame { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// One valid frame followed by anything is refused, however natural it looks: a trailing
/// zero byte, or two frames joined as a fetch returns them.
#[test]
fn a_frame_with_bytes_after_it_is_refused() {
    let one = frame(1, 3, 10, 1_000);
    let plus_zero = [one.clone(), vec![0]].concat();
    assert_eq!(
        refusal(plus_zero, FRAME_BYTES_LIMIT),
        CorruptReason::BytesAfterFrame(1)
    );
    let two = frame(2, 1, 5, 1_000);
    let joined = [one.clone(), two.clone()].concat();
    assert_eq!(
        refusal(joined, FRAME_BYTES_LIMIT),
        CorruptReason::BytesAfterFrame(two.len() as u64)
    );
    let view = BatchView::parse_produced(Bytes::from(one.clone()), FRAME_BYTES_LIMIT).unwrap();
    assert_eq!(view.frame().len(), one.len());
    assert_eq!(view.record_count(), 3);
}

/// A control frame (blank, membership, command) is the log's own business, never a producer's.
#[test]
fn a_control_frame_is_refused() {
    for frame_type in [FrameType::Blank, FrameType::Membership, FrameType::Command] {
        let control = encode_control_frame(frame_type, b"payload");
        assert_eq!(
            refusal(control, FRAME_BYTES_LIMIT),
            CorruptReason::NotData(frame_type as u8)
        );
    }
}

/// A frame longer than the bound is refused before it is decoded.
#[test]
fn a_frame_over_the_bound_is_refused() {
    let one = frame(1, 4, 100, 1_000);
    let len = one.len() as u64;
    assert!(BatchView::parse_produced(Bytes::from(one.clone()), len).is_ok());
    assert!(matches!(
        refusal(one, len - 1),
        CorruptReason::LengthOutOfBounds { len: l, max, .. } if l == len && max == len - 1
    ));
}

/// A frame whose records do not decode is refused even though its CRC matches.
#[test]
fn a_frame_with_bad_records_and_a_good_crc_is_refused() {
    // The last record loses its last byte; the length and the CRC are made to agree.
    let mut bad = frame(1, 2, 10, 1_000);
    bad.pop();
    let batch_len = (bad.len() - HEADER_LEN) as u32;
    bad[6..10].copy_from_slice(&batch_len.to_le_bytes());
    reseal(&mut bad);
    assert!(BatchView::parse_produced(Bytes::from(bad), FRAME_BYTES_LIMIT).is_err());
}

/// Recomputes the body CRC, so a mutation reaches the checks behind it.
fn reseal(frame: &mut [u8]) {
    if frame.len() < HEADER_LEN {
        return;
    }
    // The body CRC is the header's last field; the length field says where the body ends.
    let batch_len = u32::from_le_bytes(frame[6..10].try_into().unwrap()) as usize;
    let end = (HEADER_LEN + batch_len).min(frame.len());
    let crc = crc32fast::hash(&frame[HEADER_LEN..end]);
    frame[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// How a generated case spoils a valid frame.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: prop::sample::Index, mask: u8 },
    Truncate(prop::sample::Index),
    Append(Vec<u8>),
    Join(u64),
    SetU32 { at: prop::sample::Index, value: u32 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..=255u8)
            .prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
        any::<u64>().prop_map(Mutation::Join),
        (any::<prop::sample::Index>(), any::<u32>())
            .prop_map(|(at, value)| Mutation::SetU32 { at, value }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::Flip { at, mask } => {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
        }
        Mutation::Truncate(at) => {
            if !bytes.is_empty() {
                bytes.truncate(at.index(bytes.len()));
            }
        }
        Mutation::Append(tail) => bytes.extend_from_slice(tail),
        Mutation::Join(seed) => bytes.extend(frame(*seed, 1, 8, 2_000)),
        Mutation::SetU32 { at, value } => {
            if bytes.len() >= 4 {
                let i = at.index(bytes.len() - 3);
                bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
    }
    bytes
}

fn open_sim(dir: &Path) -> PartitionLog {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let config = LogConfig {
        frame_bytes_max: FRAME_BYTES_LIMIT,
        ..crate::support::small_config()
    };
    PartitionLog::open(storage, dir, config).unwrap()
}

fn cases() -> u32 {
    match std::env::var("STAVE_SOAK") {
        Ok(value) if !value.is_empty() && value != "0" => 20_000,
        _ => 1_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Whatever `parse_produced` accepts, `PartitionLog::append` accepts and reads back
    /// unchanged. Mutations sometimes keep the CRC valid, so the record checks are reached.
    #[test]
    fn every_frame_the_broker_accepts_the_log_accepts(
        seed in any::<u64>(),
        count in 1u32..5,
        mutations in prop::collection::vec(mutation(), 0..4),
        reseal_after in any::<bool>(),
    ) {
        let mut bytes = frame(seed, count, (seed % 50) as usize, 1_000);
        for m in &mutations {
            bytes = apply(bytes, m);
        }
        if reseal_after {
            reseal(&mut bytes);
        }
        let Ok(view) = BatchView::parse_produced(Bytes::from(bytes.clone()), FRAME_BYTES_LIMIT)
        else {
            return Ok(());
        };
        let mut log = open_sim(Path::new("/produced"));
        let appended = log.append(&bytes, LogId::new(1, log.next_index().0));
        prop_assert!(appended.is_ok(), "the broker accepted a frame the log refused: {appended:?}");
        let read = log.read(stave_log::Offset(0), 1 << 20).unwrap();
        let stored: Vec<_> = read.batches().map(|b| b.unwrap()).collect();
        prop_assert_eq!(stored.len(), 1);
        prop_assert_eq!(stored[0].record_count(), view.record_count());
        prop_assert_eq!(&stored[0].frame()[HEADER_LEN..], &bytes[HEADER_LEN..]);
    }
}

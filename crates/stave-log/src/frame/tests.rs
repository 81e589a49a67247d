//! Tests of the frame header and `check_frame`: every refusal path, and the boundaries where
//! a valid frame turns invalid.

#![allow(clippy::unwrap_used)]

use super::*;

fn sample() -> FrameHeader {
    FrameHeader {
        frame_type: FrameType::Data,
        batch_len: 100,
        base_offset: Offset(42),
        log_id: LogId::new(3, 7),
        crc: 0xdead_beef,
    }
}

/// The body header of a data frame with `record_count` records.
fn data_body(record_count: u32) -> BodyHeader {
    BodyHeader {
        attributes: 0,
        last_offset_delta: record_count.saturating_sub(1),
        first_timestamp: 1_700_000_000_000,
        max_timestamp: 1_700_000_000_500,
        producer_id: 12,
        producer_epoch: 3,
        base_sequence: 99,
        record_count,
    }
}

/// An encoded header with `batch_len` replaced and the header CRC recomputed, so that only
/// the length can be wrong.
fn header_with_batch_len(batch_len: u32) -> [u8; HEADER_LEN] {
    FrameHeader {
        batch_len,
        ..sample()
    }
    .encode()
}

/// A header encodes and decodes to the same fields.
#[test]
fn header_round_trips() {
    let encoded = sample().encode();
    assert_eq!(FrameHeader::decode(&encoded), Ok(Some(sample())));
    assert_eq!(FrameHeader::decode_unchecked(&encoded), Ok(sample()));
}

/// The body header encodes and decodes to the same fields, negative values included.
#[test]
fn body_header_round_trips() {
    let body = BodyHeader {
        first_timestamp: -5,
        max_timestamp: i64::MAX,
        producer_id: i64::MIN,
        producer_epoch: i16::MIN,
        base_sequence: -1,
        ..data_body(3)
    };
    let mut encoded = [0u8; BODY_HEADER_LEN];
    body.encode_into(&mut encoded);
    assert_eq!(BodyHeader::decode(&encoded), Ok(body));
}

/// A body shorter than the fixed body fields is reported as truncated.
#[test]
fn body_header_decode_of_short_body_is_truncated() {
    assert_eq!(
        BodyHeader::decode(&[0u8; BODY_HEADER_LEN - 1]),
        Err(CorruptReason::Truncated {
            needed: BODY_HEADER_LEN as u64,
            available: BODY_HEADER_LEN as u64 - 1,
        })
    );
}

/// Types 1 to 4 are known, every other byte is not.
#[test]
fn frame_types_are_exactly_one_to_four() {
    for value in 0..=u8::MAX {
        match FrameType::from_u8(value) {
            Some(frame_type) => assert_eq!(frame_type as u8, value),
            None => assert!(!(1..=4).contains(&value), "type {value} unknown"),
        }
    }
    assert!(FrameType::Data.is_data());
    assert!(!FrameType::Blank.is_data());
}

/// The header CRC covers every header byte but itself: changing any one byte to any other
/// value is refused.
#[test]
fn header_decode_refuses_every_single_byte_change() {
    let encoded = sample().encode();
    for at in 0..HEADER_LEN {
        for xor in 1..=u8::MAX {
            let mut changed = encoded;
            changed[at] ^= xor;
            assert!(
                FrameHeader::decode(&changed).is_err(),
                "byte {at} xor {xor:#04x} accepted"
            );
        }
    }
}

/// Any buffer shorter than a header, zeroed or the prefix of a valid one, is incomplete
/// (`Ok(None)`), not corrupt: more bytes may be on their way.
#[test]
fn header_decode_of_short_buffer_is_incomplete() {
    let encoded = sample().encode();
    for len in 0..HEADER_LEN {
        assert_eq!(
            FrameHeader::decode(&encoded[..len]),
            Ok(None),
            "{len} bytes"
        );
        assert_eq!(FrameHeader::decode(&[0u8; HEADER_LEN][..len]), Ok(None));
        assert_eq!(
            FrameHeader::decode_unchecked(&encoded[..len]),
            Err(CorruptReason::Truncated {
                needed: HEADER_LEN as u64,
                available: len as u64,
            })
        );
    }
}

/// An all-zero header is the end of the log, told apart from other corruption.
#[test]
fn zeroed_header_is_the_end_of_the_log() {
    assert_eq!(
        FrameHeader::decode(&[0u8; HEADER_LEN]),
        Err(CorruptReason::Zeroed)
    );
}

/// A header not starting with the magic byte is refused with the byte found.
#[test]
fn header_decode_refuses_bad_magic() {
    let mut encoded = sample().encode();
    encoded[0] = 0xB6;
    assert_eq!(
        FrameHeader::decode(&encoded),
        Err(CorruptReason::BadMagic(0xB6))
    );
}

/// A header of an unknown type is refused with the type found.
#[test]
fn header_decode_refuses_unknown_types() {
    for frame_type in [0u8, 5, 0xff] {
        let mut encoded = sample().encode();
        encoded[1] = frame_type;
        assert_eq!(
            FrameHeader::decode(&encoded),
            Err(CorruptReason::BadType(frame_type))
        );
    }
}

/// The body must hold at least the body header: 40 bytes pass, 39 do not.
#[test]
fn header_decode_refuses_a_body_shorter_than_its_header() {
    let min = BODY_HEADER_LEN as u32;
    assert!(FrameHeader::decode(&header_with_batch_len(min)).is_ok());
    for batch_len in [0, min - 1] {
        assert_eq!(
            FrameHeader::decode(&header_with_batch_len(batch_len)),
            Err(CorruptReason::LengthOutOfBounds {
                len: HEADER_LEN as u64 + u64::from(batch_len),
                min: FRAME_BYTES_MIN,
                max: FRAME_BYTES_LIMIT,
            })
        );
    }
}

/// A frame may be `FRAME_BYTES_LIMIT` bytes long and not one more, whatever `batch_len` says.
#[test]
fn header_decode_refuses_frames_above_the_limit() {
    let max = (FRAME_BYTES_LIMIT - HEADER_LEN as u64) as u32;
    assert!(FrameHeader::decode(&header_with_batch_len(max)).is_ok());
    for batch_len in [max + 1, u32::MAX] {
        assert_eq!(
            FrameHeader::decode(&header_with_batch_len(batch_len)),
            Err(CorruptReason::LengthOutOfBounds {
                len: HEADER_LEN as u64 + u64::from(batch_len),
                min: FRAME_BYTES_MIN,
                max: FRAME_BYTES_LIMIT,
            })
        );
    }
}

/// A changed stamped field is caught by the header CRC, which reports both values; the
/// unchecked decode, for frames about to be restamped, lets it through.
#[test]
fn header_decode_refuses_header_crc_mismatch() {
    let mut encoded = sample().encode();
    let stored = u32_at(&encoded, 2);
    encoded[26] ^= 1; // raft_index
    let computed = FrameHeader {
        log_id: LogId::new(3, 6),
        ..sample()
    }
    .encode();
    assert_eq!(
        FrameHeader::decode(&encoded),
        Err(CorruptReason::HeaderCrcMismatch {
            stored,
            computed: u32_at(&computed, 2),
        })
    );
    assert_eq!(
        FrameHeader::decode_unchecked(&encoded).unwrap().log_id,
        LogId::new(3, 6)
    );
}

/// A control frame checks, takes no offsets, and carries the control body header.
#[test]
fn control_frame_checks_and_takes_no_offsets() {
    let frame = encode_control_frame(FrameType::Membership, b"voters: 1,2,3");
    let (header, body) = check_frame(&frame, false).expect("valid control frame");
    assert_eq!(header.frame_type, FrameType::Membership);
    assert_eq!(body, BodyHeader::CONTROL);
    assert_eq!(body.record_count, 0);
    assert_eq!(header.frame_len(), frame.len());
    assert_eq!(&frame[HEADER_LEN + BODY_HEADER_LEN..], b"voters: 1,2,3");
}

/// A changed body byte fails the body CRC, which reports both values.
#[test]
fn check_frame_refuses_a_flipped_body_byte() {
    let mut frame = encode_control_frame(FrameType::Command, b"payload");
    let last = frame.len() - 1;
    frame[last] ^= 1;
    let stored = u32_at(&frame, 34);
    let computed = crc32fast::hash(&frame[HEADER_LEN..]);
    assert_eq!(
        check_frame(&frame, false),
        Err(CorruptReason::CrcMismatch { stored, computed })
    );
}

/// `check_frame` checks the header CRC of stamped frames only.
#[test]
fn check_frame_checks_the_header_crc_only_when_stamped() {
    let mut frame = encode_control_frame(FrameType::Blank, b"");
    frame[10] ^= 1; // base_offset
    assert!(matches!(
        check_frame(&frame, true),
        Err(CorruptReason::HeaderCrcMismatch { .. })
    ));
    assert!(check_frame(&frame, false).is_ok());
}

/// A frame shorter than its header says is truncated, from one byte short down to a partial
/// header.
#[test]
fn check_frame_reports_truncation() {
    let frame = encode_unstamped(FrameType::Data, &data_body(1), b"records");
    for len in 0..frame.len() {
        let needed = if len < HEADER_LEN {
            HEADER_LEN
        } else {
            frame.len()
        };
        for stamped in [false, true] {
            assert_eq!(
                check_frame(&frame[..len], stamped),
                Err(CorruptReason::Truncated {
                    needed: needed as u64,
                    available: len as u64,
                }),
                "{len} bytes, stamped {stamped}"
            );
        }
    }
}

/// A data frame holds at least one record, a control frame none.
#[test]
fn check_frame_refuses_record_counts_that_do_not_fit_the_type() {
    let empty_data = encode_unstamped(FrameType::Data, &data_body(0), b"");
    assert_eq!(
        check_frame(&empty_data, false),
        Err(CorruptReason::RecordCount {
            frame_type: 1,
            record_count: 0
        })
    );
    for frame_type in [FrameType::Blank, FrameType::Membership, FrameType::Command] {
        let with_records = encode_unstamped(frame_type, &data_body(1), b"x");
        assert_eq!(
            check_frame(&with_records, false),
            Err(CorruptReason::RecordCount {
                frame_type: frame_type as u8,
                record_count: 1
            })
        );
    }
}

/// `last_offset_delta` must be `record_count - 1` for data frames and 0 for control frames.
#[test]
fn check_frame_refuses_a_wrong_last_offset_delta() {
    for (frame_type, record_count, last_offset_delta) in [
        (FrameType::Data, 3, 3),
        (FrameType::Data, 3, 1),
        (FrameType::Data, 1, u32::MAX),
        (FrameType::Command, 0, 1),
    ] {
        let body = BodyHeader {
            last_offset_delta,
            ..data_body(record_count)
        };
        let frame = encode_unstamped(frame_type, &body, b"");
        assert_eq!(
            check_frame(&frame, false),
            Err(CorruptReason::OffsetDelta {
                last_offset_delta,
                record_count
            })
        );
    }
}

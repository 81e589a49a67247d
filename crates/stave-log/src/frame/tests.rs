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

#[test]
fn header_round_trips() {
    let encoded = sample().encode();
    assert_eq!(FrameHeader::decode(&encoded), Ok(Some(sample())));
}

#[test]
fn header_decode_refuses_every_single_byte_flip() {
    let encoded = sample().encode();
    for at in 0..HEADER_LEN {
        let mut flipped = encoded;
        flipped[at] ^= 0x10;
        assert!(
            FrameHeader::decode(&flipped).is_err(),
            "flip at {at} accepted"
        );
    }
}

#[test]
fn header_decode_of_short_buffer_is_incomplete() {
    assert_eq!(
        FrameHeader::decode(&sample().encode()[..HEADER_LEN - 1]),
        Ok(None)
    );
}

#[test]
fn zeroed_header_is_the_end_of_the_log() {
    assert_eq!(
        FrameHeader::decode(&[0u8; HEADER_LEN]),
        Err(CorruptReason::Zeroed)
    );
}

#[test]
fn control_frame_checks_and_takes_no_offsets() {
    let frame = encode_control_frame(FrameType::Membership, b"voters: 1,2,3");
    let (header, body) = check_frame(&frame, false).expect("valid control frame");
    assert_eq!(header.frame_type, FrameType::Membership);
    assert_eq!(body.record_count, 0);
    assert_eq!(header.frame_len(), frame.len());
}

#[test]
fn check_frame_refuses_a_flipped_body_byte() {
    let mut frame = encode_control_frame(FrameType::Command, b"payload");
    let last = frame.len() - 1;
    frame[last] ^= 1;
    assert!(matches!(
        check_frame(&frame, false),
        Err(CorruptReason::CrcMismatch { .. })
    ));
}

//! Zigzag varints, as in Kafka's record format v2 (and protobuf's `sint32`/`sint64`).

use crate::error::CorruptReason;

pub fn encode_i64(value: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Length of `value`'s encoding in bytes.
pub fn len_i64(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (zigzag | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes one varint from the front of `buf`, advancing it. At most 10 bytes are read.
///
/// Only the shortest encoding of a value is accepted, as `encode_i64` writes it: a last byte
/// of 0 after others adds nothing but length. Each value then has exactly one encoding, so a
/// decoded batch re-encodes to the bytes it was read from.
#[inline(always)]
pub fn decode_i64(buf: &mut &[u8]) -> Result<i64, CorruptReason> {
    // Most varints in a batch (deltas, counts, lengths below 8 KiB) fit one or two bytes.
    let bytes: &[u8] = buf;
    match bytes {
        [first, rest @ ..] if *first < 0x80 => {
            *buf = rest;
            Ok(unzigzag(u64::from(*first)))
        }
        [first, second, rest @ ..] if *second < 0x80 && *second != 0 => {
            *buf = rest;
            Ok(unzigzag(
                u64::from(first & 0x7f) | (u64::from(*second) << 7),
            ))
        }
        _ => decode_i64_multibyte(buf),
    }
}

#[inline(always)]
fn unzigzag(zigzag: u64) -> i64 {
    ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)
}

#[inline(never)]
fn decode_i64_multibyte(buf: &mut &[u8]) -> Result<i64, CorruptReason> {
    let mut zigzag: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        // The tenth byte holds bit 63 alone: anything more would not fit a u64.
        if i == 9 && byte > 1 {
            return Err(CorruptReason::BadVarint);
        }
        zigzag |= low << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(CorruptReason::BadVarint);
            }
            *buf = &buf[i + 1..];
            return Ok(unzigzag(zigzag));
        }
    }
    Err(CorruptReason::BadVarint)
}

/// Decodes a varint that must fit an `i32`.
#[inline]
pub fn decode_i32(buf: &mut &[u8]) -> Result<i32, CorruptReason> {
    let value = decode_i64(buf)?;
    i32::try_from(value).map_err(|_| CorruptReason::BadVarint)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    /// Edge values encode to `len_i64` bytes and decode back, consuming exactly those bytes.
    #[test]
    fn round_trips_edge_values() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            encode_i64(value, &mut out);
            assert_eq!(out.len(), len_i64(value), "len of {value}");
            let mut slice = out.as_slice();
            assert_eq!(decode_i64(&mut slice), Ok(value));
            assert!(slice.is_empty());
        }
    }

    /// Unterminated input, input past 10 bytes, a tenth byte above 1, and an `i32` decode of
    /// a value that does not fit are refused.
    #[test]
    fn refuses_unterminated_and_overlong_input() {
        assert_eq!(
            decode_i64(&mut &[0x80u8; 3][..]),
            Err(CorruptReason::BadVarint)
        );
        assert_eq!(
            decode_i64(&mut &[0xffu8; 11][..]),
            Err(CorruptReason::BadVarint)
        );
        assert_eq!(decode_i64(&mut &[][..]), Err(CorruptReason::BadVarint));
        let mut tenth_byte_too_big = vec![0xffu8; 9];
        tenth_byte_too_big.push(0x02);
        assert_eq!(
            decode_i64(&mut tenth_byte_too_big.as_slice()),
            Err(CorruptReason::BadVarint)
        );
        let mut big = Vec::new();
        encode_i64(i64::from(i32::MAX) + 1, &mut big);
        assert_eq!(
            decode_i32(&mut big.as_slice()),
            Err(CorruptReason::BadVarint)
        );
    }

    /// A varint longer than the shortest encoding of its value (a last byte of 0 after
    /// others) is refused, at every length up to 10 bytes, while the same value written
    /// short is accepted: each value has one encoding.
    #[test]
    fn refuses_redundant_trailing_zero_bytes() {
        assert_eq!(decode_i64(&mut &[0x00u8][..]), Ok(0));
        assert_eq!(
            decode_i64(&mut &[0x80u8, 0x00][..]),
            Err(CorruptReason::BadVarint)
        );
        assert_eq!(decode_i64(&mut &[0x7eu8][..]), Ok(63));
        assert_eq!(
            decode_i64(&mut &[0xfeu8, 0x80, 0x00][..]),
            Err(CorruptReason::BadVarint)
        );
        for len in 2..=10 {
            let mut overlong = vec![0x81u8; len - 1];
            overlong.push(0x00);
            assert_eq!(
                decode_i64(&mut overlong.as_slice()),
                Err(CorruptReason::BadVarint),
                "{len} bytes"
            );
        }
        let mut longest = vec![0xffu8; 9];
        longest.push(0x01);
        assert_eq!(decode_i64(&mut longest.as_slice()), Ok(i64::MIN));
    }

    fn cases(base: u32) -> u32 {
        match std::env::var("STAVE_SOAK") {
            Ok(value) if !value.is_empty() && value != "0" => base * 20,
            _ => base,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

        /// Every `i64` round-trips through exactly `len_i64` bytes, and decodes as an `i32`
        /// exactly when it fits one.
        #[test]
        fn any_value_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            encode_i64(value, &mut out);
            prop_assert_eq!(out.len(), len_i64(value));
            let mut slice = out.as_slice();
            prop_assert_eq!(decode_i64(&mut slice), Ok(value));
            prop_assert!(slice.is_empty());
            let as_i32 = decode_i32(&mut out.as_slice()).ok();
            prop_assert_eq!(as_i32, i32::try_from(value).ok());
        }

        /// On any bytes the decoder does not panic, and whatever it accepts is the shortest
        /// encoding of the value: re-encoding gives back exactly the bytes consumed.
        #[test]
        fn any_accepted_input_is_canonical(
            input in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(0x00), Just(0x01), Just(0x80), Just(0xff)],
                0..12,
            ),
        ) {
            let mut rest = input.as_slice();
            if let Ok(value) = decode_i64(&mut rest) {
                let consumed = &input[..input.len() - rest.len()];
                let mut out = Vec::new();
                encode_i64(value, &mut out);
                prop_assert_eq!(out.as_slice(), consumed);
            } else {
                prop_assert_eq!(rest, input.as_slice(), "a refused varint consumes nothing");
            }
        }
    }
}

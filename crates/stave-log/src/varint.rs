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
pub fn decode_i64(buf: &mut &[u8]) -> Result<i64, CorruptReason> {
    let mut zigzag: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return Err(CorruptReason::BadVarint);
        }
        zigzag |= low << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64));
        }
    }
    Err(CorruptReason::BadVarint)
}

/// Decodes a varint that must fit an `i32`.
pub fn decode_i32(buf: &mut &[u8]) -> Result<i32, CorruptReason> {
    let value = decode_i64(buf)?;
    i32::try_from(value).map_err(|_| CorruptReason::BadVarint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            i64::from(i32::MAX),
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
        let mut big = Vec::new();
        encode_i64(i64::from(i32::MAX) + 1, &mut big);
        assert_eq!(
            decode_i32(&mut big.as_slice()),
            Err(CorruptReason::BadVarint)
        );
    }
}

//! Message ids: the `id` header that signs every record written through Stave's clients and
//! its `Publish` API with a unique key. Publish routes a keyless record by its id, so a retry
//! reaches the partition the first try did. The layout is UUIDv7 (RFC 9562): 48 bits of Unix
//! milliseconds, then 74 random bits, so ids sort roughly by creation time and never repeat in
//! practice. The caller brings the clock and the randomness (this crate has neither).

/// The header that carries a record's unique message id.
pub const MESSAGE_ID_HEADER: &str = "id";

/// The UUIDv7 text (`xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx`) of `unix_ms` and `random`
/// (of which 74 bits are used).
pub fn uuid_v7(unix_ms: i64, random: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let ms = (unix_ms as u128) & ((1 << 48) - 1);
    let rand_a = (random >> 64) & 0x0fff;
    let rand_b = random & ((1 << 62) - 1);
    let value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
    // 32 hex digits, dashes after the 8th, 12th, 16th and 20th (one allocation: ids are
    // made per record).
    let mut text = String::with_capacity(36);
    for digit in 0..32 {
        if matches!(digit, 8 | 12 | 16 | 20) {
            text.push('-');
        }
        let nibble = (value >> (124 - 4 * digit)) & 0xf;
        text.push(HEX[nibble as usize] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_uuid_v7_layout() {
        let id = uuid_v7(0x0190_1234_5678, u128::MAX);
        assert_eq!(id, "01901234-5678-7fff-bfff-ffffffffffff");
        let id = uuid_v7(1, 0);
        assert_eq!(id, "00000000-0001-7000-8000-000000000000");
    }

    #[test]
    fn ids_sort_by_time() {
        assert!(uuid_v7(1000, u128::MAX) < uuid_v7(1001, 0));
        assert_ne!(uuid_v7(1000, 1), uuid_v7(1000, 2));
    }
}

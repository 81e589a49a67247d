//! Hostile strings and numbers: names a request may carry (topics, groups, members, config
//! keys and values, subscription patterns), and the edges of every integer field. Proto
//! strings are UTF-8, so "odd" here means control characters, dots, `__` prefixes, patterns,
//! the empty string and very long strings, not invalid UTF-8.

use rand::Rng;
use rand::rngs::StdRng;

/// Topics the fuzz may create and delete: a bounded pool, so the cluster never holds more
/// than this many fuzz topics (each partition is a Raft group on three nodes).
pub const POOL_TOPICS: [&str; 6] = [
    "fuzz.pool.0",
    "fuzz.pool.1",
    "fuzz.pool.2",
    "_fuzz.system",
    "-",
    // 125 one-letter words, 249 bytes: the longest name, and the deepest for patterns.
    "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a",
];

/// One of `items`, uniformly.
pub fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())].clone()
}

/// A string of `len` characters drawn from `alphabet`.
fn string_of(rng: &mut StdRng, alphabet: &[char], len: usize) -> String {
    (0..len).map(|_| pick(rng, alphabet)).collect()
}

/// A hostile string: empty, control characters, dots, `__`, patterns, unicode, very long
/// (up to 100 KB), or plain.
pub fn hostile_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..16) {
        0 => String::new(),
        1 => ".".into(),
        2 => "..".into(),
        3 => "__offsets".into(),
        4 => format!("__{}", plain(rng)),
        5 => pick(rng, &["*", "#", "v1.*", "#.#", "v1.#.x", "*.*.*"]).into(),
        6 => {
            let len = rng.random_range(1..9);
            string_of(rng, &['\0', '\n', '\t', '\u{7f}', '\u{1b}', ' '], len)
        }
        7 => pick(
            rng,
            &[
                "ключ",
                "名前",
                "e\u{301}",
                "\u{202e}evil",
                "😀.😀",
                "\u{feff}bom",
            ],
        )
        .into(),
        8 => "x".repeat(pick(rng, &[249, 250, 255, 256, 1024])),
        9 => "y".repeat(100 * 1024),
        10 => pick(
            rng,
            &["a..b", ".lead", "trail.", "a/b", "a\\b", "../../etc"],
        )
        .into(),
        11 => pick(rng, &POOL_TOPICS).into(),
        _ => plain(rng),
    }
}

/// A short, valid-looking name.
pub fn plain(rng: &mut StdRng) -> String {
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789.-_".chars().collect();
    let len = rng.random_range(1..12);
    string_of(rng, &alphabet, len)
}

/// A consumer group name: mostly from a small set (so groups get members and offsets),
/// sometimes hostile. Never a model group's: those belong to the valid traffic.
pub fn group_name(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => hostile_string(rng),
        1 => "g".repeat(pick(rng, &[255, 256])),
        _ => pick(
            rng,
            &["fuzz.g0", "fuzz.g1", "fuzz.g2", "fuzz-ünïcode", "fuzz g\t"],
        )
        .into(),
    }
}

/// A subscription pattern: valid, malformed, or pathological (many `#` against deep names).
pub fn pattern(rng: &mut StdRng) -> String {
    match rng.random_range(0..8) {
        0 => hostile_string(rng),
        1 => {
            // Many `#` words and a last word no topic has: a backtracking matcher explores
            // every way to split a deep name among them.
            let hashes = rng.random_range(2..40);
            let mut words = vec!["#"; hashes];
            words.push("nomatch");
            words.join(".")
        }
        2 => {
            let words = rng.random_range(1..200);
            vec!["*"; words].join(".")
        }
        3 => pick(
            rng,
            &[
                "#.a.#.a.#.a.#.a.#.b",
                "a.#.a.#.a.#.a.#.a.#.a.#.b",
                "#.#.#.#.#.#",
            ],
        )
        .into(),
        _ => pick(
            rng,
            &[
                "fuzz.model.*",
                "fuzz.#",
                "#",
                "*",
                "fuzz.pool.0",
                "v1.#",
                "__offsets",
            ],
        )
        .into(),
    }
}

/// A u32 at or near an edge, or small.
pub fn edge_u32(rng: &mut StdRng) -> u32 {
    match rng.random_range(0..6) {
        0 => u32::MAX,
        1 => u32::MAX - rng.random_range(0..4),
        2 => 1 << rng.random_range(0..32),
        3 => rng.random(),
        _ => rng.random_range(0..4),
    }
}

/// A u64 at or near an edge, or small.
pub fn edge_u64(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..6) {
        0 => u64::MAX,
        1 => u64::MAX - rng.random_range(0..4),
        2 => 1 << rng.random_range(0..64),
        3 => rng.random(),
        _ => rng.random_range(0..4),
    }
}

/// An i64 at or near an edge, a plausible epoch time, or small.
pub fn edge_i64(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..7) {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => -1,
        3 => rng.random(),
        4 => crate::support::now_ms() + rng.random_range(-86_400_000..86_400_000),
        _ => rng.random_range(-4..4),
    }
}

/// A config entry: a known key with a hostile or valid value, or a hostile key.
pub fn config_entry(rng: &mut StdRng) -> (String, String) {
    let keys = [
        "retention.ms",
        "retention.bytes",
        "segment.bytes",
        "segment.ms",
        "max.message.bytes",
        "flush",
        "dedupe.window.ms",
        "dedupe.max.ids",
    ];
    let key = if rng.random_bool(0.8) {
        pick(rng, &keys).to_string()
    } else {
        hostile_string(rng)
    };
    (key, config_value(rng))
}

/// A value for any config key: numbers at the edges, policies valid and not, garbage.
pub fn config_value(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => String::new(),
        1 => "-1".into(),
        2 => pick(
            rng,
            &[
                "-2", "0", "1", "65535", "65536", "1048576", "+5", " 5", "5 ",
            ],
        )
        .into(),
        3 => u64::MAX.to_string(),
        4 => i64::MIN.to_string(),
        5 => "18446744073709551616".into(),
        6 => pick(
            rng,
            &[
                "always",
                "never",
                "interval:0",
                "interval:1",
                "interval:-1",
                "interval:",
                "sometimes",
            ],
        )
        .into(),
        7 => format!("interval:{}", u64::MAX),
        8 => hostile_string(rng),
        _ => rng.random::<u32>().to_string(),
    }
}

//! Subscriptions by pattern, AMQP style: a topic name is dot-separated words; in a pattern
//! `*` stands for exactly one word and `#` for zero or more words (`v1.user.*` matches
//! `v1.user.signedup`; `v1.#` matches `v1` and every `v1.…`). A pattern without `*` or `#`
//! is a plain topic name. Internal topics (`__…`) never match a pattern.
//!
//! Matching costs at most (pattern words × topic words) steps, whatever the pattern: a
//! backtracking matcher tried every way to share a topic's words among the pattern's `#`s,
//! and `#.#.#.….x` against a 125-word name never finished (issue 15: one GroupHeartbeat
//! stalled its coordinator node). Patterns are at most [`PATTERN_BYTES_MAX`] long.

use stave_raft::controller::{TOPIC_NAME_BYTES_MAX, is_internal_topic};

/// The longest pattern accepted: room for a `#` around every word of the longest topic name
/// (`#.a.#.a.….#`); a longer pattern matches nothing a shorter one would not.
pub const PATTERN_BYTES_MAX: usize = 2 * TOPIC_NAME_BYTES_MAX + 3;

/// A parsed subscription pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    words: Vec<Word>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Exact(String),
    /// `*`: one word.
    One,
    /// `#`: zero or more words.
    Any,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("an empty pattern".into());
        }
        if text.len() > PATTERN_BYTES_MAX {
            return Err(format!(
                "a pattern has at most {PATTERN_BYTES_MAX} bytes, this one has {}",
                text.len()
            ));
        }
        let mut words = text
            .split('.')
            .map(|word| match word {
                "*" => Ok(Word::One),
                "#" => Ok(Word::Any),
                "" => Err(format!("pattern {text:?} has an empty word")),
                w if w.contains(['*', '#']) => Err(format!(
                    "in pattern {text:?}, `*` and `#` stand for whole words (found {w:?})"
                )),
                w => Ok(Word::Exact(w.to_string())),
            })
            .collect::<Result<Vec<Word>, String>>()?;
        // `#.#` means what `#` means.
        words.dedup_by(|later, earlier| *later == Word::Any && *earlier == Word::Any);
        Ok(Pattern {
            words,
            text: text.to_string(),
        })
    }

    /// Whether this is a plain topic name (no `*` or `#`).
    pub fn is_literal(&self) -> bool {
        self.words.iter().all(|w| matches!(w, Word::Exact(_)))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the first word is a plain word (`_dlq.#`), not `*` or `#`.
    pub fn first_word_is_literal(&self) -> bool {
        matches!(self.words.first(), Some(Word::Exact(_)))
    }

    /// Whether `name` matches word for word, internal and system names included.
    pub fn matches_any(&self, name: &str) -> bool {
        let words: Vec<&str> = name.split('.').collect();
        matches_words(&self.words, &words)
    }

    /// Whether `topic` matches. A literal pattern matches its own name (internal or not);
    /// a wildcard never matches an internal (`__`) or system (`_`: dead letters, replies)
    /// topic.
    pub fn matches(&self, topic: &str) -> bool {
        if self.is_literal() {
            return topic == self.text;
        }
        if is_internal_topic(topic) || crate::queue::is_system_topic(topic) {
            return false;
        }
        let words: Vec<&str> = topic.split('.').collect();
        matches_words(&self.words, &words)
    }
}

/// Whether `pattern` matches `words` in full, in (pattern words × topic words) steps.
/// `matched[j]`: the pattern words seen so far match the topic's first `j` words.
fn matches_words(pattern: &[Word], words: &[&str]) -> bool {
    let mut matched = vec![false; words.len() + 1];
    matched[0] = true;
    for word in pattern {
        match word {
            // Zero or more words: reachable wherever an earlier prefix was.
            Word::Any => {
                for j in 1..matched.len() {
                    matched[j] = matched[j] || matched[j - 1];
                }
            }
            // Exactly one word (any, or this one): shift by one.
            Word::One | Word::Exact(_) => {
                for j in (1..matched.len()).rev() {
                    let fits = match word {
                        Word::Exact(exact) => words[j - 1] == exact.as_str(),
                        _ => true,
                    };
                    matched[j] = matched[j - 1] && fits;
                }
                matched[0] = false;
            }
        }
        if !matched.contains(&true) {
            return false;
        }
    }
    matched[words.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn matches(pattern: &str, topic: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(topic)
    }

    #[test]
    fn star_is_one_word_and_hash_any_number() {
        assert!(matches("v1.user.*", "v1.user.signedup"));
        assert!(!matches("v1.user.*", "v1.user"));
        assert!(!matches("v1.user.*", "v1.user.signedup.eu"));
        assert!(matches("v1.#", "v1"));
        assert!(matches("v1.#", "v1.user.signedup"));
        assert!(!matches("v1.#", "v2.user"));
        assert!(matches("#.signedup", "v1.user.signedup"));
        assert!(matches("v1.*.signedup", "v1.user.signedup"));
        assert!(!matches("v1.*.signedup", "v1.signedup"));
        assert!(matches("#", "anything.at.all"));
        assert!(matches("v1.#.done", "v1.done"));
        assert!(matches("v1.#.done", "v1.a.b.done"));
    }

    #[test]
    fn wildcards_never_match_internal_topics_but_a_name_matches_itself() {
        assert!(!matches("#", "__offsets"));
        assert!(!matches("__offsets.#", "__offsets"));
        assert!(matches("__offsets", "__offsets"));
        assert!(matches("v1.orders", "v1.orders"));
        assert!(!matches("v1.orders", "v1.orders.eu"));
    }

    #[test]
    fn wildcards_never_match_system_topics_but_a_name_matches_itself() {
        assert!(!matches("#", "_dlq.mailer.v1.user.signedup"));
        assert!(!matches("_dlq.#", "_dlq.mailer.v1.user.signedup"));
        assert!(!matches("*", "_reply"));
        assert!(matches("_dlq.mailer.v1", "_dlq.mailer.v1"));
    }

    /// The matcher before issue 15: backtracking, exponential in the number of `#`s. Kept
    /// as the reference the new one must agree with.
    fn reference(pattern: &[Word], words: &[&str]) -> bool {
        match pattern.split_first() {
            None => words.is_empty(),
            Some((Word::Any, rest)) => {
                (0..=words.len()).any(|skip| reference(rest, &words[skip..]))
            }
            Some((Word::One, rest)) => !words.is_empty() && reference(rest, &words[1..]),
            Some((Word::Exact(word), rest)) => {
                words.first() == Some(&word.as_str()) && reference(rest, &words[1..])
            }
        }
    }

    /// Scenario: a pattern of many `#` and a word no topic has, against the deepest topic
    /// name (125 one-letter words). Proves: matching answers (false) at once; the
    /// backtracking matcher explored C(149, 24) ways and hung its coordinator (issue 15).
    #[test]
    fn many_hashes_against_a_deep_name_answer_at_once() {
        let deep = vec!["a"; 125].join(".");
        let mut words = vec!["#"; 24];
        words.push("nomatch");
        assert!(!matches(&words.join("."), &deep));
        let alternating = vec!["#.a"; 60].join(".") + ".#.b";
        assert!(!matches(&alternating, &deep));
        assert!(matches(&(vec!["#.a"; 60].join(".") + ".#"), &deep));
    }

    /// Scenario: patterns longer than any useful one. Proves: they are refused, and the
    /// longest useful one (`#` around every word of the longest name) is not.
    #[test]
    fn patterns_past_the_limit_are_refused() {
        let useful = format!("#.{}", vec!["a.#"; 125].join("."));
        assert!(useful.len() <= PATTERN_BYTES_MAX);
        assert!(Pattern::parse(&useful).is_ok());
        assert!(Pattern::parse(&"*.".repeat(PATTERN_BYTES_MAX)).is_err());
    }

    proptest::proptest! {
        /// Any pattern over a small alphabet agrees with the backtracking reference on any
        /// topic of up to eight words.
        #[test]
        fn the_matcher_agrees_with_backtracking(
            pattern in proptest::collection::vec(proptest::sample::select(vec!["*", "#", "a", "b"]), 1..8),
            topic in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "c"]), 1..8),
        ) {
            let text = pattern.join(".");
            let parsed = Pattern::parse(&text).unwrap();
            let raw: Vec<Word> = pattern.iter().map(|w| match *w {
                "*" => Word::One,
                "#" => Word::Any,
                w => Word::Exact(w.to_string()),
            }).collect();
            let topic_name = topic.join(".");
            proptest::prop_assert_eq!(parsed.matches(&topic_name), reference(&raw, &topic));
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "v1..x", "v1.us*", "v1.#x", "."] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Pattern::parse("v1.user.signedup").unwrap().is_literal());
        assert!(!Pattern::parse("v1.*").unwrap().is_literal());
    }
}

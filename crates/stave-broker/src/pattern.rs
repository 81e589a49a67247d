//! Subscriptions by pattern, AMQP style: a topic name is dot-separated words; in a pattern
//! `*` stands for exactly one word and `#` for zero or more words (`v1.user.*` matches
//! `v1.user.signedup`; `v1.#` matches `v1` and every `v1.…`). A pattern without `*` or `#`
//! is a plain topic name. Internal topics (`__…`) never match a pattern.

use stave_raft::controller::is_internal_topic;

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
        let words = text
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

    /// Whether `topic` matches. A literal pattern matches its own name (internal or not);
    /// a wildcard never matches an internal topic.
    pub fn matches(&self, topic: &str) -> bool {
        if self.is_literal() {
            return topic == self.text;
        }
        if is_internal_topic(topic) {
            return false;
        }
        let words: Vec<&str> = topic.split('.').collect();
        matches_words(&self.words, &words)
    }
}

/// Whether `pattern` matches `words` in full (`#` backtracks over as many words as needed).
fn matches_words(pattern: &[Word], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((Word::Any, rest)) => {
            (0..=words.len()).any(|skip| matches_words(rest, &words[skip..]))
        }
        Some((Word::One, rest)) => !words.is_empty() && matches_words(rest, &words[1..]),
        Some((Word::Exact(word), rest)) => {
            words.first() == Some(&word.as_str()) && matches_words(rest, &words[1..])
        }
    }
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
    fn malformed_patterns_are_refused() {
        for bad in ["", "v1..x", "v1.us*", "v1.#x", "."] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Pattern::parse("v1.user.signedup").unwrap().is_literal());
        assert!(!Pattern::parse("v1.*").unwrap().is_literal());
    }
}

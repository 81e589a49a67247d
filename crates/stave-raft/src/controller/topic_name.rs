//! Topic names. Names are versioned and hierarchical (`v1.user.signedup`):
//! 1 to [`TOPIC_NAME_BYTES_MAX`] characters from `[A-Za-z0-9._-]`, never `.` or `..` (a name may
//! become a path component). Names starting with [`INTERNAL_TOPIC_PREFIX`] are internal: the
//! controller creates them itself (`__offsets`), users cannot.
//!
//! The controller applies [`validate_topic_name`]; the broker also checks
//! [`validate_user_topic_name`] before it proposes a user's CreateTopic.

/// The longest topic name, in bytes (all allowed characters are ASCII), as in Kafka.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Topics whose names start with this are internal.
pub const INTERNAL_TOPIC_PREFIX: &str = "__";

/// Why a string is not a topic name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicNameError {
    #[error("a topic name cannot be empty")]
    Empty,
    #[error("a topic name has at most {max} characters, this one has {len}")]
    TooLong { len: usize, max: usize },
    #[error("character {found:?} at {position} is not allowed in a topic name (A-Z a-z 0-9 . _ -)")]
    InvalidCharacter { found: char, position: usize },
    #[error("{name:?} is not a topic name")]
    DotName { name: String },
    #[error("topic names starting with {INTERNAL_TOPIC_PREFIX:?} are internal")]
    Internal,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Checks that `name` can name a topic, internal topics included.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if let Some((position, found)) = name.char_indices().find(|&(_, c)| !allowed(c)) {
        return Err(TopicNameError::InvalidCharacter { found, position });
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(TopicNameError::TooLong {
            len: name.len(),
            max: TOPIC_NAME_BYTES_MAX,
        });
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::DotName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks that a user may create a topic named `name`: a valid name, and not internal.
pub fn validate_user_topic_name(name: &str) -> Result<(), TopicNameError> {
    validate_topic_name(name)?;
    if is_internal_topic(name) {
        return Err(TopicNameError::Internal);
    }
    Ok(())
}

/// Whether `name` is an internal topic's (patterns never match those).
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with(INTERNAL_TOPIC_PREFIX)
}

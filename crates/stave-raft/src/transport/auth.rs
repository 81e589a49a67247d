//! The cluster secret: what closes a node's internal services to everything but the other
//! nodes of its cluster. Every node is given the same secret before it starts; each internal
//! call carries it in the `stave-cluster-secret` metadata entry ([`AttachSecret`]) and each
//! is checked on arrival ([`CheckSecret`]), `Hello` and `Rejoin` included. A call without it,
//! or with another, is refused `UNAUTHENTICATED` before its message is even decoded.
//!
//! No secret configured (`TransportConfig::secret` unset) leaves the services open, as the
//! Raft crate's own tests run them; a broker node always has one.

use std::fmt;
use std::sync::Arc;

use rand::RngCore;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata entry an internal call carries the cluster secret in.
pub const CLUSTER_SECRET_HEADER: &str = "stave-cluster-secret";

/// The shortest secret a node accepts (bytes).
pub const SECRET_BYTES_MIN: usize = 16;
/// The longest secret a node accepts (bytes).
pub const SECRET_BYTES_MAX: usize = 1024;

/// A cluster's shared secret: 16 to 1,024 visible ASCII characters (no spaces), so it
/// travels as a metadata value unchanged. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Arc<str>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// `text` as a secret (surrounding whitespace, such as a file's last newline, is not
    /// part of it), or why it cannot be one.
    pub fn new(text: &str) -> Result<ClusterSecret, String> {
        let text = text.trim();
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&text.len()) {
            return Err(format!(
                "a cluster secret is {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} characters, not {}",
                text.len()
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "a cluster secret is visible ASCII characters (letters, digits, punctuation), \
                 without spaces"
                    .to_string(),
            );
        }
        Ok(ClusterSecret(text.into()))
    }

    /// A new random secret: 32 bytes from a generator the OS seeds (ChaCha), as 64 hex
    /// digits.
    pub fn generate() -> ClusterSecret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ClusterSecret(text.into())
    }

    /// The secret itself, to write to a file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, in time that does not depend on where the two
    /// first differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if presented.len() != expected.len() {
            return false;
        }
        let difference = expected
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }

    /// Whether `metadata` carries this secret.
    pub fn presented_in(&self, metadata: &MetadataMap) -> bool {
        metadata
            .get(CLUSTER_SECRET_HEADER)
            .is_some_and(|value| self.matches(value.as_bytes()))
    }

    fn metadata_value(&self) -> AsciiMetadataValue {
        // `new` admits visible ASCII only, which is always a valid metadata value.
        AsciiMetadataValue::try_from(self.expose()).unwrap_or_else(|_| {
            unreachable!("a cluster secret is visible ASCII, a valid metadata value")
        })
    }

    /// Adds this secret to `metadata` (an internal call, or a call forwarded to a peer).
    pub fn attach(&self, metadata: &mut MetadataMap) {
        metadata.insert(CLUSTER_SECRET_HEADER, self.metadata_value());
    }
}

/// Adds the cluster secret to every call a node makes to its peers' internal services.
#[derive(Debug, Clone, Default)]
pub struct AttachSecret(Option<ClusterSecret>);

impl AttachSecret {
    pub fn new(secret: Option<ClusterSecret>) -> AttachSecret {
        AttachSecret(secret)
    }
}

impl Interceptor for AttachSecret {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.0 {
            secret.attach(request.metadata_mut());
        }
        Ok(request)
    }
}

/// Refuses every call to an internal service that does not carry the cluster secret.
#[derive(Debug, Clone, Default)]
pub struct CheckSecret(Option<ClusterSecret>);

impl CheckSecret {
    pub fn new(secret: Option<ClusterSecret>) -> CheckSecret {
        CheckSecret(secret)
    }
}

impl Interceptor for CheckSecret {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match &self.0 {
            Some(secret) if !secret.presented_in(request.metadata()) => {
                Err(Status::unauthenticated(
                    "this service is for the nodes of the cluster only: the call does not carry \
                     the cluster secret",
                ))
            }
            _ => Ok(request),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_secret_is_visible_ascii_of_bounded_length() {
        assert!(ClusterSecret::new("short").is_err());
        assert!(ClusterSecret::new("sixteen chars ok").is_err(), "a space");
        assert!(ClusterSecret::new(&"x".repeat(SECRET_BYTES_MAX + 1)).is_err());
        assert!(ClusterSecret::new("ünicode-ünicode-ünicode").is_err());
        let secret = ClusterSecret::new("  0123456789abcdef\n").unwrap();
        assert_eq!(secret.expose(), "0123456789abcdef");
        assert_eq!(format!("{secret:?}"), "ClusterSecret(..)");
    }

    #[test]
    fn generated_secrets_differ_and_are_valid() {
        let a = ClusterSecret::generate();
        let b = ClusterSecret::generate();
        assert_ne!(a, b);
        assert_eq!(ClusterSecret::new(a.expose()).unwrap(), a);
    }

    #[test]
    fn only_the_same_secret_passes_the_check() {
        let secret = ClusterSecret::generate();
        let mut check = CheckSecret::new(Some(secret.clone()));
        let bare = check.call(Request::new(())).unwrap_err();
        assert_eq!(bare.code(), tonic::Code::Unauthenticated);
        assert!(!bare.message().contains(secret.expose()));
        let mut other = Request::new(());
        ClusterSecret::generate().attach(other.metadata_mut());
        assert!(check.call(other).is_err());
        let mut attach = AttachSecret::new(Some(secret));
        let signed = attach.call(Request::new(())).unwrap();
        assert!(check.call(signed).is_ok());
        assert!(CheckSecret::default().call(Request::new(())).is_ok());
    }
}

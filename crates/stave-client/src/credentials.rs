//! [`Credentials`]: what a client tells a node about who it is, on every call. A bearer
//! token (`authorization: Bearer TOKEN`, made by `stave user create`) for clusters started
//! with `--auth required`; nothing by default. A TLS client certificate, the other way to
//! be someone, is part of the connection, not of the credentials.

use std::fmt;
use std::sync::Arc;

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::ClientError;

/// Metadata added to every call. Its `Debug` never shows the values.
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.entries.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("Credentials").field("keys", &keys).finish()
    }
}

impl Credentials {
    /// No credentials: an anonymous client.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// A bearer token (surrounding whitespace, such as a file's last newline, is dropped).
    pub fn token(token: &str) -> Result<Credentials, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Config {
                message: "an empty token".into(),
            });
        }
        Credentials::none().with("authorization", &format!("Bearer {token}"))
    }

    /// These credentials, plus `key: value` on every call (the broker uses this for its own
    /// client, which speaks to its node as a node).
    pub fn with(mut self, key: &str, value: &str) -> Result<Credentials, ClientError> {
        let invalid = |what: &str| ClientError::Config {
            message: format!("a credential's {what} must be visible ASCII"),
        };
        let key = AsciiMetadataKey::from_bytes(key.as_bytes()).map_err(|_| invalid("name"))?;
        let value = AsciiMetadataValue::try_from(value).map_err(|_| invalid("value"))?;
        Arc::make_mut(&mut self.entries).push((key, value));
        Ok(self)
    }

    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        for (key, value) in self.entries.iter() {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        Ok(request)
    }
}

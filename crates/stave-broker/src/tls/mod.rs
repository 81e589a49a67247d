//! TLS on a node: one port, TLS for clients and peers alike when the node has a certificate.
//!
//! - [`TlsFiles`]: the three PEM files (`--tls-cert`, `--tls-key`, `--tls-ca`), read and
//!   checked at start into a [`NodeTls`] (a missing file, a file with no certificate, a key
//!   that is not the certificate's: each fails with one line naming the file).
//! - The node serves TLS with its certificate; a client certificate is optional, and one
//!   presented must chain to the CA ([`NodeTls::server_config`]). Its subject CN is the
//!   client's principal ([`peer_common_name`]).
//! - The node dials its peers (Raft transport, forwarded calls) and itself (the Consume
//!   streams' client) over TLS with the same certificate as its client identity, checking
//!   theirs against the CA and the host of their address. The cluster secret is still
//!   required on the internal services: TLS adds encryption and identity, not membership.
//! - Without TLS a node listening beyond loopback warns at start and hourly
//!   ([`plaintext`]), unless told `insecure_ok`.

pub mod dev_certs;
pub mod plaintext;
mod principal;

use std::path::PathBuf;
use std::time::Duration;

use stave_client::TlsConfig;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

pub use principal::{common_name, peer_common_name};

use crate::error::BrokerError;

/// How long a client may take over its TLS handshake before the node drops the connection
/// (one that never finishes would otherwise hold a task forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files of a node's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate (then any intermediates): its identity to clients and peers.
    /// Its SANs name every address clients and peers dial it at; its extended key usages
    /// allow serverAuth and clientAuth.
    pub cert: PathBuf,
    /// The certificate's private key.
    pub key: PathBuf,
    /// The CA that signs the nodes' certificates and any client certificate.
    pub ca: PathBuf,
}

/// A node's TLS, read and checked.
#[derive(Debug, Clone)]
pub struct NodeTls {
    /// The CA, and the node's certificate and key as a client identity.
    client: TlsConfig,
}

impl NodeTls {
    /// Reads and checks the files: the CA holds a certificate, the node's certificate one
    /// too, and the key is that certificate's.
    pub fn load(files: &TlsFiles) -> Result<NodeTls, BrokerError> {
        let config_error = |err: stave_client::ClientError| BrokerError::Config {
            message: stave_client::display_chain(&err),
        };
        let client = TlsConfig::from_ca_file(&files.ca)
            .and_then(|tls| tls.with_identity_files(&files.cert, &files.key))
            .map_err(config_error)?;
        Ok(NodeTls { client })
    }

    /// The node's server side: its certificate; client certificates optional, and checked
    /// against the CA when presented.
    pub fn server_config(&self) -> ServerTlsConfig {
        let mut config = ServerTlsConfig::new()
            .client_ca_root(Certificate::from_pem(self.client.ca_pem()))
            .client_auth_optional(true)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some((cert, key)) = self.client.identity_pem() {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }

    /// The node as a client of other nodes (and of itself): the CA, and its certificate as
    /// its identity.
    pub fn client_config(&self) -> &TlsConfig {
        &self.client
    }

    /// [`NodeTls::client_config`] for the Raft transport.
    pub fn transport_config(&self) -> ClientTlsConfig {
        self.client.tonic_config()
    }
}

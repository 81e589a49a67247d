//! TLS to the nodes: [`TlsConfig`] (the CA that signs the nodes' certificates, and optionally
//! a client certificate for mutual TLS), checked when it is made, and [`endpoint`], the one
//! place an address becomes a tonic `Endpoint` (`https://` with TLS, `http://` without).
//!
//! rustls with the `ring` provider does the work: a process with two providers compiled in
//! has no default one, so [`install_crypto_provider`] installs ring's once, before any TLS
//! configuration is built.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::error::{ClientError, TlsProblem};

/// How the client reaches nodes over TLS. Made with [`TlsConfig::new`] or
/// [`TlsConfig::from_ca_file`]; every PEM is checked then, so a bad file fails at start with
/// a line that names it, not at the first connection.
#[derive(Clone)]
pub struct TlsConfig {
    ca_pem: Arc<[u8]>,
    identity: Option<TlsIdentity>,
    server_name: Option<String>,
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone)]
struct TlsIdentity {
    cert_pem: Arc<[u8]>,
    key_pem: Arc<[u8]>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TlsConfig")
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the certificates in `ca_pem` (PEM, one or more) to sign the nodes'
    /// certificates, which are checked against the host of the address dialled (a DNS name
    /// or an IP address SAN) unless [`TlsConfig::with_server_name`] says otherwise.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Result<TlsConfig, ClientError> {
        TlsConfig::checked(ca_pem.into(), "the CA certificate")
    }

    /// [`TlsConfig::new`] with the CA read from the PEM file at `path`.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<TlsConfig, ClientError> {
        let what = format!("CA file {}", path.as_ref().display());
        let pem = read(path.as_ref()).map_err(tls_error(&what))?;
        TlsConfig::checked(pem, &what)
    }

    fn checked(ca_pem: Vec<u8>, what: &str) -> Result<TlsConfig, ClientError> {
        install_crypto_provider();
        certificates(&ca_pem).map_err(tls_error(what))?;
        Ok(TlsConfig {
            ca_pem: ca_pem.into(),
            identity: None,
            server_name: None,
        })
    }

    /// Presents `cert_pem` (the client's certificate, then any intermediates) with its
    /// private key `key_pem` (PKCS#8, PKCS#1 or SEC1) to nodes that ask for one: mutual
    /// TLS. Fails if either holds nothing usable or the key is not the certificate's.
    pub fn with_identity(
        self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<TlsConfig, ClientError> {
        let (cert_pem, key_pem) = (cert_pem.into(), key_pem.into());
        check_identity(&cert_pem, &key_pem, "the certificate", "the private key")?;
        Ok(self.identity_unchecked(cert_pem, key_pem))
    }

    /// [`TlsConfig::with_identity`] with both read from PEM files.
    pub fn with_identity_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, ClientError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cert_what = format!("certificate file {}", cert.display());
        let key_what = format!("key file {}", key.display());
        let cert_pem = read(cert).map_err(tls_error(&cert_what))?;
        let key_pem = read(key).map_err(tls_error(&key_what))?;
        check_identity(&cert_pem, &key_pem, &cert_what, &key_what)?;
        Ok(self.identity_unchecked(cert_pem, key_pem))
    }

    fn identity_unchecked(self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> TlsConfig {
        TlsConfig {
            identity: Some(TlsIdentity {
                cert_pem: cert_pem.into(),
                key_pem: key_pem.into(),
            }),
            ..self
        }
    }

    /// Checks every node's certificate against `name` instead of the host dialled (for
    /// nodes reached through an address their certificates do not name).
    pub fn with_server_name(self, name: impl Into<String>) -> TlsConfig {
        TlsConfig {
            server_name: Some(name.into()),
            ..self
        }
    }

    /// The CA certificates, PEM.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The client certificate and key, PEM, when there is one.
    pub fn identity_pem(&self) -> Option<(&[u8], &[u8])> {
        self.identity
            .as_ref()
            .map(|identity| (&*identity.cert_pem, &*identity.key_pem))
    }

    /// This configuration as tonic's, for callers that build their own channels (a node
    /// dialling its peers). The server name is left to [`endpoint`], which knows the host.
    pub fn tonic_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&*self.ca_pem));
        match &self.identity {
            Some(identity) => {
                config.identity(Identity::from_pem(&*identity.cert_pem, &*identity.key_pem))
            }
            None => config,
        }
    }
}

/// The endpoint of the node at `addr` (`host:port`): `https://` and `tls` when given,
/// `http://` otherwise. Callers add their timeouts and windows.
pub fn endpoint(addr: &str, tls: Option<&TlsConfig>) -> Result<Endpoint, ClientError> {
    let connect = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let Some(tls) = tls else {
        return Endpoint::from_shared(format!("http://{addr}")).map_err(connect);
    };
    let endpoint = Endpoint::from_shared(format!("https://{addr}")).map_err(connect)?;
    let config = tls.tonic_config();
    let config = match (&tls.server_name, bracketed_ip(addr)) {
        (Some(name), _) => config.domain_name(name.clone()),
        // The URI's host keeps an IPv6 address's brackets, which no certificate names.
        (None, Some(ip)) => config.domain_name(ip),
        (None, None) => config,
    };
    endpoint.tls_config(config).map_err(connect)
}

/// The IPv6 address of `[addr]:port`, without its brackets.
fn bracketed_ip(addr: &str) -> Option<&str> {
    addr.strip_prefix('[')?.split_once(']').map(|(ip, _)| ip)
}

/// Installs rustls's `ring` provider as the process default, once; later calls (and a
/// provider installed by someone else first) leave it as it is.
pub fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // An error means another provider is installed already: it stays the default.
        let _ = ring_provider().install_default();
    });
}

/// rustls's `ring` provider, the only one Stave builds: aws-lc-rs beside it would leave
/// rustls with no default provider (a panic at the first handshake). rustls 0.23.48
/// deprecates it for lacking post-quantum key exchange, which only aws-lc-rs offers.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A [`ClientError::Tls`] about `what` (a file, or "the CA certificate").
fn tls_error(what: &str) -> impl FnOnce(TlsProblem) -> ClientError {
    let what = what.to_string();
    move |problem| ClientError::Tls { what, problem }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsProblem> {
    std::fs::read(path).map_err(TlsProblem::Read)
}

/// The certificates of `pem`, in order; at least one.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsProblem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsProblem::BadPem(err.to_string()))?;
    if certs.is_empty() {
        return Err(TlsProblem::NoCertificate);
    }
    Ok(certs)
}

/// Checks that `cert_pem` holds a certificate, `key_pem` a private key, and that the key
/// is the certificate's (its public half is the one the certificate names).
fn check_identity(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_what: &str,
    key_what: &str,
) -> Result<(), ClientError> {
    install_crypto_provider();
    let certs = certificates(cert_pem).map_err(tls_error(cert_what))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|err| match err {
            rustls::pki_types::pem::Error::NoItemsFound => TlsProblem::NoPrivateKey,
            other => TlsProblem::BadPem(other.to_string()),
        })
        .map_err(tls_error(key_what))?;
    let provider = ring_provider();
    rustls::sign::CertifiedKey::from_der(certs, key, &provider)
        .map_err(|err| match err {
            rustls::Error::InconsistentKeys(_) => TlsProblem::KeyMismatch {
                cert: cert_what.to_string(),
            },
            other => TlsProblem::Unusable(other.to_string()),
        })
        .map_err(tls_error(key_what))?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! The global TLS flags (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`): for
//! client commands, how to reach the nodes over TLS; for `stave server`, the node's own
//! certificate and the CA its peers' and clients' certificates chain to.

use std::path::PathBuf;

use clap::Args;
use stave_client::{ClientError, TlsConfig};

use super::error::CliError;

#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// The CA certificate (PEM) that signs the nodes' certificates: client commands speak
    /// TLS to the nodes and check their certificates with it. For `stave server`, also the
    /// CA that peers' and clients' certificates must chain to.
    #[arg(long, global = true, env = "STAVE_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// A certificate (PEM): for client commands, the client's, for mutual TLS (its CN names
    /// the client); for `stave server`, the node's own (SANs for every address it is
    /// reached at; serverAuth and clientAuth usages).
    #[arg(long, global = true, env = "STAVE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "STAVE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Client commands: check the nodes' certificates against NAME instead of the host
    /// dialled.
    #[arg(
        long,
        global = true,
        env = "STAVE_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,
}

impl TlsArgs {
    /// The client's TLS: none without --tls-ca (plaintext); the files read and checked.
    pub fn client_config(&self) -> Result<Option<TlsConfig>, CliError> {
        let Some(ca) = &self.tls_ca else {
            return match (&self.tls_cert, &self.tls_key, &self.tls_server_name) {
                (None, None, None) => Ok(None),
                _ => Err(CliError::Usage(
                    "--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA that \
                     signs the nodes' certificates)"
                        .into(),
                )),
            };
        };
        let mut tls = TlsConfig::from_ca_file(ca)?;
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => tls = tls.with_identity_files(cert, key)?,
            (None, None) => {}
            _ => {
                return Err(CliError::Usage(
                    "--tls-cert and --tls-key go together (a client certificate and its key)"
                        .into(),
                ));
            }
        }
        if let Some(name) = &self.tls_server_name {
            tls = tls.with_server_name(name.clone());
        }
        Ok(Some(tls))
    }
}

/// `err`, from connecting to the cluster, with a hint when TLS may be why: a plaintext
/// client meets a node that speaks only TLS as a connection closed on it, and a TLS client
/// meets a plaintext node as a corrupt message.
pub fn with_tls_hint(err: ClientError, tls: bool) -> CliError {
    let line = stave_client::display_chain(&err);
    let hint = if !tls && line.contains("transport error") {
        "if the nodes serve TLS, give the CA that signs their certificates with --tls-ca FILE"
    } else if tls && line.contains("InvalidContentType") {
        "the node does not seem to serve TLS: leave out --tls-ca"
    } else {
        return err.into();
    };
    CliError::Hinted { line, hint }
}

//! `stave server`: runs a node until SIGTERM or Ctrl-C.
//!
//! Settings come in layers, each overriding the one before: `BrokerConfig`'s defaults (one
//! node, `./stave-data`, `127.0.0.1:7070`), the `--config` TOML file, then `STAVE_*`
//! environment variables and flags.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use stave_broker::BrokerConfig;
use stave_broker::auth::AuthMode;
use stave_broker::cluster_secret::ClusterSecret;
use stave_broker::config::tls_files;
use stave_broker::tls::TlsFiles;
use tracing::info;

use super::args::parse_peers;
use super::error::CliError;
use super::tls::TlsArgs;

/// The data directory when neither a flag nor a config file names one.
const DATA_DIR_DEFAULT: &str = "./stave-data";
/// The listen address when neither a flag nor a config file names one.
const LISTEN_DEFAULT: &str = "127.0.0.1:7070";
/// The environment variable that may hold the cluster secret itself.
const CLUSTER_SECRET_ENV: &str = "STAVE_CLUSTER_SECRET";

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// This node's id (1 when alone); every node of a cluster has its own.
    #[arg(long, env = "STAVE_NODE_ID", value_name = "N")]
    node_id: Option<u64>,
    /// Where the node keeps its data [default: ./stave-data].
    #[arg(long, env = "STAVE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on, for clients and peers [default: 127.0.0.1:7070].
    #[arg(long, env = "STAVE_LISTEN", value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address others reach this node at, when not --listen.
    #[arg(long, env = "STAVE_ADVERTISED", value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Every node of the cluster, this one included; the same list on every node.
    #[arg(long, env = "STAVE_PEERS", value_name = "ID=HOST:PORT,...", value_parser = parse_peers)]
    peers: Option<BTreeMap<u64, String>>,
    /// Free disk space that topic writes leave alone, for recovery, votes, snapshots and
    /// admin (deleting a topic on a full disk) [default: 1% of the disk, 4 MiB to 1 GiB].
    #[arg(long, env = "STAVE_DISK_RESERVE_BYTES", value_name = "BYTES")]
    disk_reserve_bytes: Option<u64>,
    /// A file holding the cluster's shared secret, the same on every node: only calls that
    /// carry it reach the internal (Raft) services. A node with peers needs one (or
    /// STAVE_CLUSTER_SECRET); a node alone makes its own in DATA_DIR/cluster-secret.
    #[arg(long, env = "STAVE_CLUSTER_SECRET_FILE", value_name = "FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Serving plaintext on an address beyond loopback is intended: no warning about it
    /// (by default a node without TLS that others can reach warns at start and hourly).
    #[arg(long, env = "STAVE_INSECURE_OK")]
    insecure_ok: bool,
    /// `required`: every call needs a principal (a token or a client certificate) and ACLs
    /// decide what it may do; the first start with no users creates `admin` and writes its
    /// token to DATA_DIR/bootstrap-admin.token. `off` (the default): every call is allowed.
    #[arg(long, env = "STAVE_AUTH", value_name = "required|off")]
    auth: Option<AuthMode>,
    /// Where Prometheus scrapes /metrics, or `off` [default: 127.0.0.1:9644, skipped with a
    /// warning when taken; an address given here must be free].
    #[arg(long, env = "STAVE_METRICS_LISTEN", value_name = "HOST:PORT|off")]
    metrics_listen: Option<stave_broker::metrics::MetricsListen>,
    /// Metric series per partition, or per topic only (for thousands of partitions)
    /// [default: on].
    #[arg(long, env = "STAVE_METRICS_PARTITION_SERIES", value_name = "on|off", value_parser = parse_on_off)]
    metrics_partition_series: Option<bool>,
    /// A TOML file with node_id, data_dir, listen, advertised, [peers], ...; flags override it.
    #[arg(long, env = "STAVE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ServerArgs {
    fn into_config(self, tls: &TlsArgs) -> Result<BrokerConfig, CliError> {
        let mut config = match &self.config {
            Some(path) => BrokerConfig::from_file(path)?,
            None => BrokerConfig::single_node(DATA_DIR_DEFAULT.into(), LISTEN_DEFAULT.into()),
        };
        if let Some(node_id) = self.node_id {
            config.node_id = node_id;
        }
        if let Some(data_dir) = self.data_dir {
            config.data_dir = data_dir;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(advertised) = self.advertised {
            config.advertised = Some(advertised);
        }
        if let Some(peers) = self.peers {
            config.peers = peers;
        }
        if let Some(bytes) = self.disk_reserve_bytes {
            config.disk_reserve_bytes = Some(bytes);
        }
        if let Some(auth) = self.auth {
            config.auth = auth;
        }
        if let Some(path) = self.cluster_secret_file {
            config.cluster_secret_file = Some(path);
        }
        config.insecure_ok |= self.insecure_ok;
        // Each TLS flag overrides its key of the config file; then all three or none.
        let from_file = config.tls.take();
        let pick = |flag: &Option<PathBuf>, file: fn(TlsFiles) -> PathBuf| {
            flag.clone().or_else(|| from_file.clone().map(file))
        };
        config.tls = tls_files(
            pick(&tls.tls_cert, |files| files.cert),
            pick(&tls.tls_key, |files| files.key),
            pick(&tls.tls_ca, |files| files.ca),
        )
        .map_err(CliError::Usage)?;
        // The secret itself only from the environment: a flag would show it in `ps`.
        if let Ok(text) = std::env::var(CLUSTER_SECRET_ENV) {
            let secret = ClusterSecret::new(&text)
                .map_err(|why| CliError::Usage(format!("{CLUSTER_SECRET_ENV}: {why}")))?;
            config.cluster_secret = Some(secret);
        }
        if let Some(metrics_listen) = self.metrics_listen {
            config.metrics_listen = metrics_listen;
        }
        if let Some(per_partition) = self.metrics_partition_series {
            config.metrics_partition_series = per_partition;
        }
        config.validate()?;
        Ok(config)
    }
}

/// `on` or `off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

pub async fn run(args: ServerArgs, tls: &TlsArgs) -> Result<(), CliError> {
    let config = args.into_config(tls)?;
    info!(
        node_id = config.node_id,
        data_dir = %config.data_dir.display(),
        listen = %config.listen,
        advertised = %config.advertised(),
        peers = ?config.peers,
        tls = config.tls.is_some(),
        metrics = %config.metrics_listen,
        "starting stave server"
    );
    stave_broker::run(config, shutdown_signal()).await?;
    info!("stave server stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("ctrl-c: shutting down"),
        () = terminate => info!("sigterm: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        tls: TlsArgs,
    }

    fn config(args: &[&str]) -> Result<BrokerConfig, CliError> {
        let wrapper =
            Wrapper::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
                .map_err(|err| CliError::Usage(err.to_string()))?;
        wrapper.server.into_config(&wrapper.tls)
    }

    #[test]
    fn no_flags_is_one_node_in_stave_data_on_7070() {
        let config = config(&[]).unwrap();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.data_dir, PathBuf::from("./stave-data"));
        assert_eq!(config.listen, "127.0.0.1:7070");
        assert!(config.peers.is_empty());
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 2\ndata_dir = \"/var/stave\"\nlisten = \"127.0.0.1:7071\"\n\
             [peers]\n1 = \"127.0.0.1:7070\"\n2 = \"127.0.0.1:7071\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let from_file = config(&["--config", path]).unwrap();
        assert_eq!(from_file.node_id, 2);
        assert_eq!(from_file.peers.len(), 2);
        let overridden = config(&["--config", path, "--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(overridden.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(overridden.listen, "127.0.0.1:7071");
    }

    #[test]
    fn metrics_flags_and_file_keys() {
        use stave_broker::metrics::MetricsListen;
        let default = config(&[]).unwrap();
        assert!(matches!(default.metrics_listen, MetricsListen::Default));
        assert!(default.metrics_partition_series);
        let off = config(&[
            "--metrics-listen",
            "off",
            "--metrics-partition-series",
            "off",
        ]);
        let off = off.unwrap();
        assert!(matches!(off.metrics_listen, MetricsListen::Off));
        assert!(!off.metrics_partition_series);
        let at = config(&["--metrics-listen", "127.0.0.1:9700"]).unwrap();
        assert_eq!(at.metrics_listen.to_string(), "127.0.0.1:9700");
        assert!(config(&["--metrics-listen", "localhost"]).is_err());
        assert!(config(&["--metrics-partition-series", "yes"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 1\ndata_dir = \"/var/stave\"\nlisten = \"127.0.0.1:7070\"\n\
             metrics_listen = \"127.0.0.1:9701\"\nmetrics_partition_series = false\n",
        )
        .unwrap();
        let from_file = config(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(from_file.metrics_listen.to_string(), "127.0.0.1:9701");
        assert!(!from_file.metrics_partition_series);
        std::fs::write(&path, "node_id = 1\ndata_dir = \"d\"\nlisten = \"127.0.0.1:7070\"\nmetrics_listen = \"nowhere\"\n").unwrap();
        assert!(config(&["--config", path.to_str().unwrap()]).is_err());
    }

    #[test]
    fn peers_must_include_this_node() {
        let err = config(&[
            "--node-id",
            "3",
            "--peers",
            "1=127.0.0.1:7070,2=127.0.0.1:7071",
        ]);
        assert!(err.is_err());
        let ok = config(&[
            "--node-id",
            "2",
            "--peers",
            "1=127.0.0.1:7070,2=127.0.0.1:7071",
        ]);
        assert_eq!(ok.unwrap().peers.len(), 2);
    }

    #[test]
    fn tls_flags_override_the_file_and_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 1\ndata_dir = \"/var/stave\"\nlisten = \"127.0.0.1:7070\"\n\
             tls_cert = \"/etc/stave/node.pem\"\ntls_key = \"/etc/stave/node-key.pem\"\n\
             tls_ca = \"/etc/stave/ca.pem\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let from_file = config(&["--config", path]).unwrap().tls.unwrap();
        assert_eq!(from_file.ca, PathBuf::from("/etc/stave/ca.pem"));
        let flagged = config(&["--config", path, "--tls-ca", "/tmp/ca.pem"]).unwrap();
        let flagged = flagged.tls.unwrap();
        assert_eq!(flagged.ca, PathBuf::from("/tmp/ca.pem"));
        assert_eq!(flagged.cert, PathBuf::from("/etc/stave/node.pem"));
        assert!(config(&[]).unwrap().tls.is_none());
        let err = config(&["--tls-cert", "n.pem", "--tls-ca", "ca.pem"]).unwrap_err();
        assert!(
            err.to_string().contains("--tls-key (tls_key) missing"),
            "{err}"
        );
    }

    #[test]
    fn insecure_ok_is_a_flag() {
        assert!(!config(&[]).unwrap().insecure_ok);
        assert!(config(&["--insecure-ok"]).unwrap().insecure_ok);
    }
}

//! How a node runs: flags or a TOML file (`stave server --config FILE`), and topic configs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use stave_raft::transport::ClusterSecret;

use crate::auth::AuthMode;
use crate::error::BrokerError;
use crate::tls::TlsFiles;

/// A node's settings. [`BrokerConfig::single_node`] is what `stave server` runs with no
/// flags: node 1, data in `./stave-data`, listening on `127.0.0.1:7070`, no peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// The address to listen on (host:port).
    pub listen: String,
    /// How peers and clients reach this node; defaults to `listen`.
    #[serde(default)]
    pub advertised: Option<String>,
    /// Every node of the cluster, this one included: id → host:port. Empty: this node alone.
    #[serde(default)]
    pub peers: BTreeMap<u64, String>,
    /// Largest produce request accepted (bytes).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long a produce waits for its batch to commit before answering REQUEST_TIMED_OUT.
    #[serde(default = "default_produce_timeout_ms")]
    pub produce_timeout_ms: u64,
    /// How often retention runs.
    #[serde(default = "default_retention_check_ms")]
    pub retention_check_ms: u64,
    /// Free disk space that writes to topics leave alone, for recovery, snapshots, votes and
    /// the controller's metadata (so a topic can be deleted on a full disk). Default: 1% of
    /// the data directory's file system, at least 4 MiB and at most 1 GiB.
    #[serde(default)]
    pub disk_reserve_bytes: Option<u64>,
    /// A file holding the cluster's shared secret (see [`crate::cluster_secret`]).
    #[serde(default)]
    pub cluster_secret_file: Option<PathBuf>,
    /// The cluster's shared secret itself (from `STAVE_CLUSTER_SECRET`, or a test); it
    /// wins over `cluster_secret_file`. Never in a config file.
    #[serde(skip)]
    pub cluster_secret: Option<ClusterSecret>,
    /// TLS for clients and peers (see [`crate::tls`]); none serves plaintext. A config file
    /// spells it `tls_cert`, `tls_key`, `tls_ca`, all three or none.
    #[serde(skip)]
    pub tls: Option<TlsFiles>,
    /// Serving plaintext beyond loopback is intended: no warning about it.
    #[serde(default)]
    pub insecure_ok: bool,
    /// Whether calls must carry a principal (`required`) or not (`off`, the default); see
    /// [`crate::auth`].
    #[serde(default)]
    pub auth: AuthMode,
    /// Where Prometheus scrapes `/metrics`: HOST:PORT or `off` (default `127.0.0.1:9644`).
    #[serde(default)]
    pub metrics_listen: crate::metrics::MetricsListen,
    /// Metric series per partition (else per topic only, for thousands of partitions).
    #[serde(default = "default_metrics_partition_series")]
    pub metrics_partition_series: bool,
}

fn default_metrics_partition_series() -> bool {
    true
}

/// The smallest and largest default reserve ([`BrokerConfig::disk_reserve_bytes`]).
const DISK_RESERVE_BYTES_MIN: u64 = 4 << 20;
const DISK_RESERVE_BYTES_MAX: u64 = 1 << 30;

/// The default reserve on a file system of `total` bytes: 1%, within bounds.
pub fn default_disk_reserve_bytes(total: u64) -> u64 {
    (total / 100).clamp(DISK_RESERVE_BYTES_MIN, DISK_RESERVE_BYTES_MAX)
}

/// Largest gRPC message a client may send or receive on the public API. Produce batches are
/// capped lower (`max_message_bytes`), fetch answers at [`FETCH_BYTES_MAX`].
pub(crate) const CLIENT_MESSAGE_BYTES_MAX: usize = 16 << 20;

/// Room for a message's fields beside its batch bytes (topic name, offsets, an error).
const ENVELOPE_BYTES_MAX: usize = 64 << 10;

/// The most batch bytes one Fetch answer carries, whatever it asks: the answer must fit the
/// message limit, or the client would get a transport error on every retry.
pub(crate) const FETCH_BYTES_MAX: usize = CLIENT_MESSAGE_BYTES_MAX - ENVELOPE_BYTES_MAX;

/// The largest `max_message_bytes` a node accepts: a batch that fits a Produce request and
/// any Fetch answer.
pub const MAX_MESSAGE_BYTES_LIMIT: usize = FETCH_BYTES_MAX;

fn default_max_message_bytes() -> usize {
    1 << 20
}

fn default_produce_timeout_ms() -> u64 {
    // About a partition's longest election timeout: a leader cut off from its quorum answers
    // a retriable error then.
    4_000
}

fn default_retention_check_ms() -> u64 {
    5_000
}

/// The TLS files from three optional paths: all three, or none; otherwise which are missing.
pub fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
) -> Result<Option<TlsFiles>, String> {
    match (cert, key, ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles { cert, key, ca })),
        (cert, key, ca) => {
            let missing: Vec<&str> = [
                (cert.is_none(), "--tls-cert (tls_cert)"),
                (key.is_none(), "--tls-key (tls_key)"),
                (ca.is_none(), "--tls-ca (tls_ca)"),
            ]
            .iter()
            .filter(|(absent, _)| *absent)
            .map(|(_, name)| *name)
            .collect();
            Err(format!(
                "TLS needs a certificate, its key and the CA together: {} missing",
                missing.join(" and ")
            ))
        }
    }
}

/// A `--config` file.
#[derive(Deserialize)]
struct File {
    #[serde(flatten)]
    config: RawConfig,
}

/// [`BrokerConfig`]'s fields as a TOML file spells them (`peers` as a table of
/// `id = "host:port"`, TLS as `tls_cert`, `tls_key`, `tls_ca`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_id: u64,
    data_dir: PathBuf,
    listen: String,
    #[serde(default)]
    advertised: Option<String>,
    #[serde(default)]
    peers: BTreeMap<String, String>,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
    #[serde(default = "default_produce_timeout_ms")]
    produce_timeout_ms: u64,
    #[serde(default = "default_retention_check_ms")]
    retention_check_ms: u64,
    #[serde(default)]
    disk_reserve_bytes: Option<u64>,
    #[serde(default)]
    cluster_secret_file: Option<PathBuf>,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
    #[serde(default)]
    tls_ca: Option<PathBuf>,
    #[serde(default)]
    insecure_ok: bool,
    #[serde(default)]
    auth: AuthMode,
    #[serde(default)]
    metrics_listen: crate::metrics::MetricsListen,
    #[serde(default = "default_metrics_partition_series")]
    metrics_partition_series: bool,
}

impl RawConfig {
    /// The config the file at `path` describes (not validated yet).
    fn into_config(self, path: &Path) -> Result<BrokerConfig, BrokerError> {
        let mut peers = BTreeMap::new();
        for (id, addr) in self.peers {
            let id = id.parse::<u64>().map_err(|_| BrokerError::Config {
                message: format!("{}: peer id {id:?} is not a number", path.display()),
            })?;
            peers.insert(id, addr);
        }
        Ok(BrokerConfig {
            node_id: self.node_id,
            data_dir: self.data_dir,
            listen: self.listen,
            advertised: self.advertised,
            peers,
            max_message_bytes: self.max_message_bytes,
            produce_timeout_ms: self.produce_timeout_ms,
            retention_check_ms: self.retention_check_ms,
            disk_reserve_bytes: self.disk_reserve_bytes,
            cluster_secret_file: self.cluster_secret_file,
            cluster_secret: None,
            tls: tls_files(self.tls_cert, self.tls_key, self.tls_ca).map_err(|message| {
                BrokerError::Config {
                    message: format!("{}: {message}", path.display()),
                }
            })?,
            insecure_ok: self.insecure_ok,
            auth: self.auth,
            metrics_listen: self.metrics_listen,
            metrics_partition_series: self.metrics_partition_series,
        })
    }
}

impl BrokerConfig {
    /// One node on its own: `data_dir`, `listen`.
    pub fn single_node(data_dir: PathBuf, listen: String) -> BrokerConfig {
        BrokerConfig {
            node_id: 1,
            data_dir,
            listen,
            advertised: None,
            peers: BTreeMap::new(),
            max_message_bytes: default_max_message_bytes(),
            produce_timeout_ms: default_produce_timeout_ms(),
            retention_check_ms: default_retention_check_ms(),
            disk_reserve_bytes: None,
            cluster_secret_file: None,
            cluster_secret: None,
            tls: None,
            insecure_ok: false,
            auth: AuthMode::Off,
            metrics_listen: crate::metrics::MetricsListen::default(),
            metrics_partition_series: default_metrics_partition_series(),
        }
    }

    /// Reads a TOML file with the fields of [`BrokerConfig`] (`peers` as a table of
    /// `id = "host:port"`).
    pub fn from_file(path: &Path) -> Result<BrokerConfig, BrokerError> {
        let text = std::fs::read_to_string(path).map_err(|source| BrokerError::Config {
            message: format!("cannot read {}: {source}", path.display()),
        })?;
        let file: File = toml::from_str(&text).map_err(|err| BrokerError::Config {
            message: format!("{}: {err}", path.display()),
        })?;
        let config = file.config.into_config(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Whether other nodes than this one are listed.
    pub fn has_other_peers(&self) -> bool {
        self.peers.keys().any(|id| *id != self.node_id)
    }

    /// This node's address as others reach it.
    pub fn advertised(&self) -> &str {
        self.advertised.as_deref().unwrap_or(&self.listen)
    }

    /// The peers, with this node added when the list is empty or lacks it.
    pub fn cluster(&self) -> BTreeMap<u64, String> {
        let mut peers = self.peers.clone();
        peers
            .entry(self.node_id)
            .or_insert_with(|| self.advertised().to_string());
        peers
    }

    /// Refuses settings that cannot work, with a message that says which.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let fail = |message: String| Err(BrokerError::Config { message });
        if self.node_id == 0 {
            return fail("node ids start at 1".into());
        }
        if !self.peers.is_empty() && !self.peers.contains_key(&self.node_id) {
            return fail(format!(
                "--peers lists {:?} but not this node ({})",
                self.peers.keys().collect::<Vec<_>>(),
                self.node_id
            ));
        }
        let frame_bytes_min = stave_log::frame::FRAME_BYTES_MIN as usize;
        if !(frame_bytes_min..=MAX_MESSAGE_BYTES_LIMIT).contains(&self.max_message_bytes) {
            return fail(format!(
                "max_message_bytes {} must be within [{frame_bytes_min}, {MAX_MESSAGE_BYTES_LIMIT}]",
                self.max_message_bytes
            ));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return fail(format!(
                "--listen {:?} is not HOST:PORT (an IP address and a port)",
                self.listen
            ));
        }
        Ok(())
    }

    pub fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms)
    }
}

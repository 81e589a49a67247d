//! Which cluster secret a node starts with. The secret closes the internal Raft services to
//! everything but the cluster's nodes (`stave_raft::transport::auth`) and marks the calls
//! one node forwards to another. In order:
//!
//! 1. given outright (`STAVE_CLUSTER_SECRET`, or a test's config);
//! 2. read from `--cluster-secret-file` (`cluster_secret_file` in the config file);
//! 3. a node with peers and neither refuses to start: every node must hold the same secret
//!    before the first one starts, so none can be made up here;
//! 4. a node alone reads `DATA_DIR/cluster-secret`, or makes one there (mode 0600) on its
//!    first start and says where.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use stave_raft::transport::ClusterSecret;

use crate::config::BrokerConfig;
use crate::error::BrokerError;

/// The file in a lone node's data directory its generated secret is kept in.
pub const GENERATED_SECRET_FILE: &str = "cluster-secret";

fn config_error(message: String) -> BrokerError {
    BrokerError::Config { message }
}

/// The secret `config` says this node runs with (see the module's order).
pub fn resolve(config: &BrokerConfig) -> Result<ClusterSecret, BrokerError> {
    if let Some(secret) = &config.cluster_secret {
        return Ok(secret.clone());
    }
    if let Some(path) = &config.cluster_secret_file {
        return read(path);
    }
    if config.has_other_peers() {
        return Err(config_error(format!(
            "node {} has peers but no cluster secret: give every node of the cluster the same \
             secret before it starts, with --cluster-secret-file FILE or STAVE_CLUSTER_SECRET \
             (make one with `openssl rand -hex 32 > cluster.secret; chmod 600 cluster.secret`)",
            config.node_id
        )));
    }
    let path = config.data_dir.join(GENERATED_SECRET_FILE);
    if path.exists() {
        return read(&path);
    }
    let secret = ClusterSecret::generate();
    write_new(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated this node's cluster secret");
    Ok(secret)
}

/// The secret in the file at `path`.
fn read(path: &Path) -> Result<ClusterSecret, BrokerError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        config_error(format!(
            "cannot read the cluster secret file {}: {err}",
            path.display()
        ))
    })?;
    warn_if_readable_by_others(path);
    ClusterSecret::new(&text).map_err(|why| config_error(format!("{}: {why}", path.display())))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the cluster secret file can be read by other users: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Writes `secret` to a new file at `path`, readable by its owner only, durably (a temporary
/// Writes `secret` to a new file at `path`, readable by its owner only, durably (a temporary
/// file synced and renamed into place).
fn write_new(path: &Path, secret: &ClusterSecret) -> Result<(), BrokerError> {
    let failed = |err: std::io::Error| {
        config_error(format!(
            "cannot write the cluster secret to {}: {err}",
            path.display()
        ))
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let temporary: PathBuf = dir.join(format!("{GENERATED_SECRET_FILE}.tmp"));
    write_private(&temporary, secret.expose()).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)?;
    std::fs::File::open(&dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)
}

/// Writes `text` and a newline to a new file at `path`, readable by its owner only (0600),
/// synced; its directory is made if missing. For secrets: the cluster's, a bootstrap token.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{text}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn alone(dir: &Path) -> BrokerConfig {
        BrokerConfig::single_node(dir.to_path_buf(), "127.0.0.1:7070".into())
    }

    #[test]
    fn a_lone_node_makes_its_secret_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(&alone(dir.path())).unwrap();
        let path = dir.path().join(GENERATED_SECRET_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(resolve(&alone(dir.path())).unwrap(), first);
    }

    #[test]
    fn a_node_with_peers_needs_a_secret_given_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = alone(dir.path());
        config.peers = [(1, "127.0.0.1:7070".into()), (2, "127.0.0.1:7071".into())].into();
        let err = resolve(&config).unwrap_err().to_string();
        assert!(err.contains("--cluster-secret-file"), "{err}");
        assert!(!dir.path().join(GENERATED_SECRET_FILE).exists());
        let file = dir.path().join("given.secret");
        std::fs::write(&file, "a-secret-of-enough-length\n").unwrap();
        config.cluster_secret_file = Some(file.clone());
        assert_eq!(
            resolve(&config).unwrap().expose(),
            "a-secret-of-enough-length"
        );
        std::fs::write(&file, "short").unwrap();
        let err = resolve(&config).unwrap_err().to_string();
        assert!(err.contains("16 to 1024"), "{err}");
        config.cluster_secret_file = Some(dir.path().join("missing"));
        assert!(resolve(&config).is_err());
    }
}

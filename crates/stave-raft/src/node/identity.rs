//! `{data}/node` ([`NodeFile`]): which node a data directory belongs to, its cluster, and what a
//! wiped node still has to finish; written whole and atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{NodeError, RaftNode, blocking, io_error, lock};

const NODE_FILE: &str = "node";

/// `{data}/node`: which node the directory belongs to, its cluster, and what a wiped node
/// still has to finish.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct NodeFile {
    pub(super) node_id: u64,
    pub(super) cluster_id: Option<String>,
    /// Set once this node came back wiped: replicas it creates for topics below this
    /// incarnation rejoin as learners (`u64::MAX` until its controller replica caught up).
    #[serde(default)]
    pub(super) rejoin_below_incarnation: Option<u64>,
    /// While its controller replica rejoins: the learner entry's log index.
    #[serde(default)]
    pub(super) controller_learner_since: Option<u64>,
}

fn read_node_file(dir: &Path) -> Result<Option<NodeFile>, NodeError> {
    let path = dir.join(NODE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_error(&path)(std::io::Error::other(e))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error(&path)(err)),
    }
}

/// Opens node `id`'s data directory (off the async threads): creates its `partitions` and
/// `controller` directories, and reads `{data}/node`, or writes it for a new directory.
/// Refuses a directory that belongs to another node.
pub(super) async fn open_data_dir(dir: PathBuf, id: u64) -> Result<NodeFile, NodeError> {
    blocking(move || {
        std::fs::create_dir_all(dir.join("partitions")).map_err(io_error(&dir))?;
        let file = read_node_file(&dir)?;
        if let Some(file) = &file
            && file.node_id != id
        {
            return Err(NodeError::WrongNode {
                dir,
                found: file.node_id,
                expected: id,
            });
        }
        let file = file.unwrap_or(NodeFile {
            node_id: id,
            ..NodeFile::default()
        });
        write_node_file(&dir, &file)?;
        std::fs::create_dir_all(dir.join("controller")).map_err(io_error(&dir))?;
        Ok(file)
    })
    .await
}

/// Replaces `dir/name` with `bytes` atomically ([`crate::files::replace_atomically`]).
pub(super) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), NodeError> {
    crate::files::replace_atomically(dir, name, bytes).map_err(io_error(&dir.join(name)))
}

fn write_node_file(dir: &Path, file: &NodeFile) -> Result<(), NodeError> {
    let bytes = serde_json::to_vec(file)
        .map_err(|e| io_error(&dir.join(NODE_FILE))(std::io::Error::other(e)))?;
    write_atomically(dir, NODE_FILE, &bytes)
}

impl RaftNode {
    /// Updates `{data}/node` (off the async threads).
    pub(super) async fn update_node_file(
        &self,
        change: impl FnOnce(&mut NodeFile),
    ) -> Result<(), NodeError> {
        let file = {
            let mut file = lock(&self.inner.node_file);
            change(&mut file);
            file.clone()
        };
        let dir = self.inner.config.data_dir.clone();
        blocking(move || write_node_file(&dir, &file)).await
    }

    /// Stores the metadata's cluster id once it is known and new here: in `{data}/node`
    /// first, then in the node's identity (whoever sees the identity's cluster id finds it
    /// on disk).
    pub(super) async fn store_cluster_id(&self, cluster_id: Option<&str>) {
        let identity = &self.inner.identity;
        if let Some(cluster_id) = cluster_id
            && identity.cluster_id().as_deref() != Some(cluster_id)
        {
            let owned = cluster_id.to_string();
            match self
                .update_node_file(|file| file.cluster_id = Some(owned))
                .await
            {
                Ok(()) => identity.set_cluster_id(cluster_id),
                Err(err) => tracing::error!(%err, "cluster id not stored"),
            }
        }
    }
}

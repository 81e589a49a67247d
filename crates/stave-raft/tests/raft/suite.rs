//! openraft's own storage test suite, run against the production log store (a real
//! `PartitionLog` on disk) and the partition state machine.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use stave_log::storage::{FsStorage, Storage};
use stave_log::{FlushPolicy, LogConfig};
use stave_raft::{LogStore, PartitionStateMachine, TypeConfig};

/// Builds a fresh store in its own temporary directory for each case of the suite.
struct Builder {
    flush: FlushPolicy,
}

impl StoreBuilder<TypeConfig, LogStore, PartitionStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, PartitionStateMachine), StorageError<TypeConfig>>
    {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        let config = LogConfig {
            flush: self.flush,
            segment_bytes: 16 * 1024,
            ..LogConfig::default()
        };
        let sm = PartitionStateMachine::default();
        let store = LogStore::open(storage, dir.path(), config, sm.installed_snapshots()).unwrap();
        Ok((dir, store, sm))
    }
}

/// Every case of openraft's log-storage suite passes against the production log store, with
/// the default flush policy (`always`: completions after `fdatasync`, group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes_with_flush_always() {
    Suite::test_all(Builder {
        flush: FlushPolicy::Always,
    })
    .await
    .unwrap();
}

/// The same suite with `flush=never`, whose completions run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes_with_flush_never() {
    Suite::test_all(Builder {
        flush: FlushPolicy::Never,
    })
    .await
    .unwrap();
}

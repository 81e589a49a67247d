//! The controller group (Raft group 0, [`CONTROLLER_GROUP`](crate::group::CONTROLLER_GROUP)):
//! the cluster metadata. Nodes, topics with their incarnations, partition → replicas, topic
//! configs, the next incarnation and the next producer id ([`ClusterMetadata`]).
//!
//! It runs on the same [`TypeConfig`](crate::TypeConfig), [`LogStore`](crate::LogStore) and
//! transport as partitions. Commands are prost `Command`s in `command` frames; the state
//! machine ([`ControllerStateMachine`]) applies them deterministically (a command that cannot
//! apply answers a `CommandError` and changes nothing) and replies with an encoded
//! `CommandReply` in [`Applied::reply`](crate::Applied). [`Controller`] is the node's handle:
//! `propose`, `metadata`, and a watch of the metadata to start and stop partition groups from.
//!
//! Unlike partitions, the controller lets openraft snapshot and purge its log
//! (`SnapshotPolicy::LogsSinceLast`, see [`controller_raft_config`]): the snapshot is the whole
//! metadata, persisted atomically in the group's directory and reloaded on open, and a replica
//! behind the purged log start, or wiped, catches up by installing it.
//!
//! # Where `__offsets` goes
//!
//! Consumer groups' committed offsets live in the internal topic [`OFFSETS_TOPIC`]
//! ([`OFFSETS_PARTITION_COUNT`] partitions), which the controller creates on first use with an
//! ordinary CreateTopic (internal names pass [`validate_topic_name`]; only users are held to
//! [`validate_user_topic_name`]). Its partitions are partition groups on the same type config,
//! log store and transport, but with their own state machine: the high watermark plus a table
//! `(group, topic, partition) → committed offset`, applied from `command` frames (messages in
//! their own `proto/stave/internal/` file), answered through `Applied::reply`, and snapshotted
//! whole like the controller's metadata, so those groups purge with `LogsSinceLast` too. It
//! belongs in its own module beside this one (`crate::offsets`), following this module's
//! pattern; the consumer-groups issue fills it in.

mod convert;
mod handle;
mod metadata;
pub mod security;
mod state_machine;
mod topic_name;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use convert::MetadataError;
pub use handle::{
    COMMAND_BYTES_MAX, Controller, ControllerError, ControllerRaft, controller_log_config,
};
pub use metadata::{
    ClusterMetadata, INCARNATION_MAX, OFFSETS_PARTITION_COUNT, OFFSETS_TOPIC, PRODUCER_ID_MAX,
    PRODUCER_IDS_COUNT_MAX, TopicMetadata,
};
pub use security::{AclEntry, AclOperation, AclResource, SecurityMetadata};
pub use state_machine::{ControllerSnapshot, ControllerSnapshotOf, ControllerStateMachine};
pub use topic_name::{
    INTERNAL_TOPIC_PREFIX, TOPIC_NAME_BYTES_MAX, TopicNameError, is_internal_topic,
    validate_topic_name, validate_user_topic_name,
};

/// How often the controller snapshots its metadata, and how much log it keeps behind a
/// snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotCadence {
    /// A snapshot is built once this many entries were committed since the last one (at
    /// least 1).
    pub logs_since_last: u64,
    /// Entries kept behind the snapshot, so a replica slightly behind catches up from the log
    /// instead of a snapshot; 0 purges everything the snapshot covers.
    pub logs_kept: u64,
}

impl Default for SnapshotCadence {
    fn default() -> Self {
        SnapshotCadence {
            logs_since_last: 1024,
            logs_kept: 128,
        }
    }
}

/// Raft settings for the controller group: faster timers than partitions (heartbeat every
/// 100 ms, elections after 500 to 1000 ms, pre-vote so a returning replica cannot disrupt a
/// healthy leader), and openraft's own snapshots and purges at `cadence`.
pub fn controller_raft_config(cadence: SnapshotCadence) -> Arc<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "stave-controller".to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        enable_pre_vote: Some(true),
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cadence.logs_since_last.max(1)),
        max_in_snapshot_log_to_keep: cadence.logs_kept,
        install_snapshot_timeout: 2000,
        ..openraft::Config::default()
    };
    Arc::new(
        config
            .validate()
            .expect("the controller's timer settings are valid"),
    )
}

//! `stave-raft`: replication for Stave. Each partition is a Raft group (openraft) whose Raft
//! log *is* the partition's `stave-log` [`PartitionLog`](stave_log::PartitionLog): one copy
//! of the data on disk.
//!
//! - [`TypeConfig`]: standard Raft log ids (term, index), as frames store them.
//! - [`LogStore`]: openraft's `RaftLogStorage` over a partition log; the vote and the
//!   committed index in [`SlotFile`](stave_log::slots::SlotFile)s. openraft's own storage
//!   suite runs against it (`tests/raft/suite.rs`).
//! - [`PartitionStateMachine`]: the high watermark and the idempotent producer table
//!   ([`Producers`]: checked on the leader before proposing, counted on append, rolled back on
//!   truncation).
//! - [`controller`]: group 0, the cluster metadata.
//! - [`group`], [`transport`]: many groups per node over two gRPC connections per peer
//!   (control, data); [`sim_network`]: the same over an in-process router with seeded faults.
//! - [`membership`]: replica changes (learners promoted only once caught up, wiped replicas
//!   rejoining as learners); [`node`]: bootstrap and partition groups that follow the
//!   metadata.
//!
//! `README.md` beside this crate says what is built, where it departs from the usual design,
//! and what was measured; `docs/architecture.md` at the repository root puts it in context.

pub mod controller;
mod entry;
mod files;
pub mod group;
mod log_store;
pub mod membership;
pub mod node;
pub mod offsets;
mod partition;
pub mod problems;
mod producers;
pub mod replica;
pub mod sim_network;
mod snapshot_file;
mod state_machine;
pub mod stats;
pub mod transport;
mod types;

pub use log_store::LogStore;
pub use partition::{Partition, Proposal, ReplicationError, Watermarks};
pub use producers::{
    BATCHES_RETAINED, BatchMetadata, BelowApplied, EXPIRY_CHECK_INTERVAL_MS,
    PRODUCER_EXPIRY_MS_DEFAULT, ProducerBatch, ProducerConfig, ProducerSnapshot, ProducerState,
    ProducerTable, Producers, Reservation, ReservationId, Verdict, Written, sequence_add,
};
pub use replica::{PartitionRaft, PartitionReplica, partition_raft_config, start_partition};
pub use state_machine::{
    InstalledSnapshots, PartitionKind, PartitionSnapshot, PartitionStateMachine,
};
pub use types::{Applied, FramePayload, LogIdOf, SnapshotCodec, TypeConfig};

//! `stave-raft`: replication for Stave. Each partition is a Raft group (openraft) whose Raft
//! log *is* the partition's `stave-log` [`PartitionLog`](stave_log::PartitionLog): one copy
//! of the data on disk.
//!
//! So far: the type config ([`TypeConfig`]), the log store ([`LogStore`], openraft's
//! `RaftLogStorage` over a partition log, with the vote and the committed index in
//! [`SlotFile`](stave_log::slots::SlotFile)s) and the partition state machine
//! ([`PartitionStateMachine`]: the high watermark). openraft's own storage test suite runs
//! against them (`tests/raft/suite.rs`). [`sim_network`] is an in-process transport with
//! seeded faults for tests and benches. The gRPC transport, the controller group and the
//! producer table come next.

pub mod controller;
mod entry;
pub mod group;
mod log_store;
pub mod membership;
pub mod node;
mod producers;
pub mod replica;
pub mod sim_network;
mod state_machine;
pub mod transport;
mod types;

pub use log_store::LogStore;
pub use producers::{
    BATCHES_RETAINED, BatchMetadata, BelowApplied, EXPIRY_CHECK_INTERVAL_MS,
    PRODUCER_EXPIRY_MS_DEFAULT, ProducerBatch, ProducerConfig, ProducerSnapshot, ProducerState,
    ProducerTable, Producers, Reservation, ReservationId, Verdict, Written, sequence_add,
};
pub use replica::{PartitionRaft, PartitionReplica, partition_raft_config, start_partition};
pub use state_machine::{InstalledSnapshots, PartitionSnapshot, PartitionStateMachine};
pub use types::{Applied, FramePayload, LogIdOf, SnapshotCodec, TypeConfig};

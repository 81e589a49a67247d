//! `stave-log`: the partition log under every Stave topic partition, and under its Raft group.
//!
//! A partition is a directory of segments. Each frame is one Raft entry (see [`frame`]); data
//! frames hold a record batch (see [`batch`]). The same bytes travel from the producer to disk,
//! between replicas and back to consumers.
//!
//! This crate is synchronous and has no network: callers run it on threads made for blocking
//! I/O, never on an async runtime's workers. All file access goes through [`storage::Storage`],
//! so the same log runs over real files ([`storage::FsStorage`]) and over a simulated disk that
//! loses unsynced writes at a power cut ([`storage::SimStorage`]).

pub mod batch;
mod config;
mod error;
mod flush;
pub mod frame;
mod index;
mod log;
mod meta;
mod segment;
pub mod storage;
mod types;
mod varint;

pub use config::{Clock, FlushPolicy, LogConfig, RetentionPolicy};
pub use error::{ConfigError, CorruptReason, LogError, Result};
pub use flush::Completion;
pub use log::{Appended, LogState, PartitionLog, ReadFrames, StoredFrame};
pub use types::{LogId, LogIndex, Offset, Term, TimestampMs, WritePos};

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
//!
//! ```
//! use std::sync::Arc;
//! use stave_log::batch::{BatchBuilder, Record};
//! use stave_log::storage::SimStorage;
//! use stave_log::{LogConfig, LogId, Offset, PartitionLog};
//!
//! let mut log = PartitionLog::open(Arc::new(SimStorage::new()), "/p0", LogConfig::default())?;
//! let mut batch = BatchBuilder::new();
//! batch.push(&Record { timestamp: 1, key: Some(b"user-1"), value: Some(b"signed up"), headers: &[] });
//! let appended = log.append(&batch.finish(), LogId::new(1, 0))?;
//! assert_eq!(appended.base_offset, Offset(0));
//! log.flush()?;
//! let read = log.read(Offset(0), 1 << 20)?;
//! let batch = read.batches().next().expect("one batch")?;
//! let record = batch.records().next().expect("one record").expect("valid record");
//! assert_eq!(record.value, Some(&b"signed up"[..]));
//! # Ok::<(), stave_log::LogError>(())
//! ```

pub mod batch;
mod config;
mod error;
mod flush;
pub mod frame;
pub mod hash;
mod index;
mod log;
pub mod message_id;
mod meta;
mod segment;
pub mod slots;
mod space;
pub mod storage;
pub mod sync_timing;
mod types;
mod varint;

pub use config::{Clock, FlushPolicy, LogConfig, RetentionPolicy, SEGMENT_BYTES_MAX};
pub use error::{ConfigError, CorruptReason, LogError, Result};
pub use flush::Completion;
pub use log::{Appended, LogState, PartitionLog, ReadFrames, StoredFrame};
pub use types::{LogId, LogIndex, Offset, Term, TimestampMs, WritePos};

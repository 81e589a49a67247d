//! `Partition`: this node's replica of one partition, as the broker uses it. openraft stays
//! behind it: the broker proposes a batch and waits for it to commit, checks a producer,
//! reads committed frames, watches the high watermark and compacts the log, and every
//! failure crosses as a [`ReplicationError`].
//!
//! Watermarks, in Kafka's names and order: `log_start_offset <= high_watermark <=
//! log_end_offset`. The log start moves with retention (a snapshot, then a purge); the high
//! watermark when a Raft majority commits; the log end when the log appends (a follower's or
//! a new leader's may run ahead of the high watermark until those entries commit or are
//! truncated).

use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardReason, ForwardToLeader};
use stave_log::{CorruptReason, LogError, LogIndex, Offset, ReadFrames, RetentionPolicy};

use crate::offsets::OffsetsTable;
use crate::replica::PartitionReplica;
use crate::types::{Applied, FramePayload, TypeConfig};
use crate::{Producers, Verdict};

/// The one error of this crate's face to the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// This replica does not lead; `leader_hint` is the leader it knows of.
    #[error("this replica does not lead its group (leader: {leader_hint:?})")]
    NotLeader { leader_hint: Option<u64> },
    /// No leader yet (an election is under way), or the write was dropped by a leader
    /// change before it committed: retriable with the same batch.
    #[error("the group has no leader yet")]
    NoLeader,
    #[error("{0}")]
    Timeout(String),
    /// The replica's Raft stopped (the node shuts down, or a storage error stopped it).
    #[error("the replica stopped: {0}")]
    Stopped(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

/// A partition's watermarks, in this order: `log_start <= high_watermark <= log_end` (a
/// follower's or a new leader's log end may run ahead of the high watermark until those
/// entries commit or are truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub log_start: Offset,
    pub high_watermark: Offset,
    pub log_end: Offset,
}

/// This node's replica of one partition. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Partition {
    node_id: u64,
    replica: PartitionReplica,
}

impl Partition {
    pub(crate) fn new(node_id: u64, replica: PartitionReplica) -> Partition {
        Partition { node_id, replica }
    }

    /// openraft's handle, for this crate's tests and tools; the broker never needs it.
    #[doc(hidden)]
    pub fn replica(&self) -> &PartitionReplica {
        &self.replica
    }

    /// The leader this replica knows of.
    pub fn leader(&self) -> Option<u64> {
        self.replica.raft.metrics().borrow_watched().current_leader
    }

    /// Whether this replica leads its group.
    pub fn leads(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// The Raft term this replica is in.
    pub fn term(&self) -> u64 {
        self.replica.raft.metrics().borrow_watched().current_term
    }

    /// What the producer table says of a batch (its producer fields), on the leader before
    /// it proposes.
    pub fn check_producer(&self, frame: &[u8]) -> Result<Verdict, CorruptReason> {
        self.replica.sm.producers().check(frame)
    }

    /// The producer table.
    pub fn producers(&self) -> Producers {
        self.replica.sm.producers()
    }

    /// Whether an append of `bytes` would find disk space now (`LogError::StorageFull`).
    pub fn check_space(&self, bytes: u64) -> Result<(), ReplicationError> {
        Ok(self.replica.store.check_space(bytes)?)
    }

    /// Hands `batch` to Raft on this replica, which should lead; [`Proposal::committed`]
    /// waits for the outcome. Proposals are appended in the order of these calls.
    pub async fn propose(&self, batch: Bytes) -> Result<Proposal, ReplicationError> {
        let receiver = self.submit(batch.clone()).await?;
        Ok(Proposal {
            partition: self.clone(),
            batch,
            receiver,
        })
    }

    async fn submit(&self, batch: Bytes) -> Result<WriteReceiver, ReplicationError> {
        let (responder, receiver) = openraft::impls::ProgressResponder::complete_only();
        self.replica
            .raft
            .client_write_ff(FramePayload(batch), Some(responder))
            .await
            .map_err(|fatal| ReplicationError::Stopped(fatal.to_string()))?;
        Ok(receiver)
    }

    /// The high watermark: the offset after the last committed record.
    pub fn high_watermark(&self) -> Offset {
        Offset(self.replica.sm.high_watermark())
    }

    /// A receiver that sees the high watermark move (an error once the replica stops).
    pub fn subscribe_high_watermark(&self) -> tokio::sync::watch::Receiver<u64> {
        self.replica.sm.subscribe_high_watermark()
    }

    /// The log start, the high watermark and the log end, in that order.
    pub async fn watermarks(&self) -> Result<Watermarks, ReplicationError> {
        let high_watermark = self.high_watermark();
        let (start, end) = self.replica.store.offsets().await?;
        let watermarks = Watermarks {
            log_start: Offset(start),
            high_watermark,
            log_end: Offset(end),
        };
        // The high watermark is read first: a retention pass may move the start past it only
        // on a replica whose applied state lags (a follower), never past its log end.
        debug_assert!(
            watermarks.log_start <= watermarks.log_end,
            "log start past log end: {watermarks:?}"
        );
        Ok(watermarks)
    }

    /// Committed data frames holding offsets from `from` up to `high_watermark`, at most
    /// `bytes_max` of them (at least one); `from` must lie in the log.
    pub async fn read_committed(
        &self,
        from: Offset,
        high_watermark: Offset,
        bytes_max: usize,
    ) -> Result<ReadFrames, ReplicationError> {
        Ok(self
            .replica
            .store
            .read(from.0, high_watermark.0, bytes_max)
            .await?)
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, if any.
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<Offset>, ReplicationError> {
        let offset = self
            .replica
            .store
            .offset_for_timestamp(timestamp_ms)
            .await?;
        Ok(offset.map(Offset))
    }

    /// This replica's Raft state and event counts, for monitoring.
    pub fn raft_stats(&self) -> crate::stats::RaftStats {
        crate::stats::read(
            &self.replica.raft,
            self.replica.sm.installed_snapshots().counters(),
        )
    }

    /// How many segments this replica's log has and the bytes of frames they hold.
    pub async fn log_usage(&self) -> Result<crate::stats::LogUsage, ReplicationError> {
        Ok(self.replica.store.usage().await?)
    }

    /// The committed consumer-group offsets, on an `__offsets` replica.
    pub fn offsets_table(&self) -> Option<OffsetsTable> {
        self.replica.sm.offsets()
    }

    /// The last index applied here, and the one the last snapshot covers.
    pub fn applied_and_snapshot(&self) -> (LogIndex, Option<LogIndex>) {
        let metrics = self.replica.raft.metrics();
        let metrics = metrics.borrow_watched();
        (
            LogIndex(metrics.last_applied.map_or(0, |id| id.index)),
            metrics.snapshot.map(|id| LogIndex(id.index)),
        )
    }

    /// Moves this replica's log start as `policy` allows (whole sealed segments, up to what
    /// is applied): the index it purged through, if it moved.
    pub async fn retain(
        &self,
        policy: RetentionPolicy,
    ) -> Result<Option<LogIndex>, ReplicationError> {
        let Some(point) = self.replica.store.retention_point(policy).await? else {
            return Ok(None);
        };
        // Only what is applied (committed) can be in a snapshot.
        let (applied, _) = self.applied_and_snapshot();
        let upto = LogIndex(point.min(applied.0));
        Ok(self
            .compact_through(upto, "retention snapshot")
            .await?
            .then_some(upto))
    }

    /// Purges this replica's log through `upto` (applied), first building a snapshot that
    /// covers it unless the last one does; false if the snapshot was not built within 10 s.
    /// Every replica compacts its own log (openraft purges only the log it is asked on).
    pub async fn compact_through(
        &self,
        upto: LogIndex,
        what: &'static str,
    ) -> Result<bool, ReplicationError> {
        let stopped = |fatal: openraft::error::Fatal<TypeConfig>| {
            ReplicationError::Stopped(fatal.to_string())
        };
        let raft = &self.replica.raft;
        let (_, snapshot_at) = self.applied_and_snapshot();
        if snapshot_at.is_none_or(|at| at < upto) {
            raft.trigger().snapshot().await.map_err(stopped)?;
            let built = raft
                .wait(Some(SNAPSHOT_WAIT_MAX))
                .metrics(|m| m.snapshot.is_some_and(|id| id.index >= upto.0), what)
                .await;
            if built.is_err() {
                return Ok(false);
            }
        }
        raft.trigger().purge_log(upto.0).await.map_err(stopped)?;
        Ok(true)
    }
}

/// How long a compaction waits for its snapshot.
const SNAPSHOT_WAIT_MAX: Duration = Duration::from_secs(10);

type WriteReceiver = tokio::sync::oneshot::Receiver<
    Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<TypeConfig>>,
>;

/// A batch handed to Raft ([`Partition::propose`]).
#[derive(Debug)]
pub struct Proposal {
    partition: Partition,
    batch: Bytes,
    receiver: WriteReceiver,
}

impl Proposal {
    /// Waits until the batch is committed and applied, at most until `deadline`. A fresh
    /// leader refuses writes until a majority has acknowledged it (openraft's leader lease):
    /// that is waited for, and the batch proposed again, within the deadline.
    pub async fn committed(mut self, deadline: Instant) -> Result<Applied, ReplicationError> {
        loop {
            let outcome = tokio::time::timeout_at(deadline.into(), &mut self.receiver).await;
            let result = match outcome {
                Err(_) => {
                    return Err(ReplicationError::Timeout(
                        "the batch did not commit in time (is a majority of its replicas up?)"
                            .into(),
                    ));
                }
                Ok(Err(_)) => {
                    return Err(ReplicationError::Stopped("the write was dropped".into()));
                }
                Ok(Ok(result)) => result,
            };
            let forward = match result {
                Ok(response) => return Ok(response.data),
                Err(ClientWriteError::ForwardToLeader(forward)) => forward,
                // Not committed: a retry of the same (idempotent) batch is safe.
                Err(ClientWriteError::LogEntryDiscarded(_)) => {
                    return Err(ReplicationError::NoLeader);
                }
                Err(other) => return Err(ReplicationError::Stopped(other.to_string())),
            };
            if !lease_expired(&forward) {
                return Err(match forward.leader_id {
                    Some(leader) => ReplicationError::NotLeader {
                        leader_hint: Some(leader),
                    },
                    None => ReplicationError::NoLeader,
                });
            }
            // A fresh leader: wait for a quorum to acknowledge it, then submit again.
            let raft = &self.partition.replica.raft;
            let since = openraft::alias::InstantOf::<TypeConfig>::now();
            let left = deadline.saturating_duration_since(Instant::now());
            let acked = raft
                .wait(Some(left))
                .leader_with_quorum_acked(Some(since), "the leader's lease")
                .await;
            if acked.is_err() {
                return Err(ReplicationError::Timeout(
                    "no leader with a quorum".to_string(),
                ));
            }
            self.receiver = self.partition.submit(self.batch.clone()).await?;
        }
    }
}

fn lease_expired(forward: &ForwardToLeader<TypeConfig>) -> bool {
    forward.leader_id.is_none() && forward.reason == ForwardReason::LeaseExpired
}

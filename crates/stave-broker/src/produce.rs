//! Produce: a batch goes to the partition's leader replica on this node. It is checked whole
//! (size, one frame filling the request, CRC, every record) before anything is proposed; an
//! idempotent one is checked against the producer table, the check and the proposal under a
//! per-partition lock so they happen in the same order; then it is proposed, and answered
//! once a majority committed it. A write the disk has no room for is refused before Raft
//! holds it; a fresh leader's lease is waited for; a leader without a quorum answers
//! REQUEST_TIMED_OUT after the produce timeout.

use std::time::Instant;

use bytes::Bytes;
use stave_log::Offset;
use stave_log::batch::BatchView;
use stave_log::frame::FRAME_BYTES_LIMIT;
use stave_raft::controller::is_internal_topic;
use stave_raft::group::RaftGroupId;
use stave_raft::{Partition, Proposal, Reservation, Verdict, Written};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::routing::Target;
use crate::topic_config::TopicConfig;

/// A produce request, as it arrives.
#[derive(Debug, Clone)]
pub struct ProduceRequest {
    pub topic: String,
    pub partition: u32,
    /// One record batch frame, unchecked.
    pub batch: Bytes,
}

/// Where a produced batch was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: Offset,
    /// The offset after the batch's last record.
    pub next_offset: Offset,
    /// A retry of a batch written before: the offsets are the first write's.
    pub duplicate: bool,
}

/// A produce after its ordered half ([`Broker::begin_produce`]).
#[derive(Debug)]
pub(crate) enum Submitted {
    Written {
        target: Target,
        proposal: Proposal,
        deadline: Instant,
        /// Holds the batch's sequences in the producer table until the outcome is known.
        reservation: Option<Reservation>,
        /// The batch's size and when it was proposed, for the metrics.
        bytes: u64,
        proposed: Instant,
    },
    /// A retry of a batch already in the log.
    Duplicate {
        partition: Partition,
        written: Written,
        deadline: Instant,
    },
}

impl Broker {
    pub(crate) async fn produce(&self, request: ProduceRequest) -> Result<Produced, BrokerError> {
        let submitted = self.begin_produce(request).await?;
        self.finish_produce(submitted).await
    }

    /// The ordered half of a produce: checks the batch and, if it is new, proposes it (an
    /// idempotent one under the partition's order lock, so batches are proposed in the order
    /// the producer table accepted them). A pipelined stream runs this for its requests one
    /// after another, in the order they arrive.
    pub(crate) async fn begin_produce(
        &self,
        request: ProduceRequest,
    ) -> Result<Submitted, BrokerError> {
        let target = self.target(&request.topic, request.partition)?;
        let view = self.check_batch(&target, &request.batch)?;
        let partition = self.leader_partition(&target).await?;
        // A write the disk has no room for is refused here, before Raft holds it.
        partition
            .check_space(request.batch.len() as u64)
            .map_err(|err| self.replication_error(&target, err))?;
        let deadline = Instant::now() + self.config().produce_timeout();
        if view.body().producer_id < 0 {
            return self
                .propose(&partition, target, request.batch, deadline, None)
                .await;
        }
        let order = self.order_lock(target.raft_group);
        let _order = order.lock().await;
        let verdict = partition
            .check_producer(&request.batch)
            .map_err(|reason| BrokerError::CorruptBatch(reason.to_string()))?;
        match verdict {
            Verdict::New(reservation) => {
                self.propose(
                    &partition,
                    target,
                    request.batch,
                    deadline,
                    Some(reservation),
                )
                .await
            }
            Verdict::Duplicate {
                written: Some(written),
            } => Ok(Submitted::Duplicate {
                partition,
                written,
                deadline,
            }),
            Verdict::Duplicate { written: None } => Err(BrokerError::DuplicateInFlight),
            Verdict::OutOfOrderSequence { expected, received } => {
                Err(BrokerError::OutOfOrderSequence { expected, received })
            }
            Verdict::FencedEpoch { current, received } => {
                Err(BrokerError::ProducerFenced { current, received })
            }
        }
    }

    /// The checks of a batch before anything else: the topic is a user topic, the batch
    /// fits the limits, and it is one data frame filling the request whose records all
    /// decode. The log accepts whatever passes (its bound is the format's), so no request
    /// can make a replica's log refuse an entry Raft already took.
    fn check_batch(&self, target: &Target, batch: &Bytes) -> Result<BatchView, BrokerError> {
        if is_internal_topic(&target.topic) {
            return Err(BrokerError::InvalidRequest(format!(
                "{} is an internal topic",
                target.topic
            )));
        }
        let max = (target.config.max_message_bytes as usize).min(self.config().max_message_bytes);
        if batch.len() > max {
            return Err(BrokerError::MessageTooLarge {
                bytes: batch.len(),
                max,
            });
        }
        BatchView::parse_produced(batch.clone(), FRAME_BYTES_LIMIT)
            .map_err(|err| BrokerError::CorruptBatch(err.to_string()))
    }

    async fn propose(
        &self,
        partition: &Partition,
        target: Target,
        batch: Bytes,
        deadline: Instant,
        reservation: Option<Reservation>,
    ) -> Result<Submitted, BrokerError> {
        let (bytes, proposed) = (batch.len() as u64, Instant::now());
        let proposal = partition
            .propose(batch)
            .await
            .map_err(|err| self.replication_error(&target, err))?;
        Ok(Submitted::Written {
            target,
            proposal,
            deadline,
            reservation,
            bytes,
            proposed,
        })
    }

    /// The rest of a produce: waits for the batch to commit (or, for a duplicate, for the
    /// first copy to), and answers with its offsets.
    pub(crate) async fn finish_produce(
        &self,
        submitted: Submitted,
    ) -> Result<Produced, BrokerError> {
        match submitted {
            Submitted::Written {
                target,
                proposal,
                deadline,
                reservation,
                bytes,
                proposed,
            } => {
                let applied = proposal.committed(deadline).await;
                // The reservation holds the sequences until the outcome is known.
                drop(reservation);
                let applied = applied.map_err(|err| self.replication_error(&target, err))?;
                let records = applied.next_offset.saturating_sub(applied.base_offset);
                let metrics = self.metrics();
                metrics.committed_after(proposed.elapsed());
                metrics.produced(&target.topic, target.partition, records, bytes);
                Ok(Produced {
                    base_offset: Offset(applied.base_offset),
                    next_offset: Offset(applied.next_offset),
                    duplicate: false,
                })
            }
            Submitted::Duplicate {
                partition,
                written,
                deadline,
            } => {
                let mut high_watermark = partition.subscribe_high_watermark();
                let committed = tokio::time::timeout_at(
                    deadline.into(),
                    high_watermark.wait_for(|hwm| *hwm >= written.next_offset),
                )
                .await;
                match committed {
                    Ok(Ok(_)) => Ok(Produced {
                        base_offset: Offset(written.base_offset),
                        next_offset: Offset(written.next_offset),
                        duplicate: true,
                    }),
                    _ => Err(BrokerError::Timeout(
                        "the earlier copy of this batch is not committed yet".into(),
                    )),
                }
            }
        }
    }

    /// Proposes a batch the broker built itself (an internal topic's) to `partition`, which
    /// leads; answered once committed.
    pub(crate) async fn propose_internal(
        &self,
        partition: &Partition,
        topic: &str,
        raft_group: RaftGroupId,
        batch: Bytes,
    ) -> Result<(), BrokerError> {
        let target = Target {
            topic: topic.to_string(),
            partition: stave_raft::group::partition_of(raft_group),
            raft_group,
            config: TopicConfig::default(),
        };
        partition
            .check_space(batch.len() as u64)
            .map_err(|err| self.replication_error(&target, err))?;
        let deadline = Instant::now() + self.config().produce_timeout();
        let submitted = self
            .propose(partition, target, batch, deadline, None)
            .await?;
        self.finish_produce(submitted).await.map(|_| ())
    }
}

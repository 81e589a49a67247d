//! [`Consumer`]: reads explicitly assigned partitions, or the partitions a consumer group
//! gives it ([`Consumer::subscribe`]).
//!
//! Each assigned partition has a fetch task (`fetcher.rs`) one fetch ahead of the consumer.
//! [`Consumer::next`] takes records from the partitions in turn, a fetch's worth at a time,
//! so a busy partition does not starve the others. Within a partition, records come in
//! offset order, each once.
//!
//! A position outside the partition's records (retention removed them, or an offset not
//! written yet) follows [`ConsumerConfig::offset_reset`]: by default
//! ([`OffsetReset::Error`](crate::OffsetReset::Error)) `next` returns
//! [`ClientError::OffsetOutOfRange`] with the partition's current range, and the partition
//! stops until [`Consumer::seek`] moves it; `Earliest`/`Latest` move on and log a warning.
//!
//! In a group (`member.rs`, its tasks in `group.rs`), a heartbeat task keeps the membership;
//! `next` applies assignment changes as they come (commit and release what was revoked, start
//! what was given, at the group's committed offset or
//! [`ConsumerConfig::start_without_commit`]), tells the [`Consumer::on_assignment_change`]
//! callback, and commits positions every [`ConsumerConfig::auto_commit_interval`]. Delivery
//! is at least once: a record handed out counts as processed once `next` is called again,
//! and after a consumer dies its partitions resume at the last commit.

mod fetcher;
mod group;
mod member;

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::fetcher::{Chunk, Fetcher};
use self::member::GroupMember;
use crate::client::Client;
use crate::config::{ConsumerConfig, StartPosition};
use crate::error::ClientError;
use crate::record::ConsumerRecord;

/// Reads records from assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    partitions: Vec<Assigned>,
    /// Records of one fetch not handed out yet, from `partitions[buffered_from]`.
    buffered: VecDeque<ConsumerRecord>,
    buffered_from: usize,
    /// Where the next round of `next` starts looking (round robin).
    turn: usize,
    /// Set once the consumer subscribed as a group member.
    group: Option<GroupMember>,
}

/// A change of the partitions a group member reads, as [`Consumer::on_assignment_change`]
/// reports it: revocations just *before* the partitions are released (after their positions
/// were committed), assignments just *after* reading starts, so between the two calls
/// nobody else reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    /// These partitions are about to be released (positions committed, with auto-commit on).
    Revoked {
        member_id: String,
        member_epoch: u64,
        partitions: Vec<(Arc<str>, u32)>,
    },
    /// The membership was lost (expired, fenced, or the coordinator moved): these were
    /// dropped without a commit, since they may already be another member's.
    Lost { partitions: Vec<(Arc<str>, u32)> },
    /// These partitions are read now, each from the offset given.
    Assigned {
        member_id: String,
        member_epoch: u64,
        partitions: Vec<(Arc<str>, u32, u64)>,
    },
}

#[derive(Debug)]
struct Assigned {
    topic: Arc<str>,
    partition: u32,
    /// The offset after the last record handed out.
    position: u64,
    chunks: mpsc::Receiver<Chunk>,
    task: JoinHandle<()>,
    /// The fetch task ended (after an error it reported).
    stopped: bool,
}

impl Drop for Assigned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// A consumer with no partition assigned yet.
    pub fn consumer(&self, config: ConsumerConfig) -> Consumer {
        Consumer::new(self.clone(), config)
    }
}

impl Consumer {
    pub(crate) fn new(client: Client, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            partitions: Vec::new(),
            buffered: VecDeque::new(),
            buffered_from: 0,
            turn: 0,
            group: None,
        }
    }

    fn refuse_in_group(&self, what: &str) -> Result<(), ClientError> {
        match &self.group {
            Some(group) => Err(ClientError::InvalidArgument {
                message: format!(
                    "the consumer is a member of group {:?}: the group assigns its \
                     partitions ({what} is for consumers outside a group)",
                    group.shared.coordinator.group()
                ),
            }),
            None => Ok(()),
        }
    }

    /// Starts reading `topic`/`partition` at `start`; returns the offset it starts at.
    /// Reassigning a partition moves it (as [`Consumer::seek`]). Not for group members.
    pub async fn assign(
        &mut self,
        topic: &str,
        partition: u32,
        start: StartPosition,
    ) -> Result<u64, ClientError> {
        self.refuse_in_group("assign")?;
        self.start_partition(topic, partition, start).await
    }

    async fn start_partition(
        &mut self,
        topic: &str,
        partition: u32,
        start: StartPosition,
    ) -> Result<u64, ClientError> {
        let partitions = self.client.partition_count(topic).await?;
        if partition >= partitions {
            return Err(ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions,
            });
        }
        let position = self
            .client
            .resolve_position(topic, partition, start)
            .await?;
        self.unassign(topic, partition);
        let topic: Arc<str> = Arc::from(topic);
        let (sender, chunks) = mpsc::channel(1);
        let fetcher = Fetcher {
            client: self.client.clone(),
            config: self.config.clone(),
            topic: topic.clone(),
            partition,
            position,
            chunks: sender,
        };
        let task = tokio::spawn(fetcher.run());
        self.partitions.push(Assigned {
            topic,
            partition,
            position,
            chunks,
            task,
            stopped: false,
        });
        Ok(position)
    }

    /// Assigns every partition of `topic` at `start`; returns `(partition, offset)` pairs.
    pub async fn assign_topic(
        &mut self,
        topic: &str,
        start: StartPosition,
    ) -> Result<Vec<(u32, u64)>, ClientError> {
        self.refuse_in_group("assign")?;
        let partitions = self.client.partition_count(topic).await?;
        let mut started = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            started.push((partition, self.assign(topic, partition, start).await?));
        }
        Ok(started)
    }

    /// Moves `topic`/`partition` to `start` (records fetched ahead are dropped). A group
    /// member may seek only partitions it holds.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        start: StartPosition,
    ) -> Result<u64, ClientError> {
        if self.group.is_some() && self.index_of(topic, partition).is_none() {
            return Err(ClientError::InvalidArgument {
                message: format!("the group has not given this consumer {topic}/{partition}"),
            });
        }
        self.start_partition(topic, partition, start).await
    }

    /// Stops reading `topic`/`partition`.
    pub fn unassign(&mut self, topic: &str, partition: u32) {
        let Some(index) = self.index_of(topic, partition) else {
            return;
        };
        if self.buffered_from == index {
            self.buffered.clear();
        } else if self.buffered_from > index {
            self.buffered_from -= 1;
        }
        self.partitions.remove(index);
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<(Arc<str>, u32)> {
        self.partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect()
    }

    /// The offset of the next record `next` returns from `topic`/`partition`.
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.index_of(topic, partition)
            .map(|index| self.partitions[index].position)
    }

    fn index_of(&self, topic: &str, partition: u32) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| &*p.topic == topic && p.partition == partition)
    }

    /// The next record of any assigned partition, waiting as long as it takes.
    ///
    /// Errors: [`ClientError::OffsetOutOfRange`] under the `Error` reset policy; a partition
    /// failing retriably for longer than `retry_timeout` ([`ClientError::Timeout`]); a corrupt
    /// batch. The failed partition stops (others go on); `seek` restarts it.
    pub async fn next(&mut self) -> Result<ConsumerRecord, ClientError> {
        loop {
            // Between fetches, not per record: membership changes and auto-commit wait for
            // the records already fetched (a clock reading per record costs ~8% here).
            if self.group.is_some() && self.buffered.is_empty() {
                self.group_step().await?;
            }
            if let Some(record) = self.buffered.pop_front() {
                if let Some(assigned) = self.partitions.get_mut(self.buffered_from) {
                    assigned.position = record.offset + 1;
                }
                return Ok(record);
            }
            if self.group.is_some() {
                if let Some((index, chunk)) = self.wait_in_group().await? {
                    self.take_chunk(index, chunk)?;
                }
                continue;
            }
            if !self.partitions.iter().any(|p| !p.stopped) {
                return Err(ClientError::InvalidArgument {
                    message: if self.partitions.is_empty() {
                        "the consumer has no partition assigned".into()
                    } else {
                        "every assigned partition stopped after an error".into()
                    },
                });
            }
            let (index, chunk) = self.next_chunk().await;
            self.take_chunk(index, chunk)?;
        }
    }

    fn take_chunk(&mut self, index: usize, chunk: Option<Chunk>) -> Result<(), ClientError> {
        match chunk {
            Some(Ok(records)) => {
                self.buffered = records.into();
                self.buffered_from = index;
                Ok(())
            }
            Some(Err(err)) => {
                self.partitions[index].stopped = true;
                Err(err)
            }
            None => {
                self.partitions[index].stopped = true;
                Ok(())
            }
        }
    }

    /// The next record already fetched, without waiting: `None` when [`Consumer::next`]
    /// would have to fetch (or step the group) first. For callers that hand records on in
    /// bulk once `next` returned one.
    pub fn try_next(&mut self) -> Option<ConsumerRecord> {
        let record = self.buffered.pop_front()?;
        if let Some(assigned) = self.partitions.get_mut(self.buffered_from) {
            assigned.position = record.offset + 1;
        }
        Some(record)
    }

    /// [`Consumer::next`], waiting at most `timeout`: `None` when no record came.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Option<ConsumerRecord>, ClientError> {
        // Cancel-safe: `next` only takes a fetch off its channel when it is ready, and hands
        // out buffered records without waiting.
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The next fetch of any running partition, taking turns.
    async fn next_chunk(&mut self) -> (usize, Option<Chunk>) {
        let (index, chunk) = next_chunk(&mut self.partitions, self.turn).await;
        self.turn = index + 1;
        (index, chunk)
    }
}

/// The next fetch of any running partition, starting the round at `start`.
async fn next_chunk(partitions: &mut [Assigned], start: usize) -> (usize, Option<Chunk>) {
    {
        std::future::poll_fn(|cx| {
            let count = partitions.len();
            for step in 0..count {
                let index = (start + step) % count;
                let assigned = &mut partitions[index];
                if assigned.stopped {
                    continue;
                }
                if let Poll::Ready(chunk) = assigned.chunks.poll_recv(cx) {
                    return Poll::Ready((index, chunk));
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests;

//! The consumer as a group member ([`Consumer::subscribe`]): it joins, applies the
//! assignments the heartbeat task (`group.rs`) publishes, tells the assignment listener, and
//! commits positions.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use stave_proto::v1 as proto;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::fetcher::Chunk;
use super::group::{self, CommitJob, GroupShared, Membership, TopicPartition};
use super::{AssignmentChange, Consumer, next_chunk};
use crate::config::StartPosition;
use crate::coordinator::Coordinator;
use crate::error::ClientError;

/// Behind a mutex so the consumer stays `Sync` (its futures hold `&self` across awaits).
type Listener = Mutex<Box<dyn FnMut(&AssignmentChange) + Send>>;

/// A subscribed consumer's side of its group: the membership it follows, the heartbeat and
/// committer tasks, and the assignment listener.
pub(super) struct GroupMember {
    pub(super) shared: Arc<GroupShared>,
    membership: watch::Receiver<Membership>,
    /// The membership the partitions follow now.
    applied: Membership,
    commits: mpsc::UnboundedSender<CommitJob>,
    stop: Option<oneshot::Sender<()>>,
    heartbeat: JoinHandle<()>,
    listener: Option<Listener>,
    next_auto_commit: Option<Instant>,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("group", &self.shared.coordinator.group())
            .field("member_id", &self.applied.member_id)
            .field("member_epoch", &self.applied.member_epoch)
            .finish_non_exhaustive()
    }
}

/// Group membership.
impl Consumer {
    /// Joins consumer group `group` with `subscription`: topic names or patterns (`v1.user.*`
    /// one word, `v1.#` any number; internal topics never match). From then on the group
    /// decides which partitions this consumer reads; topics created later that match join
    /// without a restart. Returns once the coordinator has answered the join (a refused
    /// subscription is an error here).
    pub async fn subscribe(
        &mut self,
        group: &str,
        subscription: &[&str],
    ) -> Result<(), ClientError> {
        self.check_subscription(group, subscription)?;
        let shared = Arc::new(GroupShared {
            coordinator: Coordinator::new(self.client.clone(), group),
            subscription: subscription.iter().map(|s| s.to_string()).collect(),
            owned: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            committed: Mutex::new(HashMap::new()),
        });
        let (membership_tx, mut membership) = watch::channel(Membership::default());
        let (stop, stopped) = oneshot::channel();
        let heartbeat = tokio::spawn(group::heartbeat_loop(
            self.client.clone(),
            shared.clone(),
            membership_tx,
            stopped,
        ));
        let (commits, jobs) = mpsc::unbounded_channel();
        tokio::spawn(group::commit_loop(
            self.client.clone(),
            shared.clone(),
            membership.clone(),
            jobs,
        ));
        // Wait for the join's answer (or the reason there is none).
        let timeout = self.client.config().retry_timeout;
        let joined = tokio::time::timeout(
            timeout,
            membership.wait_for(|m| m.generation > 0 || m.failed.is_some()),
        )
        .await
        .map(|answer| answer.map(|m| m.failed.clone()));
        let failed = match joined {
            Ok(Ok(failed)) => failed,
            Ok(Err(_)) => None,
            Err(_) => {
                heartbeat.abort();
                return Err(ClientError::Timeout {
                    what: format!("joining group {group:?}"),
                    elapsed: timeout,
                    last: None,
                });
            }
        };
        if let Some(err) = failed {
            heartbeat.abort();
            return Err(err.replicate());
        }
        self.group = Some(GroupMember {
            shared,
            membership,
            applied: Membership::default(),
            commits,
            stop: Some(stop),
            heartbeat,
            listener: None,
            next_auto_commit: self.config.auto_commit_interval.map(|i| Instant::now() + i),
        });
        Ok(())
    }

    /// Refuses a subscription this consumer cannot take: a second one, one beside partitions
    /// assigned by hand, or one without a group name or topics.
    fn check_subscription(&self, group: &str, subscription: &[&str]) -> Result<(), ClientError> {
        if self.group.is_some() {
            return Err(ClientError::InvalidArgument {
                message: "the consumer already subscribed".into(),
            });
        }
        if !self.partitions.is_empty() {
            return Err(ClientError::InvalidArgument {
                message: "the consumer has partitions assigned by hand: a group member reads \
                          only what the group gives it"
                    .into(),
            });
        }
        if group.is_empty() || subscription.is_empty() {
            return Err(ClientError::InvalidArgument {
                message: "a group name and at least one topic or pattern are needed".into(),
            });
        }
        Ok(())
    }

    /// Calls `listener` after every change of the partitions the group gives this consumer
    /// (from the next call of `next` on).
    pub fn on_assignment_change(
        &mut self,
        listener: impl FnMut(&AssignmentChange) + Send + 'static,
    ) {
        if let Some(group) = &mut self.group {
            group.listener = Some(Mutex::new(Box::new(listener)));
        }
    }

    /// The member id and epoch this consumer reads as (after its first assignment).
    pub fn member(&self) -> Option<(String, u64)> {
        let group = self.group.as_ref()?;
        (!group.applied.member_id.is_empty())
            .then(|| (group.applied.member_id.clone(), group.applied.member_epoch))
    }

    /// Commits the position of every partition read (the offset after the last record
    /// handed out) and waits for the coordinator's answer. Commits are sent in order, after
    /// any [`Consumer::commit_async`] asked for before.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let done = self.queue_commit(None)?;
        match done.await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Closed {
                what: "the committer",
            }),
        }
    }

    /// Commits as [`Consumer::commit`] does without waiting: the returned future (which
    /// may be dropped) says how it went.
    pub fn commit_async(
        &mut self,
    ) -> Result<impl Future<Output = Result<(), ClientError>> + Send + 'static, ClientError> {
        let done = self.queue_commit(None)?;
        Ok(async move {
            match done.await {
                Ok(result) => result,
                Err(_) => Err(ClientError::Closed {
                    what: "the committer",
                }),
            }
        })
    }

    /// Commits these offsets (each the offset of the next record to read) and waits for the
    /// coordinator's answer, as Kafka's `commitSync(offsets)`: each partition must be one this
    /// member holds (otherwise nothing is committed).
    pub async fn commit_offsets(
        &mut self,
        offsets: &[(String, u32, u64)],
    ) -> Result<(), ClientError> {
        let Some(group) = &self.group else {
            return Err(ClientError::InvalidArgument {
                message: "only a group member commits offsets (see Consumer::subscribe)".into(),
            });
        };
        if let Some((topic, partition, _)) = offsets.iter().find(|(topic, partition, _)| {
            !self
                .partitions
                .iter()
                .any(|p| &*p.topic == topic && p.partition == *partition)
        }) {
            return Err(ClientError::InvalidArgument {
                message: format!("{topic}/{partition} is not held by this member"),
            });
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let job = CommitJob {
            member_id: group.applied.member_id.clone(),
            offsets: offsets
                .iter()
                .map(|(topic, partition, offset)| ((topic.clone(), *partition), *offset))
                .collect(),
            done: Some(done),
        };
        group.commits.send(job).map_err(|_| ClientError::Closed {
            what: "the committer",
        })?;
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Closed {
                what: "the committer",
            }),
        }
    }

    /// For a member that is not reading now (its caller has no room for more records):
    /// waits for the group's next change, or the auto-commit's turn, and applies it, so its
    /// partitions can still move (a member that neither reads nor calls this holds up every
    /// rebalance of its group). Returns after one step; never returns outside a group.
    /// Cancel-safe between steps; a step interrupted is redone by the next call.
    pub async fn keep_membership(&mut self) -> Result<(), ClientError> {
        let Some(group) = &mut self.group else {
            return std::future::pending().await;
        };
        let due = group.next_auto_commit;
        tokio::select! {
            changed = group.membership.changed() => {
                if changed.is_err() {
                    return Err(ClientError::Closed { what: "the group membership" });
                }
            }
            () = sleep_until(due) => {}
        }
        self.group_step().await
    }

    /// Queues a commit of the positions that moved since the last commit (of `only` when
    /// given).
    fn queue_commit(
        &mut self,
        only: Option<&BTreeSet<TopicPartition>>,
    ) -> Result<oneshot::Receiver<Result<(), ClientError>>, ClientError> {
        let Some(group) = &self.group else {
            return Err(ClientError::InvalidArgument {
                message: "only a group member commits offsets (see Consumer::subscribe)".into(),
            });
        };
        let committed = group
            .shared
            .committed
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let offsets: Vec<(TopicPartition, u64)> = self
            .partitions
            .iter()
            .map(|p| ((p.topic.to_string(), p.partition), p.position))
            .filter(|(tp, position)| {
                only.is_none_or(|only| only.contains(tp)) && committed.get(tp) != Some(position)
            })
            .collect();
        let (done, answer) = oneshot::channel();
        if offsets.is_empty() {
            let _ = done.send(Ok(()));
            return Ok(answer);
        }
        let job = CommitJob {
            member_id: group.applied.member_id.clone(),
            offsets,
            done: Some(done),
        };
        group.commits.send(job).map_err(|_| ClientError::Closed {
            what: "the committer",
        })?;
        Ok(answer)
    }

    /// Commits (with auto-commit on) and leaves the group, so its partitions move to the
    /// other members at once; a consumer outside a group just stops.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let Some(mut group) = self.group.take() else {
            return Ok(());
        };
        let committed = if self.config.auto_commit_interval.is_some() {
            self.group = Some(group);
            let result = self.commit().await;
            group = match self.group.take() {
                Some(group) => group,
                None => return result,
            };
            result
        } else {
            Ok(())
        };
        let held = self.assignment();
        if !held.is_empty()
            && let Some(listener) = &mut group.listener
            && let Ok(listener) = listener.get_mut()
        {
            listener(&AssignmentChange::Revoked {
                member_id: group.applied.member_id.clone(),
                member_epoch: group.applied.member_epoch,
                partitions: held,
            });
        }
        self.partitions.clear();
        if let Some(stop) = group.stop.take() {
            let _ = stop.send(());
        }
        let limit = self.client.config().request_timeout * 2;
        let _ = tokio::time::timeout(limit, &mut group.heartbeat).await;
        committed
    }

    /// Applies a new membership, and commits when auto-commit is due.
    pub(super) async fn group_step(&mut self) -> Result<(), ClientError> {
        let Some(group) = &mut self.group else {
            return Ok(());
        };
        let latest = group.membership.borrow_and_update().clone();
        if latest.generation != group.applied.generation {
            self.apply(latest).await?;
        }
        let Some(group) = &mut self.group else {
            return Ok(());
        };
        if let (Some(due), Some(interval)) =
            (group.next_auto_commit, self.config.auto_commit_interval)
            && Instant::now() >= due
        {
            group.next_auto_commit = Some(Instant::now() + interval);
            // Not waited for: the committer reports failures in its log, and the next
            // commit carries the positions again.
            drop(self.queue_commit(None)?);
        }
        Ok(())
    }

    /// Moves the partitions read to `latest`'s assignment: releases (committing first, with
    /// auto-commit on, unless the membership was lost) what it no longer has, then starts
    /// what it gained. Safe to run again after an interruption: it works from what is read
    /// now.
    async fn apply(&mut self, latest: Membership) -> Result<(), ClientError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        if let Some(err) = &latest.failed {
            return Err(err.replicate());
        }
        let shared = group.shared.clone();
        let held = self.held();
        let revoked: BTreeSet<TopicPartition> = if latest.lost {
            held.clone()
        } else {
            held.difference(&latest.assignment).cloned().collect()
        };
        if !revoked.is_empty() {
            self.release(&latest, &revoked, &shared).await?;
        }
        let assigned = self.start_gained(&latest, &shared).await?;
        let (member_id, member_epoch) = (latest.member_id.clone(), latest.member_epoch);
        if let Some(group) = &mut self.group {
            group.applied = latest;
        }
        if !assigned.is_empty() {
            self.tell(AssignmentChange::Assigned {
                member_id,
                member_epoch,
                partitions: assigned,
            });
        }
        Ok(())
    }

    /// Releases `revoked`: commits their positions first (with auto-commit on, unless the
    /// membership was lost), tells the listener, stops reading them, and wakes the heartbeat
    /// task to report them free.
    async fn release(
        &mut self,
        latest: &Membership,
        revoked: &BTreeSet<TopicPartition>,
        shared: &GroupShared,
    ) -> Result<(), ClientError> {
        if !latest.lost && self.config.auto_commit_interval.is_some() {
            let done = self.queue_commit(Some(revoked))?;
            match done.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    warn!(error = %err, "commit of revoked partitions failed: they resume at the previous commit");
                }
                Err(_) => {
                    return Err(ClientError::Closed {
                        what: "the committer",
                    });
                }
            }
        }
        let partitions = revoked
            .iter()
            .map(|(topic, partition)| (Arc::from(topic.as_str()), *partition))
            .collect();
        self.tell(if latest.lost {
            AssignmentChange::Lost { partitions }
        } else {
            AssignmentChange::Revoked {
                member_id: self
                    .group
                    .as_ref()
                    .map(|g| g.applied.member_id.clone())
                    .unwrap_or_default(),
                member_epoch: latest.member_epoch,
                partitions,
            }
        });
        for (topic, partition) in revoked {
            self.unassign(topic, *partition);
        }
        if let Ok(mut committed) = shared.committed.lock() {
            committed.retain(|tp, _| !revoked.contains(tp));
        }
        shared.set_owned(self.held());
        // The coordinator hands them on once it hears they are free.
        shared.wake.notify_one();
        Ok(())
    }

    /// Starts reading what `latest` assigns and this consumer does not read yet, each at the
    /// group's committed offset (or `start_without_commit`); returns them with the offsets
    /// they start at.
    async fn start_gained(
        &mut self,
        latest: &Membership,
        shared: &GroupShared,
    ) -> Result<Vec<(Arc<str>, u32, u64)>, ClientError> {
        let gained: Vec<TopicPartition> = latest
            .assignment
            .difference(&self.held())
            .cloned()
            .collect();
        let mut assigned = Vec::with_capacity(gained.len());
        if gained.is_empty() {
            return Ok(assigned);
        }
        // Owned from the moment they are accepted, not once each one is started: starting a
        // hundred partitions takes a while, and a heartbeat meanwhile reporting only those
        // started would tell the coordinator the others were free (it handed them to another
        // member, and both read them).
        let mut accepted = self.held();
        accepted.extend(gained.iter().cloned());
        shared.set_owned(accepted);
        let started = self.start_each(gained, shared, &mut assigned).await;
        shared.set_owned(self.held());
        started?;
        Ok(assigned)
    }

    /// Starts reading each of `gained` at the group's committed offset (or
    /// `start_without_commit`), noting in `assigned` where each one starts.
    async fn start_each(
        &mut self,
        gained: Vec<TopicPartition>,
        shared: &GroupShared,
        assigned: &mut Vec<(Arc<str>, u32, u64)>,
    ) -> Result<(), ClientError> {
        let committed = self.committed_offsets(shared).await?;
        for (topic, partition) in gained {
            let key = (topic, partition);
            let start = match committed.get(&key) {
                Some(offset) => StartPosition::Offset(*offset),
                None => self.config.start_without_commit,
            };
            let offset = self.start_partition(&key.0, key.1, start).await?;
            if let Ok(mut known) = shared.committed.lock()
                && let Some(offset) = committed.get(&key)
            {
                known.insert(key.clone(), *offset);
            }
            assigned.push((Arc::from(key.0.as_str()), key.1, offset));
        }
        Ok(())
    }

    fn tell(&mut self, change: AssignmentChange) {
        if let Some(listener) = self.group.as_mut().and_then(|g| g.listener.as_mut())
            && let Ok(listener) = listener.get_mut()
        {
            listener(&change);
        }
    }

    fn held(&self) -> BTreeSet<TopicPartition> {
        self.partitions
            .iter()
            .map(|p| (p.topic.to_string(), p.partition))
            .collect()
    }

    /// The group's committed offsets, from its coordinator.
    async fn committed_offsets(
        &self,
        shared: &GroupShared,
    ) -> Result<HashMap<TopicPartition, u64>, ClientError> {
        let client = &self.client;
        let request = proto::FetchOffsetsRequest {
            group: shared.coordinator.group().to_string(),
        };
        let answer = shared
            .coordinator
            .call(
                "fetch committed offsets",
                client.config().retry_timeout,
                |addr, mut node| {
                    let request = request.clone();
                    async move {
                        let answer = client.unary(&addr, node.fetch_offsets(request)).await?;
                        ClientError::check(answer.error.clone())?;
                        Ok(answer)
                    }
                },
            )
            .await?;
        Ok(answer
            .offsets
            .into_iter()
            .map(|o| ((o.topic, o.partition), o.offset))
            .collect())
    }

    /// Waits, as a group member, for a fetch, a membership change or the auto-commit time.
    pub(super) async fn wait_in_group(
        &mut self,
    ) -> Result<Option<(usize, Option<Chunk>)>, ClientError> {
        let Consumer {
            partitions,
            turn,
            group,
            ..
        } = self;
        let Some(group) = group else {
            return Ok(None);
        };
        let running = partitions.iter().any(|p| !p.stopped);
        let due = group.next_auto_commit;
        tokio::select! {
            (index, chunk) = next_chunk(partitions, *turn), if running => {
                *turn = index + 1;
                Ok(Some((index, chunk)))
            }
            changed = group.membership.changed() => match changed {
                Ok(()) => Ok(None),
                Err(_) => Err(ClientError::Closed { what: "the group membership" }),
            },
            () = sleep_until(due) => Ok(None),
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

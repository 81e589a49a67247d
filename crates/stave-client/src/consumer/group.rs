//! Group membership for [`Consumer::subscribe`](super::Consumer::subscribe): the heartbeat
//! task and the committer task.
//!
//! The heartbeat task talks to the group's coordinator (KIP-848 style): it joins, then every
//! heartbeat interval (and at once when the consumer releases partitions) reports the
//! subscription and the partitions the consumer holds, and publishes the coordinator's answer
//! — member id, member epoch and the partitions the member may hold — on a watch channel.
//! The consumer applies it in `next`: it commits and releases what was revoked, then starts
//! what was assigned. The coordinator gives a partition to a new owner only after the old
//! owner reported it released, so two members never read a partition at once.
//!
//! The membership is *lost* when the coordinator no longer knows the member (it expired, or
//! the coordinator moved), when the member's epoch was fenced, or when no heartbeat got
//! through for a session timeout: its partitions may already be someone else's, so the
//! consumer drops them without committing, and the task joins again as a new member.
//!
//! Commits go through one committer task, in order, so an older commit never lands after a
//! newer one; each carries the member id and epoch current when it is sent (a commit fenced
//! by an epoch that moved on meanwhile is retried with the new one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stave_proto::v1 as proto;
use stave_proto::v1::ErrorCode;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::client::Client;
use crate::coordinator::Coordinator;
use crate::error::ClientError;

/// A topic and partition.
pub(crate) type TopicPartition = (String, u32);

/// What the coordinator last said about this member.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    /// Bumped on every change the consumer must act on.
    pub(crate) generation: u64,
    pub(crate) member_id: String,
    pub(crate) member_epoch: u64,
    /// What the member may hold now.
    pub(crate) assignment: BTreeSet<TopicPartition>,
    /// Set with a generation that lost the membership: drop everything without committing.
    pub(crate) lost: bool,
    /// The group cannot be served (a bad subscription, say): `next` reports it.
    pub(crate) failed: Option<Arc<ClientError>>,
}

/// The shared state between the consumer and its tasks.
#[derive(Debug)]
pub(crate) struct GroupShared {
    pub(crate) coordinator: Coordinator,
    pub(crate) subscription: Vec<String>,
    /// What the consumer holds now (reported in heartbeats).
    pub(crate) owned: Mutex<BTreeSet<TopicPartition>>,
    /// Asks for a heartbeat now (after releasing partitions).
    pub(crate) wake: Notify,
    /// The last offset committed per partition (by this consumer).
    pub(crate) committed: Mutex<HashMap<TopicPartition, u64>>,
}

impl GroupShared {
    pub(crate) fn set_owned(&self, owned: BTreeSet<TopicPartition>) {
        if let Ok(mut current) = self.owned.lock() {
            *current = owned;
        }
    }

    fn owned(&self) -> BTreeSet<TopicPartition> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

fn by_topic(set: &BTreeSet<TopicPartition>) -> Vec<proto::TopicPartitions> {
    let mut grouped: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (topic, partition) in set {
        grouped.entry(topic).or_default().push(*partition);
    }
    grouped
        .into_iter()
        .map(|(topic, partitions)| proto::TopicPartitions {
            topic: topic.to_string(),
            partitions,
        })
        .collect()
}

fn flatten(list: &[proto::TopicPartitions]) -> BTreeSet<TopicPartition> {
    list.iter()
        .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
        .collect()
}

/// The heartbeat task of one member. Ends (after leaving the group) when `stop` fires or is
/// dropped, or when the group cannot be served.
pub(crate) async fn heartbeat_loop(
    client: Client,
    shared: Arc<GroupShared>,
    membership: watch::Sender<Membership>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut heartbeats = Heartbeats {
        client,
        shared,
        membership,
        interval: Duration::from_secs(1),
        session: Duration::from_secs(10),
        last_ok: Instant::now(),
        attempt: 0,
    };
    loop {
        let (member_id, member_epoch) = {
            let current = heartbeats.membership.borrow();
            (current.member_id.clone(), current.member_epoch)
        };
        let answer = heartbeats.ask(&member_id, member_epoch).await;
        let pause = match answer {
            Ok(answer) => heartbeats.accepted(&answer),
            Err(err)
                if matches!(
                    err.code(),
                    Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch)
                ) =>
            {
                heartbeats.lost(&member_id, &err).await
            }
            // A timeout wraps retriable failures (no coordinator for a while): try again.
            Err(err) if !err.is_retriable() && !matches!(err, ClientError::Timeout { .. }) => {
                heartbeats.unservable(err);
                return;
            }
            Err(err) => heartbeats.failed(&err),
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = heartbeats.shared.wake.notified() => {}
            _ = &mut stop => {
                let member_id = heartbeats.membership.borrow().member_id.clone();
                leave(&heartbeats.client, &heartbeats.shared, &member_id).await;
                return;
            }
        }
    }
}

/// The heartbeat task's state between beats.
struct Heartbeats {
    client: Client,
    shared: Arc<GroupShared>,
    membership: watch::Sender<Membership>,
    /// How often to beat, as the coordinator last said.
    interval: Duration,
    /// How long the coordinator keeps a member without a heartbeat, as it last said.
    session: Duration,
    /// When a heartbeat last got an answer.
    last_ok: Instant,
    /// Failed heartbeats in a row (for the backoff).
    attempt: u32,
}

impl Heartbeats {
    /// Sends one heartbeat as `member_id` at `member_epoch`, reporting the subscription and
    /// the partitions held, and waits at most a third of the session for the answer.
    async fn ask(
        &self,
        member_id: &str,
        member_epoch: u64,
    ) -> Result<proto::GroupHeartbeatResponse, ClientError> {
        let request = proto::GroupHeartbeatRequest {
            group: self.shared.coordinator.group().to_string(),
            member_id: member_id.to_string(),
            member_epoch,
            subscription: self.shared.subscription.clone(),
            owned: by_topic(&self.shared.owned()),
            leave: false,
        };
        // Bounded well inside the session, so the check in `failed` runs in time even when
        // the coordinator does not answer at all.
        let budget = self.session / 3;
        match tokio::time::timeout(budget, beat(&self.client, &self.shared, request, budget)).await
        {
            Ok(answer) => answer,
            Err(_) => Err(ClientError::Rpc {
                addr: "the coordinator".into(),
                code: tonic::Code::DeadlineExceeded,
                message: format!("no heartbeat answer within {} ms", budget.as_millis()),
            }),
        }
    }

    /// Takes the coordinator's answer: its timings, and the member id, epoch and assignment
    /// (published when they changed). Returns the pause before the next beat.
    fn accepted(&mut self, answer: &proto::GroupHeartbeatResponse) -> Duration {
        self.last_ok = Instant::now();
        self.attempt = 0;
        if answer.heartbeat_interval_ms > 0 {
            self.interval = Duration::from_millis(answer.heartbeat_interval_ms.into());
        }
        if answer.session_timeout_ms > 0 {
            self.session = Duration::from_millis(answer.session_timeout_ms.into());
        }
        let assignment = flatten(&answer.assignment);
        self.membership.send_if_modified(|current| {
            let changed = current.member_id != answer.member_id
                || current.member_epoch != answer.member_epoch
                || current.assignment != assignment;
            if changed {
                current.generation += 1;
                current.member_id = answer.member_id.clone();
                current.member_epoch = answer.member_epoch;
                current.assignment = assignment;
                current.lost = false;
            }
            changed
        });
        self.interval
    }

    /// The coordinator no longer knows `member_id`, or fenced its epoch: the membership is
    /// lost, and the next beat joins again at once.
    async fn lost(&self, member_id: &str, err: &ClientError) -> Duration {
        info!(group = self.shared.coordinator.group(), member = %member_id, error = %err,
            "membership lost; joining again");
        if err.code() == Some(ErrorCode::FencedMemberEpoch) {
            // Frees its partitions at once rather than after the session timeout.
            leave(&self.client, &self.shared, member_id).await;
        }
        lose(&self.membership);
        Duration::ZERO
    }

    /// The group cannot be served: the failure goes to the consumer.
    fn unservable(&self, err: ClientError) {
        // Reported to the caller by `subscribe` or `next`.
        debug!(group = self.shared.coordinator.group(), error = %err, "the group cannot be served");
        self.membership.send_modify(|current| {
            current.generation += 1;
            current.failed = Some(Arc::new(err));
        });
    }

    /// A heartbeat failed in a way a retry may fix: asks for the coordinator again, drops the
    /// partitions once a session passed without an answer, and returns the backoff.
    fn failed(&mut self, err: &ClientError) -> Duration {
        debug!(group = self.shared.coordinator.group(), error = %err, "heartbeat failed");
        self.shared.coordinator.forget();
        if self.last_ok.elapsed() + self.interval > self.session
            && !self.membership.borrow().member_id.is_empty()
        {
            // The coordinator expires this member any moment now, and may hand its
            // partitions on: stop reading them first (the client's side of the
            // session contract).
            info!(
                group = self.shared.coordinator.group(),
                "no heartbeat for a session timeout; joining again"
            );
            lose(&self.membership);
        }
        let pause = self
            .client
            .config()
            .backoff(self.attempt)
            .min(self.interval);
        self.attempt += 1;
        pause
    }
}

/// One heartbeat, at the coordinator.
async fn beat(
    client: &Client,
    shared: &GroupShared,
    request: proto::GroupHeartbeatRequest,
    timeout: Duration,
) -> Result<proto::GroupHeartbeatResponse, ClientError> {
    shared
        .coordinator
        .call("heartbeat", timeout, |addr, mut node| {
            let request = request.clone();
            async move {
                // Within the heartbeat's budget, so a coordinator that does not answer is
                // suspected (and not asked first again) before the budget runs out.
                let limit = timeout.min(client.config().request_timeout);
                let answer = client
                    .unary_within(&addr, limit, node.group_heartbeat(request))
                    .await?;
                ClientError::check(answer.error.clone())?;
                Ok(answer)
            }
        })
        .await
}

/// Says the member leaves (best effort: otherwise it expires after the session timeout).
async fn leave(client: &Client, shared: &GroupShared, member_id: &str) {
    if member_id.is_empty() {
        return;
    }
    let request = proto::GroupHeartbeatRequest {
        group: shared.coordinator.group().to_string(),
        member_id: member_id.to_string(),
        leave: true,
        ..Default::default()
    };
    let timeout = client.config().request_timeout;
    if let Err(err) = beat(client, shared, request, timeout).await {
        debug!(group = shared.coordinator.group(), error = %err, "leave failed");
    }
}

fn lose(membership: &watch::Sender<Membership>) {
    membership.send_modify(|current| {
        current.generation += 1;
        current.member_id.clear();
        current.member_epoch = 0;
        current.assignment.clear();
        current.lost = true;
    });
}

/// A commit for the committer task.
pub(crate) struct CommitJob {
    /// The member the consumer held the partitions as: a commit is never sent for another
    /// (after the membership was lost, the partitions may be someone else's).
    pub(crate) member_id: String,
    pub(crate) offsets: Vec<(TopicPartition, u64)>,
    pub(crate) done: Option<oneshot::Sender<Result<(), ClientError>>>,
}

/// Sends commits to the coordinator one at a time, in the order they were asked for.
pub(crate) async fn commit_loop(
    client: Client,
    shared: Arc<GroupShared>,
    mut membership: watch::Receiver<Membership>,
    mut jobs: mpsc::UnboundedReceiver<CommitJob>,
) {
    while let Some(job) = jobs.recv().await {
        let result = commit(&client, &shared, &mut membership, &job).await;
        match &result {
            Ok(()) => {
                if let Ok(mut committed) = shared.committed.lock() {
                    for (tp, offset) in &job.offsets {
                        committed.insert(tp.clone(), *offset);
                    }
                }
            }
            Err(err) => debug!(group = shared.coordinator.group(), error = %err, "commit failed"),
        }
        if let Some(done) = job.done {
            // The caller stopped waiting: the commit happened (or not) all the same.
            let _ = done.send(result);
        }
    }
}

async fn commit(
    client: &Client,
    shared: &GroupShared,
    membership: &mut watch::Receiver<Membership>,
    job: &CommitJob,
) -> Result<(), ClientError> {
    let offsets = &job.offsets;
    let timeout = client.config().retry_timeout;
    let mut fenced = 0;
    loop {
        let (member_id, member_epoch) = {
            let current = membership.borrow_and_update();
            (current.member_id.clone(), current.member_epoch)
        };
        if member_id.is_empty() || member_id != job.member_id {
            return Err(ClientError::Broker {
                code: ErrorCode::UnknownMemberId,
                message: format!(
                    "member {:?} is no longer in the group: its commit is dropped",
                    job.member_id
                ),
                leader_id: None,
                leader_addr: None,
            });
        }
        let request = proto::CommitOffsetsRequest {
            group: shared.coordinator.group().to_string(),
            offsets: offsets
                .iter()
                .map(|((topic, partition), offset)| proto::OffsetCommit {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: *offset,
                    metadata: String::new(),
                })
                .collect(),
            member_id: member_id.clone(),
            member_epoch,
        };
        let result = shared
            .coordinator
            .call("commit offsets", timeout, |addr, mut node| {
                let request = request.clone();
                async move {
                    let answer = client.unary(&addr, node.commit_offsets(request)).await?;
                    ClientError::check(answer.error)
                }
            })
            .await;
        match result {
            // The epoch moved on (an assignment change the heartbeat task has not seen yet):
            // wait for the new one and send again.
            Err(err) if err.code() == Some(ErrorCode::FencedMemberEpoch) && fenced < 3 => {
                fenced += 1;
                shared.wake.notify_one();
                let _ = tokio::time::timeout(Duration::from_secs(2), membership.changed()).await;
            }
            other => return other,
        }
    }
}

//! The public API (`stave.v1.Stave`) over the node's Raft groups.
//!
//! - Produce goes to the partition's leader replica on this node: the batch is checked
//!   (size, CRC, records), an idempotent one against the producer table (check and proposal
//!   under a per-partition lock, so they happen in the same order), then proposed; the answer
//!   comes once a majority committed it. A fresh leader's lease is waited for; a leader without
//!   a quorum answers REQUEST_TIMED_OUT after the produce timeout.
//! - Fetch serves committed data from the leader, long-polling on the high watermark; an
//!   offset between a new leader's high watermark and its log end waits rather than failing.
//! - Topic admin and producer ids go through the controller; a node that does not lead it
//!   forwards the request to the one that does.
//! - Metadata: leadership is soft state, gathered from every node (`Leaderships`), cached
//!   briefly.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardToLeader};
use stave_log::batch::BatchView;
use stave_log::frame::FRAME_BYTES_LIMIT;
use stave_proto::internal::controller as cproto;
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use stave_raft::controller::{
    ClusterMetadata, ControllerError, TopicNameError, is_internal_topic, validate_user_topic_name,
};
use stave_raft::group::GroupId;
use stave_raft::node::{NodeConfig, PartitionLogConfig, RaftNode};
use stave_raft::{FramePayload, PartitionReplica, TypeConfig, Verdict};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::config::{BrokerConfig, FETCH_BYTES_MAX};
use crate::error::BrokerError;
use crate::topics::{TopicConfig, assign, topic_config};

/// Marks a request one node forwarded to the controller leader (never forwarded again).
const FORWARDED: &str = "stave-forwarded";

/// How long Metadata reuses the leaderships it gathered.
const LEADERS_TTL: Duration = Duration::from_millis(500);

/// The longest a fetch long-polls, whatever it asks (`FetchRequest.max_wait_ms`).
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// What `FetchRequest.max_bytes = 0` means.
const FETCH_BYTES_DEFAULT: usize = 1 << 20;

/// Default partitions of a new topic.
const DEFAULT_PARTITIONS: u32 = 3;

/// Who leads a group and which voters are in sync, as gathered for Metadata.
#[derive(Debug, Clone)]
struct Leader {
    node: u64,
    term: u64,
    in_sync: Vec<u64>,
}

/// Who leads every group, and which replicas are out of service, as gathered from every
/// node.
#[derive(Debug, Clone, Default)]
struct Leaderships {
    leaders: HashMap<GroupId, Leader>,
    problems: HashMap<GroupId, Vec<pb::ReplicaProblem>>,
}

/// A node serving the public API.
pub struct Broker {
    /// This broker, for tasks that outlive a request (pipelined produce).
    this: std::sync::Weak<Broker>,
    node: RaftNode,
    config: BrokerConfig,
    /// Per partition: the check and proposal of idempotent batches happen under it.
    order: Mutex<HashMap<GroupId, Arc<tokio::sync::Mutex<()>>>>,
    /// Public-API clients to other nodes (forwarding to the controller leader).
    peers: Mutex<HashMap<String, StaveClient<Channel>>>,
    leaders: Mutex<Option<(Instant, Leaderships)>>,
    /// Consumer groups this node coordinates: membership, in memory (members rejoin when
    /// the coordinator moves; committed offsets are in `__offsets`).
    groups: Mutex<HashMap<String, crate::membership::Group>>,
    /// Per `__offsets` partition this node leads: the term it leads in and since when (ms),
    /// as first seen here.
    coordinating: Mutex<HashMap<GroupId, (u64, i64)>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node", &self.node).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn internal(err: impl std::fmt::Display) -> BrokerError {
    BrokerError::Internal(err.to_string())
}

/// The reserve topic writes leave free on the data directory's disk: configured, or 1% of it.
fn disk_reserve_bytes(config: &BrokerConfig) -> Result<u64, BrokerError> {
    if let Some(bytes) = config.disk_reserve_bytes {
        return Ok(bytes);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|err| BrokerError::Config {
        message: format!("cannot create {}: {err}", config.data_dir.display()),
    })?;
    let disk =
        stave_log::storage::disk_bytes(&config.data_dir).map_err(|err| BrokerError::Config {
            message: format!(
                "cannot read the size of {}'s disk: {err}",
                config.data_dir.display()
            ),
        })?;
    Ok(crate::config::default_disk_reserve_bytes(disk.total))
}

/// The topic and partition a request names, resolved against the metadata.
struct Target {
    topic: String,
    partition: u32,
    group: GroupId,
    config: TopicConfig,
}

impl Broker {
    /// Starts the node's Raft side (bootstrap, controller, partitions) for `config`.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        let mut node_config = NodeConfig::new(
            config.node_id,
            config.data_dir.clone(),
            config.advertised().to_string(),
            config.cluster(),
        );
        let reserve_bytes = disk_reserve_bytes(&config)?;
        tracing::info!(reserve_bytes, "disk space kept free of topic writes");
        node_config.partition_log_for = Some(PartitionLogConfig(Arc::new(move |topic| {
            stave_log::LogConfig {
                reserve_bytes,
                ..topic_config(topic).log_config()
            }
        })));
        let node = RaftNode::start(node_config).await?;
        Ok(Arc::new_cyclic(|this| Broker {
            this: this.clone(),
            node,
            config,
            order: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            leaders: Mutex::new(None),
            groups: Mutex::new(HashMap::new()),
            coordinating: Mutex::new(HashMap::new()),
        }))
    }

    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Whether this node's `replica` leads its group.
    pub fn leads(&self, replica: &PartitionReplica) -> bool {
        replica.raft.metrics().borrow_watched().current_leader == Some(self.node.id())
    }

    fn target(&self, topic: &str, partition: u32) -> Result<Target, BrokerError> {
        let metadata = self.node.controller().metadata();
        let meta = metadata
            .topic(topic)
            .ok_or_else(|| BrokerError::UnknownTopic(topic.to_string()))?;
        if partition >= meta.partition_count() {
            return Err(BrokerError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(Target {
            topic: topic.to_string(),
            partition,
            group: meta.group_id(partition),
            config: topic_config(meta),
        })
    }

    /// This node's replica of `target` if it leads; otherwise NOT_LEADER with the best hint,
    /// or LEADER_NOT_AVAILABLE.
    async fn leader_replica(&self, target: &Target) -> Result<PartitionReplica, BrokerError> {
        if let Some(replica) = self.node.partition(target.group) {
            let leader = replica.raft.metrics().borrow_watched().current_leader;
            if leader == Some(self.node.id()) {
                return Ok(replica);
            }
            if let Some(leader) = leader {
                return Err(self.not_leader(target, leader));
            }
        }
        match self.leaders().await.get(&target.group) {
            Some(leader) if leader.node != self.node.id() => {
                Err(self.not_leader(target, leader.node))
            }
            _ => Err(BrokerError::LeaderNotAvailable {
                topic: target.topic.clone(),
                partition: target.partition,
            }),
        }
    }

    fn not_leader(&self, target: &Target, leader: u64) -> BrokerError {
        let metadata = self.node.controller().metadata();
        BrokerError::NotLeader {
            topic: target.topic.clone(),
            partition: target.partition,
            leader: metadata
                .node_addr(leader)
                .map(|addr| (leader, addr.to_string())),
        }
    }

    /// Who leads every group, from every node (cached for [`LEADERS_TTL`]).
    async fn leaders(&self) -> HashMap<GroupId, Leader> {
        self.leaderships().await.leaders
    }

    /// Leaders and replica problems, from every node (cached for [`LEADERS_TTL`]).
    async fn leaderships(&self) -> Leaderships {
        if let Some((at, leaderships)) = lock(&self.leaders).as_ref()
            && at.elapsed() < LEADERS_TTL
        {
            return leaderships.clone();
        }
        let metadata = self.node.controller().metadata();
        let me = self.node.id();
        let mut leaders = HashMap::new();
        let mut problems: HashMap<GroupId, Vec<pb::ReplicaProblem>> = HashMap::new();
        for problem in self.node.groups().problems().list() {
            problems
                .entry(problem.group)
                .or_default()
                .push(pb::ReplicaProblem {
                    node_id: me,
                    reason: problem.reason,
                    reopens: problem.reopens,
                    offline: problem.offline,
                });
        }
        for group in self.node.partition_groups() {
            if let Ok(handle) = self.node.groups().get(group)
                && let Some((term, in_sync)) = handle.leadership()
            {
                leaders.insert(
                    group,
                    Leader {
                        node: me,
                        term,
                        in_sync,
                    },
                );
            }
        }
        let asks = metadata
            .nodes()
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, addr)| self.node.clients().leaderships(*id, addr));
        for answer in futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
        {
            for problem in answer.problems {
                problems
                    .entry(problem.group_id)
                    .or_default()
                    .push(pb::ReplicaProblem {
                        node_id: answer.node_id,
                        reason: problem.reason,
                        reopens: problem.reopens,
                        offline: problem.offline,
                    });
            }
            for group in answer.groups {
                let newer = leaders
                    .get(&group.group_id)
                    .is_none_or(|known: &Leader| known.term < group.term);
                if newer {
                    leaders.insert(
                        group.group_id,
                        Leader {
                            node: answer.node_id,
                            term: group.term,
                            in_sync: group.in_sync,
                        },
                    );
                }
            }
        }
        let leaderships = Leaderships { leaders, problems };
        *lock(&self.leaders) = Some((Instant::now(), leaderships.clone()));
        leaderships
    }

    /// The leader of `group` as this node or the cluster's leaderships know it.
    pub(crate) async fn leader_of(&self, group: GroupId) -> Option<u64> {
        if let Some(replica) = self.node.partition(group)
            && let Some(leader) = replica.raft.metrics().borrow_watched().current_leader
        {
            return Some(leader);
        }
        self.leaders().await.get(&group).map(|leader| leader.node)
    }

    /// Proposes a batch the broker built itself (an internal topic's) to `replica`, which
    /// leads; answered once committed.
    pub(crate) async fn propose_internal(
        &self,
        replica: &PartitionReplica,
        topic: &str,
        group: GroupId,
        batch: Bytes,
    ) -> Result<(), BrokerError> {
        let target = Target {
            topic: topic.to_string(),
            partition: stave_raft::group::partition_of(group),
            group,
            config: TopicConfig::default(),
        };
        replica
            .store
            .check_space(batch.len() as u64)
            .map_err(|err| BrokerError::from_log(self.node.id(), err))?;
        let deadline = Instant::now() + self.config.produce_timeout();
        let receiver = self.submit(replica, batch.clone()).await?;
        self.await_commit(replica, &target, batch, receiver, deadline)
            .await
            .map(|_| ())
    }

    pub(crate) fn groups_lock(&self) -> MutexGuard<'_, HashMap<String, crate::membership::Group>> {
        lock(&self.groups)
    }

    pub(crate) fn coordinating_lock(&self) -> MutexGuard<'_, HashMap<GroupId, (u64, i64)>> {
        lock(&self.coordinating)
    }

    fn order_lock(&self, group: GroupId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.order).entry(group).or_default().clone()
    }

    async fn produce_one(
        &self,
        request: pb::ProduceRequest,
    ) -> Result<pb::ProduceResponse, BrokerError> {
        let sequence = request.sequence;
        let submitted = self.begin_produce(request).await?;
        self.finish_produce(sequence, submitted).await
    }

    /// The ordered half of a produce: checks the batch and, if it is new, submits it to the
    /// partition's Raft (an idempotent one under the partition's order lock, so batches are
    /// proposed in the order the producer table accepted them). A pipelined stream runs this
    /// for its requests one after another, in the order they arrive.
    async fn begin_produce(&self, request: pb::ProduceRequest) -> Result<Submitted, BrokerError> {
        let target = self.target(&request.topic, request.partition)?;
        if is_internal_topic(&target.topic) {
            return Err(BrokerError::InvalidRequest(format!(
                "{} is an internal topic",
                target.topic
            )));
        }
        let max = (target.config.max_message_bytes as usize).min(self.config.max_message_bytes);
        if request.batch.len() > max {
            return Err(BrokerError::MessageTooLarge {
                bytes: request.batch.len(),
                max,
            });
        }
        // The whole buffer is checked here, before Raft sees it: one data frame filling it,
        // every record decoding. The log accepts whatever passes (its bound is the format's),
        // so no request can make a replica's log refuse an entry Raft already took.
        let view = BatchView::parse_produced(request.batch.clone(), FRAME_BYTES_LIMIT)
            .map_err(|err| BrokerError::CorruptBatch(err.to_string()))?;
        let replica = self.leader_replica(&target).await?;
        // A write the disk has no room for is refused here, before Raft holds it.
        replica
            .store
            .check_space(request.batch.len() as u64)
            .map_err(|err| BrokerError::from_log(self.node.id(), err))?;
        let deadline = Instant::now() + self.config.produce_timeout();
        if view.body().producer_id < 0 {
            let receiver = self.submit(&replica, request.batch.clone()).await?;
            return Ok(Submitted::Written {
                replica,
                target,
                batch: request.batch,
                receiver,
                deadline,
                reservation: None,
            });
        }
        let order = self.order_lock(target.group);
        let _order = order.lock().await;
        let verdict = replica
            .sm
            .producers()
            .check(&request.batch)
            .map_err(|reason| BrokerError::CorruptBatch(reason.to_string()))?;
        match verdict {
            Verdict::New(reservation) => {
                let receiver = self.submit(&replica, request.batch.clone()).await?;
                Ok(Submitted::Written {
                    replica,
                    target,
                    batch: request.batch,
                    receiver,
                    deadline,
                    reservation: Some(reservation),
                })
            }
            Verdict::Duplicate {
                written: Some(written),
            } => Ok(Submitted::Duplicate {
                replica,
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

    /// The rest of a produce: waits for the batch to commit (or, for a duplicate, for the
    /// first copy to), and answers with its offsets.
    async fn finish_produce(
        &self,
        sequence: u64,
        submitted: Submitted,
    ) -> Result<pb::ProduceResponse, BrokerError> {
        match submitted {
            Submitted::Written {
                replica,
                target,
                batch,
                receiver,
                deadline,
                reservation,
            } => {
                let applied = self
                    .await_commit(&replica, &target, batch, receiver, deadline)
                    .await;
                // The reservation holds the sequences until the outcome is known.
                drop(reservation);
                let applied = applied?;
                Ok(produced(
                    sequence,
                    applied.base_offset,
                    applied.next_offset,
                    false,
                ))
            }
            Submitted::Duplicate {
                replica,
                written,
                deadline,
            } => {
                let mut hwm = replica.sm.subscribe_high_watermark();
                let committed = tokio::time::timeout_at(
                    deadline.into(),
                    hwm.wait_for(|hwm| *hwm >= written.next_offset),
                )
                .await;
                match committed {
                    Ok(Ok(_)) => Ok(produced(
                        sequence,
                        written.base_offset,
                        written.next_offset,
                        true,
                    )),
                    _ => Err(BrokerError::Timeout(
                        "the earlier copy of this batch is not committed yet".into(),
                    )),
                }
            }
        }
    }

    /// Submits `batch` to the leader replica's Raft; the receiver answers once applied.
    async fn submit(
        &self,
        replica: &PartitionReplica,
        batch: Bytes,
    ) -> Result<WriteReceiver, BrokerError> {
        let (responder, receiver) = openraft::impls::ProgressResponder::complete_only();
        replica
            .raft
            .client_write_ff(FramePayload(batch), Some(responder))
            .await
            .map_err(internal)?;
        Ok(receiver)
    }

    /// Waits for a submitted write; a fresh leader's refusal (its lease not acknowledged yet)
    /// is retried until `deadline`.
    async fn await_commit(
        &self,
        replica: &PartitionReplica,
        target: &Target,
        batch: Bytes,
        mut submitted: WriteReceiver,
        deadline: Instant,
    ) -> Result<stave_raft::Applied, BrokerError> {
        loop {
            let outcome = tokio::time::timeout_at(deadline.into(), &mut submitted).await;
            let result = match outcome {
                Err(_) => {
                    return Err(BrokerError::Timeout(format!(
                        "{}/{} did not commit the batch in time (is a majority of its replicas up?)",
                        target.topic, target.partition
                    )));
                }
                Ok(Err(_)) => return Err(internal("the raft group dropped the write")),
                Ok(Ok(result)) => result,
            };
            let forward = match result {
                Ok(response) => return Ok(response.data),
                Err(ClientWriteError::ForwardToLeader(forward)) => forward,
                Err(ClientWriteError::LogEntryDiscarded(_)) => {
                    // Not committed: a retry of the same (idempotent) batch is safe.
                    return Err(BrokerError::LeaderNotAvailable {
                        topic: target.topic.clone(),
                        partition: target.partition,
                    });
                }
                Err(other) => return Err(internal(other)),
            };
            if !lease_expired(&forward) {
                return Err(match forward.leader_id {
                    Some(leader) => self.not_leader(target, leader),
                    None => BrokerError::LeaderNotAvailable {
                        topic: target.topic.clone(),
                        partition: target.partition,
                    },
                });
            }
            // A fresh leader: wait for a quorum to acknowledge it, then submit again.
            let since = openraft::alias::InstantOf::<TypeConfig>::now();
            let left = deadline.saturating_duration_since(Instant::now());
            let acked = replica
                .raft
                .wait(Some(left))
                .leader_with_quorum_acked(Some(since), "the leader's lease")
                .await;
            if acked.is_err() {
                return Err(BrokerError::Timeout(format!(
                    "{}/{} has no leader with a quorum",
                    target.topic, target.partition
                )));
            }
            submitted = self.submit(replica, batch.clone()).await?;
        }
    }

    async fn fetch_one(&self, request: pb::FetchRequest) -> Result<pb::FetchResponse, BrokerError> {
        let target = self.target(&request.topic, request.partition)?;
        let replica = self.leader_replica(&target).await?;
        let wait = Duration::from_millis(u64::from(request.max_wait_ms)).min(FETCH_WAIT_MAX);
        let deadline = Instant::now() + wait;
        let max_bytes = if request.max_bytes == 0 {
            FETCH_BYTES_DEFAULT
        } else {
            (request.max_bytes as usize).min(FETCH_BYTES_MAX)
        };
        let min_bytes = (request.min_bytes as usize).max(1);
        let mut hwm_watch = replica.sm.subscribe_high_watermark();
        loop {
            let hwm = *hwm_watch.borrow_and_update();
            let (start, end) = replica.store.offsets().await.map_err(internal)?;
            if request.offset < start || request.offset > end.max(hwm) {
                return Err(BrokerError::OffsetOutOfRange {
                    offset: request.offset,
                    start,
                    end: hwm,
                });
            }
            let mut frames = None;
            if request.offset < hwm {
                let read = replica
                    .store
                    .read(request.offset, hwm, max_bytes)
                    .await
                    .map_err(internal)?;
                let enough = read.len_bytes() >= min_bytes;
                frames = Some(read);
                if enough {
                    return Ok(fetched(frames, request.offset, hwm, start));
                }
            }
            if Instant::now() >= deadline {
                return Ok(fetched(frames, request.offset, hwm, start));
            }
            let moved = tokio::time::timeout_at(deadline.into(), hwm_watch.changed()).await;
            if let Ok(Err(_)) = moved {
                return Err(internal("the partition stopped"));
            }
        }
    }

    /// ListOffsets answered here if this node leads the partition, else by its leader.
    pub(crate) async fn list_offsets_anywhere(
        &self,
        request: pb::ListOffsetsRequest,
    ) -> Result<u64, BrokerError> {
        let target = self.target(&request.topic, request.partition)?;
        let local = self
            .node
            .partition(target.group)
            .is_some_and(|replica| self.leads(&replica));
        if local {
            return Ok(self.list_offsets_one(request).await?.offset);
        }
        let leader =
            self.leader_of(target.group)
                .await
                .ok_or_else(|| BrokerError::LeaderNotAvailable {
                    topic: target.topic.clone(),
                    partition: target.partition,
                })?;
        let addr = self
            .node
            .controller()
            .metadata()
            .node_addr(leader)
            .ok_or_else(|| internal(format!("no address for node {leader}")))?
            .to_string();
        let answer = self
            .peer_client(&addr)?
            .list_offsets(request)
            .await
            .map_err(|status| BrokerError::LeaderNotAvailable {
                topic: format!("{} ({status})", target.topic),
                partition: target.partition,
            })?
            .into_inner();
        match answer.error {
            Some(error) if error.code != pb::ErrorCode::None as i32 => {
                Err(BrokerError::LeaderNotAvailable {
                    topic: format!("{} ({})", target.topic, error.message),
                    partition: target.partition,
                })
            }
            _ => Ok(answer.offset),
        }
    }

    async fn list_offsets_one(
        &self,
        request: pb::ListOffsetsRequest,
    ) -> Result<pb::ListOffsetsResponse, BrokerError> {
        use pb::list_offsets_request::Spec;
        let target = self.target(&request.topic, request.partition)?;
        let replica = self.leader_replica(&target).await?;
        let hwm = replica.sm.high_watermark();
        let (start, _) = replica.store.offsets().await.map_err(internal)?;
        let offset = match request.spec {
            Some(Spec::Earliest(_)) => start,
            Some(Spec::Latest(_)) => hwm,
            Some(Spec::TimestampMs(ms)) => replica
                .store
                .offset_for_timestamp(ms)
                .await
                .map_err(internal)?
                .map_or(hwm, |offset| offset.clamp(start, hwm)),
            None => {
                return Err(BrokerError::InvalidRequest(
                    "say earliest, latest or timestamp_ms".into(),
                ));
            }
        };
        Ok(pb::ListOffsetsResponse {
            error: None,
            offset,
        })
    }

    /// Partitions of `topic` with replicas, leaders and in-sync replicas.
    async fn partitions_of(
        &self,
        metadata: &ClusterMetadata,
        name: &str,
    ) -> Vec<pb::PartitionMetadata> {
        let Some(topic) = metadata.topic(name) else {
            return Vec::new();
        };
        let leaderships = self.leaderships().await;
        topic
            .partitions()
            .map(|(partition, replicas)| {
                let group = topic.group_id(partition);
                let leader = leaderships.leaders.get(&group);
                pb::PartitionMetadata {
                    partition,
                    leader: leader.map(|l| l.node),
                    replicas: replicas.to_vec(),
                    in_sync: leader.map(|l| l.in_sync.clone()).unwrap_or_default(),
                    problems: leaderships
                        .problems
                        .get(&group)
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    fn topic_names(&self, metadata: &ClusterMetadata, asked: Vec<String>) -> Vec<String> {
        if asked.is_empty() {
            metadata
                .topics()
                .keys()
                .filter(|name| !is_internal_topic(name))
                .cloned()
                .collect()
        } else {
            asked
        }
    }

    /// The controller leader's public client, if another node leads the controller.
    async fn controller_leader(&self) -> Result<Option<StaveClient<Channel>>, BrokerError> {
        let raft = &self.node.controller().raft;
        let metrics = raft
            .wait(Some(Duration::from_secs(5)))
            .metrics(|m| m.current_leader.is_some(), "a controller leader")
            .await
            .map_err(|_| BrokerError::LeaderNotAvailable {
                topic: "(controller)".into(),
                partition: 0,
            })?;
        let leader = metrics.current_leader.unwrap_or(self.node.id());
        if leader == self.node.id() {
            return Ok(None);
        }
        let metadata = self.node.controller().metadata();
        let addr = metadata
            .node_addr(leader)
            .ok_or_else(|| internal(format!("no address for controller leader {leader}")))?
            .to_string();
        Ok(Some(self.peer_client(&addr)?))
    }

    /// The public-API client of the node at `addr` (cached).
    pub(crate) fn peer_client(&self, addr: &str) -> Result<StaveClient<Channel>, BrokerError> {
        let mut peers = lock(&self.peers);
        if let Some(client) = peers.get(addr) {
            return Ok(client.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(internal)?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        let client = StaveClient::new(endpoint.connect_lazy());
        peers.insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// A partition's high watermark, asked of its leader on another node (none if unknown).
    pub(crate) async fn remote_high_watermark(
        &self,
        topic: &str,
        partition: u32,
        group: GroupId,
    ) -> Option<u64> {
        let leader = self.leader_of(group).await?;
        let addr = self
            .node
            .controller()
            .metadata()
            .node_addr(leader)?
            .to_string();
        let mut client = self.peer_client(&addr).ok()?;
        let answer = client
            .list_offsets(pb::ListOffsetsRequest {
                topic: topic.to_string(),
                partition,
                spec: Some(pb::list_offsets_request::Spec::Latest(true)),
            })
            .await
            .ok()?
            .into_inner();
        answer.error.is_none().then_some(answer.offset)
    }

    /// Proposes a controller command here (this node leads the controller).
    pub(crate) async fn command(
        &self,
        command: cproto::Command,
    ) -> Result<cproto::CommandReply, BrokerError> {
        self.node
            .controller()
            .propose(command)
            .await
            .map_err(|err| match err {
                ControllerError::NotLeader { .. } | ControllerError::OutcomeUnknown { .. } => {
                    BrokerError::LeaderNotAvailable {
                        topic: "(controller)".into(),
                        partition: 0,
                    }
                }
                other => internal(other),
            })
    }

    async fn create_topic(&self, spec: pb::TopicSpec) -> Result<(), BrokerError> {
        validate_user_topic_name(&spec.name).map_err(|err| match err {
            TopicNameError::Internal => BrokerError::ReservedTopicName(spec.name.clone()),
            other => BrokerError::InvalidTopicName(other.to_string()),
        })?;
        let settings: BTreeMap<String, String> = spec
            .configs
            .iter()
            .map(|entry| (entry.key.clone(), entry.value.clone()))
            .collect();
        if settings.len() != spec.configs.len() {
            return Err(BrokerError::InvalidConfig("a key is given twice".into()));
        }
        TopicConfig::parse(&settings)?;
        let metadata = self.node.controller().metadata();
        if metadata.cluster_id().is_none() || metadata.nodes().is_empty() {
            // The cluster is still forming (the nodes are registered before its id).
            return Err(BrokerError::LeaderNotAvailable {
                topic: spec.name,
                partition: 0,
            });
        }
        if metadata.topic(&spec.name).is_some() {
            return Err(BrokerError::TopicExists(spec.name));
        }
        let nodes: Vec<u64> = metadata.nodes().keys().copied().collect();
        let partitions = if spec.partitions == 0 {
            DEFAULT_PARTITIONS
        } else {
            spec.partitions
        };
        if partitions > stave_raft::group::MAX_PARTITIONS {
            return Err(BrokerError::InvalidRequest(format!(
                "a topic has at most {} partitions",
                stave_raft::group::MAX_PARTITIONS
            )));
        }
        let replication_factor = if spec.replication_factor == 0 {
            3.min(nodes.len() as u32)
        } else {
            spec.replication_factor
        };
        let rotation = metadata.next_incarnation() as usize;
        let assignment = assign(&nodes, partitions, replication_factor, rotation)?;
        let command = cproto::Command {
            command: Some(cproto::command::Command::CreateTopic(cproto::CreateTopic {
                name: spec.name.clone(),
                partitions: (0u32..)
                    .zip(assignment)
                    .map(|(partition, replicas)| cproto::Partition {
                        partition,
                        replicas,
                    })
                    .collect(),
                configs: spec
                    .configs
                    .into_iter()
                    .map(|entry| cproto::ConfigEntry {
                        key: entry.key,
                        value: entry.value,
                    })
                    .collect(),
            })),
        };
        command_result(self.command(command).await?, &spec.name)
    }

    async fn delete_topic(&self, name: String) -> Result<(), BrokerError> {
        if is_internal_topic(&name) {
            return Err(BrokerError::ReservedTopicName(name));
        }
        let command = cproto::Command {
            command: Some(cproto::command::Command::DeleteTopic(cproto::DeleteTopic {
                name: name.clone(),
            })),
        };
        command_result(self.command(command).await?, &name)
    }

    async fn alter_topic(&self, request: pb::AlterTopicConfigRequest) -> Result<(), BrokerError> {
        if is_internal_topic(&request.name) {
            return Err(BrokerError::ReservedTopicName(request.name));
        }
        let metadata = self.node.controller().metadata();
        let topic = metadata
            .topic(&request.name)
            .ok_or_else(|| BrokerError::UnknownTopic(request.name.clone()))?;
        let mut merged = topic.configs().clone();
        for entry in &request.set {
            if entry.value.is_empty() {
                merged.remove(&entry.key);
            } else {
                merged.insert(entry.key.clone(), entry.value.clone());
            }
        }
        TopicConfig::parse(&merged)?;
        let command = cproto::Command {
            command: Some(cproto::command::Command::AlterTopicConfig(
                cproto::AlterTopicConfig {
                    name: request.name.clone(),
                    set: request
                        .set
                        .into_iter()
                        .map(|entry| cproto::ConfigEntry {
                            key: entry.key,
                            value: entry.value,
                        })
                        .collect(),
                },
            )),
        };
        command_result(self.command(command).await?, &request.name)
    }
}

/// A produce after its ordered half ([`Broker::begin_produce`]).
enum Submitted {
    Written {
        replica: PartitionReplica,
        target: Target,
        batch: Bytes,
        receiver: WriteReceiver,
        deadline: Instant,
        reservation: Option<stave_raft::Reservation>,
    },
    /// A retry of a batch already in the log.
    Duplicate {
        replica: PartitionReplica,
        written: stave_raft::Written,
        deadline: Instant,
    },
}

type WriteReceiver = tokio::sync::oneshot::Receiver<
    Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<TypeConfig>>,
>;

fn lease_expired(forward: &ForwardToLeader<TypeConfig>) -> bool {
    forward.leader_id.is_none() && forward.reason == openraft::error::ForwardReason::LeaseExpired
}

fn failed(sequence: u64, err: &BrokerError) -> pb::ProduceResponse {
    pb::ProduceResponse {
        sequence,
        error: error(err),
        ..Default::default()
    }
}

fn produced(
    sequence: u64,
    base_offset: u64,
    next_offset: u64,
    duplicate: bool,
) -> pb::ProduceResponse {
    pb::ProduceResponse {
        sequence,
        error: None,
        base_offset,
        next_offset,
        duplicate,
    }
}

fn fetched(
    frames: Option<stave_log::ReadFrames>,
    offset: u64,
    high_watermark: u64,
    log_start_offset: u64,
) -> pb::FetchResponse {
    let (batches, next_offset) = match frames {
        Some(frames) if !frames.is_empty() => {
            let next = frames.next_offset.0;
            let batches = if frames.chunks.len() == 1 {
                frames.chunks.into_iter().next().unwrap_or_default()
            } else {
                let mut joined = BytesMut::with_capacity(frames.len_bytes());
                for chunk in &frames.chunks {
                    joined.extend_from_slice(chunk);
                }
                joined.freeze()
            };
            (batches, next)
        }
        _ => (Bytes::new(), offset),
    };
    pb::FetchResponse {
        error: None,
        batches,
        high_watermark,
        log_start_offset,
        next_offset,
    }
}

/// A controller command's reply as this API's result.
fn command_result(reply: cproto::CommandReply, name: &str) -> Result<(), BrokerError> {
    use cproto::command_reply::Result as R;
    match reply.result {
        Some(R::Error(error)) => Err(match cproto::ErrorCode::try_from(error.code) {
            Ok(cproto::ErrorCode::TopicExists) => BrokerError::TopicExists(name.to_string()),
            Ok(cproto::ErrorCode::UnknownTopic) => BrokerError::UnknownTopic(name.to_string()),
            _ => BrokerError::InvalidRequest(error.message),
        }),
        Some(_) => Ok(()),
        None => Err(internal("an empty controller reply")),
    }
}

fn coordinator_answer(found: Result<(u64, String), BrokerError>) -> pb::FindCoordinatorResponse {
    match found {
        Ok((node_id, addr)) => pb::FindCoordinatorResponse {
            error: None,
            node_id,
            addr,
        },
        Err(err) => pb::FindCoordinatorResponse {
            error: error(&err),
            ..Default::default()
        },
    }
}

fn error(err: &BrokerError) -> Option<pb::Error> {
    Some(err.to_proto())
}

fn forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED)
}

pub(crate) fn forward_request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    request
}

/// Runs `local` here if this node leads the controller; otherwise forwards `message` with
/// `forward` to the leader (once).
macro_rules! via_controller {
    ($self:ident, $request:ident, $forward:ident, $local:expr) => {{
        let is_forwarded = forwarded(&$request);
        let message = $request.into_inner();
        match $self.controller_leader().await {
            Ok(Some(mut client)) if !is_forwarded => {
                return client.$forward(forward_request(message)).await;
            }
            Ok(_) => {}
            Err(err) => return Err(Status::unavailable(err.to_string())),
        }
        let local = $local;
        local(message).await
    }};
}

type ProduceStream = Pin<Box<dyn Stream<Item = Result<pb::ProduceResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::stave_server::Stave for Broker {
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        let request = request.into_inner();
        let sequence = request.sequence;
        let response = self
            .produce_one(request)
            .await
            .unwrap_or_else(|err| pb::ProduceResponse {
                sequence,
                error: error(&err),
                ..Default::default()
            });
        Ok(Response::new(response))
    }

    type ProduceStreamStream = ProduceStream;

    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<ProduceStream>, Status> {
        let mut incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(1024);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        let mut closing = self.node.identity().subscribe_closing();
        tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    request = incoming.next() => match request {
                        Some(Ok(request)) => request,
                        _ => break,
                    },
                    // The node stops: the stream ends, the client reconnects elsewhere.
                    _ = closing.wait_for(|closing| *closing) => break,
                };
                let sequence = request.sequence;
                // Checked and submitted in arrival order; the waits for commit overlap.
                match broker.begin_produce(request).await {
                    Ok(submitted) => {
                        let broker = broker.clone();
                        let answers = answers.clone();
                        tokio::spawn(async move {
                            let response = broker
                                .finish_produce(sequence, submitted)
                                .await
                                .unwrap_or_else(|err| failed(sequence, &err));
                            // The client hung up: nobody waits for the answer.
                            let _ = answers.send(Ok(response)).await;
                        });
                    }
                    Err(err) => {
                        if answers.send(Ok(failed(sequence, &err))).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let response = self
            .fetch_one(request.into_inner())
            .await
            .unwrap_or_else(|err| {
                // Out of range: say where the log starts and ends, so the consumer can reset.
                let (log_start_offset, high_watermark) = match &err {
                    BrokerError::OffsetOutOfRange { start, end, .. } => (*start, *end),
                    _ => (0, 0),
                };
                pb::FetchResponse {
                    error: error(&err),
                    log_start_offset,
                    high_watermark,
                    ..Default::default()
                }
            });
        Ok(Response::new(response))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let response = self
            .list_offsets_one(request.into_inner())
            .await
            .unwrap_or_else(|err| pb::ListOffsetsResponse {
                error: error(&err),
                offset: 0,
            });
        Ok(Response::new(response))
    }

    async fn metadata(
        &self,
        request: Request<pb::MetadataRequest>,
    ) -> Result<Response<pb::MetadataResponse>, Status> {
        let metadata = self.node.controller().metadata();
        let names = self.topic_names(&metadata, request.into_inner().topics);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let error = if metadata.topic(&name).is_none() {
                error(&BrokerError::UnknownTopic(name.clone()))
            } else {
                None
            };
            let partitions = self.partitions_of(&metadata, &name).await;
            topics.push(pb::TopicMetadata {
                name,
                error,
                partitions,
            });
        }
        Ok(Response::new(pb::MetadataResponse {
            cluster_id: self.node.identity().cluster_id().unwrap_or_default(),
            controller_id: self
                .node
                .controller()
                .raft
                .metrics()
                .borrow_watched()
                .current_leader,
            nodes: metadata
                .nodes()
                .iter()
                .map(|(id, addr)| pb::Node {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect(),
            topics,
        }))
    }

    async fn init_producer_id(
        &self,
        request: Request<pb::InitProducerIdRequest>,
    ) -> Result<Response<pb::InitProducerIdResponse>, Status> {
        via_controller!(self, request, init_producer_id, |_message| async {
            let command = cproto::Command {
                command: Some(cproto::command::Command::AllocateProducerIds(
                    cproto::AllocateProducerIds { count: 1 },
                )),
            };
            let response = match self.command(command).await {
                Ok(cproto::CommandReply {
                    result: Some(cproto::command_reply::Result::FirstProducerId(id)),
                }) => pb::InitProducerIdResponse {
                    error: None,
                    producer_id: id as i64,
                    producer_epoch: 0,
                },
                Ok(other) => pb::InitProducerIdResponse {
                    error: error(&internal(format!("unexpected reply {other:?}"))),
                    ..Default::default()
                },
                Err(err) => pb::InitProducerIdResponse {
                    error: error(&err),
                    ..Default::default()
                },
            };
            Ok(Response::new(response))
        })
    }

    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        via_controller!(
            self,
            request,
            create_topics,
            |message: pb::CreateTopicsRequest| async {
                let mut results = Vec::with_capacity(message.topics.len());
                for spec in message.topics {
                    let name = spec.name.clone();
                    let outcome = self.create_topic(spec).await;
                    results.push(pb::TopicResult {
                        name,
                        error: outcome.err().as_ref().and_then(error),
                    });
                }
                Ok(Response::new(pb::CreateTopicsResponse { results }))
            }
        )
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        via_controller!(
            self,
            request,
            delete_topics,
            |message: pb::DeleteTopicsRequest| async {
                let mut results = Vec::with_capacity(message.names.len());
                for name in message.names {
                    let outcome = self.delete_topic(name.clone()).await;
                    results.push(pb::TopicResult {
                        name,
                        error: outcome.err().as_ref().and_then(error),
                    });
                }
                Ok(Response::new(pb::DeleteTopicsResponse { results }))
            }
        )
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let metadata = self.node.controller().metadata();
        let names = self.topic_names(&metadata, request.into_inner().names);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let Some(topic) = metadata.topic(&name) else {
                topics.push(pb::TopicDescription {
                    error: error(&BrokerError::UnknownTopic(name.clone())),
                    name,
                    ..Default::default()
                });
                continue;
            };
            let configs = topic_config(topic)
                .entries()
                .into_iter()
                .map(|(key, value)| pb::ConfigEntry { key, value })
                .collect();
            let partitions = self.partitions_of(&metadata, &name).await;
            topics.push(pb::TopicDescription {
                name,
                error: None,
                partitions,
                configs,
            });
        }
        Ok(Response::new(pb::DescribeTopicsResponse { topics }))
    }

    async fn find_coordinator(
        &self,
        request: Request<pb::FindCoordinatorRequest>,
    ) -> Result<Response<pb::FindCoordinatorResponse>, Status> {
        let offsets_exist = self
            .node
            .controller()
            .metadata()
            .topic(stave_raft::controller::OFFSETS_TOPIC)
            .is_some();
        if !offsets_exist {
            // `__offsets` is created on first use, by the controller leader.
            via_controller!(
                self,
                request,
                find_coordinator,
                |message: pb::FindCoordinatorRequest| async move {
                    let found = match self.ensure_offsets_topic().await {
                        Ok(()) => self.coordinator(&message.group).await,
                        Err(err) => Err(err),
                    };
                    Ok(Response::new(coordinator_answer(found)))
                }
            )
        } else {
            let found = self.coordinator(&request.into_inner().group).await;
            Ok(Response::new(coordinator_answer(found)))
        }
    }

    async fn commit_offsets(
        &self,
        request: Request<pb::CommitOffsetsRequest>,
    ) -> Result<Response<pb::CommitOffsetsResponse>, Status> {
        let outcome = self.commit_offsets(request.into_inner()).await;
        Ok(Response::new(pb::CommitOffsetsResponse {
            error: outcome.err().as_ref().and_then(error),
        }))
    }

    async fn fetch_offsets(
        &self,
        request: Request<pb::FetchOffsetsRequest>,
    ) -> Result<Response<pb::FetchOffsetsResponse>, Status> {
        let response = match self.fetch_offsets(&request.into_inner().group).await {
            Ok(offsets) => pb::FetchOffsetsResponse {
                error: None,
                offsets,
            },
            Err(err) => pb::FetchOffsetsResponse {
                error: error(&err),
                offsets: vec![],
            },
        };
        Ok(Response::new(response))
    }

    async fn group_heartbeat(
        &self,
        request: Request<pb::GroupHeartbeatRequest>,
    ) -> Result<Response<pb::GroupHeartbeatResponse>, Status> {
        let response = self
            .group_heartbeat(request.into_inner())
            .await
            .unwrap_or_else(|err| pb::GroupHeartbeatResponse {
                error: error(&err),
                ..Default::default()
            });
        Ok(Response::new(response))
    }

    async fn describe_group(
        &self,
        request: Request<pb::DescribeGroupRequest>,
    ) -> Result<Response<pb::DescribeGroupResponse>, Status> {
        let response = self
            .describe_group(&request.into_inner().group)
            .await
            .unwrap_or_else(|err| pb::DescribeGroupResponse {
                error: error(&err),
                ..Default::default()
            });
        Ok(Response::new(response))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let response = if forwarded(&request) {
            pb::ListGroupsResponse {
                groups: self.local_groups(),
                ..Default::default()
            }
        } else {
            self.list_groups_everywhere().await
        };
        Ok(Response::new(response))
    }

    async fn reset_offsets(
        &self,
        request: Request<pb::ResetOffsetsRequest>,
    ) -> Result<Response<pb::ResetOffsetsResponse>, Status> {
        let response = match self.reset_offsets(request.into_inner()).await {
            Ok(offsets) => pb::ResetOffsetsResponse {
                error: None,
                offsets,
            },
            Err(err) => pb::ResetOffsetsResponse {
                error: error(&err),
                offsets: vec![],
            },
        };
        Ok(Response::new(response))
    }

    async fn alter_topic_config(
        &self,
        request: Request<pb::AlterTopicConfigRequest>,
    ) -> Result<Response<pb::AlterTopicConfigResponse>, Status> {
        via_controller!(self, request, alter_topic_config, |message| async {
            let outcome = self.alter_topic(message).await;
            Ok(Response::new(pb::AlterTopicConfigResponse {
                error: outcome.err().as_ref().and_then(error),
            }))
        })
    }
}

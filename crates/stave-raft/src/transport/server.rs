//! The receiving side: `RaftControl` and `RaftData` over the groups running on this node.
//! A request for a group that does not run here is answered with a `RaftFailure` (the sender
//! treats it as unreachable), not a gRPC error, so one missing group never breaks the
//! stream or the heartbeat batch that carries it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use stave_proto::internal::raft as pb;
use stave_proto::internal::raft::raft_control_server::RaftControl;
use stave_proto::internal::raft::raft_data_server::RaftData;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use crate::group::{CONTROLLER_GROUP, Groups, Promotion, RaftGroupId, Rejoined};

fn failure(message: impl ToString) -> pb::RaftFailure {
    pb::RaftFailure {
        message: message.to_string(),
    }
}

/// Who this node is, as `Hello` answers it, and how long a rejoining replica may take to
/// catch up before its promotion is retried. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    node_id: u64,
    catch_up_deadline: Duration,
    /// The cluster this node belongs to; none while it holds no cluster state.
    cluster_id: Arc<watch::Sender<Option<String>>>,
    /// Set while the node shuts down: open append streams end, so the server can stop.
    closing: Arc<watch::Sender<bool>>,
}

impl NodeIdentity {
    pub fn new(node_id: u64, catch_up_deadline: Duration) -> NodeIdentity {
        NodeIdentity {
            node_id,
            catch_up_deadline,
            cluster_id: Arc::new(watch::Sender::new(None)),
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The node is shutting down: peers' append streams end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that sees the node start shutting down (streams end then).
    pub fn subscribe_closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The node (re)started.
    pub fn open(&self) {
        self.closing.send_replace(false);
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The cluster this node belongs to (stored in its data directory); none while it holds
    /// no cluster state.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.borrow().clone()
    }

    /// A receiver that sees the cluster id change.
    pub fn subscribe_cluster_id(&self) -> watch::Receiver<Option<String>> {
        self.cluster_id.subscribe()
    }

    pub fn set_cluster_id(&self, cluster_id: &str) {
        self.reset_cluster_id(Some(cluster_id));
    }

    /// Sets (or clears: a node starting without cluster state) the cluster id.
    pub fn reset_cluster_id(&self, cluster_id: Option<&str>) {
        self.cluster_id.send_replace(cluster_id.map(str::to_string));
    }

    pub fn catch_up_deadline(&self) -> Duration {
        self.catch_up_deadline
    }
}

/// Serves `RaftControl`: votes, coalesced heartbeats, snapshots, leader transfer, and the
/// node-level `Hello` and `Rejoin`.
#[derive(Debug, Clone)]
pub struct ControlService {
    groups: Groups,
    identity: NodeIdentity,
    /// The (group, node) promotions running on this node: one each.
    promoting: Arc<std::sync::Mutex<std::collections::BTreeSet<(RaftGroupId, u64)>>>,
}

impl ControlService {
    pub fn new(groups: Groups, identity: NodeIdentity) -> ControlService {
        ControlService {
            groups,
            identity,
            promoting: Default::default(),
        }
    }

    /// Promotes rejoined `node` of `group` once it has caught up, retrying while it lags and
    /// this node leads; one such task per (group, node).
    fn spawn_promotion(&self, group_id: RaftGroupId, node: u64) {
        let fresh = self
            .promoting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((group_id, node));
        if !fresh {
            return;
        }
        let groups = self.groups.clone();
        let promoting = self.promoting.clone();
        let deadline = self.identity.catch_up_deadline();
        tokio::spawn(async move {
            loop {
                let Ok(group) = groups.get(group_id) else {
                    break;
                };
                match group.promote(node, deadline).await {
                    Ok(Promotion::Behind) => {
                        tracing::warn!(group = %group_id, node, "rejoining replica still behind");
                    }
                    Ok(Promotion::Promoted | Promotion::NotApplicable) => break,
                    Err(err) => {
                        tracing::warn!(group = %group_id, node, %err, "rejoining replica not promoted");
                        break;
                    }
                }
            }
            promoting
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&(group_id, node));
        });
    }
}

/// How long one group may take to answer its heartbeat in a batch: the others' answers do
/// not wait for a slow one longer than this.
const HEARTBEAT_ANSWER_MAX: Duration = Duration::from_millis(250);

/// Refuses a message that names this node as its sender (the candidate of a vote, the
/// leader of an append, a snapshot or a transfer). No node sends Raft messages to itself
/// over the network, so such a message is forged; openraft does not expect one (a leader
/// given an append in its own name takes the follower's path: a debug assertion in debug
/// builds, a leader appending as a follower in release).
fn not_from_self(own_id: u64, vote: Option<&pb::Vote>) -> Result<(), pb::RaftFailure> {
    match vote {
        Some(vote) if vote.node_id == own_id => Err(failure(format!(
            "a message in the name of node {own_id}, which is this node"
        ))),
        _ => Ok(()),
    }
}

/// Refuses what only a leader sends (appends, snapshots, leader transfers) unless it carries
/// a leader's vote: a committed one, from another node. openraft asserts that a follower's
/// leader vote is committed (and in release builds would follow an uncommitted one).
fn from_a_leader(own_id: u64, vote: Option<&pb::Vote>) -> Result<(), pb::RaftFailure> {
    not_from_self(own_id, vote)?;
    match vote {
        Some(vote) if !vote.committed => Err(failure(format!(
            "a leader's message with a vote not committed (term {}, node {})",
            vote.term, vote.node_id
        ))),
        _ => Ok(()),
    }
}

/// One group's append (a heartbeat or a data append), answered as the group answered it.
async fn append(
    groups: &Groups,
    own_id: u64,
    group_id: u64,
    append: Option<pb::AppendEntries>,
) -> Result<pb::AppendEntriesResponse, pb::RaftFailure> {
    from_a_leader(own_id, append.as_ref().and_then(|a| a.vote.as_ref()))?;
    let rpc = convert::append_from_pb(append).map_err(failure)?;
    let group = groups.get(RaftGroupId(group_id)).map_err(failure)?;
    let response = group.append_entries(rpc).await.map_err(failure)?;
    Ok(convert::append_response_to_pb(&response))
}

#[tonic::async_trait]
impl RaftControl for ControlService {
    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let request = request.into_inner();
        let result = async {
            not_from_self(self.identity.node_id(), request.vote.as_ref())?;
            let rpc = convert::vote_request_from_pb(&request).map_err(failure)?;
            let group = self
                .groups
                .get(RaftGroupId(request.group_id))
                .map_err(failure)?;
            let response = group.vote(rpc, request.pre_vote).await.map_err(failure)?;
            Ok(convert::vote_response_to_pb(&response))
        }
        .await;
        let result = match result {
            Ok(reply) => pb::vote_response::Result::Reply(reply),
            Err(failure) => pb::vote_response::Result::Failure(failure),
        };
        Ok(Response::new(pb::VoteResponse {
            result: Some(result),
        }))
    }

    async fn heartbeats(
        &self,
        request: Request<pb::HeartbeatBatch>,
    ) -> Result<Response<pb::HeartbeatResults>, Status> {
        let batch = request.into_inner();
        let own_id = self.identity.node_id();
        // Every group's heartbeat runs concurrently: one slow group delays no other.
        let results = futures_util::future::join_all(batch.heartbeats.into_iter().map(
            |heartbeat| async move {
                let answer = append(&self.groups, own_id, heartbeat.group_id, heartbeat.append);
                tokio::time::timeout(HEARTBEAT_ANSWER_MAX, answer)
                    .await
                    .unwrap_or_else(|_| Err(failure("the group did not answer in time")))
            },
        ))
        .await
        .into_iter()
        .map(|result| pb::HeartbeatResult {
            result: Some(match result {
                Ok(response) => pb::heartbeat_result::Result::Response(response),
                Err(failure) => pb::heartbeat_result::Result::Failure(failure),
            }),
        })
        .collect();
        Ok(Response::new(pb::HeartbeatResults { results }))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let request = request.into_inner();
        let result = async {
            from_a_leader(self.identity.node_id(), request.vote.as_ref())?;
            let vote = convert::vote_from_pb(request.vote.as_ref()).map_err(failure)?;
            let meta = convert::snapshot_meta_from_pb(&request).map_err(failure)?;
            let group = self
                .groups
                .get(RaftGroupId(request.group_id))
                .map_err(failure)?;
            let response = group
                .install_snapshot(vote, meta, request.data)
                .await
                .map_err(failure)?;
            Ok(convert::vote_to_pb(&response.vote))
        }
        .await;
        let result = match result {
            Ok(vote) => pb::snapshot_response::Result::Vote(vote),
            Err(failure) => pb::snapshot_response::Result::Failure(failure),
        };
        Ok(Response::new(pb::SnapshotResponse {
            result: Some(result),
        }))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let request = request.into_inner();
        let result = async {
            from_a_leader(self.identity.node_id(), request.from_leader.as_ref())?;
            let rpc = convert::transfer_from_pb(&request).map_err(failure)?;
            let group = self
                .groups
                .get(RaftGroupId(request.group_id))
                .map_err(failure)?;
            let response = group.transfer_leader(rpc).await.map_err(failure)?;
            Ok(convert::transfer_response_to_pb(&response))
        }
        .await;
        let result = result.unwrap_or_else(pb::transfer_leader_response::Result::Failure);
        Ok(Response::new(pb::TransferLeaderResponse {
            result: Some(result),
        }))
    }

    async fn hello(
        &self,
        _request: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        let controller = self.groups.get(CONTROLLER_GROUP).ok();
        let controller_leader = controller.as_ref().and_then(|c| c.current_leader());
        let has_state = match &controller {
            Some(controller) => controller.has_state().await,
            None => false,
        };
        Ok(Response::new(pb::HelloResponse {
            node_id: self.identity.node_id(),
            cluster_id: self.identity.cluster_id().unwrap_or_default(),
            controller_leader,
            has_state,
        }))
    }

    async fn group_status(
        &self,
        request: Request<pb::GroupStatusRequest>,
    ) -> Result<Response<pb::GroupStatusResponse>, Status> {
        use pb::group_status_response::Result as R;
        let result = match self.groups.get(RaftGroupId(request.into_inner().group_id)) {
            Ok(group) => {
                let (voters, learners) = group.committed_members();
                R::Status(pb::GroupStatus {
                    leader: group.current_leader(),
                    voters,
                    learners,
                })
            }
            Err(message) => R::Failure(failure(message)),
        };
        Ok(Response::new(pb::GroupStatusResponse {
            result: Some(result),
        }))
    }

    async fn leaderships(
        &self,
        _request: Request<pb::LeadershipsRequest>,
    ) -> Result<Response<pb::LeadershipsResponse>, Status> {
        let groups = self
            .groups
            .ids()
            .into_iter()
            .filter_map(|group_id| {
                let leadership = self.groups.get(group_id).ok()?.leadership()?;
                Some(pb::Leadership {
                    group_id: group_id.0,
                    term: leadership.term,
                    in_sync: leadership.in_sync,
                    note: self.groups.note(group_id),
                })
            })
            .collect();
        let problems = self
            .groups
            .problems()
            .list()
            .into_iter()
            .map(|problem| pb::GroupProblem {
                group_id: problem.group.0,
                reason: problem.reason,
                reopens: problem.reopens,
                offline: problem.offline,
            })
            .collect();
        Ok(Response::new(pb::LeadershipsResponse {
            node_id: self.identity.node_id(),
            groups,
            problems,
        }))
    }

    async fn rejoin(
        &self,
        request: Request<pb::RejoinRequest>,
    ) -> Result<Response<pb::RejoinResponse>, Status> {
        use pb::rejoin_response::Result as R;
        let request = request.into_inner();
        let result = match self.groups.get(RaftGroupId(request.group_id)) {
            Err(message) => R::Failure(failure(message)),
            Ok(group) => match group.rejoin(request.node_id, request.addr).await {
                Ok(Rejoined::Learner { since }) => {
                    self.spawn_promotion(RaftGroupId(request.group_id), request.node_id);
                    R::LearnerSince(since)
                }
                Ok(Rejoined::NotLeader(leader)) => R::NotLeader(pb::NotLeader { leader }),
                Err(message) => R::Failure(failure(message)),
            },
        };
        Ok(Response::new(pb::RejoinResponse {
            result: Some(result),
        }))
    }
}

/// Serves `RaftData`: the appends of every group from one peer, on one stream.
#[derive(Debug, Clone)]
pub struct DataService {
    groups: Groups,
    identity: NodeIdentity,
}

impl DataService {
    pub fn new(groups: Groups, identity: NodeIdentity) -> DataService {
        DataService { groups, identity }
    }
}

type AppendStream = Pin<Box<dyn Stream<Item = Result<pb::AppendResult, Status>> + Send>>;

#[tonic::async_trait]
impl RaftData for DataService {
    type AppendStream = AppendStream;

    async fn append(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<AppendStream>, Status> {
        let mut incoming = request.into_inner();
        let (results, outgoing) = mpsc::unbounded_channel();
        let groups = self.groups.clone();
        let own_id = self.identity.node_id();
        let mut closing = self.identity.closing.subscribe();
        tokio::spawn(async move {
            // Requests of different groups run concurrently and answer in any order (each
            // carries its id); openraft sends one append at a time per group and target, so
            // one group's appends stay in order.
            loop {
                let request = tokio::select! {
                    request = incoming.next() => match request {
                        Some(Ok(request)) => request,
                        _ => break,
                    },
                    _ = closing.wait_for(|closing| *closing) => break,
                };
                let groups = groups.clone();
                let results = results.clone();
                tokio::spawn(async move {
                    let appended = append(&groups, own_id, request.group_id, request.append);
                    let result = match appended.await {
                        Ok(response) => pb::append_result::Result::Response(response),
                        Err(failure) => pb::append_result::Result::Failure(failure),
                    };
                    // The stream is gone when the peer hung up: nobody waits for the answer.
                    let _ = results.send(Ok(pb::AppendResult {
                        id: request.id,
                        result: Some(result),
                    }));
                });
            }
        });
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }
}

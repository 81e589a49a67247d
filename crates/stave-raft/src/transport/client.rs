//! The sending side. Per peer, two HTTP/2 connections:
//! - *control*: votes, snapshots, leader transfer, and heartbeats, which are coalesced: a
//!   heartbeat waits [`TransportConfig::heartbeat_linger`] for the heartbeats other groups send
//!   the same peer, and they travel as one `HeartbeatBatch`;
//! - *data*: one long-lived `Append` stream that carries every group's appends, matched to
//!   their answers by id.
//!
//! So a heartbeat never queues behind megabytes of entries. Each group's `Raft` gets a
//! [`GrpcNetwork`] (its group id, the shared [`RaftClients`]); openraft-multi's
//! `GroupNetworkAdapter` binds it to a target.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, OptionalSend};
use openraft_multi::{GroupNetworkAdapter, GroupRouter};
use stave_proto::internal::raft as pb;
use stave_proto::internal::raft::raft_control_client::RaftControlClient;
use stave_proto::internal::raft::raft_data_client::RaftDataClient;
use tokio::sync::{mpsc, oneshot};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::auth::{AttachSecret, ClusterSecret};

use super::convert;
use crate::group::RaftGroupId;
use crate::types::{SnapshotCodec, TypeConfig, VoteOf};

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// How long a heartbeat waits for others to the same peer before the batch goes.
    pub heartbeat_linger: Duration,
    pub connect_timeout: Duration,
    /// The largest message a node accepts (Raft appends are capped well below this by the
    /// log store's byte budget).
    pub max_message_bytes: usize,
    /// The cluster's shared secret, sent with every call to a peer and required of every
    /// call received; none leaves the internal services open (see [`super::auth`]).
    pub secret: Option<ClusterSecret>,
    /// TLS to the peers (`https://`): the CA that signs every node's certificate and this
    /// node's own certificate as its client identity. A peer's certificate is checked
    /// against the host of its address. `None` speaks plaintext.
    pub tls: Option<ClientTlsConfig>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            heartbeat_linger: Duration::from_millis(2),
            connect_timeout: Duration::from_secs(2),
            max_message_bytes: 64 << 20,
            secret: None,
            tls: None,
        }
    }
}

fn unreachable(err: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::new(&AnyError::error(err.to_string()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connections of one node to its peers, shared by every group on the node.
#[derive(Debug, Clone, Default)]
pub struct RaftClients {
    inner: Arc<ClientsInner>,
}

#[derive(Debug, Default)]
struct ClientsInner {
    config: TransportConfig,
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
}

impl RaftClients {
    pub fn new(config: TransportConfig) -> RaftClients {
        RaftClients {
            inner: Arc::new(ClientsInner {
                config,
                peers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The network factory for this node's replica of `group`, whose snapshots are `S`.
    pub fn network<S: SnapshotCodec>(&self, group: RaftGroupId) -> GrpcNetwork<S> {
        GrpcNetwork {
            clients: self.clone(),
            group,
            snapshot: PhantomData,
        }
    }

    /// The peer `id` at `addr` (host:port), connecting lazily; a new address replaces the
    /// old connections.
    fn register(&self, id: u64, addr: &str) -> Result<Arc<Peer>, Unreachable<TypeConfig>> {
        let mut peers = lock(&self.inner.peers);
        if let Some(peer) = peers.get(&id)
            && peer.addr == addr
        {
            return Ok(peer.clone());
        }
        let peer = Arc::new(Peer::connect(addr, &self.inner.config).map_err(unreachable)?);
        peers.insert(id, peer.clone());
        Ok(peer)
    }

    /// Asks node `id` at `addr` who it is and which cluster it belongs to.
    pub async fn hello(&self, id: u64, addr: &str, me: u64) -> Result<pb::HelloResponse, String> {
        let peer = self.register(id, addr).map_err(|e| e.to_string())?;
        let mut control = peer.control.clone();
        let call = control.hello(pb::HelloRequest { node_id: me });
        match tokio::time::timeout(self.inner.config.connect_timeout * 2, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(status.to_string()),
            Err(_) => Err(format!("node {id} at {addr} did not answer")),
        }
    }

    /// The groups node `id` at `addr` leads.
    pub async fn leaderships(
        &self,
        id: u64,
        addr: &str,
    ) -> Result<pb::LeadershipsResponse, String> {
        let peer = self.register(id, addr).map_err(|e| e.to_string())?;
        let mut control = peer.control.clone();
        let call = control.leaderships(pb::LeadershipsRequest {});
        match tokio::time::timeout(self.inner.config.connect_timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(status.to_string()),
            Err(_) => Err(format!("node {id} did not answer")),
        }
    }

    /// Asks node `id` at `addr` how its replica of `group` sees the group.
    pub async fn group_status(
        &self,
        id: u64,
        addr: &str,
        group: RaftGroupId,
    ) -> Result<pb::GroupStatus, String> {
        use pb::group_status_response::Result as R;
        let peer = self.register(id, addr).map_err(|e| e.to_string())?;
        let mut control = peer.control.clone();
        let call = control.group_status(pb::GroupStatusRequest { group_id: group.0 });
        let response = match tokio::time::timeout(self.inner.config.connect_timeout * 2, call).await
        {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return Err(status.to_string()),
            Err(_) => return Err(format!("node {id} did not answer")),
        };
        match response.result {
            Some(R::Status(status)) => Ok(status),
            Some(R::Failure(failure)) => Err(failure.message),
            None => Err("empty group status".to_string()),
        }
    }

    /// Asks node `id` at `addr`, which should lead `group`, to take back `node` (at
    /// `node_addr`), whose data was wiped, as a learner.
    pub async fn rejoin(
        &self,
        id: u64,
        addr: &str,
        group: RaftGroupId,
        node: u64,
        node_addr: &str,
    ) -> Result<crate::group::Rejoined, String> {
        use pb::rejoin_response::Result as R;
        let peer = self.register(id, addr).map_err(|e| e.to_string())?;
        let mut control = peer.control.clone();
        let request = pb::RejoinRequest {
            group_id: group.0,
            node_id: node,
            addr: node_addr.to_string(),
        };
        // A membership change commits within an election timeout or two.
        let call = control.rejoin(request);
        let response = match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return Err(status.to_string()),
            Err(_) => return Err(format!("node {id} did not answer the rejoin")),
        };
        match response.result {
            Some(R::LearnerSince(since)) => Ok(crate::group::Rejoined::Learner { since }),
            Some(R::NotLeader(not_leader)) => {
                Ok(crate::group::Rejoined::NotLeader(not_leader.leader))
            }
            Some(R::Failure(failure)) => Err(failure.message),
            None => Err("empty rejoin response".to_string()),
        }
    }

    fn peer(&self, id: u64) -> Result<Arc<Peer>, Unreachable<TypeConfig>> {
        lock(&self.inner.peers)
            .get(&id)
            .cloned()
            .ok_or_else(|| unreachable(format!("no address known for node {id}")))
    }
}

/// A peer's `RaftControl`, each call signed with the cluster secret.
type ControlClient = RaftControlClient<InterceptedService<Channel, AttachSecret>>;
/// A peer's `RaftData`, each call signed with the cluster secret.
type DataClient = RaftDataClient<InterceptedService<Channel, AttachSecret>>;

/// One peer: its control and data connections.
#[derive(Debug)]
struct Peer {
    addr: String,
    linger: Duration,
    control: ControlClient,
    heartbeats: Arc<HeartbeatQueue>,
    data: Arc<DataLink>,
}

fn endpoint(addr: &str, config: &TransportConfig) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = match &config.tls {
        Some(tls) => {
            let tls = match bracketed_ip(addr) {
                // The URI's host keeps an IPv6 address's brackets, which no certificate names.
                Some(ip) => tls.clone().domain_name(ip),
                None => tls.clone(),
            };
            Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls)?
        }
        None => Endpoint::from_shared(format!("http://{addr}"))?,
    };
    Ok(endpoint
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(32 << 20)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20)))
}

/// The IPv6 address of `[addr]:port`, without its brackets.
fn bracketed_ip(addr: &str) -> Option<&str> {
    addr.strip_prefix('[')?.split_once(']').map(|(ip, _)| ip)
}

impl Peer {
    /// Two endpoints, two channels: two TCP connections.
    fn connect(addr: &str, config: &TransportConfig) -> Result<Peer, tonic::transport::Error> {
        let attach = AttachSecret::new(config.secret.clone());
        let control = RaftControlClient::with_interceptor(
            endpoint(addr, config)?.connect_lazy(),
            attach.clone(),
        )
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
        let data = RaftDataClient::with_interceptor(endpoint(addr, config)?.connect_lazy(), attach)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        Ok(Peer {
            addr: addr.to_string(),
            linger: config.heartbeat_linger,
            control: control.clone(),
            heartbeats: Arc::new(HeartbeatQueue {
                control,
                pending: Mutex::new(Vec::new()),
            }),
            data: Arc::new(DataLink {
                client: data,
                next_id: AtomicU64::new(0),
                state: Arc::new(Mutex::new(LinkState::default())),
            }),
        })
    }
}

type HeartbeatReply = oneshot::Sender<Result<pb::AppendEntriesResponse, String>>;

/// Heartbeats waiting to go to one peer as a batch.
#[derive(Debug)]
struct HeartbeatQueue {
    control: ControlClient,
    pending: Mutex<Vec<(pb::Heartbeat, HeartbeatReply)>>,
}

impl HeartbeatQueue {
    /// Queues one heartbeat; the first one into an empty queue starts a task that sends the
    /// batch after `linger` (a task, so a caller that gives up does not strand the others).
    async fn send(
        self: &Arc<Self>,
        heartbeat: pb::Heartbeat,
        linger: Duration,
        ttl: Duration,
    ) -> Result<pb::AppendEntriesResponse, String> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = lock(&self.pending);
            pending.push((heartbeat, reply));
            pending.len() == 1
        };
        if first {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                queue.flush(ttl).await;
            });
        }
        match tokio::time::timeout(ttl + linger, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("heartbeat batch abandoned".to_string()),
            Err(_) => Err("heartbeat timed out".to_string()),
        }
    }

    async fn flush(&self, ttl: Duration) {
        let batch = std::mem::take(&mut *lock(&self.pending));
        let (heartbeats, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let mut control = self.control.clone();
        let call = control.heartbeats(pb::HeartbeatBatch { heartbeats });
        let results = match tokio::time::timeout(ttl, call).await {
            Ok(Ok(response)) => Ok(response.into_inner().results),
            Ok(Err(status)) => Err(status.to_string()),
            Err(_) => Err("heartbeat batch timed out".to_string()),
        };
        match results {
            Ok(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let result = match result.result {
                        Some(pb::heartbeat_result::Result::Response(response)) => Ok(response),
                        Some(pb::heartbeat_result::Result::Failure(failure)) => {
                            Err(failure.message)
                        }
                        None => Err("empty heartbeat result".to_string()),
                    };
                    let _ = reply.send(result);
                }
            }
            Ok(results) => {
                let message = format!("{} results for {} heartbeats", results.len(), replies.len());
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
            Err(message) => {
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

type AppendReply = oneshot::Sender<Result<pb::AppendEntriesResponse, String>>;

/// The data connection's append stream to one peer.
#[derive(Debug)]
struct DataLink {
    client: DataClient,
    next_id: AtomicU64,
    state: Arc<Mutex<LinkState>>,
}

#[derive(Debug, Default)]
struct LinkState {
    /// The open stream's request side, and its generation.
    stream: Option<(u64, mpsc::Sender<pb::AppendRequest>)>,
    generation: u64,
    /// Appends sent and not answered, by request id, with the generation of the stream that
    /// carries them.
    pending: HashMap<u64, (u64, AppendReply)>,
}

/// Appends queued for one peer's stream at most (openraft sends one at a time per group, so
/// this bounds the groups waiting on a stalled peer, not one group's backlog).
const APPEND_QUEUE_MAX: usize = 4096;

impl LinkState {
    /// Ends generation `generation`'s stream: its unanswered appends fail.
    fn close(&mut self, generation: u64, why: &str) {
        if self.stream.as_ref().is_some_and(|(g, _)| *g == generation) {
            self.stream = None;
        }
        let failed: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (g, _))| *g == generation)
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            if let Some((_, reply)) = self.pending.remove(&id) {
                let _ = reply.send(Err(why.to_string()));
            }
        }
    }
}

/// Forgets an append's pending entry when its sender stops waiting, answered or not.
struct PendingGuard<'a> {
    state: &'a Mutex<LinkState>,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.state).pending.remove(&self.id);
    }
}

impl DataLink {
    /// The open stream's sender and generation, opening a stream (and its reader task) when
    /// there is none.
    fn sender(&self, state: &mut LinkState) -> (u64, mpsc::Sender<pb::AppendRequest>) {
        if let Some((generation, sender)) = &state.stream
            && !sender.is_closed()
        {
            return (*generation, sender.clone());
        }
        state.generation += 1;
        let generation = state.generation;
        let (sender, requests) = mpsc::channel(APPEND_QUEUE_MAX);
        state.stream = Some((generation, sender.clone()));
        let mut client = self.client.clone();
        let shared = self.state.clone();
        tokio::spawn(async move {
            let requests = tokio_stream::wrappers::ReceiverStream::new(requests);
            let mut results = match client.append(requests).await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    lock(&shared).close(generation, &status.to_string());
                    return;
                }
            };
            while let Some(item) = results.next().await {
                let Ok(result) = item else { break };
                let Some((_, reply)) = lock(&shared).pending.remove(&result.id) else {
                    continue;
                };
                let _ = reply.send(match result.result {
                    Some(pb::append_result::Result::Response(response)) => Ok(response),
                    Some(pb::append_result::Result::Failure(failure)) => Err(failure.message),
                    None => Err("empty append result".to_string()),
                });
            }
            lock(&shared).close(generation, "append stream closed");
        });
        (generation, sender)
    }

    async fn send(
        &self,
        group_id: RaftGroupId,
        append: pb::AppendEntries,
        ttl: Duration,
    ) -> Result<pb::AppendEntriesResponse, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let _guard = PendingGuard {
            state: &self.state,
            id,
        };
        {
            let mut state = lock(&self.state);
            let (generation, sender) = self.sender(&mut state);
            let request = pb::AppendRequest {
                id,
                group_id: group_id.0,
                append: Some(append),
            };
            if let Err(err) = sender.try_send(request) {
                return Err(match err {
                    mpsc::error::TrySendError::Full(_) => "append queue full".to_string(),
                    mpsc::error::TrySendError::Closed(_) => "append stream closed".to_string(),
                });
            }
            state.pending.insert(id, (generation, reply));
        }
        match tokio::time::timeout(ttl, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("append stream closed".to_string()),
            Err(_) => Err("append timed out".to_string()),
        }
    }
}

/// Which connection a group's client uses for appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Replication: appends go on the data stream.
    Data,
    /// openraft's heartbeat client: empty appends are coalesced on the control connection.
    Heartbeat,
}

/// The shared clients, seen from one group's client of one kind; openraft-multi's
/// `GroupRouter`.
#[derive(Debug)]
pub struct GrpcGroupRouter<S> {
    clients: RaftClients,
    lane: Lane,
    snapshot: PhantomData<fn() -> S>,
}

impl<S> Clone for GrpcGroupRouter<S> {
    fn clone(&self) -> Self {
        GrpcGroupRouter {
            clients: self.clients.clone(),
            lane: self.lane,
            snapshot: PhantomData,
        }
    }
}

/// The network factory of one group's `Raft` on this node.
#[derive(Debug)]
pub struct GrpcNetwork<S> {
    clients: RaftClients,
    group: RaftGroupId,
    snapshot: PhantomData<fn() -> S>,
}

impl<S: SnapshotCodec> GrpcNetwork<S> {
    fn adapter(
        &self,
        target: u64,
        node: &openraft::impls::BasicNode,
        lane: Lane,
    ) -> GroupNetworkAdapter<TypeConfig, RaftGroupId, GrpcGroupRouter<S>> {
        if let Err(err) = self.clients.register(target, &node.addr) {
            tracing::warn!(target, addr = %node.addr, %err, "bad peer address");
        }
        let router = GrpcGroupRouter {
            clients: self.clients.clone(),
            lane,
            snapshot: PhantomData,
        };
        GroupNetworkAdapter::new(router, target, self.group)
    }
}

impl<S: SnapshotCodec> RaftNetworkFactory<TypeConfig> for GrpcNetwork<S> {
    type Network = GroupNetworkAdapter<TypeConfig, RaftGroupId, GrpcGroupRouter<S>>;

    async fn new_client(
        &mut self,
        target: u64,
        node: &openraft::impls::BasicNode,
    ) -> Self::Network {
        self.adapter(target, node, Lane::Data)
    }

    async fn new_heartbeat_client(
        &mut self,
        target: u64,
        node: &openraft::impls::BasicNode,
    ) -> Self::Network {
        self.adapter(target, node, Lane::Heartbeat)
    }
}

/// An RPC's time budget: openraft's soft limit, at least a second (a stream session gets the
/// heartbeat interval, too short for a large append on a busy machine).
fn ttl(option: &RPCOption) -> Duration {
    option.soft_ttl().max(Duration::from_secs(1))
}

fn rpc_error(err: impl std::fmt::Display) -> RPCError<TypeConfig> {
    RPCError::Unreachable(unreachable(err))
}

async fn with_ttl<T>(
    ttl: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, RPCError<TypeConfig>> {
    match tokio::time::timeout(ttl, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(rpc_error(status)),
        Err(_) => Err(rpc_error("timed out")),
    }
}

impl<S: SnapshotCodec> GrpcGroupRouter<S> {
    async fn vote_rpc(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: VoteRequest<TypeConfig>,
        pre_vote: bool,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let peer = self.clients.peer(target)?;
        let request = convert::vote_request_to_pb(group.0, &rpc, pre_vote);
        let mut control = peer.control.clone();
        let response = with_ttl(ttl(&option), control.vote(request)).await?;
        match response.result {
            Some(pb::vote_response::Result::Reply(reply)) => {
                convert::vote_response_from_pb(&reply).map_err(rpc_error)
            }
            Some(pb::vote_response::Result::Failure(failure)) => Err(rpc_error(failure.message)),
            None => Err(rpc_error("empty vote response")),
        }
    }
}

impl<S: SnapshotCodec> GroupRouter<TypeConfig, RaftGroupId> for GrpcGroupRouter<S> {
    type SnapshotData = S;

    async fn append_entries(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let peer = self.clients.peer(target)?;
        let append = convert::append_to_pb(&rpc).map_err(rpc_error)?;
        let response = if self.lane == Lane::Heartbeat && rpc.entries.is_empty() {
            let heartbeat = pb::Heartbeat {
                group_id: group.0,
                append: Some(append),
            };
            peer.heartbeats
                .send(heartbeat, peer.linger, ttl(&option))
                .await
        } else {
            peer.data.send(group, append, ttl(&option)).await
        };
        convert::append_response_from_pb(response.map_err(rpc_error)?).map_err(rpc_error)
    }

    async fn vote(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_rpc(target, group, rpc, false, option).await
    }

    async fn pre_vote(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_rpc(target, group, rpc, true, option).await
    }

    async fn full_snapshot(
        &self,
        target: u64,
        group: RaftGroupId,
        vote: VoteOf,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, S>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let streaming = |err: String| StreamingError::from(unreachable(err));
        let peer = self.clients.peer(target)?;
        let (last_log_id, membership_log_id, membership) =
            convert::snapshot_meta_to_pb(&snapshot.meta).map_err(|e| streaming(e.to_string()))?;
        let data = snapshot
            .snapshot
            .encode_snapshot()
            .map_err(|e| streaming(e.to_string()))?;
        let request = pb::SnapshotRequest {
            group_id: group.0,
            vote: Some(convert::vote_to_pb(&vote)),
            last_log_id,
            membership_log_id,
            membership,
            data,
        };
        let mut control = peer.control.clone();
        let call = with_ttl(ttl(&option), control.install_snapshot(request));
        let response = tokio::select! {
            response = call => response.map_err(|e| streaming(e.to_string()))?,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        match response.result {
            Some(pb::snapshot_response::Result::Vote(vote)) => Ok(SnapshotResponse::new(
                convert::vote_from_pb(Some(&vote)).map_err(|e| streaming(e.to_string()))?,
            )),
            Some(pb::snapshot_response::Result::Failure(failure)) => {
                Err(streaming(failure.message))
            }
            None => Err(streaming("empty snapshot response".to_string())),
        }
    }

    async fn transfer_leader(
        &self,
        target: u64,
        group: RaftGroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let peer = self.clients.peer(target)?;
        let mut control = peer.control.clone();
        let request = convert::transfer_to_pb(group.0, &rpc);
        let response = with_ttl(ttl(&option), control.transfer_leader(request)).await?;
        convert::transfer_response_from_pb(response)
            .map_err(rpc_error)?
            .map_err(rpc_error)
    }
}

//! [`Client`]: connections to the nodes, the metadata cache and leader routing, shared by the
//! producers, consumers and admin handles made from it.
//!
//! - One gRPC channel per node address, made on first use and kept (a channel reconnects by
//!   itself; it is dropped after a connection failure so the next use dials again).
//! - The metadata cache is refreshed on demand: when a topic or a leader is missing, and after
//!   NOT_LEADER without a hint, UNKNOWN_TOPIC or a connection failure. Concurrent refreshes
//!   coalesce into one request. NOT_LEADER with a hint updates the cache in place.
//! - Requests that are not tied to a partition (metadata, admin) go to any node, and retry
//!   retriable failures ("no leader yet", a node restarting) until `retry_timeout`.
//! - Every attempt is bounded (`request_timeout`; a fetch adds its long poll), and HTTP/2
//!   keep-alive closes a connection whose peer stopped answering. A node that failed to
//!   answer is *suspected* for a while (`suspects.rs`): asked last, and not followed by hints.
//! - Metadata is asked of one node at a time, the next one as well when an answer is late
//!   ([`METADATA_HEDGE_DELAY`]): a paused node costs a second, not a request timeout.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use stave_proto::v1 as proto;
use stave_proto::v1::stave_client::StaveClient;
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing::debug;

use crate::config::{ClientConfig, MESSAGE_BYTES_MAX, StartPosition};
use crate::credentials::Credentials;
use crate::error::ClientError;
use crate::metadata::ClusterMetadata;
use crate::suspects::{SUSPICION_MAX, Suspects};

/// How long a metadata request may go unanswered before the next node is asked as well. A
/// live node answers in milliseconds, or in about 2 s while one of its peers is silent (it
/// waits that long for the peer's leaderships); a paused one never does.
pub(crate) const METADATA_HEDGE_DELAY: Duration = Duration::from_secs(1);

/// How long a leader lookup waits for fresh metadata before it asks one of the partition's
/// replicas instead (the refresh goes on in the background). A healthy cluster answers
/// Metadata in milliseconds; while a node is silent every answer waits ~2 s for it, but a
/// replica answers at once, naming the leader it follows (NOT_LEADER), or writing (it leads).
pub(crate) const LEADER_LOOKUP_WAIT: Duration = Duration::from_millis(250);

/// A gRPC client of one node, each call carrying the client's credentials.
pub(crate) type NodeClient = StaveClient<InterceptedService<Channel, Credentials>>;

/// A node that runs a client inside itself (the broker, for its Consume streams): fetches
/// from the partitions it leads are served in process, not over a connection to itself.
pub trait LocalNode: Send + Sync + 'static {
    /// The address the node advertises, as the metadata names it.
    fn addr(&self) -> &str;

    /// Serves `request` as the node's `Fetch` RPC would.
    fn fetch(
        &self,
        request: proto::FetchRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = proto::FetchResponse> + Send>>;
}

/// A handle to a Stave cluster. Cheap to clone; clones share connections and metadata.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.bootstrap)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: ClientConfig,
    connections: Mutex<HashMap<String, NodeClient>>,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Held while a metadata request is out, so concurrent refreshes make one request.
    refreshing: tokio::sync::Mutex<()>,
    /// Counts completed refreshes: a caller that waited on `refreshing` and sees it moved
    /// uses the fresh answer instead of asking again.
    generation: AtomicU64,
    /// Nodes that recently failed to answer.
    suspects: Suspects,
    /// Told after every metadata refresh.
    refreshed: tokio::sync::watch::Sender<()>,
    /// The node this client runs in, if it runs in one.
    local: Option<Arc<dyn LocalNode>>,
    /// A background refresh (`refresh_metadata_for`) is running.
    refreshing_in_background: AtomicBool,
    /// Turns through a partition's replicas when none is known to lead.
    next_replica: AtomicUsize,
}

impl Client {
    /// Connects to the cluster through the bootstrap list and loads its metadata.
    ///
    /// When every bootstrap address refuses the connection, this fails at once with
    /// [`ClientError::Unreachable`]; a node that answers but is not ready yet is retried
    /// until `retry_timeout`.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::new(config, None)?;
        client.bootstrap().await?;
        Ok(client)
    }

    /// [`Client::connect`] for a client that runs inside the node `local`: its consumers
    /// read the partitions that node leads in process.
    pub async fn connect_within(
        config: ClientConfig,
        local: Arc<dyn LocalNode>,
    ) -> Result<Client, ClientError> {
        let client = Client::new(config, Some(local))?;
        client.bootstrap().await?;
        Ok(client)
    }

    /// The node this client runs in, if `addr` is its address.
    pub(crate) fn local_at(&self, addr: &str) -> Option<&Arc<dyn LocalNode>> {
        self.inner
            .local
            .as_ref()
            .filter(|local| local.addr() == addr)
    }

    /// A client with no metadata yet.
    fn new(config: ClientConfig, local: Option<Arc<dyn LocalNode>>) -> Result<Client, ClientError> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::Config {
                message: "the bootstrap list is empty".into(),
            });
        }
        config.validate()?;
        Ok(Client {
            inner: Arc::new(Inner {
                suspects: Suspects::new(SUSPICION_MAX),
                config,
                connections: Mutex::new(HashMap::new()),
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                refreshing: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                refreshed: tokio::sync::watch::Sender::new(()),
                refreshing_in_background: AtomicBool::new(false),
                next_replica: AtomicUsize::new(0),
                local,
            }),
        })
    }

    async fn bootstrap(&self) -> Result<(), ClientError> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let failures = match self.first_metadata(&self.inner.config.bootstrap).await {
                Ok(metadata) => {
                    self.store_metadata(metadata);
                    return Ok(());
                }
                Err(failures) => failures,
            };
            let refused = failures
                .iter()
                .filter(|err| matches!(err, ClientError::Connect { .. }))
                .count();
            let Some(last) = failures.into_iter().last() else {
                return Err(ClientError::Config {
                    message: "the bootstrap list is empty".into(),
                });
            };
            if refused == self.inner.config.bootstrap.len() {
                return Err(ClientError::Unreachable {
                    addrs: self.inner.config.bootstrap.join(","),
                    source: Box::new(last),
                });
            }
            if !last.is_retriable() {
                return Err(last);
            }
            let pause = self.inner.config.backoff(attempt);
            if start.elapsed() + pause > self.inner.config.retry_timeout {
                return Err(ClientError::Timeout {
                    what: "connecting to the cluster".into(),
                    elapsed: start.elapsed(),
                    last: Some(Box::new(last)),
                });
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The cached metadata (see [`Client::refresh_metadata`] for a fresh copy).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        match self.inner.metadata.read() {
            Ok(metadata) => metadata.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store_metadata(&self, metadata: ClusterMetadata) {
        let metadata = Arc::new(metadata);
        match self.inner.metadata.write() {
            Ok(mut slot) => *slot = metadata,
            Err(poisoned) => *poisoned.into_inner() = metadata,
        }
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.inner.refreshed.send_replace(());
    }

    fn update_metadata(&self, update: impl FnOnce(&mut ClusterMetadata)) {
        let mut slot = match self.inner.metadata.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        update(Arc::make_mut(&mut slot));
    }

    /// Asks the cluster for its metadata now (one request, shared with concurrent callers),
    /// trying every known node once.
    pub async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>, ClientError> {
        let seen = self.inner.generation.load(Ordering::Acquire);
        let _guard = self.inner.refreshing.lock().await;
        if self.inner.generation.load(Ordering::Acquire) != seen {
            return Ok(self.metadata());
        }
        let asked_at = Instant::now();
        match self.first_metadata(&self.candidates()).await {
            Ok(metadata) => {
                // A leader named by an answer to a request sent after its node was suspected
                // answered the leadership gathering since: it is back.
                for addr in metadata.leader_addrs() {
                    self.inner.suspects.remove_if_since_before(addr, asked_at);
                }
                self.store_metadata(metadata);
                Ok(self.metadata())
            }
            Err(failures) => {
                Err(failures
                    .into_iter()
                    .last()
                    .unwrap_or_else(|| ClientError::Config {
                        message: "no node to ask for metadata".into(),
                    }))
            }
        }
    }

    /// Asks `addrs` for metadata, one after another: the next as soon as the previous one
    /// failed or has been silent for [`METADATA_HEDGE_DELAY`] (then both are awaited). The
    /// first answer wins, and the nodes asked before it that are still silent become
    /// suspects: they had a head start and lost it. Each node is asked once, each request is
    /// bounded by `request_timeout`; `Err` holds every failure, in the order they came.
    async fn first_metadata(&self, addrs: &[String]) -> Result<ClusterMetadata, Vec<ClientError>> {
        let mut asked = FuturesUnordered::new();
        let mut silent: Vec<usize> = Vec::new();
        let mut next = 0;
        let mut failures = Vec::new();
        let hedge = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(hedge);
        loop {
            if asked.is_empty() && next == addrs.len() {
                return Err(failures);
            }
            tokio::select! {
                Some((index, result)) = asked.next(), if !asked.is_empty() => {
                    silent.retain(|i| *i != index);
                    match result {
                        Ok(metadata) => {
                            for earlier in silent.iter().filter(|i| **i < index) {
                                debug!(addr = %addrs[*earlier], "overtaken by a later node");
                                self.inner.suspects.add(&addrs[*earlier]);
                            }
                            return Ok(metadata);
                        }
                        Err(err) => {
                            debug!(addr = %addrs[index], error = %err, "metadata request failed");
                            failures.push(err);
                            // Ask the next one now.
                            hedge.as_mut().reset(Instant::now());
                        }
                    }
                }
                () = &mut hedge, if next < addrs.len() => {
                    let index = next;
                    next += 1;
                    silent.push(index);
                    asked.push(async move { (index, self.fetch_metadata(&addrs[index]).await) });
                    hedge.as_mut().reset(Instant::now() + METADATA_HEDGE_DELAY);
                }
            }
        }
    }

    async fn fetch_metadata(&self, addr: &str) -> Result<ClusterMetadata, ClientError> {
        let mut node = self.connection(addr).await?;
        let request = proto::MetadataRequest { topics: Vec::new() };
        let response = self.unary(addr, node.metadata(request)).await?;
        Ok(ClusterMetadata::from_proto(response))
    }

    /// Known nodes (the controller first), then the bootstrap addresses not among them; the
    /// suspects last.
    fn candidates(&self) -> Vec<String> {
        let metadata = self.metadata();
        let mut addrs: Vec<String> = Vec::new();
        if let Some(addr) = metadata
            .controller_id
            .and_then(|id| metadata.nodes.get(&id))
        {
            addrs.push(addr.clone());
        }
        for addr in metadata
            .nodes
            .values()
            .chain(self.inner.config.bootstrap.iter())
        {
            if !addrs.contains(addr) {
                addrs.push(addr.clone());
            }
        }
        self.inner.suspects.last(addrs)
    }

    /// Notes that `addr` failed to answer (see `suspects.rs`).
    pub(crate) fn suspect(&self, addr: &str) {
        debug!(%addr, "node suspected");
        self.inner.suspects.add(addr);
    }

    /// Notes that `addr` answered.
    pub(crate) fn clear_suspicion(&self, addr: &str) {
        self.inner.suspects.remove(addr);
    }

    pub(crate) fn is_suspect(&self, addr: &str) -> bool {
        self.inner.suspects.contains(addr)
    }

    /// The NOT_LEADER hint of `err`, unless it names a suspect: a node that has not noticed
    /// its leader stopped keeps naming it until its election ends.
    pub(crate) fn hint_to_follow<'e>(
        &self,
        err: &'e ClientError,
    ) -> Option<(Option<u64>, &'e str)> {
        err.leader_hint().filter(|(_, addr)| !self.is_suspect(addr))
    }

    /// The channel to `addr`, dialled now if there is none.
    pub(crate) async fn connection(&self, addr: &str) -> Result<NodeClient, ClientError> {
        if let Some(client) = self.cached_connection(addr) {
            return Ok(client);
        }
        let config = &self.inner.config;
        let endpoint = crate::tls::endpoint(addr, config.tls.as_ref())?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .http2_keep_alive_interval(config.keep_alive_interval)
            .keep_alive_timeout(config.keep_alive_timeout)
            // Idle connections too: the next request then finds a paused node's connection
            // already closed rather than waiting out its own bound on it.
            .keep_alive_while_idle(true);
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(source) => {
                self.suspect(addr);
                return Err(ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
        };
        let client = StaveClient::with_interceptor(channel, config.credentials.clone())
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        if let Ok(mut connections) = self.inner.connections.lock() {
            connections.insert(addr.to_string(), client.clone());
        }
        Ok(client)
    }

    fn cached_connection(&self, addr: &str) -> Option<NodeClient> {
        self.inner.connections.lock().ok()?.get(addr).cloned()
    }

    /// Forgets the channel to `addr` after a connection failure.
    pub(crate) fn drop_connection(&self, addr: &str) {
        if let Ok(mut connections) = self.inner.connections.lock() {
            connections.remove(addr);
        }
    }

    /// Awaits one unary call, bounded by `request_timeout` (plus `extra` for a long-poll).
    pub(crate) async fn unary_with<T>(
        &self,
        addr: &str,
        extra: Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        self.unary_within(addr, self.inner.config.request_timeout + extra, call)
            .await
    }

    /// Awaits one unary call for at most `limit`: [`ClientError::NoAnswer`] after that, and
    /// `addr` is suspected (as after a lost connection) until it answers again.
    pub(crate) async fn unary_within<T>(
        &self,
        addr: &str,
        limit: Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(response)) => {
                self.clear_suspicion(addr);
                Ok(response.into_inner())
            }
            Ok(Err(status)) => {
                let err = ClientError::rpc(addr, status);
                if err.is_connection_failure() {
                    self.drop_connection(addr);
                    self.suspect(addr);
                } else {
                    self.clear_suspicion(addr);
                }
                Err(err)
            }
            Err(_) => {
                self.suspect(addr);
                Err(ClientError::NoAnswer {
                    addr: addr.to_string(),
                    waited: limit,
                })
            }
        }
    }

    pub(crate) async fn unary<T>(
        &self,
        addr: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        self.unary_with(addr, Duration::ZERO, call).await
    }

    /// Records a NOT_LEADER hint for `topic`/`partition`.
    pub(crate) fn note_leader(
        &self,
        topic: &str,
        partition: u32,
        leader_id: Option<u64>,
        addr: &str,
    ) {
        self.update_metadata(|m| m.note_leader(topic, partition, leader_id, addr));
    }

    /// Acts on a failed partition request: suspect a node that did not answer, follow a
    /// leader hint (unless it names a suspect), forget a dead connection, forget a leader
    /// that is no more (the next lookup refreshes metadata).
    pub(crate) fn observe_failure(
        &self,
        topic: &str,
        partition: u32,
        addr: &str,
        err: &ClientError,
    ) {
        if err.is_node_failure() {
            self.suspect(addr);
        }
        if let Some((leader_id, leader_addr)) = self.hint_to_follow(err) {
            self.note_leader(topic, partition, leader_id, leader_addr);
            return;
        }
        if err.is_connection_failure() {
            self.drop_connection(addr);
        }
        if err.needs_metadata_refresh() || err.leader_hint().is_some() {
            self.update_metadata(|m| m.forget_leader(topic, partition));
        }
    }

    /// The number of partitions of `topic`, refreshing metadata once if it is unknown.
    pub(crate) async fn partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        if let Some(info) = self.metadata().topic(topic) {
            return Ok(info.partition_count());
        }
        let metadata = self.refresh_metadata().await?;
        match metadata.topic(topic) {
            Some(info) => Ok(info.partition_count()),
            None => Err(ClientError::UnknownTopic {
                topic: topic.to_string(),
            }),
        }
    }

    /// Where to send a request for `topic`/`partition`, and a channel to it: its leader, or,
    /// while none that answers is known, one of its replicas (in turn), which either leads by
    /// now or answers NOT_LEADER naming the leader it follows. A leader lookup refreshes
    /// metadata, waiting for it [`LEADER_LOOKUP_WAIT`] at most (all of it for an unknown
    /// topic). With no replica left to ask: LEADER_NOT_AVAILABLE (retriable).
    pub(crate) async fn leader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<(String, NodeClient), ClientError> {
        let mut metadata = self.metadata();
        if metadata.topic(topic).is_none() {
            metadata = self.refresh_metadata().await?;
        } else if self.usable_leader(&metadata, topic, partition).is_none() {
            metadata = self.refresh_metadata_for(LEADER_LOOKUP_WAIT).await;
        }
        let Some(info) = metadata.topic(topic) else {
            return Err(ClientError::UnknownTopic {
                topic: topic.to_string(),
            });
        };
        let Some(replicas) = info.partition(partition).map(|p| &p.replicas) else {
            return Err(ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: info.partition_count(),
            });
        };
        let addr = match self.usable_leader(&metadata, topic, partition) {
            Some(addr) => addr.to_string(),
            None => {
                self.replica_to_ask(&metadata, replicas)
                    .ok_or_else(|| ClientError::Broker {
                        code: proto::ErrorCode::LeaderNotAvailable,
                        message: format!("no leader for {topic}/{partition} yet"),
                        leader_id: None,
                        leader_addr: None,
                    })?
            }
        };
        let node = self.connection(&addr).await?;
        Ok((addr, node))
    }

    /// The leader of `topic`/`partition` in `metadata`, unless it is a suspect.
    fn usable_leader<'m>(
        &self,
        metadata: &'m ClusterMetadata,
        topic: &str,
        partition: u32,
    ) -> Option<&'m str> {
        metadata
            .leader_addr(topic, partition)
            .filter(|addr| !self.is_suspect(addr))
    }

    /// The next of `replicas` (node ids) that is not a suspect, in turn.
    fn replica_to_ask(&self, metadata: &ClusterMetadata, replicas: &[u64]) -> Option<String> {
        let live: Vec<&String> = replicas
            .iter()
            .filter_map(|id| metadata.nodes.get(id))
            .filter(|addr| !self.is_suspect(addr))
            .collect();
        if live.is_empty() {
            return None;
        }
        let turn = self.inner.next_replica.fetch_add(1, Ordering::Relaxed);
        Some(live[turn % live.len()].clone())
    }

    /// Starts a metadata refresh unless one runs in the background already, and waits at
    /// most `wait` for a refresh to end; then the metadata as it is (the refresh goes on).
    async fn refresh_metadata_for(&self, wait: Duration) -> Arc<ClusterMetadata> {
        let mut refreshed = self.inner.refreshed.subscribe();
        if !self
            .inner
            .refreshing_in_background
            .swap(true, Ordering::AcqRel)
        {
            let client = self.clone();
            tokio::spawn(async move {
                if let Err(err) = client.refresh_metadata().await {
                    // The next lookup starts another.
                    debug!(error = %err, "metadata refresh failed");
                }
                client
                    .inner
                    .refreshing_in_background
                    .store(false, Ordering::Release);
            });
        }
        let _ = tokio::time::timeout(wait, refreshed.changed()).await;
        self.metadata()
    }

    /// Runs `op` against any node (the controller first, a NOT_LEADER hint's node next time),
    /// retrying retriable failures until `retry_timeout`. `what` names the operation in a
    /// timeout error.
    pub(crate) async fn call_any<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut(String, NodeClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut retry = Retry::new(self, what, self.inner.config.retry_timeout);
        let mut redirect: Option<String> = None;
        let mut failed: HashSet<String> = HashSet::new();
        loop {
            let result = match self.pick(redirect.take(), &mut failed).await {
                Ok((addr, node)) => {
                    let result = op(addr.clone(), node).await;
                    if let Err(err) = &result
                        && err.is_node_failure()
                    {
                        failed.insert(addr);
                    }
                    result
                }
                Err(err) => Err(err),
            };
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) if !err.is_retriable() => return Err(err),
                Err(err) => err,
            };
            if let Some((_, addr)) = self.hint_to_follow(&err) {
                redirect = Some(addr.to_string());
            } else if err.needs_metadata_refresh() || err.leader_hint().is_some() {
                let _ = self.refresh_metadata().await;
            }
            retry.again(err, redirect.is_some()).await?;
        }
    }

    /// A node to send a request to: `preferred` if given, else the first candidate that has
    /// not failed during this call (all of them again once each has).
    async fn pick(
        &self,
        preferred: Option<String>,
        failed: &mut HashSet<String>,
    ) -> Result<(String, NodeClient), ClientError> {
        if let Some(addr) = preferred {
            let node = self.connection(&addr).await?;
            return Ok((addr, node));
        }
        let mut candidates = self.candidates();
        candidates.retain(|addr| !failed.contains(addr));
        if candidates.is_empty() {
            failed.clear();
            candidates = self.candidates();
        }
        let mut last = None;
        for addr in candidates {
            match self.connection(&addr).await {
                Ok(node) => return Ok((addr, node)),
                Err(err) => {
                    failed.insert(addr);
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config {
            message: "no node to send the request to".into(),
        }))
    }

    /// Runs `op` against the leader of `topic`/`partition`, following leader changes and
    /// retrying retriable failures until `timeout`.
    pub(crate) async fn call_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: u32,
        what: &str,
        timeout: Duration,
        mut op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(String, NodeClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut retry = Retry::new(self, what, timeout);
        loop {
            let err = match self.leader(topic, partition).await {
                Ok((addr, node)) => match op(addr.clone(), node).await {
                    Ok(value) => return Ok(value),
                    Err(err) => {
                        self.observe_failure(topic, partition, &addr, &err);
                        err
                    }
                },
                Err(err) => err,
            };
            let redirected = self.hint_to_follow(&err).is_some();
            retry.again(err, redirected).await?;
        }
    }

    /// The offset `position` names in `topic`/`partition` (ListOffsets at the leader, except
    /// for an explicit offset).
    pub(crate) async fn resolve_position(
        &self,
        topic: &str,
        partition: u32,
        position: StartPosition,
    ) -> Result<u64, ClientError> {
        use proto::list_offsets_request::Spec;
        let spec = match position {
            StartPosition::Offset(offset) => return Ok(offset),
            StartPosition::Earliest => Spec::Earliest(true),
            StartPosition::Latest => Spec::Latest(true),
            StartPosition::Timestamp(ms) => Spec::TimestampMs(ms),
        };
        let what = format!("list offsets of {topic}/{partition}");
        let timeout = self.inner.config.retry_timeout;
        self.call_leader(topic, partition, &what, timeout, |addr, mut node| {
            let request = proto::ListOffsetsRequest {
                topic: topic.to_string(),
                partition,
                spec: Some(spec),
            };
            async move {
                let response = self.unary(&addr, node.list_offsets(request)).await?;
                ClientError::check(response.error)?;
                Ok(response.offset)
            }
        })
        .await
    }
}

/// The retry rule of requests that are not tied to one attempt: a retriable failure is tried
/// again after a doubling backoff (at once when the answer named where to go), until
/// `timeout`; then [`ClientError::Timeout`] carries the last failure.
pub(crate) struct Retry<'a> {
    client: &'a Client,
    what: &'a str,
    timeout: Duration,
    start: Instant,
    attempt: u32,
}

impl<'a> Retry<'a> {
    pub(crate) fn new(client: &'a Client, what: &'a str, timeout: Duration) -> Retry<'a> {
        Retry {
            client,
            what,
            timeout,
            start: Instant::now(),
            attempt: 0,
        }
    }

    /// After `err`: `Err` when it is final (not retriable, or out of time), else waits out
    /// the pause before the next attempt.
    pub(crate) async fn again(
        &mut self,
        err: ClientError,
        redirected: bool,
    ) -> Result<(), ClientError> {
        if !err.is_retriable() {
            return Err(err);
        }
        debug!(what = self.what, error = %err, attempt = self.attempt, "retrying");
        let pause = if redirected {
            Duration::ZERO
        } else {
            self.client.inner.config.backoff(self.attempt)
        };
        if self.start.elapsed() + pause > self.timeout {
            return Err(ClientError::Timeout {
                what: self.what.to_string(),
                elapsed: self.start.elapsed(),
                last: Some(Box::new(err)),
            });
        }
        tokio::time::sleep(pause).await;
        self.attempt += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

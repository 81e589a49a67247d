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

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use stave_proto::v1 as proto;
use stave_proto::v1::stave_client::StaveClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tracing::debug;

use crate::admin::Admin;
use crate::config::{
    ClientConfig, ConsumerConfig, MESSAGE_BYTES_MAX, ProducerConfig, StartPosition,
};
use crate::consumer::Consumer;
use crate::error::ClientError;
use crate::metadata::ClusterMetadata;
use crate::producer::Producer;

/// A gRPC client of one node.
pub(crate) type NodeClient = StaveClient<Channel>;

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
}

impl Client {
    /// Connects to the cluster through the bootstrap list and loads its metadata.
    ///
    /// When every bootstrap address refuses the connection, this fails at once with
    /// [`ClientError::Unreachable`]; a node that answers but is not ready yet is retried
    /// until `retry_timeout`.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::Config {
                message: "the bootstrap list is empty".into(),
            });
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                connections: Mutex::new(HashMap::new()),
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                refreshing: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
            }),
        };
        client.bootstrap().await?;
        Ok(client)
    }

    async fn bootstrap(&self) -> Result<(), ClientError> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let mut refused = 0;
            let mut last = None;
            for addr in &self.inner.config.bootstrap {
                match self.fetch_metadata(addr).await {
                    Ok(metadata) => {
                        self.store_metadata(metadata);
                        return Ok(());
                    }
                    Err(err) => {
                        debug!(%addr, error = %err, "bootstrap address failed");
                        if matches!(err, ClientError::Connect { .. }) {
                            refused += 1;
                        }
                        last = Some(err);
                    }
                }
            }
            let Some(last) = last else {
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

    /// A producer with `config`; with `config.idempotent` it first obtains a producer id.
    pub async fn producer(&self, config: ProducerConfig) -> Result<Producer, ClientError> {
        Producer::new(self.clone(), config).await
    }

    /// A consumer with no partition assigned yet.
    pub fn consumer(&self, config: ConsumerConfig) -> Consumer {
        Consumer::new(self.clone(), config)
    }

    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
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
        let mut last = None;
        for addr in self.candidates() {
            match self.fetch_metadata(&addr).await {
                Ok(metadata) => {
                    self.store_metadata(metadata);
                    return Ok(self.metadata());
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config {
            message: "no node to ask for metadata".into(),
        }))
    }

    async fn fetch_metadata(&self, addr: &str) -> Result<ClusterMetadata, ClientError> {
        let mut node = self.connection(addr).await?;
        let request = proto::MetadataRequest { topics: Vec::new() };
        let response = self.unary(addr, node.metadata(request)).await?;
        Ok(ClusterMetadata::from_proto(response))
    }

    /// Known nodes (the controller first), then the bootstrap addresses not among them.
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
        addrs
    }

    /// The channel to `addr`, dialled now if there is none.
    pub(crate) async fn connection(&self, addr: &str) -> Result<NodeClient, ClientError> {
        if let Some(client) = self.cached_connection(addr) {
            return Ok(client);
        }
        let config = &self.inner.config;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let client = StaveClient::new(channel)
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
        let limit = self.inner.config.request_timeout + extra;
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => {
                let err = ClientError::rpc(addr, status);
                if err.is_connection_failure() {
                    self.drop_connection(addr);
                }
                Err(err)
            }
            Err(_) => Err(ClientError::Rpc {
                addr: addr.to_string(),
                code: tonic::Code::DeadlineExceeded,
                message: format!("no answer within {} ms", limit.as_millis()),
            }),
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

    /// Acts on a failed partition request: follow a leader hint, forget a dead connection,
    /// forget a leader that is no more (the next lookup refreshes metadata).
    pub(crate) fn observe_failure(
        &self,
        topic: &str,
        partition: u32,
        addr: &str,
        err: &ClientError,
    ) {
        if let Some((leader_id, leader_addr)) = err.leader_hint() {
            self.note_leader(topic, partition, leader_id, leader_addr);
            return;
        }
        if err.is_connection_failure() {
            self.drop_connection(addr);
        }
        if err.needs_metadata_refresh() {
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

    /// The leader of `topic`/`partition`: its address and a channel to it. Refreshes metadata
    /// once when the cache knows no leader. "No leader" is LEADER_NOT_AVAILABLE (retriable).
    pub(crate) async fn leader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<(String, NodeClient), ClientError> {
        let mut metadata = self.metadata();
        if metadata.leader_addr(topic, partition).is_none() {
            metadata = self.refresh_metadata().await?;
        }
        let Some(info) = metadata.topic(topic) else {
            return Err(ClientError::UnknownTopic {
                topic: topic.to_string(),
            });
        };
        if info.partition(partition).is_none() {
            return Err(ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: info.partition_count(),
            });
        }
        let Some(addr) = metadata.leader_addr(topic, partition) else {
            return Err(ClientError::Broker {
                code: proto::ErrorCode::LeaderNotAvailable,
                message: format!("no leader for {topic}/{partition} yet"),
                leader_id: None,
                leader_addr: None,
            });
        };
        let addr = addr.to_string();
        let node = self.connection(&addr).await?;
        Ok((addr, node))
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
                    if let Err(err) = &result {
                        if err.is_connection_failure() {
                            failed.insert(addr);
                        }
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
            if let Some((_, addr)) = err.leader_hint() {
                redirect = Some(addr.to_string());
            } else if err.needs_metadata_refresh() {
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
            let redirected = err.leader_hint().is_some();
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

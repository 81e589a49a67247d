//! Starting nodes and talking to them.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use stave_broker::cluster_secret::ClusterSecret;
use stave_broker::{BrokerConfig, Running};
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Node {
    pub id: u64,
    pub addr: String,
    /// The cluster's shared secret (the same for every node of a cluster).
    pub secret: ClusterSecret,
    /// Dropping it stops the node.
    pub _running: Running,
    pub _dir: tempfile::TempDir,
}

impl Node {
    /// The node's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// `count` nodes forming one cluster, each on its own loopback port.
pub async fn cluster(count: u64) -> Vec<Node> {
    cluster_with(count, |_| {}).await
}

/// [`cluster`], each node's config changed by `tweak` before it starts.
pub async fn cluster_with(count: u64, tweak: impl Fn(&mut BrokerConfig)) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..count {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let peers: BTreeMap<u64, String> = (1..)
        .zip(&listeners)
        .map(|(id, l)| (id, l.local_addr().unwrap().to_string()))
        .collect();
    // One secret per cluster, as an operator gives every node the same one.
    let secret = ClusterSecret::generate();
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        let dir = tempfile::tempdir().unwrap();
        let addr = peers[&id].clone();
        let mut config = BrokerConfig::single_node(dir.path().to_path_buf(), addr.clone());
        config.node_id = id;
        if count > 1 {
            config.peers = peers.clone();
        }
        config.cluster_secret = Some(secret.clone());
        config.retention_check_ms = 200;
        tweak(&mut config);
        // Tests run in parallel: none takes the default metrics port.
        config.metrics_listen = stave_broker::metrics::MetricsListen::Off;
        let running = stave_broker::spawn(listener, config);
        nodes.push(Node {
            id,
            addr,
            secret: secret.clone(),
            _running: running,
            _dir: dir,
        });
    }
    nodes
}

pub async fn client(addr: &str) -> StaveClient<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    StaveClient::new(endpoint.connect_lazy())
}

/// Retries `call` while the answer is a retriable error (or the node is not serving yet).
pub async fn retry<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = std::time::Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(err) => assert!(
                started.elapsed() < WAIT,
                "still failing after {WAIT:?}: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn code(error: &Option<pb::Error>) -> pb::ErrorCode {
    error.as_ref().map_or(pb::ErrorCode::None, |e| {
        pb::ErrorCode::try_from(e.code).unwrap()
    })
}

pub fn retriable(code: pb::ErrorCode) -> bool {
    matches!(
        code,
        pb::ErrorCode::NotLeader
            | pb::ErrorCode::LeaderNotAvailable
            | pb::ErrorCode::RequestTimedOut
            | pb::ErrorCode::UnknownTopic
            | pb::ErrorCode::DuplicateInFlight
    )
}

/// Creates `name` through `addr`, retrying until the cluster can.
pub async fn create_topic(
    addr: &str,
    name: &str,
    partitions: u32,
    replication: u32,
    configs: &[(&str, &str)],
) {
    let client = client(addr).await;
    retry(|| {
        let mut client = client.clone();
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::TopicSpec {
                name: name.into(),
                partitions,
                replication_factor: replication,
                configs: configs
                    .iter()
                    .map(|(k, v)| pb::ConfigEntry {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            }],
        };
        async move {
            let response = client
                .create_topics(request)
                .await
                .map_err(|e| e.to_string())?;
            let result = &response.into_inner().results[0];
            match code(&result.error) {
                pb::ErrorCode::None => Ok(()),
                other => Err(format!("{other:?}: {:?}", result.error)),
            }
        }
    })
    .await;
}

pub fn batch(values: &[&str], producer: ProducerFields) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.producer(producer);
    for value in values {
        builder.push(&Record {
            timestamp: now_ms(),
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        });
    }
    Bytes::from(builder.finish())
}

/// Produces `batch` to the partition's leader, following NOT_LEADER hints and retrying
/// retriable errors.
pub async fn produce(addr: &str, topic: &str, partition: u32, batch: Bytes) -> pb::ProduceResponse {
    let started = std::time::Instant::now();
    let mut target = addr.to_string();
    loop {
        let response = try_produce(&target, topic, partition, batch.clone()).await;
        match response {
            Ok(response) => match code(&response.error) {
                pb::ErrorCode::None => return response,
                c if retriable(c) => {
                    if let Some(e) = &response.error
                        && !e.leader_addr.is_empty()
                    {
                        target = e.leader_addr.clone();
                    }
                }
                other => panic!("produce failed: {other:?} {:?}", response.error),
            },
            Err(_) => target = addr.to_string(),
        }
        assert!(
            started.elapsed() < WAIT,
            "no leader took the batch in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One produce request to `addr`, answered as it is.
pub async fn try_produce(
    addr: &str,
    topic: &str,
    partition: u32,
    batch: Bytes,
) -> Result<pb::ProduceResponse, tonic::Status> {
    let mut client = client(addr).await;
    Ok(client
        .produce(pb::ProduceRequest {
            sequence: 0,
            topic: topic.into(),
            partition,
            batch,
        })
        .await?
        .into_inner())
}

/// The values of every record in a fetch response.
pub fn values(batches: &Bytes) -> Vec<String> {
    let mut out = Vec::new();
    for frame in stave_log::batch::BatchView::split(batches) {
        let view = frame.unwrap();
        for record in view.records() {
            let record = record.unwrap();
            out.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

/// Now, in epoch milliseconds (records older than a topic's `retention.ms` would go).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits until every partition of `topic` has a leader, as `addr` reports it.
pub async fn wait_for_leaders(addr: &str, topic: &str) {
    retry(|| async {
        let metadata = client(addr)
            .await
            .metadata(pb::MetadataRequest {
                topics: vec![topic.to_string()],
            })
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        let partitions = &metadata.topics.first().ok_or("no topic")?.partitions;
        match partitions.iter().find(|p| p.leader.is_none()) {
            None if !partitions.is_empty() => Ok(()),
            None => Err("no partitions yet".to_string()),
            Some(p) => Err(format!("partition {} has no leader", p.partition)),
        }
    })
    .await;
}

/// What a [`Proxy`] does with the bytes of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Both ways passed on.
    Open,
    /// The client's bytes reach the node; the node's answers are lost.
    Deaf,
    /// Nothing passed on, nothing closed: a link that died without a word.
    Silent,
    /// Every connection closed.
    Cut,
}

/// A TCP proxy on a loopback port in front of `target`, whose links can be made to fail.
pub struct Proxy {
    pub addr: String,
    link: tokio::sync::watch::Sender<Link>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (link, watch) = tokio::sync::watch::channel(Link::Open);
        let target = target.to_string();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(node) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (node_read, node_write) = node.into_split();
                tokio::spawn(pass(client_read, node_write, watch.clone(), Link::Deaf));
                tokio::spawn(pass(node_read, client_write, watch.clone(), Link::Open));
            }
        });
        Proxy {
            addr,
            link,
            accepting,
        }
    }

    /// What the proxy does from now on (to connections open now and later).
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.link.send_replace(Link::Cut);
    }
}

/// Copies one direction of a proxied connection; passes bytes on while the link is `Open`
/// (or `also`), swallows them otherwise, and closes both ends once it is `Cut`.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: tokio::sync::watch::Receiver<Link>,
    also: Link,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = link.wait_for(|link| *link == Link::Cut) => return,
        };
        let Ok(read @ 1..) = read else { return };
        let now = *link.borrow();
        if (now == Link::Open || now == also) && to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

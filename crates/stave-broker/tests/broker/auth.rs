//! Principals and ACLs on nodes started with `--auth required`: tokens, the bootstrap admin,
//! what each operation needs, pattern subscriptions filtered, revocation closing open
//! streams, and ACLs replicated and kept across a full restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stave_broker::auth::AuthMode;
use stave_broker::auth::users::BOOTSTRAP_TOKEN_FILE;
use stave_broker::cluster_secret::ClusterSecret;
use stave_broker::metrics::MetricsListen;
use stave_broker::{BrokerConfig, Running};
use stave_client::Credentials;
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tokio::sync::mpsc;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{WAIT, code};

type Api = StaveClient<InterceptedService<Channel, Credentials>>;

/// Nodes with auth required on fixed addresses and directories, so they can be restarted.
struct Cluster {
    configs: Vec<BrokerConfig>,
    /// Where each node serves its metrics.
    metrics: Vec<String>,
    running: Vec<Running>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start(count: u64) -> Cluster {
        let secret = ClusterSecret::generate();
        let mut listeners = Vec::new();
        for _ in 0..count {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let peers: std::collections::BTreeMap<u64, String> = (1..)
            .zip(&listeners)
            .map(|(id, l)| (id, l.local_addr().unwrap().to_string()))
            .collect();
        let mut configs = Vec::new();
        let mut dirs = Vec::new();
        let mut metrics = Vec::new();
        for id in 1..=count {
            let dir = tempfile::tempdir().unwrap();
            let mut config = BrokerConfig::single_node(dir.path().into(), peers[&id].clone());
            config.node_id = id;
            if count > 1 {
                config.peers = peers.clone();
            }
            config.cluster_secret = Some(secret.clone());
            config.auth = AuthMode::Required;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            metrics.push(listener.local_addr().unwrap().to_string());
            config.metrics_listen = MetricsListen::bound(listener).unwrap();
            configs.push(config);
            dirs.push(dir);
        }
        let running = configs
            .iter()
            .zip(listeners)
            .map(|(config, listener)| stave_broker::spawn(listener, config.clone()))
            .collect();
        Cluster {
            configs,
            metrics,
            running,
            _dirs: dirs,
        }
    }

    fn addr(&self, index: usize) -> &str {
        &self.configs[index].listen
    }

    /// Stops every node, then starts them again on the same addresses and data.
    async fn restart(&mut self) {
        for running in self.running.drain(..) {
            running.stop().await.unwrap();
        }
        for (config, metrics) in self.configs.iter().zip(&self.metrics) {
            let listener = tokio::net::TcpListener::bind(&config.listen).await.unwrap();
            let mut config = config.clone();
            config.metrics_listen = metrics.parse().unwrap();
            self.running.push(stave_broker::spawn(listener, config));
        }
    }

    /// The bootstrap admin's token, once the node leading the controller wrote it.
    async fn admin_token(&self) -> String {
        let files: Vec<PathBuf> = self
            .configs
            .iter()
            .map(|c| c.data_dir.join(BOOTSTRAP_TOKEN_FILE))
            .collect();
        until("a bootstrap admin token", || {
            files
                .iter()
                .find_map(|file| std::fs::read_to_string(file).ok())
                .map(|token| token.trim().to_string())
        })
        .await
    }
}

/// Polls `found` (every 50 ms, at most [`WAIT`]) until it gives a value.
async fn until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(started.elapsed() < WAIT, "no {what} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn api(addr: &str, credentials: Credentials) -> Api {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    StaveClient::with_interceptor(channel, credentials)
}

fn as_user(addr: &str, token: &str) -> Api {
    api(addr, Credentials::token(token).unwrap())
}

/// Retries `call` while the cluster is forming (no leader yet, a node starting).
async fn settled<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Err(status) if status.code() == Code::Unavailable && started.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

async fn create_user(admin: &Api, name: &str) -> String {
    let answer = settled(|| {
        let mut admin = admin.clone();
        let name = name.to_string();
        async move { admin.create_user(pb::CreateUserRequest { name }).await }
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
    answer.token
}

async fn grant(admin: &Api, principal: &str, resource: &str, operation: &str) {
    let entry = pb::AclEntry {
        principal: principal.into(),
        resource: resource.into(),
        operation: operation.into(),
    };
    let answer = admin
        .clone()
        .add_acl(pb::AclRequest { entry: Some(entry) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
}

async fn revoke(admin: &Api, principal: &str, resource: &str, operation: &str) {
    let entry = pb::AclEntry {
        principal: principal.into(),
        resource: resource.into(),
        operation: operation.into(),
    };
    let answer = admin
        .clone()
        .remove_acl(pb::AclRequest { entry: Some(entry) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
}

async fn create_topics(admin: &Api, names: &[&str]) {
    for name in names {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::TopicSpec {
                name: name.to_string(),
                partitions: 1,
                ..Default::default()
            }],
        };
        let answer = admin.clone().create_topics(request).await.unwrap();
        let result = &answer.into_inner().results[0];
        assert_eq!(code(&result.error), pb::ErrorCode::None, "{result:?}");
    }
}

fn record(topic: &str, value: &str) -> pb::PublishRecord {
    pb::PublishRecord {
        topic: topic.into(),
        value: value.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

/// Publishes one record, retrying while its partition has no leader yet.
async fn publish(api: &Api, topic: &str, value: &str) -> Result<(), tonic::Status> {
    let started = Instant::now();
    loop {
        let request = pb::PublishRequest {
            records: vec![record(topic, value)],
            sequence: 0,
        };
        let answer = api.clone().publish(request).await?.into_inner();
        match code(&answer.results[0].error) {
            pb::ErrorCode::None => return Ok(()),
            other if crate::support::retriable(other) && started.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("publish to {topic}: {other:?}"),
        }
    }
}

async fn latest(admin: &Api, topic: &str) -> u64 {
    let request = pb::ListOffsetsRequest {
        topic: topic.into(),
        partition: 0,
        spec: Some(pb::list_offsets_request::Spec::Latest(true)),
    };
    admin
        .clone()
        .list_offsets(request)
        .await
        .unwrap()
        .into_inner()
        .offset
}

fn denied(result: Result<impl std::fmt::Debug, tonic::Status>, operation: &str, resource: &str) {
    let status = result.expect_err("the call was allowed");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(operation) && status.message().contains(resource),
        "the refusal names {operation} and {resource}: {}",
        status.message()
    );
}

/// A Consume stream's pushed messages.
struct Stream {
    _requests: mpsc::Sender<pb::ConsumeRequest>,
    pushed: tonic::Streaming<pb::ConsumeResponse>,
}

async fn consume(api: &Api, topics: &[&str], group: &str) -> Stream {
    let (requests, receiver) = mpsc::channel(4);
    requests
        .send(pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Subscribe(pb::Subscribe {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                group: group.into(),
                start: Some(pb::subscribe::Start::Earliest(true)),
                ..Default::default()
            })),
        })
        .await
        .unwrap();
    requests
        .send(pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Credit(pb::Credit {
                records: 1000,
                bytes: 0,
            })),
        })
        .await
        .unwrap();
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let pushed = api.clone().consume(stream).await.unwrap().into_inner();
    Stream {
        _requests: requests,
        pushed,
    }
}

/// Scenario: one node with auth required; the bootstrap admin makes two users and grants
/// `svc` produce on `v1.user.*` and `reader` consume on `v1.user.#` and group `readers`.
/// Proves: anonymous and unknown-token calls are refused UNAUTHENTICATED (health answers
/// anyone); svc publishes to v1.user.signedup but not to v1.order.placed (PERMISSION_DENIED
/// naming produce and the topic, nothing written); svc may neither delete a topic nor
/// create a user nor join a group nor fetch; reader's pattern subscription `v1.#` reads
/// only v1.user.signedup; its Metadata lists only what it may describe; revoking reader's
/// ACL closes its open stream with PERMISSION_DENIED within a second; a deleted user's
/// token stops working at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_decide_what_each_principal_may_do() {
    let cluster = Cluster::start(1).await;
    let addr = cluster.addr(0).to_string();
    let admin = as_user(&addr, &cluster.admin_token().await);
    let anonymous = api(&addr, Credentials::none());
    let refused = anonymous
        .clone()
        .metadata(pb::MetadataRequest::default())
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    let forged = as_user(&addr, "stave_not-a-token");
    let refused = forged
        .clone()
        .metadata(pb::MetadataRequest::default())
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(health.is_ok(), "{health:?}");

    let svc = as_user(&addr, &create_user(&admin, "svc").await);
    let reader = as_user(&addr, &create_user(&admin, "reader").await);
    create_topics(&admin, &["v1.user.signedup", "v1.order.placed"]).await;
    grant(&admin, "svc", "topic:v1.user.*", "produce").await;
    grant(&admin, "reader", "topic:v1.user.#", "consume").await;
    grant(&admin, "reader", "group:readers", "consume").await;

    publish(&svc, "v1.user.signedup", "alice").await.unwrap();
    denied(
        publish(&svc, "v1.order.placed", "x").await,
        "produce",
        "v1.order.placed",
    );
    assert_eq!(
        latest(&admin, "v1.order.placed").await,
        0,
        "nothing written"
    );
    publish(&admin, "v1.order.placed", "order-1").await.unwrap();
    let delete = pb::DeleteTopicsRequest {
        names: vec!["v1.user.signedup".into()],
    };
    denied(
        svc.clone().delete_topics(delete).await,
        "admin",
        "v1.user.signedup",
    );
    let create = pb::CreateUserRequest { name: "eve".into() };
    denied(svc.clone().create_user(create).await, "admin", "cluster");
    let join = pb::GroupHeartbeatRequest {
        group: "readers".into(),
        subscription: vec!["v1.user.signedup".into()],
        ..Default::default()
    };
    denied(
        svc.clone().group_heartbeat(join).await,
        "consume",
        "readers",
    );
    let fetch = pb::FetchRequest {
        topic: "v1.user.signedup".into(),
        max_bytes: 1 << 20,
        ..Default::default()
    };
    denied(
        svc.clone().fetch(fetch).await,
        "consume",
        "v1.user.signedup",
    );

    let listed = reader
        .clone()
        .metadata(pb::MetadataRequest::default())
        .await;
    let names: BTreeSet<String> = listed
        .unwrap()
        .into_inner()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, BTreeSet::from(["v1.user.signedup".to_string()]));

    let mut stream = consume(&reader, &["v1.#"], "readers").await;
    let mut read = Vec::new();
    let started = Instant::now();
    while read.is_empty() {
        assert!(started.elapsed() < WAIT, "nothing read");
        let message = tokio::time::timeout(WAIT, stream.pushed.message()).await;
        let response = message.unwrap().unwrap().unwrap().response;
        if let Some(pb::consume_response::Response::Records(records)) = response {
            read.extend(records.records.into_iter().map(|r| r.topic));
        }
    }
    assert!(read.iter().all(|t| t == "v1.user.signedup"), "{read:?}");

    revoke(&admin, "reader", "topic:v1.user.#", "consume").await;
    let revoked = Instant::now();
    let status = loop {
        let message = tokio::time::timeout(WAIT, stream.pushed.message()).await;
        match message.unwrap() {
            Err(status) => break status,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
        }
    };
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        revoked.elapsed() < Duration::from_secs(1),
        "{:?}",
        revoked.elapsed()
    );

    let delete = pb::DeleteUserRequest { name: "svc".into() };
    let answer = admin
        .clone()
        .delete_user(delete)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None);
    let refused = publish(&svc, "v1.user.signedup", "bob").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    let (_, scraped) = crate::metrics::http_get(&cluster.metrics[0], "GET", "/metrics").await;
    let count = |code: &str| {
        let series = format!("stave_auth_denials_total{{code=\"{code}\"}}");
        crate::metrics::value(&scraped, &series).unwrap_or_default()
    };
    assert!(count("UNAUTHENTICATED") >= 3.0, "{scraped}");
    assert!(count("PERMISSION_DENIED") >= 6.0, "{scraped}");
}

/// Whether `token`'s user may publish to `topic` through `addr` (PERMISSION_DENIED: no).
async fn may_publish(addr: &str, token: &str, topic: &str) -> bool {
    match publish(&as_user(addr, token), topic, "x").await {
        Ok(()) => true,
        Err(status) if status.code() == Code::PermissionDenied => false,
        Err(status) => panic!("{status:?}"),
    }
}

/// Scenario: three nodes with auth required; through node 1 the admin creates a user and
/// grants it produce on a topic; then every node is stopped and started again. Proves: the
/// grant is enforced through node 3 (replicated), and after the full restart the user's
/// token and ACL still work, and the admin's ACL changes made before it still hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_changes_replicate_and_survive_a_full_restart() {
    let mut cluster = Cluster::start(3).await;
    let token = cluster.admin_token().await;
    let admin = as_user(cluster.addr(0), &token);
    create_topics(&admin, &["v1.audit"]).await;
    let svc = create_user(&admin, "svc").await;
    let far = cluster.addr(2).to_string();
    assert!(!may_publish(&far, &svc, "v1.audit").await);
    grant(&admin, "svc", "topic:v1.audit", "produce").await;
    let started = Instant::now();
    while !may_publish(&far, &svc, "v1.audit").await {
        assert!(started.elapsed() < WAIT, "the grant never reached node 3");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.restart().await;
    for index in 0..3 {
        assert!(may_publish(cluster.addr(index), &svc, "v1.audit").await);
    }
    let admin = as_user(cluster.addr(1), &token);
    revoke(&admin, "svc", "topic:v1.audit", "produce").await;
    assert!(!may_publish(cluster.addr(1), &svc, "v1.audit").await);
    assert!(
        Path::new(&cluster.configs[0].data_dir).exists(),
        "the data survived"
    );
}

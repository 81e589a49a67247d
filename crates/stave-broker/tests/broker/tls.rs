//! TLS: nodes given a certificate (made by the dev-certs code) serve clients and each other
//! over TLS only; clients must trust the CA; a client certificate is optional, must chain to
//! the CA when presented, and its CN is the client's principal.

use std::path::Path;
use std::time::{Duration, Instant};

use stave_broker::tls::TlsFiles;
use stave_broker::tls::dev_certs::{CertAndKey, DevCerts};
use stave_client::{
    Client, ClientConfig, ConsumerConfig, NewTopic, ProducerConfig, ProducerRecord, QueueConsumer,
    StartPosition, TlsConfig, display_chain,
};
use stave_proto::internal::raft as rpb;
use stave_proto::internal::raft::raft_control_client::RaftControlClient;

use crate::support::{Node, WAIT, cluster_with};

/// How long a client that cannot succeed keeps trying before it reports.
const GIVE_UP: Duration = Duration::from_secs(2);

/// A cluster whose nodes have TLS, and the certificates they were made with.
struct TlsCluster {
    nodes: Vec<Node>,
    certs: DevCerts,
    _dir: tempfile::TempDir,
}

fn write_pair(
    dir: &Path,
    name: &str,
    pair: &CertAndKey,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (cert, key)
}

/// `count` nodes sharing one node certificate (SANs localhost, 127.0.0.1, ::1).
async fn tls_cluster(count: u64) -> TlsCluster {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCerts::generate(&[], "admin").unwrap();
    let (ca, _) = write_pair(dir.path(), "ca", &certs.ca);
    let (cert, key) = write_pair(dir.path(), "node", &certs.node);
    let files = TlsFiles { cert, key, ca };
    let nodes = cluster_with(count, |config| config.tls = Some(files.clone())).await;
    TlsCluster {
        nodes,
        certs,
        _dir: dir,
    }
}

impl TlsCluster {
    /// Trusts the cluster's CA; no client certificate.
    fn trust(&self) -> TlsConfig {
        TlsConfig::new(self.certs.ca.cert_pem.clone()).unwrap()
    }

    /// Trusts the cluster's CA and presents the client certificate (CN `admin`).
    fn trust_as_admin(&self) -> TlsConfig {
        self.trust()
            .with_identity(
                self.certs.client.cert_pem.clone(),
                self.certs.client.key_pem.clone(),
            )
            .unwrap()
    }
}

fn config(addr: &str, tls: Option<TlsConfig>) -> ClientConfig {
    ClientConfig {
        bootstrap: vec![addr.to_string()],
        tls,
        ..ClientConfig::default()
    }
}

/// Fails to connect within a short retry bound; the error as one line.
async fn connect_error(addr: &str, tls: Option<TlsConfig>) -> String {
    let started = Instant::now();
    let config = ClientConfig {
        retry_timeout: GIVE_UP,
        ..config(addr, tls)
    };
    let err = Client::connect(config).await.unwrap_err();
    assert!(started.elapsed() < WAIT, "took {:?}", started.elapsed());
    display_chain(&err)
}

/// Scenario: one TLS node; a client that trusts its CA creates a topic, produces three
/// records and reads them back with a consumer, then a queue group member (whose node-side
/// stream reads through the node's own client, also over TLS) takes them. Proves: the public
/// API works end to end over TLS, and the node's client of itself trusts its certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trusts_the_ca_produces_and_fetches() {
    let cluster = tls_cluster(1).await;
    let addr = &cluster.nodes[0].addr;
    let client = Client::connect(config(addr, Some(cluster.trust())))
        .await
        .unwrap();
    client
        .admin()
        .create_topic(NewTopic::new("v1.secret.kept", 1))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for value in ["ada", "bob", "cy"] {
        producer
            .send(ProducerRecord::new("v1.secret.kept", value))
            .await
            .unwrap();
    }
    producer.close().await;

    let mut consumer = client.consumer(ConsumerConfig::default());
    consumer
        .assign_topic("v1.secret.kept", StartPosition::Earliest)
        .await
        .unwrap();
    let mut values = Vec::new();
    for _ in 0..3 {
        let record = tokio::time::timeout(WAIT, consumer.next()).await.unwrap();
        values.push(record.unwrap().value.unwrap());
    }
    assert_eq!(values, ["ada", "bob", "cy"]);

    let queue = stave_client::QueueConfig {
        start: StartPosition::Earliest,
        ..stave_client::QueueConfig::default()
    };
    let mut member = QueueConsumer::join(&client, "workers", &["v1.secret.kept"], queue)
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, member.next()).await.unwrap();
    assert_eq!(first.unwrap().record.value.unwrap(), "ada");
    member.close().await.unwrap();
}

/// Scenario: clients that get TLS wrong. Proves: one trusting another CA fails at once with
/// an error that says the node's certificate is not trusted; a plaintext client fails too
/// (the node speaks only TLS); a client certificate from another CA is refused by the node,
/// while the right one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_get_tls_wrong_are_refused_with_clear_errors() {
    let cluster = tls_cluster(1).await;
    let addr = &cluster.nodes[0].addr;
    // Ready first, so the failures below are TLS's and not a node still starting.
    Client::connect(config(addr, Some(cluster.trust_as_admin())))
        .await
        .unwrap();

    let stranger = DevCerts::generate(&[], "mallory").unwrap();
    let other_ca = TlsConfig::new(stranger.ca.cert_pem.clone()).unwrap();
    let err = connect_error(addr, Some(other_ca)).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "not a clear refusal: {err}"
    );
    assert!(
        err.starts_with(&format!("no broker reachable at {addr}")),
        "{err}"
    );

    let err = connect_error(addr, None).await;
    assert!(err.contains(addr.as_str()), "{err}");

    let foreign_identity = cluster
        .trust()
        .with_identity(stranger.client.cert_pem, stranger.client.key_pem)
        .unwrap();
    // TLS 1.3: the client finishes its handshake before the node checks its certificate,
    // so the refusal comes with the first request, as the node's alert (UnknownCA) or, when
    // the request was written before the alert was read, as the connection it closed.
    let err = connect_error(addr, Some(foreign_identity)).await;
    assert!(
        err.contains("received fatal alert: UnknownCA")
            || err.contains("connection closed")
            || err.contains("broken pipe"),
        "{err}"
    );
}

/// Scenario: three TLS nodes (one certificate with 127.0.0.1 among its SANs) elect their
/// leaders over TLS, take a topic of replication factor 3 and acknowledge writes (committed
/// on a majority), which a consumer reads back; then a plaintext RaftControl call and a TLS
/// one without the cluster secret are made to the cluster port. Proves: Raft and forwarded
/// calls run over TLS between nodes; plaintext cannot even reach the Raft services; TLS does
/// not replace the cluster secret (UNAUTHENTICATED without it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_replicates_and_its_cluster_port_refuses_plaintext() {
    let cluster = tls_cluster(3).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let client = Client::connect(ClientConfig {
        bootstrap: addrs.clone(),
        retry_timeout: WAIT,
        ..config(&addrs[0], Some(cluster.trust()))
    })
    .await
    .unwrap();
    client
        .admin()
        .create_topic(NewTopic::new("v1.replicated.safely", 2).replication_factor(3))
        .await
        .unwrap();
    let described = client
        .admin()
        .describe_topic("v1.replicated.safely")
        .await
        .unwrap();
    assert_eq!(described.replication_factor(), 3);
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..20 {
        let record = ProducerRecord::new("v1.replicated.safely", i.to_string()).key(i.to_string());
        producer.send(record).await.unwrap();
    }
    producer.close().await;
    let mut consumer = client.consumer(ConsumerConfig::default());
    consumer
        .assign_topic("v1.replicated.safely", StartPosition::Earliest)
        .await
        .unwrap();
    for _ in 0..20 {
        tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap()
            .unwrap();
    }

    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{}", addrs[1]))
        .unwrap()
        .connect_timeout(GIVE_UP);
    let mut control = RaftControlClient::new(plaintext.connect_lazy());
    let call = control.hello(rpb::HelloRequest { node_id: 2 });
    let answer = tokio::time::timeout(WAIT, call).await.unwrap();
    assert!(answer.is_err(), "a plaintext Raft call was answered");

    let node_identity = cluster
        .trust()
        .with_identity(
            cluster.certs.node.cert_pem.clone(),
            cluster.certs.node.key_pem.clone(),
        )
        .unwrap();
    let secure = stave_client::tls::endpoint(&addrs[1], Some(&node_identity)).unwrap();
    let mut control = RaftControlClient::new(secure.connect_lazy());
    let call = control.hello(rpb::HelloRequest { node_id: 2 });
    let status = tokio::time::timeout(WAIT, call).await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
}

/// Scenario: a server set up as a node's is (its `TcpIncoming`, the node's TLS config)
/// reports the principal of each call through an interceptor; a client calls it with the
/// `admin` certificate, then without one. Proves: `peer_common_name` sees the client
/// certificate's CN through the node's accept path, and `None` without a certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_certificate_cn_is_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCerts::generate(&[], "admin").unwrap();
    let (ca, _) = write_pair(dir.path(), "ca", &certs.ca);
    let (cert, key) = write_pair(dir.path(), "node", &certs.node);
    let node_tls = stave_broker::tls::NodeTls::load(&TlsFiles { cert, key, ca }).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (seen, mut principals) = tokio::sync::mpsc::unbounded_channel();
    let (_, health) = tonic_health::server::health_reporter();
    let health = tonic::service::interceptor::InterceptedService::new(
        health,
        move |request: tonic::Request<()>| {
            let _ = seen.send(stave_broker::tls::peer_common_name(&request));
            Ok(request)
        },
    );
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(node_tls.server_config())
            .unwrap()
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    let trust = TlsConfig::new(certs.ca.cert_pem.clone()).unwrap();
    let admin = trust
        .clone()
        .with_identity(certs.client.cert_pem.clone(), certs.client.key_pem.clone())
        .unwrap();
    for (tls, principal) in [(admin, Some("admin")), (trust, None)] {
        let channel = stave_client::tls::endpoint(&addr, Some(&tls))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest::default();
        tokio::time::timeout(WAIT, health.check(request))
            .await
            .unwrap()
            .unwrap();
        let seen = principals.recv().await.unwrap();
        assert_eq!(seen.as_deref(), principal);
    }
    server.abort();
}

/// A CreateTopics call over TLS as `tls` presents itself: the status of a refusal, or the
/// answer's error code.
async fn create_topic_as(addr: &str, tls: &TlsConfig, name: &str) -> Result<i32, tonic::Status> {
    use stave_proto::v1 as pb;
    let channel = stave_client::tls::endpoint(addr, Some(tls))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut api = stave_proto::v1::stave_client::StaveClient::new(channel);
    let request = pb::CreateTopicsRequest {
        topics: vec![pb::TopicSpec {
            name: name.into(),
            partitions: 1,
            replication_factor: 1,
            configs: vec![],
        }],
    };
    let answer = tokio::time::timeout(WAIT, api.create_topics(request))
        .await
        .unwrap()?;
    Ok(answer.into_inner().results[0]
        .error
        .as_ref()
        .map_or(0, |error| error.code))
}

/// Scenario: a TLS node with `--auth required`; the client certificate with CN `admin`
/// (the bootstrap admin's name), the node's own certificate used as a client's (CN `stave
/// node`, granted nothing), and no certificate at all each try to create a topic. Proves: a
/// client certificate's CN is the principal ACLs decide for, and without one (or a token)
/// the call is refused UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_a_principal_under_auth() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCerts::generate(&[], "admin").unwrap();
    let (ca, _) = write_pair(dir.path(), "ca", &certs.ca);
    let (cert, key) = write_pair(dir.path(), "node", &certs.node);
    let files = TlsFiles { cert, key, ca };
    let nodes = cluster_with(1, |config| {
        config.tls = Some(files.clone());
        config.auth = stave_broker::auth::AuthMode::Required;
    })
    .await;
    let addr = &nodes[0].addr;
    let trust = TlsConfig::new(certs.ca.cert_pem.clone()).unwrap();
    let admin = trust
        .clone()
        .with_identity(certs.client.cert_pem.clone(), certs.client.key_pem.clone())
        .unwrap();
    let stranger = trust
        .clone()
        .with_identity(certs.node.cert_pem.clone(), certs.node.key_pem.clone())
        .unwrap();

    // The bootstrap admin (and its ACL) is written once the controller has a leader.
    let started = Instant::now();
    loop {
        match create_topic_as(addr, &admin, "v1.made.by.cert").await {
            Ok(0) => break,
            other => assert!(started.elapsed() < WAIT, "admin never could: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let denied = create_topic_as(addr, &stranger, "v1.not.yours").await;
    assert_eq!(
        denied.unwrap_err().code(),
        tonic::Code::PermissionDenied,
        "CN `stave node` holds no ACL"
    );
    let anonymous = create_topic_as(addr, &trust, "v1.nobody").await;
    assert_eq!(anonymous.unwrap_err().code(), tonic::Code::Unauthenticated);
}

//! `stave-broker`: a Stave node. The public gRPC API (`proto/stave/v1`) over the node's Raft
//! groups (`stave_raft::node::RaftNode`), one file per request family behind a thin edge:
//!
//! - [`grpc`]: the edge. Handlers decode, call the domain, encode; proto types stop there.
//! - [`produce`], [`fetch`]: the data path (produce to partition leaders, answered once a
//!   majority committed; fetch committed data with long-polling; offsets).
//! - [`admin`]: topics and producer ids through the controller; the cluster's picture.
//! - [`consumer_group`]: coordinators, membership, the assignor, patterns.
//! - [`routing`]: targets, leaders, leaderships gathered from every node.
//! - [`topic_config`], [`placement`], [`housekeeping`]: topic settings, where replicas go,
//!   the periodic retention and compaction.
//! - [`tls`]: TLS for clients and peers, the client certificate's principal, dev
//!   certificates, the plaintext warning.
//!
//! [`run`] is what `stave server` calls.

mod admin;
pub mod auth;
mod broker;
pub mod cluster_secret;
pub mod config;
mod consume;
pub mod consumer_group;
mod dedupe;
mod error;
mod fetch;
mod grpc;
mod housekeeping;
mod leaderships;
pub mod metrics;
mod placement;
mod produce;
mod publish;
pub mod queue;
mod routing;
pub mod tls;
mod topic_config;

use std::future::Future;
use std::time::Duration;

pub use config::BrokerConfig;
pub use error::BrokerError;
use stave_proto::v1::stave_server::StaveServer;
use tonic::service::interceptor::InterceptedService;

use config::CLIENT_MESSAGE_BYTES_MAX;

/// How long a shutdown waits for connections to finish before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the node pings a connection that sent nothing, and how long it waits for the
/// answer before it closes it (a Consume stream on a dead connection is found within twice
/// this: the group's session timeout).
const CONNECTION_PROBE: Duration = Duration::from_secs(5);

/// Binds `config.listen` and serves until `shutdown` resolves.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| BrokerError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    serve(listener, config, shutdown).await
}

/// Serves on `listener` (bound by the caller) until `shutdown` resolves: the node's Raft
/// services and the public API on one port. On shutdown it stops accepting, lets requests
/// in flight finish (at most a few seconds), then stops every Raft group (their logs are
/// synced as they close).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    // Bound before the node starts: an explicit metrics address that is taken stops it here.
    let metrics_listener = metrics::bind(&config.metrics_listen)?;
    let broker = broker::Broker::start(config).await?;
    let _metrics = metrics::serve(&broker, metrics_listener);
    let node = broker.node().clone();
    // Tasks that run while the node serves: retention and the rest, and the plaintext
    // warning when it is due.
    let mut background = vec![tokio::spawn(housekeeping::housekeeping_loop(
        broker.clone(),
    ))];
    background.extend(plaintext_warning(&broker));
    let stop_background = || background.iter().for_each(tokio::task::JoinHandle::abort);
    if broker.config().auth == auth::AuthMode::Required {
        let broker = broker.clone();
        tokio::spawn(async move { broker.bootstrap_admin().await });
    }
    let (control, data) = node.services();
    let api = StaveServer::from_arc(broker.clone())
        .max_decoding_message_size(CLIENT_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(CLIENT_MESSAGE_BYTES_MAX);
    // Every call to the public service and reflection is authenticated first (health is
    // not: it always answers).
    let api = InterceptedService::new(api, auth::Authenticator::new(broker.auth.clone()));
    let describing = || auth::Authenticator::describing_the_cluster(broker.auth.clone());
    // `Server::tcp_nodelay` covers only listeners tonic binds itself: set it on the accepted
    // sockets here, or small answers wait out Nagle's algorithm and delayed ACKs (~40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<StaveServer<broker::Broker>>().await;
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = broker.tls() {
        // TLS wraps the accepted sockets above; the connection keeps its TCP and TLS connect
        // info, so `Request::peer_certs` (and `tls::peer_common_name`) see the client's.
        builder = builder.tls_config(tls.server_config())?;
    }
    let server = builder
        .tcp_nodelay(true)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(32 << 20)
        // A connection that died without a word (a client's host gone, a cable pulled) is
        // found within `CONNECTION_PROBE * 2` and closed: its Consume streams end, so their
        // members leave the group and the partitions move on.
        .http2_keepalive_interval(Some(CONNECTION_PROBE))
        .http2_keepalive_timeout(Some(CONNECTION_PROBE))
        .layer(metrics::RpcLayer::new(broker.metrics().clone()))
        .add_service(control)
        .add_service(data)
        .add_service(api)
        .add_service(InterceptedService::new(reflection_v1, describing()))
        .add_service(InterceptedService::new(reflection_v1alpha, describing()))
        .add_service(health_service)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            health
                .set_not_serving::<StaveServer<broker::Broker>>()
                .await;
            let _ = stopping.send(true);
        });
    tokio::pin!(server);
    let stopping_node = async {
        let _ = stopped.wait_for(|stopped| *stopped).await;
        // Stop the Raft groups (their logs sync as they close); that also ends peers' append
        // streams, so the server can finish.
        stop_background();
        node.shutdown().await;
    };
    tokio::select! {
        result = &mut server => {
            stop_background();
            node.shutdown().await;
            result.map_err(BrokerError::from)
        }
        () = stopping_node => {
            // Requests in flight get a grace period, then the server stops regardless.
            tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .unwrap_or(Ok(()))
                .map_err(BrokerError::from)
        }
    }
}

/// The plaintext warning's task, when the node serves plaintext beyond loopback
/// ([`tls::plaintext`]): it warns now and hourly.
fn plaintext_warning(broker: &broker::Broker) -> Option<tokio::task::JoinHandle<()>> {
    let config = broker.config();
    let listen = config.listen.parse::<std::net::SocketAddr>().ok()?;
    tls::plaintext::plaintext_warning_due(listen, broker.tls().is_some(), config.insecure_ok)
        .then(|| tokio::spawn(tls::plaintext::warn_plaintext_loop(listen)))
}

/// gRPC server reflection over every service the port serves (Stave's, health, reflection
/// itself), as `grpc.reflection.v1` and `v1alpha` (which grpcurl and most tools still ask),
/// so `grpcurl -plaintext HOST:PORT list` and `describe` work.
fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    BrokerError,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(stave_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let failed = |err: tonic_reflection::server::Error| {
        BrokerError::Internal(format!("the reflection service: {err}"))
    };
    Ok((
        builder().build_v1().map_err(failed)?,
        builder().build_v1alpha().map_err(failed)?,
    ))
}

/// Serves a node with `config` on an already bound listener, in the background; for tests
/// and the benchmark tool. The returned handle stops it.
pub fn spawn(listener: tokio::net::TcpListener, config: BrokerConfig) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        task,
    }
}

/// A node served by [`spawn`].
#[derive(Debug)]
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), BrokerError>>,
}

impl Running {
    /// Stops the node and waits until it has.
    pub async fn stop(mut self) -> Result<(), BrokerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))?
    }
}

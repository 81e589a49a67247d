//! The Raft transport over gRPC (`proto/stave/internal/raft.proto`): every group on a node
//! shares two connections per peer, control and data (see [`client`]), and the node serves
//! both services over its [`Groups`](crate::group::Groups) ([`server`]).
//!
//! With [`TransportConfig::tls`] the connections to peers are TLS (`https://`, the node's
//! certificate as its client identity); the node's tonic server, which the broker owns,
//! terminates TLS for the services served here. The cluster secret is required either way.

pub mod auth;
pub mod client;
mod convert;
pub mod server;

pub use auth::{CLUSTER_SECRET_HEADER, CheckSecret, ClusterSecret};
pub use client::{GrpcNetwork, RaftClients, TransportConfig};
pub use server::{ControlService, DataService, NodeIdentity};

use stave_proto::internal::raft::raft_control_server::RaftControlServer;
use stave_proto::internal::raft::raft_data_server::RaftDataServer;

use tonic::service::interceptor::InterceptedService;

use crate::group::Groups;

/// The node's `RaftControl` service, behind the cluster-secret check.
pub type ControlServer = InterceptedService<RaftControlServer<ControlService>, CheckSecret>;
/// The node's `RaftData` service, behind the cluster-secret check.
pub type DataServer = InterceptedService<RaftDataServer<DataService>, CheckSecret>;

/// The two Raft services of a node, ready to add to its tonic server. Each call must carry
/// the cluster secret of `config` (when it has one), or it is refused `UNAUTHENTICATED`.
pub fn services(
    groups: &Groups,
    identity: &NodeIdentity,
    config: &TransportConfig,
) -> (ControlServer, DataServer) {
    let check = CheckSecret::new(config.secret.clone());
    let control = RaftControlServer::new(ControlService::new(groups.clone(), identity.clone()))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let data = RaftDataServer::new(DataService::new(groups.clone(), identity.clone()))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    (
        InterceptedService::new(control, check.clone()),
        InterceptedService::new(data, check),
    )
}

/// Serves the Raft services of `groups` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    groups: Groups,
    identity: NodeIdentity,
    config: TransportConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (control, data) = services(&groups, &identity, &config);
    // `Server::tcp_nodelay` covers only listeners tonic binds itself: set it on the accepted
    // sockets here, or small answers wait out Nagle's algorithm and delayed ACKs (~40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(32 << 20)
        .add_service(control)
        .add_service(data)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

//! Calls to other nodes' public API: forwarding to the controller's leader, asking a
//! partition's leader for its offsets, gathering consumer groups. Each call is bounded, so a
//! frozen peer costs its caller a timeout, not a hang.

use std::time::Duration;

use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use stave_raft::group::RaftGroupId;
use stave_raft::transport::auth::AttachSecret;
use tonic::Request;

use super::convert;
use crate::auth::{PRINCIPAL_HEADER, Principal};
use crate::broker::{Broker, PeerClient, lock};
use crate::consumer_group::ListedGroup;
use crate::error::BrokerError;
use crate::fetch::OffsetSpec;
use crate::publish::{Answer, PublishRecord};
use crate::routing::Target;

/// Marks a request one node forwarded to another (never forwarded again).
const FORWARDED: &str = "stave-forwarded";

/// Marks a read made by another node's monitoring (consumer-group lag), which the fetched
/// records and bytes do not count.
const MONITORING: &str = "stave-monitoring";

/// The longest a call to another node may take.
const PEER_CALL_MAX: Duration = Duration::from_secs(5);

/// Whether `request` is another node's monitoring read.
pub(super) fn monitoring<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(MONITORING)
}

/// `message` as a request forwarded to another node.
pub(super) fn forward_request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    request
}

/// `message` as a request forwarded to another node on behalf of `principal` (the node
/// there authorizes it as that principal; only nodes, with the cluster secret, are
/// believed).
pub(super) fn forward_request_as<T>(message: T, principal: &Principal) -> Request<T> {
    let mut request = forward_request(message);
    if let Some(name) = principal.name() {
        let value = tonic::metadata::BinaryMetadataValue::from_bytes(name.as_bytes());
        request.metadata_mut().insert_bin(PRINCIPAL_HEADER, value);
    }
    request
}

impl Broker {
    /// Whether `request` carries the cluster secret: it comes from another node.
    pub(super) fn forwarded_by_a_node<T>(&self, request: &Request<T>) -> bool {
        self.cluster_secret.presented_in(request.metadata())
    }

    /// Whether another node of the cluster forwarded `request` here: it says so, and it
    /// carries the cluster secret (a client saying so is not believed).
    pub(super) fn forwarded<T>(&self, request: &Request<T>) -> bool {
        let metadata = request.metadata();
        metadata.contains_key(FORWARDED) && self.cluster_secret.presented_in(metadata)
    }

    /// The public-API client of the node at `addr` (cached); its calls carry the cluster
    /// secret, over TLS with this node's certificate when the node has TLS.
    pub(crate) fn peer_client(&self, addr: &str) -> Result<PeerClient, BrokerError> {
        let mut peers = lock(&self.peers);
        if let Some(client) = peers.get(addr) {
            return Ok(client.clone());
        }
        let tls = self.tls().map(crate::tls::NodeTls::client_config);
        let endpoint = stave_client::tls::endpoint(addr, tls)
            .map_err(|err| {
                BrokerError::Internal(format!(
                    "peer address {addr:?}: {}",
                    stave_client::display_chain(&err)
                ))
            })?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        let attach = AttachSecret::new(Some(self.cluster_secret.clone()));
        let client = StaveClient::with_interceptor(endpoint.connect_lazy(), attach);
        peers.insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// A partition's high watermark, asked of its leader on another node (none if unknown).
    pub(crate) async fn remote_high_watermark(
        &self,
        topic: &str,
        partition: u32,
        raft_group: RaftGroupId,
    ) -> Option<u64> {
        let leader = self.leader_of(raft_group).await?;
        let metadata = self.node().controller().metadata();
        let addr = metadata.node_addr(leader)?.to_string();
        let target = self.target(topic, partition).ok()?;
        self.remote_list_offsets(&addr, &target, OffsetSpec::Latest)
            .await
            .ok()
    }

    /// ListOffsets asked of the node at `addr`.
    pub(crate) async fn remote_list_offsets(
        &self,
        addr: &str,
        target: &Target,
        spec: OffsetSpec,
    ) -> Result<u64, BrokerError> {
        let request = pb::ListOffsetsRequest {
            topic: target.topic.clone(),
            partition: target.partition,
            spec: Some(convert::offset_spec_to_pb(spec)),
        };
        let not_available = |why: String| BrokerError::LeaderNotAvailable {
            topic: format!("{} ({why})", target.topic),
            partition: target.partition,
        };
        let mut client = self.peer_client(addr)?;
        let answer = tokio::time::timeout(PEER_CALL_MAX, client.list_offsets(request))
            .await
            .map_err(|_| not_available(format!("{addr} did not answer")))?
            .map_err(|status| not_available(status.to_string()))?
            .into_inner();
        match answer.error {
            Some(error) if error.code != pb::ErrorCode::None as i32 => {
                Err(not_available(error.message))
            }
            _ => Ok(answer.offset),
        }
    }

    /// A Fetch asked of the node at `addr` for monitoring (not counted there as fetched);
    /// an out-of-range answer is [`BrokerError::OffsetOutOfRange`] with the log's bounds.
    pub(crate) async fn remote_fetch_uncounted(
        &self,
        addr: &str,
        request: crate::fetch::FetchRequest,
    ) -> Result<crate::fetch::Fetched, BrokerError> {
        let offset = request.offset;
        let mut message = Request::new(convert::fetch_request_to_pb(&request));
        message
            .metadata_mut()
            .insert(MONITORING, tonic::metadata::MetadataValue::from_static("1"));
        let mut client = self.peer_client(addr)?;
        let answer = tokio::time::timeout(PEER_CALL_MAX, client.fetch(message))
            .await
            .map_err(|_| BrokerError::Timeout(format!("{addr} did not answer a fetch")))?
            .map_err(|status| BrokerError::Timeout(format!("{addr}: {}", status.message())))?
            .into_inner();
        convert::fetched_from_pb(offset.0, answer)
    }

    /// A Publish of one partition's records forwarded to its leader at `addr` (it does not
    /// forward again): one answer per record, in order.
    pub(crate) async fn remote_publish(
        &self,
        addr: &str,
        records: Vec<PublishRecord>,
    ) -> Result<Vec<Answer>, BrokerError> {
        let count = records.len();
        let mut client = self.peer_client(addr)?;
        let message = pb::PublishRequest {
            records: convert::publish_records_to_pb(records),
            sequence: 0,
        };
        // A write waits for its commit: the produce timeout, plus a margin for the hop.
        let within = self.config().produce_timeout() + PEER_CALL_MAX;
        let answer = tokio::time::timeout(within, client.publish(forward_request(message)))
            .await
            .map_err(|_| BrokerError::Timeout(format!("{addr} did not answer a publish")))?
            .map_err(|status| BrokerError::LeaderNotAvailable {
                topic: format!("(leader at {addr}: {})", status.message()),
                partition: 0,
            })?
            .into_inner();
        if answer.results.len() != count {
            return Err(BrokerError::Timeout(format!(
                "{addr} answered {} of {count} records",
                answer.results.len()
            )));
        }
        Ok(answer
            .results
            .into_iter()
            .map(convert::published_record_from_pb)
            .collect())
    }

    /// The consumer groups node `id` (at `addr`) coordinates; its id if it did not answer.
    pub(crate) async fn remote_consumer_groups(
        &self,
        id: u64,
        addr: &str,
    ) -> Result<Vec<ListedGroup>, u64> {
        let mut client = self.peer_client(addr).map_err(|_| id)?;
        let request = forward_request(pb::ListGroupsRequest {});
        match tokio::time::timeout(PEER_CALL_MAX, client.list_groups(request)).await {
            Ok(Ok(answer)) => Ok(answer
                .into_inner()
                .groups
                .into_iter()
                .map(convert::listed_group_from_pb)
                .collect()),
            _ => Err(id),
        }
    }
}

//! The gRPC edge: `stave.v1.Stave` over the broker's request families. Each handler decodes
//! its request ([`convert`]), calls the domain, and encodes the answer; partition-level
//! outcomes travel as typed error codes in the response. Requests for the controller (topic
//! admin, producer ids, creating `__offsets`) are forwarded once to the node that leads it
//! ([`peers`]).

pub(crate) mod convert;
mod peers;

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use stave_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use self::peers::{forward_request, forwarded};
use crate::admin::ControllerLeader;
use crate::broker::Broker;

/// Runs `local` here if this node leads the controller; otherwise forwards `message` with
/// `forward` to the leader (once).
macro_rules! via_controller {
    ($self:ident, $request:ident, $forward:ident, $local:expr) => {{
        let is_forwarded = forwarded(&$request);
        let message = $request.into_inner();
        match $self.controller_leader().await {
            Ok(ControllerLeader::At(addr)) if !is_forwarded => {
                let mut client = $self
                    .peer_client(&addr)
                    .map_err(|err| Status::unavailable(err.to_string()))?;
                return client.$forward(forward_request(message)).await;
            }
            Ok(_) => {}
            Err(err) => return Err(Status::unavailable(err.to_string())),
        }
        let local = $local;
        local(message).await
    }};
}

type ProduceStream = Pin<Box<dyn Stream<Item = Result<pb::ProduceResponse, Status>> + Send>>;
type PublishStream = Pin<Box<dyn Stream<Item = Result<pb::PublishResponse, Status>> + Send>>;
type ConsumeStream = Pin<Box<dyn Stream<Item = Result<pb::ConsumeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::stave_server::Stave for Broker {
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        let request = request.into_inner();
        let sequence = request.sequence;
        let result = self.produce(convert::produce_request(request)).await;
        Ok(Response::new(convert::produced(sequence, result)))
    }

    type ProduceStreamStream = ProduceStream;

    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<ProduceStream>, Status> {
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(1024);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(serve_produce_stream(broker, incoming, answers));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let is_forwarded = forwarded(&request);
        let request = request.into_inner();
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        // The write runs on its own task: a client that gives up (its deadline, a cut
        // connection) drops this future, and a write dropped halfway would leave its ids
        // marked in flight, so every retry would be refused until the leader changed.
        let records = convert::publish_records(request.records);
        let outcomes = tokio::spawn(async move { broker.publish(records, is_forwarded).await })
            .await
            .map_err(|err| Status::internal(format!("the publish task failed: {err}")))?;
        Ok(Response::new(convert::published(
            request.sequence,
            outcomes,
        )))
    }

    type PublishStreamStream = PublishStream;

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishRequest>>,
    ) -> Result<Response<PublishStream>, Status> {
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(64);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(serve_publish_stream(broker, incoming, answers));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    type ConsumeStream = ConsumeStream;

    async fn consume(
        &self,
        request: Request<Streaming<pb::ConsumeRequest>>,
    ) -> Result<Response<ConsumeStream>, Status> {
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(16);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(serve_consume_stream(broker, incoming, answers));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let monitoring = peers::monitoring(&request);
        let request = convert::fetch_request(request.into_inner());
        let result = match monitoring {
            true => self.fetch_uncounted(request).await,
            false => self.fetch(request).await,
        };
        Ok(Response::new(convert::fetched(result)))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let request = request.into_inner();
        let spec = request.spec.map(convert::offset_spec_from_pb);
        let result = self
            .list_offsets(&request.topic, request.partition, spec)
            .await;
        Ok(Response::new(match result {
            Ok(offset) => pb::ListOffsetsResponse {
                error: None,
                offset,
            },
            Err(err) => pb::ListOffsetsResponse {
                error: Some(convert::error(&err)),
                offset: 0,
            },
        }))
    }

    async fn metadata(
        &self,
        request: Request<pb::MetadataRequest>,
    ) -> Result<Response<pb::MetadataResponse>, Status> {
        let metadata = self.node().controller().metadata();
        let names = self.topic_names(&metadata, request.into_inner().topics);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let error = metadata
                .topic(&name)
                .is_none()
                .then(|| convert::error(&crate::error::BrokerError::UnknownTopic(name.clone())));
            let partitions = self.partitions_of(&metadata, &name).await;
            topics.push(pb::TopicMetadata {
                name,
                error,
                partitions: partitions
                    .into_iter()
                    .map(convert::partition_metadata)
                    .collect(),
            });
        }
        Ok(Response::new(pb::MetadataResponse {
            cluster_id: self.node().identity().cluster_id().unwrap_or_default(),
            controller_id: self.node().controller().leader(),
            nodes: metadata
                .nodes()
                .iter()
                .map(|(id, addr)| pb::Node {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect(),
            topics,
        }))
    }

    async fn init_producer_id(
        &self,
        request: Request<pb::InitProducerIdRequest>,
    ) -> Result<Response<pb::InitProducerIdResponse>, Status> {
        via_controller!(self, request, init_producer_id, |_message| async {
            let response = match self.allocate_producer_id().await {
                Ok(producer_id) => pb::InitProducerIdResponse {
                    error: None,
                    producer_id,
                    producer_epoch: 0,
                },
                Err(err) => pb::InitProducerIdResponse {
                    error: Some(convert::error(&err)),
                    ..Default::default()
                },
            };
            Ok(Response::new(response))
        })
    }

    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        via_controller!(
            self,
            request,
            create_topics,
            |message: pb::CreateTopicsRequest| async {
                let mut results = Vec::with_capacity(message.topics.len());
                for spec in message.topics {
                    let name = spec.name.clone();
                    let outcome = self.create_topic(convert::topic_spec(spec)).await;
                    results.push(convert::topic_result(name, outcome));
                }
                Ok(Response::new(pb::CreateTopicsResponse { results }))
            }
        )
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        via_controller!(
            self,
            request,
            delete_topics,
            |message: pb::DeleteTopicsRequest| async {
                let mut results = Vec::with_capacity(message.names.len());
                for name in message.names {
                    let outcome = self.delete_topic(name.clone()).await;
                    results.push(convert::topic_result(name, outcome));
                }
                Ok(Response::new(pb::DeleteTopicsResponse { results }))
            }
        )
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let metadata = self.node().controller().metadata();
        let names = self.topic_names(&metadata, request.into_inner().names);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let Some(topic) = metadata.topic(&name) else {
                let unknown = crate::error::BrokerError::UnknownTopic(name.clone());
                topics.push(pb::TopicDescription {
                    error: Some(convert::error(&unknown)),
                    name,
                    ..Default::default()
                });
                continue;
            };
            let configs =
                convert::config_entries(crate::topic_config::topic_config(topic).entries());
            let partitions = self.partitions_of(&metadata, &name).await;
            topics.push(pb::TopicDescription {
                name,
                error: None,
                partitions: partitions
                    .into_iter()
                    .map(convert::partition_metadata)
                    .collect(),
                configs,
            });
        }
        Ok(Response::new(pb::DescribeTopicsResponse { topics }))
    }

    async fn alter_topic_config(
        &self,
        request: Request<pb::AlterTopicConfigRequest>,
    ) -> Result<Response<pb::AlterTopicConfigResponse>, Status> {
        via_controller!(
            self,
            request,
            alter_topic_config,
            |message: pb::AlterTopicConfigRequest| async {
                let set = convert::config_pairs(message.set);
                let outcome = self.alter_topic(message.name, set).await;
                Ok(Response::new(pb::AlterTopicConfigResponse {
                    error: convert::outcome(outcome),
                }))
            }
        )
    }

    async fn find_coordinator(
        &self,
        request: Request<pb::FindCoordinatorRequest>,
    ) -> Result<Response<pb::FindCoordinatorResponse>, Status> {
        let offsets_exist = self
            .node()
            .controller()
            .metadata()
            .topic(stave_raft::controller::OFFSETS_TOPIC)
            .is_some();
        if offsets_exist {
            let found = self.coordinator(&request.into_inner().group).await;
            return Ok(Response::new(convert::coordinator_answer(found)));
        }
        // `__offsets` is created on first use, by the controller leader.
        via_controller!(
            self,
            request,
            find_coordinator,
            |message: pb::FindCoordinatorRequest| async move {
                let found = match self.ensure_offsets_topic().await {
                    Ok(()) => self.coordinator(&message.group).await,
                    Err(err) => Err(err),
                };
                Ok(Response::new(convert::coordinator_answer(found)))
            }
        )
    }

    async fn commit_offsets(
        &self,
        request: Request<pb::CommitOffsetsRequest>,
    ) -> Result<Response<pb::CommitOffsetsResponse>, Status> {
        let request = convert::commit_request(request.into_inner());
        let outcome = self.commit_offsets(request).await;
        Ok(Response::new(pb::CommitOffsetsResponse {
            error: convert::outcome(outcome),
        }))
    }

    async fn fetch_offsets(
        &self,
        request: Request<pb::FetchOffsetsRequest>,
    ) -> Result<Response<pb::FetchOffsetsResponse>, Status> {
        let response = match self.fetch_offsets(&request.into_inner().group).await {
            Ok(offsets) => pb::FetchOffsetsResponse {
                error: None,
                offsets: convert::group_offsets(offsets),
            },
            Err(err) => pb::FetchOffsetsResponse {
                error: Some(convert::error(&err)),
                offsets: vec![],
            },
        };
        Ok(Response::new(response))
    }

    async fn group_heartbeat(
        &self,
        request: Request<pb::GroupHeartbeatRequest>,
    ) -> Result<Response<pb::GroupHeartbeatResponse>, Status> {
        let request = convert::heartbeat_request(request.into_inner());
        let answer = self.group_heartbeat(request).await;
        Ok(Response::new(convert::heartbeat_answer(answer)))
    }

    async fn describe_group(
        &self,
        request: Request<pb::DescribeGroupRequest>,
    ) -> Result<Response<pb::DescribeGroupResponse>, Status> {
        let description = self.describe_group(&request.into_inner().group).await;
        Ok(Response::new(convert::group_description(description)))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let response = if forwarded(&request) {
            pb::ListGroupsResponse {
                groups: self
                    .local_groups()
                    .into_iter()
                    .map(convert::listed_group_to_pb)
                    .collect(),
                ..Default::default()
            }
        } else {
            convert::group_listing(self.list_groups_everywhere().await)
        };
        Ok(Response::new(response))
    }

    async fn queue_fetch(
        &self,
        request: Request<pb::QueueFetchRequest>,
    ) -> Result<Response<pb::QueueFetchResponse>, Status> {
        let result = match convert::queue_fetch(request.into_inner()) {
            Ok(fetch) => self.queue_fetch(fetch).await,
            Err(err) => Err(err),
        };
        Ok(Response::new(convert::queue_fetched(result)))
    }

    async fn queue_settle(
        &self,
        request: Request<pb::QueueSettleRequest>,
    ) -> Result<Response<pb::QueueSettleResponse>, Status> {
        let request = request.into_inner();
        let items: Result<Vec<_>, _> = request
            .settlements
            .into_iter()
            .map(convert::settle_item)
            .collect();
        let result = match items {
            Ok(items) => {
                self.queue_settle(&request.group, request.member_id, items)
                    .await
            }
            Err(err) => Err(err),
        };
        Ok(Response::new(convert::queue_settled(result)))
    }

    async fn reset_offsets(
        &self,
        request: Request<pb::ResetOffsetsRequest>,
    ) -> Result<Response<pb::ResetOffsetsResponse>, Status> {
        let request = convert::reset_request(request.into_inner());
        let response = match self.reset_offsets(request).await {
            Ok(offsets) => pb::ResetOffsetsResponse {
                error: None,
                offsets: convert::group_offsets(offsets),
            },
            Err(err) => pb::ResetOffsetsResponse {
                error: Some(convert::error(&err)),
                offsets: vec![],
            },
        };
        Ok(Response::new(response))
    }
}

/// The next request of a stream; `None` once it ends: the client closed it, the node stops
/// (the client reconnects elsewhere), or a request could not be read (too large,
/// undecodable), in which case the stream ends with its status, so no request goes silently
/// unanswered.
async fn next_request<T, A>(
    incoming: &mut Streaming<T>,
    closing: &mut tokio::sync::watch::Receiver<bool>,
    answers: &mpsc::Sender<Result<A, Status>>,
) -> Option<T> {
    let request = tokio::select! {
        request = incoming.next() => request,
        _ = closing.wait_for(|closing| *closing) => return None,
    };
    match request? {
        Ok(request) => Some(request),
        Err(status) => {
            let _ = answers.send(Err(status)).await;
            None
        }
    }
}

/// Serves one ProduceStream: requests are checked and proposed in arrival order; the waits
/// for commit overlap, and answers go back as they come (each carries its sequence).
async fn serve_produce_stream(
    broker: std::sync::Arc<Broker>,
    mut incoming: Streaming<pb::ProduceRequest>,
    answers: mpsc::Sender<Result<pb::ProduceResponse, Status>>,
) {
    let mut closing = broker.node().identity().subscribe_closing();
    while let Some(request) = next_request(&mut incoming, &mut closing, &answers).await {
        let sequence = request.sequence;
        match broker
            .begin_produce(convert::produce_request(request))
            .await
        {
            Ok(submitted) => {
                let broker = broker.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let result = broker.finish_produce(submitted).await;
                    // The client hung up: nobody waits for the answer.
                    let _ = answers.send(Ok(convert::produced(sequence, result))).await;
                });
            }
            Err(err) => {
                let answer = convert::produced(sequence, Err(err));
                if answers.send(Ok(answer)).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Serves one PublishStream: each request in turn, answered before the next is begun (so a
/// stream's records keep their order in each partition), until the client or the node ends
/// it.
async fn serve_publish_stream(
    broker: std::sync::Arc<Broker>,
    mut incoming: Streaming<pb::PublishRequest>,
    answers: mpsc::Sender<Result<pb::PublishResponse, Status>>,
) {
    let mut closing = broker.node().identity().subscribe_closing();
    while let Some(request) = next_request(&mut incoming, &mut closing, &answers).await {
        let outcomes = broker
            .publish(convert::publish_records(request.records), false)
            .await;
        let answer = convert::published(request.sequence, outcomes);
        if answers.send(Ok(answer)).await.is_err() {
            break; // The client hung up.
        }
    }
}

/// Serves one Consume stream: its first message must be a subscribe; the rest become the
/// domain's inputs, and the domain's outputs go back as messages. The stream ends when the
/// client ends its side (the member leaves), the domain fails it, or the node stops.
async fn serve_consume_stream(
    broker: std::sync::Arc<Broker>,
    mut incoming: Streaming<pb::ConsumeRequest>,
    answers: mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
) {
    let first = incoming.next().await;
    let subscription = match first.map(|m| m.map(|m| m.request)) {
        Some(Ok(Some(pb::consume_request::Request::Subscribe(subscribe)))) => {
            convert::subscription(subscribe)
        }
        Some(Ok(_)) => {
            let err = crate::error::BrokerError::InvalidRequest(
                "a Consume stream starts with a subscribe".into(),
            );
            let _ = answers.send(Ok(convert::consume_failed(&err))).await;
            return;
        }
        Some(Err(_)) | None => return,
    };
    let (inputs, input) = mpsc::channel(64);
    let (output, mut outputs) = mpsc::channel(16);
    let mut closing = broker.node().identity().subscribe_closing();
    let reader = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = incoming.next() => message,
                _ = closing.wait_for(|closing| *closing) => None,
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(status)) => {
                    // A message that could not be read: the stream fails with why.
                    let why = format!("a message could not be read: {}", status.message());
                    let refused = crate::error::BrokerError::InvalidRequest(why);
                    let _ = inputs
                        .send(crate::consume::ConsumeInput::Refused(refused))
                        .await;
                    break;
                }
                None => break,
            };
            let asked = match convert::consume_input(message) {
                Ok(Some(asked)) => asked,
                Ok(None) => continue,
                Err(err) => crate::consume::ConsumeInput::Refused(err),
            };
            if inputs.send(asked).await.is_err() {
                break;
            }
        }
    });
    // Ends when the client is gone (it cancelled the call, or its connection closed), even
    // while nothing is pushed: dropping `outputs` then ends the domain's loop, so the member
    // leaves its group at once instead of holding its partitions until a record comes.
    let writer = tokio::spawn(async move {
        loop {
            let out = tokio::select! {
                out = outputs.recv() => out,
                () = answers.closed() => None,
            };
            let Some(out) = out else { break };
            if answers
                .send(Ok(convert::consume_output(out)))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    broker.consume(subscription, input, output).await;
    reader.abort();
    let _ = writer.await;
}

/// Fetches of this node's own Consume streams: served in process, as the `Fetch` RPC would
/// answer them, without a connection to itself (and the encoding, copies and checks a
/// loopback round trip costs).
pub(crate) struct LocalReads {
    broker: std::sync::Weak<Broker>,
    addr: String,
}

impl LocalReads {
    pub(crate) fn new(broker: std::sync::Weak<Broker>, addr: String) -> std::sync::Arc<Self> {
        std::sync::Arc::new(LocalReads { broker, addr })
    }
}

impl stave_client::LocalNode for LocalReads {
    fn addr(&self) -> &str {
        &self.addr
    }

    fn fetch(
        &self,
        request: pb::FetchRequest,
    ) -> Pin<Box<dyn std::future::Future<Output = pb::FetchResponse> + Send>> {
        let broker = self.broker.clone();
        Box::pin(async move {
            let result = match broker.upgrade() {
                Some(broker) => broker.fetch(convert::fetch_request(request)).await,
                None => Err(crate::error::BrokerError::Timeout(
                    "the node is shutting down".into(),
                )),
            };
            convert::fetched(result)
        })
    }
}

//! The gRPC edge: `stave.v1.Stave` over the broker's request families. Each handler decodes
//! its request ([`convert`]), calls the domain, and encodes the answer; partition-level
//! outcomes travel as typed error codes in the response. Requests for the controller (topic
//! admin, producer ids, creating `__offsets`) are forwarded once to the node that leads it
//! ([`peers`]).

pub(crate) mod convert;
mod peers;
mod security;
mod streams;

pub(crate) use streams::LocalReads;

use std::pin::Pin;

use futures_util::Stream;
use stave_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use self::peers::forward_request_as;
use crate::admin::ControllerLeader;
use crate::auth::{Principal, Resource};
use crate::broker::Broker;
use stave_raft::controller::AclOperation as Op;

/// Runs `local` here if this node leads the controller; otherwise forwards `message` with
/// `forward` to the leader (once).
macro_rules! via_controller {
    ($self:ident, $request:ident, $forward:ident, $local:expr) => {{
        let is_forwarded = $self.forwarded(&$request);
        let principal = Principal::of(&$request);
        let message = $request.into_inner();
        match $self.controller_leader().await {
            Ok(ControllerLeader::At(addr)) if !is_forwarded => {
                let mut client = $self
                    .peer_client(&addr)
                    .map_err(|err| Status::unavailable(err.to_string()))?;
                return client
                    .$forward(forward_request_as(message, &principal))
                    .await;
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
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize_topics(&who, Op::Produce, [request.topic.as_str()])?;
        let sequence = request.sequence;
        let result = self.produce(convert::produce_request(request)).await;
        Ok(Response::new(convert::produced(sequence, result)))
    }

    type ProduceStreamStream = ProduceStream;

    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<ProduceStream>, Status> {
        let who = Principal::of(&request);
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(1024);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(streams::serve_produce_stream(
            broker, who, incoming, answers,
        ));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let is_forwarded = self.forwarded(&request);
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize_topics(
            &who,
            Op::Produce,
            request.records.iter().map(|r| r.topic.as_str()),
        )?;
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
        let who = Principal::of(&request);
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(64);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(streams::serve_publish_stream(
            broker, who, incoming, answers,
        ));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    type ConsumeStream = ConsumeStream;

    async fn consume(
        &self,
        request: Request<Streaming<pb::ConsumeRequest>>,
    ) -> Result<Response<ConsumeStream>, Status> {
        let who = Principal::of(&request);
        let incoming = request.into_inner();
        let (answers, outgoing) = mpsc::channel(16);
        let broker = self
            .this
            .upgrade()
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        tokio::spawn(streams::serve_consume_stream(
            broker, who, incoming, answers,
        ));
        let stream = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let who = Principal::of(&request);
        // Only another node's monitoring is not counted: the mark counts with the secret.
        let monitoring = peers::monitoring(&request) && self.forwarded_by_a_node(&request);
        let request = request.into_inner();
        self.authorize_topics(&who, Op::Consume, [request.topic.as_str()])?;
        let request = convert::fetch_request(request);
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
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize_topics(&who, Op::Describe, [request.topic.as_str()])?;
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
        let who = Principal::of(&request);
        let metadata = self.node().controller().metadata();
        let asked = request.into_inner().topics;
        self.authorize_topics(&who, Op::Describe, asked.iter().map(String::as_str))?;
        let names = self.topic_names(&metadata, asked);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            if !self.may_describe_topic(&who, &name) {
                continue;
            }
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
        let names = request.get_ref().topics.iter().map(|t| t.name.as_str());
        self.authorize_topics(&Principal::of(&request), Op::Create, names)?;
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
        let names = request.get_ref().names.iter().map(String::as_str);
        self.authorize_topics(&Principal::of(&request), Op::Admin, names)?;
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
        let who = Principal::of(&request);
        let metadata = self.node().controller().metadata();
        let asked = request.into_inner().names;
        self.authorize_topics(&who, Op::Describe, asked.iter().map(String::as_str))?;
        let names = self.topic_names(&metadata, asked);
        let mut topics = Vec::with_capacity(names.len());
        for name in names
            .into_iter()
            .filter(|n| self.may_describe_topic(&who, n))
        {
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
        let name = request.get_ref().name.as_str();
        self.authorize_topics(&Principal::of(&request), Op::Admin, [name])?;
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
        let group = &request.get_ref().group;
        self.authorize(
            &Principal::of(&request),
            Op::Describe,
            Resource::Group(group),
        )?;
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
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize(&who, Op::Consume, Resource::Group(&request.group))?;
        self.authorize_topics(
            &who,
            Op::Consume,
            request.offsets.iter().map(|o| o.topic.as_str()),
        )?;
        let request = convert::commit_request(request);
        let outcome = self.commit_offsets(request).await;
        Ok(Response::new(pb::CommitOffsetsResponse {
            error: convert::outcome(outcome),
        }))
    }

    async fn fetch_offsets(
        &self,
        request: Request<pb::FetchOffsetsRequest>,
    ) -> Result<Response<pb::FetchOffsetsResponse>, Status> {
        let who = Principal::of(&request);
        let group = request.into_inner().group;
        self.authorize(&who, Op::Describe, Resource::Group(&group))?;
        let response = match self.fetch_offsets(&group).await {
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
        let who = Principal::of(&request);
        let mut request = request.into_inner();
        self.authorize(&who, Op::Consume, Resource::Group(&request.group))?;
        if !request.leave {
            request.subscription = self.readable_subscription(&who, &request.subscription)?;
        }
        let request = convert::heartbeat_request(request);
        let answer = self.group_heartbeat(request).await;
        Ok(Response::new(convert::heartbeat_answer(answer)))
    }

    async fn describe_group(
        &self,
        request: Request<pb::DescribeGroupRequest>,
    ) -> Result<Response<pb::DescribeGroupResponse>, Status> {
        let who = Principal::of(&request);
        let group = request.into_inner().group;
        self.authorize(&who, Op::Describe, Resource::Group(&group))?;
        let description = self.describe_group(&group).await;
        Ok(Response::new(convert::group_description(description)))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let who = Principal::of(&request);
        let mut response = if self.forwarded(&request) {
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
        response
            .groups
            .retain(|group| self.may_describe_group(&who, &group.group));
        Ok(Response::new(response))
    }

    async fn queue_fetch(
        &self,
        request: Request<pb::QueueFetchRequest>,
    ) -> Result<Response<pb::QueueFetchResponse>, Status> {
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize(&who, Op::Consume, Resource::Group(&request.group))?;
        self.authorize_queue_topics(&who, &request.topics)?;
        let result = match convert::queue_fetch(request) {
            Ok(fetch) => self.queue_fetch(fetch).await,
            Err(err) => Err(err),
        };
        Ok(Response::new(convert::queue_fetched(result)))
    }

    async fn queue_settle(
        &self,
        request: Request<pb::QueueSettleRequest>,
    ) -> Result<Response<pb::QueueSettleResponse>, Status> {
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize(&who, Op::Consume, Resource::Group(&request.group))?;
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
        let who = Principal::of(&request);
        let request = request.into_inner();
        self.authorize(&who, Op::Admin, Resource::Group(&request.group))?;
        let request = convert::reset_request(request);
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

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        via_controller!(self, request, create_user, |message| security::create_user(
            self, message
        ))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        via_controller!(self, request, delete_user, |message| security::delete_user(
            self, message
        ))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        Ok(Response::new(security::list_users(self)))
    }

    async fn add_acl(
        &self,
        request: Request<pb::AclRequest>,
    ) -> Result<Response<pb::AclResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        via_controller!(self, request, add_acl, |message| security::change_acl(
            self, message, true
        ))
    }

    async fn remove_acl(
        &self,
        request: Request<pb::AclRequest>,
    ) -> Result<Response<pb::AclResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        via_controller!(self, request, remove_acl, |message| security::change_acl(
            self, message, false
        ))
    }

    async fn list_acls(
        &self,
        request: Request<pb::ListAclsRequest>,
    ) -> Result<Response<pb::ListAclsResponse>, Status> {
        self.authorize(&Principal::of(&request), Op::Admin, Resource::Cluster)?;
        let listed = security::list_acls(self, &request.into_inner().principal);
        Ok(Response::new(listed))
    }
}

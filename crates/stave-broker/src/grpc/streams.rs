//! The streaming RPCs' loops (ProduceStream, PublishStream, Consume), each on its own task,
//! and the in-process reads of this node's own Consume streams ([`LocalReads`]). Every
//! stream also watches the users and ACLs: a principal whose user is deleted, or whose ACLs
//! no longer allow what the stream does, has it closed with the typed status within a
//! metadata change.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use stave_proto::v1 as pb;
use stave_raft::controller::{AclOperation as Op, ClusterMetadata};
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::convert;
use crate::auth::{Principal, Resource};
use crate::broker::Broker;

/// An open stream's principal, re-checked whenever users or ACLs change.
struct Guard {
    broker: Arc<Broker>,
    principal: Principal,
    metadata: watch::Receiver<Arc<ClusterMetadata>>,
    generation: u64,
}

impl Guard {
    fn new(broker: &Arc<Broker>, principal: Principal) -> Guard {
        let metadata = broker.auth.subscribe();
        let generation = metadata.borrow().security().generation();
        Guard {
            broker: broker.clone(),
            principal,
            metadata,
            generation,
        }
    }

    /// Resolves with the refusal once `check` fails after a change of users or ACLs (the
    /// metadata is seen as this node applies it); never for a principal ACLs do not apply to.
    async fn revoked(
        &mut self,
        check: impl Fn(&Broker, &Principal) -> Result<(), Status>,
    ) -> Status {
        if self.principal.name().is_none() {
            return std::future::pending().await;
        }
        loop {
            if self.metadata.changed().await.is_err() {
                return std::future::pending().await;
            }
            let generation = self.metadata.borrow_and_update().security().generation();
            if generation == self.generation {
                continue;
            }
            self.generation = generation;
            if let Err(status) = check(&self.broker, &self.principal) {
                return status;
            }
        }
    }
}

/// `operation` on each of `topics`.
fn topics_allowed(
    broker: &Broker,
    principal: &Principal,
    operation: Op,
    topics: &BTreeSet<String>,
) -> Result<(), Status> {
    broker.authorize_topics(principal, operation, topics.iter().map(String::as_str))
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

/// What a write stream (ProduceStream, PublishStream) may go on writing: the topics it wrote
/// to, re-checked when users or ACLs change.
struct Writes {
    guard: Guard,
    closing: watch::Receiver<bool>,
    topics: BTreeSet<String>,
}

impl Writes {
    fn new(broker: &Arc<Broker>, principal: Principal) -> Writes {
        Writes {
            guard: Guard::new(broker, principal),
            closing: broker.node().identity().subscribe_closing(),
            topics: BTreeSet::new(),
        }
    }

    /// The stream's next request, once its principal may produce to every topic `topics`
    /// names in it. `None` once the stream ends, the node stops, or the principal may no
    /// longer write: to this request's topics, or (after a change of users or ACLs) to those
    /// the stream wrote to; the refusal is sent then.
    async fn next<T, A>(
        &mut self,
        incoming: &mut Streaming<T>,
        answers: &mpsc::Sender<Result<A, Status>>,
        topics: impl Fn(&T) -> Vec<&str>,
    ) -> Option<T> {
        let written = &self.topics;
        let next = tokio::select! {
            next = next_request(incoming, &mut self.closing, answers) => next,
            status = self.guard.revoked(|b, p| topics_allowed(b, p, Op::Produce, written)) => {
                let _ = answers.send(Err(status)).await;
                return None;
            }
        };
        let request = next?;
        if self.guard.principal.name().is_none() {
            return Some(request); // ACLs do not apply: nothing to check or remember.
        }
        let asked = topics(&request);
        let principal = &self.guard.principal;
        if let Err(status) = self
            .guard
            .broker
            .authorize_topics(principal, Op::Produce, asked)
        {
            let _ = answers.send(Err(status)).await;
            return None;
        }
        for topic in topics(&request) {
            if !self.topics.contains(topic) {
                self.topics.insert(topic.to_string());
            }
        }
        Some(request)
    }
}

/// The topic a Produce request writes to.
fn produce_topic(request: &pb::ProduceRequest) -> Vec<&str> {
    vec![request.topic.as_str()]
}

/// The topics a Publish request writes to.
fn publish_topics(request: &pb::PublishRequest) -> Vec<&str> {
    request.records.iter().map(|r| r.topic.as_str()).collect()
}

/// Serves one ProduceStream: requests are checked and proposed in arrival order; the waits
/// for commit overlap, and answers go back as they come (each carries its sequence).
pub(super) async fn serve_produce_stream(
    broker: std::sync::Arc<Broker>,
    principal: Principal,
    mut incoming: Streaming<pb::ProduceRequest>,
    answers: mpsc::Sender<Result<pb::ProduceResponse, Status>>,
) {
    let mut writes = Writes::new(&broker, principal);
    while let Some(request) = writes.next(&mut incoming, &answers, produce_topic).await {
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
pub(super) async fn serve_publish_stream(
    broker: std::sync::Arc<Broker>,
    principal: Principal,
    mut incoming: Streaming<pb::PublishRequest>,
    answers: mpsc::Sender<Result<pb::PublishResponse, Status>>,
) {
    let mut writes = Writes::new(&broker, principal);
    while let Some(request) = writes.next(&mut incoming, &answers, publish_topics).await {
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
pub(super) async fn serve_consume_stream(
    broker: std::sync::Arc<Broker>,
    principal: Principal,
    mut incoming: Streaming<pb::ConsumeRequest>,
    answers: mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
) {
    let Some(subscription) = first_subscription(&broker, &principal, &mut incoming, &answers).await
    else {
        return;
    };
    let revoked_answers = answers.clone();
    let (inputs, input) = mpsc::channel(64);
    let (output, mut outputs) = mpsc::channel(16);
    let reader = tokio::spawn(read_inputs(
        incoming,
        broker.node().identity().subscribe_closing(),
        inputs,
    ));
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
    let group = subscription.group.clone();
    let topics: BTreeSet<String> = subscription.topics.iter().cloned().collect();
    let mut guard = Guard::new(&broker, principal);
    let still_allowed = |b: &Broker, p: &Principal| {
        if !group.is_empty() {
            b.authorize(p, Op::Consume, Resource::Group(&group))?;
        }
        topics_allowed(b, p, Op::Consume, &topics)
    };
    tokio::select! {
        () = broker.consume(subscription, input, output) => {}
        status = guard.revoked(still_allowed) => {
            let _ = revoked_answers.send(Err(status)).await;
        }
    }
    reader.abort();
    let _ = writer.await;
}

/// A Consume stream's messages after its subscribe, as the domain's inputs, until the
/// client ends its side, the node stops, or a message cannot be read (refused, then the
/// end).
async fn read_inputs(
    mut incoming: Streaming<pb::ConsumeRequest>,
    mut closing: watch::Receiver<bool>,
    inputs: mpsc::Sender<crate::consume::ConsumeInput>,
) {
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
}

/// The stream's first message, which must be a subscribe the principal may make; `None`
/// (the refusal sent) if it is not.
async fn first_subscription(
    broker: &Broker,
    principal: &Principal,
    incoming: &mut Streaming<pb::ConsumeRequest>,
    answers: &mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
) -> Option<crate::consume::Subscription> {
    let first = incoming.next().await;
    match first.map(|m| m.map(|m| m.request)) {
        Some(Ok(Some(pb::consume_request::Request::Subscribe(mut subscribe)))) => {
            match readable(broker, principal, &mut subscribe) {
                Ok(()) => Some(convert::subscription(subscribe)),
                Err(status) => {
                    let _ = answers.send(Err(status)).await;
                    None
                }
            }
        }
        Some(Ok(_)) => {
            let err = crate::error::BrokerError::InvalidRequest(
                "a Consume stream starts with a subscribe".into(),
            );
            let _ = answers.send(Ok(convert::consume_failed(&err))).await;
            None
        }
        Some(Err(_)) | None => None,
    }
}

/// A Consume subscription as its principal may read it: consume on the group, every plain
/// topic name consumable, patterns resolved now to the topics it may consume (see
/// `Broker::readable_subscription`); in queue mode, every topic matched must be consumable.
fn readable(
    broker: &Broker,
    principal: &Principal,
    subscribe: &mut pb::Subscribe,
) -> Result<(), Status> {
    if !subscribe.group.is_empty() {
        broker.authorize(principal, Op::Consume, Resource::Group(&subscribe.group))?;
    }
    if subscribe.mode == pb::ConsumeMode::Queue as i32 {
        return broker.authorize_queue_topics(principal, &subscribe.topics);
    }
    let readable = broker.readable_subscription(principal, &subscribe.topics)?;
    if principal.name().is_some() {
        subscribe.topics = readable;
    }
    Ok(())
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

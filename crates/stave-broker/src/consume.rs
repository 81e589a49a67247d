//! Consume: records pushed over a stream, for clients in any language. For each stream the
//! node runs a `stave_client::Consumer` on the client's behalf, bootstrapped at the node
//! itself: with a group it is the group's member (it heartbeats, takes the partitions the
//! coordinator gives it, commits, and leaves when the stream ends), without one it reads the
//! partitions asked for. Either way it fetches from the partition leaders: in process for the
//! partitions this node leads, over the network from other nodes; so a Consume member and a Rust-client member of one group are the same kind of
//! member. Records go out only as far as the client's credits allow.

use std::collections::VecDeque;
use std::time::Duration;

use stave_client::{
    AssignmentChange, Client, ClientConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord,
    OffsetReset, StartPosition,
};
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::consumer_group::pattern::Pattern;
use crate::error::BrokerError;

/// How often a group stream commits with `auto_commit`.
const AUTO_COMMIT_EVERY: Duration = Duration::from_secs(5);
/// Bytes of records one pushed message holds at most (under the 4 MiB default receive limit
/// of other languages' gRPC libraries, with room for the framing).
pub const PUSH_BYTES_MAX: usize = 3 << 20;
/// Records one pushed message holds at most.
const PUSH_RECORDS_MAX: usize = 1_000;

/// Where a stream starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    Earliest,
    #[default]
    Latest,
    Offset(u64),
    Timestamp(i64),
}

/// A stream's subscription, as the client sent it (unchecked).
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub group: String,
    pub partitions: Vec<u32>,
    pub auto_commit: bool,
    pub start: Start,
    /// Queue mode: `group` names a queue group with these options.
    pub queue: Option<crate::queue::QueueOptions>,
}

/// What the client sends after its subscription.
#[derive(Debug)]
pub enum ConsumeInput {
    Credit {
        records: u32,
        bytes: u64,
    },
    /// Empty `offsets`: everything delivered so far.
    Commit {
        id: u64,
        offsets: Vec<(String, u32, u64)>,
    },
    /// Queue mode: settlements of records pushed (each refused on its own when it cannot be
    /// taken).
    Settle {
        id: u64,
        items: Vec<Result<stave_client::Settlement, BrokerError>>,
    },
    /// A message the stream cannot take: it fails with this.
    Refused(BrokerError),
}

/// What the node pushes.
#[derive(Debug)]
pub enum ConsumeOutput {
    Records(Vec<ConsumerRecord>),
    Assignment(AssignmentChange),
    Committed {
        id: u64,
        result: Result<(), BrokerError>,
    },
    /// Queue mode: records locked to the stream's member.
    Queued(Vec<stave_client::QueuedRecord>),
    Settled {
        id: u64,
        result: Result<Vec<Result<(), BrokerError>>, BrokerError>,
    },
    /// The stream ends after it.
    Failed(BrokerError),
}

/// The client's credits: records and bytes it can take.
#[derive(Debug)]
pub(crate) struct Credits {
    records: u64,
    /// `None`: no byte limit.
    bytes: Option<u64>,
}

impl Default for Credits {
    fn default() -> Self {
        Credits {
            records: 0,
            bytes: Some(0),
        }
    }
}

impl Credits {
    /// Adds a grant; `bytes = 0` lifts the byte limit for good.
    pub(crate) fn grant(&mut self, records: u32, bytes: u64) {
        self.records = self.records.saturating_add(u64::from(records));
        self.bytes = match (self.bytes, bytes) {
            (_, 0) | (None, _) => None,
            (Some(left), more) => Some(left.saturating_add(more)),
        };
    }

    /// Whether another record may be taken: records left, and bytes not used up (the last
    /// record may go past the byte balance: it is sent whole).
    pub(crate) fn allow(&self) -> bool {
        self.records > 0 && self.bytes != Some(0)
    }

    /// Records the client can take now.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn spend(&mut self, size: u64) {
        self.records = self.records.saturating_sub(1);
        if let Some(left) = &mut self.bytes {
            *left = left.saturating_sub(size);
        }
    }
}

/// The bytes a record costs against the credits and the push size.
pub(crate) fn record_size(record: &ConsumerRecord) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    let key = record.key.as_ref().map_or(0, |k| k.len());
    let value = record.value.as_ref().map_or(0, |v| v.len());
    (record.topic.len() + key + value + headers + 32) as u64
}

/// A client failure, as the stream answers it.
pub(crate) fn client_error(err: ClientError) -> BrokerError {
    if let Some(code) = err.code() {
        return BrokerError::Forwarded {
            code: code as i32,
            message: err.to_string(),
            leader: None,
        };
    }
    match err {
        ClientError::InvalidArgument { message } => BrokerError::InvalidRequest(message),
        other => BrokerError::Timeout(stave_client::display_chain(&other)),
    }
}

impl Broker {
    /// The client the node's Consume streams share, bootstrapped at the node itself (over
    /// TLS, with the node's certificate, when the node has TLS); it reads the partitions
    /// this node leads in process. It speaks as a node (the cluster secret): each stream was
    /// authorized at its subscribe.
    pub(crate) async fn own_client(&self) -> Result<Client, BrokerError> {
        let addr = self.config().advertised().to_string();
        let credentials = stave_client::Credentials::none()
            .with(
                stave_raft::transport::CLUSTER_SECRET_HEADER,
                self.cluster_secret.expose(),
            )
            .map_err(client_error)?;
        let config = ClientConfig {
            bootstrap: vec![addr.clone()],
            tls: self.tls().map(|tls| tls.client_config().clone()),
            credentials,
            ..ClientConfig::default()
        };
        let local = crate::grpc::LocalReads::new(self.this.clone(), addr);
        self.consume_client
            .get_or_try_init(|| async {
                Client::connect_within(config, local)
                    .await
                    .map_err(client_error)
            })
            .await
            .cloned()
    }

    /// Serves one Consume stream: subscribes, then pushes records within the credits and
    /// answers commits until the stream is gone (`output` closes), or the client ended its
    /// side (`input` closes) and its credits are used up. Then it leaves the group
    /// (committing first only with `auto_commit`).
    pub(crate) async fn consume(
        &self,
        subscription: Subscription,
        mut input: mpsc::Receiver<ConsumeInput>,
        output: mpsc::Sender<ConsumeOutput>,
    ) {
        if subscription.queue.is_some() {
            return self.consume_queue(subscription, input, output).await;
        }
        let (changes_tx, mut changes) = mpsc::unbounded_channel();
        let mut consumer = match self.subscribe(&subscription, changes_tx).await {
            Ok(consumer) => consumer,
            Err(err) => {
                let _ = output.send(ConsumeOutput::Failed(err)).await;
                return;
            }
        };
        let mut credits = Credits::default();
        // Records taken from the consumer (within the credits) and not pushed yet: empty at
        // the top of every turn, so a revocation never commits past a record not pushed.
        let mut waiting: VecDeque<ConsumerRecord> = VecDeque::new();
        // The client ended its side: what its credits still allow goes out, then the end.
        let mut client_done = false;
        loop {
            // Assignment changes (made while the consumer steps) go before the records taken
            // after them.
            if forward_changes(&mut changes, &output).await.is_err()
                || push_ready(&mut waiting, &output).await.is_err()
            {
                break;
            }
            let may_read = credits.allow();
            if client_done && !may_read {
                break;
            }
            tokio::select! {
                asked = input.recv(), if !client_done => match asked {
                    Some(ConsumeInput::Credit { records, bytes }) => credits.grant(records, bytes),
                    Some(ConsumeInput::Commit { id, offsets }) => {
                        let result = commit(&mut consumer, &offsets).await;
                        if output.send(ConsumeOutput::Committed { id, result }).await.is_err() {
                            break;
                        }
                    }
                    Some(ConsumeInput::Settle { id, .. }) => {
                        let refused = BrokerError::InvalidRequest(
                            "Settle is for queue groups (mode = QUEUE)".into(),
                        );
                        let settled = ConsumeOutput::Settled { id, result: Err(refused) };
                        if output.send(settled).await.is_err() {
                            break;
                        }
                    }
                    Some(ConsumeInput::Refused(err)) => {
                        let _ = output.send(ConsumeOutput::Failed(err)).await;
                        break;
                    }
                    None => client_done = true,
                },
                // Reading when there is credit; otherwise the group's changes are still
                // applied, so the partitions can move.
                step = next_step(&mut consumer, may_read) => {
                    if let Err(err) = take_step(step, &mut consumer, &mut waiting, &mut credits) {
                        let _ = forward_changes(&mut changes, &output).await;
                        // What was taken still goes out.
                        let _ = push_ready(&mut waiting, &output).await;
                        let _ = output.send(ConsumeOutput::Failed(client_error(err))).await;
                        break;
                    }
                }
                // A change made while the consumer waits for records goes out at once (a
                // client may wait for its assignment before anything is written).
                Some(change) = changes.recv() => {
                    if output.send(ConsumeOutput::Assignment(change)).await.is_err() {
                        break;
                    }
                }
                () = output.closed() => break,
            }
        }
        if let Err(err) = consumer.close().await {
            tracing::debug!(%err, "a Consume stream's member did not leave cleanly");
        }
    }

    /// The consumer a subscription asks for, its assignment changes sent to `changes`.
    async fn subscribe(
        &self,
        subscription: &Subscription,
        changes: mpsc::UnboundedSender<AssignmentChange>,
    ) -> Result<Consumer, BrokerError> {
        check_subscription(subscription)?;
        let start = start_position(subscription.start);
        let config = ConsumerConfig {
            offset_reset: OffsetReset::Earliest,
            auto_commit_interval: subscription.auto_commit.then_some(AUTO_COMMIT_EVERY),
            start_without_commit: start,
            fetch_bytes_max: PUSH_BYTES_MAX as u32,
            ..ConsumerConfig::default()
        };
        let mut consumer = self.own_client().await?.consumer(config);
        if !subscription.group.is_empty() {
            let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
            consumer
                .subscribe(&subscription.group, &topics)
                .await
                .map_err(client_error)?;
            consumer.on_assignment_change(move |change| {
                let _ = changes.send(change.clone());
            });
            return Ok(consumer);
        }
        for (topic, partitions) in self.partitions_to_read(subscription)? {
            for partition in partitions {
                consumer
                    .assign(&topic, partition, start)
                    .await
                    .map_err(client_error)?;
            }
        }
        Ok(consumer)
    }

    /// Without a group: each topic (patterns matched now) and the partitions to read.
    fn partitions_to_read(
        &self,
        subscription: &Subscription,
    ) -> Result<Vec<(String, Vec<u32>)>, BrokerError> {
        let mut read = Vec::new();
        for (name, count) in self.subscribed_topics(&subscription.topics)? {
            let partitions: Vec<u32> = if subscription.partitions.is_empty() {
                (0..count).collect()
            } else {
                subscription.partitions.clone()
            };
            if let Some(missing) = partitions.iter().find(|p| **p >= count) {
                return Err(BrokerError::UnknownPartition {
                    topic: name,
                    partition: *missing,
                });
            }
            read.push((name, partitions));
        }
        Ok(read)
    }

    /// The topics `subscribed` names or matches now (a pattern never matches an internal or
    /// system topic), with their partition counts; a name that is no topic: UNKNOWN_TOPIC.
    pub(crate) fn subscribed_topics(
        &self,
        subscribed: &[String],
    ) -> Result<Vec<(String, u32)>, BrokerError> {
        let metadata = self.node().controller().metadata();
        let mut found = Vec::new();
        for wanted in subscribed {
            let pattern = Pattern::parse(wanted).map_err(BrokerError::InvalidRequest)?;
            if pattern.is_literal() {
                let topic = metadata
                    .topic(wanted)
                    .ok_or_else(|| BrokerError::UnknownTopic(wanted.clone()))?;
                found.push((wanted.clone(), topic.partition_count()));
            } else {
                found.extend(
                    metadata
                        .topics()
                        .iter()
                        .filter(|(name, _)| pattern.matches(name))
                        .map(|(name, topic)| (name.clone(), topic.partition_count())),
                );
            }
        }
        Ok(found)
    }
}

/// The client's start position for a stream's start.
pub(crate) fn start_position(start: Start) -> StartPosition {
    match start {
        Start::Earliest => StartPosition::Earliest,
        Start::Latest => StartPosition::Latest,
        Start::Offset(offset) => StartPosition::Offset(offset),
        Start::Timestamp(ms) => StartPosition::Timestamp(ms),
    }
}

fn check_subscription(subscription: &Subscription) -> Result<(), BrokerError> {
    if subscription.topics.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "a subscription needs at least one topic or pattern".into(),
        ));
    }
    if !subscription.group.is_empty() && !subscription.partitions.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "a group assigns the partitions: `partitions` is only for streams without one".into(),
        ));
    }
    Ok(())
}

/// Commits `offsets` (everything delivered when empty).
async fn commit(
    consumer: &mut Consumer,
    offsets: &[(String, u32, u64)],
) -> Result<(), BrokerError> {
    let committed = if offsets.is_empty() {
        consumer.commit().await
    } else {
        consumer.commit_offsets(offsets).await
    };
    committed.map_err(client_error)
}

/// Sends the assignment changes made so far; an error if the stream closed.
async fn forward_changes(
    changes: &mut mpsc::UnboundedReceiver<AssignmentChange>,
    output: &mpsc::Sender<ConsumeOutput>,
) -> Result<(), BrokerError> {
    while let Ok(change) = changes.try_recv() {
        if output
            .send(ConsumeOutput::Assignment(change))
            .await
            .is_err()
        {
            return Err(BrokerError::Internal("the stream closed".into()));
        }
    }
    Ok(())
}

/// What a turn of the consumer gave.
enum Step {
    Record(Result<ConsumerRecord, ClientError>),
    Kept(Result<(), ClientError>),
}

/// The consumer's next record if the stream may take one, else its next group step.
async fn next_step(consumer: &mut Consumer, may_read: bool) -> Step {
    if may_read {
        Step::Record(consumer.next().await)
    } else {
        Step::Kept(consumer.keep_membership().await)
    }
}

/// Takes what a turn of the consumer gave: a record (and the ones already fetched behind it)
/// into `waiting`, within the credits.
fn take_step(
    step: Step,
    consumer: &mut Consumer,
    waiting: &mut VecDeque<ConsumerRecord>,
    credits: &mut Credits,
) -> Result<(), ClientError> {
    match step {
        Step::Record(Ok(record)) => {
            credits.spend(record_size(&record));
            waiting.push_back(record);
            take_buffered(consumer, waiting, credits);
            Ok(())
        }
        Step::Record(Err(err)) | Step::Kept(Err(err)) => Err(err),
        Step::Kept(Ok(())) => Ok(()),
    }
}

/// Moves the records the consumer already holds (no waiting) to `waiting`, as many as the
/// credits and one push allow.
fn take_buffered(
    consumer: &mut Consumer,
    waiting: &mut VecDeque<ConsumerRecord>,
    credits: &mut Credits,
) {
    while waiting.len() < PUSH_RECORDS_MAX && credits.allow() {
        let Some(record) = consumer.try_next() else {
            break;
        };
        credits.spend(record_size(&record));
        waiting.push_back(record);
    }
}

/// Pushes every record of `waiting` (taken within the credits), in messages within the push
/// bounds; an error if the stream closed.
async fn push_ready(
    waiting: &mut VecDeque<ConsumerRecord>,
    output: &mpsc::Sender<ConsumeOutput>,
) -> Result<(), BrokerError> {
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some(record) = waiting.front() {
            let size = record_size(record) as usize;
            let full = batch.len() >= PUSH_RECORDS_MAX || bytes + size > PUSH_BYTES_MAX;
            if full && !batch.is_empty() {
                break;
            }
            bytes += size;
            batch.extend(waiting.pop_front());
        }
        if batch.is_empty() {
            return Ok(());
        }
        if output.send(ConsumeOutput::Records(batch)).await.is_err() {
            return Err(BrokerError::Internal("the stream closed".into()));
        }
    }
}

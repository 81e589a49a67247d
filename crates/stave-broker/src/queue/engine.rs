//! The coordinator's task for one queue group. It owns the group's state (members, and per
//! partition a [`PartitionQueue`]) and takes commands from the requests (fetch, settle,
//! describe, stop) over a channel, so no lock is held across the group's logic. Each turn:
//! handle what came (a command, records read, a write or a dead letter finished, the tick),
//! then hand out records to the fetches waiting, pause or resume reading, start the next
//! state write and the dead letters due.
//!
//! It runs while this node leads the group's `__offsets` partition in the term it started in;
//! it stops when that changes (the requests waiting get NOT_COORDINATOR and their members
//! find the new coordinator), when the group has been idle a while, or when asked (reset).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, StartPosition};
use stave_log::batch::BatchBuilder;
use stave_log::message_id::MESSAGE_ID_HEADER;
use stave_raft::Partition;
use stave_raft::controller::{OFFSETS_TOPIC, is_internal_topic};
use stave_raft::group::RaftGroupId;
use stave_raft::offsets::{Committed, OffsetKey, as_record, commit_record};
use tokio::sync::{mpsc, oneshot};

use super::state::{Outcome, PartitionQueue, Persisted, SettleError};
use super::{
    Delivered, FETCH_RECORDS_MAX, FETCH_WAIT_MAX_MS, IN_FLIGHT_MAX, MEMBER_SESSION_MS, Ordering,
    QueueDescription, QueueFetch, QueueFetched, QueueMemberView, QueuePartitionView, Settings,
    SettleItem, dead_letter_topic,
};
use crate::admin::TopicSpec;
use crate::broker::{Broker, lock};
use crate::consume::{PUSH_BYTES_MAX, Start};
use crate::consumer_group::now_ms;
use crate::consumer_group::pattern::Pattern;
use crate::error::BrokerError;
use crate::publish::PublishRecord;

/// How often timers are looked at (locks, fetch deadlines, sessions, leadership).
const TICK: Duration = Duration::from_millis(20);
/// Records read ahead per partition before reading pauses (it resumes at half).
const READ_AHEAD: usize = 2_000;
/// How often pattern subscriptions look for new topics, and broken reads are retried.
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// A dead letter whose write failed is tried again after this.
const DEAD_LETTER_RETRY: Duration = Duration::from_secs(1);
/// How long a dead-letter topic remembers the ids of the letters written to it.
const DEAD_LETTER_DEDUPE_MS: u64 = 3_600_000;
/// A fetch's answer stops taking records past this many bytes (the API's messages are at
/// most 16 MiB; an answer always takes at least one record).
const ANSWER_BYTES_MAX: usize = 8 << 20;
/// A group with no member for this long stops its task (its state is written).
const IDLE_STOP: Duration = Duration::from_secs(60);

type Reply<T> = oneshot::Sender<Result<T, BrokerError>>;
/// A settle's reply, and its answers (sent once the state holding them is written).
type SettleAnswer = (
    Reply<Vec<Result<(), BrokerError>>>,
    Vec<Result<(), BrokerError>>,
);

/// A request to a queue group's task.
pub(crate) enum Command {
    Fetch(QueueFetch, Reply<QueueFetched>),
    Settle {
        member_id: String,
        items: Vec<SettleItem>,
        reply: Reply<Vec<Result<(), BrokerError>>>,
    },
    Describe(oneshot::Sender<QueueDescription>),
    /// Stop without writing anything more (a reset is about to move the offsets).
    Stop(oneshot::Sender<()>),
}

/// A running queue group, as the broker keeps it.
pub(crate) struct Handle {
    tx: mpsc::Sender<Command>,
    term: u64,
    members: Arc<AtomicUsize>,
}

impl Handle {
    /// Its members now.
    pub(crate) fn members(&self) -> usize {
        if self.tx.is_closed() {
            0
        } else {
            self.members.load(AtomicOrdering::Relaxed)
        }
    }
}

fn gone(group: &str) -> BrokerError {
    BrokerError::CoordinatorNotAvailable(group.to_string())
}

impl Broker {
    /// The task of queue group `group` (this node must coordinate it), started if `join`
    /// (a member joining); otherwise a group not running here has no members, and the
    /// answer is UNKNOWN_MEMBER_ID (a forged or stale member id starts nothing).
    async fn queue_engine(
        &self,
        group: &str,
        member_id: &str,
        join: bool,
    ) -> Result<mpsc::Sender<Command>, BrokerError> {
        let (partition, raft_group) = self.coordinator_partition(group).await?;
        let term = partition.term();
        let mut engines = lock(&self.queue_groups);
        if let Some(handle) = engines.get(group)
            && handle.term == term
            && !handle.tx.is_closed()
        {
            return Ok(handle.tx.clone());
        }
        engines.retain(|_, handle| !handle.tx.is_closed());
        if !join {
            return Err(crate::consumer_group::GroupMembershipError::UnknownMember(
                member_id.to_string(),
            )
            .into());
        }
        let (tx, rx) = mpsc::channel(1024);
        let members = Arc::new(AtomicUsize::new(0));
        let engine = Engine::new(
            self.this.clone(),
            group.to_string(),
            (partition, raft_group, term),
            members.clone(),
        );
        tokio::spawn(engine.run(rx));
        engines.insert(
            group.to_string(),
            Handle {
                tx: tx.clone(),
                term,
                members,
            },
        );
        Ok(tx)
    }

    /// A queue member's fetch: join, wait for records, heartbeat or leave.
    pub(crate) async fn queue_fetch(&self, fetch: QueueFetch) -> Result<QueueFetched, BrokerError> {
        fetch.options.check()?;
        if fetch.max_records > FETCH_RECORDS_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "a fetch asks for at most {FETCH_RECORDS_MAX} records, not {}",
                fetch.max_records
            )));
        }
        if fetch.member_id.is_empty() && fetch.leave {
            return Err(BrokerError::InvalidRequest(
                "leave needs the member id".into(),
            ));
        }
        if fetch.member_id.is_empty() {
            check_subscription(&fetch.group, &fetch.topics)?;
            if self
                .consumer_groups_lock()
                .get(&fetch.group)
                .is_some_and(|group| !group.is_empty())
            {
                return Err(BrokerError::GroupMismatch {
                    group: fetch.group.clone(),
                    why: "it is a consumer group with members: a queue group needs its own name"
                        .into(),
                });
            }
        }
        let group = fetch.group.clone();
        let join = fetch.member_id.is_empty();
        let tx = self.queue_engine(&group, &fetch.member_id, join).await?;
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Fetch(fetch, reply))
            .await
            .map_err(|_| gone(&group))?;
        answer.await.map_err(|_| gone(&group))?
    }

    /// A queue member's settlements; one answer per item.
    pub(crate) async fn queue_settle(
        &self,
        group: &str,
        member_id: String,
        items: Vec<SettleItem>,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        if items.len() > FETCH_RECORDS_MAX as usize {
            return Err(BrokerError::InvalidRequest(format!(
                "a settle names at most {FETCH_RECORDS_MAX} records, not {}",
                items.len()
            )));
        }
        let tx = self.queue_engine(group, &member_id, false).await?;
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Settle {
            member_id,
            items,
            reply,
        })
        .await
        .map_err(|_| gone(group))?;
        answer.await.map_err(|_| gone(group))?
    }

    /// A running queue group's state (this node coordinates it), if it runs here.
    pub(crate) async fn describe_queue(&self, group: &str) -> Option<QueueDescription> {
        let tx = {
            let engines = lock(&self.queue_groups);
            engines.get(group).map(|handle| handle.tx.clone())?
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Describe(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Members of queue group `group` running here.
    pub(crate) fn queue_members(&self, group: &str) -> usize {
        lock(&self.queue_groups)
            .get(group)
            .map_or(0, Handle::members)
    }

    /// Stops queue group `group`'s task (before a reset moves its offsets); refused while it
    /// has members.
    pub(crate) async fn stop_queue(&self, group: &str) -> Result<(), BrokerError> {
        let handle = lock(&self.queue_groups).remove(group);
        let Some(handle) = handle else {
            return Ok(());
        };
        if handle.members() > 0 {
            let group_name = group.to_string();
            lock(&self.queue_groups).insert(group_name, handle);
            return Err(BrokerError::ConsumerGroupNotEmpty(group.to_string()));
        }
        let (reply, stopped) = oneshot::channel();
        if handle.tx.send(Command::Stop(reply)).await.is_ok() {
            let _ = stopped.await;
        }
        Ok(())
    }

    /// Writes one dead letter: the record with headers naming where it came from, into
    /// `_dlq.{group}.{topic}` (created if missing), with a message id derived from (group,
    /// topic, partition, offset), so a second write of it (after a failover) is dropped by
    /// the topic's id table. Produce takes records Publish refuses (a timestamp before 1970,
    /// a header without a name): those are mended (the timestamp in `stave-dlq-timestamp`
    /// either way, an unnamed header named `stave-dlq-unnamed`). A letter still refused for
    /// good (too large for the node, say) is written without its key, value and headers,
    /// with `stave-dlq-error` saying why; if even that is refused, the record is let go
    /// (logged): a partition must never stop on a letter that cannot be written.
    async fn write_dead_letter(
        &self,
        group: &str,
        record: &ConsumerRecord,
        deliveries: u32,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let topic = dead_letter_topic(group, &record.topic);
        if self.node().controller().metadata().topic(&topic).is_none() {
            let spec = TopicSpec {
                name: topic.clone(),
                partitions: 1,
                replication_factor: 0,
                // A second write of a letter (after a failover redelivered its record) is
                // dropped by id within the dedupe window: an hour, not the default 2 min.
                configs: vec![
                    ("max.message.bytes".into(), (16u64 << 20).to_string()),
                    ("dedupe.window.ms".into(), DEAD_LETTER_DEDUPE_MS.to_string()),
                ],
            };
            match self.create_topic(spec).await {
                Ok(()) | Err(BrokerError::TopicExists(_)) => {}
                Err(err) => return Err(err),
            }
        }
        let whole = dead_letter(group, &topic, record, deliveries, reason, None);
        let why = match self.publish_one(whole).await {
            Err(err) if permanent(&err) => err.to_string(),
            other => return other,
        };
        tracing::warn!(group, %why, "a dead letter of {}/{} offset {} is written without its record", record.topic, record.partition, record.offset);
        let stub = dead_letter(group, &topic, record, deliveries, reason, Some(&why));
        match self.publish_one(stub).await {
            Err(err) if permanent(&err) => {
                tracing::error!(group, %err, "the dead letter of {}/{} offset {} cannot be written; the record is let go", record.topic, record.partition, record.offset);
                Ok(())
            }
            other => other,
        }
    }

    async fn publish_one(&self, record: PublishRecord) -> Result<(), BrokerError> {
        let mut outcomes = self.publish(vec![record], false).await;
        match outcomes.pop().map(|outcome| outcome.result) {
            Some(Ok(_)) => Ok(()),
            Some(Err(err)) => Err(match Arc::try_unwrap(err) {
                Ok(err) => err,
                Err(shared) => BrokerError::Forwarded {
                    code: crate::grpc::convert::error(&shared).code,
                    message: shared.to_string(),
                    leader: None,
                },
            }),
            None => Err(BrokerError::Internal("dead letter not answered".into())),
        }
    }
}

/// A refusal that a retry of the same letter cannot change.
fn permanent(err: &BrokerError) -> bool {
    use stave_proto::v1::ErrorCode as C;
    let code = crate::grpc::convert::error(err).code;
    [
        C::InvalidRequest,
        C::MessageTooLarge,
        C::CorruptBatch,
        C::InvalidTopicName,
        C::ReservedTopicName,
        C::InvalidConfig,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

/// The dead letter of `record`: itself with headers naming where it came from and why
/// (`error`: a letter refused whole, written without the record's key, value and headers).
fn dead_letter(
    group: &str,
    topic: &str,
    record: &ConsumerRecord,
    deliveries: u32,
    reason: &str,
    error: Option<&str>,
) -> PublishRecord {
    let id = {
        let mut source = Vec::new();
        for part in [group.as_bytes(), record.topic.as_bytes()] {
            source.extend_from_slice(&(part.len() as u32).to_le_bytes());
            source.extend_from_slice(part);
        }
        source.extend_from_slice(&record.partition.to_le_bytes());
        source.extend_from_slice(&record.offset.to_le_bytes());
        format!("dlq-{:032x}", xxhash_rust::xxh3::xxh3_128(&source))
    };
    let text = |s: String| Bytes::from(s.into_bytes());
    let mut headers: Vec<(String, Bytes)> = Vec::with_capacity(record.headers.len() + 9);
    if error.is_none() {
        for (key, value) in &record.headers {
            let key = match key.as_str() {
                MESSAGE_ID_HEADER => "stave-dlq-id",
                "" => "stave-dlq-unnamed",
                other => other,
            };
            headers.push((key.to_string(), value.clone()));
        }
    }
    headers.push(("stave-dlq-group".into(), text(group.to_string())));
    headers.push(("stave-dlq-topic".into(), text(record.topic.to_string())));
    headers.push((
        "stave-dlq-partition".into(),
        text(record.partition.to_string()),
    ));
    headers.push(("stave-dlq-offset".into(), text(record.offset.to_string())));
    headers.push(("stave-dlq-deliveries".into(), text(deliveries.to_string())));
    headers.push(("stave-dlq-reason".into(), text(reason.to_string())));
    headers.push((
        "stave-dlq-timestamp".into(),
        text(record.timestamp.to_string()),
    ));
    if let Some(error) = error {
        headers.push(("stave-dlq-error".into(), text(error.to_string())));
    }
    headers.push((MESSAGE_ID_HEADER.into(), text(id)));
    let (key, value) = match error {
        None => (record.key.clone(), record.value.clone().unwrap_or_default()),
        Some(_) => (None, Bytes::new()),
    };
    PublishRecord {
        topic: topic.to_string(),
        key,
        value,
        headers,
        partition: None,
        timestamp_ms: Some(record.timestamp.max(0)),
    }
}

/// Refuses a subscription no queue group can have.
fn check_subscription(group: &str, topics: &[String]) -> Result<(), BrokerError> {
    // The name goes into its dead-letter topics' names: topic characters, and short enough
    // that `_dlq.{group}.` leaves room for any topic (see `dead_letter_topic`).
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if group.is_empty() || group.len() > super::GROUP_NAME_BYTES_MAX || !group.chars().all(allowed)
    {
        return Err(BrokerError::InvalidRequest(format!(
            "a queue group's name has 1 to {} characters from A-Z a-z 0-9 . _ - (it names \
             its dead-letter topics), not {group:?}",
            super::GROUP_NAME_BYTES_MAX
        )));
    }
    if topics.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "a queue group member needs at least one topic or pattern".into(),
        ));
    }
    for topic in topics {
        Pattern::parse(topic).map_err(BrokerError::InvalidRequest)?;
        if is_internal_topic(topic) {
            return Err(BrokerError::ReservedTopicName(topic.clone()));
        }
    }
    Ok(())
}

type PartitionKey = (Arc<str>, u32);

/// A fetch waiting for records.
struct Waiter {
    max: usize,
    /// Bytes of the records given so far (an answer stays under [`ANSWER_BYTES_MAX`]).
    bytes: usize,
    deadline: Instant,
    records: Vec<Delivered>,
    reply: Reply<QueueFetched>,
}

struct Member {
    name: String,
    last_seen_ms: i64,
    delivered: u64,
    acked: u64,
    waiter: Option<Waiter>,
}

/// A state write under way or done.
struct Written {
    result: Result<(), BrokerError>,
    /// Settles answered once the write is committed.
    settles: Vec<SettleAnswer>,
    floors: Vec<(PartitionKey, u64)>,
}

struct LetterWritten {
    key: PartitionKey,
    offset: u64,
    result: Result<(), BrokerError>,
}

struct Engine {
    broker: Weak<Broker>,
    group: String,
    /// The `__offsets` partition holding the group's state, led here in `term`.
    offsets: Partition,
    raft_group: RaftGroupId,
    term: u64,
    members_count: Arc<AtomicUsize>,

    settings: Option<Settings>,
    /// The subscription (sorted), and where partitions without state start.
    topics: Vec<String>,
    start: Start,
    members: HashMap<u64, Member>,
    /// Members with a fetch waiting, in the order they are served.
    turns: VecDeque<u64>,
    queues: BTreeMap<PartitionKey, PartitionQueue>,
    /// Partitions being read now.
    reading: HashSet<PartitionKey>,
    consumer: Option<Consumer>,
    /// Partitions read from next in dispatch (rotates).
    partition_turn: usize,

    settles: Vec<SettleAnswer>,
    writing: bool,
    written_tx: mpsc::UnboundedSender<Written>,
    written_rx: mpsc::UnboundedReceiver<Written>,
    letters: HashMap<(PartitionKey, u64), Option<Instant>>,
    letters_tx: mpsc::UnboundedSender<LetterWritten>,
    letters_rx: mpsc::UnboundedReceiver<LetterWritten>,
    last_refresh: Instant,
    read_broken: bool,
    idle_since: Instant,
}

impl Engine {
    fn new(
        broker: Weak<Broker>,
        group: String,
        (offsets, raft_group, term): (Partition, RaftGroupId, u64),
        members_count: Arc<AtomicUsize>,
    ) -> Engine {
        let (written_tx, written_rx) = mpsc::unbounded_channel();
        let (letters_tx, letters_rx) = mpsc::unbounded_channel();
        Engine {
            broker,
            group,
            offsets,
            raft_group,
            term,
            members_count,
            settings: None,
            topics: Vec::new(),
            start: Start::Latest,
            members: HashMap::new(),
            turns: VecDeque::new(),
            queues: BTreeMap::new(),
            reading: HashSet::new(),
            consumer: None,
            partition_turn: 0,
            settles: Vec::new(),
            writing: false,
            written_tx,
            written_rx,
            letters: HashMap::new(),
            letters_tx,
            letters_rx,
            last_refresh: Instant::now(),
            read_broken: false,
            idle_since: Instant::now(),
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut stopped = None;
        loop {
            let reading = !self.read_broken && !self.reading.is_empty();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Stop(reply)) => {
                        stopped = Some(reply);
                        break;
                    }
                    Some(command) => self.command(command).await,
                    None => break,
                },
                record = next_record(&mut self.consumer), if reading => self.take_record(record),
                Some(written) = self.written_rx.recv() => self.written(written),
                Some(letter) = self.letters_rx.recv() => self.letter_written(letter),
                _ = tick.tick() => {
                    if !self.on_tick().await {
                        break;
                    }
                }
            }
            self.dispatch();
            self.adjust_reading().await;
            self.write_state();
            self.send_dead_letters();
        }
        self.finish();
        if let Some(reply) = stopped {
            let _ = reply.send(());
        }
    }

    /// Answers everything waiting: this task stops.
    fn finish(&mut self) {
        self.members_count.store(0, AtomicOrdering::Relaxed);
        let group = self.group.clone();
        for member in self.members.values_mut() {
            if let Some(waiter) = member.waiter.take() {
                if waiter.records.is_empty() {
                    let _ = waiter.reply.send(Err(gone(&group)));
                } else {
                    let _ = waiter.reply.send(Ok(QueueFetched {
                        member_id: member.name.clone(),
                        records: waiter.records,
                    }));
                }
            }
        }
        for (reply, _) in self.settles.drain(..) {
            let _ = reply.send(Err(gone(&group)));
        }
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.upgrade()
    }

    fn settings(&self) -> Settings {
        self.settings
            .unwrap_or_else(|| super::QueueOptions::default().settings())
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Fetch(fetch, reply) => self.fetch(fetch, reply).await,
            Command::Settle {
                member_id,
                items,
                reply,
            } => self.settle(&member_id, items, reply),
            Command::Describe(reply) => {
                let _ = reply.send(self.describe());
            }
            Command::Stop(_) => {}
        }
    }

    fn member_key(&self, member_id: &str) -> Result<u64, BrokerError> {
        u64::from_str_radix(member_id, 16)
            .ok()
            .filter(|id| self.members.contains_key(id))
            .ok_or_else(|| {
                crate::consumer_group::GroupMembershipError::UnknownMember(member_id.to_string())
                    .into()
            })
    }

    async fn fetch(&mut self, fetch: QueueFetch, reply: Reply<QueueFetched>) {
        let now = now_ms();
        let id = if fetch.member_id.is_empty() {
            match self.join(&fetch).await {
                Ok(id) => id,
                Err(err) => {
                    let _ = reply.send(Err(err));
                    return;
                }
            }
        } else {
            match self.member_key(&fetch.member_id) {
                Ok(id) => id,
                Err(err) => {
                    let _ = reply.send(Err(err));
                    return;
                }
            }
        };
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        member.last_seen_ms = now;
        let name = member.name.clone();
        if let Some(old) = member.waiter.take() {
            let _ = old.reply.send(Ok(QueueFetched {
                member_id: name.clone(),
                records: old.records,
            }));
        }
        if fetch.leave {
            self.drop_member(id);
            let _ = reply.send(Ok(QueueFetched {
                member_id: name,
                records: Vec::new(),
            }));
            return;
        }
        if fetch.max_records == 0 {
            let _ = reply.send(Ok(QueueFetched {
                member_id: name,
                records: Vec::new(),
            }));
            return;
        }
        let wait = Duration::from_millis(u64::from(fetch.max_wait_ms.min(FETCH_WAIT_MAX_MS)));
        member.waiter = Some(Waiter {
            max: fetch.max_records as usize,
            bytes: 0,
            deadline: Instant::now() + wait,
            records: Vec::new(),
            reply,
        });
        if !self.turns.contains(&id) {
            self.turns.push_back(id);
        }
    }

    /// A new member: the first one sets the group up (settings, subscription, partitions).
    async fn join(&mut self, fetch: &QueueFetch) -> Result<u64, BrokerError> {
        let mut topics = fetch.topics.clone();
        topics.sort();
        topics.dedup();
        if self.members.is_empty() {
            self.settings = Some(fetch.options.settings());
            if self.topics != topics {
                // Another subscription: partitions of topics no longer read are let go.
                self.topics = topics;
                let wanted = self.topics.clone();
                self.queues.retain(|(topic, _), _| {
                    wanted
                        .iter()
                        .any(|w| Pattern::parse(w).is_ok_and(|p| p.matches(topic)))
                });
                self.reading.retain(|key| self.queues.contains_key(key));
                self.restart_reads();
            }
            self.start = fetch.start;
            self.refresh_partitions().await?;
        } else {
            let settings = self.settings();
            let mismatch = |why: String| BrokerError::GroupMismatch {
                group: self.group.clone(),
                why,
            };
            if topics != self.topics {
                return Err(mismatch(format!(
                    "its members read {:?}, this member asked for {topics:?}",
                    self.topics
                )));
            }
            let asked = &fetch.options;
            if asked.ordering != settings.ordering
                || asked.lock_ms.is_some_and(|v| v != settings.lock_ms)
                || asked
                    .max_deliveries
                    .is_some_and(|v| v != settings.max_deliveries)
                || asked
                    .max_unacked_span
                    .is_some_and(|v| v != settings.max_unacked_span)
            {
                return Err(mismatch(format!(
                    "its members run with {settings:?}, this member asked for {asked:?}"
                )));
            }
        }
        let mut id = rand::random::<u64>();
        while id == 0 || self.members.contains_key(&id) {
            id = rand::random::<u64>();
        }
        self.members.insert(
            id,
            Member {
                name: format!("{id:016x}"),
                last_seen_ms: now_ms(),
                delivered: 0,
                acked: 0,
                waiter: None,
            },
        );
        self.members_count
            .store(self.members.len(), AtomicOrdering::Relaxed);
        Ok(id)
    }

    /// A member leaves (or expired): what it holds goes back.
    fn drop_member(&mut self, id: u64) {
        if let Some(mut member) = self.members.remove(&id)
            && let Some(waiter) = member.waiter.take()
        {
            let _ = waiter.reply.send(Ok(QueueFetched {
                member_id: member.name,
                records: waiter.records,
            }));
        }
        self.turns.retain(|turn| *turn != id);
        let max = self.settings().max_deliveries;
        for queue in self.queues.values_mut() {
            queue.release_member(id, max);
        }
        self.members_count
            .store(self.members.len(), AtomicOrdering::Relaxed);
        if self.members.is_empty() {
            self.idle_since = Instant::now();
        }
    }

    fn settle(
        &mut self,
        member_id: &str,
        items: Vec<SettleItem>,
        reply: Reply<Vec<Result<(), BrokerError>>>,
    ) {
        let id = match self.member_key(member_id) {
            Ok(id) => id,
            Err(err) => {
                let _ = reply.send(Err(err));
                return;
            }
        };
        let now = now_ms();
        let settings = self.settings();
        let mut results = Vec::with_capacity(items.len());
        let mut acked = 0;
        let mut to_write = false;
        for mut item in items {
            let result = item.check().and_then(|()| {
                let not_held = || BrokerError::DeliveryNotHeld {
                    topic: item.topic.clone(),
                    partition: item.partition,
                    offset: item.offset,
                    delivery_count: item.delivery_count,
                };
                let key: PartitionKey = (Arc::from(item.topic.as_str()), item.partition);
                let queue = self.queues.get_mut(&key).ok_or_else(not_held)?;
                let outcome = queue
                    .settle(
                        id,
                        item.offset,
                        item.delivery_count,
                        item.action.clone(),
                        now,
                        &settings,
                    )
                    .map_err(|SettleError::NotHeld| not_held())?;
                if outcome == Outcome::Done {
                    acked += 1;
                }
                if outcome != Outcome::Extended {
                    to_write = true;
                }
                Ok(())
            });
            results.push(result);
        }
        if let Some(member) = self.members.get_mut(&id) {
            member.last_seen_ms = now;
            member.acked += acked;
        }
        if to_write {
            // Answered once the state with these outcomes is committed.
            self.settles.push((reply, results));
        } else {
            let _ = reply.send(Ok(results));
        }
    }

    fn describe(&self) -> QueueDescription {
        let now = now_ms();
        let settings = self.settings();
        let mut held: HashMap<u64, u32> = HashMap::new();
        for queue in self.queues.values() {
            for locked in queue.locked.values() {
                *held.entry(locked.member).or_default() += 1;
            }
        }
        let mut members: Vec<QueueMemberView> = self
            .members
            .iter()
            .map(|(id, member)| QueueMemberView {
                member_id: member.name.clone(),
                in_flight: held.get(id).copied().unwrap_or(0),
                delivered: member.delivered,
                acked: member.acked,
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        let partitions = self
            .queues
            .iter()
            .map(|(key, queue)| partition_view(key, queue, &settings, now))
            .collect();
        QueueDescription {
            settings,
            members,
            partitions,
        }
    }

    /// The timers. False: stop (leadership moved on, the broker is gone, or idle).
    async fn on_tick(&mut self) -> bool {
        if self.broker.strong_count() == 0
            || !self.offsets.leads()
            || self.offsets.term() != self.term
        {
            return false;
        }
        let now = now_ms();
        let settings = self.settings();
        for queue in self.queues.values_mut() {
            if queue.locked.values().any(|l| l.deadline_ms <= now) {
                queue.expire(now, settings.max_deliveries);
            }
        }
        let instant = Instant::now();
        for member in self.members.values_mut() {
            if member
                .waiter
                .as_ref()
                .is_some_and(|w| w.deadline <= instant)
                && let Some(waiter) = member.waiter.take()
            {
                let _ = waiter.reply.send(Ok(QueueFetched {
                    member_id: member.name.clone(),
                    records: waiter.records,
                }));
            }
        }
        let expired: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, m)| m.waiter.is_none() && now - m.last_seen_ms > MEMBER_SESSION_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::info!(group = %self.group, member = %format!("{id:016x}"), "queue member expired");
            self.drop_member(id);
        }
        if self.last_refresh.elapsed() >= REFRESH_EVERY && self.settings.is_some() {
            self.last_refresh = Instant::now();
            if let Err(err) = self.refresh_partitions().await {
                tracing::debug!(group = %self.group, %err, "queue group refresh");
            }
            if self.read_broken {
                self.read_broken = false;
                self.restart_reads();
            }
        }
        let busy = !self.members.is_empty()
            || self.writing
            || !self.letters.is_empty()
            || self
                .queues
                .values()
                .any(|q| q.dirty || !q.dead_lettering.is_empty());
        if busy {
            self.idle_since = Instant::now();
        }
        self.idle_since.elapsed() < IDLE_STOP
    }

    /// Matches the subscription against the topics now: partitions new to the group start
    /// at their committed offset (the floor a previous coordinator wrote) with its state, or
    /// at the group's start.
    async fn refresh_partitions(&mut self) -> Result<(), BrokerError> {
        let Some(broker) = self.broker() else {
            return Err(gone(&self.group));
        };
        let wanted = subscribed_topics(&broker, &self.topics)?;
        let missing: Vec<(String, u32)> = wanted
            .iter()
            .flat_map(|(topic, count)| (0..*count).map(move |p| (topic.clone(), p)))
            .filter(|(topic, p)| !self.queues.contains_key(&(Arc::from(topic.as_str()), *p)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let table = self.offsets.offsets_table().unwrap_or_default();
        let mut states: HashMap<(String, u32), Persisted> = HashMap::new();
        for (key, value) in table.queue_group(&self.group) {
            if let Some(state) = Persisted::decode(value) {
                states.insert((key.topic.clone(), key.partition), state);
            }
        }
        if self.consumer.is_none() {
            let client = broker.own_client().await?;
            self.consumer = Some(client.consumer(ConsumerConfig {
                offset_reset: OffsetReset::Earliest,
                fetch_bytes_max: PUSH_BYTES_MAX as u32,
                ..ConsumerConfig::default()
            }));
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(());
        };
        for (topic, partition) in missing {
            let committed = table.get(&OffsetKey {
                group: self.group.clone(),
                topic: topic.clone(),
                partition,
            });
            let start = match committed {
                Some(committed) => StartPosition::Offset(committed.offset),
                None => crate::consume::start_position(self.start),
            };
            let position = consumer
                .assign(&topic, partition, start)
                .await
                .map_err(crate::consume::client_error)?;
            let floor = committed.map_or(position, |c| c.offset);
            let state = states.remove(&(topic.clone(), partition));
            let mut queue = PartitionQueue::new(floor, state);
            if position > floor {
                // Retention removed records the group never finished.
                queue.skip_to(position);
            }
            if committed.is_none() {
                // Where a new group starts is written at once: a failover before its first
                // ack must not move the start to a later "latest".
                queue.dirty = true;
                queue.persisted_floor = u64::MAX;
            }
            let key: PartitionKey = (Arc::from(topic.as_str()), partition);
            self.reading.insert(key.clone());
            self.queues.insert(key, queue);
        }
        Ok(())
    }

    /// Reassigns every partition being read at its next offset (after a read error).
    fn restart_reads(&mut self) {
        if let Some(consumer) = self.consumer.as_mut() {
            for (topic, partition) in consumer.assignment() {
                consumer.unassign(&topic, partition);
            }
        }
        // `adjust_reading` assigns them again.
        self.reading.clear();
    }

    fn take_record(&mut self, record: Result<ConsumerRecord, stave_client::ClientError>) {
        match record {
            Ok(record) => {
                // The records fetched with it too, so a fetch waiting is answered with all
                // of them, not with the first alone.
                let mut next = Some(record);
                while let Some(record) = next {
                    let key: PartitionKey = (record.topic.clone(), record.partition);
                    if let Some(queue) = self.queues.get_mut(&key) {
                        queue.take_read(record);
                    }
                    next = self.consumer.as_mut().and_then(Consumer::try_next);
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "a queue group's read failed; retrying");
                self.read_broken = true;
            }
        }
    }

    /// Pauses partitions read far enough ahead (or at their span limit), resumes the others.
    async fn adjust_reading(&mut self) {
        if self.read_broken {
            return;
        }
        let span = self.settings().max_unacked_span;
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (key, queue) in &self.queues {
            let limit = queue.limit(span);
            let reading = self.reading.contains(key);
            if reading && (queue.waiting.len() >= READ_AHEAD || queue.next_read >= limit) {
                pause.push(key.clone());
            } else if !reading && queue.waiting.len() < READ_AHEAD / 2 && queue.next_read < limit {
                resume.push((key.clone(), queue.next_read));
            }
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return;
        };
        for key in pause {
            consumer.unassign(&key.0, key.1);
            self.reading.remove(&key);
        }
        for (key, next) in resume {
            match consumer
                .assign(&key.0, key.1, StartPosition::Offset(next))
                .await
            {
                Ok(position) => {
                    if let Some(queue) = self.queues.get_mut(&key)
                        && position > queue.next_read
                    {
                        queue.skip_to(position);
                    }
                    self.reading.insert(key);
                }
                Err(err) => {
                    tracing::debug!(group = %self.group, %err, "cannot resume reading {}/{}", key.0, key.1);
                    self.read_broken = true;
                    return;
                }
            }
        }
    }

    /// Hands the records that may go out to the fetches waiting: round robin among them,
    /// one record at a time, never more than a fetch asked for; then answers the fetches
    /// that got records.
    fn dispatch(&mut self) {
        let room: usize = self
            .turns
            .iter()
            .filter_map(|id| self.members.get(id)?.waiter.as_ref())
            .filter(|w| w.bytes < ANSWER_BYTES_MAX)
            .map(|w| w.max.saturating_sub(w.records.len()))
            .sum();
        if room == 0 {
            return;
        }
        let settings = self.settings();
        let now = now_ms();
        let picked = self.pick(room, &settings, now);
        if picked.is_empty() {
            return;
        }
        self.hand_out(picked, now.saturating_add(settings.lock_ms));
        self.answer_served(now, &settings);
    }

    /// Up to `room` records that may go out now, partitions taking turns to go first.
    fn pick(&mut self, mut room: usize, settings: &Settings, now: i64) -> Vec<(PartitionKey, u64)> {
        // Key order: keys in flight (or being dead-lettered) wait, and a key whose earliest
        // waiting record cannot go yet holds back its later ones.
        let mut blocked: HashSet<(Arc<str>, Bytes)> = HashSet::new();
        if settings.ordering == Ordering::Key {
            for ((topic, _), queue) in &self.queues {
                let held = queue
                    .locked
                    .values()
                    .map(|l| &l.record)
                    .chain(queue.dead_lettering.values().map(|d| &d.record));
                for record in held {
                    if let Some(key) = &record.key {
                        blocked.insert((topic.clone(), key.clone()));
                    }
                }
            }
        }
        let keys: Vec<PartitionKey> = self.queues.keys().cloned().collect();
        let mut picked: Vec<(PartitionKey, u64)> = Vec::new();
        let count = keys.len();
        for step in 0..count {
            if room == 0 {
                break;
            }
            let key = &keys[(self.partition_turn + step) % count];
            let Some(queue) = self.queues.get(key) else {
                continue;
            };
            let limit = queue.limit(settings.max_unacked_span);
            let mut free = IN_FLIGHT_MAX.saturating_sub(queue.locked.len());
            for (offset, waiting) in queue.waiting.range(..limit) {
                if room == 0 || free == 0 {
                    break;
                }
                if settings.ordering == Ordering::Key
                    && let Some(record_key) = &waiting.record.key
                    && !blocked.insert((key.0.clone(), record_key.clone()))
                {
                    continue;
                }
                if waiting.not_before_ms > now {
                    continue;
                }
                picked.push((key.clone(), *offset));
                room -= 1;
                free -= 1;
            }
        }
        self.partition_turn = self.partition_turn.wrapping_add(1);
        picked
    }

    /// Locks the picked records to the waiting fetches, one each in turn.
    fn hand_out(&mut self, picked: Vec<(PartitionKey, u64)>, deadline: i64) {
        let mut picked = picked.into_iter();
        'give: loop {
            let mut gave = false;
            for _ in 0..self.turns.len() {
                let Some(id) = self.turns.pop_front() else {
                    break 'give;
                };
                self.turns.push_back(id);
                let Some(member) = self.members.get_mut(&id) else {
                    continue;
                };
                let Some(waiter) = member.waiter.as_mut() else {
                    continue;
                };
                if waiter.records.len() >= waiter.max || waiter.bytes >= ANSWER_BYTES_MAX {
                    continue;
                }
                let Some((key, offset)) = picked.next() else {
                    break 'give;
                };
                let Some(queue) = self.queues.get_mut(&key) else {
                    continue;
                };
                if let Some(locked) = queue.lock(offset, id, deadline) {
                    waiter.bytes += crate::consume::record_size(&locked.record) as usize;
                    waiter.records.push(Delivered {
                        record: locked.record.clone(),
                        delivery_count: locked.deliveries,
                        lock_deadline_ms: deadline,
                    });
                    member.delivered += 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }

    /// Answers the fetches that got records; a fetch whose caller went away gives its
    /// records back.
    fn answer_served(&mut self, now: i64, settings: &Settings) {
        let mut served = Vec::new();
        for (id, member) in &mut self.members {
            if member.waiter.as_ref().is_none_or(|w| w.records.is_empty()) {
                continue;
            }
            let Some(waiter) = member.waiter.take() else {
                continue;
            };
            served.push(*id);
            let answer = QueueFetched {
                member_id: member.name.clone(),
                records: waiter.records,
            };
            let Err(Ok(lost)) = waiter.reply.send(Ok(answer)) else {
                continue;
            };
            for delivered in lost.records {
                let key = (delivered.record.topic.clone(), delivered.record.partition);
                if let Some(queue) = self.queues.get_mut(&key) {
                    let release = super::Action::Release {
                        delay_ms: 0,
                        reason: String::new(),
                    };
                    let _ = queue.settle(
                        *id,
                        delivered.record.offset,
                        delivered.delivery_count,
                        release,
                        now,
                        settings,
                    );
                }
            }
        }
        self.turns.retain(|id| !served.contains(id));
    }

    /// Starts the next state write if none is under way: every partition changed since the
    /// last one (its state record, and its floor as the committed offset when it moved).
    fn write_state(&mut self) {
        if self.writing {
            return;
        }
        let dirty: Vec<PartitionKey> = self
            .queues
            .iter()
            .filter(|(_, q)| q.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        if dirty.is_empty() {
            for (reply, results) in self.settles.drain(..) {
                let _ = reply.send(Ok(results));
            }
            return;
        }
        let Some(broker) = self.broker() else {
            return;
        };
        let commit_ms = now_ms();
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut floors = Vec::new();
        for key in dirty {
            let Some(queue) = self.queues.get_mut(&key) else {
                continue;
            };
            queue.dirty = false;
            let offset_key = OffsetKey {
                group: self.group.clone(),
                topic: key.0.to_string(),
                partition: key.1,
            };
            if queue.floor != queue.persisted_floor {
                let committed = Committed {
                    offset: queue.floor,
                    commit_ms,
                    metadata: String::new(),
                };
                let (k, v) = commit_record(&offset_key, Some(&committed));
                records.push((k, v.unwrap_or_default()));
                floors.push((key.clone(), queue.floor));
            }
            records.push((offset_key.encode_queue(), queue.persisted().encode()));
        }
        let mut builder = BatchBuilder::new();
        for (key, value) in &records {
            builder.push(&as_record(key, Some(value), commit_ms));
        }
        let batch = Bytes::from(builder.finish());
        let settles = std::mem::take(&mut self.settles);
        let partition = self.offsets.clone();
        let raft_group = self.raft_group;
        let done = self.written_tx.clone();
        self.writing = true;
        tokio::spawn(async move {
            let result = broker
                .propose_internal(&partition, OFFSETS_TOPIC, raft_group, batch)
                .await;
            let _ = done.send(Written {
                result,
                settles,
                floors,
            });
        });
    }

    fn written(&mut self, written: Written) {
        self.writing = false;
        match written.result {
            Ok(()) => {
                for (key, floor) in written.floors {
                    if let Some(queue) = self.queues.get_mut(&key) {
                        queue.persisted_floor = floor;
                    }
                }
                for (reply, results) in written.settles {
                    let _ = reply.send(Ok(results));
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "a queue group's state was not written");
                for (key, _) in &written.floors {
                    if let Some(queue) = self.queues.get_mut(key) {
                        queue.dirty = true;
                    }
                }
                // Whatever else changed is written again with the next write.
                for queue in self.queues.values_mut() {
                    queue.dirty = true;
                }
                for (reply, _) in written.settles {
                    let _ = reply.send(Err(BrokerError::Timeout(format!(
                        "the queue group's state was not written: {err}"
                    ))));
                }
            }
        }
    }

    /// Starts the dead-letter writes due.
    fn send_dead_letters(&mut self) {
        let Some(broker) = self.broker() else {
            return;
        };
        let now = Instant::now();
        for (key, queue) in &self.queues {
            for (offset, letter) in &queue.dead_lettering {
                let slot = (key.clone(), *offset);
                match self.letters.get(&slot) {
                    None => {}
                    Some(Some(retry_at)) if *retry_at <= now => {}
                    Some(_) => continue,
                }
                self.letters.insert(slot, None);
                let broker = broker.clone();
                let group = self.group.clone();
                let letter = letter.clone();
                let key = key.clone();
                let offset = *offset;
                let done = self.letters_tx.clone();
                tokio::spawn(async move {
                    let result = broker
                        .write_dead_letter(
                            &group,
                            &letter.record,
                            letter.deliveries,
                            &letter.reason,
                        )
                        .await;
                    let _ = done.send(LetterWritten {
                        key,
                        offset,
                        result,
                    });
                });
            }
        }
    }

    fn letter_written(&mut self, letter: LetterWritten) {
        let slot = (letter.key.clone(), letter.offset);
        match letter.result {
            Ok(()) => {
                self.letters.remove(&slot);
                if let Some(queue) = self.queues.get_mut(&letter.key) {
                    queue.dead_lettered(letter.offset);
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "dead letter of {}/{} offset {} not written; retrying", letter.key.0, letter.key.1, letter.offset);
                self.letters
                    .insert(slot, Some(Instant::now() + DEAD_LETTER_RETRY));
            }
        }
    }
}

/// The topics a subscription names or matches now, with their partition counts.
fn subscribed_topics(
    broker: &Broker,
    topics: &[String],
) -> Result<Vec<(String, u32)>, BrokerError> {
    let metadata = broker.node().controller().metadata();
    let mut wanted: Vec<(String, u32)> = Vec::new();
    for subscribed in topics {
        let pattern = Pattern::parse(subscribed).map_err(BrokerError::InvalidRequest)?;
        if pattern.is_literal() {
            let topic = metadata
                .topic(subscribed)
                .ok_or_else(|| BrokerError::UnknownTopic(subscribed.clone()))?;
            wanted.push((subscribed.clone(), topic.partition_count()));
        } else {
            for (name, topic) in metadata.topics() {
                if pattern.matches(name) {
                    wanted.push((name.clone(), topic.partition_count()));
                }
            }
        }
    }
    Ok(wanted)
}

/// A partition's state as `group describe` shows it.
fn partition_view(
    (topic, partition): &PartitionKey,
    queue: &PartitionQueue,
    settings: &Settings,
    now: i64,
) -> QueuePartitionView {
    let oldest = [
        queue.waiting.values().map(|w| w.record.timestamp).min(),
        queue.locked.values().map(|l| l.record.timestamp).min(),
        queue
            .dead_lettering
            .values()
            .map(|d| d.record.timestamp)
            .min(),
    ]
    .into_iter()
    .flatten()
    .min();
    let blocked = if queue.locked.len() >= IN_FLIGHT_MAX {
        format!("{IN_FLIGHT_MAX} records in flight (the cap)")
    } else if queue
        .waiting
        .keys()
        .next()
        .is_some_and(|first| *first >= queue.limit(settings.max_unacked_span))
        || (queue.waiting.is_empty() && queue.next_read >= queue.limit(settings.max_unacked_span))
    {
        format!(
            "max.unacked.span reached ({} records past offset {})",
            settings.max_unacked_span, queue.floor
        )
    } else {
        String::new()
    };
    QueuePartitionView {
        topic: topic.clone(),
        partition: *partition,
        ack_floor: queue.floor,
        in_flight: queue.locked.len() as u32,
        delayed: queue
            .waiting
            .values()
            .filter(|w| w.not_before_ms > now)
            .count() as u32,
        redeliveries: queue.redeliveries,
        dead_lettered: queue.dead_lettered,
        oldest_unacked_age_s: oldest
            .map_or(0.0, |ts| (now.saturating_sub(ts).max(0) as f64) / 1000.0),
        blocked,
    }
}

/// The next record read, when a consumer runs.
async fn next_record(
    consumer: &mut Option<Consumer>,
) -> Result<ConsumerRecord, stave_client::ClientError> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}

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
//!
//! - `reading`: which partitions the group reads, from where, and pausing when far ahead;
//! - `dispatch`: handing records to the fetches waiting;
//! - `storage`: writing the state to `__offsets`, and the dead letters.

mod dispatch;
mod reading;
mod storage;

use self::reading::next_record;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, StartPosition};
use stave_log::batch::BatchBuilder;
use stave_raft::Partition;
use stave_raft::controller::OFFSETS_TOPIC;
use stave_raft::group::RaftGroupId;
use stave_raft::offsets::{Committed, OffsetKey, as_record, commit_record};
use tokio::sync::{mpsc, oneshot};

use super::state::{Outcome, PartitionQueue, Persisted, SettleError};
use super::{
    Delivered, FETCH_WAIT_MAX_MS, IN_FLIGHT_MAX, MEMBER_SESSION_MS, Ordering, QueueDescription,
    QueueFetch, QueueFetched, QueueMemberView, QueuePartitionView, Settings, SettleItem,
};
use crate::broker::Broker;
use crate::consume::{PUSH_BYTES_MAX, Start};
use crate::consumer_group::now_ms;
use crate::consumer_group::pattern::Pattern;
use crate::error::BrokerError;

/// How often timers are looked at (locks, fetch deadlines, sessions, leadership).
const TICK: Duration = Duration::from_millis(20);
/// Records read ahead per partition before reading pauses (it resumes at half).
const READ_AHEAD: usize = 2_000;
/// How often pattern subscriptions look for new topics, and broken reads are retried.
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// A dead letter whose write failed is tried again after this.
const DEAD_LETTER_RETRY: Duration = Duration::from_secs(1);
/// A fetch's answer stops taking records past this many bytes (the API's messages are at
/// most 16 MiB; an answer always takes at least one record).
const ANSWER_BYTES_MAX: usize = 8 << 20;
/// A group with no member for this long stops its task (its state is written).
const IDLE_STOP: Duration = Duration::from_secs(60);

pub(super) type Reply<T> = oneshot::Sender<Result<T, BrokerError>>;
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
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) term: u64,
    pub(super) members: Arc<AtomicUsize>,
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

pub(super) fn gone(group: &str) -> BrokerError {
    BrokerError::CoordinatorNotAvailable(group.to_string())
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

pub(super) struct Engine {
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
    pub(super) fn new(
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

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
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
            settings: Some(settings),
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

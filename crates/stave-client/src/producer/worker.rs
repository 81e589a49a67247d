//! One task per partition the producer writes to: it runs the partition's [`Pipeline`]
//! against the network. It takes records and flushes from the producer, sends what the
//! pipeline releases to the partition leader's produce stream, feeds the answers back in
//! order, and follows leader changes (the answers' hints and metadata refreshes).
//!
//! The task ends when the producer drops its sender and every record has been answered
//! (written, failed, or timed out).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use stave_proto::v1::{ErrorCode, ProduceRequest, ProduceResponse};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use super::outcome::{Outcome, classify};
use super::pipeline::{Identity, Next, PendingRecord, Pipeline, Reply};
use super::session::{Session, Sessions};
use crate::client::Client;
use crate::error::ClientError;
use crate::record::now_ms;

/// Commands from the producer to a partition's worker.
#[derive(Debug)]
pub(crate) enum Command {
    Record(Accepted),
    /// Answer once every record accepted before this command has been answered.
    Flush(oneshot::Sender<()>),
}

/// A record as `send` accepted it. The worker dates it when it takes it (the record's
/// timestamp unless it has one, and its delivery deadline): one clock reading per wake-up
/// rather than per record.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Bytes)>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) bytes: usize,
    pub(crate) reply: Reply,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The clock readings of one wake-up, the wall clock read only when a record needs it.
struct Clock {
    now: Instant,
    wall_ms: Option<i64>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            now: Instant::now(),
            wall_ms: None,
        }
    }

    fn wall_ms(&mut self) -> i64 {
        *self.wall_ms.get_or_insert_with(now_ms)
    }
}

/// How many queued commands one wake-up takes at most, so a busy producer does not starve
/// the answers (which free room in the window).
const COMMANDS_PER_WAKE_MAX: usize = 4096;

/// A request out on a produce stream.
struct InFlight {
    batch_id: u64,
    addr: String,
    session: Arc<Session>,
    answer: BoxFuture<'static, Result<ProduceResponse, ClientError>>,
}

pub(crate) struct Worker {
    client: Client,
    sessions: Arc<Sessions>,
    topic: Arc<str>,
    partition: u32,
    pipeline: Pipeline,
    idempotent: bool,
    request_timeout: Duration,
    delivery_timeout: Duration,
    commands: mpsc::UnboundedReceiver<Command>,
    requests: VecDeque<InFlight>,
    /// Flushes waiting for every batch with an id below theirs.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: Client,
        sessions: Arc<Sessions>,
        topic: Arc<str>,
        partition: u32,
        pipeline: Pipeline,
        idempotent: bool,
        request_timeout: Duration,
        delivery_timeout: Duration,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Worker {
        Worker {
            client,
            sessions,
            topic,
            partition,
            pipeline,
            idempotent,
            request_timeout,
            delivery_timeout,
            commands,
            requests: VecDeque::new(),
            flushes: Vec::new(),
        }
    }

    pub(crate) async fn run(self) {
        let span = info_span!("producer", topic = %self.topic, partition = self.partition);
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(mut self) {
        let mut commands_open = true;
        loop {
            self.pipeline.expire(Instant::now());
            self.pump().await;
            self.answer_flushes();
            if !commands_open && self.pipeline.is_idle() {
                break;
            }
            debug_assert_eq!(self.requests.len(), self.pipeline.in_flight_len());
            let now = Instant::now();
            if self.pipeline.can_send(now) {
                // The open batch's linger ended since `pump` looked: send it now, as no
                // timer will be set for it.
                continue;
            }
            let linger = self.pipeline.linger_deadline(now);
            let wake = self.pipeline.wake_at(now);
            tokio::select! {
                biased;
                (done, result) = next_answer(&mut self.requests),
                    if !self.requests.is_empty() => {
                    let outcome = classify(result);
                    if let Outcome::Retry(err) | Outcome::OutOfOrder(err) | Outcome::Fail(err) =
                        &outcome
                    {
                        self.client.observe_failure(&self.topic, self.partition, &done.addr, err);
                        if err.is_node_failure()
                            || matches!(
                                err.code(),
                                Some(ErrorCode::NotLeader | ErrorCode::LeaderNotAvailable)
                            )
                        {
                            // A stream can outlive the node instance that opened it (a node
                            // restarted in process keeps old streams until they end), and a
                            // node that stopped answering holds its stream: the next request
                            // opens a new stream rather than trusting this one.
                            self.sessions.retire(&done.addr, &done.session);
                        }
                    } else {
                        self.client.clear_suspicion(&done.addr);
                    }
                    if let Outcome::Retry(err) = &outcome
                        && self.client.hint_to_follow(err).is_some()
                    {
                        self.pipeline.note_redirect();
                    }
                    let batch_id = done.batch_id;
                    self.pipeline.on_response(batch_id, outcome, Instant::now());
                }
                command = self.commands.recv(), if commands_open => match command {
                    Some(command) => {
                        let mut clock = Clock::new();
                        self.handle(command, &mut clock);
                        for _ in 0..COMMANDS_PER_WAKE_MAX {
                            match self.commands.try_recv() {
                                Ok(command) => self.handle(command, &mut clock),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        commands_open = false;
                        self.pipeline.close_open();
                    }
                },
                // The open batch lingered: the next `pump` sends it.
                () = sleep_until(linger), if linger.is_some() => {}
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
        debug!("producer worker done");
    }

    fn handle(&mut self, command: Command, clock: &mut Clock) {
        match command {
            Command::Record(accepted) => {
                let timestamp = match accepted.timestamp {
                    Some(timestamp) => timestamp,
                    None => clock.wall_ms(),
                };
                let record = PendingRecord {
                    key: accepted.key,
                    value: accepted.value,
                    headers: accepted.headers,
                    timestamp,
                    bytes: accepted.bytes,
                    deadline: clock.now + self.delivery_timeout,
                    reply: accepted.reply,
                    permit: Some(accepted.permit),
                };
                self.pipeline.push(record, clock.now);
            }
            Command::Flush(done) => {
                self.pipeline.close_open();
                self.flushes.push((self.pipeline.next_batch_id(), done));
            }
        }
    }

    /// Sends every batch the pipeline releases, to the partition's leader.
    async fn pump(&mut self) {
        if !self.pipeline.can_send(Instant::now()) {
            return;
        }
        let route = route(&self.client, &self.sessions, &self.topic, self.partition).await;
        let (addr, session) = match route {
            Ok(route) => route,
            Err(err) => {
                debug!(error = %err, "no route to the leader");
                self.pipeline.on_send_failure(err, Instant::now());
                return;
            }
        };
        loop {
            match self.pipeline.next_send(Instant::now()) {
                Next::Idle => return,
                Next::NeedIdentity => match new_identity(&self.client, self.idempotent).await {
                    Ok(identity) => self.pipeline.set_identity(identity),
                    Err(err) => {
                        self.pipeline.on_send_failure(err, Instant::now());
                        return;
                    }
                },
                Next::Send { batch_id, frame } => {
                    let request = ProduceRequest {
                        sequence: 0,
                        topic: self.topic.to_string(),
                        partition: self.partition,
                        batch: frame,
                    };
                    let answer = session.send(request, self.request_timeout);
                    self.requests.push_back(InFlight {
                        batch_id,
                        addr: addr.clone(),
                        session: session.clone(),
                        answer: Box::pin(answer),
                    });
                }
            }
        }
    }

    fn answer_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest = self.pipeline.oldest_unfinished();
        let mut index = 0;
        while index < self.flushes.len() {
            let mark = self.flushes[index].0;
            if oldest.is_none_or(|oldest| oldest >= mark) {
                let (_, done) = self.flushes.swap_remove(index);
                let _ = done.send(());
            } else {
                index += 1;
            }
        }
    }
}

/// A worker dropped before it ended (the runtime shut down) answers the records it holds and
/// those still in its queue, in that order.
impl Drop for Worker {
    fn drop(&mut self) {
        // Oldest first: what the pipeline took, then what is still queued.
        self.pipeline.abandon();
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Record(accepted) => accepted.reply.send(Err(ClientError::Closed {
                    what: "the producer",
                })),
                Command::Flush(_) => {}
            }
        }
    }
}

/// The leader of `topic`/`partition` and its produce stream. (Free functions, not methods:
/// the worker holds futures that are `Send` but not `Sync`, so `&Worker` cannot cross an
/// await.)
async fn route(
    client: &Client,
    sessions: &Sessions,
    topic: &str,
    partition: u32,
) -> Result<(String, Arc<Session>), ClientError> {
    let (addr, _) = client.leader(topic, partition).await?;
    match sessions.get(client, &addr).await {
        Ok(session) => Ok((addr, session)),
        Err(err) => {
            client.observe_failure(topic, partition, &addr, &err);
            Err(err)
        }
    }
}

/// A new producer identity, after a gap in the old one's sequence.
async fn new_identity(client: &Client, idempotent: bool) -> Result<Identity, ClientError> {
    if !idempotent {
        return Ok(Identity::NONE);
    }
    let identity = super::init_producer_id(client).await?;
    debug!(
        producer_id = identity.producer_id,
        "new producer id after a sequence gap"
    );
    Ok(identity)
}

/// The answer to the oldest request in flight (answers for one partition come in order).
/// Cancel-safe: the request's future stays in the queue until it completes.
async fn next_answer(
    requests: &mut VecDeque<InFlight>,
) -> (InFlight, Result<ProduceResponse, ClientError>) {
    let result = match requests.front_mut() {
        Some(front) => Pin::new(&mut front.answer).await,
        None => std::future::pending().await,
    };
    match requests.pop_front() {
        Some(done) => (done, result),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

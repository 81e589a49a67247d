//! `stave bench e2e`: consumers wait at the end of the topic, producers write at `--rate` (or
//! `--in-flight N` records at a time, 1 being Kafka's EndToEndLatency mode); latency is
//! produce → consume, carried in each record's first 8 bytes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use stave_client::{
    AssignmentChange, Client, ClientError, ConsumerConfig, Producer, ProducerRecord, StartPosition,
};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use super::progress::Progress;
use super::schedule::Schedule;
use super::{
    BenchArgs, Outcome, consumer_config, ensure_topic, fresh_group, histogram, now_nanos, payload,
    producer_config,
};
use crate::cli::error::CliError;
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tonic::transport::Channel;

/// The group's members: each returns the produce → consume latencies it saw.
type Readers = JoinSet<Result<Histogram<u64>, ClientError>>;

/// The producers: each returns how many records it sent.
type Writers = JoinSet<Result<u64, ClientError>>;

/// Per record, the time from its ack reaching the producer to its arrival at a consumer:
/// what the consume path adds to produce → ack. Records are known by their stamp; whichever
/// of the two events comes second measures the gap.
#[derive(Default)]
struct AckGap {
    inner: Mutex<AckGapInner>,
}

#[derive(Default)]
struct AckGapInner {
    /// Stamp → when its ack or its arrival came (wall clock, ns), whichever came first.
    waiting: std::collections::HashMap<u64, Seen>,
    gaps: Option<Histogram<u64>>,
    /// Records consumed before their ack reached the producer.
    before_ack: u64,
}

enum Seen {
    Acked(u64),
    Consumed,
}

impl AckGap {
    fn acked(&self, stamp: u64, now: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.waiting.remove(&stamp) {
            Some(Seen::Consumed) => {
                inner.before_ack += 1;
                let _ = inner.gaps.get_or_insert_with(histogram).record(1);
            }
            Some(Seen::Acked(_)) | None => {
                inner.waiting.insert(stamp, Seen::Acked(now));
            }
        }
    }

    fn consumed(&self, stamp: u64, now: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.waiting.remove(&stamp) {
            Some(Seen::Acked(at)) => {
                let gap = (now.saturating_sub(at) / 1000).clamp(1, 600_000_000);
                let _ = inner.gaps.get_or_insert_with(histogram).record(gap);
            }
            Some(Seen::Consumed) | None => {
                inner.waiting.insert(stamp, Seen::Consumed);
            }
        }
    }

    fn take(&self) -> Option<(Histogram<u64>, u64)> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before_ack = inner.before_ack;
        inner.gaps.take().map(|gaps| (gaps, before_ack))
    }
}

/// What the readers and the writers of one run share.
struct Shared {
    /// Partitions the group's members hold now: the run starts once they hold them all.
    held: Arc<watch::Sender<usize>>,
    /// `--in-flight`: a place per record written but not yet consumed.
    in_flight: Option<Arc<Semaphore>>,
    /// Set by a failed delivery or a consumer that ends: producers stop sending.
    halt: Arc<AtomicBool>,
    /// Records consumed so far, over all members.
    received: Arc<AtomicU64>,
    gap: Arc<AckGap>,
}

/// Runs the workload: the group joins at the end of the topic, the producers write, and the
/// run waits (at most 30 s) for the group to read what they wrote.
pub(super) async fn run(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    ensure_topic(client, args).await?;
    let (total, run_for) = match (args.messages, args.duration) {
        (Some(messages), _) => (Some(messages), None),
        (None, Some(duration)) => (None, Some(duration)),
        (None, None) => (None, Some(Duration::from_secs(30))),
    };
    let partitions = client
        .admin()
        .describe_topic(&args.topic)
        .await?
        .partitions
        .len();
    let group = args.group.clone().unwrap_or_else(fresh_group);

    // Consumers first, at the end of the topic; the run starts once they hold every
    // partition.
    let (held_tx, mut held) = watch::channel(0usize);
    let shared = Shared {
        held: Arc::new(held_tx),
        in_flight: args.in_flight.map(|n| Arc::new(Semaphore::new(n))),
        halt: Arc::new(AtomicBool::new(false)),
        received: Arc::new(AtomicU64::new(0)),
        gap: Arc::default(),
    };
    let (stop_tx, stop) = watch::channel(false);
    let mut consumers = spawn_readers(client, args, &group, &shared, &stop);
    wait_for_assignment(&mut held, &mut consumers, partitions, &args.topic).await?;

    let start = Instant::now();
    let until = run_for.map(|d| start + d);
    let progress = Progress::start("e2e", shared.received.clone(), total, args.size, until);
    let mut producers = spawn_writers(client, args, &shared, start, until, total);
    let (sent, result) = join_writers(&mut producers).await;
    let mut gathered = Gathered {
        latency: histogram(),
        result,
    };
    gathered
        .wait_for_readers(&mut consumers, &shared.received, sent)
        .await;
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    gathered.join_rest(&mut consumers).await;
    gathered.result?;
    progress.finish();
    let records = shared.received.load(Ordering::Relaxed);
    if records < sent {
        eprintln!("warning: {sent} records written, {records} consumed within 30 s of the end");
    }
    Ok(Outcome {
        workload: "e2e",
        records,
        bytes: records * args.size as u64,
        elapsed,
        latency: Some(gathered.latency),
        from_send: None,
        after_ack: shared.gap.take(),
    })
}

/// Dropped when a consumer of `bench e2e` ends, however it ends: producers stop sending, and
/// those waiting for a place in the --in-flight window stop waiting.
struct ConsumerEnded {
    halt: Arc<AtomicBool>,
    window: Option<Arc<Semaphore>>,
}

impl Drop for ConsumerEnded {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::Relaxed);
        if let Some(window) = &self.window {
            window.close();
        }
    }
}

/// One member of the group, and what it shares with the run.
struct Reader {
    topic: String,
    group: String,
    held: Arc<watch::Sender<usize>>,
    in_flight: Option<Arc<Semaphore>>,
    received: Arc<AtomicU64>,
    gap: Arc<AckGap>,
    ended: ConsumerEnded,
}

/// Starts the group's members, each at the end of the topic.
fn spawn_readers(
    client: &Client,
    args: &BenchArgs,
    group: &str,
    shared: &Shared,
    stop: &watch::Receiver<bool>,
) -> Readers {
    let mut consumers = JoinSet::new();
    for _ in 0..args.consumers {
        let reader = Reader {
            topic: args.topic.clone(),
            group: group.to_string(),
            held: shared.held.clone(),
            in_flight: shared.in_flight.clone(),
            received: shared.received.clone(),
            gap: shared.gap.clone(),
            ended: ConsumerEnded {
                halt: shared.halt.clone(),
                window: shared.in_flight.clone(),
            },
        };
        match args.api {
            super::Api::Batch => consumers.spawn(reader.read(client.clone(), stop.clone())),
            super::Api::Records => {
                let client = client.clone();
                let stop = stop.clone();
                consumers.spawn(async move {
                    let stub = super::records::connect(&client).await?;
                    reader.read_records(stub, stop).await
                })
            }
        };
    }
    consumers
}

impl Reader {
    /// Joins the group, counts the partitions it holds in `held`, and reads until `stop`:
    /// each record's latency from the stamp in its first 8 bytes, and its place in the
    /// --in-flight window given back.
    async fn read(
        self,
        client: Client,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Histogram<u64>, ClientError> {
        let _ended = self.ended;
        let mut consumer = client.consumer(ConsumerConfig {
            fetch_wait_max: Duration::from_millis(100),
            ..consumer_config(StartPosition::Latest)
        });
        consumer
            .subscribe(&self.group, &[self.topic.as_str()])
            .await?;
        let held = self.held;
        consumer.on_assignment_change(move |change| {
            held.send_modify(|held| match change {
                AssignmentChange::Assigned { partitions, .. } => *held += partitions.len(),
                AssignmentChange::Revoked { partitions, .. }
                | AssignmentChange::Lost { partitions } => {
                    *held = held.saturating_sub(partitions.len());
                }
            });
        });
        let mut latency = histogram();
        loop {
            let record = tokio::select! {
                record = consumer.next() => record?,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let now = now_nanos();
            if let Some(value) = &record.value {
                record_stamp(&mut latency, &self.gap, value, now);
            }
            self.received.fetch_add(1, Ordering::Relaxed);
            if let Some(in_flight) = &self.in_flight {
                in_flight.add_permits(1);
            }
        }
        consumer.close().await?;
        Ok(latency)
    }
}

impl Reader {
    /// [`Reader::read`] through a `Consume` stream (`--api records`): the group's member is
    /// the node, records are pushed as they commit (credits granted in steps).
    async fn read_records(
        self,
        mut stub: StaveClient<Channel>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Histogram<u64>, ClientError> {
        use pb::consume_request::Request;
        use pb::consume_response::Response;
        let _ended = self.ended;
        const STEP: u32 = 100_000;
        let credit = || pb::ConsumeRequest {
            request: Some(Request::Credit(pb::Credit {
                records: STEP,
                bytes: 0,
            })),
        };
        let subscribe = pb::Subscribe {
            topics: vec![self.topic.clone()],
            group: self.group.clone(),
            start: Some(pb::subscribe::Start::Latest(true)),
            ..Default::default()
        };
        let (send, outgoing) = tokio::sync::mpsc::channel(16);
        let _ = send
            .send(pb::ConsumeRequest {
                request: Some(Request::Subscribe(subscribe)),
            })
            .await;
        let _ = send.send(credit()).await;
        let mut pushed = stub
            .consume(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .map_err(super::records::rpc_error)?
            .into_inner();
        let (mut latency, mut unused) = (histogram(), u64::from(STEP));
        loop {
            let message = tokio::select! {
                message = pushed.message() => message.map_err(super::records::rpc_error)?,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Some(message) = message else { break };
            match message.response {
                Some(Response::Records(records)) => {
                    let now = now_nanos();
                    for record in &records.records {
                        record_stamp(&mut latency, &self.gap, &record.value, now);
                        self.received.fetch_add(1, Ordering::Relaxed);
                        if let Some(in_flight) = &self.in_flight {
                            in_flight.add_permits(1);
                        }
                    }
                    unused = unused.saturating_sub(records.records.len() as u64);
                    if unused < u64::from(STEP / 2) {
                        unused += u64::from(STEP);
                        let _ = send.send(credit()).await;
                    }
                }
                Some(Response::Assignment(change)) => {
                    let gone = change.revoked.len() + change.lost.len();
                    self.held.send_modify(|held| {
                        *held = (*held + change.assigned.len()).saturating_sub(gone);
                    });
                }
                Some(Response::Error(error)) => {
                    return Err(ClientError::InvalidArgument {
                        message: format!("the Consume stream failed: {error:?}"),
                    });
                }
                _ => {}
            }
        }
        Ok(latency)
    }
}

/// Records the latency from the stamp in `value`'s first 8 bytes (when it has them) to `now`,
/// and the record's arrival in `gap`.
fn record_stamp(latency: &mut Histogram<u64>, gap: &AckGap, value: &[u8], now: u64) {
    if value.len() >= 8 {
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&value[..8]);
        let due = u64::from_be_bytes(stamp);
        let _ = latency.record((now.saturating_sub(due) / 1000).clamp(1, 600_000_000));
        gap.consumed(due, now);
    }
}

/// Waits (at most 60 s) until the group's members hold all `partitions` of `topic`; a member
/// that ends first ends the run with its error.
async fn wait_for_assignment(
    held: &mut watch::Receiver<usize>,
    consumers: &mut Readers,
    partitions: usize,
    topic: &str,
) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while *held.borrow_and_update() < partitions {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            changed = tokio::time::timeout(left, held.changed()) => if changed.is_err() {
                return Err(CliError::Usage(format!(
                    "the consumer group never took all {partitions} partitions of {topic}"
                )));
            },
            // A consumer ended before the run began: its error says why.
            Some(joined) = consumers.join_next() => {
                return Err(match joined {
                    Ok(Err(err)) => err.into(),
                    Ok(Ok(_)) => CliError::Usage("a consumer stopped before the run began".into()),
                    Err(err) => CliError::Usage(format!("a consumer task failed: {err}")),
                });
            }
        }
    }
    Ok(())
}

/// Starts the producers, each with its share of the records on the run's schedule.
fn spawn_writers(
    client: &Client,
    args: &BenchArgs,
    shared: &Shared,
    start: Instant,
    until: Option<Instant>,
    total: Option<u64>,
) -> Writers {
    let mut producers = JoinSet::new();
    let template = payload(args.size);
    for p in 0..args.producers {
        let schedule = Schedule::new(args, start, until, total, p);
        producers.spawn(write(
            client.clone(),
            args.clone(),
            schedule,
            template.clone(),
            shared.in_flight.clone(),
            shared.halt.clone(),
            shared.gap.clone(),
        ));
    }
    producers
}

/// One producer's part of the run: sends its share on `schedule`, each record stamped with
/// when it was due; returns how many it sent, or the first failed delivery.
async fn write(
    client: Client,
    args: BenchArgs,
    schedule: Schedule,
    template: Bytes,
    in_flight: Option<Arc<Semaphore>>,
    halt: Arc<AtomicBool>,
    gap: Arc<AckGap>,
) -> Result<u64, ClientError> {
    let producer = client.producer(producer_config(&args)).await?;
    let stamper = Stamper {
        producer: producer.clone(),
        topic: Arc::from(args.topic.as_str()),
        template,
        in_flight,
        patience: args.delivery_timeout,
        halt,
        gap,
        failure: Arc::default(),
    };
    let failure = stamper.failure.clone();
    let k = schedule.run(move |due| stamper.clone().send(due)).await?;
    producer.flush().await;
    if let Some(err) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(err);
    }
    producer.close().await;
    Ok(k)
}

/// Sends one producer's records, each stamped with when it was due.
#[derive(Clone)]
struct Stamper {
    producer: Producer,
    topic: Arc<str>,
    /// The value of every record, before its stamp.
    template: Bytes,
    in_flight: Option<Arc<Semaphore>>,
    /// How long a record in flight may take to reach a consumer.
    patience: Duration,
    halt: Arc<AtomicBool>,
    gap: Arc<AckGap>,
    /// The first failed delivery, reported when the run ends.
    failure: Arc<Mutex<Option<ClientError>>>,
}

impl Stamper {
    /// Sends the record due at `due` (after a place in the --in-flight window, if there is
    /// one); `false` once the run halted.
    async fn send(self, due: Instant) -> Result<bool, ClientError> {
        if self.halt.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if let Some(in_flight) = &self.in_flight
            && !take_place(in_flight, self.patience).await?
        {
            return Ok(false);
        }
        // The stamp is when the record was due, on the wall clock.
        let lateness = Instant::now().saturating_duration_since(due);
        let stamp = now_nanos().saturating_sub(lateness.as_nanos() as u64);
        let mut value = self.template.to_vec();
        value[..8].copy_from_slice(&stamp.to_be_bytes());
        let record = ProducerRecord::new(self.topic, value);
        let (failure, halt, gap) = (self.failure, self.halt, self.gap);
        self.producer
            .enqueue_with(record, move |result| {
                if result.is_ok() {
                    gap.acked(stamp, now_nanos());
                }
                if let Err(err) = result {
                    failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(err);
                    halt.store(true, Ordering::Relaxed);
                }
            })
            .await?;
        if self.in_flight.is_some() {
            // A record that fails never reaches the consumers, nor gives its place in the
            // window back: wait for its outcome (the next call stops if it failed).
            self.producer.flush().await;
        }
        Ok(true)
    }
}

/// Takes a place in the --in-flight window (a consumer gives it back once a record arrives):
/// `false` when the window closed because a consumer ended, an error after `patience`.
async fn take_place(window: &Semaphore, patience: Duration) -> Result<bool, ClientError> {
    let waited = Instant::now();
    match tokio::time::timeout(patience, window.acquire()).await {
        Ok(Ok(permit)) => {
            permit.forget();
            Ok(true)
        }
        Ok(Err(_)) => Ok(false),
        Err(_) => Err(ClientError::Timeout {
            what: "the consumers receiving the records in flight".into(),
            elapsed: waited.elapsed(),
            last: None,
        }),
    }
}

/// Joins the producers: the records they sent, and the first failure.
async fn join_writers(producers: &mut Writers) -> (u64, Result<(), ClientError>) {
    let mut sent = 0;
    let mut result = Ok(());
    while let Some(joined) = producers.join_next().await {
        let failed = match joined {
            Ok(Ok(count)) => {
                sent += count;
                continue;
            }
            Ok(Err(err)) => err,
            Err(err) => ClientError::InvalidArgument {
                message: format!("a producer task failed: {err}"),
            },
        };
        if result.is_ok() {
            result = Err(failed);
        }
    }
    (sent, result)
}

/// What the group's members returned: their latencies, and the run's first failure.
struct Gathered {
    latency: Histogram<u64>,
    result: Result<(), ClientError>,
}

impl Gathered {
    /// Waits for the consumers to see the `sent` records: at most 30 s more, not after a
    /// producer failed, and not once a consumer has ended.
    async fn wait_for_readers(&mut self, consumers: &mut Readers, received: &AtomicU64, sent: u64) {
        let drain = match self.result {
            Ok(()) => Instant::now() + Duration::from_secs(30),
            Err(_) => Instant::now(),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while received.load(Ordering::Relaxed) < sent && Instant::now() < drain {
            tokio::select! {
                _ = tick.tick() => {}
                Some(joined) = consumers.join_next() => {
                    self.add(joined);
                    break;
                }
            }
        }
    }

    /// Joins the consumers still running.
    async fn join_rest(&mut self, consumers: &mut Readers) {
        while let Some(joined) = consumers.join_next().await {
            self.add(joined);
        }
    }

    /// Adds one consumer's latencies, or keeps its failure unless there was one before.
    fn add(&mut self, joined: Result<Result<Histogram<u64>, ClientError>, JoinError>) {
        match joined {
            Ok(Ok(histogram)) => {
                let _ = self.latency.add(histogram);
            }
            Ok(Err(err)) => {
                if self.result.is_ok() {
                    self.result = Err(err);
                }
            }
            Err(err) => {
                if self.result.is_ok() {
                    self.result = Err(ClientError::InvalidArgument {
                        message: format!("a consumer task failed: {err}"),
                    });
                }
            }
        }
    }
}

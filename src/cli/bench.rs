//! `stave bench produce|consume|e2e`: the whole system measured through the client, the way
//! Kafka's and NATS's perf tools measure theirs.
//!
//! - produce: records of `--size` bytes from `--producers` producers, as fast as the broker
//!   acknowledges them or at `--rate`; latency is produce → acknowledgement.
//! - consume: a consumer group of `--consumers` members reads the topic from the beginning.
//! - e2e: consumers wait at the end of the topic, producers write at `--rate` (or
//!   `--in-flight N` records at a time, 1 being Kafka's EndToEndLatency mode); latency is
//!   produce → consume, carried in each record's first 8 bytes.
//!
//! Latency counts from when a record was *due* (its slot in the `--rate` schedule, or the
//! moment the producer was ready for it), not from when it got sent, so a stall delays every
//! record behind it in the figures too (no coordinated omission). A paced produce run also
//! prints the latency counted from each send (`send_p50_us`, ... in `--json`), the figure
//! tools without a schedule (`nats bench`, Kafka's ProducerPerformance) print. Histograms are HDR
//! (microseconds, 3 significant digits). MB/s are MiB (2^20 bytes) per second, as Kafka's
//! tools print them.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use stave_client::{
    AssignmentChange, Client, ClientError, ConsumerConfig, NewTopic, OffsetReset, ProducerConfig,
    ProducerRecord, RecordMetadata, StartPosition,
};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::args::parse_duration;
use super::error::CliError;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write records as fast as they are acknowledged (or at --rate): throughput and
    /// produce → acknowledgement latency.
    Produce(BenchArgs),
    /// Read the topic from the beginning as a consumer group: throughput.
    Consume(BenchArgs),
    /// Write at --rate (or --in-flight N at a time) while a group reads: produce → consume
    /// latency.
    E2e(BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Topic to use; created (with --partitions, --replication-factor, --flush) if missing.
    #[arg(long, default_value = "stave-bench", value_name = "T")]
    topic: String,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 6, value_name = "N")]
    partitions: u32,
    /// Replicas per partition of a topic the bench creates [default: the smaller of 3 and
    /// the number of nodes].
    #[arg(long, value_name = "R")]
    replication_factor: Option<u32>,
    /// Records to write (produce, e2e) or read (consume) [default: 1,000,000 for produce;
    /// everything in the topic for consume; e2e runs 30 s].
    #[arg(long, value_name = "N", group = "amount")]
    messages: Option<u64>,
    /// Run this long instead of a record count (10s, 2m).
    #[arg(long, value_name = "S", group = "amount", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    size: usize,
    /// Producers, each with its own connection and batches.
    #[arg(long, default_value_t = 1, value_name = "N")]
    producers: usize,
    /// Members of the consumer group (consume, e2e).
    #[arg(long, default_value_t = 1, value_name = "N")]
    consumers: usize,
    /// A batch is sent once it holds this many bytes.
    #[arg(long, default_value_t = 256 << 10, value_name = "B")]
    batch_bytes: usize,
    /// How long a batch waits for more records.
    #[arg(long, default_value_t = 5, value_name = "L")]
    linger_ms: u64,
    /// Records per second over all producers; 0: as fast as possible.
    #[arg(long, default_value_t = 0, value_name = "R")]
    rate: u64,
    /// e2e: at most N records written but not yet consumed (1: one at a time, as Kafka's
    /// EndToEndLatency) [default: no limit].
    #[arg(long, value_name = "N")]
    in_flight: Option<usize>,
    /// Flush policy of a topic the bench creates: always, never, interval:<ms> [default:
    /// the broker's].
    #[arg(long, value_name = "POLICY")]
    flush: Option<String>,
    /// Consumer group (consume, e2e) [default: a new one, reading from the beginning].
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Print one JSON object with the results on the last line.
    #[arg(long)]
    json: bool,
    /// How long a record may go unacknowledged: the CLI's --timeout.
    #[arg(skip)]
    delivery_timeout: Duration,
}

impl BenchCommand {
    fn with_delivery_timeout(self, timeout: Duration) -> BenchCommand {
        let set = |args: BenchArgs| BenchArgs {
            delivery_timeout: timeout,
            ..args
        };
        match self {
            BenchCommand::Produce(args) => BenchCommand::Produce(set(args)),
            BenchCommand::Consume(args) => BenchCommand::Consume(set(args)),
            BenchCommand::E2e(args) => BenchCommand::E2e(set(args)),
        }
    }
}

/// What a run measured.
struct Outcome {
    workload: &'static str,
    records: u64,
    /// Bytes of record values.
    bytes: u64,
    elapsed: Duration,
    latency: Option<Histogram<u64>>,
    /// produce: latency counted from when each record was handed to the producer, as tools
    /// without a schedule count it (`nats bench`, Kafka's ProducerPerformance).
    from_send: Option<Histogram<u64>>,
}

pub async fn run(
    client: &Client,
    command: BenchCommand,
    timeout: Duration,
) -> Result<(), CliError> {
    let (args, outcome) = match command.with_delivery_timeout(timeout) {
        BenchCommand::Produce(args) => {
            check(&args)?;
            let outcome = produce(client, &args).await?;
            (args, outcome)
        }
        BenchCommand::Consume(args) => {
            check(&args)?;
            let outcome = consume(client, &args).await?;
            (args, outcome)
        }
        BenchCommand::E2e(args) => {
            check(&args)?;
            let outcome = e2e(client, &args).await?;
            (args, outcome)
        }
    };
    let flush = topic_flush(client, &args.topic).await;
    let replication = client
        .admin()
        .describe_topic(&args.topic)
        .await
        .map(|t| t.replication_factor())
        .unwrap_or(0);
    report(&args, &outcome, &flush, replication)
}

fn check(args: &BenchArgs) -> Result<(), CliError> {
    if args.size < 8 {
        return Err(CliError::Usage(
            "--size must be at least 8 bytes (e2e carries a timestamp in them)".into(),
        ));
    }
    if args.producers == 0 || args.consumers == 0 {
        return Err(CliError::Usage(
            "--producers and --consumers must be at least 1".into(),
        ));
    }
    if args.in_flight == Some(0) {
        return Err(CliError::Usage("--in-flight must be at least 1".into()));
    }
    Ok(())
}

/// Creates the topic unless it exists.
async fn ensure_topic(client: &Client, args: &BenchArgs) -> Result<(), CliError> {
    let admin = client.admin();
    if admin.describe_topic(&args.topic).await.is_ok() {
        return Ok(());
    }
    let mut topic = NewTopic::new(&args.topic, args.partitions);
    if let Some(replication) = args.replication_factor {
        topic = topic.replication_factor(replication);
    }
    if let Some(flush) = &args.flush {
        topic = topic.config("flush", flush);
    }
    match admin.create_topic(topic).await {
        Ok(()) => {}
        Err(err) if err.code() == Some(stave_client::ErrorCode::TopicExists) => {}
        Err(err) => return Err(err.into()),
    }
    admin
        .wait_for_leaders(&args.topic, Duration::from_secs(30))
        .await?;
    Ok(())
}

async fn topic_flush(client: &Client, topic: &str) -> String {
    match client.admin().describe_topic(topic).await {
        Ok(description) => description
            .configs
            .iter()
            .find(|(key, _)| key == "flush")
            .map_or_else(|| "always".to_string(), |(_, value)| value.clone()),
        Err(_) => "unknown".into(),
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits: bounds that are valid by construction.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn micros(elapsed: Duration) -> u64 {
    (elapsed.as_micros() as u64).clamp(1, 600_000_000)
}

fn producer_config(args: &BenchArgs) -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(args.linger_ms),
        batch_bytes: args.batch_bytes,
        // Like Kafka's perf tools: records without headers.
        message_ids: false,
        // A broker that stays away ends the run with an error within --timeout.
        delivery_timeout: args.delivery_timeout,
        ..ProducerConfig::default()
    }
}

/// A progress line on standard error, when it is a terminal.
struct Progress {
    done: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Shows `done` (records so far, counted by the caller) against `total` or `until`.
    fn start(
        what: &'static str,
        done: Arc<AtomicU64>,
        total: Option<u64>,
        size: usize,
        until: Option<Instant>,
    ) -> Progress {
        let task = std::io::stderr().is_terminal().then(|| {
            let done = done.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let count = done.load(Ordering::Relaxed);
                    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
                    let fraction = match (total, until) {
                        (Some(total), _) if total > 0 => count as f64 / total as f64,
                        (_, Some(until)) => {
                            let whole = until.saturating_duration_since(start).as_secs_f64();
                            if whole > 0.0 { elapsed / whole } else { 1.0 }
                        }
                        _ => 0.0,
                    }
                    .min(1.0);
                    let filled = (fraction * 30.0) as usize;
                    let rate = count as f64 / elapsed;
                    eprint!(
                        "\r{what} [{}{}] {:>3.0}%  {count} records  {:.0} records/s  {:.1} MB/s ",
                        "#".repeat(filled),
                        ".".repeat(30 - filled),
                        fraction * 100.0,
                        rate,
                        rate * size as f64 / 1_048_576.0
                    );
                }
            })
        });
        Progress { done, task }
    }

    fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            eprintln!();
        }
    }
}

/// A record value: `size` bytes; e2e writes the due time into the first 8.
fn payload(size: usize) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Nanoseconds since the Unix epoch (e2e stamps; producers and consumers share the clock).
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Producer `p`'s part of `total` records split over `producers` (the first ones take the
/// remainder).
fn share(total: Option<u64>, producers: usize, p: usize) -> Option<u64> {
    let producers = producers as u64;
    total.map(|t| t / producers + u64::from((p as u64) < t % producers))
}

/// When record `index` (counted over all producers) is due: its slot at `rate`, or now.
fn due(start: Instant, rate: u64, index: u64) -> Instant {
    match index.saturating_mul(1_000_000_000).checked_div(rate) {
        Some(nanos) => start + Duration::from_nanos(nanos),
        None => Instant::now(),
    }
}

/// What one producer's delivery callbacks have seen: produce→ack latencies (from when each
/// record was due, and from when it was sent), the first failure, and the records
/// acknowledged (for the progress line).
struct Tally {
    counts: Mutex<Counts>,
    done: Arc<AtomicU64>,
    /// A delivery failed: the run stops sending and reports it.
    failed: AtomicBool,
}

struct Counts {
    from_due: Histogram<u64>,
    from_send: Histogram<u64>,
    failure: Option<ClientError>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            from_due: histogram(),
            from_send: histogram(),
            failure: None,
        }
    }
}

impl Tally {
    fn count(&self, due: Instant, sent: Instant, result: Result<RecordMetadata, ClientError>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                let now = Instant::now();
                let _ = counts.from_due.record(micros(now - due));
                let _ = counts.from_send.record(micros(now - sent));
                self.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                counts.failure.get_or_insert(err);
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

async fn produce(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    ensure_topic(client, args).await?;
    let total = match (args.messages, args.duration) {
        (Some(messages), _) => Some(messages),
        (None, Some(_)) => None,
        (None, None) => Some(1_000_000),
    };
    let start = Instant::now();
    let until = args.duration.map(|d| start + d);
    let progress = Progress::start("produce", Arc::default(), total, args.size, until);
    let value = payload(args.size);
    let mut tasks = JoinSet::new();
    for p in 0..args.producers {
        let client = client.clone();
        let args = args.clone();
        let value = value.clone();
        let done = progress.done.clone();
        tasks.spawn(async move {
            let producer = client.producer(producer_config(&args)).await?;
            let topic: Arc<str> = Arc::from(args.topic.as_str());
            // Outcomes arrive through callbacks on the producer's tasks (as Kafka's
            // ProducerPerformance): no future per record to poll.
            let tally = Arc::new(Tally {
                counts: Mutex::default(),
                done,
                failed: AtomicBool::new(false),
            });
            let schedule = Schedule::new(&args, start, until, total, p);
            let k = schedule
                .run({
                    let producer = producer.clone();
                    let tally = tally.clone();
                    move |due| {
                        let record = ProducerRecord::new(topic.clone(), value.clone());
                        let tally = tally.clone();
                        let producer = producer.clone();
                        async move {
                            if tally.failed.load(Ordering::Relaxed) {
                                return Ok(false);
                            }
                            let sent = Instant::now();
                            producer
                                .enqueue_with(record, move |result| tally.count(due, sent, result))
                                .await?;
                            Ok(true)
                        }
                    }
                })
                .await?;
            // Every callback has run once the flush is answered.
            producer.flush().await;
            producer.close().await;
            let counts =
                std::mem::take(&mut *tally.counts.lock().unwrap_or_else(|p| p.into_inner()));
            if let Some(err) = counts.failure {
                return Err(err);
            }
            Ok::<_, ClientError>((k, counts.from_due, counts.from_send))
        });
    }
    let mut records = 0;
    let (mut latency, mut from_send) = (histogram(), histogram());
    while let Some(joined) = tasks.join_next().await {
        let (count, due, sent) =
            joined.map_err(|e| CliError::Usage(format!("a producer task failed: {e}")))??;
        records += count;
        let _ = latency.add(due);
        let _ = from_send.add(sent);
    }
    let elapsed = start.elapsed();
    progress.finish();
    Ok(Outcome {
        workload: "produce",
        records,
        bytes: records * args.size as u64,
        elapsed,
        latency: Some(latency),
        from_send: Some(from_send),
    })
}

/// Records in the topic now (high watermark minus log start, over its partitions).
async fn records_in(client: &Client, topic: &str) -> Result<u64, CliError> {
    let admin = client.admin();
    let partitions = admin.describe_topic(topic).await?.partitions.len() as u32;
    let mut total = 0;
    for partition in 0..partitions {
        let start = admin
            .list_offsets(topic, partition, StartPosition::Earliest)
            .await?;
        let end = admin
            .list_offsets(topic, partition, StartPosition::Latest)
            .await?;
        total += end.saturating_sub(start);
    }
    Ok(total)
}

fn fresh_group() -> String {
    format!(
        "stave-bench-{}-{}",
        std::process::id(),
        now_nanos() / 1_000_000
    )
}

fn consumer_config(start: StartPosition) -> ConsumerConfig {
    ConsumerConfig {
        start_without_commit: start,
        offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

async fn consume(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    super::require_topic(client, &args.topic, Duration::from_secs(10)).await?;
    let total = match (args.messages, args.duration) {
        (Some(messages), _) => Some(messages),
        (None, Some(_)) => None,
        (None, None) => Some(records_in(client, &args.topic).await?),
    };
    let group = args.group.clone().unwrap_or_else(fresh_group);
    let start = Instant::now();
    let until = args.duration.map(|d| start + d);
    let progress = Progress::start("consume", Arc::default(), total, args.size, until);
    let (stop_tx, stop) = watch::channel(false);
    // The clock runs from the first record, as Kafka's ConsumerPerformance reports its fetch
    // rate without the group join (the first join also creates `__offsets`).
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = JoinSet::new();
    for _ in 0..args.consumers {
        let client = client.clone();
        let topic = args.topic.clone();
        let group = group.clone();
        let first = first.clone();
        let done = progress.done.clone();
        let stop_tx = stop_tx.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let mut consumer = client.consumer(consumer_config(StartPosition::Earliest));
            consumer.subscribe(&group, &[topic.as_str()]).await?;
            let mut bytes = 0u64;
            loop {
                let record = tokio::select! {
                    record = consumer.next() => record?,
                    _ = stop.wait_for(|stop| *stop) => break,
                    () = sleep_until(until) => break,
                };
                first.get_or_init(Instant::now);
                bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
                let count = done.fetch_add(1, Ordering::Relaxed) + 1;
                if total.is_some_and(|total| count >= total) {
                    let _ = stop_tx.send(true);
                    break;
                }
            }
            consumer.close().await?;
            Ok::<u64, ClientError>(bytes)
        });
    }
    let mut elapsed = None;
    let mut stopped = stop.clone();
    let records_done = progress.done.clone();
    // The time is taken when the last record arrives, not after the consumers closed.
    let mut result = Ok(());
    let mut read_bytes = 0;
    let since_first = || {
        first
            .get()
            .map_or_else(|| start.elapsed(), |first| first.elapsed())
    };
    tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => elapsed = Some(since_first()),
        () = sleep_until(until) => elapsed = Some(since_first()),
        () = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Ok(read)) => read_bytes += read,
                    Ok(Err(err)) => {
                        result = Err(err);
                        return;
                    }
                    Err(_) => {}
                }
            }
        } => {}
    }
    let _ = stop_tx.send(true);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(read)) => read_bytes += read,
            Ok(Err(err)) => result = Err(err),
            Err(_) => {}
        }
    }
    result?;
    progress.finish();
    let records = records_done.load(Ordering::Relaxed);
    Ok(Outcome {
        workload: "consume",
        records,
        bytes: read_bytes,
        elapsed: elapsed.unwrap_or_else(since_first),
        latency: None,
        from_send: None,
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

/// Linux lets a sleeping thread wake up to 50 µs past its deadline by default (timer slack,
/// to batch wake-ups); the paced thread asks for 1 ns: its sleeps overshoot by ~26 µs
/// instead of ~85 µs (median, this machine), which every record's latency would include.
fn least_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread's timer slack.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// When each of one producer's records is due: its share of `total`, interleaved with the
/// other producers' records on the `rate` schedule (or at once without a rate), until `until`.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: u64,
    until: Option<Instant>,
    share: Option<u64>,
    producers: usize,
    producer: usize,
}

impl Schedule {
    /// Producer `producer`'s part of a run of `args` that started at `start`.
    fn new(
        args: &BenchArgs,
        start: Instant,
        until: Option<Instant>,
        total: Option<u64>,
        producer: usize,
    ) -> Schedule {
        Schedule {
            start,
            rate: args.rate,
            until,
            share: share(total, args.producers, producer),
            producers: args.producers,
            producer,
        }
    }

    /// When record `k` of this producer is due, or `None` when it has no more.
    fn due(&self, k: u64) -> Option<Instant> {
        if self.share.is_some_and(|share| k >= share) {
            return None;
        }
        let index = k * self.producers as u64 + self.producer as u64;
        let due = due(self.start, self.rate, index);
        if self.until.is_some_and(|until| due >= until) {
            return None;
        }
        Some(due)
    }

    /// Calls `send(due)` for each record in turn until the schedule ends or `send` says
    /// stop (`Ok(false)`); returns how many were sent. At a fixed rate the loop runs on a
    /// thread of its own that sleeps until each record is due (with the kernel's timer slack
    /// at its minimum) and sends from there: waking an async task from a sleeping thread
    /// would add its hand-off, tens of microseconds here, to every record's latency.
    async fn run<F, Fut>(self, mut send: F) -> Result<u64, ClientError>
    where
        F: FnMut(Instant) -> Fut + Send + 'static,
        Fut: Future<Output = Result<bool, ClientError>> + Send,
    {
        if self.rate == 0 {
            let mut k = 0;
            while let Some(due) = self.due(k) {
                if !send(due).await? {
                    break;
                }
                k += 1;
            }
            return Ok(k);
        }
        let handle = tokio::runtime::Handle::current();
        // Set when this future is dropped (the run stopped early): the thread stops too.
        let stop = Arc::new(AtomicBool::new(false));
        let _stop_on_drop = StopOnDrop(stop.clone());
        let paced = tokio::task::spawn_blocking(move || {
            least_timer_slack();
            let mut k = 0;
            while let Some(due) = self.due(k) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let left = due.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    std::thread::sleep(left);
                }
                if !handle.block_on(send(due))? {
                    break;
                }
                k += 1;
            }
            Ok(k)
        });
        paced.await.map_err(|err| ClientError::InvalidArgument {
            message: format!("the paced producer stopped: {err}"),
        })?
    }
}

async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

async fn e2e(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
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
    let held_tx = Arc::new(held_tx);
    let in_flight = args.in_flight.map(|n| Arc::new(Semaphore::new(n)));
    let (stop_tx, stop) = watch::channel(false);
    // Set by a failed delivery or a consumer that ends: producers stop sending.
    let halt = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut consumers = JoinSet::new();
    for _ in 0..args.consumers {
        let client = client.clone();
        let topic = args.topic.clone();
        let group = group.clone();
        let held_tx = held_tx.clone();
        let mut stop = stop.clone();
        let in_flight = in_flight.clone();
        let received = received.clone();
        let ended = ConsumerEnded {
            halt: halt.clone(),
            window: in_flight.clone(),
        };
        consumers.spawn(async move {
            let _ended = ended;
            let mut consumer = client.consumer(ConsumerConfig {
                fetch_wait_max: Duration::from_millis(100),
                ..consumer_config(StartPosition::Latest)
            });
            consumer.subscribe(&group, &[topic.as_str()]).await?;
            consumer.on_assignment_change(move |change| {
                held_tx.send_modify(|held| match change {
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
                if let Some(value) = &record.value
                    && value.len() >= 8
                {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(&value[..8]);
                    let due = u64::from_be_bytes(stamp);
                    let _ = latency.record((now.saturating_sub(due) / 1000).clamp(1, 600_000_000));
                }
                received.fetch_add(1, Ordering::Relaxed);
                if let Some(in_flight) = &in_flight {
                    in_flight.add_permits(1);
                }
            }
            consumer.close().await?;
            Ok::<_, ClientError>(latency)
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while *held.borrow_and_update() < partitions {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            changed = tokio::time::timeout(left, held.changed()) => if changed.is_err() {
                return Err(CliError::Usage(format!(
                    "the consumer group never took all {partitions} partitions of {}",
                    args.topic
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

    let start = Instant::now();
    let until = run_for.map(|d| start + d);
    let progress = Progress::start("e2e", received.clone(), total, args.size, until);
    let mut producers = JoinSet::new();
    let template = payload(args.size);
    for p in 0..args.producers {
        let client = client.clone();
        let args = args.clone();
        let template = template.clone();
        let in_flight = in_flight.clone();
        let halt = halt.clone();
        producers.spawn(async move {
            let producer = client.producer(producer_config(&args)).await?;
            let schedule = Schedule::new(&args, start, until, total, p);
            // How long a record in flight may take to reach a consumer.
            let patience = args.delivery_timeout;
            // The first failed delivery, reported when the run ends.
            let failure: Arc<Mutex<Option<ClientError>>> = Arc::default();
            let k = schedule
                .run({
                    let producer = producer.clone();
                    let failure = failure.clone();
                    let topic: Arc<str> = Arc::from(args.topic.as_str());
                    move |due| {
                        let producer = producer.clone();
                        let failure = failure.clone();
                        let halt = halt.clone();
                        let in_flight = in_flight.clone();
                        let template = template.clone();
                        let topic = topic.clone();
                        async move {
                            if halt.load(Ordering::Relaxed) {
                                return Ok(false);
                            }
                            if let Some(in_flight) = &in_flight {
                                // Released by a consumer once a record arrives; closed when
                                // a consumer ends.
                                let waited = Instant::now();
                                match tokio::time::timeout(patience, in_flight.acquire()).await {
                                    Ok(Ok(permit)) => permit.forget(),
                                    Ok(Err(_)) => return Ok(false),
                                    Err(_) => {
                                        return Err(ClientError::Timeout {
                                            what: "the consumers receiving the records in flight"
                                                .into(),
                                            elapsed: waited.elapsed(),
                                            last: None,
                                        });
                                    }
                                }
                            }
                            // The stamp is when the record was due, on the wall clock.
                            let lateness = Instant::now().saturating_duration_since(due);
                            let stamp = now_nanos().saturating_sub(lateness.as_nanos() as u64);
                            let mut value = template.to_vec();
                            value[..8].copy_from_slice(&stamp.to_be_bytes());
                            let record = ProducerRecord::new(topic, value);
                            let halt = halt.clone();
                            producer
                                .enqueue_with(record, move |result| {
                                    if let Err(err) = result {
                                        failure
                                            .lock()
                                            .unwrap_or_else(|p| p.into_inner())
                                            .get_or_insert(err);
                                        halt.store(true, Ordering::Relaxed);
                                    }
                                })
                                .await?;
                            if in_flight.is_some() {
                                // A record that fails never reaches the consumers, nor gives
                                // its place in the window back: wait for its outcome (the
                                // next call stops if it failed).
                                producer.flush().await;
                            }
                            Ok(true)
                        }
                    }
                })
                .await?;
            producer.flush().await;
            if let Some(err) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(err);
            }
            producer.close().await;
            Ok::<u64, ClientError>(k)
        });
    }
    let mut sent = 0;
    // The first error is the one reported.
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
    // Wait for the consumers to see what was written: at most 30 s more, not after a
    // producer failed, and not once a consumer has.
    let drain = match result {
        Ok(()) => Instant::now() + Duration::from_secs(30),
        Err(_) => Instant::now(),
    };
    let mut latency = histogram();
    let mut gather = |joined: Result<Result<Histogram<u64>, ClientError>, _>| match joined {
        Ok(Ok(histogram)) => {
            let _ = latency.add(histogram);
        }
        Ok(Err(err)) => {
            if result.is_ok() {
                result = Err(err);
            }
        }
        Err(err) => {
            if result.is_ok() {
                result = Err(ClientError::InvalidArgument {
                    message: format!("a consumer task failed: {err}"),
                });
            }
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while received.load(Ordering::Relaxed) < sent && Instant::now() < drain {
        tokio::select! {
            _ = tick.tick() => {}
            Some(joined) = consumers.join_next() => {
                gather(joined);
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    while let Some(joined) = consumers.join_next().await {
        gather(joined);
    }
    result?;
    progress.finish();
    let records = received.load(Ordering::Relaxed);
    if records < sent {
        eprintln!("warning: {sent} records written, {records} consumed within 30 s of the end");
    }
    Ok(Outcome {
        workload: "e2e",
        records,
        bytes: records * args.size as u64,
        elapsed,
        latency: Some(latency),
        from_send: None,
    })
}

fn report(
    args: &BenchArgs,
    outcome: &Outcome,
    flush: &str,
    replication: usize,
) -> Result<(), CliError> {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    let bytes = outcome.bytes;
    let size = bytes
        .checked_div(outcome.records)
        .unwrap_or(args.size as u64);
    let records_per_s = outcome.records as f64 / seconds;
    let mb_per_s = bytes as f64 / 1_048_576.0 / seconds;
    let quantile_of = |latency: &Option<Histogram<u64>>, q: f64| {
        latency
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    };
    let quantile = |q: f64| quantile_of(&outcome.latency, q);
    let from_send = |q: f64| quantile_of(&outcome.from_send, q);
    let max = outcome
        .latency
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(Histogram::max);
    let ms = |us: Option<u64>| {
        us.map_or_else(
            || "-".to_string(),
            |us| format!("{:.2} ms", us as f64 / 1000.0),
        )
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = CliError::io("cannot write to standard output");
    let mut lines = vec![
        format!(
            "{}: {} records of {} B in {:.2} s: {:.0} records/s, {:.1} MB/s",
            outcome.workload, outcome.records, size, seconds, records_per_s, mb_per_s
        ),
        format!(
            "topic {}: replication factor {replication}, flush={flush}",
            args.topic
        ),
    ];
    let percentiles = |at: &dyn Fn(f64) -> Option<u64>| {
        format!(
            "p50 {}, p90 {}, p99 {}, p99.9 {}",
            ms(at(0.5)),
            ms(at(0.9)),
            ms(at(0.99)),
            ms(at(0.999))
        )
    };
    if outcome.latency.is_some() {
        let what = if outcome.workload == "e2e" {
            "produce → consume"
        } else {
            "produce → ack"
        };
        let line = format!(
            "latency ({what}): {}, max {}",
            percentiles(&quantile),
            ms(max)
        );
        lines.insert(1, line);
    }
    if args.rate > 0 && outcome.from_send.is_some() {
        // The same, counted from each send rather than from the schedule: the figure tools
        // without a schedule print.
        lines.insert(
            2,
            format!("latency (send → ack): {}", percentiles(&from_send)),
        );
    }
    let text = lines.join("\n");
    writeln!(out, "{text}").map_err(io)?;
    if args.json {
        let object = serde_json::json!({
            "workload": outcome.workload,
            "topic": args.topic,
            "records": outcome.records,
            "bytes": bytes,
            "size": size,
            "elapsed_s": seconds,
            "records_per_s": records_per_s,
            "mb_per_s": mb_per_s,
            "p50_us": quantile(0.5),
            "p90_us": quantile(0.9),
            "p99_us": quantile(0.99),
            "p999_us": quantile(0.999),
            "max_us": max,
            "mean_us": outcome.latency.as_ref().filter(|h| !h.is_empty()).map(Histogram::mean),
            "send_p50_us": from_send(0.5),
            "send_p99_us": from_send(0.99),
            "send_p999_us": from_send(0.999),
            "flush": flush,
            "partitions": args.partitions,
            "replication_factor": replication,
            "producers": args.producers,
            "consumers": args.consumers,
            "rate": args.rate,
            "in_flight": args.in_flight,
        });
        writeln!(out, "{object}").map_err(CliError::io("cannot write to standard output"))?;
    }
    Ok(())
}

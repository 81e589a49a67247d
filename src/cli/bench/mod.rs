//! `stave bench produce|consume|e2e`: the whole system measured through the client, the way
//! Kafka's and NATS's perf tools measure theirs.
//!
//! - produce: records of `--size` bytes from `--producers` producers, as fast as the broker
//!   acknowledges them or at `--rate`; latency is produce → acknowledgement.
//! - consume: a consumer group of `--consumers` members reads the topic from the beginning.
//! - e2e: consumers wait at the end of the topic, producers write at `--rate` (or
//!   `--in-flight N` records at a time, 1 being Kafka's EndToEndLatency mode); latency is
//!   produce → consume, carried in each record's first 8 bytes.
//! - queue: a queue group's members drain a preloaded topic, acking every record (`queue`).
//!
//! Latency counts from when a record was *due* (its slot in the `--rate` schedule, or the
//! moment the producer was ready for it), not from when it got sent, so a stall delays every
//! record behind it in the figures too (no coordinated omission). A paced produce run also
//! prints the latency counted from each send (`send_p50_us`, ... in `--json`), the figure
//! tools without a schedule (`nats bench`, Kafka's ProducerPerformance) print. Histograms are HDR
//! (microseconds, 3 significant digits). MB/s are MiB (2^20 bytes) per second, as Kafka's
//! tools print them.
//!
//! Each workload has its file (`produce`, `consume`, `e2e`); `schedule` paces the producers,
//! `progress` draws the progress line and `report` prints the figures.

mod consume;
mod e2e;
mod produce;
mod progress;
mod queue;
mod records;
mod report;
mod schedule;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use stave_client::{Client, ConsumerConfig, NewTopic, OffsetReset, ProducerConfig, StartPosition};
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
    /// Preload --records records, then a queue group of --members members drains them,
    /// acking every record (after --work-ms of work): throughput and ack latency.
    Queue(queue::QueueBenchArgs),
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
    /// Which face of the API to measure: `batch` (record-batch frames through the Rust
    /// client: Produce/ProduceStream, Fetch) or `records` (records as proto messages, as a
    /// client in any language uses them: PublishStream, Consume). e2e with `records` reads
    /// through Consume and writes through the batch producer, so the consumers compare.
    #[arg(long, value_enum, default_value_t = Api::Batch)]
    api: Api,
    /// produce --api records: give every record its own `id` header (so the broker checks
    /// it against the partition's id table, the exactly-once path) instead of letting the
    /// node give one.
    #[arg(long)]
    message_ids: bool,
    /// Print one JSON object with the results on the last line.
    #[arg(long)]
    json: bool,
    /// How long a record may go unacknowledged: the CLI's --timeout.
    #[arg(skip)]
    delivery_timeout: Duration,
}

/// The face of the API a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    Batch,
    Records,
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
            BenchCommand::Queue(args) => BenchCommand::Queue(args),
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
    /// e2e: per record, from its ack reaching the producer to its arrival at a consumer
    /// (what consuming adds to produce → ack), and how many arrived before their ack.
    after_ack: Option<(Histogram<u64>, u64)>,
}

/// Runs `command`, then prints its figures.
pub async fn run(
    client: &Client,
    command: BenchCommand,
    timeout: Duration,
) -> Result<(), CliError> {
    let (args, outcome) = match command.with_delivery_timeout(timeout) {
        BenchCommand::Produce(args) => {
            check(&args)?;
            let outcome = match args.api {
                Api::Batch => produce::run(client, &args).await?,
                Api::Records => records::produce(client, &args).await?,
            };
            (args, outcome)
        }
        BenchCommand::Consume(args) => {
            check(&args)?;
            let outcome = match args.api {
                Api::Batch => consume::run(client, &args).await?,
                Api::Records => records::consume(client, &args).await?,
            };
            (args, outcome)
        }
        BenchCommand::E2e(args) => {
            check(&args)?;
            let outcome = e2e::run(client, &args).await?;
            (args, outcome)
        }
        BenchCommand::Queue(args) => return queue::run(client, args).await,
    };
    let flush = topic_flush(client, &args.topic).await;
    let replication = client
        .admin()
        .describe_topic(&args.topic)
        .await
        .map(|t| t.replication_factor())
        .unwrap_or(0);
    report::print(&args, &outcome, &flush, replication)
}

/// Refuses arguments no run can use.
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

/// Creates the topic unless it exists; either way, waits until its partitions have leaders
/// (a topic created just before the run may still be electing them).
async fn ensure_topic(client: &Client, args: &BenchArgs) -> Result<(), CliError> {
    ensure_topic_with(
        client,
        &args.topic,
        args.partitions,
        args.replication_factor,
        args.flush.as_deref(),
    )
    .await
}

/// [`ensure_topic`] with the settings given one by one.
async fn ensure_topic_with(
    client: &Client,
    name: &str,
    partitions: u32,
    replication_factor: Option<u32>,
    flush: Option<&str>,
) -> Result<(), CliError> {
    let admin = client.admin();
    if admin.describe_topic(name).await.is_ok() {
        admin
            .wait_for_leaders(name, Duration::from_secs(30))
            .await?;
        return Ok(());
    }
    let mut topic = NewTopic::new(name, partitions);
    if let Some(replication) = replication_factor {
        topic = topic.replication_factor(replication);
    }
    if let Some(flush) = flush {
        topic = topic.config("flush", flush);
    }
    match admin.create_topic(topic).await {
        Ok(()) => {}
        Err(err) if err.code() == Some(stave_client::ErrorCode::TopicExists) => {}
        Err(err) => return Err(err.into()),
    }
    admin
        .wait_for_leaders(name, Duration::from_secs(30))
        .await?;
    Ok(())
}

/// Records a produce run writes: `--messages`, none with `--duration` (it runs until then),
/// else 1,000,000.
fn produce_total(args: &BenchArgs) -> Option<u64> {
    match (args.messages, args.duration) {
        (Some(messages), _) => Some(messages),
        (None, Some(_)) => None,
        (None, None) => Some(1_000_000),
    }
}

/// The topic's flush policy, as the report prints it.
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

/// An empty latency histogram.
fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits: bounds that are valid by construction.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// A latency in microseconds, within the histogram's bounds.
fn micros(elapsed: Duration) -> u64 {
    (elapsed.as_micros() as u64).clamp(1, 600_000_000)
}

/// The configuration of each producer of a run.
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

/// A name for a new consumer group, from the process id and the time.
fn fresh_group() -> String {
    format!(
        "stave-bench-{}-{}",
        std::process::id(),
        now_nanos() / 1_000_000
    )
}

/// The configuration of each consumer of a run, starting at `start` without a commit.
fn consumer_config(start: StartPosition) -> ConsumerConfig {
    ConsumerConfig {
        start_without_commit: start,
        offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

/// Sleeps until `until`; forever without one.
async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

//! `stave bench queue`: a queue group's members drain a preloaded topic, acknowledging every
//! record (W6). The topic is filled first (`--records` of `--size` bytes, through the batch
//! producer); then `--members` members of a new queue group, started from the earliest
//! record, each holding up to `--credit` records, work `--work-ms` per record and ack it.
//! With no work, a member acks each fetched batch in one request (as RabbitMQ's multiple
//! ack or a JetStream AckAll would); with work, each record is acked after its work, one
//! request per record. Acks are pipelined: a member fetches again while its acks are on
//! their way, within its credit.
//!
//! Throughput counts from the first record delivered to the last ack answered; ack latency
//! is a settle request's round trip (sent → the coordinator answered it, once the state
//! holding it was replicated). The work is a sleep on a blocking thread (a timer sleep of
//! 1 ms lasts up to 2); `work_mean_us` in the JSON is what it took on average.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use stave_client::{
    Client, ProducerRecord, QueueConfig, QueueConsumer, QueuedRecord, Settle, StartPosition,
};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{ensure_topic_with, fresh_group, histogram, micros, payload, topic_flush};
use crate::cli::error::CliError;

#[derive(Debug, Clone, Args)]
pub struct QueueBenchArgs {
    /// Topic to use; created (with --partitions, --replication-factor, --flush) if missing.
    #[arg(long, default_value = "stave-bench-queue", value_name = "T")]
    topic: String,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 1, value_name = "N")]
    partitions: u32,
    /// Replicas per partition of a topic the bench creates [default: the smaller of 3 and
    /// the number of nodes].
    #[arg(long, value_name = "R")]
    replication_factor: Option<u32>,
    /// Flush policy of a topic the bench creates: always, never, interval:<ms>.
    #[arg(long, value_name = "POLICY")]
    flush: Option<String>,
    /// Records to preload and drain.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    records: u64,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    size: usize,
    /// Members of the queue group.
    #[arg(long, default_value_t = 8, value_name = "N")]
    members: usize,
    /// Records each member holds at once at most.
    #[arg(long, default_value_t = 64, value_name = "N")]
    credit: u32,
    /// Milliseconds of work per record (a sleep: I/O-bound work, a call to another
    /// service); the record is acked after it.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    work_ms: u64,
    /// Print one JSON object with the results on the last line.
    #[arg(long)]
    json: bool,
}

/// What the members share while they run.
struct Shared {
    /// Work done, as measured around each sleep (a 1 ms sleep lasts a little longer).
    work_us: AtomicU64,
    acked: AtomicU64,
    redelivered: AtomicU64,
    total: u64,
    latency: Mutex<Histogram<u64>>,
    first_delivery: Mutex<Option<Instant>>,
    /// When the ack that completed the run was answered (members still waiting in a fetch
    /// then are not counted).
    last_ack: Mutex<Option<Instant>>,
}

pub async fn run(client: &Client, args: QueueBenchArgs) -> Result<(), CliError> {
    if args.members == 0 || args.credit == 0 || args.records == 0 {
        return Err(CliError::Usage(
            "--members, --credit and --records must be at least 1".into(),
        ));
    }
    ensure_topic_with(
        client,
        &args.topic,
        args.partitions,
        args.replication_factor,
        args.flush.as_deref(),
    )
    .await?;
    // The topic may have existed with another partition count: the report gives its own.
    let mut args = args;
    if let Ok(topic) = client.admin().describe_topic(&args.topic).await {
        args.partitions = topic.partitions.len() as u32;
    }
    let preload_started = Instant::now();
    preload(client, &args).await?;
    let preload_s = preload_started.elapsed().as_secs_f64();
    let group = fresh_group();
    let config = QueueConfig {
        credit: args.credit,
        start: StartPosition::Earliest,
        fetch_wait: Duration::from_millis(500),
        ..QueueConfig::default()
    };
    let mut members = Vec::with_capacity(args.members);
    for _ in 0..args.members {
        let topics = [args.topic.as_str()];
        members.push(QueueConsumer::join(client, &group, &topics, config.clone()).await?);
    }
    let shared = Arc::new(Shared {
        work_us: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        redelivered: AtomicU64::new(0),
        total: args.records,
        latency: Mutex::new(histogram()),
        first_delivery: Mutex::new(None),
        last_ack: Mutex::new(None),
    });
    let mut tasks = JoinSet::new();
    for member in members {
        tasks.spawn(drain(member, args.clone(), shared.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|err| CliError::Usage(format!("a member failed: {err}")))??;
    }
    let end = shared.last_ack.lock().await.unwrap_or_else(Instant::now);
    let started = shared.first_delivery.lock().await.unwrap_or(end);
    let elapsed = end.duration_since(started).as_secs_f64().max(1e-9);
    let flush = topic_flush(client, &args.topic).await;
    report(&args, &shared, elapsed, preload_s, &flush).await;
    Ok(())
}

/// Prints the figures (and the JSON line with `--json`).
async fn report(args: &QueueBenchArgs, shared: &Shared, elapsed: f64, preload_s: f64, flush: &str) {
    let latency = shared.latency.lock().await.clone();
    let rate = args.records as f64 / elapsed;
    println!(
        "queue: {} records of {} B drained by {} members (credit {}, {} ms work each) in {elapsed:.2} s: {rate:.0} records/s",
        args.records, args.size, args.members, args.credit, args.work_ms
    );
    println!(
        "ack latency (settle round trip) p50 {} µs, p99 {} µs, max {} µs; redelivered {}; preload {preload_s:.1} s; topic {} ({} partitions, flush={flush})",
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max(),
        shared.redelivered.load(Ordering::Relaxed),
        args.topic,
        args.partitions,
    );
    if args.json {
        let object = serde_json::json!({
            "workload": "queue",
            "records": args.records,
            "size": args.size,
            "members": args.members,
            "credit": args.credit,
            "partitions": args.partitions,
            "work_ms": args.work_ms,
            "records_per_s": rate,
            "ack_p50_us": latency.value_at_quantile(0.5),
            "ack_p99_us": latency.value_at_quantile(0.99),
            "ack_max_us": latency.max(),
            // The names every `stave bench --json` line has (latency: the ack's).
            "mb_per_s": rate * args.size as f64 / 1_048_576.0,
            "p50_us": latency.value_at_quantile(0.5),
            "p99_us": latency.value_at_quantile(0.99),
            "p999_us": latency.value_at_quantile(0.999),
            "max_us": latency.max(),
            "elapsed_s": elapsed,
            "redelivered": shared.redelivered.load(Ordering::Relaxed),
            "work_mean_us": (args.work_ms > 0).then(|| shared.work_us.load(Ordering::Relaxed) as f64 / args.records as f64),
            "flush": flush,
        });
        println!("{object}");
    }
}

/// Writes `--records` records through the batch producer.
async fn preload(client: &Client, args: &QueueBenchArgs) -> Result<(), CliError> {
    let producer = client
        .producer(stave_client::ProducerConfig::default())
        .await?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let value = payload(args.size);
    let failed = Arc::new(std::sync::Mutex::new(None));
    for _ in 0..args.records {
        let failed = failed.clone();
        producer
            .enqueue_with(
                ProducerRecord::new(topic.clone(), value.clone()),
                move |result| {
                    if let Err(err) = result {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                    }
                },
            )
            .await?;
    }
    producer.flush().await;
    producer.close().await;
    let failure = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// One member: fetch within its credit, work, ack (pipelined), until the group acked all.
async fn drain(
    member: QueueConsumer,
    args: QueueBenchArgs,
    shared: Arc<Shared>,
) -> Result<(), CliError> {
    let member = Arc::new(member);
    // One permit per record the member may hold: taken when fetched, given back when acked.
    let credit = Arc::new(Semaphore::new(args.credit as usize));
    let mut acks = JoinSet::new();
    while shared.acked.load(Ordering::Relaxed) < shared.total {
        let free = credit.available_permits() as u32;
        if free == 0 {
            // Wait for an ack to come back.
            match acks.join_next().await {
                Some(done) => {
                    done.map_err(|err| CliError::Usage(format!("an ack failed: {err}")))??
                }
                None => tokio::task::yield_now().await,
            }
            continue;
        }
        let records = member.fetch(free, Duration::from_millis(200)).await?;
        if records.is_empty() {
            continue;
        }
        shared
            .first_delivery
            .lock()
            .await
            .get_or_insert_with(Instant::now);
        let permits = credit
            .clone()
            .acquire_many_owned(records.len() as u32)
            .await
            .map_err(|_| CliError::Usage("the credit closed".into()))?;
        let redelivered = records.iter().filter(|r| r.delivery_count > 1).count() as u64;
        shared.redelivered.fetch_add(redelivered, Ordering::Relaxed);
        if args.work_ms == 0 {
            acks.spawn(ack(member.clone(), records, permits, shared.clone()));
        } else {
            let mut permits = permits;
            for record in records {
                work(args.work_ms, &shared).await;
                let one = permits
                    .split(1)
                    .unwrap_or_else(|| unreachable!("a permit per record"));
                acks.spawn(ack(member.clone(), vec![record], one, shared.clone()));
            }
        }
        while let Some(done) = acks.try_join_next() {
            done.map_err(|err| CliError::Usage(format!("an ack failed: {err}")))??;
        }
    }
    while let Some(done) = acks.join_next().await {
        done.map_err(|err| CliError::Usage(format!("an ack failed: {err}")))??;
    }
    member.leave().await?;
    Ok(())
}

/// Sleeps `ms` milliseconds, the work of one record: on a blocking thread with the least
/// timer slack, since a runtime timer rounds up to the next millisecond tick (`sleep(1 ms)`
/// lasts 1-2 ms there) and Linux lets a thread oversleep by 50 µs by default.
async fn work(ms: u64, shared: &Shared) {
    let started = std::time::Instant::now();
    let _ = tokio::task::spawn_blocking(move || {
        super::schedule::least_timer_slack();
        std::thread::sleep(Duration::from_millis(ms));
    })
    .await;
    shared
        .work_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// Acks `records` in one request; their permits go back when it is answered.
async fn ack(
    member: Arc<QueueConsumer>,
    records: Vec<QueuedRecord>,
    permits: tokio::sync::OwnedSemaphorePermit,
    shared: Arc<Shared>,
) -> Result<(), CliError> {
    let items: Vec<(&QueuedRecord, Settle)> = records.iter().map(|r| (r, Settle::Ack)).collect();
    let sent = Instant::now();
    let answers = member.settle(&items).await?;
    let took = micros(sent.elapsed());
    drop(permits);
    let mut done = 0;
    for answer in answers {
        // A lock that expired under load: the record went out again and is acked then.
        if answer.is_ok() {
            done += 1;
        }
    }
    let before = shared.acked.fetch_add(done, Ordering::Relaxed);
    if before < shared.total && before + done >= shared.total {
        *shared.last_ack.lock().await = Some(Instant::now());
    }
    let _ = shared.latency.lock().await.record(took);
    Ok(())
}

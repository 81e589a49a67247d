//! `stave bench produce`: records of `--size` bytes from `--producers` producers, as fast as
//! the broker acknowledges them or at `--rate`; latency is produce → acknowledgement.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hdrhistogram::Histogram;
use stave_client::{Client, ClientError, ProducerRecord, RecordMetadata};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::progress::Progress;
use super::schedule::Schedule;
use super::{BenchArgs, Outcome, ensure_topic, histogram, micros, payload, producer_config};
use crate::cli::error::CliError;

/// What one producer wrote: the records acknowledged, and their produce → ack latencies
/// counted from when each was due and from when it was sent.
type Written = (u64, Histogram<u64>, Histogram<u64>);

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

/// Runs the workload: sets up the topic, starts the producers, and adds up what they counted.
pub(super) async fn run(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    ensure_topic(client, args).await?;
    let total = super::produce_total(args);
    let start = Instant::now();
    let until = args.duration.map(|d| start + d);
    let progress = Progress::start("produce", Arc::default(), total, args.size, until);
    let value = payload(args.size);
    let mut tasks = JoinSet::new();
    for p in 0..args.producers {
        let schedule = Schedule::new(args, start, until, total, p);
        let done = progress.done.clone();
        tasks.spawn(write(
            client.clone(),
            args.clone(),
            schedule,
            value.clone(),
            done,
        ));
    }
    let (records, latency, from_send) = gather(&mut tasks).await?;
    let elapsed = start.elapsed();
    progress.finish();
    Ok(Outcome {
        workload: "produce",
        records,
        bytes: records * args.size as u64,
        elapsed,
        latency: Some(latency),
        from_send: Some(from_send),
        after_ack: None,
    })
}

/// One producer's part of the run: sends its share on `schedule`, waits for every
/// acknowledgement, and returns what its callbacks counted (or the first failure).
async fn write(
    client: Client,
    args: BenchArgs,
    schedule: Schedule,
    value: Bytes,
    done: Arc<AtomicU64>,
) -> Result<Written, ClientError> {
    let producer = client.producer(producer_config(&args)).await?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    // Outcomes arrive through callbacks on the producer's tasks (as Kafka's
    // ProducerPerformance): no future per record to poll.
    let tally = Arc::new(Tally {
        counts: Mutex::default(),
        done,
        failed: AtomicBool::new(false),
    });
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
    let counts = std::mem::take(&mut *tally.counts.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(err) = counts.failure {
        return Err(err);
    }
    Ok((k, counts.from_due, counts.from_send))
}

/// Adds up what the producers wrote, in the order they finish; the first failure is returned.
async fn gather(tasks: &mut JoinSet<Result<Written, ClientError>>) -> Result<Written, CliError> {
    let mut records = 0;
    let (mut latency, mut from_send) = (histogram(), histogram());
    while let Some(joined) = tasks.join_next().await {
        let (count, due, sent) =
            joined.map_err(|e| CliError::Usage(format!("a producer task failed: {e}")))??;
        records += count;
        let _ = latency.add(due);
        let _ = from_send.add(sent);
    }
    Ok((records, latency, from_send))
}

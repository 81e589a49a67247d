//! `stave bench consume`: a consumer group of `--consumers` members reads the topic from the
//! beginning.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stave_client::{Client, ClientError, StartPosition};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::progress::Progress;
use super::{BenchArgs, Outcome, consumer_config, fresh_group, sleep_until};
use crate::cli::error::CliError;

/// The readers of a run: each returns the bytes of record values it read.
type Readers = JoinSet<Result<u64, ClientError>>;

/// What every member of the group shares with the run.
#[derive(Clone)]
struct Reader {
    topic: String,
    group: String,
    /// Records to read over all members; `None`: until `until`.
    total: Option<u64>,
    until: Option<Instant>,
    /// When the first record arrived.
    first: Arc<OnceLock<Instant>>,
    /// Records read so far, over all members.
    done: Arc<AtomicU64>,
    /// Stops the other members once `total` records were read.
    stop_tx: watch::Sender<bool>,
}

/// Runs the workload: the group's members read until `total` records, `--duration` or a
/// failure, and the clock stops at the last record rather than after the members closed.
pub(super) async fn run(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    crate::cli::require_topic(client, &args.topic, Duration::from_secs(10)).await?;
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
    let first = Arc::new(OnceLock::<Instant>::new());
    let reader = Reader {
        topic: args.topic.clone(),
        group,
        total,
        until,
        first: first.clone(),
        done: progress.done.clone(),
        stop_tx: stop_tx.clone(),
    };
    let mut tasks = JoinSet::new();
    for _ in 0..args.consumers {
        tasks.spawn(reader.clone().read(client.clone(), stop.clone()));
    }
    let since_first = || {
        first
            .get()
            .map_or_else(|| start.elapsed(), |first| first.elapsed())
    };
    let mut reads = Reads {
        bytes: 0,
        result: Ok(()),
    };
    // The time is taken when the last record arrives, not after the consumers closed.
    let elapsed = reads
        .until_the_end(&mut tasks, stop.clone(), until, since_first)
        .await;
    let _ = stop_tx.send(true);
    reads.join_rest(&mut tasks).await;
    reads.result?;
    progress.finish();
    let records = reader.done.load(Ordering::Relaxed);
    Ok(Outcome {
        workload: "consume",
        records,
        bytes: reads.bytes,
        elapsed: elapsed.unwrap_or_else(since_first),
        latency: None,
        from_send: None,
        after_ack: None,
    })
}

impl Reader {
    /// One member of the group: reads from the beginning until `total` records were read
    /// over all members, the run's time is up, or `stop`; returns the bytes of record values
    /// it read.
    async fn read(
        self,
        client: Client,
        mut stop: watch::Receiver<bool>,
    ) -> Result<u64, ClientError> {
        let mut consumer = client.consumer(consumer_config(StartPosition::Earliest));
        consumer
            .subscribe(&self.group, &[self.topic.as_str()])
            .await?;
        let mut bytes = 0u64;
        loop {
            let record = tokio::select! {
                record = consumer.next() => record?,
                _ = stop.wait_for(|stop| *stop) => break,
                () = sleep_until(self.until) => break,
            };
            self.first.get_or_init(Instant::now);
            bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
            let count = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            if self.total.is_some_and(|total| count >= total) {
                let _ = self.stop_tx.send(true);
                break;
            }
        }
        consumer.close().await?;
        Ok(bytes)
    }
}

/// What the readers returned: the bytes of record values they read, and a failure.
struct Reads {
    bytes: u64,
    result: Result<(), ClientError>,
}

impl Reads {
    /// Waits for the run to end: every record read (`stop`), its time up (`until`), or the
    /// readers ended (the first failure ends the wait). Returns the time since the first
    /// record when the run ended by `stop` or `until`.
    async fn until_the_end(
        &mut self,
        tasks: &mut Readers,
        mut stopped: watch::Receiver<bool>,
        until: Option<Instant>,
        since_first: impl Fn() -> Duration,
    ) -> Option<Duration> {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => Some(since_first()),
            () = sleep_until(until) => Some(since_first()),
            () = self.join_until_failure(tasks) => None,
        }
    }

    /// Joins readers as they end, until one fails.
    async fn join_until_failure(&mut self, tasks: &mut Readers) {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(read)) => self.bytes += read,
                Ok(Err(err)) => {
                    self.result = Err(err);
                    return;
                }
                Err(_) => {}
            }
        }
    }

    /// Joins the readers still running; a failure replaces the one seen before.
    async fn join_rest(&mut self, tasks: &mut Readers) {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(read)) => self.bytes += read,
                Ok(Err(err)) => self.result = Err(err),
                Err(_) => {}
            }
        }
    }
}

/// Records in the topic now (high watermark minus log start, over its partitions).
pub(super) async fn records_in(client: &Client, topic: &str) -> Result<u64, CliError> {
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

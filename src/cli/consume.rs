//! `stave consume TOPIC_OR_PATTERN`: prints records as they arrive, from every partition or
//! one, or — with `--group` — from the partitions a consumer group gives this consumer
//! (topic names or patterns like `v1.user.#`; assignment changes are noted on standard
//! error; positions are committed every 5 s, and on exit).
//!
//! Text: the value alone, one line per record. JSON: one object per line with topic,
//! partition, offset, timestamp, key, value and headers (bytes that are not UTF-8 are
//! printed lossily). Stops after `--max-messages`, on SIGTERM or Ctrl-C, or when standard
//! output closes.
//!
//! With `--queue`, a member of a queue group: records come from every partition, locked to
//! this consumer until it acknowledges them; each fetched batch is printed and flushed, then
//! acknowledged in one request. On exit the records fetched and not printed are released
//! (the group's other members get them at once).

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use stave_client::{
    AssignmentChange, Client, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, QueueConfig,
    QueueConsumer, QueueOrdering, QueuedRecord, Settle, StartPosition,
};

use super::args::parse_time;
use super::error::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value alone, one line per record.
    Text,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    Json,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read; with --group also a pattern: `*` stands for one dot-separated word
    /// (`v1.user.*`), `#` for any number of words (`v1.#`).
    #[arg(value_name = "TOPIC_OR_PATTERN")]
    topic: String,
    /// Read as a member of consumer group G: the group splits the partitions between its
    /// members, and the consumer resumes at the group's committed offsets. It commits every
    /// 5 s, and commits and leaves the group on SIGTERM/Ctrl-C and at --max-messages.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Read as a member of queue group Q: every member may get records from every
    /// partition; the broker hands the next records to whichever member asks (so work
    /// follows speed), each locked to it until acknowledged (after its line is printed and
    /// flushed) or until the lock expires. Records fetched and not printed at exit are
    /// released. A new queue group starts at the end unless --from-beginning.
    #[arg(long, value_name = "Q", conflicts_with_all = ["group", "partition"])]
    queue: Option<String>,
    /// With --queue: the most records held at once.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "queue")]
    credit: u32,
    /// With --queue, for a new group: how long a delivery stays locked (1 ms to 1 h)
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_duration, requires = "queue")]
    lock: Option<Duration>,
    /// With --queue, for a new group: deliveries before a record given back goes to the
    /// dead-letter topic `_dlq.{queue}.{topic}` [default: 5].
    #[arg(long, value_name = "N", requires = "queue")]
    max_deliveries: Option<u32>,
    /// With --queue, for a new group: no two records with the same key in flight at once,
    /// and a key's records delivered in offset order.
    #[arg(long, requires = "queue")]
    key_order: bool,
    /// Read only this partition [default: every partition].
    #[arg(long, value_name = "P", conflicts_with = "group")]
    partition: Option<u32>,
    /// Start at the oldest record [default: only records written from now on]. With
    /// --group: for partitions the group never committed.
    #[arg(long, group = "start")]
    from_beginning: bool,
    /// Start at offset N (in each partition read).
    #[arg(long, value_name = "N", group = "start", conflicts_with_all = ["group", "queue"])]
    offset: Option<u64>,
    /// Start at the first record at or after T: RFC 3339 (2024-05-01T12:00:00Z) or epoch ms.
    #[arg(
        long,
        value_name = "T",
        group = "start",
        value_parser = parse_time,
        conflicts_with_all = ["group", "queue"]
    )]
    from_time: Option<i64>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub async fn run(client: &Client, args: ConsumeArgs, timeout: Duration) -> Result<(), CliError> {
    if let Some(queue) = &args.queue {
        return run_queue(client, queue, &args).await;
    }
    let pattern = args.topic.contains(['*', '#']);
    let grouped = args.group.is_some();
    let mut consumer = match &args.group {
        Some(group) => join(client, group, &args, timeout).await?,
        None if pattern => {
            return Err(CliError::Usage(format!(
                "{:?} is a pattern: patterns need --group (a consumer group follows the \
                 topics that match, including ones created later)",
                args.topic
            )));
        }
        None => assign(client, &args, timeout).await?,
    };
    let max = args.max_messages.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write_error = CliError::io("cannot write to standard output");
    let shutdown = super::server::shutdown_signal();
    tokio::pin!(shutdown);
    let mut count = 0u64;
    let result: Result<(), CliError> = async {
        while count < max {
            // Records already fetched come without waiting; before waiting for more, what
            // was printed is flushed, so output appears as records arrive.
            let record = match consumer.poll(Duration::ZERO).await? {
                Some(record) => record,
                None => {
                    out.flush()
                        .map_err(CliError::io("cannot write to standard output"))?;
                    tokio::select! {
                        record = consumer.next() => record?,
                        () = &mut shutdown => break,
                    }
                }
            };
            write_record(&mut out, &record, args.format)
                .map_err(CliError::io("cannot write to standard output"))?;
            if grouped {
                // A group commits what was handed out: it must be out of this process first.
                out.flush()
                    .map_err(CliError::io("cannot write to standard output"))?;
            }
            count += 1;
        }
        Ok(())
    }
    .await;
    out.flush().map_err(write_error)?;
    // In a group: commit what was printed and leave, so the partitions move on at once.
    let closed = consumer.close().await;
    result?;
    closed.map_err(CliError::from)
}

/// `--queue`: fetch, print and flush, acknowledge; repeat.
async fn run_queue(client: &Client, queue: &str, args: &ConsumeArgs) -> Result<(), CliError> {
    if args.credit == 0 {
        return Err(CliError::Usage("--credit is at least 1".into()));
    }
    let config = QueueConfig {
        credit: args.credit,
        lock: args.lock,
        max_deliveries: args.max_deliveries,
        ordering: if args.key_order {
            QueueOrdering::Key
        } else {
            QueueOrdering::None
        },
        start: if args.from_beginning {
            StartPosition::Earliest
        } else {
            StartPosition::Latest
        },
        ..QueueConfig::default()
    };
    let member = QueueConsumer::join(client, queue, &[args.topic.as_str()], config).await?;
    let max = args.max_messages.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let shutdown = super::server::shutdown_signal();
    tokio::pin!(shutdown);
    let mut count = 0u64;
    let result: Result<(), CliError> = async {
        while count < max {
            let wanted = args
                .credit
                .min(u32::try_from(max - count).unwrap_or(u32::MAX));
            let fetched = tokio::select! {
                fetched = member.fetch(wanted, Duration::from_secs(5)) => fetched?,
                () = &mut shutdown => break,
            };
            for record in &fetched {
                write_queued(&mut out, record, args.format)
                    .map_err(CliError::io("cannot write to standard output"))?;
            }
            out.flush()
                .map_err(CliError::io("cannot write to standard output"))?;
            count += fetched.len() as u64;
            let acks: Vec<(&QueuedRecord, Settle)> =
                fetched.iter().map(|record| (record, Settle::Ack)).collect();
            if acks.is_empty() {
                continue;
            }
            for (record, answer) in fetched.iter().zip(member.settle(&acks).await?) {
                if let Err(err) = answer {
                    // Its lock expired and it went out again: another member has it too.
                    eprintln!(
                        "{}/{} offset {}: not acknowledged: {err}",
                        record.topic, record.partition, record.offset
                    );
                }
            }
        }
        Ok(())
    }
    .await;
    // Leaving releases what this member holds: nothing printed is held (it was acknowledged).
    let closed = member.close().await;
    result?;
    closed.map_err(CliError::from)
}

fn write_queued(
    out: &mut impl Write,
    record: &QueuedRecord,
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Text => write_record(out, record, format),
        Format::Json => {
            let mut line = Vec::new();
            write_record(&mut line, record, format)?;
            let mut object: serde_json::Value = serde_json::from_slice(&line)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
            object["delivery_count"] = record.delivery_count.into();
            serde_json::to_writer(&mut *out, &object)?;
            out.write_all(b"\n")
        }
    }
}

/// A consumer reading the partitions named on the command line.
async fn assign(
    client: &Client,
    args: &ConsumeArgs,
    timeout: Duration,
) -> Result<Consumer, CliError> {
    super::require_topic(client, &args.topic, timeout).await?;
    let (start, offset_reset) = match (args.from_beginning, args.offset, args.from_time) {
        // Retention may move the log start between ListOffsets and the first fetch.
        (true, _, _) => (StartPosition::Earliest, OffsetReset::Earliest),
        // An explicit offset that is not there is the user's to know about.
        (_, Some(offset), _) => (StartPosition::Offset(offset), OffsetReset::Error),
        (_, _, Some(time)) => (StartPosition::Timestamp(time), OffsetReset::Earliest),
        _ => (StartPosition::Latest, OffsetReset::Earliest),
    };
    let mut consumer = client.consumer(ConsumerConfig {
        offset_reset,
        retry_timeout: timeout,
        ..ConsumerConfig::default()
    });
    match args.partition {
        Some(partition) => {
            consumer.assign(&args.topic, partition, start).await?;
        }
        None => {
            consumer.assign_topic(&args.topic, start).await?;
        }
    }
    Ok(consumer)
}

/// A consumer in `group`, noting its assignment changes on standard error.
async fn join(
    client: &Client,
    group: &str,
    args: &ConsumeArgs,
    timeout: Duration,
) -> Result<Consumer, CliError> {
    let mut consumer = client.consumer(ConsumerConfig {
        // A committed offset retention has removed since: continue at the oldest record.
        offset_reset: OffsetReset::Earliest,
        start_without_commit: if args.from_beginning {
            StartPosition::Earliest
        } else {
            StartPosition::Latest
        },
        retry_timeout: timeout.max(Duration::from_secs(30)),
        ..ConsumerConfig::default()
    });
    consumer.subscribe(group, &[args.topic.as_str()]).await?;
    consumer.on_assignment_change(|change| {
        let list = |partitions: Vec<String>| partitions.join(" ");
        let line = match change {
            AssignmentChange::Assigned { partitions, .. } => format!(
                "assigned: {}",
                list(
                    partitions
                        .iter()
                        .map(|(t, p, offset)| format!("{t}/{p}@{offset}"))
                        .collect()
                )
            ),
            AssignmentChange::Revoked { partitions, .. } => format!(
                "revoked: {}",
                list(partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect())
            ),
            AssignmentChange::Lost { partitions } => format!(
                "lost (the group moved on; rejoining): {}",
                list(partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect())
            ),
        };
        eprintln!("{line}");
    });
    Ok(consumer)
}

fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            if let Some(value) = &record.value {
                out.write_all(value)?;
            }
            out.write_all(b"\n")
        }
        Format::Json => {
            let text = |bytes: &Option<bytes::Bytes>| match bytes {
                Some(bytes) => serde_json::Value::String(String::from_utf8_lossy(bytes).into()),
                None => serde_json::Value::Null,
            };
            let headers: serde_json::Map<String, serde_json::Value> = record
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::Value::String(String::from_utf8_lossy(v).into()),
                    )
                })
                .collect();
            let object = serde_json::json!({
                "topic": &*record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": text(&record.key),
                "value": text(&record.value),
                "headers": headers,
            });
            serde_json::to_writer(&mut *out, &object)?;
            out.write_all(b"\n")
        }
    }
}

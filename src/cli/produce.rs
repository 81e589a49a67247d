//! `stave produce TOPIC`: one record per line of standard input.
//!
//! A thread reads stdin (lines of at most `--max-record-bytes`, without their `\n` or
//! `\r\n`) and the producer pipelines them; the command waits for every record to be
//! acknowledged, and stops at the first one that fails.

use std::io::{BufRead, Read};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use futures_util::{FutureExt, StreamExt, stream::FuturesUnordered};
use stave_client::{Client, ProducerConfig, ProducerRecord};
use tokio::sync::mpsc;

use super::args::parse_key_value;
use super::error::CliError;

/// Lines read ahead of the producer.
const LINES_AHEAD_MAX: usize = 1024;

/// Room for a frame's and a record's own bytes on top of the record's key and value.
const RECORD_OVERHEAD_BYTES: usize = 4096;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// The key of every record.
    #[arg(long, value_name = "K", conflicts_with = "key_separator")]
    key: Option<String>,
    /// Read each line as KEY<SEP>VALUE, split at the first SEP.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A header on every record (repeatable). Every record also gets a unique `id` header.
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition [default: by key; keyless records go to one
    /// partition per batch].
    #[arg(long, value_name = "P")]
    partition: Option<u32>,
    /// The longest line accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_record_bytes: usize,
}

pub async fn run(client: &Client, args: ProduceArgs, timeout: Duration) -> Result<(), CliError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage("--key-separator cannot be empty".into()));
    }
    super::require_topic(client, &args.topic, timeout).await?;
    let defaults = ProducerConfig::default();
    let request_bytes_max = defaults
        .request_bytes_max
        .max(args.max_record_bytes + RECORD_OVERHEAD_BYTES);
    let producer = client
        .producer(ProducerConfig {
            delivery_timeout: timeout,
            request_bytes_max,
            buffer_bytes_max: defaults.buffer_bytes_max.max(2 * request_bytes_max),
            ..defaults
        })
        .await?;
    let headers: Vec<(String, Bytes)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
        .collect();

    let (lines, mut incoming) = mpsc::channel(LINES_AHEAD_MAX);
    let max_record_bytes = args.max_record_bytes;
    // A thread, not a blocking task: a runtime shutting down waits for its blocking tasks,
    // and a read of a terminal never ends by itself.
    std::thread::spawn(move || read_lines(max_record_bytes, &lines));

    let mut pending = FuturesUnordered::new();
    let mut line_number = 0u64;
    while let Some(line) = incoming.recv().await {
        line_number += 1;
        let record = record(&args, &headers, line?, line_number)?;
        pending.push(producer.enqueue(record).await?);
        // Report a failure as soon as it is known, not after the whole input.
        while let Some(Some(result)) = pending.next().now_or_never() {
            result?;
        }
    }
    producer.flush().await;
    while let Some(result) = pending.next().await {
        result?;
    }
    producer.close().await;
    Ok(())
}

fn record(
    args: &ProduceArgs,
    headers: &[(String, Bytes)],
    line: Vec<u8>,
    line_number: u64,
) -> Result<ProducerRecord, CliError> {
    let (key, value) = match &args.key_separator {
        Some(separator) => {
            let separator = separator.as_bytes();
            let at = line
                .windows(separator.len())
                .position(|window| window == separator)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "line {line_number} has no key separator {:?}",
                        String::from_utf8_lossy(separator)
                    ))
                })?;
            let line = Bytes::from(line);
            (Some(line.slice(..at)), line.slice(at + separator.len()..))
        }
        None => (
            args.key.as_ref().map(|k| Bytes::from(k.clone())),
            Bytes::from(line),
        ),
    };
    Ok(ProducerRecord {
        topic: args.topic.as_str().into(),
        partition: args.partition,
        key,
        value: Some(value),
        headers: headers.to_vec(),
        timestamp: None,
    })
}

/// Reads stdin line by line into `lines` until EOF, an error, or a line too long.
fn read_lines(max_record_bytes: usize, lines: &mpsc::Sender<Result<Vec<u8>, CliError>>) {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut line_number = 0u64;
    loop {
        let mut line = Vec::new();
        // At most the longest line, its `\r\n`, and one byte more to tell it is too long.
        let limit = max_record_bytes as u64 + 3;
        let read = (&mut reader).take(limit).read_until(b'\n', &mut line);
        let result = match read {
            Ok(0) => return,
            Ok(_) => {
                line_number += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if line.len() > max_record_bytes {
                    Err(CliError::Usage(format!(
                        "line {line_number} is longer than {max_record_bytes} bytes \
                         (see --max-record-bytes)"
                    )))
                } else {
                    Ok(line)
                }
            }
            Err(source) => Err(CliError::Io {
                what: "cannot read standard input".into(),
                source,
            }),
        };
        let stop = result.is_err();
        if lines.blocking_send(result).is_err() || stop {
            return;
        }
    }
}

//! A run's figures: a few lines of text, and with `--json` one JSON object on the last line.

use std::io::Write;

use hdrhistogram::Histogram;

use super::{BenchArgs, Outcome};
use crate::cli::error::CliError;

/// The rates of a run, as printed.
struct Figures {
    seconds: f64,
    /// Bytes of a record's value (the mean over the records read; `--size` without records).
    size: u64,
    records_per_s: f64,
    mb_per_s: f64,
}

impl Figures {
    /// The rates `outcome` measured.
    fn of(args: &BenchArgs, outcome: &Outcome) -> Figures {
        let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
        Figures {
            seconds,
            size: outcome
                .bytes
                .checked_div(outcome.records)
                .unwrap_or(args.size as u64),
            records_per_s: outcome.records as f64 / seconds,
            mb_per_s: outcome.bytes as f64 / 1_048_576.0 / seconds,
        }
    }
}

/// Prints the figures of `outcome` on standard output, with the topic's `flush` policy and
/// replication factor.
pub(super) fn print(
    args: &BenchArgs,
    outcome: &Outcome,
    flush: &str,
    replication: usize,
) -> Result<(), CliError> {
    let figures = Figures::of(args, outcome);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = CliError::io("cannot write to standard output");
    let text = lines(args, outcome, &figures, flush, replication).join("\n");
    writeln!(out, "{text}").map_err(io)?;
    if args.json {
        let object = json(args, outcome, &figures, flush, replication);
        writeln!(out, "{object}").map_err(CliError::io("cannot write to standard output"))?;
    }
    Ok(())
}

/// The text: throughput, the latency lines a run measured, then the topic.
fn lines(
    args: &BenchArgs,
    outcome: &Outcome,
    figures: &Figures,
    flush: &str,
    replication: usize,
) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{}: {} records of {} B in {:.2} s: {:.0} records/s, {:.1} MB/s",
            outcome.workload,
            outcome.records,
            figures.size,
            figures.seconds,
            figures.records_per_s,
            figures.mb_per_s
        ),
        format!(
            "topic {}: replication factor {replication}, flush={flush}",
            args.topic
        ),
    ];
    if outcome.latency.is_some() {
        let what = if outcome.workload == "e2e" {
            "produce → consume"
        } else {
            "produce → ack"
        };
        let line = format!(
            "latency ({what}): {}, max {}",
            percentiles(&outcome.latency),
            ms(recorded(&outcome.latency).map(Histogram::max))
        );
        lines.insert(1, line);
    }
    if let Some((after_ack, before_ack)) = &outcome.after_ack {
        let after_ack = Some(after_ack.clone());
        lines.insert(
            2,
            format!(
                "latency (ack → consume, per record): {} ({before_ack} consumed before \
                 their ack reached the producer, counted as 0)",
                percentiles_in(&after_ack, us)
            ),
        );
    }
    if args.rate > 0 && outcome.from_send.is_some() {
        // The same, counted from each send rather than from the schedule: the figure tools
        // without a schedule print.
        lines.insert(
            2,
            format!("latency (send → ack): {}", percentiles(&outcome.from_send)),
        );
    }
    lines
}

/// The JSON object: the figures, latencies in microseconds, and the run's settings.
fn json(
    args: &BenchArgs,
    outcome: &Outcome,
    figures: &Figures,
    flush: &str,
    replication: usize,
) -> serde_json::Value {
    let latency = |q: f64| quantile(&outcome.latency, q);
    let from_send = |q: f64| quantile(&outcome.from_send, q);
    let after_ack = outcome.after_ack.as_ref().map(|(h, _)| h.clone());
    let after_ack = |q: f64| quantile(&after_ack, q);
    serde_json::json!({
        "workload": outcome.workload,
        "topic": args.topic,
        "records": outcome.records,
        "bytes": outcome.bytes,
        "size": figures.size,
        "elapsed_s": figures.seconds,
        "records_per_s": figures.records_per_s,
        "mb_per_s": figures.mb_per_s,
        "p50_us": latency(0.5),
        "p90_us": latency(0.9),
        "p99_us": latency(0.99),
        "p999_us": latency(0.999),
        "max_us": recorded(&outcome.latency).map(Histogram::max),
        "mean_us": recorded(&outcome.latency).map(Histogram::mean),
        "send_p50_us": from_send(0.5),
        "send_p99_us": from_send(0.99),
        "send_p999_us": from_send(0.999),
        "after_ack_p50_us": after_ack(0.5),
        "after_ack_p99_us": after_ack(0.99),
        "consumed_before_ack": outcome.after_ack.as_ref().map(|(_, before)| *before),
        "flush": flush,
        "partitions": args.partitions,
        "replication_factor": replication,
        "producers": args.producers,
        "consumers": args.consumers,
        "rate": args.rate,
        "in_flight": args.in_flight,
    })
}

/// A histogram that holds any values.
fn recorded(latency: &Option<Histogram<u64>>) -> Option<&Histogram<u64>> {
    latency.as_ref().filter(|h| !h.is_empty())
}

/// The latency (µs) at quantile `q`, when there is any.
fn quantile(latency: &Option<Histogram<u64>>, q: f64) -> Option<u64> {
    recorded(latency).map(|h| h.value_at_quantile(q))
}

/// p50, p90, p99 and p99.9 of `latency`, in milliseconds.
fn percentiles(latency: &Option<Histogram<u64>>) -> String {
    percentiles_in(latency, ms)
}

/// p50, p90, p99 and p99.9 of `latency`, each shown by `show`.
fn percentiles_in(latency: &Option<Histogram<u64>>, show: fn(Option<u64>) -> String) -> String {
    let at = |q: f64| show(quantile(latency, q));
    format!(
        "p50 {}, p90 {}, p99 {}, p99.9 {}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999)
    )
}

/// Microseconds as they are; `-` for none.
fn us(us: Option<u64>) -> String {
    us.map_or_else(|| "-".to_string(), |us| format!("{us} µs"))
}

/// Microseconds as milliseconds with two decimals; `-` for none.
fn ms(us: Option<u64>) -> String {
    us.map_or_else(
        || "-".to_string(),
        |us| format!("{:.2} ms", us as f64 / 1000.0),
    )
}

//! The progress line a run shows on standard error, when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A progress line on standard error, when it is a terminal.
pub(super) struct Progress {
    /// Records so far, counted by the run.
    pub(super) done: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Shows `done` (records so far, counted by the caller) against `total` or `until`.
    pub(super) fn start(
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

    /// Stops the line and ends it.
    pub(super) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            eprintln!();
        }
    }
}

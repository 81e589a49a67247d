//! When each record of a run is due, and the loop that sends them on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stave_client::ClientError;
use tokio::time::Instant;

use super::BenchArgs;

/// When each of one producer's records is due: its share of `total`, interleaved with the
/// other producers' records on the `rate` schedule (or at once without a rate), until `until`.
#[derive(Clone, Copy)]
pub(super) struct Schedule {
    start: Instant,
    rate: u64,
    until: Option<Instant>,
    share: Option<u64>,
    producers: usize,
    producer: usize,
}

impl Schedule {
    /// Producer `producer`'s part of a run of `args` that started at `start`.
    pub(super) fn new(
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
    pub(super) async fn run<F, Fut>(self, mut send: F) -> Result<u64, ClientError>
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
/// Linux lets a sleeping thread wake up to 50 µs past its deadline by default (timer slack,
/// to batch wake-ups); the paced thread asks for 1 ns: its sleeps overshoot by ~26 µs
/// instead of ~85 µs (median, this machine), which every record's latency would include.
pub(super) fn least_timer_slack() {
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

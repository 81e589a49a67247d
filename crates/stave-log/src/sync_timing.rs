//! How long the flusher's data syncs take, process-wide: a fixed-bucket histogram of atomics
//! that the flusher records into (a few relaxed atomic adds per `fdatasync`) and that anyone
//! can read. The crate has no metrics dependency: the broker reads [`fsync_histogram`] when
//! it is scraped and encodes it as `stave_log_fsync_duration_seconds`.
//!
//! Buckets are cumulative only when read ([`SyncHistogram::snapshot`]); each sync adds to
//! exactly one bucket, its count and its sum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (then `+Inf`): 50 µs to 10 s.
pub const SYNC_BUCKET_BOUNDS_SECONDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

const BUCKETS: usize = SYNC_BUCKET_BOUNDS_SECONDS.len() + 1;

/// A histogram of durations, recorded without locks.
#[derive(Debug)]
pub struct SyncHistogram {
    /// Per bucket (the last is `+Inf`), not cumulative.
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A [`SyncHistogram`] as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncHistogramSnapshot {
    /// `(upper bound in seconds, syncs at or below it)`, cumulative, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl SyncHistogram {
    pub const fn new() -> SyncHistogram {
        SyncHistogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Adds one sync that took `took`.
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = SYNC_BUCKET_BOUNDS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The buckets (cumulative), count and sum now. Read without a lock, so a sync recorded
    /// meanwhile may be in some fields and not others; the count is taken as the buckets'
    /// total, so the two always agree.
    pub fn snapshot(&self) -> SyncHistogramSnapshot {
        let mut buckets = Vec::with_capacity(BUCKETS);
        let mut cumulative = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = SYNC_BUCKET_BOUNDS_SECONDS
                .get(index)
                .copied()
                .unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        SyncHistogramSnapshot {
            buckets,
            count: cumulative,
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

impl Default for SyncHistogram {
    fn default() -> Self {
        SyncHistogram::new()
    }
}

static FSYNC: SyncHistogram = SyncHistogram::new();

/// The flusher's data syncs (`fdatasync` of a segment) in this process, every log together.
pub fn fsync_histogram() -> &'static SyncHistogram {
    &FSYNC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sync_lands_in_the_first_bucket_that_holds_it() {
        let histogram = SyncHistogram::new();
        histogram.record(Duration::from_micros(50));
        histogram.record(Duration::from_micros(51));
        histogram.record(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.buckets[0], (0.000_05, 1));
        assert_eq!(snapshot.buckets[1], (0.000_1, 2));
        assert_eq!(snapshot.buckets[BUCKETS - 2], (10.0, 2));
        assert_eq!(snapshot.buckets[BUCKETS - 1], (f64::INFINITY, 3));
        assert!((snapshot.sum_seconds - 60.000_101).abs() < 1e-9);
    }
}

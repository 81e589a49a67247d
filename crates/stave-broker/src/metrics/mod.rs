//! Prometheus metrics, served as OpenMetrics text on `GET /metrics` of their own HTTP
//! listener (`--metrics-listen`, default `127.0.0.1:9644`).
//!
//! Two kinds of series:
//!
//! - **Counted as they happen**, in [`Metrics`] (one registry per node): records and bytes
//!   produced (where a write commits on the leader) and fetched (where a Fetch, or a Consume
//!   stream's read, is served), the time a proposal takes to commit, and every RPC on the
//!   port with its status code and duration ([`rpc`], one tower layer on the server). Each
//!   is an atomic add behind a read lock; nothing else touches the data path.
//! - **Read when scraped** ([`collect`], [`groups`]): Raft terms, leaderships, follower lag,
//!   snapshots and purges from each replica's openraft metrics and counters; segments and
//!   bytes per log; consumer-group lag (records and seconds) for the groups this node
//!   coordinates; the process's memory, descriptors and threads; the log's fsync histogram
//!   (process-wide atomics in `stave-log`). A node that is not scraped does none of this work,
//!   and a series of a partition that moved away disappears with it.
//!
//! Label cardinality: with `metrics_partition_series` off, per-partition series become
//! per-topic ones (sums, or the maximum where a sum means nothing: lag, seconds).

mod collect;
mod groups;
mod http;
mod listen;
mod rpc;
#[cfg(test)]
mod tests;

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub(crate) use self::http::serve;
pub(crate) use self::listen::bind;
pub use self::listen::{BoundListener, METRICS_LISTEN_DEFAULT, MetricsListen};
pub(crate) use self::rpc::RpcLayer;

/// A partition's labels: `topic` and `partition`, or `topic` alone when per-partition series
/// are off.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PartitionLabels {
    topic: String,
    partition: Option<u32>,
}

impl EncodeLabelSet for PartitionLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("topic", self.topic.as_str()).encode(encoder.encode_label())?;
        if let Some(partition) = self.partition {
            ("partition", partition).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The data path's series of one kind (records or bytes, produced or fetched).
type PartitionCounters = Family<PartitionLabels, Counter>;

/// A node's metrics counted as they happen, and the registry that holds them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    partition_series: bool,
    records_produced: PartitionCounters,
    bytes_produced: PartitionCounters,
    records_fetched: PartitionCounters,
    bytes_fetched: PartitionCounters,
    commit_duration: Histogram,
    rpc: rpc::RpcMetrics,
}

impl Metrics {
    /// The node's metrics; `partition_series` false labels data-path series by topic only.
    pub fn new(partition_series: bool) -> Metrics {
        let mut registry = Registry::default();
        let mut counters = |name: &str, help: &str| {
            let family = PartitionCounters::default();
            registry.register(name, help, family.clone());
            family
        };
        let records_produced = counters(
            "stave_partition_records_produced",
            "Records written to the partition (counted on its leader once committed).",
        );
        let bytes_produced = counters(
            "stave_partition_bytes_produced",
            "Batch bytes written to the partition (counted on its leader once committed).",
        );
        let records_fetched = counters(
            "stave_partition_records_fetched",
            "Records served from the partition by Fetch and Consume reads on its leader.",
        );
        let bytes_fetched = counters(
            "stave_partition_bytes_fetched",
            "Batch bytes served from the partition by Fetch and Consume reads on its leader.",
        );
        // 100 µs to ~13 s.
        let commit_duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register(
            "stave_raft_commit_duration_seconds",
            "Time from proposing a produced batch to Raft until it is committed and applied, \
             as the leader's produce path sees it.",
            commit_duration.clone(),
        );
        let rpc = rpc::RpcMetrics::register(&mut registry);
        Metrics {
            registry,
            partition_series,
            records_produced,
            bytes_produced,
            records_fetched,
            bytes_fetched,
            commit_duration,
            rpc,
        }
    }

    /// Whether series are per partition (else per topic).
    pub fn partition_series(&self) -> bool {
        self.partition_series
    }

    fn labels(&self, topic: &str, partition: u32) -> PartitionLabels {
        PartitionLabels {
            topic: topic.to_string(),
            partition: self.partition_series.then_some(partition),
        }
    }

    /// A batch of `records` records and `bytes` bytes committed to `topic`/`partition`.
    pub(crate) fn produced(&self, topic: &str, partition: u32, records: u64, bytes: u64) {
        let labels = self.labels(topic, partition);
        self.records_produced.get_or_create(&labels).inc_by(records);
        self.bytes_produced.get_or_create(&labels).inc_by(bytes);
    }

    /// `records` records in `bytes` bytes of frames served from `topic`/`partition`.
    pub(crate) fn fetched(&self, topic: &str, partition: u32, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        let labels = self.labels(topic, partition);
        self.records_fetched.get_or_create(&labels).inc_by(records);
        self.bytes_fetched.get_or_create(&labels).inc_by(bytes);
    }

    /// A proposal that took `took` to commit.
    pub(crate) fn committed_after(&self, took: Duration) {
        self.commit_duration.observe(took.as_secs_f64());
    }

    /// The series counted as they happen, as OpenMetrics text (without the `# EOF`).
    pub(crate) fn encode(&self, out: &mut String) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }

    pub(crate) fn rpc(&self) -> &rpc::RpcMetrics {
        &self.rpc
    }
}

//! What a scrape reads when it comes: each replica's Raft state and counters (openraft's
//! metrics, read with `borrow_watched`, and `stave-raft`'s counters), each log's segments and
//! bytes, the process's memory, descriptors and threads, and the log's fsync histogram. The
//! families are made fresh for every scrape, so a replica that left this node leaves no
//! stale series behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use stave_raft::group::{RaftGroupId, incarnation_of, partition_of};
use stave_raft::stats::RaftStats;

use crate::broker::Broker;

/// Label pairs of one series.
pub(super) type Labels = Vec<(&'static str, String)>;

/// The whole exposition for `broker`: the series counted as they happen, then those read now.
pub(super) async fn scrape(broker: &Broker) -> Result<String, std::fmt::Error> {
    let mut scraped = Registry::default();
    replicas(broker, &mut scraped).await;
    super::groups::consumer_groups(broker, &mut scraped).await;
    process(&mut scraped);
    denials(broker, &mut scraped);
    scraped.register(
        "stave_log_fsync_duration_seconds",
        "Time the log flusher's fdatasync of a segment takes (every partition of the process).",
        FsyncHistogram,
    );
    let mut out = String::with_capacity(64 << 10);
    broker.metrics().encode(&mut out)?;
    prometheus_client::encoding::text::encode_registry(&mut out, &scraped)?;
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

/// Values by label set, for one family built at scrape time.
#[derive(Debug, Default)]
pub(super) struct Series(BTreeMap<Labels, f64>);

impl Series {
    pub(super) fn add(&mut self, labels: Labels, value: f64) {
        *self.0.entry(labels).or_default() += value;
    }

    pub(super) fn max(&mut self, labels: Labels, value: f64) {
        let entry = self.0.entry(labels).or_insert(value);
        *entry = entry.max(value);
    }

    pub(super) fn gauge(self, registry: &mut Registry, name: &str, help: &str) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in self.0 {
            family.get_or_create(&labels).set(value);
        }
        registry.register(name, help, family);
    }

    /// `name` without its `_total`, which the encoder adds.
    pub(super) fn counter(self, registry: &mut Registry, name: &str, help: &str) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in self.0 {
            family.get_or_create(&labels).inc_by(value as u64);
        }
        registry.register(name, help, family);
    }
}

/// The Raft and log families, filled replica by replica.
#[derive(Debug, Default)]
struct ReplicaSeries {
    term: Series,
    leaderships: Series,
    follower_lag: Series,
    snapshots: Series,
    purges: Series,
    segments: Series,
    bytes: Series,
}

impl ReplicaSeries {
    /// One replica's Raft state under `labels` (`per_partition`: the labels name one
    /// partition, or the controller; else a topic, and values add up or take the maximum).
    fn add_raft(&mut self, labels: &Labels, stats: &RaftStats, per_partition: bool) {
        if per_partition {
            self.term.max(labels.clone(), stats.term as f64);
        }
        self.leaderships
            .add(labels.clone(), stats.leaderships_won as f64);
        self.snapshots.add(labels.clone(), stats.snapshots as f64);
        self.purges.add(labels.clone(), stats.purges as f64);
        for (follower, behind) in &stats.follower_lag_entries {
            let mut labels = labels.clone();
            if per_partition {
                labels.push(("follower", follower.to_string()));
            }
            self.follower_lag.max(labels, *behind as f64);
        }
    }

    fn register(self, registry: &mut Registry) {
        self.term.gauge(
            registry,
            "stave_raft_term",
            "The Raft term of this node's replica (per partition, and the controller's as \
             group=\"controller\").",
        );
        self.leaderships.counter(
            registry,
            "stave_raft_leader_changes",
            "Times this node's replica became its group's leader since it opened; summed over \
             the nodes, the group's leader changes.",
        );
        self.follower_lag.gauge(
            registry,
            "stave_raft_follower_lag_entries",
            "On the leader: Raft log entries a follower is behind the leader's last entry (per \
             topic: the largest).",
        );
        self.snapshots.counter(
            registry,
            "stave_raft_snapshots",
            "Snapshots built by this node's replica or installed into it from the leader.",
        );
        self.purges.counter(
            registry,
            "stave_raft_purges",
            "Purges of the head of this node's replica's log (retention, compaction).",
        );
        self.segments.gauge(
            registry,
            "stave_log_segments",
            "Segments of this node's replica's log.",
        );
        self.bytes.gauge(
            registry,
            "stave_log_size_bytes",
            "Bytes of record batches held in this node's replica's log segments (without \
             preallocated space and indexes).",
        );
    }
}

/// Topic name and partition of every partition group in the metadata.
fn partition_names(broker: &Broker) -> HashMap<u64, String> {
    broker
        .node()
        .controller()
        .metadata()
        .topics()
        .iter()
        .map(|(name, topic)| (topic.incarnation(), name.clone()))
        .collect()
}

/// The labels of partition group `group` of `topic`.
fn partition_labels(topic: &str, group: RaftGroupId, per_partition: bool) -> Labels {
    let mut labels = vec![("topic", topic.to_string())];
    if per_partition {
        labels.push(("partition", partition_of(group).to_string()));
    }
    labels
}

/// Every replica on this node (and the controller's): Raft state, counters, log size.
async fn replicas(broker: &Broker, registry: &mut Registry) {
    let per_partition = broker.metrics().partition_series();
    let node = broker.node();
    let topics = partition_names(broker);
    let mut series = ReplicaSeries::default();
    let controller = vec![("group", "controller".to_string())];
    series.add_raft(&controller, &node.controller().raft_stats(), true);
    let (mut running, mut led) = (0u64, 0u64);
    for group in node.partition_groups() {
        let (Some(partition), Some(topic)) =
            (node.partition(group), topics.get(&incarnation_of(group)))
        else {
            continue;
        };
        let labels = partition_labels(topic, group, per_partition);
        let stats = partition.raft_stats();
        running += 1;
        led += u64::from(stats.leader == Some(node.id()));
        series.add_raft(&labels, &stats, per_partition);
        if let Ok(usage) = partition.log_usage().await {
            series.segments.add(labels.clone(), usage.segments as f64);
            series.bytes.add(labels, usage.bytes as f64);
        }
    }
    series.register(registry);
    let mut totals = Series::default();
    totals.add(Vec::new(), running as f64);
    totals.gauge(
        registry,
        "stave_raft_partition_replicas",
        "Partition replicas running on this node.",
    );
    let mut leaders = Series::default();
    leaders.add(Vec::new(), led as f64);
    leaders.gauge(
        registry,
        "stave_raft_partition_leaders",
        "Partitions whose leader is this node's replica.",
    );
}

/// `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds` and
/// `process_threads`, as the standard client libraries name them (Linux: from `/proc`).
fn process(registry: &mut Registry) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<f64>().ok())
    };
    let mut put = |name: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            let mut series = Series::default();
            series.add(Vec::new(), value);
            series.gauge(registry, name, help);
        }
    };
    put(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        field("VmRSS:").map(|kib| kib * 1024.0),
    );
    put(
        "process_threads",
        "OS threads in the process.",
        field("Threads:"),
    );
    let open = std::fs::read_dir("/proc/self/fd").map(|dir| dir.count() as f64);
    put("process_open_fds", "Open file descriptors.", open.ok());
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse::<f64>().ok());
    put(
        "process_max_fds",
        "The limit of open file descriptors.",
        max_fds,
    );
}

/// `stave_auth_denials_total{code}`: calls this node refused UNAUTHENTICATED or
/// PERMISSION_DENIED.
fn denials(broker: &Broker, registry: &mut Registry) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut series = Series::default();
    let auth = &broker.auth;
    let counts = [
        ("UNAUTHENTICATED", auth.unauthenticated.load(Relaxed)),
        ("PERMISSION_DENIED", auth.permission_denied.load(Relaxed)),
    ];
    for (code, count) in counts {
        series.add(vec![("code", code.to_string())], count as f64);
    }
    series.counter(
        registry,
        "stave_auth_denials",
        "Calls refused for want of a principal (UNAUTHENTICATED) or of an ACL \
         (PERMISSION_DENIED).",
    );
}

/// `stave-log`'s process-wide fsync histogram, read when encoded.
#[derive(Debug)]
struct FsyncHistogram;

impl EncodeMetric for FsyncHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = stave_log::sync_timing::fsync_histogram().snapshot();
        // The encoder adds the buckets up itself: give it each bucket's own count.
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = snapshot
            .buckets
            .iter()
            .map(|&(bound, cumulative)| {
                let own = cumulative - below;
                below = cumulative;
                (bound, own)
            })
            .collect();
        encoder.encode_histogram::<NoLabelSet>(snapshot.sum_seconds, snapshot.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

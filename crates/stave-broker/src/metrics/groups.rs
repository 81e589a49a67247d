//! Consumer-group lag, computed by the coordinator when scraped: for every committed offset
//! of the groups this node coordinates (the `__offsets` partitions it leads), how many
//! records the group has not read (high watermark minus committed offset) and how old the
//! oldest of them is (now minus the timestamp of the record at the committed offset; 0 when
//! caught up). The record is read with a one-batch Fetch that does not wait, in process when
//! this node leads the partition, else from its leader (marked, so that node does not count
//! it as a fetch). Bounded: at most [`LAG_PARTITIONS_MAX`] committed offsets per scrape,
//! [`LAG_READS_IN_FLIGHT`] reads at once, and whatever is not read within [`LAG_SCRAPE_MAX`]
//! is left out of this scrape.
//!
//! Also the rebalances of each consumer group since this node began coordinating it (its
//! group epoch: bumped whenever the target assignment changes).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use prometheus_client::registry::Registry;
use stave_raft::Partition;
use stave_raft::controller::OFFSETS_TOPIC;

use super::collect::{Labels, Series};
use crate::broker::Broker;
use crate::consumer_group::{now_ms, offsets_partition};
use crate::error::BrokerError;
use crate::fetch::{FetchRequest, Fetched};
use crate::routing::Target;

/// Committed offsets whose lag one scrape computes, at most.
const LAG_PARTITIONS_MAX: usize = 1_000;
/// Reads of the oldest unread record in flight at once.
const LAG_READS_IN_FLIGHT: usize = 16;
/// How long a scrape spends on lag, at most.
const LAG_SCRAPE_MAX: Duration = Duration::from_secs(5);

/// A consumer group's committed offset of one partition.
#[derive(Debug, Clone)]
struct CommittedOffset {
    group: String,
    topic: String,
    partition: u32,
    offset: u64,
}

/// The lag and rebalance families of the consumer groups this node coordinates.
pub(super) async fn consumer_groups(broker: &Broker, registry: &mut Registry) {
    let per_partition = broker.metrics().partition_series();
    let now = now_ms();
    let deadline = tokio::time::sleep(LAG_SCRAPE_MAX);
    let lags: Vec<(CommittedOffset, Option<(u64, f64)>)> =
        futures_util::stream::iter(committed_offsets(broker))
            .map(|committed| async move {
                let lag = partition_lag(broker, &committed, now).await;
                (committed, lag)
            })
            .buffer_unordered(LAG_READS_IN_FLIGHT)
            .take_until(deadline)
            .collect()
            .await;
    let (mut records, mut seconds) = (Series::default(), Series::default());
    for (committed, lag) in lags {
        let Some((behind, age_seconds)) = lag else {
            continue;
        };
        let mut labels: Labels = vec![("group", committed.group), ("topic", committed.topic)];
        if per_partition {
            labels.push(("partition", committed.partition.to_string()));
        }
        records.add(labels.clone(), behind as f64);
        seconds.max(labels, age_seconds);
    }
    records.gauge(
        registry,
        "stave_consumer_group_lag_records",
        "Records a consumer group has not read: the partition's high watermark minus the \
         group's committed offset (on the group's coordinator).",
    );
    seconds.gauge(
        registry,
        "stave_consumer_group_lag_seconds",
        "Age of the oldest record a consumer group has not read: now minus the timestamp of \
         the record at its committed offset, 0 when caught up (per topic: the largest).",
    );
    let mut rebalances = Series::default();
    let led = led_offsets_partitions(broker);
    for (name, state) in broker.consumer_groups_lock().iter() {
        // A group whose coordinator moved away stays in memory here until this node notices.
        if led.contains_key(&offsets_partition(name)) {
            rebalances.add(vec![("group", name.clone())], state.group_epoch() as f64);
        }
    }
    rebalances.counter(
        registry,
        "stave_consumer_group_rebalances",
        "Changes of a consumer group's target assignment since this node began coordinating \
         it (members joining or leaving, subscriptions or partitions changing).",
    );
}

/// The `__offsets` partitions this node leads (the consumer groups it coordinates), by
/// partition number.
fn led_offsets_partitions(broker: &Broker) -> BTreeMap<u32, Partition> {
    let metadata = broker.node().controller().metadata();
    let Some(offsets) = metadata.topic(OFFSETS_TOPIC) else {
        return BTreeMap::new();
    };
    offsets
        .partitions()
        .filter_map(|(index, _)| {
            let partition = broker.node().partition(offsets.group_id(index))?;
            partition.leads().then_some((index, partition))
        })
        .collect()
}

/// Every committed offset in the `__offsets` partitions this node leads, at most
/// [`LAG_PARTITIONS_MAX`].
fn committed_offsets(broker: &Broker) -> Vec<CommittedOffset> {
    let mut found = Vec::new();
    for partition in led_offsets_partitions(broker).into_values() {
        let Some(table) = partition.offsets_table() else {
            continue;
        };
        let room = LAG_PARTITIONS_MAX.saturating_sub(found.len());
        found.extend(
            table
                .entries()
                .take(room)
                .map(|(key, committed)| CommittedOffset {
                    group: key.group.clone(),
                    topic: key.topic.clone(),
                    partition: key.partition,
                    offset: committed.offset,
                }),
        );
    }
    found
}

/// `(records behind, seconds the oldest unread record waited)` of one committed offset;
/// none when the partition cannot be read now (no leader, a deleted topic).
async fn partition_lag(
    broker: &Broker,
    committed: &CommittedOffset,
    now_ms: i64,
) -> Option<(u64, f64)> {
    let target = broker.target(&committed.topic, committed.partition).ok()?;
    let mut offset = committed.offset;
    // Twice at most: a second read at the log start when retention removed the records
    // from the committed offset on (the oldest unread record is the first one left).
    for _ in 0..2 {
        match read_one_batch(broker, &target, offset).await {
            Ok(fetched) => {
                let behind = fetched.high_watermark.0.saturating_sub(committed.offset);
                let waited_ms = fetched
                    .frames
                    .as_ref()
                    .and_then(|frames| timestamp_at(frames, offset))
                    .map_or(0, |timestamp| now_ms.saturating_sub(timestamp).max(0));
                return Some((behind, waited_ms as f64 / 1000.0));
            }
            Err(BrokerError::OffsetOutOfRange { start, .. }) if offset < start => offset = start,
            Err(_) => return None,
        }
    }
    None
}

/// One batch from `offset` of `target`, without waiting, from wherever its leader is;
/// not counted as fetched.
async fn read_one_batch(
    broker: &Broker,
    target: &Target,
    offset: u64,
) -> Result<Fetched, BrokerError> {
    let request = FetchRequest::new(target.topic.clone(), target.partition, offset, (1, 1), 0);
    let local = broker
        .node()
        .partition(target.raft_group)
        .is_some_and(|partition| partition.leads());
    if local {
        return broker.fetch_uncounted(request).await;
    }
    let leader = broker.leader_of(target.raft_group).await;
    let addr = leader.and_then(|leader| {
        let metadata = broker.node().controller().metadata();
        metadata.node_addr(leader).map(str::to_string)
    });
    match addr {
        Some(addr) => broker.remote_fetch_uncounted(&addr, request).await,
        None => Err(BrokerError::LeaderNotAvailable {
            topic: target.topic.clone(),
            partition: target.partition,
        }),
    }
}

/// The timestamp of the first record at or after `offset` in `frames`.
fn timestamp_at(frames: &stave_log::ReadFrames, offset: u64) -> Option<i64> {
    frames
        .chunks
        .iter()
        .flat_map(stave_log::batch::BatchView::split)
        .filter_map(Result::ok)
        .flat_map(|batch| {
            batch
                .records()
                .filter_map(Result::ok)
                .find(|record| record.offset.0 >= offset)
                .map(|record| record.timestamp)
        })
        .next()
}

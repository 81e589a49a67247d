//! Three nodes in one process: leadership, NOT_LEADER hints, metadata, retention.

use stave_log::batch::ProducerFields;
use stave_proto::v1 as pb;
use std::collections::BTreeSet;

use crate::support::{
    batch, client, cluster, code, create_topic, produce, retry, try_produce, values,
};

async fn metadata(addr: &str, topic: &str) -> pb::TopicMetadata {
    let response = client(addr)
        .await
        .metadata(pb::MetadataRequest {
            topics: vec![topic.into()],
        })
        .await
        .unwrap()
        .into_inner();
    response.topics.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_their_leaders_and_followers_point_at_them() {
    let nodes = cluster(3).await;
    create_topic(&nodes[1].addr, "v1.orders", 6, 0, &[]).await;
    // Every partition gets a leader and three in-sync replicas; leaders spread.
    let topic = retry(|| {
        let addr = nodes[0].addr.clone();
        async move {
            let topic = metadata(&addr, "v1.orders").await;
            let ready = topic.partitions.len() == 6
                && topic
                    .partitions
                    .iter()
                    .all(|p| p.leader.is_some() && p.in_sync.len() == 3);
            if ready {
                Ok(topic)
            } else {
                Err(format!("{topic:?}"))
            }
        }
    })
    .await;
    let leaders: BTreeSet<u64> = topic.partitions.iter().filter_map(|p| p.leader).collect();
    assert!(leaders.len() >= 2, "leaders concentrate on {leaders:?}");

    let partition = &topic.partitions[0];
    let leader = partition.leader.unwrap();
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();
    let answer = try_produce(
        &follower.addr,
        "v1.orders",
        0,
        batch(&["x"], ProducerFields::NONE),
    )
    .await
    .unwrap();
    assert_eq!(code(&answer.error), pb::ErrorCode::NotLeader);
    let hint = answer.error.unwrap();
    assert_eq!(hint.leader_id, Some(leader));
    assert_eq!(hint.leader_addr, nodes[leader as usize - 1].addr);

    let written = produce(
        &hint.leader_addr,
        "v1.orders",
        0,
        batch(&["x", "y"], ProducerFields::NONE),
    )
    .await;
    assert_eq!(written.next_offset, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_moves_the_log_start_and_old_offsets_are_out_of_range() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.metrics", 1, 0, &[("segment.bytes", "65536")]).await;
    let value = "m".repeat(1000);
    for _ in 0..40 {
        let values: Vec<&str> = std::iter::repeat_n(value.as_str(), 10).collect();
        produce(addr, "v1.metrics", 0, batch(&values, ProducerFields::NONE)).await;
    }
    // Retention set once the writes are done: one pass moves the log start, once.
    keep_bytes(addr, "v1.metrics", 131072).await;
    // 400 KB written in 64 KiB segments, 128 KiB kept: the log start moves past 0.
    let start = retry(|| {
        let addr = addr.clone();
        async move {
            let response = client(&addr)
                .await
                .list_offsets(pb::ListOffsetsRequest {
                    topic: "v1.metrics".into(),
                    partition: 0,
                    spec: Some(pb::list_offsets_request::Spec::Earliest(true)),
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            if response.offset > 0 {
                Ok(response.offset)
            } else {
                Err("log start still 0".into())
            }
        }
    })
    .await;
    assert!(start < 400, "retention kept nothing: start {start}");
    let old = client(addr)
        .await
        .fetch(pb::FetchRequest {
            topic: "v1.metrics".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1 << 20,
            min_bytes: 1,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&old.error), pb::ErrorCode::OffsetOutOfRange);
    let kept = client(addr)
        .await
        .fetch(pb::FetchRequest {
            topic: "v1.metrics".into(),
            partition: 0,
            offset: start,
            max_bytes: 1 << 20,
            min_bytes: 1,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        code(&kept.error),
        pb::ErrorCode::None,
        "fetch at {start}: {:?}",
        kept.error
    );
    assert!(!values(&kept.batches).is_empty());
}

/// Sets `topic`'s `retention.bytes`.
async fn keep_bytes(addr: &str, topic: &str, bytes: u64) {
    let altered = client(addr)
        .await
        .alter_topic_config(pb::AlterTopicConfigRequest {
            name: topic.into(),
            set: vec![pb::ConfigEntry {
                key: "retention.bytes".into(),
                value: bytes.to_string(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&altered.error), pb::ErrorCode::None);
}

/// The segment files (`*.log`) of the partition directories of `topic` under a node's data
/// directory.
fn segments_of(data_dir: &std::path::Path, topic: &str) -> usize {
    let Ok(partitions) = std::fs::read_dir(data_dir.join("partitions")) else {
        return 0;
    };
    partitions
        .flatten()
        .filter(|dir| dir.file_name().to_string_lossy().starts_with(topic))
        .flat_map(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|file| file.file_name().to_string_lossy().ends_with(".log"))
        .count()
}

/// Retention bounds every replica's disk, not only the leader's: each replica purges its
/// own log (once, followers kept every segment however small the retention).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bounds_every_replica() {
    let nodes = cluster(3).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.gauges", 1, 3, &[("segment.bytes", "65536")]).await;
    let leader = retry(|| {
        let addr = addr.clone();
        async move {
            let topic = metadata(&addr, "v1.gauges").await;
            let partition = topic.partitions.first().ok_or("no partition yet")?;
            match partition.leader {
                Some(leader) if partition.in_sync.len() == 3 => Ok(leader),
                _ => Err(format!("{partition:?}")),
            }
        }
    })
    .await;
    let leader_addr = &nodes[leader as usize - 1].addr;
    let value = "g".repeat(1000);
    for _ in 0..60 {
        let values: Vec<&str> = std::iter::repeat_n(value.as_str(), 10).collect();
        produce(
            leader_addr,
            "v1.gauges",
            0,
            batch(&values, ProducerFields::NONE),
        )
        .await;
    }
    // 600 KB in 64 KiB segments: about ten on every replica once each holds the writes.
    let written = retry(|| async {
        let counts: Vec<usize> = nodes
            .iter()
            .map(|node| segments_of(node._dir.path(), "v1.gauges"))
            .collect();
        if counts.iter().all(|&count| count >= 8) {
            Ok(counts)
        } else {
            Err(format!("segments per node {counts:?}"))
        }
    })
    .await;
    keep_bytes(addr, "v1.gauges", 131072).await;
    // 128 KiB kept: a few segments left on each replica, the leader's and the followers'.
    retry(|| async {
        let counts: Vec<usize> = nodes
            .iter()
            .map(|node| segments_of(node._dir.path(), "v1.gauges"))
            .collect();
        if counts.iter().all(|&count| count <= 4) {
            Ok(())
        } else {
            Err(format!(
                "segments per node {counts:?} (after the writes: {written:?})"
            ))
        }
    })
    .await;
    // Replication goes on past the purged followers' new log start.
    let more = produce(
        leader_addr,
        "v1.gauges",
        0,
        batch(&["after"], ProducerFields::NONE),
    )
    .await;
    assert_eq!(more.base_offset, 600);
}

//! Three server processes: a node that loses its disk catches up; retention; bad input.

use std::time::{Duration, Instant};

use stave_proto::v1 as pb;

use stave_log::batch::ProducerFields;

use crate::support::{
    WAIT, client, code, create_topic, read_all, seed_batch, seed_batch_from, start, wait_ready,
};

/// Produces `seeds` through whichever node leads partition 0 (following NOT_LEADER hints),
/// as an idempotent producer: a retry after a timeout is written once.
async fn produce(addrs: &[String], topic: &str, seeds: std::ops::Range<u64>) {
    let started = Instant::now();
    let mut ask = addrs.iter().cycle();
    let producer_id = loop {
        let addr = ask.next().expect("a node");
        if let Ok(answer) = client(addr)
            .init_producer_id(pb::InitProducerIdRequest {})
            .await
            && code(&answer.get_ref().error) == pb::ErrorCode::None
        {
            break answer.get_ref().producer_id;
        }
        assert!(started.elapsed() < WAIT, "no producer id");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut target = addrs[0].clone();
    for (sequence, seed) in seeds.enumerate() {
        let started = Instant::now();
        let producer = ProducerFields {
            producer_id,
            producer_epoch: 0,
            base_sequence: sequence as i32,
        };
        loop {
            let request = pb::ProduceRequest {
                sequence: seed,
                topic: topic.into(),
                partition: 0,
                batch: seed_batch_from(seed, producer),
            };
            match client(&target).produce(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    match code(&response.error) {
                        pb::ErrorCode::None => break,
                        pb::ErrorCode::NotLeader => {
                            let hint = response.error.unwrap().leader_addr;
                            if !hint.is_empty() {
                                target = hint;
                            }
                        }
                        pb::ErrorCode::LeaderNotAvailable
                        | pb::ErrorCode::RequestTimedOut
                        | pb::ErrorCode::DuplicateInFlight => {}
                        // A node whose metadata is behind (just restored) does not know
                        // the topic yet: ask another.
                        pb::ErrorCode::UnknownTopic => {
                            let i = addrs.iter().position(|a| *a == target).unwrap_or(0);
                            target = addrs[(i + 1) % addrs.len()].clone();
                        }
                        other => panic!("produce {seed}: {other:?}"),
                    }
                }
                Err(_) => {
                    let i = addrs.iter().position(|a| *a == target).unwrap_or(0);
                    target = addrs[(i + 1) % addrs.len()].clone();
                }
            }
            assert!(started.elapsed() < WAIT, "produce {seed} found no leader");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn partition(addr: &str, topic: &str) -> pb::PartitionMetadata {
    let answer = client(addr)
        .metadata(pb::MetadataRequest {
            topics: vec![topic.into()],
        })
        .await
        .unwrap()
        .into_inner();
    answer.topics[0].partitions[0].clone()
}

/// Waits until partition 0 of `topic` has a leader and `in_sync` replicas in sync.
async fn wait_in_sync(addr: &str, topic: &str, in_sync: &[u64]) -> u64 {
    let started = Instant::now();
    loop {
        let partition = partition(addr, topic).await;
        let mut synced = partition.in_sync.clone();
        synced.sort_unstable();
        if let Some(leader) = partition.leader
            && synced == in_sync
        {
            return leader;
        }
        assert!(started.elapsed() < WAIT, "not in sync: {partition:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_disk_catches_up() {
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    wait_ready(&servers).await;
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    create_topic(&addrs[0], "v1.ledger", 1, &[]).await;
    produce(&addrs, "v1.ledger", 0..300).await;

    // A follower loses its disk while writes go on, and comes back empty.
    let leader = wait_in_sync(&addrs[0], "v1.ledger", &[1, 2, 3]).await;
    let lost = servers.iter().position(|s| s.id != leader).unwrap();
    servers[lost].kill();
    servers[lost].wipe();
    produce(&addrs, "v1.ledger", 300..400).await;
    servers[lost].restart();
    produce(&addrs, "v1.ledger", 400..500).await;
    let leader = wait_in_sync(&addrs[0], "v1.ledger", &[1, 2, 3]).await;

    // With the leader killed, the other two (the restored node among them) hold everything.
    let leader_index = servers.iter().position(|s| s.id == leader).unwrap();
    servers[leader_index].kill();
    let survivor = &addrs[(leader_index + 1) % 3];
    let records = read_all(survivor, "v1.ledger", 0, 0).await;
    let seeds: Vec<u64> = records.iter().map(|(_, seed)| *seed).collect();
    assert_eq!(seeds, (0..500).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_code_by_a_real_server() {
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 1);
    wait_ready(&servers).await;
    let addr = servers[0].addr.clone();
    create_topic(
        &addr,
        "v1.user.signedup",
        1,
        &[("max.message.bytes", "1024")],
    )
    .await;
    // One valid record, written once the partition has a leader.
    produce(std::slice::from_ref(&addr), "v1.user.signedup", 999..1000).await;
    let mut api = client(&addr);
    let create = |name: &str| pb::CreateTopicsRequest {
        topics: vec![pb::TopicSpec {
            name: name.into(),
            ..Default::default()
        }],
    };
    for (name, expected) in [
        ("has space", pb::ErrorCode::InvalidTopicName),
        (&*"n".repeat(250), pb::ErrorCode::InvalidTopicName),
        ("__internal", pb::ErrorCode::ReservedTopicName),
        ("v1.user.signedup", pb::ErrorCode::TopicExists),
    ] {
        let response = api.create_topics(create(name)).await.unwrap().into_inner();
        assert_eq!(code(&response.results[0].error), expected, "{name}");
    }
    let produce = |topic: &str, partition: u32, batch: bytes::Bytes| pb::ProduceRequest {
        sequence: 0,
        topic: topic.into(),
        partition,
        batch,
    };
    let mut corrupt = seed_batch(1).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    for (what, request, expected) in [
        (
            "unknown topic",
            produce("v1.none", 0, seed_batch(1)),
            pb::ErrorCode::UnknownTopic,
        ),
        (
            "unknown partition",
            produce("v1.user.signedup", 3, seed_batch(1)),
            pb::ErrorCode::UnknownPartition,
        ),
        (
            "crc",
            produce("v1.user.signedup", 0, corrupt.into()),
            pb::ErrorCode::CorruptBatch,
        ),
    ] {
        let response = api.produce(request).await.unwrap().into_inner();
        assert_eq!(code(&response.error), expected, "{what}");
    }
    let mut big = stave_log::batch::BatchBuilder::new();
    let value = vec![b'z'; 4096];
    big.push(&stave_log::batch::Record {
        timestamp: 0,
        key: None,
        value: Some(&value),
        headers: &[],
    });
    let response = api
        .produce(produce("v1.user.signedup", 0, big.finish().into()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&response.error), pb::ErrorCode::MessageTooLarge);
    let fetch = api
        .fetch(pb::FetchRequest {
            topic: "v1.user.signedup".into(),
            partition: 0,
            offset: 99,
            max_bytes: 1024,
            min_bytes: 1,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&fetch.error), pb::ErrorCode::OffsetOutOfRange);
    // Only the one valid record was written.
    let records = read_all(&addr, "v1.user.signedup", 0, 0).await;
    assert_eq!(records, vec![(0, 999)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bounds_a_partition_and_old_offsets_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 1);
    wait_ready(&servers).await;
    let addr = servers[0].addr.clone();
    create_topic(&addr, "v1.clicks", 1, &[("segment.bytes", "65536")]).await;
    produce(std::slice::from_ref(&addr), "v1.clicks", 0..2000).await;
    let mut api = client(&addr);
    let altered = api
        .alter_topic_config(pb::AlterTopicConfigRequest {
            name: "v1.clicks".into(),
            set: vec![pb::ConfigEntry {
                key: "retention.bytes".into(),
                value: "100000".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&altered.error), pb::ErrorCode::None);
    // Retention runs every few seconds; wait for the log start to move.
    let started = Instant::now();
    let start = loop {
        let earliest = api
            .list_offsets(pb::ListOffsetsRequest {
                topic: "v1.clicks".into(),
                partition: 0,
                spec: Some(pb::list_offsets_request::Spec::Earliest(true)),
            })
            .await
            .unwrap()
            .into_inner();
        if earliest.offset > 0 {
            break earliest.offset;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "retention never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gone = api
        .fetch(pb::FetchRequest {
            topic: "v1.clicks".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1024,
            min_bytes: 1,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&gone.error), pb::ErrorCode::OffsetOutOfRange);
    assert!(
        gone.log_start_offset > 0 && gone.high_watermark == 2000,
        "the refusal says where the log starts and ends: {gone:?}"
    );
    let kept = read_all(&addr, "v1.clicks", 0, start).await;
    assert_eq!(kept.first().map(|(offset, _)| *offset), Some(start));
    assert_eq!(kept.last().map(|(offset, _)| *offset), Some(1999));
}

//! 100,000 keyed records through the Rust client while a partition leader is killed with
//! SIGKILL and later restarted: every acknowledged record is there exactly once, and each
//! key's records are in send order with no gaps or duplicates.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stave_client::{
    Client, ClientConfig, ConsumerConfig, ProducerConfig, ProducerRecord, StartPosition,
};
use stave_proto::v1 as pb;

use crate::support::{WAIT, client, create_topic, eventually, start, wait_ready};

const RECORDS: u64 = 100_000;
const KEYS: u64 = 1_000;
const PARTITIONS: u32 = 6;

fn key_of(i: u64) -> u64 {
    i % KEYS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_survive_a_killed_leader_in_order_and_once() {
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    wait_ready(&servers).await;
    let bootstrap: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    create_topic(&bootstrap[0], "v1.orders", PARTITIONS, &[]).await;

    let client_config = ClientConfig::new(&bootstrap.join(",")).unwrap();
    let stave = Client::connect(client_config).await.unwrap();
    let producer = stave
        .producer(ProducerConfig {
            delivery_timeout: Duration::from_secs(120),
            ..ProducerConfig::default()
        })
        .await
        .unwrap();

    // The leader of partition 0 dies a third of the way in, and comes back at two thirds.
    let victim = eventually("a leader for partition 0", || async {
        let metadata = client(&bootstrap[0])
            .metadata(pb::MetadataRequest {
                topics: vec!["v1.orders".into()],
            })
            .await
            .unwrap()
            .into_inner();
        metadata.topics[0].partitions[0].leader
    })
    .await;
    let victim = servers.iter().position(|s| s.id == victim).unwrap();

    let mut deliveries = Vec::with_capacity(RECORDS as usize);
    let mut per_key = vec![0u64; KEYS as usize];
    for i in 0..RECORDS {
        if i == RECORDS / 3 {
            servers[victim].kill();
        }
        if i == 2 * RECORDS / 3 {
            servers[victim].restart();
        }
        let key = key_of(i);
        let sequence = per_key[key as usize];
        per_key[key as usize] += 1;
        let record =
            ProducerRecord::new("v1.orders", format!("{key}:{sequence}")).key(format!("key-{key}"));
        deliveries.push(((key, sequence), producer.enqueue(record).await.unwrap()));
    }
    producer.flush().await;
    let mut acked: BTreeMap<(u64, u64), (u32, u64)> = BTreeMap::new();
    for (id, delivery) in deliveries {
        let written = delivery.await.unwrap();
        acked.insert(id, (written.partition, written.offset));
    }
    assert_eq!(acked.len() as u64, RECORDS, "every record acknowledged");

    // Read every partition from the start.
    let mut consumer = stave.consumer(ConsumerConfig::default());
    for partition in 0..PARTITIONS {
        consumer
            .assign("v1.orders", partition, StartPosition::Earliest)
            .await
            .unwrap();
    }
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut where_: BTreeMap<(u64, u64), Vec<(u32, u64)>> = BTreeMap::new();
    let started = Instant::now();
    let mut read = 0u64;
    while read < RECORDS {
        assert!(started.elapsed() < WAIT * 2, "read {read} of {RECORDS}");
        let Some(record) = consumer.poll(Duration::from_secs(5)).await.unwrap() else {
            continue;
        };
        read += 1;
        let value = String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap();
        let (key, sequence) = value.split_once(':').unwrap();
        let (key, sequence): (u64, u64) = (key.parse().unwrap(), sequence.parse().unwrap());
        seen.entry(key).or_default().push(sequence);
        where_
            .entry((key, sequence))
            .or_default()
            .push((record.partition, record.offset));
    }
    for (id, at) in &acked {
        assert_eq!(
            where_.get(id).map(Vec::as_slice),
            Some(&[*at][..]),
            "record {id:?}"
        );
    }
    for (key, sequences) in &seen {
        let expected: Vec<u64> = (0..sequences.len() as u64).collect();
        assert_eq!(
            sequences, &expected,
            "key {key}: out of order, a gap or a duplicate"
        );
    }
    producer.close().await;
}

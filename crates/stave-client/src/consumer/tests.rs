#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::config::{ConsumerConfig, ProducerConfig, StartPosition};
use crate::record::ProducerRecord;
use crate::test_support::{LiveNode, READY_TIMEOUT, SilentNode, bounds, init_tracing};

const TOPIC: &str = "v1.frozen";

/// A consumer whose partition's cached leader accepts connections and never answers
/// (paused): the fetch gives up after its long poll plus the request timeout, the node
/// becomes a suspect, and reading goes on from the leader fresh metadata names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_a_silent_leader_moves_to_the_leader() {
    init_tracing();
    let live = LiveNode::start().await;
    let silent = SilentNode::start();
    let client = live
        .client_with_topic(bounds(Duration::from_millis(500)), TOPIC)
        .await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..10 {
        let record = ProducerRecord::new(TOPIC, format!("record-{i}")).partition(0);
        producer.send(record).await.unwrap();
    }
    producer.close().await;

    client.note_leader(TOPIC, 0, Some(99), &silent.addr);
    let mut consumer = client.consumer(ConsumerConfig {
        fetch_wait_max: Duration::from_millis(200),
        ..ConsumerConfig::default()
    });
    consumer
        .assign(TOPIC, 0, StartPosition::Offset(0))
        .await
        .unwrap();
    for i in 0..10 {
        let record = tokio::time::timeout(READY_TIMEOUT, consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.offset, i);
    }
    assert!(client.is_suspect(&silent.addr));
}

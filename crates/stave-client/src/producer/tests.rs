#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::config::{ClientConfig, StartPosition};
use crate::test_support::{LiveNode, Proxy, READY_TIMEOUT, SilentNode, bounds, init_tracing};

const TOPIC: &str = "v1.frozen";
const RECORDS: u64 = 40;

/// How often the test looks at the partition's high watermark, which nothing announces.
const POLL: Duration = Duration::from_millis(20);

/// Small batches, so several are in flight at once.
fn producer_config() -> ProducerConfig {
    ProducerConfig {
        batch_bytes: 256,
        delivery_timeout: READY_TIMEOUT,
        ..ProducerConfig::default()
    }
}

/// Enqueues `values` to partition 0 of [`TOPIC`].
async fn enqueue_all(producer: &Producer, values: &[String]) -> Vec<DeliveryFuture> {
    let mut deliveries = Vec::new();
    for value in values {
        let record = ProducerRecord::new(TOPIC, value.clone()).partition(0);
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    deliveries
}

/// Every value of partition 0 up to its high watermark, read through `client`.
async fn read_back(client: &Client) -> Vec<String> {
    let end = client
        .resolve_position(TOPIC, 0, StartPosition::Latest)
        .await
        .unwrap();
    let mut consumer = client.consumer(crate::ConsumerConfig::default());
    consumer
        .assign(TOPIC, 0, StartPosition::Earliest)
        .await
        .unwrap();
    let mut values = Vec::new();
    for _ in 0..end {
        let record = tokio::time::timeout(READY_TIMEOUT, consumer.next())
            .await
            .unwrap()
            .unwrap();
        values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
    }
    values
}

fn values(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("record-{i:03}")).collect()
}

/// The cached leader of a partition is a node that accepts connections and never answers
/// (paused): every batch in flight to it fails after one request timeout, the node becomes
/// a suspect, and the batches go again, in order, to the leader that fresh metadata names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_sent_to_a_silent_leader_are_resent_to_the_leader() {
    init_tracing();
    let live = LiveNode::start().await;
    let silent = SilentNode::start();
    let client = live
        .client_with_topic(bounds(Duration::from_millis(500)), TOPIC)
        .await;
    let producer = client.producer(producer_config()).await.unwrap();
    client.note_leader(TOPIC, 0, Some(99), &silent.addr);

    let expected = values(0..RECORDS);
    let deliveries = enqueue_all(&producer, &expected).await;
    for (i, delivery) in deliveries.into_iter().enumerate() {
        assert_eq!(delivery.await.unwrap().offset, i as u64);
    }
    assert!(client.is_suspect(&silent.addr));
    assert_eq!(read_back(&client).await, expected);
    producer.close().await;
}

/// Batches carried out by the leader whose answers never arrive (held back on the way):
/// after the request timeout the stream is abandoned and the batches are sent again with
/// the same producer id, epoch and sequences; the leader answers them as duplicates with
/// the first write's offsets, so each record is acknowledged at the offset where it was
/// written, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_written_but_unanswered_are_acknowledged_once_after_the_resend() {
    init_tracing();
    let live = LiveNode::start().await;
    let proxy = Proxy::start(&live.addr).await;
    let client = live
        .client_with_topic(bounds(Duration::from_secs(3)), TOPIC)
        .await;
    let watcher = Client::connect(ClientConfig::new(&live.addr).unwrap())
        .await
        .unwrap();
    let producer = client.producer(producer_config()).await.unwrap();
    client.note_leader(TOPIC, 0, Some(99), &proxy.addr);

    // Through the proxy, answered: the producer's window opens.
    let first = values(0..RECORDS);
    for delivery in enqueue_all(&producer, &first).await {
        delivery.await.unwrap();
    }
    // Through the proxy again, answers held: written, but the producer does not know.
    proxy.hold_answers(true);
    let second = values(RECORDS..2 * RECORDS);
    let deliveries = enqueue_all(&producer, &second).await;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let written = watcher
            .resolve_position(TOPIC, 0, StartPosition::Latest)
            .await
            .unwrap();
        if written == 2 * RECORDS {
            break;
        }
        assert!(Instant::now() < deadline, "{written} records written");
        tokio::time::sleep(POLL).await;
    }
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let written = delivery.await.unwrap();
        assert_eq!(
            written.offset,
            RECORDS + i as u64,
            "at the first write's offset"
        );
    }
    assert!(client.is_suspect(&proxy.addr));
    proxy.hold_answers(false);
    let expected: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(read_back(&watcher).await, expected, "each record once");
    producer.close().await;
}

//! The client against a real node, served in process (`stave_broker::spawn`) on a loopback
//! port, with data in a temp dir: producer, consumer and admin end to end.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stave_client::{
    Client, ClientConfig, ClientError, ConsumerConfig, ErrorCode, NewTopic, OffsetReset,
    ProducerConfig, ProducerRecord, StartPosition, partition_for_key,
};
use tokio::time::Instant;

mod support;
use support::{Node, READY_TIMEOUT, connect, init_tracing, topic};

/// Keyed records land on Kafka's partition for their key (murmur2), come back in send order
/// per key with their key, value, timestamp and a unique `id` header, and each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_kafka_puts_them_and_read_back_in_order() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.user.signedup", 3).await;

    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let key = format!("user-{}", i % 10);
        let record = ProducerRecord::new("v1.user.signedup", format!("{key}:{i}"))
            .key(key.clone())
            .timestamp(1_700_000_000_000 + i);
        deliveries.push((key, producer.enqueue(record).await.unwrap()));
    }
    let mut written = BTreeMap::new();
    for (key, delivery) in deliveries {
        let metadata = delivery.await.unwrap();
        assert_eq!(metadata.partition, partition_for_key(key.as_bytes(), 3));
        assert!(
            written
                .insert((metadata.partition, metadata.offset), key)
                .is_none()
        );
    }
    producer.close().await;

    let mut consumer = client.consumer(ConsumerConfig::default());
    consumer
        .assign_topic("v1.user.signedup", StartPosition::Earliest)
        .await
        .unwrap();
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for _ in 0..300 {
        let record = consumer.next().await.unwrap();
        let key = String::from_utf8(record.key.clone().unwrap().to_vec()).unwrap();
        let value = String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap();
        let (value_key, sequence) = value.split_once(':').unwrap();
        assert_eq!(value_key, key);
        let sequence: u64 = sequence.parse().unwrap();
        assert_eq!(record.timestamp, 1_700_000_000_000 + sequence as i64);
        assert_eq!(written[&(record.partition, record.offset)], key);
        assert!(ids.insert(record.header("id").unwrap().clone()));
        per_key.entry(key).or_default().push(sequence);
    }
    for (key, sequences) in &per_key {
        let expected: Vec<u64> = sequences.iter().map(|s| s % 10).collect();
        assert!(expected.iter().all(|s| *s == expected[0]), "{key}");
        assert!(
            sequences.windows(2).all(|w| w[0] + 10 == w[1]),
            "{key}: {sequences:?}"
        );
        assert_eq!(sequences.len(), 30);
    }
    assert!(
        consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
}

/// Keyless records go to one sticky partition while they fit a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_stick_to_one_partition_per_batch() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.clicks", 4).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let record = ProducerRecord::new("v1.clicks", format!("click {i}"));
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    let mut partitions = HashSet::new();
    for delivery in deliveries {
        partitions.insert(delivery.await.unwrap().partition);
    }
    assert_eq!(partitions.len(), 1);
    // An explicit partition is honoured; one that does not exist is refused at once.
    let written = producer
        .send(ProducerRecord::new("v1.clicks", "x").partition(3))
        .await
        .unwrap();
    assert_eq!(written.partition, 3);
    let err = producer
        .send(ProducerRecord::new("v1.clicks", "x").partition(4))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownPartition { partitions: 4, .. }),
        "{err}"
    );
}

/// `enqueue_with` hands each record's outcome to its callback exactly once, in write order
/// within a partition, with the offset the record was read back at; a record refused at
/// once never calls its callback, and one that cannot be delivered in time gets the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_callbacks_run_once_each_in_write_order() {
    init_tracing();
    let mut node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.order.placed", 2).await;
    let producer = client
        .producer(ProducerConfig {
            delivery_timeout: Duration::from_secs(2),
            ..ProducerConfig::default()
        })
        .await
        .unwrap();
    type Outcomes = Arc<std::sync::Mutex<Vec<(u64, Result<(u32, u64), ClientError>)>>>;
    let outcomes: Outcomes = Arc::default();
    let callback = |i: u64, outcomes: &Outcomes| {
        let outcomes = outcomes.clone();
        move |result: Result<stave_client::RecordMetadata, ClientError>| {
            let result = result.map(|m| (m.partition, m.offset));
            outcomes.lock().unwrap().push((i, result));
        }
    };
    for i in 0..500u64 {
        let record =
            ProducerRecord::new("v1.order.placed", i.to_string()).key(format!("k{}", i % 7));
        producer
            .enqueue_with(record, callback(i, &outcomes))
            .await
            .unwrap();
    }
    let refused = ProducerRecord::new("v1.order.placed", "x").partition(2);
    let err = producer
        .enqueue_with(refused, callback(u64::MAX, &outcomes))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::UnknownPartition { .. }), "{err}");
    producer.flush().await;

    let written: Vec<(u64, (u32, u64))> = outcomes
        .lock()
        .unwrap()
        .drain(..)
        .map(|(i, result)| (i, result.unwrap()))
        .collect();
    let mut seen: Vec<u64> = written.iter().map(|(i, _)| *i).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..500).collect::<Vec<_>>(), "each callback once");
    for partition in 0..2 {
        let order: Vec<(u64, u64)> = written
            .iter()
            .filter(|(_, (p, _))| *p == partition)
            .map(|(i, (_, offset))| (*i, *offset))
            .collect();
        assert!(
            order.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "partition {partition}: callbacks in write order"
        );
    }
    let mut consumer = client.consumer(ConsumerConfig::default());
    consumer
        .assign_topic("v1.order.placed", StartPosition::Earliest)
        .await
        .unwrap();
    let at: BTreeMap<(u32, u64), u64> = written.iter().map(|(i, at)| (*at, *i)).collect();
    for _ in 0..500 {
        let record = consumer.next().await.unwrap();
        let value: u64 = String::from_utf8(record.value.unwrap().to_vec())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(at[&(record.partition, record.offset)], value);
    }

    // The node is gone: the record is accepted, and its callback reports the timeout.
    node.stop().await;
    producer
        .enqueue_with(
            ProducerRecord::new("v1.order.placed", "late"),
            callback(500, &outcomes),
        )
        .await
        .unwrap();
    producer.flush().await;
    let late: Vec<_> = outcomes.lock().unwrap().drain(..).collect();
    assert_eq!(late.len(), 1);
    let (i, result) = late.into_iter().next().unwrap();
    assert_eq!(i, 500);
    let err = result.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
}

/// Start positions: latest sees only later records, a timestamp finds the first record at
/// or after it, an explicit offset starts there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_start_at_latest_a_timestamp_or_an_offset() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.orders", 1).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..10 {
        let record = ProducerRecord::new("v1.orders", format!("old {i}")).timestamp(1000 + i);
        producer.send(record).await.unwrap();
    }

    let mut latest = client.consumer(ConsumerConfig::default());
    assert_eq!(
        latest
            .assign("v1.orders", 0, StartPosition::Latest)
            .await
            .unwrap(),
        10
    );
    let mut by_time = client.consumer(ConsumerConfig::default());
    let start = by_time
        .assign("v1.orders", 0, StartPosition::Timestamp(1004))
        .await
        .unwrap();
    assert_eq!(start, 4);
    let mut at = client.consumer(ConsumerConfig::default());
    at.assign("v1.orders", 0, StartPosition::Offset(7))
        .await
        .unwrap();

    producer
        .send(ProducerRecord::new("v1.orders", "new").timestamp(2000))
        .await
        .unwrap();
    let record = latest.next().await.unwrap();
    assert_eq!(
        (record.offset, record.value.unwrap().as_ref()),
        (10, &b"new"[..])
    );
    assert_eq!(by_time.next().await.unwrap().offset, 4);
    assert_eq!(at.next().await.unwrap().offset, 7);
    assert_eq!(at.position("v1.orders", 0), Some(8));
}

/// A position outside the partition's records is a clear error by default (with the
/// partition's range), or a reset when the consumer asked for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_out_of_range_is_an_error_or_a_reset_as_configured() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.events", 1).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..5 {
        producer
            .send(ProducerRecord::new("v1.events", format!("e{i}")))
            .await
            .unwrap();
    }

    let mut strict = client.consumer(ConsumerConfig::default());
    strict
        .assign("v1.events", 0, StartPosition::Offset(100))
        .await
        .unwrap();
    let err = strict.next().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::OffsetOutOfRange {
                offset: 100,
                log_start_offset: 0,
                high_watermark: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("out of range [0, 5]"), "{err}");

    let mut lenient = client.consumer(ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    lenient
        .assign("v1.events", 0, StartPosition::Offset(100))
        .await
        .unwrap();
    assert_eq!(lenient.next().await.unwrap().offset, 0);
}

/// Admin: create (and the typed refusals), describe with configs, alter, list, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_topics_with_typed_errors() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    let admin = client.admin();
    topic(&client, "v1.user.signup", 2).await;

    let exists = admin
        .create_topic(NewTopic::new("v1.user.signup", 2))
        .await
        .unwrap_err();
    assert_eq!(exists.code(), Some(ErrorCode::TopicExists), "{exists}");
    let invalid = admin
        .create_topic(NewTopic::new("bad name!", 1))
        .await
        .unwrap_err();
    assert_eq!(
        invalid.code(),
        Some(ErrorCode::InvalidTopicName),
        "{invalid}"
    );
    let reserved = admin
        .create_topic(NewTopic::new("__offsets2", 1))
        .await
        .unwrap_err();
    assert_eq!(
        reserved.code(),
        Some(ErrorCode::ReservedTopicName),
        "{reserved}"
    );
    let too_many = admin
        .create_topic(NewTopic::new("v1.x", 1).replication_factor(3))
        .await
        .unwrap_err();
    assert_eq!(
        too_many.code(),
        Some(ErrorCode::NotEnoughNodes),
        "{too_many}"
    );

    let described = admin.describe_topic("v1.user.signup").await.unwrap();
    assert_eq!(described.partitions.len(), 2);
    assert_eq!(described.replication_factor(), 1);
    assert!(described.configs.iter().any(|(k, _)| k == "retention.ms"));

    admin
        .alter_topic_config("v1.user.signup", &[("retention.ms".into(), "60000".into())])
        .await
        .unwrap();
    let described = admin.describe_topic("v1.user.signup").await.unwrap();
    assert!(
        described
            .configs
            .contains(&("retention.ms".into(), "60000".into()))
    );
    let bad = admin
        .alter_topic_config("v1.user.signup", &[("retention.ms".into(), "soon".into())])
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(ErrorCode::InvalidConfig), "{bad}");

    assert_eq!(admin.list_topics().await.unwrap(), ["v1.user.signup"]);
    let cluster = admin.cluster().await.unwrap();
    assert_eq!(cluster.nodes.len(), 1);
    admin.delete_topic("v1.user.signup").await.unwrap();
    let gone = admin.describe_topic("v1.user.signup").await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrorCode::UnknownTopic), "{gone}");
    assert!(admin.list_topics().await.unwrap().is_empty());
}

/// A bootstrap list where every address refuses the connection fails at once.
#[tokio::test]
async fn an_unreachable_bootstrap_list_fails_at_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let start = Instant::now();
    let err = Client::connect(ClientConfig::new(&closed).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    let line = stave_client::display_chain(&err);
    assert!(line.contains(&closed) && !line.contains('\n'), "{line}");
}

/// More records than the restart test can send before it ends.
const RECORDS_MAX: u64 = 1_000_000;
/// Records the restart test's producer keeps unacknowledged.
const OUTSTANDING_MAX: usize = 200;

/// The node restarts while the producer has records in flight: the producer reconnects,
/// retries with the same batches, and every record is written exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_node_restart_exactly_once() {
    init_tracing();
    let mut node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.payments", 1).await;
    let producer = client
        .producer(ProducerConfig {
            linger: Duration::from_millis(1),
            batch_bytes: 512,
            delivery_timeout: Duration::from_secs(20),
            ..ProducerConfig::default()
        })
        .await
        .unwrap();
    // The producer keeps sending, with a bounded number of records outstanding (so it does
    // not simply queue everything before the restart), while the node restarts under it.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let sending = {
        let acknowledged = acknowledged.clone();
        let restarted = restarted.clone();
        tokio::spawn(async move {
            let mut deliveries = std::collections::VecDeque::new();
            let mut offsets = Vec::new();
            let mut after_restart = 0;
            for i in 0..RECORDS_MAX {
                if restarted.load(Ordering::Relaxed) {
                    after_restart += 1;
                    if after_restart > 500 {
                        break;
                    }
                }
                let record = ProducerRecord::new("v1.payments", format!("{i:05}"));
                deliveries.push_back(producer.enqueue(record).await.unwrap());
                if deliveries.len() > OUTSTANDING_MAX {
                    let oldest = deliveries.pop_front().unwrap();
                    offsets.push(oldest.await.unwrap().offset);
                    acknowledged.store(offsets.len() as u64, Ordering::Relaxed);
                }
            }
            for delivery in deliveries {
                offsets.push(delivery.await.unwrap().offset);
            }
            producer.close().await;
            offsets
        })
    };
    let start = Instant::now();
    while acknowledged.load(Ordering::Relaxed) < 500 {
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "no progress before the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!("--- restart the node");
    node.restart().await;
    restarted.store(true, Ordering::Relaxed);
    let offsets = sending.await.unwrap();
    let sent = offsets.len();
    assert!(
        sent < RECORDS_MAX as usize,
        "the producer did not wait for the restart"
    );
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in send order");

    let mut consumer = client.consumer(ConsumerConfig::default());
    consumer
        .assign("v1.payments", 0, StartPosition::Earliest)
        .await
        .unwrap();
    for i in 0..sent {
        let record = consumer.next().await.unwrap();
        assert_eq!(
            record.value.unwrap(),
            format!("{i:05}").as_bytes(),
            "offset {}",
            record.offset
        );
    }
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    node.stop().await;
}

/// Retention moves the log start past a consumer's position: by default the consumer gets
/// OFFSET_OUT_OF_RANGE saying retention removed the records (and the current range); with
/// `OffsetReset::Earliest` it goes on from the new log start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_behind_retention_gets_a_clear_error_or_resets() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    let admin = client.admin();
    admin
        .create_topic(
            NewTopic::new("v1.metrics", 1)
                .config("segment.bytes", "65536")
                .config("retention.bytes", "65536"),
        )
        .await
        .unwrap();
    admin
        .wait_for_leaders("v1.metrics", READY_TIMEOUT)
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    let value = "m".repeat(1000);
    let mut deliveries = Vec::new();
    for _ in 0..400 {
        let record = ProducerRecord::new("v1.metrics", value.clone());
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    let start = Instant::now();
    let log_start = loop {
        let earliest = admin
            .list_offsets("v1.metrics", 0, StartPosition::Earliest)
            .await
            .unwrap();
        if earliest > 0 {
            break earliest;
        }
        assert!(start.elapsed() < READY_TIMEOUT, "retention never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut strict = client.consumer(ConsumerConfig::default());
    strict
        .assign("v1.metrics", 0, StartPosition::Offset(0))
        .await
        .unwrap();
    let err = strict.next().await.unwrap_err();
    assert!(
        matches!(err, ClientError::OffsetOutOfRange { offset: 0, log_start_offset, .. }
            if log_start_offset >= log_start),
        "{err}"
    );
    assert!(err.to_string().contains("retention removed it"), "{err}");

    let mut lenient = client.consumer(ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    lenient
        .assign("v1.metrics", 0, StartPosition::Offset(0))
        .await
        .unwrap();
    assert!(lenient.next().await.unwrap().offset >= log_start);
}

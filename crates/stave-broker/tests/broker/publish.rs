//! Publish: records as proto messages, routed, batched and forwarded by the node that takes
//! them. What was written is read back with Fetch and decoded here (Consume is the record
//! face for reading).

use std::collections::BTreeMap;

use bytes::Bytes;
use stave_log::hash::partition_for_key;
use stave_proto::v1 as pb;

use crate::support::{
    Link, Proxy, client, cluster, code, create_topic, retriable, retry, wait_for_leaders,
};

/// A record with a value, headers as given, nothing else.
fn record(topic: &str, value: &str, headers: &[(&str, &str)]) -> pb::PublishRecord {
    pb::PublishRecord {
        topic: topic.into(),
        value: Bytes::from(value.to_string()),
        headers: headers
            .iter()
            .map(|(key, value)| pb::Header {
                key: key.to_string(),
                value: Bytes::from(value.to_string()),
            })
            .collect(),
        ..Default::default()
    }
}

/// Publishes `records` through `addr`, sending again only the records answered with a
/// retriable code (none of which was written), until none is; the answers, in order.
async fn publish(addr: &str, records: Vec<pb::PublishRecord>) -> Vec<pb::PublishResult> {
    let api = client(addr).await;
    let answered = std::sync::Mutex::new(vec![None; records.len()]);
    retry(|| {
        let mut api = api.clone();
        let answered = &answered;
        let pending: Vec<usize> = answered
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, result)| result.is_none())
            .map(|(index, _)| index)
            .collect();
        let request = pb::PublishRequest {
            records: pending
                .iter()
                .map(|&index| records[index].clone())
                .collect(),
            sequence: 0,
        };
        async move {
            let results = api
                .publish(request)
                .await
                .map_err(|status| status.to_string())?
                .into_inner()
                .results;
            let mut answered = answered.lock().unwrap();
            let mut again = None;
            for (index, result) in pending.into_iter().zip(results) {
                if retriable(code(&result.error)) {
                    again = Some(format!("{result:?}"));
                } else {
                    answered[index] = Some(result);
                }
            }
            again.map_or(Ok(()), Err)
        }
    })
    .await;
    answered
        .into_inner()
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// A record as read back: key, value, headers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

/// Every record of `topic`'s `partition`, by offset, fetched from its leader (asked of
/// `addr` first, then wherever NOT_LEADER points).
async fn read_partition(addr: &str, topic: &str, partition: u32) -> BTreeMap<u64, Read> {
    let leader = std::sync::Mutex::new(addr.to_string());
    let batches = retry(|| {
        let leader = &leader;
        let request = pb::FetchRequest {
            topic: topic.into(),
            partition,
            offset: 0,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        async move {
            let addr = leader.lock().unwrap().clone();
            let answer = client(&addr)
                .await
                .fetch(request)
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            match (code(&answer.error), &answer.error) {
                (pb::ErrorCode::None, _) => Ok(answer.batches),
                (other, Some(error)) => {
                    if !error.leader_addr.is_empty() {
                        *leader.lock().unwrap() = error.leader_addr.clone();
                    }
                    Err(format!("{other:?}"))
                }
                (other, None) => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let mut read = BTreeMap::new();
    for frame in stave_log::batch::BatchView::split(&batches) {
        let view = frame.unwrap();
        for record in view.records() {
            let record = record.unwrap();
            let headers = record
                .headers()
                .map(|(key, value)| (key.to_string(), value.to_vec()))
                .collect();
            read.insert(
                record.offset.0,
                Read {
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.unwrap_or_default().to_vec(),
                    headers,
                    timestamp: record.timestamp,
                },
            );
        }
    }
    read
}

/// Scenario: one request publishes keyed records, keyless records with and without ids, a
/// record with an explicit partition and timestamp, and records with repeated header keys,
/// to a 3-partition topic. Proves: every record is answered NONE in order with its
/// partition, offset and id; keyed records land where murmur2 of the key puts them (as the
/// Rust client does), keyless ones where murmur2 of their id does; each record reads back
/// exactly as sent, with the `id` header the node gave it; a record published again with its
/// id goes to the same partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_records_land_by_key_or_id_and_read_back_as_sent() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.user.signedup", 3, 1, &[]).await;
    let mut keyed = record(
        "v1.user.signedup",
        "alice",
        &[("trace", "t1"), ("trace", "t2")],
    );
    keyed.key = Some(Bytes::from_static(b"user-1"));
    let mut empty_key = record("v1.user.signedup", "bob", &[]);
    empty_key.key = Some(Bytes::new());
    let with_id = record("v1.user.signedup", "carol", &[("id", "m-3")]);
    let no_id = record("v1.user.signedup", "dave", &[]);
    let mut pinned = record("v1.user.signedup", "erin", &[]);
    pinned.partition = Some(2);
    pinned.timestamp_ms = Some(1_700_000_000_000);
    let sent = vec![keyed, empty_key, with_id, no_id, pinned];
    let results = publish(addr, sent.clone()).await;
    assert_eq!(results.len(), sent.len());
    for result in &results {
        assert_eq!(code(&result.error), pb::ErrorCode::None, "{result:?}");
        assert!(!result.id.is_empty(), "{result:?}");
    }
    assert_eq!(results[0].partition, partition_for_key(b"user-1", 3));
    assert_eq!(results[1].partition, partition_for_key(b"", 3));
    assert_eq!(results[2].id, "m-3");
    assert_eq!(results[2].partition, partition_for_key(b"m-3", 3));
    assert_eq!(results[3].id.len(), 36, "a UUIDv7: {:?}", results[3].id);
    assert_eq!(&results[3].id[14..15], "7");
    assert_eq!(
        results[3].partition,
        partition_for_key(results[3].id.as_bytes(), 3)
    );
    assert_eq!(results[4].partition, 2);

    let mut partitions = BTreeMap::new();
    for partition in 0..3 {
        partitions.insert(
            partition,
            read_partition(addr, "v1.user.signedup", partition).await,
        );
    }
    for (record, result) in sent.iter().zip(&results) {
        let read = &partitions[&result.partition][&result.offset];
        assert_eq!(read.key, record.key.as_ref().map(|key| key.to_vec()));
        assert_eq!(read.value, record.value.to_vec());
        let mut expected: Vec<(String, Vec<u8>)> = record
            .headers
            .iter()
            .map(|header| (header.key.clone(), header.value.to_vec()))
            .collect();
        if !expected.iter().any(|(key, _)| key == "id") {
            expected.push(("id".into(), result.id.as_bytes().to_vec()));
        }
        assert_eq!(read.headers, expected);
    }
    assert_eq!(
        partitions[&2][&results[4].offset].timestamp,
        1_700_000_000_000
    );
    let written: usize = partitions.values().map(BTreeMap::len).sum();
    assert_eq!(written, sent.len());

    let again = publish(
        addr,
        vec![record(
            "v1.user.signedup",
            "dave",
            &[("id", &results[3].id)],
        )],
    )
    .await;
    assert_eq!(again[0].partition, results[3].partition);
}

/// Scenario: on 3 nodes, a topic of 6 single-replica partitions (so every node leads some,
/// and none leads all) takes 60 keyed records published through one node, on Publish and
/// on PublishStream. Proves: the node forwards each partition's records to its leader, and
/// every record is written once, where its answer says, in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_takes_records_for_partitions_led_elsewhere() {
    let nodes = cluster(3).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.order.placed", 6, 1, &[]).await;
    let records: Vec<pb::PublishRecord> = (0..60)
        .map(|i| {
            let mut record = record("v1.order.placed", &format!("order-{i}"), &[]);
            record.key = Some(Bytes::from(format!("customer-{}", i % 12)));
            record
        })
        .collect();
    let results = publish(addr, records[..30].to_vec()).await;

    // Every partition those keys reach has a leader now: the rest go on one stream, as
    // three requests, answered in order.
    let requests: Vec<pb::PublishRequest> = records[30..]
        .chunks(10)
        .zip(100..)
        .map(|(chunk, sequence)| pb::PublishRequest {
            records: chunk.to_vec(),
            sequence,
        })
        .collect();
    let mut answers = client(addr)
        .await
        .publish_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(answer) = answers.message().await.unwrap() {
        assert_eq!(answer.sequence, 100 + streamed.len() as u64);
        streamed.push(answer);
    }
    assert_eq!(streamed.len(), 3);
    let results: Vec<pb::PublishResult> = results
        .into_iter()
        .chain(streamed.into_iter().flat_map(|answer| answer.results))
        .collect();
    let mut read = BTreeMap::new();
    for partition in 0..6 {
        read.insert(
            partition,
            read_partition(addr, "v1.order.placed", partition).await,
        );
    }
    let total: usize = read.values().map(BTreeMap::len).sum();
    assert_eq!(total, records.len(), "each record written once");
    let mut last_offset: BTreeMap<u32, u64> = BTreeMap::new();
    for (record, result) in records.iter().zip(&results) {
        assert_eq!(code(&result.error), pb::ErrorCode::None, "{result:?}");
        let key = record.key.as_ref().unwrap();
        assert_eq!(result.partition, partition_for_key(key, 6));
        assert_eq!(
            read[&result.partition][&result.offset].value,
            record.value.to_vec()
        );
        if let Some(last) = last_offset.insert(result.partition, result.offset) {
            assert!(
                result.offset > last,
                "records keep their order in a partition"
            );
        }
    }
}

/// Scenario: one request mixes good records with an empty topic, an unknown topic, an
/// internal topic, a partition out of range, an empty header key, an empty `id`, a negative
/// timestamp and a record over the topic's `max.message.bytes`; then a request of 10,001
/// records. Proves: each bad record gets its typed error and nothing of it is written, the
/// good records of the same request are written, and the oversized request writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_get_typed_errors_and_write_nothing() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.audit", 2, 1, &[("max.message.bytes", "2048")]).await;
    let good = |value: &str| record("v1.audit", value, &[]);
    let mut out_of_range = good("x");
    out_of_range.partition = Some(2);
    let mut negative = good("x");
    negative.timestamp_ms = Some(-1);
    let cases = vec![
        (good("first"), pb::ErrorCode::None),
        (record("", "x", &[]), pb::ErrorCode::InvalidTopicName),
        (record("v1.nothing", "x", &[]), pb::ErrorCode::UnknownTopic),
        (record("__offsets", "x", &[]), pb::ErrorCode::InvalidRequest),
        (out_of_range, pb::ErrorCode::UnknownPartition),
        (
            record("v1.audit", "x", &[("", "v")]),
            pb::ErrorCode::InvalidRequest,
        ),
        (
            record("v1.audit", "x", &[("id", "")]),
            pb::ErrorCode::InvalidRequest,
        ),
        (negative, pb::ErrorCode::InvalidRequest),
        (good(&"y".repeat(4096)), pb::ErrorCode::MessageTooLarge),
        (good("last"), pb::ErrorCode::None),
    ];
    // The topic is known and led before the request that must be answered as it is.
    wait_for_leaders(addr, "v1.audit").await;
    publish(addr, vec![good("warm-up")]).await;
    let records: Vec<pb::PublishRecord> = cases.iter().map(|(r, _)| r.clone()).collect();
    let mut api = client(addr).await;
    let results = api
        .publish(pb::PublishRequest {
            records,
            sequence: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let codes: Vec<pb::ErrorCode> = results.iter().map(|r| code(&r.error)).collect();
    let expected: Vec<pb::ErrorCode> = cases.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes, expected, "{results:?}");

    let too_many = api
        .publish(pb::PublishRequest {
            records: vec![good("z"); 10_001],
            sequence: 7,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(too_many.sequence, 7);
    assert_eq!(too_many.results.len(), 10_001);
    assert!(
        too_many
            .results
            .iter()
            .all(|r| code(&r.error) == pb::ErrorCode::InvalidRequest)
    );

    let mut values = Vec::new();
    for partition in 0..2 {
        for read in read_partition(addr, "v1.audit", partition)
            .await
            .into_values()
        {
            values.push(String::from_utf8(read.value).unwrap());
        }
    }
    values.sort();
    assert_eq!(values, ["first", "last", "warm-up"]);
}

/// One Publish of `records` through `addr`, answered as it is.
async fn publish_once(addr: &str, records: Vec<pb::PublishRecord>) -> Vec<pb::PublishResult> {
    client(addr)
        .await
        .publish(pb::PublishRequest {
            records,
            sequence: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .results
}

/// Scenario: a record with id `order-7` is published, then published again (a retry after a
/// lost answer), then sent twice more inside one request beside a new id; on a topic with
/// `dedupe.window.ms=0` the same retry is sent. Proves: the retry is answered with the first
/// write's offset and `duplicate`, and nothing is written twice; inside one request the
/// repeated id is written once; with the window off, a retry writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_message_id_is_written_once() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.order.placed", 3, 1, &[]).await;
    wait_for_leaders(addr, "v1.order.placed").await;
    let order = |id: &str| record("v1.order.placed", "order", &[("id", id)]);
    let first = publish(addr, vec![order("order-7")]).await;
    assert!(!first[0].duplicate);
    let retried = publish_once(addr, vec![order("order-7")]).await;
    assert_eq!(code(&retried[0].error), pb::ErrorCode::None);
    assert!(retried[0].duplicate);
    assert_eq!(
        (retried[0].partition, retried[0].offset),
        (first[0].partition, first[0].offset)
    );

    let mixed = publish_once(
        addr,
        vec![order("order-8"), order("order-7"), order("order-8")],
    )
    .await;
    assert!(!mixed[0].duplicate, "{mixed:?}");
    assert!(
        mixed[1].duplicate && mixed[1].offset == first[0].offset,
        "{mixed:?}"
    );
    assert!(
        mixed[2].duplicate && mixed[2].offset == mixed[0].offset,
        "{mixed:?}"
    );
    let mut written = 0;
    for partition in 0..3 {
        written += read_partition(addr, "v1.order.placed", partition)
            .await
            .len();
    }
    assert_eq!(written, 2, "order-7 and order-8, once each");

    create_topic(addr, "v1.order.raw", 1, 1, &[("dedupe.window.ms", "0")]).await;
    wait_for_leaders(addr, "v1.order.raw").await;
    let raw = || record("v1.order.raw", "order", &[("id", "order-7")]);
    let once = publish(addr, vec![raw()]).await;
    let twice = publish_once(addr, vec![raw()]).await;
    assert!(!twice[0].duplicate);
    assert_eq!(twice[0].offset, once[0].offset + 1);
}

/// Scenario: on 3 nodes, a record with an id is published to a partition with 3 replicas;
/// its leader is stopped; the record is published again, through another node, until a new
/// leader answers. Proves: the new leader, whose id table is rebuilt from its log, answers
/// the retry with the first write's offset and `duplicate`, and the partition holds the
/// record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_leader_died_finds_the_first_write() {
    let mut nodes = cluster(3).await;
    let addr = nodes[0].addr.clone();
    create_topic(&addr, "v1.payment.taken", 1, 3, &[]).await;
    let payment = || vec![record("v1.payment.taken", "10 EUR", &[("id", "pay-1")])];
    let first = publish(&addr, payment()).await;
    let leader = retry(|| async {
        let metadata = client(&addr)
            .await
            .metadata(pb::MetadataRequest {
                topics: vec!["v1.payment.taken".into()],
            })
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        let partition = &metadata.topics[0].partitions[0];
        partition.leader.ok_or_else(|| "no leader".to_string())
    })
    .await;
    let at = nodes.iter().position(|n| n.id == leader).unwrap();
    let stopped = nodes.remove(at);
    stopped._running.stop().await.unwrap();
    let survivor = nodes[0].addr.clone();
    let again = publish(&survivor, payment()).await;
    assert!(again[0].duplicate, "{again:?}");
    assert_eq!(again[0].offset, first[0].offset);
    let read = read_partition(&survivor, "v1.payment.taken", 0).await;
    assert_eq!(read.len(), 1, "{read:?}");
}

/// Scenario: 100 records with ids are published through a proxy whose link loses the node's
/// answers; the client gives up after 2 s and the link is cut. 100 more are published with a
/// 1 ms deadline, so the node drops the call while it writes. Both sets are sent again,
/// straight to the node. Proves: every retry is answered (a call its client abandoned never
/// leaves an id "in flight" for good), the retries of the lost set are all `duplicate`, and
/// each id is in the topic once, at the (partition, offset) its retry names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_whose_client_gave_up_is_written_once_when_retried() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.invoice.sent", 3, 1, &[]).await;
    wait_for_leaders(addr, "v1.invoice.sent").await;
    let value = "x".repeat(1024);
    let set = |name: &str| -> Vec<pb::PublishRecord> {
        (0..100)
            .map(|i| record("v1.invoice.sent", &value, &[("id", &format!("{name}-{i}"))]))
            .collect()
    };

    let proxy = Proxy::start(addr).await;
    let mut through = client(&proxy.addr).await;
    through
        .metadata(pb::MetadataRequest::default())
        .await
        .unwrap();
    proxy.set(Link::Deaf);
    let request = pb::PublishRequest {
        records: set("lost"),
        sequence: 0,
    };
    let lost =
        tokio::time::timeout(std::time::Duration::from_secs(2), through.publish(request)).await;
    assert!(lost.is_err(), "the answer was lost: {lost:?}");
    proxy.set(Link::Cut);

    let mut request = tonic::Request::new(pb::PublishRequest {
        records: set("cancelled"),
        sequence: 0,
    });
    request.set_timeout(std::time::Duration::from_millis(1));
    let _ = client(addr).await.publish(request).await;

    let lost_again = publish(addr, set("lost")).await;
    assert!(
        lost_again.iter().all(|r| r.duplicate),
        "the lost set was written before its answer was lost: {lost_again:?}"
    );
    let cancelled_again = publish(addr, set("cancelled")).await;
    let mut answered = BTreeMap::new();
    for (records, results) in [
        (set("lost"), lost_again),
        (set("cancelled"), cancelled_again),
    ] {
        for (record, result) in records.iter().zip(results) {
            assert_eq!(code(&result.error), pb::ErrorCode::None, "{result:?}");
            let id = record.headers[0].value.clone();
            answered.insert(id.to_vec(), (result.partition, result.offset));
        }
    }
    let mut in_log: BTreeMap<Vec<u8>, Vec<(u32, u64)>> = BTreeMap::new();
    for partition in 0..3 {
        for (offset, read) in read_partition(addr, "v1.invoice.sent", partition).await {
            let (_, id) = read.headers.iter().find(|(key, _)| key == "id").unwrap();
            in_log
                .entry(id.clone())
                .or_default()
                .push((partition, offset));
        }
    }
    assert_eq!(in_log.len(), 200);
    for (id, at) in &in_log {
        assert_eq!(
            at.len(),
            1,
            "{} written {} times",
            String::from_utf8_lossy(id),
            at.len()
        );
        assert_eq!(answered[id], at[0]);
    }
}

/// Scenario: a topic keeps at most 10 ids per partition (`dedupe.max.ids=10`) within a
/// 2-minute window; 30 records with ids are published to its one partition. Proves: the
/// first ids are no longer recognised (a retry of the first is written again), and the
/// partition's metadata reports the effective window, shorter than the 2 minutes asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_id_table_reports_its_effective_window() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.click.seen", 1, 1, &[("dedupe.max.ids", "10")]).await;
    wait_for_leaders(addr, "v1.click.seen").await;
    let click = |i: usize| record("v1.click.seen", "click", &[("id", &format!("click-{i}"))]);
    let first = publish(addr, (0..30).map(click).collect()).await;
    let again = publish_once(addr, vec![click(0), click(29)]).await;
    assert!(!again[0].duplicate, "click-0 was evicted: {again:?}");
    assert_eq!(again[0].offset, first[29].offset + 1);
    assert!(again[1].duplicate, "click-29 is kept: {again:?}");
    let effective = retry(|| async {
        let metadata = client(addr)
            .await
            .metadata(pb::MetadataRequest {
                topics: vec!["v1.click.seen".into()],
            })
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        metadata.topics[0].partitions[0]
            .dedupe_window_effective_ms
            .ok_or_else(|| "no effective window reported".to_string())
    })
    .await;
    assert!(effective < 120_000, "{effective} ms");
}

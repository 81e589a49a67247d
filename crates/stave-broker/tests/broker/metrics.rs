//! Prometheus metrics of a node served in process, scraped over HTTP from the listener the
//! test bound (port 0): data-path counters move by exactly what was produced and fetched,
//! RPCs are counted by method and status code, and a stopped consumer group's lag grows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_broker::BrokerConfig;
use stave_broker::metrics::MetricsListen;
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    WAIT, client, code, create_topic, now_ms, retry, try_produce, wait_for_leaders,
};

/// A node with metrics on a port the test knows.
struct MeteredNode {
    id: u64,
    addr: String,
    metrics_addr: String,
    _running: stave_broker::Running,
    _dir: tempfile::TempDir,
}

async fn metered_node() -> MeteredNode {
    metered_cluster(1).await.remove(0)
}

/// `count` nodes forming one cluster, each with its metrics listener bound by the test.
async fn metered_cluster(count: u64) -> Vec<MeteredNode> {
    let mut listeners = Vec::new();
    for _ in 0..count {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let peers: BTreeMap<u64, String> = (1..)
        .zip(&listeners)
        .map(|(id, listener)| (id, listener.local_addr().unwrap().to_string()))
        .collect();
    let secret = stave_broker::cluster_secret::ClusterSecret::generate();
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        let addr = peers[&id].clone();
        let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let metrics_addr = metrics.local_addr().unwrap().to_string();
        let dir = tempfile::tempdir().unwrap();
        let mut config = BrokerConfig::single_node(dir.path().to_path_buf(), addr.clone());
        config.node_id = id;
        if count > 1 {
            config.peers = peers.clone();
        }
        config.cluster_secret = Some(secret.clone());
        config.metrics_listen = MetricsListen::bound(metrics).unwrap();
        nodes.push(MeteredNode {
            id,
            addr,
            metrics_addr,
            _running: stave_broker::spawn(listener, config),
            _dir: dir,
        });
    }
    nodes
}

/// One HTTP/1.1 request to `addr`: the status line, the headers and the body.
pub async fn http_get(addr: &str, method: &str, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

async fn scrape(node: &MeteredNode) -> String {
    let (head, body) = http_get(&node.metrics_addr, "GET", "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of the series `series` (name and labels, as encoded), if present.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

fn batch_of(values: &[&str], timestamp: i64) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.producer(ProducerFields::NONE);
    for value in values {
        builder.push(&Record {
            timestamp,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        });
    }
    Bytes::from(builder.finish())
}

/// Produces `batch` to partition 0 once and expects it written.
async fn produce_ok(addr: &str, topic: &str, batch: Bytes) {
    produce_to(addr, topic, 0, batch).await;
}

async fn produce_to(addr: &str, topic: &str, partition: u32, batch: Bytes) {
    let answer = try_produce(addr, topic, partition, batch).await.unwrap();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
}

/// N records in known batches, fetched back: the produced and fetched counters moved by
/// exactly those records and bytes; every Produce call counts as OK, a health check of an
/// unknown service as NOT_FOUND, a call to no method as `other`/UNIMPLEMENTED; anything but
/// GET /metrics is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_path_and_rpcs_are_counted_exactly() {
    let node = metered_node().await;
    create_topic(&node.addr, "metered", 1, 1, &[]).await;
    wait_for_leaders(&node.addr, "metered").await;
    let batches: Vec<Bytes> = (0..4)
        .map(|i| batch_of(&["alpha", "beta", &"x".repeat(100 * i)], now_ms()))
        .collect();
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    for batch in &batches {
        produce_ok(&node.addr, "metered", batch.clone()).await;
    }
    let fetched = client(&node.addr)
        .await
        .fetch(pb::FetchRequest {
            topic: "metered".into(),
            partition: 0,
            offset: 0,
            max_bytes: 0,
            min_bytes: 0,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.next_offset, 12);
    let unknown = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
            .unwrap()
            .connect_lazy(),
    )
    .check(tonic_health::pb::HealthCheckRequest {
        service: "no.such.Service".into(),
    })
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let mut grpc = tonic::client::Grpc::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
            .unwrap()
            .connect_lazy(),
    );
    grpc.ready().await.unwrap();
    let nowhere = grpc
        .unary::<pb::MetadataRequest, pb::MetadataResponse, _>(
            tonic::Request::new(pb::MetadataRequest::default()),
            "/stave.v1.Stave/NoSuchMethod".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(nowhere.code(), tonic::Code::Unimplemented);

    let text = scrape(&node).await;
    let partition = r#"{topic="metered",partition="0"}"#;
    let series = |name: &str| value(&text, &format!("{name}{partition}"));
    assert_eq!(
        series("stave_partition_records_produced_total"),
        Some(12.0),
        "{text}"
    );
    assert_eq!(
        series("stave_partition_bytes_produced_total"),
        Some(bytes as f64),
        "{text}"
    );
    assert_eq!(
        series("stave_partition_records_fetched_total"),
        Some(12.0),
        "{text}"
    );
    assert_eq!(
        series("stave_partition_bytes_fetched_total"),
        Some(bytes as f64),
        "{text}"
    );
    let rpc = |method: &str, code: &str| {
        value(
            &text,
            &format!(r#"stave_rpc_requests_total{{method="{method}",code="{code}"}}"#),
        )
    };
    assert_eq!(rpc("/stave.v1.Stave/Produce", "OK"), Some(4.0), "{text}");
    assert_eq!(rpc("/stave.v1.Stave/Fetch", "OK"), Some(1.0), "{text}");
    assert_eq!(
        rpc("/grpc.health.v1.Health/Check", "NOT_FOUND"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(rpc("other", "UNIMPLEMENTED"), Some(1.0), "{text}");
    assert!(!text.contains("NoSuchMethod"), "{text}");
    let produce_timings = r#"stave_rpc_duration_seconds_count{method="/stave.v1.Stave/Produce"}"#;
    assert_eq!(value(&text, produce_timings), Some(4.0), "{text}");
    assert_eq!(
        value(&text, "stave_raft_commit_duration_seconds_count"),
        Some(4.0),
        "{text}"
    );
    // The node's own replicas and process.
    assert!(
        series("stave_raft_term").is_some_and(|term| term >= 1.0),
        "{text}"
    );
    assert!(
        series("stave_log_segments").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        series("stave_log_size_bytes").is_some_and(|n| n >= bytes as f64),
        "{text}"
    );
    assert!(
        value(&text, r#"stave_raft_term{group="controller"}"#).is_some(),
        "{text}"
    );
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|n| n > 0.0));
    assert!(value(&text, "process_open_fds").is_some_and(|n| n > 0.0));
    assert!(value(&text, "process_threads").is_some_and(|n| n > 0.0));
    assert!(
        text.contains("# TYPE stave_log_fsync_duration_seconds histogram"),
        "{text}"
    );

    for (method, path) in [("GET", "/"), ("GET", "/metrics/x"), ("POST", "/metrics")] {
        let (head, _) = http_get(&node.metrics_addr, method, path).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{method} {path}: {head}");
    }
}

/// A consumer group that committed everything, then stopped while records kept coming:
/// its lag is 0 records and 0 s while caught up, then counts the records it has not read,
/// and the age of the oldest of them keeps rising with time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_groups_lag_in_seconds_rises_as_records_arrive() {
    let node = metered_node().await;
    create_topic(&node.addr, "lagging", 1, 1, &[]).await;
    wait_for_leaders(&node.addr, "lagging").await;
    produce_ok(&node.addr, "lagging", batch_of(&["a", "b", "c"], now_ms())).await;
    let coordinator = commit(&node.addr, "stopped", "lagging", 0, 3).await;
    assert_eq!(coordinator, node.id);
    let labels = r#"{group="stopped",topic="lagging",partition="0"}"#;
    let lag = |text: &str| {
        (
            value(text, &format!("stave_consumer_group_lag_records{labels}")),
            value(text, &format!("stave_consumer_group_lag_seconds{labels}")),
        )
    };
    let caught_up = scrape(&node).await;
    assert_eq!(lag(&caught_up), (Some(0.0), Some(0.0)), "{caught_up}");

    // The oldest unread record was written 5 s ago (by its timestamp), then more arrive.
    produce_ok(&node.addr, "lagging", batch_of(&["d"], now_ms() - 5_000)).await;
    produce_ok(&node.addr, "lagging", batch_of(&["e", "f"], now_ms())).await;
    let behind = scrape(&node).await;
    let (records, first_seconds) = lag(&behind);
    assert_eq!(records, Some(3.0), "{behind}");
    let first_seconds = first_seconds.unwrap();
    assert!(
        (5.0..5.0 + WAIT.as_secs_f64()).contains(&first_seconds),
        "{behind}"
    );
    // Time passes (milliseconds are enough): the same record is older at the next scrape.
    let started = Instant::now();
    loop {
        produce_ok(&node.addr, "lagging", batch_of(&["g"], now_ms())).await;
        let text = scrape(&node).await;
        let (_, seconds) = lag(&text);
        if seconds.unwrap() > first_seconds {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "lag seconds stayed at {first_seconds}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commits `offset` of `topic`/`partition` for `group` through `addr` (from outside the
/// group's membership), once its coordinator exists; answers the coordinator's node id.
async fn commit(addr: &str, group: &str, topic: &str, partition: u32, offset: u64) -> u64 {
    retry(|| async {
        // Finding the coordinator creates `__offsets` on first use.
        let found = client(addr)
            .await
            .find_coordinator(pb::FindCoordinatorRequest {
                group: group.into(),
            })
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        if code(&found.error) != pb::ErrorCode::None {
            return Err(format!("no coordinator yet: {:?}", found.error));
        }
        let answer = client(&found.addr)
            .await
            .commit_offsets(pb::CommitOffsetsRequest {
                group: group.into(),
                offsets: vec![pb::OffsetCommit {
                    topic: topic.into(),
                    partition,
                    offset,
                    metadata: String::new(),
                }],
                member_id: String::new(),
                member_epoch: 0,
            })
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        match code(&answer.error) {
            pb::ErrorCode::None => Ok(found.node_id),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The leader of each partition of `topic`, as `addr` reports it.
async fn leaders(addr: &str, topic: &str) -> Vec<u64> {
    let metadata = client(addr)
        .await
        .metadata(pb::MetadataRequest {
            topics: vec![topic.to_string()],
        })
        .await
        .unwrap()
        .into_inner();
    metadata.topics[0]
        .partitions
        .iter()
        .map(|partition| partition.leader.unwrap())
        .collect()
}

/// On three nodes: a group's coordinator computes the lag of a partition led by another
/// node, reading its oldest unread record there; that node does not count the read as a
/// fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_of_a_partition_led_elsewhere_is_read_there_without_counting_a_fetch() {
    let nodes = metered_cluster(3).await;
    create_topic(&nodes[0].addr, "spread", 3, 1, &[]).await;
    wait_for_leaders(&nodes[0].addr, "spread").await;
    let coordinator = commit(&nodes[0].addr, "far", "spread", 0, 0).await;
    let led = leaders(&nodes[0].addr, "spread").await;
    let partition = led
        .iter()
        .position(|leader| *leader != coordinator)
        .unwrap() as u32;
    let leader = &nodes[(led[partition as usize] - 1) as usize];
    let coordinator = &nodes[(coordinator - 1) as usize];
    produce_to(
        &leader.addr,
        "spread",
        partition,
        batch_of(&["x", "y"], now_ms() - 2_000),
    )
    .await;
    commit(&coordinator.addr, "far", "spread", partition, 0).await;

    let text = scrape(coordinator).await;
    let labels = format!(r#"{{group="far",topic="spread",partition="{partition}"}}"#);
    let records = value(&text, &format!("stave_consumer_group_lag_records{labels}"));
    let seconds = value(&text, &format!("stave_consumer_group_lag_seconds{labels}"));
    assert_eq!(records, Some(2.0), "{text}");
    assert!(seconds.is_some_and(|seconds| seconds >= 2.0), "{text}");
    let at_leader = scrape(leader).await;
    let produced = format!(
        r#"stave_partition_records_produced_total{{topic="spread",partition="{partition}"}}"#
    );
    assert_eq!(value(&at_leader, &produced), Some(2.0), "{at_leader}");
    assert!(
        !at_leader.contains("stave_partition_records_fetched_total{topic=\"spread\""),
        "{at_leader}"
    );
}

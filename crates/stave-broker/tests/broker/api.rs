//! The public API on one node: produce, fetch, offsets, metadata, topic admin, reflection and
//! health, and every bad input answered with its typed error and nothing changed.

use std::time::Duration;

use stave_log::batch::ProducerFields;
use stave_proto::v1 as pb;

use crate::support::{
    batch, client, cluster, code, create_topic, produce, retry, try_produce, values,
};

fn no_producer() -> ProducerFields {
    ProducerFields::NONE
}

async fn fetch(
    addr: &str,
    topic: &str,
    partition: u32,
    offset: u64,
    wait_ms: u32,
) -> pb::FetchResponse {
    client(addr)
        .await
        .fetch(pb::FetchRequest {
            topic: topic.into(),
            partition,
            offset,
            max_bytes: 1 << 20,
            min_bytes: 1,
            max_wait_ms: wait_ms,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_fetch_returns_the_records_in_order() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.orders.placed", 2, 0, &[]).await;

    let first = produce(
        addr,
        "v1.orders.placed",
        1,
        batch(&["a", "b", "c"], no_producer()),
    )
    .await;
    assert_eq!((first.base_offset, first.next_offset), (0, 3));
    let second = produce(addr, "v1.orders.placed", 1, batch(&["d"], no_producer())).await;
    assert_eq!((second.base_offset, second.next_offset), (3, 4));

    let fetched = fetch(addr, "v1.orders.placed", 1, 0, 0).await;
    assert_eq!(code(&fetched.error), pb::ErrorCode::None);
    assert_eq!(values(&fetched.batches), ["a", "b", "c", "d"]);
    assert_eq!(fetched.high_watermark, 4);
    assert_eq!(fetched.next_offset, 4);
    // The other partition is empty; its high watermark is 0.
    let empty = fetch(addr, "v1.orders.placed", 0, 0, 0).await;
    assert!(empty.batches.is_empty());
    assert_eq!(empty.high_watermark, 0);

    let mut api = client(addr).await;
    let offsets = |spec| pb::ListOffsetsRequest {
        topic: "v1.orders.placed".into(),
        partition: 1,
        spec: Some(spec),
    };
    use pb::list_offsets_request::Spec;
    let earliest = api
        .list_offsets(offsets(Spec::Earliest(true)))
        .await
        .unwrap()
        .into_inner();
    let latest = api
        .list_offsets(offsets(Spec::Latest(true)))
        .await
        .unwrap()
        .into_inner();
    let by_time = api
        .list_offsets(offsets(Spec::TimestampMs(
            crate::support::now_ms() - 60_000,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((earliest.offset, latest.offset, by_time.offset), (0, 4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_returns_as_soon_as_a_batch_commits() {
    let nodes = cluster(1).await;
    let addr = nodes[0].addr.clone();
    create_topic(&addr, "v1.events", 1, 0, &[]).await;
    produce(&addr, "v1.events", 0, batch(&["warm-up"], no_producer())).await;

    let waiting = {
        let addr = addr.clone();
        tokio::spawn(async move { fetch(&addr, "v1.events", 0, 1, 20_000).await })
    };
    let started = std::time::Instant::now();
    produce(&addr, "v1.events", 0, batch(&["late"], no_producer())).await;
    let fetched = waiting.await.unwrap();
    assert_eq!(values(&fetched.batches), ["late"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the fetch waited out its max_wait"
    );

    // Nothing to wait for: an empty answer after max_wait.
    let idle = fetch(&addr, "v1.events", 0, 2, 100).await;
    assert_eq!(code(&idle.error), pb::ErrorCode::None);
    assert!(idle.batches.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_idempotent_batch_is_written_once() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.payments", 1, 0, &[]).await;
    let producer = client(addr)
        .await
        .init_producer_id(pb::InitProducerIdRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&producer.error), pb::ErrorCode::None);
    let fields = |sequence| ProducerFields {
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch as i16,
        base_sequence: sequence,
    };
    let first = produce(addr, "v1.payments", 0, batch(&["p1", "p2"], fields(0))).await;
    let retry = produce(addr, "v1.payments", 0, batch(&["p1", "p2"], fields(0))).await;
    assert!(retry.duplicate, "the retry is recognized");
    assert_eq!(
        (retry.base_offset, retry.next_offset),
        (first.base_offset, first.next_offset)
    );
    let next = produce(addr, "v1.payments", 0, batch(&["p3"], fields(2))).await;
    assert_eq!(next.base_offset, 2);
    let gap = try_produce(addr, "v1.payments", 0, batch(&["p9"], fields(9)))
        .await
        .unwrap();
    assert_eq!(code(&gap.error), pb::ErrorCode::OutOfOrderSequence);
    let fetched = fetch(addr, "v1.payments", 0, 0, 0).await;
    assert_eq!(values(&fetched.batches), ["p1", "p2", "p3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_error_code_and_changes_nothing() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(
        addr,
        "v1.user.signedup",
        1,
        0,
        &[("max.message.bytes", "2048")],
    )
    .await;
    let mut api = client(addr).await;
    let create = |name: &str, configs: Vec<pb::ConfigEntry>| pb::CreateTopicsRequest {
        topics: vec![pb::TopicSpec {
            name: name.into(),
            partitions: 1,
            replication_factor: 0,
            configs,
        }],
    };
    let created = |response: pb::CreateTopicsResponse| code(&response.results[0].error);
    let cases = [
        (
            "bad name",
            create("v1 user", vec![]),
            pb::ErrorCode::InvalidTopicName,
        ),
        (
            "reserved",
            create("__offsets", vec![]),
            pb::ErrorCode::ReservedTopicName,
        ),
        (
            "exists",
            create("v1.user.signedup", vec![]),
            pb::ErrorCode::TopicExists,
        ),
        (
            "bad config",
            create(
                "v1.other",
                vec![pb::ConfigEntry {
                    key: "retention.ms".into(),
                    value: "soon".into(),
                }],
            ),
            pb::ErrorCode::InvalidConfig,
        ),
        (
            "too many replicas",
            pb::CreateTopicsRequest {
                topics: vec![pb::TopicSpec {
                    name: "v1.other".into(),
                    partitions: 1,
                    replication_factor: 3,
                    configs: vec![],
                }],
            },
            pb::ErrorCode::NotEnoughNodes,
        ),
    ];
    for (what, request, expected) in cases {
        let answer = created(api.create_topics(request).await.unwrap().into_inner());
        assert_eq!(answer, expected, "{what}");
    }

    let produce_code = |topic: &str, partition: u32, batch: bytes::Bytes| {
        let addr = addr.clone();
        let topic = topic.to_string();
        async move {
            code(
                &try_produce(&addr, &topic, partition, batch)
                    .await
                    .unwrap()
                    .error,
            )
        }
    };
    let good = batch(&["x"], no_producer());
    assert_eq!(
        produce_code("v1.nope", 0, good.clone()).await,
        pb::ErrorCode::UnknownTopic
    );
    assert_eq!(
        produce_code("v1.user.signedup", 7, good.clone()).await,
        pb::ErrorCode::UnknownPartition
    );
    let big = "y".repeat(4000);
    assert_eq!(
        produce_code("v1.user.signedup", 0, batch(&[&big], no_producer())).await,
        pb::ErrorCode::MessageTooLarge
    );
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce_code("v1.user.signedup", 0, corrupt.into()).await,
        pb::ErrorCode::CorruptBatch
    );
    assert_eq!(
        produce_code(
            "v1.user.signedup",
            0,
            bytes::Bytes::from_static(b"not a batch")
        )
        .await,
        pb::ErrorCode::CorruptBatch
    );
    // (The checks above need no leader; a fetch does, and it may still be being elected.)
    let beyond = retry(|| async {
        let answer = fetch(addr, "v1.user.signedup", 0, 5, 0).await;
        match code(&answer.error) {
            pb::ErrorCode::LeaderNotAvailable => Err(format!("{answer:?}")),
            _ => Ok(answer),
        }
    })
    .await;
    assert_eq!(code(&beyond.error), pb::ErrorCode::OffsetOutOfRange);

    // Nothing changed: the topic is empty, and the refused topics do not exist.
    let fetched = fetch(addr, "v1.user.signedup", 0, 0, 0).await;
    assert!(fetched.batches.is_empty());
    let metadata = api
        .metadata(pb::MetadataRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = metadata.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["v1.user.signedup"]);
}

/// Issue 15's repro: a `ProduceRequest` whose `batch` holds one valid frame followed by
/// anything (one zero byte, or two frames joined as a fetch returns them) is answered
/// CORRUPT_BATCH, and the partition keeps taking writes. Before the fix the broker checked
/// only the first frame, Raft took the whole buffer, the log refused it, and the partition's
/// group stopped: every later produce failed with INTERNAL until the node restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_anything_after_it_is_refused_and_the_partition_keeps_working() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.user.signup", 1, 0, &[]).await;
    produce(addr, "v1.user.signup", 0, batch(&["first"], no_producer())).await;

    let one = batch(&["one"], no_producer());
    let plus_zero = [one.to_vec(), vec![0]].concat();
    let joined = [one.to_vec(), batch(&["two"], no_producer()).to_vec()].concat();
    let control = stave_log::frame::encode_control_frame(stave_log::frame::FrameType::Blank, b"");
    for (what, bad) in [
        ("one zero byte after", plus_zero),
        ("two frames", joined),
        ("a control frame", control),
    ] {
        let answer = try_produce(addr, "v1.user.signup", 0, bad.into())
            .await
            .unwrap();
        assert_eq!(
            code(&answer.error),
            pb::ErrorCode::CorruptBatch,
            "{what}: {answer:?}"
        );
        let next = produce(addr, "v1.user.signup", 0, batch(&[what], no_producer())).await;
        assert!(
            next.error.is_none(),
            "{what}: the partition stopped taking writes"
        );
    }
    let fetched = fetch(addr, "v1.user.signup", 0, 0, 0).await;
    assert_eq!(
        values(&fetched.batches),
        [
            "first",
            "one zero byte after",
            "two frames",
            "a control frame"
        ]
    );
}

/// A fetch asking for more bytes than a gRPC message can carry is clamped, so a consumer
/// behind a backlog larger than 16 MiB still progresses (before: OUT_OF_RANGE, "encoded
/// message length too large", on every try).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_asking_for_more_than_a_message_holds_is_clamped() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.backlog", 1, 0, &[("flush", "never")]).await;
    let value = "v".repeat(100_000);
    let values_per_batch = [value.as_str(); 10];
    let batches = 18;
    for _ in 0..batches {
        produce(
            addr,
            "v1.backlog",
            0,
            batch(&values_per_batch, no_producer()),
        )
        .await;
    }
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let mut api = pb::stave_client::StaveClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(16 << 20);
    let mut offset = 0;
    let mut answers = 0;
    while offset < batches * 10 {
        let answer = api
            .fetch(pb::FetchRequest {
                topic: "v1.backlog".into(),
                partition: 0,
                offset,
                max_bytes: u32::MAX,
                min_bytes: 0,
                max_wait_ms: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None);
        assert!(answer.batches.len() <= (16 << 20) - (64 << 10));
        assert!(answer.next_offset > offset, "the consumer did not progress");
        offset = answer.next_offset;
        answers += 1;
    }
    assert!(answers >= 2, "more than 16 MiB came in {answers} answer(s)");
}

/// Scenario: a tool that knows nothing of Stave asks a node what it serves (gRPC reflection,
/// v1 and v1alpha, as grpcurl does) and whether it is up (the standard health service).
/// Proves: reflection lists `stave.v1.Stave` and health, and returns the descriptor of the
/// file that defines `stave.v1.PublishRecord`; health answers SERVING for the node and for
/// `stave.v1.Stave`, and NOT_FOUND for a service the node does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_and_health_answer_tools_that_know_nothing_of_stave() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::{v1, v1alpha};

    let nodes = cluster(1).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", nodes[0].addr))
        .unwrap()
        .connect_lazy();
    let reflection = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let ask = |request| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let asks = vec![
        ask(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ask(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "stave.v1.PublishRecord".into(),
            ),
        ),
    ];
    let mut answers = retry(|| {
        let mut reflection = reflection.clone();
        let asks = asks.clone();
        async move {
            reflection
                .server_reflection_info(tokio_stream::iter(asks))
                .await
                .map_err(|status| status.to_string())
        }
    })
    .await
    .into_inner();
    let listed = answers.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        listed.message_response
    else {
        panic!("not a list: {listed:?}");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    for wanted in ["stave.v1.Stave", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in {names:?}"
        );
    }
    let file = answers.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(file)) =
        file.message_response
    else {
        panic!("not a descriptor: {file:?}");
    };
    assert!(!file.file_descriptor_proto.is_empty());
    let described = String::from_utf8_lossy(&file.file_descriptor_proto[0]).into_owned();
    assert!(described.contains("PublishRecord"), "{described:?}");

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let listed = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert!(format!("{listed:?}").contains("stave.v1.Stave"));

    let mut health = HealthClient::new(channel);
    for service in ["", "stave.v1.Stave"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

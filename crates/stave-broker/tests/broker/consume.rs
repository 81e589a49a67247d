//! Consume: records pushed over a stream, with credits, commits and consumer groups, spoken
//! to with nothing but the generated stubs (no batch codec, no Stave client) except where a
//! test puts a Rust-client member in the same group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use stave_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::support::{
    Link, Proxy, WAIT, client, cluster, code, create_topic, retriable, retry, wait_for_leaders,
};

/// A Consume stream: what the test sends, and what the node pushes.
struct Stream {
    send: mpsc::Sender<pb::ConsumeRequest>,
    pushed: Streaming<pb::ConsumeResponse>,
}

fn subscribe(topics: &[&str], group: &str, start: pb::subscribe::Start) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Subscribe(pb::Subscribe {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            group: group.into(),
            start: Some(start),
            ..Default::default()
        })),
    }
}

fn credit(records: u32) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Credit(pb::Credit {
            records,
            bytes: 0,
        })),
    }
}

fn commit(id: u64, offsets: &[(&str, u32, u64)]) -> pb::ConsumeRequest {
    pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Commit(pb::Commit {
            id,
            offsets: offsets
                .iter()
                .map(|(topic, partition, offset)| pb::CommitOffset {
                    topic: topic.to_string(),
                    partition: *partition,
                    offset: *offset,
                })
                .collect(),
        })),
    }
}

impl Stream {
    async fn open(addr: &str, first: pb::ConsumeRequest) -> Stream {
        let (send, requests) = mpsc::channel(16);
        send.send(first).await.unwrap();
        let pushed = client(addr)
            .await
            .consume(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Stream { send, pushed }
    }

    async fn send(&self, request: pb::ConsumeRequest) {
        self.send.send(request).await.unwrap();
    }

    /// The next pushed message, within `within`.
    async fn next_within(&mut self, within: Duration) -> Option<pb::consume_response::Response> {
        match tokio::time::timeout(within, self.pushed.message()).await {
            Ok(Ok(Some(message))) => message.response,
            Ok(Ok(None)) => None,
            Ok(Err(status)) => panic!("the stream failed: {status}"),
            Err(_) => None,
        }
    }

    /// Pushed records until `count` came (assignment changes and commit answers skipped).
    async fn records(&mut self, count: usize) -> Vec<pb::ConsumedRecord> {
        let mut records = Vec::new();
        while records.len() < count {
            match self.next_within(WAIT).await {
                Some(pb::consume_response::Response::Records(pushed)) => {
                    records.extend(pushed.records)
                }
                Some(pb::consume_response::Response::Error(error)) => panic!("{error:?}"),
                Some(_) => {}
                None => panic!("{} of {count} records came", records.len()),
            }
        }
        records
    }
}

/// Publishes `records` until none is answered with a retriable code; their answers.
async fn publish_all(addr: &str, records: Vec<pb::PublishRecord>) -> Vec<pb::PublishResult> {
    let api = client(addr).await;
    retry(|| {
        let mut api = api.clone();
        let request = pb::PublishRequest {
            records: records.clone(),
            sequence: 0,
        };
        async move {
            let results = api
                .publish(request)
                .await
                .map_err(|s| s.to_string())?
                .into_inner()
                .results;
            match results.iter().find(|r| retriable(code(&r.error))) {
                Some(r) => Err(format!("{r:?}")),
                None => Ok(results),
            }
        }
    })
    .await
}

fn keyed(topic: &str, key: &str, value: &str, headers: &[(&str, &str)]) -> pb::PublishRecord {
    pb::PublishRecord {
        topic: topic.into(),
        key: Some(Bytes::from(key.to_string())),
        value: Bytes::from(value.to_string()),
        headers: headers
            .iter()
            .map(|(k, v)| pb::Header {
                key: k.to_string(),
                value: Bytes::from(v.to_string()),
            })
            .collect(),
        ..Default::default()
    }
}

/// A record as sent, to compare with one read: (key, value, headers without the id).
fn sent_form(record: &pb::PublishRecord) -> (Option<Bytes>, Bytes, Vec<(String, Bytes)>) {
    let headers = record
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    (record.key.clone(), record.value.clone(), headers)
}

fn read_form(record: &pb::ConsumedRecord) -> (Option<Bytes>, Bytes, Vec<(String, Bytes)>) {
    let headers = record
        .headers
        .iter()
        .filter(|h| h.key != "id")
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    (record.key.clone(), record.value.clone(), headers)
}

/// Scenario: with nothing but the generated stubs, a service publishes 20 keyed records with
/// headers to a 3-partition topic, then reads them back twice: through a consumer group
/// (from the earliest offset), and without a group from partition 1 only. Proves: each
/// stream delivers exactly what was sent (keys, values, headers, the id the node gave each
/// record, offsets as Publish answered), each partition in offset order; the explicit one
/// delivers partition 1's records and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stub_only_client_reads_back_what_it_published() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.user.signedup", 3, 1, &[]).await;
    // Records without ids are written again when a request is retried whole: every
    // partition must lead before the first attempt.
    wait_for_leaders(addr, "v1.user.signedup").await;
    let sent: Vec<pb::PublishRecord> = (0..20)
        .map(|i| {
            let headers = [("source", "signup"), ("trace", "t")];
            keyed(
                "v1.user.signedup",
                &format!("u{i}"),
                &format!("user {i}"),
                &headers,
            )
        })
        .collect();
    let results = publish_all(addr, sent.clone()).await;
    let by_place: BTreeMap<(u32, u64), usize> = results
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.partition, r.offset), i))
        .collect();

    let mut grouped = Stream::open(
        addr,
        subscribe(
            &["v1.user.#"],
            "signup-mailer",
            pb::subscribe::Start::Earliest(true),
        ),
    )
    .await;
    grouped.send(credit(1_000)).await;
    let read = grouped.records(20).await;
    let mut last = BTreeMap::new();
    for record in &read {
        let index = by_place[&(record.partition, record.offset)];
        assert_eq!(read_form(record), sent_form(&sent[index]));
        let id = record.headers.iter().find(|h| h.key == "id").unwrap();
        assert_eq!(id.value, Bytes::from(results[index].id.clone()));
        if let Some(before) = last.insert(record.partition, record.offset) {
            assert!(record.offset > before, "in order within a partition");
        }
    }
    assert_eq!(read.len(), 20);

    let mut explicit = Stream::open(
        addr,
        pb::ConsumeRequest {
            request: Some(pb::consume_request::Request::Subscribe(pb::Subscribe {
                topics: vec!["v1.user.signedup".into()],
                partitions: vec![1],
                start: Some(pb::subscribe::Start::Offset(0)),
                ..Default::default()
            })),
        },
    )
    .await;
    explicit.send(credit(1_000)).await;
    let on_one = results.iter().filter(|r| r.partition == 1).count();
    let read = explicit.records(on_one).await;
    assert!(read.iter().all(|r| r.partition == 1));
    let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..on_one as u64).collect::<Vec<_>>());
    assert!(
        explicit
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

/// Scenario: a stream grants 10 records of a topic holding 30, then 5 more. Proves: it gets
/// exactly 10, nothing more while it grants nothing, then exactly 5 more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_bound_what_is_pushed() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.metrics", 1, 1, &[]).await;
    let records = (0..30)
        .map(|i| keyed("v1.metrics", "k", &i.to_string(), &[]))
        .collect();
    publish_all(addr, records).await;
    let mut stream = Stream::open(
        addr,
        subscribe(&["v1.metrics"], "", pb::subscribe::Start::Earliest(true)),
    )
    .await;
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "no credit yet"
    );
    stream.send(credit(10)).await;
    assert_eq!(stream.records(10).await.len(), 10);
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "past the credit"
    );
    stream.send(credit(5)).await;
    let more = stream.records(5).await;
    assert_eq!(more.len(), 5);
    assert_eq!(more[0].offset, 10);
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "past the credit"
    );
}

/// Each Assignment message pushed in `within`, applied to `held` (partition → the offset it
/// was assigned at).
async fn follow_assignment(stream: &mut Stream, held: &mut BTreeMap<u32, u64>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while let Some(message) = stream
        .next_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        if let pb::consume_response::Response::Assignment(change) = message {
            held.extend(change.assigned.iter().map(|p| (p.partition, p.offset)));
            for gone in change.revoked.iter().chain(&change.lost) {
                held.remove(&gone.partition);
            }
        }
    }
}

/// Scenario: two Consume streams and a Rust-client consumer join one group on a 6-partition
/// topic; then one stream commits an offset, and ends. Proves: the three members hold
/// disjoint shares that cover every partition; a commit for a partition the stream does not
/// hold is refused (INVALID_REQUEST) while one it holds is taken; when the stream ends, its
/// partitions move to the others, which resume at its committed offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_streams_and_a_rust_member_share_one_group() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.order.placed", 6, 1, &[]).await;
    wait_for_leaders(addr, "v1.order.placed").await;
    let records = (0..60)
        .map(|i| keyed("v1.order.placed", &format!("c{i}"), &i.to_string(), &[]))
        .collect();
    publish_all(addr, records).await;

    let rust = stave_client::Client::connect(stave_client::ClientConfig {
        bootstrap: vec![addr.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut member = rust.consumer(stave_client::ConsumerConfig {
        start_without_commit: stave_client::StartPosition::Earliest,
        ..Default::default()
    });
    member
        .subscribe("billing", &["v1.order.placed"])
        .await
        .unwrap();
    let (changes, mut rust_changes) = mpsc::unbounded_channel();
    member.on_assignment_change(move |change| {
        let _ = changes.send(change.clone());
    });
    let mut rust_held: BTreeMap<u32, u64> = BTreeMap::new();
    let mut follow_rust = move |held: &mut BTreeMap<u32, u64>| {
        while let Ok(change) = rust_changes.try_recv() {
            match change {
                stave_client::AssignmentChange::Assigned { partitions, .. } => {
                    held.extend(partitions.iter().map(|(_, p, offset)| (*p, *offset)));
                }
                stave_client::AssignmentChange::Revoked { partitions, .. }
                | stave_client::AssignmentChange::Lost { partitions } => {
                    for (_, p) in partitions {
                        held.remove(&p);
                    }
                }
            }
        }
    };
    let earliest = || {
        subscribe(
            &["v1.order.placed"],
            "billing",
            pb::subscribe::Start::Earliest(true),
        )
    };
    let mut first = Stream::open(addr, earliest()).await;
    let mut second = Stream::open(addr, earliest()).await;
    let (mut held_first, mut held_second) = (BTreeMap::new(), BTreeMap::new());
    let started = std::time::Instant::now();
    loop {
        // The Rust member reads (and so takes part in the group) while the streams settle.
        let _ = member.poll(Duration::from_millis(50)).await;
        follow_rust(&mut rust_held);
        follow_assignment(&mut first, &mut held_first, Duration::from_millis(100)).await;
        follow_assignment(&mut second, &mut held_second, Duration::from_millis(100)).await;
        let all: Vec<u32> = held_first
            .keys()
            .chain(held_second.keys())
            .chain(rust_held.keys())
            .copied()
            .collect();
        let settled = all.len() == 6
            && all.iter().collect::<BTreeSet<_>>().len() == 6
            && !held_first.is_empty()
            && !held_second.is_empty()
            && !rust_held.is_empty();
        if settled {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{held_first:?} {held_second:?} {rust_held:?}"
        );
    }

    let mine = *held_first.keys().next().unwrap();
    let not_mine = *held_second.keys().next().unwrap();
    first
        .send(commit(1, &[("v1.order.placed", not_mine, 1)]))
        .await;
    first.send(commit(2, &[("v1.order.placed", mine, 3)])).await;
    let mut answers = BTreeMap::new();
    while answers.len() < 2 {
        match first.next_within(WAIT).await {
            Some(pb::consume_response::Response::Committed(done)) => {
                answers.insert(done.id, code(&done.error));
            }
            Some(_) => {}
            None => panic!("no commit answers: {answers:?}"),
        }
    }
    assert_eq!(answers[&1], pb::ErrorCode::InvalidRequest);
    assert_eq!(answers[&2], pb::ErrorCode::None);

    drop(first);
    let started = std::time::Instant::now();
    let resumed_at = loop {
        let _ = member.poll(Duration::from_millis(50)).await;
        follow_rust(&mut rust_held);
        follow_assignment(&mut second, &mut held_second, Duration::from_millis(100)).await;
        if let Some(at) = held_second.get(&mine).or(rust_held.get(&mine)) {
            break *at;
        }
        assert!(started.elapsed() < WAIT, "partition {mine} never moved");
    };
    assert_eq!(
        resumed_at, 3,
        "partition {mine} resumes at its committed offset"
    );
}

/// Scenario: streams that break the rules: a first message that is not a subscribe, a
/// subscribe with a group and explicit partitions, one with no topics, one naming an unknown
/// topic without a group, and a second subscribe. Proves: each gets a pushed typed error
/// (INVALID_REQUEST, or UNKNOWN_TOPIC) and its stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_break_the_rules_get_a_typed_error() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.audit", 1, 1, &[]).await;
    let with = |subscribe: pb::Subscribe| pb::ConsumeRequest {
        request: Some(pb::consume_request::Request::Subscribe(subscribe)),
    };
    let cases = [
        (credit(5), pb::ErrorCode::InvalidRequest),
        (
            with(pb::Subscribe {
                topics: vec!["v1.audit".into()],
                group: "g".into(),
                partitions: vec![0],
                ..Default::default()
            }),
            pb::ErrorCode::InvalidRequest,
        ),
        (
            with(pb::Subscribe::default()),
            pb::ErrorCode::InvalidRequest,
        ),
        (
            with(pb::Subscribe {
                topics: vec!["v1.nothing".into()],
                ..Default::default()
            }),
            pb::ErrorCode::UnknownTopic,
        ),
    ];
    for (first, expected) in cases {
        let mut stream = Stream::open(addr, first).await;
        match stream.next_within(WAIT).await {
            Some(pb::consume_response::Response::Error(error)) => {
                assert_eq!(code(&Some(error)), expected)
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert!(stream.next_within(WAIT).await.is_none(), "the stream ends");
    }
    let mut twice = Stream::open(
        addr,
        subscribe(&["v1.audit"], "", pb::subscribe::Start::Latest(true)),
    )
    .await;
    twice
        .send(subscribe(
            &["v1.audit"],
            "",
            pb::subscribe::Start::Latest(true),
        ))
        .await;
    match twice.next_within(WAIT).await {
        Some(pb::consume_response::Response::Error(error)) => {
            assert_eq!(code(&Some(error)), pb::ErrorCode::InvalidRequest)
        }
        other => panic!("a second subscribe: {other:?}"),
    }
}

/// Scenario: a client sends a subscribe and a credit of 3 records, then ends its side (as
/// grpcurl does when its input ends), on a topic holding 5. Proves: it gets exactly 3
/// records, then the stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_ended_its_side_gets_its_credit_then_the_end() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.audit", 1, 1, &[]).await;
    let records = (0..5)
        .map(|i| keyed("v1.audit", "k", &i.to_string(), &[]))
        .collect();
    publish_all(addr, records).await;
    let requests = vec![
        subscribe(&["v1.audit"], "", pb::subscribe::Start::Earliest(true)),
        credit(3),
    ];
    let mut pushed = client(addr)
        .await
        .consume(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, pushed.message()).await;
        match message.expect("the stream ends").unwrap() {
            Some(pb::ConsumeResponse {
                response: Some(pb::consume_response::Response::Records(records)),
            }) => read.extend(records.records),
            Some(other) => panic!("{other:?}"),
            None => break,
        }
    }
    let values: Vec<Bytes> = read.into_iter().map(|r| r.value).collect();
    assert_eq!(values, [&b"0"[..], b"1", b"2"].map(Bytes::from_static));
}

/// Scenario: a stream joins a group on an empty topic with credit to spare (as a service
/// that waits for its partitions before anything is written). Proves: its assignment is
/// pushed while no record exists (it used to wait for the first record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_is_pushed_before_any_record_exists() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.quiet", 3, 1, &[]).await;
    let mut stream = Stream::open(
        addr,
        subscribe(&["v1.quiet"], "waiters", pb::subscribe::Start::Latest(true)),
    )
    .await;
    stream.send(credit(100)).await;
    let mut held = BTreeMap::new();
    let started = std::time::Instant::now();
    while held.len() < 3 {
        follow_assignment(&mut stream, &mut held, Duration::from_millis(200)).await;
        assert!(started.elapsed() < WAIT, "assigned so far: {held:?}");
    }
}

/// Scenario: two Consume streams share a group on a 4-partition topic; one of them reaches
/// the node through a proxy. It commits an offset for a partition it holds, then its link goes
/// silent: no byte passes either way and no connection is closed (the client's host is gone).
/// Proves: the node finds the dead connection and the stream's member leaves, so within the
/// session timeout its partitions move to the other stream, at the committed offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_link_died_silently_hands_its_partitions_on() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.audit.logged", 4, 1, &[]).await;
    wait_for_leaders(addr, "v1.audit.logged").await;
    let proxy = Proxy::start(addr).await;
    let earliest = || {
        subscribe(
            &["v1.audit.logged"],
            "audit",
            pb::subscribe::Start::Earliest(true),
        )
    };
    let mut doomed = Stream::open(&proxy.addr, earliest()).await;
    let mut survivor = Stream::open(addr, earliest()).await;
    let (mut held_doomed, mut held_survivor) = (BTreeMap::new(), BTreeMap::new());
    let started = std::time::Instant::now();
    loop {
        follow_assignment(&mut doomed, &mut held_doomed, Duration::from_millis(100)).await;
        follow_assignment(
            &mut survivor,
            &mut held_survivor,
            Duration::from_millis(100),
        )
        .await;
        let all: BTreeSet<u32> = held_doomed
            .keys()
            .chain(held_survivor.keys())
            .copied()
            .collect();
        let disjoint = held_doomed.len() + held_survivor.len() == all.len();
        if all.len() == 4 && disjoint && !held_doomed.is_empty() && !held_survivor.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{held_doomed:?} {held_survivor:?}"
        );
    }
    let mine = *held_doomed.keys().next().unwrap();
    doomed
        .send(commit(1, &[("v1.audit.logged", mine, 2)]))
        .await;
    loop {
        match doomed.next_within(WAIT).await {
            Some(pb::consume_response::Response::Committed(done)) => {
                assert_eq!(code(&done.error), pb::ErrorCode::None);
                break;
            }
            Some(_) => {}
            None => panic!("the commit was not answered"),
        }
    }

    proxy.set(Link::Silent);
    let silent_since = std::time::Instant::now();
    let resumed_at = loop {
        follow_assignment(
            &mut survivor,
            &mut held_survivor,
            Duration::from_millis(200),
        )
        .await;
        if let Some(at) = held_survivor.get(&mine) {
            break *at;
        }
        assert!(
            silent_since.elapsed() < WAIT,
            "partition {mine} stayed with the dead stream"
        );
    };
    assert_eq!(
        resumed_at, 2,
        "partition {mine} resumes at its committed offset"
    );
    assert_eq!(held_survivor.len(), 4, "{held_survivor:?}");
    println!(
        "partitions moved {:?} after the link went silent",
        silent_since.elapsed()
    );
    drop(doomed);
}

/// Scenario: two Consume streams share a group on an empty 2-partition topic, each with
/// credit to spare; one of them is dropped by its client (the call cancelled) while it waits
/// for records. Proves: the node notices at once, although it has nothing to push: the
/// stream's member leaves and the other stream is given both partitions well before a
/// session timeout would pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cancelled_while_it_waits_for_records_leaves_at_once() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.idle.checked", 2, 1, &[]).await;
    wait_for_leaders(addr, "v1.idle.checked").await;
    let earliest = || {
        subscribe(
            &["v1.idle.checked"],
            "idlers",
            pb::subscribe::Start::Earliest(true),
        )
    };
    let mut leaving = Stream::open(addr, earliest()).await;
    let mut staying = Stream::open(addr, earliest()).await;
    leaving.send(credit(100)).await;
    staying.send(credit(100)).await;
    let (mut held_leaving, mut held_staying) = (BTreeMap::new(), BTreeMap::new());
    let started = std::time::Instant::now();
    while held_leaving.len() != 1 || held_staying.len() != 1 {
        follow_assignment(&mut leaving, &mut held_leaving, Duration::from_millis(100)).await;
        follow_assignment(&mut staying, &mut held_staying, Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < WAIT,
            "{held_leaving:?} {held_staying:?}"
        );
    }
    drop(leaving);
    let cancelled = std::time::Instant::now();
    while held_staying.len() < 2 {
        follow_assignment(&mut staying, &mut held_staying, Duration::from_millis(100)).await;
        assert!(
            cancelled.elapsed() < Duration::from_secs(8),
            "the cancelled stream kept its partition: {held_staying:?}"
        );
    }
}

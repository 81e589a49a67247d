//! Defects the fuzz found, each minimised into a named test that fails without its fix.

use std::time::Duration;

use stave_proto::v1 as pb;

use super::harness;
use crate::support::{Node, client, code, create_topic, retry};

/// Runs `test` against `count` nodes served on their own runtime (panics there counted), so
/// a node stuck on its threads fails the test by its timeouts instead of hanging it.
fn with_nodes<F, Fut>(threads: &str, count: u64, test: F)
where
    F: FnOnce(Vec<Node>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let nodes = harness::NodeRuntime::new(threads);
    let driver = harness::driver_runtime();
    driver.block_on(test(nodes.cluster(count)));
    drop(nodes);
    let panics = harness::panics_seen(threads);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");
}

/// The deepest topic name: 125 one-letter words, 249 bytes.
fn deep_name() -> String {
    vec!["a"; 125].join(".")
}

/// The coordinator of `group`, asked of `addr` until the cluster can answer.
async fn coordinator(addr: &str, group: &str) -> String {
    retry(|| async {
        let answer = client(addr)
            .await
            .find_coordinator(pb::FindCoordinatorRequest {
                group: group.into(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        match code(&answer.error) {
            pb::ErrorCode::None => Ok(answer.addr),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Scenario: a topic with the deepest name exists, and a consumer joins its group with the
/// subscription `#.#.….#.nomatch` (24 `#`). Proves: the coordinator answers at once, and
/// keeps answering. Found by the fuzz (seed 3, case 688): the pattern matcher backtracked
/// through every way to share the name's 125 words among the `#`s, holding the groups lock
/// on a runtime worker, and the whole node stopped answering.
#[test]
fn a_pattern_of_many_hashes_does_not_stall_the_coordinator() {
    with_nodes("fuzz-reg-pattern", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        create_topic(addr, &deep_name(), 1, 1, &[("flush", "never")]).await;
        let coordinator = coordinator(addr, "fuzz-ünïcode").await;
        let mut hashes = vec!["#"; 24];
        hashes.push("nomatch");
        let join = pb::GroupHeartbeatRequest {
            group: "fuzz-ünïcode".into(),
            subscription: vec![hashes.join("."), "fuzz.#".into()],
            ..Default::default()
        };
        let mut api = client(&coordinator).await;
        let answer = tokio::time::timeout(Duration::from_secs(20), api.group_heartbeat(join))
            .await
            .expect("the coordinator answers")
            .unwrap()
            .into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
        assert!(!answer.member_id.is_empty());
        // A pattern longer than any useful one is refused, not matched.
        let long = pb::GroupHeartbeatRequest {
            group: "fuzz-ünïcode".into(),
            subscription: vec!["*.".repeat(10_000) + "*"],
            ..Default::default()
        };
        let refused = api.group_heartbeat(long).await.unwrap().into_inner();
        assert_eq!(code(&refused.error), pb::ErrorCode::InvalidRequest);
    });
}

/// Scenario: on a 3-node cluster, a group whose coordinator does not lead the topic's one
/// partition is reset with that partition named 1,000 times (`to: offset`). Proves: the reset
/// answers within the fuzz's call limit, with one committed offset per partition. Found by the
/// fuzz (seed 2, case 1005): every entry was looked up again (two calls to the partition's
/// leader each), so one small request made 2,000 sequential calls and took over 20 s.
#[test]
fn a_reset_naming_a_partition_many_times_looks_it_up_once() {
    with_nodes("fuzz-reg-reset", 3, |nodes| async move {
        let addr = nodes[0].addr.clone();
        create_topic(&addr, "fuzz.reset", 1, 3, &[("flush", "never")]).await;
        let leader = retry(|| {
            let addr = addr.clone();
            async move {
                let answer = client(&addr)
                    .await
                    .metadata(pb::MetadataRequest {
                        topics: vec!["fuzz.reset".into()],
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let leader = answer.topics[0].partitions[0].leader;
                let node = answer.nodes.iter().find(|n| Some(n.id) == leader);
                node.map(|n| n.addr.clone())
                    .ok_or("no leader yet".to_string())
            }
        })
        .await;
        // A group coordinated elsewhere than the partition's leader.
        let mut found = None;
        for candidate in 0..64 {
            let group = format!("reset-{candidate}");
            let coordinator = coordinator(&addr, &group).await;
            if coordinator != leader {
                found = Some((group, coordinator));
                break;
            }
        }
        let (group, coordinator) = found.expect("some group is coordinated elsewhere");
        let reset = pb::ResetOffsetsRequest {
            group,
            topic: "fuzz.reset".into(),
            partitions: vec![0; 1000],
            to: Some(pb::reset_offsets_request::To::Offset(0)),
        };
        let mut api = client(&coordinator).await;
        let answer = tokio::time::timeout(harness::CALL_MAX, api.reset_offsets(reset))
            .await
            .expect("the reset answers in time")
            .unwrap()
            .into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
        assert_eq!(answer.offsets.len(), 1, "one offset per partition");
    });
}

/// A model partition's Raft group id and its leader's vote, as the nodes' `Leaderships`
/// say (what any client of the internal services can learn).
async fn model_group(raft: &super::internal::Internal) -> (u64, super::internal::Vote) {
    let started = std::time::Instant::now();
    loop {
        let leaders = raft.leaders().await.unwrap();
        // The first topic created (the plain model topic) has incarnation 1: group 1 << 20.
        if let Some(vote) = leaders.get(&(1 << 20)) {
            return (1 << 20, *vote);
        }
        assert!(
            started.elapsed() < harness::HEAL_MAX,
            "no leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After a forged call: no node panicked, and every model partition takes a write with its
/// three replicas in sync.
async fn still_whole(ctx: &super::Ctx, raft: &super::internal::Internal, threads: &str) {
    let panics = harness::panics_seen(threads);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");
    let mut rng = rand::SeedableRng::seed_from_u64(7);
    super::internal::healthy(ctx, raft, &mut rng).await.unwrap();
}

/// Scenario: a client sends a partition's leader a heartbeat in the leader's own name (its
/// term, its node id, committed). Proves: the transport refuses it and the group runs on.
/// Found by the internal fuzz (case 5): openraft took the follower's path on its leader,
/// whose debug assertion panicked the group's Raft task (in a release build the leader
/// would have appended as a follower).
#[test]
fn an_append_in_the_leaders_own_name_is_refused() {
    const THREADS: &str = "fuzz-reg-own-name";
    with_nodes(THREADS, 3, |nodes| async move {
        let ctx = super::start(nodes).await;
        let raft = super::internal::Internal::new(&ctx);
        let (group_id, vote) = model_group(&raft).await;
        let leader = raft.index_of(vote.leader);
        let heartbeat = stave_proto::internal::raft::HeartbeatBatch {
            heartbeats: vec![stave_proto::internal::raft::Heartbeat {
                group_id,
                append: Some(stave_proto::internal::raft::AppendEntries {
                    vote: Some(vote.leaders()),
                    prev_log_id: Some(stave_proto::internal::raft::LogId {
                        term: vote.term,
                        index: 1 << 62,
                    }),
                    entries: vec![],
                    leader_commit: None,
                }),
            }],
        };
        let answer = raft.control[leader]
            .clone()
            .heartbeats(heartbeat)
            .await
            .unwrap()
            .into_inner();
        let refused = matches!(
            answer.results[0].result,
            Some(stave_proto::internal::raft::heartbeat_result::Result::Failure(_))
        );
        assert!(refused, "{answer:?}");
        still_whole(&ctx, &raft, THREADS).await;
    });
}

/// Scenario: a client sends a partition's follower an append whose vote is one term ahead
/// of the group's and not committed (no leader sends that: a leader's vote is committed).
/// Proves: the transport refuses it and the group runs on. Found by the internal fuzz (case
/// 28): openraft took the vote, then its debug assertion that a followed leader's vote is
/// committed panicked the group's Raft task.
#[test]
fn an_append_with_a_vote_not_committed_is_refused() {
    const THREADS: &str = "fuzz-reg-uncommitted";
    with_nodes(THREADS, 3, |nodes| async move {
        let ctx = super::start(nodes).await;
        let raft = super::internal::Internal::new(&ctx);
        let (group_id, vote) = model_group(&raft).await;
        let follower = (0..raft.ids.len())
            .find(|i| raft.ids[*i] != vote.leader)
            .unwrap();
        let append = stave_proto::internal::raft::AppendRequest {
            id: 1,
            group_id,
            append: Some(stave_proto::internal::raft::AppendEntries {
                vote: Some(stave_proto::internal::raft::Vote {
                    term: vote.term + 1,
                    node_id: vote.leader,
                    committed: false,
                }),
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            }),
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        sender.send(append).await.unwrap();
        let mut results = raft.data[follower]
            .clone()
            .append(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        let answer = results.message().await.unwrap().unwrap();
        let refused = matches!(
            answer.result,
            Some(stave_proto::internal::raft::append_result::Result::Failure(
                _
            ))
        );
        assert!(refused, "{answer:?}");
        drop(sender);
        still_whole(&ctx, &raft, THREADS).await;
    });
}

/// Scenario: an append in the name of a partition's current leader (as `Leaderships` tells
/// anyone), at a follower's log end (found with heartbeats, as a leader probes), carrying a
/// data frame with one byte after it (the 8287e3c defect, one hop further), then one with a
/// valid frame two indexes past the log end. Proves: the transport refuses both, and the
/// follower's replica runs on (all three replicas in sync, every write taken). Found by the
/// internal fuzz's forged calls: the follower's log refused the entry openraft had taken, a
/// storage error, which stops the group there; the entry out of sequence trips openraft's
/// assertion that entries follow the previous log id.
#[test]
fn a_malformed_frame_in_an_append_is_refused_by_the_transport() {
    const THREADS: &str = "fuzz-reg-frame";
    with_nodes(THREADS, 3, |nodes| async move {
        let ctx = super::start(nodes).await;
        let raft = super::internal::Internal::new(&ctx);
        let (group_id, vote) = model_group(&raft).await;
        let follower = (0..raft.ids.len())
            .find(|i| raft.ids[*i] != vote.leader)
            .unwrap();
        let last = super::forged::last_index(&raft, follower, group_id, vote).await;
        let mut rng = rand::SeedableRng::seed_from_u64(5);
        let mut frame = super::frames::valid_batch(
            &mut rng,
            super::frames::Size::Small,
            stave_log::batch::ProducerFields::NONE,
        )
        .bytes
        .to_vec();
        frame.push(0);
        let answer = super::forged::heartbeat(
            &raft,
            follower,
            group_id,
            stave_proto::internal::raft::AppendEntries {
                vote: Some(vote.leaders()),
                prev_log_id: Some(stave_proto::internal::raft::LogId {
                    term: vote.term,
                    index: last,
                }),
                entries: vec![stave_proto::internal::raft::Entry {
                    log_id: Some(stave_proto::internal::raft::LogId {
                        term: vote.term,
                        index: last + 1,
                    }),
                    payload: Some(stave_proto::internal::raft::entry::Payload::Frame(
                        frame.into(),
                    )),
                }],
                leader_commit: None,
            },
        )
        .await;
        assert!(answer.contains("Failure"), "{answer}");
        // A valid frame, but out of sequence: two indexes past the follower's log end.
        let valid = super::frames::valid_batch(
            &mut rng,
            super::frames::Size::Small,
            stave_log::batch::ProducerFields::NONE,
        );
        let answer = super::forged::heartbeat(
            &raft,
            follower,
            group_id,
            stave_proto::internal::raft::AppendEntries {
                vote: Some(vote.leaders()),
                prev_log_id: Some(stave_proto::internal::raft::LogId {
                    term: vote.term,
                    index: last,
                }),
                entries: vec![stave_proto::internal::raft::Entry {
                    log_id: Some(stave_proto::internal::raft::LogId {
                        term: vote.term,
                        index: last + 2,
                    }),
                    payload: Some(stave_proto::internal::raft::entry::Payload::Frame(
                        valid.bytes,
                    )),
                }],
                leader_commit: None,
            },
        )
        .await;
        assert!(answer.contains("Failure"), "{answer}");
        still_whole(&ctx, &raft, THREADS).await;
    });
}

/// Scenario: commits to a group's coordinator carrying 100 KB of offset metadata, and a
/// topic name longer than any topic's. Proves: both are refused (INVALID_REQUEST,
/// INVALID_TOPIC_NAME) and nothing is committed, while 4 KB of metadata still goes through.
/// Found by the long fuzz run: every committed entry stays in the `__offsets` table (in
/// memory, cloned whole by every FetchOffsets, DescribeGroup and ListGroups, and in every
/// snapshot), and hostile commits grew the nodes to gigabytes within minutes.
#[test]
fn a_commit_with_oversized_metadata_or_an_impossible_topic_is_refused() {
    with_nodes("fuzz-reg-commit", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        let coordinator = coordinator(addr, "fuzz.g0").await;
        let mut api = client(&coordinator).await;
        let commit = |topic: String, metadata: String| pb::CommitOffsetsRequest {
            group: "fuzz.g0".into(),
            offsets: vec![pb::OffsetCommit {
                topic,
                partition: 0,
                offset: 1,
                metadata,
            }],
            ..Default::default()
        };
        let too_much = api
            .commit_offsets(commit("v1.orders".into(), "m".repeat(100 * 1024)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&too_much.error), pb::ErrorCode::InvalidRequest);
        let impossible = api
            .commit_offsets(commit("y".repeat(100 * 1024), String::new()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&impossible.error), pb::ErrorCode::InvalidTopicName);
        let fine = api
            .commit_offsets(commit("v1.orders".into(), "m".repeat(4096)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&fine.error), pb::ErrorCode::None, "{fine:?}");
        let fetched = api
            .fetch_offsets(pb::FetchOffsetsRequest {
                group: "fuzz.g0".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fetched.offsets.len(), 1, "{:?}", fetched.offsets.len());
        assert_eq!(fetched.offsets[0].metadata.len(), 4096);
    });
}

/// Scenario: a topic is created with `segment.bytes` past 1 GiB (the log's largest segment),
/// and a topic created with 1 GiB is altered to 2^64 - 1. Proves: both are refused
/// (INVALID_CONFIG) and change nothing: the first topic does not exist, the second keeps its
/// setting and takes writes. Found by the long fuzz run (seed 1592651810, case 60664): the
/// broker stored any `segment.bytes` of at least 64 KiB, every replica of the topic then
/// failed to open its log (1 GiB at most), and the partitions never had a leader; an alter
/// would have done the same to a working topic at its next restart.
#[test]
fn a_segment_size_the_log_refuses_is_refused_by_the_broker() {
    with_nodes("fuzz-reg-segment", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        let mut api = client(addr).await;
        let spec = |name: &str, segment_bytes: &str| pb::TopicSpec {
            name: name.into(),
            partitions: 1,
            replication_factor: 1,
            configs: vec![pb::ConfigEntry {
                key: "segment.bytes".into(),
                value: segment_bytes.into(),
            }],
        };
        let create = |spec: pb::TopicSpec| pb::CreateTopicsRequest { topics: vec![spec] };
        let answer = retry(|| {
            let mut api = api.clone();
            let request = create(spec("v1.too.large", &((1u64 << 30) + 1).to_string()));
            async move {
                let results = api
                    .create_topics(request)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner()
                    .results;
                match code(&results[0].error) {
                    c if crate::support::retriable(c) => Err(format!("{results:?}")),
                    other => Ok(other),
                }
            }
        })
        .await;
        assert_eq!(answer, pb::ErrorCode::InvalidConfig);

        let largest = (1u64 << 30).to_string();
        create_topic(addr, "v1.largest", 1, 1, &[("segment.bytes", &largest)]).await;
        let altered = api
            .alter_topic_config(pb::AlterTopicConfigRequest {
                name: "v1.largest".into(),
                set: vec![pb::ConfigEntry {
                    key: "segment.bytes".into(),
                    value: u64::MAX.to_string(),
                }],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&altered.error), pb::ErrorCode::InvalidConfig);

        let described = api
            .describe_topics(pb::DescribeTopicsRequest {
                names: vec!["v1.too.large".into(), "v1.largest".into()],
            })
            .await
            .unwrap()
            .into_inner()
            .topics;
        assert_eq!(code(&described[0].error), pb::ErrorCode::UnknownTopic);
        let segment = described[1]
            .configs
            .iter()
            .find(|entry| entry.key == "segment.bytes")
            .map(|entry| entry.value.clone());
        assert_eq!(segment, Some(largest));
        let written = crate::support::produce(
            addr,
            "v1.largest",
            0,
            crate::support::batch(&["kept"], stave_log::batch::ProducerFields::NONE),
        )
        .await;
        assert_eq!(written.base_offset, 0);
    });
}

/// Scenario: a PublishStream's second request is larger than the node's 16 MiB message
/// limit. Proves: the first request is answered, and the stream then ends with an error
/// status, so the client learns the second was not taken. Found by the fuzz (seed
/// 1592651810, case 8802): the node ended the stream as if the client had closed it, and the
/// unanswered request looked lost.
#[test]
fn a_stream_request_too_large_to_read_ends_the_stream_with_its_status() {
    with_nodes("fuzz-reg-large-stream", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        create_topic(addr, "v1.big", 1, 1, &[]).await;
        let record = |value: Vec<u8>| pb::PublishRecord {
            topic: "v1.big".into(),
            value: value.into(),
            partition: Some(0),
            ..Default::default()
        };
        // The partition has its leader before the stream starts.
        retry(|| async {
            let answer = client(addr)
                .await
                .publish(pb::PublishRequest {
                    records: vec![record(b"first".to_vec())],
                    sequence: 0,
                })
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            match code(&answer.results[0].error) {
                pb::ErrorCode::None => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let requests = vec![
            pb::PublishRequest {
                records: vec![record(b"small".to_vec())],
                sequence: 1,
            },
            pb::PublishRequest {
                records: vec![record(vec![7; 17 << 20])],
                sequence: 2,
            },
        ];
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        let mut api = stave_proto::v1::stave_client::StaveClient::new(endpoint.connect_lazy())
            .max_encoding_message_size(64 << 20);
        let mut answers = api
            .publish_stream(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let first = answers.message().await.unwrap().unwrap();
        assert_eq!(first.sequence, 1);
        assert_eq!(code(&first.results[0].error), pb::ErrorCode::None);
        let second = answers.message().await;
        assert!(second.is_err(), "the stream ended silently: {second:?}");
    });
}

/// Scenario: writers keep publishing to a topic while it is deleted, five times over.
/// Proves: no write is answered INTERNAL: one in flight when its replica stops gets the
/// retriable, in-doubt REQUEST_TIMED_OUT, and later ones UNKNOWN_TOPIC (or a leader code).
/// Found by the long fuzz run (seed 1592651810, case 92456): a Publish to a pool topic that
/// another case deleted was answered INTERNAL ("the replica stopped: the write was dropped").
#[test]
fn a_write_racing_its_topics_deletion_is_not_internal() {
    with_nodes("fuzz-reg-delete-race", 1, |nodes| async move {
        let addr = nodes[0].addr.clone();
        for round in 0..5 {
            let topic = format!("v1.doomed.{round}");
            create_topic(&addr, &topic, 2, 1, &[("flush", "always")]).await;
            let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let (addr, topic, written) = (addr.clone(), topic.clone(), written.clone());
                    tokio::spawn(async move {
                        let mut api = client(&addr).await;
                        let mut codes = Vec::new();
                        for i in 0..400 {
                            let record = pb::PublishRecord {
                                topic: topic.clone(),
                                value: format!("{w}-{i}").into(),
                                ..Default::default()
                            };
                            let request = pb::PublishRequest {
                                records: vec![record],
                                sequence: 0,
                            };
                            let Ok(answer) = api.publish(request).await else {
                                continue;
                            };
                            let code = code(&answer.into_inner().results[0].error);
                            codes.push(code);
                            written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if code == pb::ErrorCode::UnknownTopic && i > 10 {
                                break;
                            }
                        }
                        codes
                    })
                })
                .collect();
            // Delete once the writers are under way.
            retry(|| async {
                match written.load(std::sync::atomic::Ordering::Relaxed) {
                    n if n >= 40 => Ok(()),
                    n => Err(format!("{n} written")),
                }
            })
            .await;
            let deleted = client(&addr)
                .await
                .delete_topics(pb::DeleteTopicsRequest {
                    names: vec![topic.clone()],
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(code(&deleted.results[0].error), pb::ErrorCode::None);
            for writer in writers {
                let codes = writer.await.unwrap();
                assert!(
                    !codes.contains(&pb::ErrorCode::Internal),
                    "{topic}: {codes:?}"
                );
            }
        }
    });
}

/// A raw batch of one record per `(timestamp, header key)` (Produce takes records Publish
/// refuses: negative timestamps, empty header keys).
fn raw_batch(records: &[(i64, Option<&str>)]) -> bytes::Bytes {
    let mut builder = stave_log::batch::BatchBuilder::new();
    for (timestamp, header) in records {
        let headers: Vec<(&str, &[u8])> = header.iter().map(|key| (*key, &b"v"[..])).collect();
        builder.push(&stave_log::batch::Record {
            timestamp: *timestamp,
            key: None,
            value: Some(b"job"),
            headers: &headers,
        });
    }
    bytes::Bytes::from(builder.finish())
}

/// A queue fetch to `addr` (which coordinates every group: one node), retried until the
/// coordinator can answer; the answer must be NONE.
async fn queue_fetch(addr: &str, request: pb::QueueFetchRequest) -> pb::QueueFetchResponse {
    retry(|| {
        let request = request.clone();
        async move {
            let answer = client(addr)
                .await
                .queue_fetch(request)
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            match code(&answer.error) {
                pb::ErrorCode::None => Ok(answer),
                pb::ErrorCode::CoordinatorNotAvailable | pb::ErrorCode::NotCoordinator => {
                    Err(format!("{:?}", answer.error))
                }
                other => panic!("queue fetch refused: {other:?} {:?}", answer.error),
            }
        }
    })
    .await
}

/// Joins `group` on `topics` from the start, and fetches until `count`
/// records came; the member id and the records.
async fn join_and_take(
    addr: &str,
    group: &str,
    topics: &[&str],
    count: usize,
) -> (String, Vec<pb::ConsumedRecord>) {
    // FindCoordinator creates `__offsets` (a QueueFetch only asks where it is).
    coordinator(addr, group).await;
    let join = pb::QueueFetchRequest {
        group: group.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        start: Some(pb::queue_fetch_request::Start::Earliest(true)),
        ..Default::default()
    };
    let member_id = queue_fetch(addr, join).await.member_id;
    let mut records = Vec::new();
    let started = std::time::Instant::now();
    while records.len() < count {
        assert!(started.elapsed() < harness::HEAL_MAX, "{records:?}");
        let fetch = pb::QueueFetchRequest {
            group: group.into(),
            member_id: member_id.clone(),
            max_records: (count - records.len()) as u32,
            max_wait_ms: 500,
            ..Default::default()
        };
        records.extend(queue_fetch(addr, fetch).await.records);
    }
    (member_id, records)
}

/// Rejects `records` (to the dead-letter topic); every settlement must be taken.
async fn reject(addr: &str, group: &str, member_id: &str, records: &[pb::ConsumedRecord]) {
    let settle = pb::QueueSettleRequest {
        group: group.into(),
        member_id: member_id.into(),
        settlements: records
            .iter()
            .map(|r| pb::Settlement {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
                delivery_count: r.delivery_count,
                action: pb::SettleAction::SettleReject as i32,
                ..Default::default()
            })
            .collect(),
    };
    let answer = client(addr)
        .await
        .queue_settle(settle)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
    for result in &answer.results {
        assert_eq!(result.code, 0, "{answer:?}");
    }
}

/// The queue state of `group`'s partition, as DescribeGroup shows it.
async fn queue_partition(addr: &str, group: &str) -> Option<pb::QueuePartitionState> {
    let answer = client(addr)
        .await
        .describe_group(pb::DescribeGroupRequest {
            group: group.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
    answer.queue?.partitions.into_iter().next()
}

/// Waits until `group`'s partition has dead-lettered `count` records and its ack floor
/// passed them; panics with its state after [`harness::HEAL_MAX`].
async fn dead_lettered(addr: &str, group: &str, count: u64) {
    let started = std::time::Instant::now();
    loop {
        let state = queue_partition(addr, group).await;
        if state
            .as_ref()
            .is_some_and(|s| s.dead_lettered == count && s.ack_floor >= count)
        {
            return;
        }
        assert!(
            started.elapsed() < harness::HEAL_MAX,
            "the rejected records never reached the dead-letter topic: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scenario: a topic holds a record stamped `i64::MIN` (Produce takes any timestamp); a queue
/// member takes it, and the group is described. Proves: DescribeGroup answers the queue state
/// and no node panics. Found by the queue fuzz (seed 7, within its first 50 cases: the
/// group `fuzz.g1`, joined by a queue member on a topic whose records the model stamps at
/// the edges of `i64`, was described by a DescribeGroup case): `partition_view` computes the
/// oldest record's age as `now - timestamp`, which overflows, panicking the group's task in
/// a debug build (in a release build the age wraps to garbage).
#[test]
fn describing_a_queue_group_holding_a_record_stamped_at_i64_min_does_not_panic() {
    with_nodes("fuzz-reg-q-age", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        create_topic(addr, "fuzz.q.age", 1, 1, &[("flush", "never")]).await;
        crate::support::produce(addr, "fuzz.q.age", 0, raw_batch(&[(i64::MIN, None)])).await;
        join_and_take(addr, "age", &["fuzz.q.age"], 1).await;
        let state = queue_partition(addr, "age").await;
        let state = state.expect("the group's task still runs and answers");
        assert!(state.oldest_unacked_age_s >= 0.0, "{state:?}");
    });
}

/// Scenario: a topic holds, written by Produce, a record stamped before 1970 and a record
/// with an empty header key; a queue member rejects both. Proves: both reach the dead-letter
/// topic and the group's ack floor passes them. Found reading the engine for the queue fuzz:
/// a dead letter is written with Publish, which refuses a negative timestamp and an empty
/// header key (INVALID_REQUEST), so the letter is retried every second forever, the
/// partition's ack floor never passes the record, and at `max_unacked_span` records past it
/// the group's partition delivers nothing more.
#[test]
fn a_record_publish_would_refuse_is_still_dead_lettered() {
    with_nodes("fuzz-reg-q-letter", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        create_topic(addr, "fuzz.q.letter", 1, 1, &[("flush", "never")]).await;
        let now = crate::support::now_ms();
        let batch = raw_batch(&[(-1, None), (now, Some(""))]);
        crate::support::produce(addr, "fuzz.q.letter", 0, batch).await;
        let (member, records) = join_and_take(addr, "letter", &["fuzz.q.letter"], 2).await;
        reject(addr, "letter", &member, &records).await;
        dead_lettered(addr, "letter", 2).await;
    });
}

/// Scenario: queue groups whose dead-letter topic `_dlq.{group}.{topic}` cannot be named (a
/// 240-byte group name: too long; a group name with `ü`: not a topic character) join with a
/// pattern, and reject the record they take. Proves: such a join is refused, or the record
/// is dead-lettered. Found reading the engine for the queue fuzz: the join checks the
/// dead-letter name of literal topics only, so the pattern join is taken, the reject is
/// answered NONE, and the letter's topic can never be created: retried every second forever,
/// the ack floor stuck (the fuzz's pattern joins of `fuzz.q-ünïcode` and of a 240-byte
/// group reach this state).
#[test]
fn a_queue_group_that_cannot_dead_letter_is_refused_or_dead_letters() {
    with_nodes("fuzz-reg-q-dlq-name", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        create_topic(addr, "fuzz.q.name", 1, 1, &[("flush", "never")]).await;
        let now = crate::support::now_ms();
        crate::support::produce(addr, "fuzz.q.name", 0, raw_batch(&[(now, None)])).await;
        for group in ["q".repeat(240), "fuzz-ünïcode-q".to_string()] {
            coordinator(addr, &group).await;
            let join = pb::QueueFetchRequest {
                group: group.clone(),
                topics: vec!["fuzz.q.*".into()],
                start: Some(pb::queue_fetch_request::Start::Earliest(true)),
                ..Default::default()
            };
            let answer = client(addr).await.queue_fetch(join).await.unwrap();
            if code(&answer.into_inner().error) == pb::ErrorCode::InvalidRequest {
                continue;
            }
            let (member, records) = join_and_take(addr, &group, &["fuzz.q.*"], 1).await;
            reject(addr, &group, &member, &records).await;
            dead_lettered(addr, &group, 1).await;
        }
    });
}

/// Scenario: QueueFetch and QueueSettle from a member id no member has, to a group nobody
/// joined. Proves: both are refused (UNKNOWN_MEMBER_ID) and change nothing: the group is no
/// queue group afterwards (DescribeGroup shows no queue state). Found by the queue fuzz's
/// forged members: each request to a new group name starts that group's task on its
/// coordinator (running a minute, ticking every 20 ms) and leaves an entry in the node's
/// queue-group table that is never removed, so forged requests to ever new names grow the
/// node without bound.
#[test]
fn a_forged_queue_member_starts_nothing() {
    with_nodes("fuzz-reg-q-forged", 1, |nodes| async move {
        let addr = &nodes[0].addr;
        // Any call that needs the coordinator: wait for `__offsets` to lead.
        coordinator(addr, "ghost").await;
        let forged = "0123456789abcdef".to_string();
        let fetch = pb::QueueFetchRequest {
            group: "ghost".into(),
            member_id: forged.clone(),
            max_records: 1,
            ..Default::default()
        };
        let fetched = client(addr).await.queue_fetch(fetch).await.unwrap();
        let settle = pb::QueueSettleRequest {
            group: "ghost".into(),
            member_id: forged,
            settlements: Vec::new(),
        };
        let settled = client(addr).await.queue_settle(settle).await.unwrap();
        assert_eq!(
            code(&fetched.into_inner().error),
            pb::ErrorCode::UnknownMemberId
        );
        assert_eq!(
            code(&settled.into_inner().error),
            pb::ErrorCode::UnknownMemberId
        );
        let described = client(addr)
            .await
            .describe_group(pb::DescribeGroupRequest {
                group: "ghost".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(described.queue.is_none(), "{described:?}");
    });
}

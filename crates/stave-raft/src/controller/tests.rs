#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use prost::Message;
use stave_log::frame::{FrameType, encode_control_frame};
use stave_proto::internal::controller as proto;
use stave_proto::internal::controller::ErrorCode;
use stave_proto::internal::controller::command::Command as Kind;
use stave_proto::internal::controller::command_reply::Result as Outcome;

use super::state_machine::apply_frame;
use super::*;
use crate::snapshot_file::SnapshotLayout;
use crate::{FramePayload, SnapshotCodec};

fn command(kind: Kind) -> proto::Command {
    proto::Command {
        command: Some(kind),
    }
}

fn register(id: u64) -> proto::Command {
    command(Kind::RegisterNode(proto::RegisterNode {
        node: Some(proto::Node {
            id,
            addr: format!("10.0.0.{id}:7070"),
        }),
    }))
}

fn create(name: &str, replicas: &[&[u64]]) -> proto::Command {
    command(Kind::CreateTopic(proto::CreateTopic {
        name: name.to_owned(),
        partitions: (0u32..)
            .zip(replicas)
            .map(|(partition, replicas)| proto::Partition {
                partition,
                replicas: replicas.to_vec(),
            })
            .collect(),
        configs: vec![proto::ConfigEntry {
            key: "segment.bytes".to_owned(),
            value: "1048576".to_owned(),
        }],
    }))
}

fn allocate(count: u64) -> proto::Command {
    command(Kind::AllocateProducerIds(proto::AllocateProducerIds {
        count,
    }))
}

/// Metadata with three registered nodes.
fn three_nodes() -> Arc<ClusterMetadata> {
    let mut metadata = Arc::new(ClusterMetadata::default());
    for id in 1..=3 {
        assert_eq!(apply(&mut metadata, register(id)), Outcome::Ok(true));
    }
    metadata
}

fn apply(metadata: &mut Arc<ClusterMetadata>, command: proto::Command) -> Outcome {
    ClusterMetadata::apply(metadata, command).result.unwrap()
}

/// Applies `command`, expects a rejection with `code`, and checks nothing changed (not even
/// a copy was made).
fn assert_refused(metadata: &mut Arc<ClusterMetadata>, command: proto::Command, code: ErrorCode) {
    let before = metadata.clone();
    match apply(metadata, command) {
        Outcome::Error(error) => assert_eq!(error.code(), code, "{}", error.message),
        other => panic!("expected {code:?}, got {other:?}"),
    }
    assert!(
        Arc::ptr_eq(&before, metadata),
        "a refused command changed the metadata"
    );
}

#[test]
fn a_second_init_cluster_is_refused() {
    let mut metadata = Arc::new(ClusterMetadata::default());
    let init = |id: &str| {
        command(Kind::InitCluster(proto::InitCluster {
            cluster_id: id.into(),
        }))
    };
    assert_refused(&mut metadata, init(""), ErrorCode::Invalid);
    assert_eq!(apply(&mut metadata, init("c-1")), Outcome::Ok(true));
    assert_refused(&mut metadata, init("c-2"), ErrorCode::AlreadyInitialized);
    assert_eq!(metadata.cluster_id(), Some("c-1"));
}

#[test]
fn topics_get_increasing_incarnations_and_a_recreated_topic_a_new_one() {
    let mut metadata = three_nodes();
    assert_eq!(
        apply(&mut metadata, create("v1.a", &[&[1, 2]])),
        Outcome::Incarnation(1)
    );
    assert_eq!(
        apply(&mut metadata, create("v1.b", &[&[2], &[3]])),
        Outcome::Incarnation(2)
    );
    assert_refused(
        &mut metadata,
        create("v1.a", &[&[3]]),
        ErrorCode::TopicExists,
    );
    let delete = |name: &str| command(Kind::DeleteTopic(proto::DeleteTopic { name: name.into() }));
    assert_eq!(apply(&mut metadata, delete("v1.a")), Outcome::Ok(true));
    assert_refused(&mut metadata, delete("v1.a"), ErrorCode::UnknownTopic);
    assert_eq!(
        apply(&mut metadata, create("v1.a", &[&[3]])),
        Outcome::Incarnation(3)
    );
    let topic = metadata.topic("v1.a").unwrap();
    assert_eq!(topic.replicas(0), Some(&[3u64][..]));
    assert_eq!(topic.group_id(0), crate::group::partition_group_id(3, 0));
    assert_eq!(metadata.next_incarnation(), 4);
}

#[test]
fn invalid_partition_layouts_and_names_are_refused() {
    let mut metadata = three_nodes();
    assert_refused(&mut metadata, create("v1.a", &[]), ErrorCode::Invalid);
    assert_refused(&mut metadata, create("v1.a", &[&[]]), ErrorCode::Invalid);
    assert_refused(
        &mut metadata,
        create("v1.a", &[&[1, 1]]),
        ErrorCode::Invalid,
    );
    assert_refused(
        &mut metadata,
        create("v1.a", &[&[1], &[9]]),
        ErrorCode::Invalid,
    );
    assert_refused(&mut metadata, create("v1/a", &[&[1]]), ErrorCode::Invalid);
    assert_refused(&mut metadata, create("..", &[&[1]]), ErrorCode::Invalid);
    let mut misnumbered = create("v1.a", &[&[1], &[2]]);
    if let Some(Kind::CreateTopic(create)) = &mut misnumbered.command {
        create.partitions[1].partition = 5;
    }
    assert_refused(&mut metadata, misnumbered, ErrorCode::Invalid);
    assert_refused(
        &mut metadata,
        proto::Command { command: None },
        ErrorCode::Invalid,
    );
    // The controller itself may create internal topics.
    assert_eq!(
        apply(&mut metadata, create(OFFSETS_TOPIC, &[&[1]])),
        Outcome::Incarnation(1)
    );
}

#[test]
fn producer_id_ranges_are_consecutive_and_bounded() {
    let mut metadata = three_nodes();
    assert_eq!(
        apply(&mut metadata, allocate(10)),
        Outcome::FirstProducerId(1)
    );
    assert_eq!(
        apply(&mut metadata, allocate(5)),
        Outcome::FirstProducerId(11)
    );
    assert_eq!(metadata.next_producer_id(), 16);
    assert_refused(&mut metadata, allocate(0), ErrorCode::Invalid);
    assert_refused(
        &mut metadata,
        allocate(PRODUCER_IDS_COUNT_MAX + 1),
        ErrorCode::Invalid,
    );
    Arc::make_mut(&mut metadata).next_producer_id = PRODUCER_ID_MAX - 1;
    assert_refused(&mut metadata, allocate(3), ErrorCode::Invalid);
    assert_eq!(
        apply(&mut metadata, allocate(2)),
        Outcome::FirstProducerId(PRODUCER_ID_MAX - 1)
    );
    assert_refused(&mut metadata, allocate(1), ErrorCode::Invalid);
}

#[test]
fn configs_are_set_and_removed_and_replicas_reassigned() {
    let mut metadata = three_nodes();
    assert_eq!(
        apply(&mut metadata, create("v1.a", &[&[1, 2]])),
        Outcome::Incarnation(1)
    );
    let entry = |key: &str, value: &str| proto::ConfigEntry {
        key: key.into(),
        value: value.into(),
    };
    let alter = |set| {
        command(Kind::AlterTopicConfig(proto::AlterTopicConfig {
            name: "v1.a".into(),
            set,
        }))
    };
    let set = vec![entry("segment.bytes", ""), entry("retention.ms", "1000")];
    assert_eq!(apply(&mut metadata, alter(set)), Outcome::Ok(true));
    let configs: Vec<_> = metadata.topic("v1.a").unwrap().configs().iter().collect();
    assert_eq!(configs, [(&"retention.ms".to_owned(), &"1000".to_owned())]);
    let twice = vec![entry("a", "1"), entry("a", "2")];
    assert_refused(&mut metadata, alter(twice), ErrorCode::Invalid);

    let set_replicas = |incarnation, partition, replicas: Vec<u64>| {
        command(Kind::SetReplicas(proto::SetReplicas {
            name: "v1.a".into(),
            incarnation,
            partition,
            replicas,
        }))
    };
    assert_refused(
        &mut metadata,
        set_replicas(7, 0, vec![3]),
        ErrorCode::UnknownTopic,
    );
    assert_refused(
        &mut metadata,
        set_replicas(1, 1, vec![3]),
        ErrorCode::Invalid,
    );
    assert_refused(
        &mut metadata,
        set_replicas(1, 0, vec![4]),
        ErrorCode::Invalid,
    );
    assert_eq!(
        apply(&mut metadata, set_replicas(1, 0, vec![3, 1])),
        Outcome::Ok(true)
    );
    assert_eq!(
        metadata.topic("v1.a").unwrap().replicas(0),
        Some(&[3u64, 1][..])
    );
}

#[test]
fn frames_that_are_not_commands_answer_invalid() {
    let mut metadata = three_nodes();
    let garbage = FramePayload(bytes::Bytes::from_static(b"not a frame"));
    let blank = FramePayload(encode_control_frame(FrameType::Blank, &[]).into());
    let undecodable = FramePayload(encode_control_frame(FrameType::Command, &[0xff; 7]).into());
    for frame in [garbage, blank, undecodable] {
        let before = metadata.clone();
        let reply = apply_frame(&mut metadata, &frame);
        assert!(
            matches!(reply.result, Some(Outcome::Error(ref e)) if e.code() == ErrorCode::Invalid),
            "{reply:?}"
        );
        assert!(Arc::ptr_eq(&before, &metadata));
    }
    let frame = encode_control_frame(FrameType::Command, &allocate(3).encode_to_vec());
    let reply = apply_frame(&mut metadata, &FramePayload(frame.into()));
    assert_eq!(reply.result, Some(Outcome::FirstProducerId(1)));
}

fn populated() -> Arc<ClusterMetadata> {
    let mut metadata = three_nodes();
    let init = command(Kind::InitCluster(proto::InitCluster {
        cluster_id: "c".into(),
    }));
    apply(&mut metadata, init);
    apply(&mut metadata, create("v1.a", &[&[1, 2], &[2, 3]]));
    apply(&mut metadata, create("v1.b", &[&[3]]));
    apply(&mut metadata, allocate(100));
    metadata
}

#[test]
fn metadata_round_trips_through_the_snapshot_codec() {
    let snapshot = ControllerSnapshot {
        metadata: populated(),
    };
    let bytes = snapshot.encode_snapshot().unwrap();
    let decoded = ControllerSnapshot::decode_snapshot(&bytes).unwrap();
    assert_eq!(decoded, snapshot);
    assert_eq!(
        decoded.encode_snapshot().unwrap(),
        bytes,
        "the encoding is canonical"
    );
}

#[test]
fn inconsistent_metadata_is_refused_on_decode() {
    let good = proto::Metadata::from(populated().as_ref());
    let mut duplicate_node = good.clone();
    duplicate_node.nodes.push(duplicate_node.nodes[0].clone());
    let mut future_incarnation = good.clone();
    future_incarnation.topics[0].incarnation = good.next_incarnation;
    let mut shared_incarnation = good.clone();
    shared_incarnation.topics[1].incarnation = shared_incarnation.topics[0].incarnation;
    let mut misnumbered = good.clone();
    misnumbered.topics[0].partitions[1].partition = 0;
    let mut no_producer_ids = good.clone();
    no_producer_ids.next_producer_id = 0;
    for bad in [
        duplicate_node,
        future_incarnation,
        shared_incarnation,
        misnumbered,
        no_producer_ids,
    ] {
        assert!(ClusterMetadata::try_from(bad.clone()).is_err(), "{bad:?}");
    }
    assert_eq!(ClusterMetadata::try_from(good).unwrap(), *populated());
}

#[test]
fn the_snapshot_file_round_trips_and_detects_damage() {
    let membership = crate::types::MembershipOf::new_with_defaults(vec![[1, 2, 3].into()], []);
    let log_id = crate::types::from_log_id(stave_log::LogId::new(2, 40));
    let meta = super::state_machine::SnapshotMetaOf {
        last_log_id: Some(log_id),
        last_membership: crate::types::StoredMembershipOf::new(Some(log_id), membership),
    };
    let snapshot = ControllerSnapshot {
        metadata: populated(),
    };
    let bytes = ControllerSnapshot::encode_file(&meta, &snapshot).unwrap();
    let (read_meta, read) = ControllerSnapshot::decode_file(&bytes).unwrap();
    assert_eq!(read_meta, meta);
    assert_eq!(read, snapshot);
    for at in [0, 5, 9, 20, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        assert!(
            ControllerSnapshot::decode_file(&damaged).is_err(),
            "a flip at {at} went unnoticed"
        );
    }
    for len in [0, 3, 11, bytes.len() - 1] {
        assert!(
            ControllerSnapshot::decode_file(&bytes[..len]).is_err(),
            "cut at {len}"
        );
    }
}

/// A controller snapshot file as this crate wrote it before the file handling was shared with
/// partitions (commit 05eaea9; empty metadata): a node restarted on old data reads it, and
/// writes the same bytes again.
const WRITTEN_CONTROLLER_SNAPSHOT: &str = "535443535e5d359aa30000007b226c617374223a5b332c35375d2c226d656d626572736869705f6c6f675f6964223a5b322c34315d2c226d656d62657273686970223a227b5c22636f6e666967735c223a5b5b312c325d5d2c5c226e6f6465735c223a7b5c22315c223a5c2231302e302e302e313a373037305c222c5c22325c223a5c2231302e302e302e323a373037305c222c5c22335c223a5c2231302e302e302e333a373037305c227d7d227d20012801";

#[test]
fn a_snapshot_file_written_before_reads_back_and_writes_the_same_bytes() {
    let written: Vec<u8> = (0..WRITTEN_CONTROLLER_SNAPSHOT.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&WRITTEN_CONTROLLER_SNAPSHOT[at..at + 2], 16).unwrap())
        .collect();
    let (meta, snapshot) = ControllerSnapshot::decode_file(&written).unwrap();
    assert_eq!(
        meta.last_log_id.map(|id| (id.leader_id.term, id.index)),
        Some((3, 57))
    );
    let membership = meta.last_membership.membership();
    assert_eq!(membership.voter_ids().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(membership.learner_ids().collect::<Vec<_>>(), [3]);
    assert_eq!(snapshot, ControllerSnapshot::default());
    assert_eq!(
        ControllerSnapshot::encode_file(&meta, &snapshot).unwrap(),
        written
    );
}

#[test]
fn topic_names_follow_the_rules() {
    for good in [
        "v1.user.signedup",
        "a",
        "A-b_c.9",
        &"x".repeat(TOPIC_NAME_BYTES_MAX),
    ] {
        assert_eq!(validate_user_topic_name(good), Ok(()), "{good}");
    }
    assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
    assert!(matches!(
        validate_topic_name(&"x".repeat(TOPIC_NAME_BYTES_MAX + 1)),
        Err(TopicNameError::TooLong { len: 250, max: 249 })
    ));
    assert!(matches!(
        validate_topic_name("v1 user"),
        Err(TopicNameError::InvalidCharacter {
            found: ' ',
            position: 2
        })
    ));
    assert!(matches!(
        validate_topic_name("é"),
        Err(TopicNameError::InvalidCharacter { .. })
    ));
    assert!(matches!(
        validate_topic_name("."),
        Err(TopicNameError::DotName { .. })
    ));
    assert_eq!(validate_topic_name(OFFSETS_TOPIC), Ok(()));
    assert_eq!(
        validate_user_topic_name(OFFSETS_TOPIC),
        Err(TopicNameError::Internal)
    );
    assert!(is_internal_topic("__x") && !is_internal_topic("_x"));
}

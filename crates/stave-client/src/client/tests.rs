#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use stave_proto::v1::ErrorCode;

use super::*;
use crate::metadata::{PartitionInfo, TopicInfo};
use crate::test_support::{LiveNode, SilentNode, bounds, init_tracing};

/// Long enough that a test which waits it out fails its own deadline first.
const NEVER: Duration = Duration::from_secs(600);

/// Metadata of nodes 1, 2, 3 at `addrs`, and topic `t` whose partition 0 is led by node 1.
fn metadata(addrs: [&str; 3]) -> ClusterMetadata {
    ClusterMetadata {
        cluster_id: "c".into(),
        controller_id: Some(1),
        nodes: (1u64..).zip(addrs.iter().map(|a| a.to_string())).collect(),
        topics: BTreeMap::from([(
            "t".to_string(),
            TopicInfo {
                name: "t".into(),
                partitions: vec![PartitionInfo {
                    partition: 0,
                    leader: Some(1),
                    replicas: vec![1, 2, 3],
                    in_sync: vec![1, 2, 3],
                    problems: vec![],
                    dedupe_window_effective_ms: None,
                }],
            },
        )]),
    }
}

fn not_leader(hint_id: u64, hint_addr: &str) -> ClientError {
    ClientError::Broker {
        code: ErrorCode::NotLeader,
        message: String::new(),
        leader_id: Some(hint_id),
        leader_addr: Some(hint_addr.into()),
    }
}

/// A first bootstrap address whose node accepts connections but never answers (paused)
/// costs a hedge delay, not a request timeout: the next address is asked a second later,
/// its answer wins, and the silent node, overtaken, becomes a suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_passes_over_a_silent_first_address() {
    init_tracing();
    let live = LiveNode::start().await;
    let silent = SilentNode::start();
    let config = ClientConfig {
        bootstrap: vec![silent.addr.clone(), live.addr.clone()],
        ..bounds(NEVER)
    };
    let client = tokio::time::timeout(Duration::from_secs(20), Client::connect(config))
        .await
        .expect("connected without waiting for the silent node")
        .unwrap();
    assert!(client.is_suspect(&silent.addr));
    assert!(!client.is_suspect(&live.addr));
    assert_eq!(client.candidates().last(), Some(&silent.addr), "asked last");
}

/// A NOT_LEADER hint is followed, unless it names a suspect: nodes that have not noticed
/// that their leader stopped keep naming it. Then the leader is forgotten, so the next
/// lookup asks again.
#[tokio::test]
async fn hints_naming_a_suspect_are_not_followed() {
    let client = Client::new(ClientConfig::new("a:1").unwrap(), None).unwrap();
    client.store_metadata(metadata(["a:1", "b:2", "c:3"]));
    let hint = not_leader(2, "b:2");
    client.observe_failure("t", 0, "a:1", &hint);
    assert_eq!(client.metadata().leader_addr("t", 0), Some("b:2"));
    assert!(client.hint_to_follow(&hint).is_some());

    client.suspect("c:3");
    let stale = not_leader(3, "c:3");
    assert!(client.hint_to_follow(&stale).is_none());
    client.observe_failure("t", 0, "b:2", &stale);
    assert_eq!(client.metadata().leader_addr("t", 0), None);
}

/// A request that went unanswered makes its node a suspect and forgets the partition's
/// leader; an answer from the node ends the suspicion.
#[tokio::test]
async fn an_unanswered_attempt_suspects_its_node_until_it_answers() {
    let client = Client::new(ClientConfig::new("a:1").unwrap(), None).unwrap();
    client.store_metadata(metadata(["a:1", "b:2", "c:3"]));
    let silence = ClientError::NoAnswer {
        addr: "a:1".into(),
        waited: Duration::from_secs(5),
    };
    assert!(silence.is_retriable() && silence.is_in_doubt());
    client.observe_failure("t", 0, "a:1", &silence);
    assert!(client.is_suspect("a:1"));
    assert_eq!(client.metadata().leader_addr("t", 0), None);
    assert_eq!(client.candidates(), ["b:2", "c:3", "a:1"]);
    client.clear_suspicion("a:1");
    assert_eq!(client.candidates(), ["a:1", "b:2", "c:3"]);
}

/// A partition whose leader is a suspect is not sent to: while metadata names no other
/// leader, its other replicas are asked in turn (each either leads by now or names the
/// leader it follows), and never the suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspected_leader_is_passed_over_for_its_replicas_in_turn() {
    let nodes = [
        SilentNode::start(),
        SilentNode::start(),
        SilentNode::start(),
    ];
    let addrs = [&*nodes[0].addr, &*nodes[1].addr, &*nodes[2].addr];
    let config = ClientConfig {
        bootstrap: vec![addrs[0].to_string()],
        ..bounds(NEVER)
    };
    let client = Client::new(config, None).unwrap();
    client.store_metadata(metadata(addrs));
    assert_eq!(client.leader("t", 0).await.unwrap().0, addrs[0]);

    client.suspect(addrs[0]);
    let mut asked = Vec::new();
    for _ in 0..4 {
        asked.push(client.leader("t", 0).await.unwrap().0);
    }
    assert!(!asked.iter().any(|a| a == addrs[0]), "{asked:?}");
    assert!(asked.iter().any(|a| a == addrs[1]) && asked.iter().any(|a| a == addrs[2]));
}

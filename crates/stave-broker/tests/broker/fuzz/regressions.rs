//! Defects the fuzz found, each minimised into a named test. A test marked
//! `#[ignore = "defect: …"]` shows a defect whose fix belongs to files being edited
//! elsewhere (see the issue 15 report).

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

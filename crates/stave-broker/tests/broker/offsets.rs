//! Committed offsets: a group's coordinator is found, commits go to it and read back; other
//! nodes point at it; `__offsets` stays out of the user's topic list.

use std::time::{Duration, Instant};

use stave_proto::v1 as pb;

use crate::support::{WAIT, client, cluster, code};

async fn find(addr: &str, group: &str) -> pb::FindCoordinatorResponse {
    let started = Instant::now();
    loop {
        let answer = client(addr)
            .await
            .find_coordinator(pb::FindCoordinatorRequest {
                group: group.into(),
            })
            .await
            .map(|answer| answer.into_inner());
        // The cluster may still be forming (no controller leader yet): ask again.
        if let Ok(answer) = &answer
            && code(&answer.error) == pb::ErrorCode::None
        {
            return answer.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "no coordinator for {group}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn commit(group: &str, offsets: &[(&str, u32, u64)]) -> pb::CommitOffsetsRequest {
    pb::CommitOffsetsRequest {
        group: group.into(),
        offsets: offsets
            .iter()
            .map(|(topic, partition, offset)| pb::OffsetCommit {
                topic: topic.to_string(),
                partition: *partition,
                offset: *offset,
                metadata: String::new(),
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_commit_to_the_coordinator_and_read_back() {
    let nodes = cluster(3).await;
    let coordinator = find(&nodes[2].addr, "email").await;
    // Every node names the same coordinator.
    for node in &nodes {
        assert_eq!(find(&node.addr, "email").await.node_id, coordinator.node_id);
    }
    let mut api = client(&coordinator.addr).await;
    let answer = api
        .commit_offsets(commit(
            "email",
            &[("v1.user.signedup", 0, 41), ("v1.user.signedup", 1, 7)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None);
    let answer = api
        .commit_offsets(commit("email", &[("v1.user.signedup", 0, 42)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None);
    let fetched = api
        .fetch_offsets(pb::FetchOffsetsRequest {
            group: "email".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let offsets: Vec<(String, u32, u64)> = fetched
        .offsets
        .iter()
        .map(|o| (o.topic.clone(), o.partition, o.offset))
        .collect();
    assert_eq!(
        offsets,
        [
            ("v1.user.signedup".to_string(), 0, 42),
            ("v1.user.signedup".to_string(), 1, 7)
        ]
    );

    // A node that does not coordinate the group says who does.
    let other = nodes.iter().find(|n| n.id != coordinator.node_id).unwrap();
    let refused = client(&other.addr)
        .await
        .commit_offsets(commit("email", &[("v1.user.signedup", 0, 99)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&refused.error), pb::ErrorCode::NotCoordinator);
    assert_eq!(refused.error.unwrap().leader_addr, coordinator.addr);

    // `__offsets` is internal: not in the user's topic list.
    let metadata = api
        .metadata(pb::MetadataRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert!(metadata.topics.iter().all(|t| !t.name.starts_with("__")));
}

//! Committed offsets: a group's coordinator is found, commits go to it and read back; other
//! nodes point at it; `__offsets` stays out of the user's topic list.

use std::time::{Duration, Instant};

use stave_proto::v1 as pb;

use crate::support::{WAIT, client, cluster, code, retry};

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
        member_id: String::new(),
        member_epoch: 0,
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

/// Three members join a group over a topic of 6 partitions and heartbeat in rounds,
/// reporting what they were given: no partition is ever held by two of them, and they settle
/// on 2 each. A commit with a stale epoch is fenced; a leaving member's partitions move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_the_partitions_without_overlap_and_stale_commits_are_fenced() {
    use std::collections::{BTreeMap, BTreeSet};

    let nodes = cluster(1).await;
    crate::support::create_topic(&nodes[0].addr, "v1.user.signedup", 6, 0, &[]).await;
    let coordinator = find(&nodes[0].addr, "email").await;
    let mut api = client(&coordinator.addr).await;
    // member id -> (epoch, held)
    let mut members: BTreeMap<String, (u64, BTreeSet<(String, u32)>)> = BTreeMap::new();
    let owned = |held: &BTreeSet<(String, u32)>| -> Vec<pb::TopicPartitions> {
        let mut by_topic: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (topic, partition) in held {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        by_topic
            .into_iter()
            .map(|(topic, partitions)| pb::TopicPartitions { topic, partitions })
            .collect()
    };
    let held_of = |answer: &pb::GroupHeartbeatResponse| -> BTreeSet<(String, u32)> {
        answer
            .assignment
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
            .collect()
    };
    let mut first_epoch = None;
    for round in 0..8 {
        if round < 3 {
            let answer = api
                .group_heartbeat(pb::GroupHeartbeatRequest {
                    group: "email".into(),
                    subscription: vec!["v1.user.*".into()],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(code(&answer.error), pb::ErrorCode::None);
            members.insert(
                answer.member_id.clone(),
                (answer.member_epoch, held_of(&answer)),
            );
        }
        let ids: Vec<String> = members.keys().cloned().collect();
        for id in ids {
            let (epoch, held) = members[&id].clone();
            first_epoch.get_or_insert((id.clone(), epoch));
            let answer = api
                .group_heartbeat(pb::GroupHeartbeatRequest {
                    group: "email".into(),
                    member_id: id.clone(),
                    member_epoch: epoch,
                    subscription: vec!["v1.user.*".into()],
                    owned: owned(&held),
                    leave: false,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                code(&answer.error),
                pb::ErrorCode::None,
                "{:?}",
                answer.error
            );
            members.insert(id, (answer.member_epoch, held_of(&answer)));
            let mut seen = BTreeSet::new();
            for (_, held) in members.values() {
                for tp in held {
                    assert!(seen.insert(tp.clone()), "{tp:?} held by two members");
                }
            }
        }
    }
    let sizes: Vec<usize> = members.values().map(|(_, held)| held.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2]);

    // The first member's first epoch is long gone: its commit is fenced.
    let (id, stale) = first_epoch.unwrap();
    let mut fenced = commit("email", &[("v1.user.signedup", 0, 5)]);
    fenced.member_id = id.clone();
    fenced.member_epoch = stale;
    if members[&id].0 != stale {
        let answer = api.commit_offsets(fenced).await.unwrap().into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::FencedMemberEpoch);
    }
    let mut current = commit("email", &[("v1.user.signedup", 0, 5)]);
    current.member_id = id.clone();
    current.member_epoch = members[&id].0;
    let answer = api.commit_offsets(current).await.unwrap().into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::None);

    // Describe: the members with what they hold, and the lag behind the high watermark.
    let values: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    crate::support::produce(
        &nodes[0].addr,
        "v1.user.signedup",
        0,
        crate::support::batch(&values, stave_log::batch::ProducerFields::NONE),
    )
    .await;
    let described = api
        .describe_group(pb::DescribeGroupRequest {
            group: "email".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&described.error), pb::ErrorCode::None);
    assert_eq!(described.members.len(), 3);
    for member in &described.members {
        let held: usize = member.owned.iter().map(|tp| tp.partitions.len()).sum();
        assert_eq!(held, 2, "{member:?}");
        assert_eq!(member.member_epoch, members[&member.member_id].0);
    }
    let lag: Vec<(u32, u64, u64, u64)> = described
        .offsets
        .iter()
        .map(|o| (o.partition, o.committed, o.high_watermark, o.lag))
        .collect();
    assert_eq!(lag, [(0, 5, 8, 3)]);
}

/// ListGroups from any node shows every group with its coordinator; ResetOffsets is refused
/// while the group has a member, then moves the committed offsets to the earliest, the
/// latest, a clamped offset, or the first record at or after a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_everywhere_and_reset_only_when_empty() {
    use stave_log::batch::{BatchBuilder, Record};

    let nodes = cluster(3).await;
    crate::support::create_topic(&nodes[0].addr, "v1.orders", 2, 0, &[]).await;
    // Partition 0: 3 records at t=1000, 3 at t=2000 (offsets 0..6).
    let mut builder = BatchBuilder::new();
    for (i, timestamp) in [1000, 1000, 1000, 2000, 2000, 2000].into_iter().enumerate() {
        let value = format!("r{i}");
        builder.push(&Record {
            timestamp,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        });
    }
    crate::support::produce(
        &nodes[0].addr,
        "v1.orders",
        0,
        bytes::Bytes::from(builder.finish()),
    )
    .await;

    let mut coordinators = std::collections::BTreeMap::new();
    for group in ["email", "audit"] {
        let coordinator = find(&nodes[0].addr, group).await;
        let answer = client(&coordinator.addr)
            .await
            .commit_offsets(commit(group, &[("v1.orders", 0, 4)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None);
        coordinators.insert(group.to_string(), coordinator);
    }
    for node in &nodes {
        let listed = client(&node.addr)
            .await
            .list_groups(pb::ListGroupsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(listed.unreachable.is_empty(), "{listed:?}");
        let seen: Vec<(String, u64)> = listed
            .groups
            .iter()
            .map(|g| (g.group.clone(), g.coordinator))
            .collect();
        assert_eq!(
            seen,
            [
                ("audit".to_string(), coordinators["audit"].node_id),
                ("email".to_string(), coordinators["email"].node_id),
            ]
        );
    }

    let mut api = client(&coordinators["email"].addr).await;
    let reset = |to: pb::reset_offsets_request::To| pb::ResetOffsetsRequest {
        group: "email".into(),
        topic: "v1.orders".into(),
        partitions: vec![0],
        to: Some(to),
    };
    use pb::reset_offsets_request::To;
    // A member in the group: refused.
    let joined = api
        .group_heartbeat(pb::GroupHeartbeatRequest {
            group: "email".into(),
            subscription: vec!["v1.orders".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&joined.error), pb::ErrorCode::None);
    let refused = api
        .reset_offsets(reset(To::Earliest(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&refused.error), pb::ErrorCode::GroupNotEmpty);
    let left = api
        .group_heartbeat(pb::GroupHeartbeatRequest {
            group: "email".into(),
            member_id: joined.member_id,
            leave: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&left.error), pb::ErrorCode::None);

    for (to, expected) in [
        (To::Earliest(true), 0),
        (To::Latest(true), 6),
        (To::Offset(2), 2),
        (To::Offset(99), 6),
        (To::TimestampMs(1500), 3),
        (To::TimestampMs(500), 0),
    ] {
        let answer = api.reset_offsets(reset(to)).await.unwrap().into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{to:?}");
        assert_eq!(answer.offsets.len(), 1);
        assert_eq!(answer.offsets[0].offset, expected, "{to:?}");
        let fetched = api
            .fetch_offsets(pb::FetchOffsetsRequest {
                group: "email".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let committed: Vec<(u32, u64)> = fetched
            .offsets
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        assert_eq!(committed, [(0, expected)], "{to:?}");
    }
    // Every partition when none is named; an unknown topic is refused.
    let mut all = reset(To::Earliest(true));
    all.partitions.clear();
    // Partition 1 took no writes: its leader may still be being elected.
    let answer = retry(|| {
        let (mut api, all) = (api.clone(), all.clone());
        async move {
            let answer = api.reset_offsets(all).await.unwrap().into_inner();
            match code(&answer.error) {
                pb::ErrorCode::LeaderNotAvailable => Err(format!("{answer:?}")),
                _ => Ok(answer),
            }
        }
    })
    .await;
    assert_eq!(code(&answer.error), pb::ErrorCode::None);
    assert_eq!(answer.offsets.len(), 2);
    let mut unknown = reset(To::Earliest(true));
    unknown.topic = "v1.nothing".into();
    let answer = api.reset_offsets(unknown).await.unwrap().into_inner();
    assert_eq!(code(&answer.error), pb::ErrorCode::UnknownTopic);
}

/// The `__offsets` partition replicas in a node's data directory, and how many of them hold
/// a snapshot.
fn offsets_replicas(data_dir: &std::path::Path) -> (usize, usize) {
    let Ok(partitions) = std::fs::read_dir(data_dir.join("partitions")) else {
        return (0, 0);
    };
    let replicas: Vec<std::path::PathBuf> = partitions
        .flatten()
        .filter(|dir| dir.file_name().to_string_lossy().starts_with("__offsets-"))
        .map(|dir| dir.path())
        .collect();
    let snapshots = replicas
        .iter()
        .filter(|dir| dir.join("snapshot").exists())
        .count();
    (replicas.len(), snapshots)
}

/// Compaction (a snapshot of the table, then a purge) runs on every replica of the group's
/// `__offsets` partition, not only on its leader, so no replica's log grows without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_compact_on_every_replica() {
    let nodes = cluster(3).await;
    let coordinator = find(&nodes[0].addr, "billing").await;
    let mut api = client(&coordinator.addr).await;
    // More commits than compaction waits for (1,000 entries past the last snapshot).
    for offset in 0..1100 {
        let answer = api
            .commit_offsets(commit("billing", &[("v1.invoice.sent", 0, offset)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&answer.error), pb::ErrorCode::None);
    }
    // `__offsets` has as many replicas as the cluster had nodes when it was created (up to
    // 3): every node holding them, followers included, compacts the group's partition.
    retry(|| async {
        let replicas: Vec<(usize, usize)> = nodes
            .iter()
            .map(|node| offsets_replicas(node._dir.path()))
            .collect();
        let holders = replicas.iter().filter(|(held, _)| *held > 0).count();
        let compacted = replicas
            .iter()
            .all(|&(held, snapshots)| held == 0 || snapshots >= 1);
        if holders >= 2 && compacted {
            Ok(())
        } else {
            Err(format!(
                "__offsets replicas and those with a snapshot, per node: {replicas:?}"
            ))
        }
    })
    .await;
}

/// Scenario: a consumer group is looked up on a 3-node cluster from its first moment, while
/// its nodes are still registering. Proves: `__offsets` gets a replica on every node (as
/// many replicas as the cluster was configured with nodes, up to 3), never fewer because a
/// node had not registered yet when the first group came (it used to get one replica, for
/// good, when a lookup won that race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_replicated_on_every_configured_node() {
    let nodes = cluster(3).await;
    find(&nodes[1].addr, "billing").await;
    retry(|| async {
        let replicas: Vec<(usize, usize)> = nodes
            .iter()
            .map(|node| offsets_replicas(node._dir.path()))
            .collect();
        if replicas.iter().all(|(held, _)| *held > 0) {
            Ok(())
        } else {
            Err(format!("__offsets replicas per node: {replicas:?}"))
        }
    })
    .await;
}

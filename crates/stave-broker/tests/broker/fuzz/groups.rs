//! Cases of consumer groups: FindCoordinator, CommitOffsets, FetchOffsets, GroupHeartbeat,
//! DescribeGroup, ListGroups, ResetOffsets. Group names come from a small set (so groups gain
//! members and offsets) or are hostile; member ids and epochs are forged; subscriptions hold
//! malformed and pathological patterns; partitions and offsets sit at the edges. After a case
//! on a group with a valid name, a plain commit to that group must still go through: its
//! `__offsets` partition still takes writes.

use rand::Rng;
use rand::rngs::StdRng;
use stave_proto::v1 as pb;

use super::harness::{Checked, Defect, answer, defect, typed};
use super::model::{IDEMPOTENT_TOPIC, PLAIN_TOPIC};
use super::names::{
    POOL_TOPICS, edge_i64, edge_u32, edge_u64, group_name, hostile_string, pattern, pick,
};
use super::{After, Ctx};

/// Whether `group` is a name the coordinator takes (1 to 255 bytes).
pub fn valid_group(group: &str) -> bool {
    (1..=255).contains(&group.len())
}

/// The node a request for `group` goes to: its coordinator mostly.
pub fn node_for(ctx: &Ctx, rng: &mut StdRng, group: &str) -> usize {
    if rng.random_bool(0.8) {
        ctx.cluster.coordinator(group)
    } else {
        rng.random_range(0..ctx.cluster.len())
    }
}

/// Learns the coordinator from a NOT_COORDINATOR hint.
pub fn note(ctx: &Ctx, group: &str, error: &Option<pb::Error>) {
    if let Some(error) = error
        && error.code == pb::ErrorCode::NotCoordinator as i32
    {
        ctx.cluster.note_coordinator(group, &error.leader_addr);
    }
}

fn topic(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC]).to_string(),
        1 => pick(rng, &POOL_TOPICS).to_string(),
        _ => hostile_string(rng),
    }
}

fn invalid_group_code(group: &str, code: pb::ErrorCode) -> Checked {
    if !valid_group(group) && code == pb::ErrorCode::None {
        return Err(defect(
            "an invalid group name was taken",
            format!("{} bytes", group.len()),
        ));
    }
    Ok(())
}

pub async fn find_coordinator(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = group_name(rng);
    let request = pb::FindCoordinatorRequest {
        group: group.clone(),
    };
    let node = rng.random_range(0..ctx.cluster.len());
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).find_coordinator(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    if code == pb::ErrorCode::None {
        let known = ctx
            .cluster
            .nodes
            .iter()
            .any(|n| n.id == response.node_id && n.addr == response.addr);
        if !known {
            return Err(defect("coordinator is no node", format!("{response:?}")));
        }
        ctx.cluster.note_coordinator(&group, &response.addr);
    }
    Ok(After::group(&group))
}

fn member_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..5) {
        0 => String::new(),
        1 => format!("member-{}", rng.random_range(0..8)),
        2 => format!("member-{}", u64::MAX),
        _ => hostile_string(rng),
    }
}

pub async fn commit_offsets(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = group_name(rng);
    let count = pick(rng, &[0, 1, 2, 5, 1000]);
    let offsets = (0..count)
        .map(|_| pb::OffsetCommit {
            topic: topic(rng),
            partition: edge_u32(rng),
            offset: edge_u64(rng),
            metadata: if rng.random_bool(0.7) {
                String::new()
            } else {
                hostile_string(rng)
            },
        })
        .collect();
    let request = pb::CommitOffsetsRequest {
        group: group.clone(),
        offsets,
        member_id: if rng.random_bool(0.5) {
            String::new()
        } else {
            member_id(rng)
        },
        member_epoch: edge_u64(rng),
    };
    let node = node_for(ctx, rng, &group);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).commit_offsets(request.clone()),
    )
    .await?
    else {
        return Ok(After::group(&group));
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    note(ctx, &group, &response.error);
    Ok(After::group(&group))
}

pub async fn fetch_offsets(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = group_name(rng);
    let request = pb::FetchOffsetsRequest {
        group: group.clone(),
    };
    let node = node_for(ctx, rng, &group);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).fetch_offsets(request.clone()),
    )
    .await?
    else {
        return Ok(After::group(&group));
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    note(ctx, &group, &response.error);
    Ok(After::group(&group))
}

pub async fn group_heartbeat(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = group_name(rng);
    let subscription = (0..pick(rng, &[0, 1, 2, 4, 500]))
        .map(|_| pattern(rng))
        .collect();
    let owned = (0..rng.random_range(0..3))
        .map(|_| pb::TopicPartitions {
            topic: topic(rng),
            partitions: (0..pick(rng, &[0, 1, 3, 1000]))
                .map(|_| edge_u32(rng))
                .collect(),
        })
        .collect();
    let request = pb::GroupHeartbeatRequest {
        group: group.clone(),
        member_id: member_id(rng),
        member_epoch: {
            let edge = edge_u64(rng);
            pick(rng, &[0, 1, 2, u64::MAX, edge])
        },
        subscription,
        owned,
        leave: rng.random_ratio(1, 10),
    };
    let node = node_for(ctx, rng, &group);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).group_heartbeat(request.clone()),
    )
    .await?
    else {
        return Ok(After::group(&group));
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    note(ctx, &group, &response.error);
    for assigned in &response.assignment {
        if assigned.topic.starts_with("__") {
            return Err(defect(
                "an internal topic was assigned",
                format!("{response:?}"),
            ));
        }
        if assigned.topic == PLAIN_TOPIC
            && assigned
                .partitions
                .iter()
                .any(|p| *p >= super::model::PLAIN_PARTITIONS)
        {
            return Err(defect(
                "a partition that does not exist was assigned",
                format!("{response:?}"),
            ));
        }
    }
    Ok(After::group(&group))
}

pub async fn describe_group(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = group_name(rng);
    let request = pb::DescribeGroupRequest {
        group: group.clone(),
    };
    let node = node_for(ctx, rng, &group);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).describe_group(request.clone()),
    )
    .await?
    else {
        return Ok(After::group(&group));
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    note(ctx, &group, &response.error);
    for lag in &response.offsets {
        if lag.lag != lag.high_watermark.saturating_sub(lag.committed) && lag.high_watermark != 0 {
            return Err(defect("wrong lag", format!("{lag:?}")));
        }
    }
    Ok(After::group(&group))
}

pub async fn list_groups(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let node = rng.random_range(0..ctx.cluster.len());
    let Some(response) = answer(
        &"ListGroups",
        ctx.cluster
            .client(node)
            .list_groups(pb::ListGroupsRequest {}),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    typed(&response.error)?;
    Ok(After::nothing())
}

pub async fn reset_offsets(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    use pb::reset_offsets_request::To;
    let group = group_name(rng);
    let to = match rng.random_range(0..5) {
        0 => None,
        1 => Some(To::Earliest(rng.random())),
        2 => Some(To::Latest(rng.random())),
        3 => Some(To::Offset(edge_u64(rng))),
        _ => Some(To::TimestampMs(edge_i64(rng))),
    };
    let topic = match rng.random_range(0..5) {
        0 => "__offsets".to_string(),
        _ => topic(rng),
    };
    let partitions = match rng.random_range(0..4) {
        0 => (0..1000).map(|_| 0).collect(),
        1 => (0..3).map(|_| edge_u32(rng)).collect(),
        _ => Vec::new(),
    };
    let request = pb::ResetOffsetsRequest {
        group: group.clone(),
        topic: topic.clone(),
        partitions,
        to,
    };
    let node = node_for(ctx, rng, &group);
    let Some(response) = answer(
        &request,
        ctx.cluster.client(node).reset_offsets(request.clone()),
    )
    .await?
    else {
        return Ok(After::group(&group));
    };
    let code = typed(&response.error)?;
    invalid_group_code(&group, code)?;
    note(ctx, &group, &response.error);
    if code == pb::ErrorCode::None && topic.starts_with("__") {
        return Err(defect(
            "an internal topic's offsets were reset",
            format!("{response:?}"),
        ));
    }
    Ok(After::group(&group))
}

/// A plain commit to `group` (valid name) must go through within the heal time: its
/// `__offsets` partition still takes writes.
pub async fn commit_valid(ctx: &Ctx, group: &str) -> Checked {
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < super::harness::HEAL_MAX {
        let request = pb::CommitOffsetsRequest {
            group: group.to_string(),
            offsets: vec![pb::OffsetCommit {
                topic: PLAIN_TOPIC.into(),
                partition: 0,
                offset: 0,
                metadata: String::new(),
            }],
            member_id: String::new(),
            member_epoch: 0,
        };
        let node = ctx.cluster.coordinator(group);
        if let Some(response) = answer(
            &request,
            ctx.cluster.client(node).commit_offsets(request.clone()),
        )
        .await?
        {
            match typed(&response.error)? {
                pb::ErrorCode::None => return Ok(()),
                pb::ErrorCode::NotCoordinator
                | pb::ErrorCode::CoordinatorNotAvailable
                | pb::ErrorCode::LeaderNotAvailable
                | pb::ErrorCode::NotLeader
                | pb::ErrorCode::RequestTimedOut => {
                    note(ctx, group, &response.error);
                    if response
                        .error
                        .as_ref()
                        .is_some_and(|e| e.leader_addr.is_empty())
                    {
                        find(ctx, group).await?;
                    }
                    last = format!("{:?}", response.error);
                }
                other => {
                    return Err(defect(
                        "a valid commit was refused",
                        format!("{group:?}: {other:?} {:?}", response.error),
                    ));
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(defect(
        "__offsets partition stopped taking writes",
        format!("group {group:?}: {last}"),
    ))
}

/// Asks any node for `group`'s coordinator.
pub async fn find(ctx: &Ctx, group: &str) -> Checked {
    let request = pb::FindCoordinatorRequest {
        group: group.to_string(),
    };
    if let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .find_coordinator(request.clone()),
    )
    .await?
        && typed(&response.error)? == pb::ErrorCode::None
    {
        ctx.cluster.note_coordinator(group, &response.addr);
    }
    Ok(())
}

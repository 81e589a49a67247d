//! The valid members of queue groups, so the cases exercise the real paths: a member joins
//! one of [`MEMBER_GROUPS`] on the idempotent model topic (from its start, with the group's
//! settings: every member of these groups asks for the same), fetches a few records, settles
//! them (mostly acks; releases, with and without a delay; a few rejects, which go to the
//! group's dead-letter topic; extends), then leaves, or goes silent and expires. In the
//! settle cases it first sends hostile settlements of the records it holds: another delivery
//! count, a partition the topic does not have, an offset far away, a topic it does not read,
//! a delay past a day, an unknown action.
//!
//! What must hold: the join is taken (or answered with a code that sends it elsewhere);
//! every record is of the topic, delivered at least once; every hostile settlement is
//! refused and changes nothing: the valid settle that follows is taken for every record it
//! names; a record acknowledged once cannot be acknowledged again. After the case, the
//! group's `__offsets` partition takes a commit and the record's partition a write.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use stave_broker::queue::{DELAY_MS_MAX, REASON_BYTES_MAX};
use stave_proto::v1 as pb;

use super::groups::{find, note};
use super::harness::{Defect, answer, defect, typed};
use super::model::{IDEMPOTENT_PARTITIONS, IDEMPOTENT_TOPIC};
use super::names::pick;
use super::queues::{Counts, MEMBER_GROUPS, Who, judge_fetch};
use super::{After, Ctx};

/// Joins tried before the member gives up (each after a routing answer).
const JOIN_TRIES: usize = 3;
/// Between two joins, for a coordinator to be found or elected.
const JOIN_BACKOFF: Duration = Duration::from_millis(20);

/// Codes that say the member must go elsewhere, or wait, or join again: the coordinator
/// moved (and the member with it), or a write did not complete in time.
fn moved(code: pb::ErrorCode) -> bool {
    matches!(
        code,
        pb::ErrorCode::NotCoordinator
            | pb::ErrorCode::CoordinatorNotAvailable
            | pb::ErrorCode::LeaderNotAvailable
            | pb::ErrorCode::NotLeader
            | pb::ErrorCode::RequestTimedOut
            | pb::ErrorCode::UnknownMemberId
    )
}

/// A member in a group, at the group's coordinator.
struct Member {
    group: String,
    id: String,
    node: usize,
}

/// The valid join every member of [`MEMBER_GROUPS`] sends.
fn join_request(group: &str) -> pb::QueueFetchRequest {
    pb::QueueFetchRequest {
        group: group.to_string(),
        topics: vec![IDEMPOTENT_TOPIC.to_string()],
        start: Some(pb::queue_fetch_request::Start::Earliest(true)),
        ..Default::default()
    }
}

/// Joins `group`; `None` when the coordinator could not be reached in [`JOIN_TRIES`].
async fn join(ctx: &Ctx, group: &str) -> Result<Option<Member>, Defect> {
    let request = join_request(group);
    for _ in 0..JOIN_TRIES {
        let node = ctx.cluster.coordinator(group);
        let mut client = ctx.cluster.client(node);
        let call = client.queue_fetch(request.clone());
        let Some(response) = answer(&request, call).await? else {
            return Ok(None);
        };
        let code = typed(&response.error)?;
        if code == pb::ErrorCode::None {
            let id = judge_fetch(&request, &Who::Nobody, &response)?.unwrap_or_default();
            Counts::add(&ctx.queue_counts.joins, 1);
            return Ok(Some(Member {
                group: group.to_string(),
                id,
                node,
            }));
        }
        if !moved(code) || code == pb::ErrorCode::UnknownMemberId {
            return Err(defect(
                "a valid queue join was refused",
                format!("{group}: {:?}", response.error),
            ));
        }
        note(ctx, group, &response.error);
        if response
            .error
            .as_ref()
            .is_some_and(|e| e.leader_addr.is_empty())
        {
            find(ctx, group).await?;
        }
        tokio::time::sleep(JOIN_BACKOFF).await;
    }
    Ok(None)
}

/// A fetch of a few records, waiting a little for them; `None`: the member is gone.
async fn fetch(
    ctx: &Ctx,
    rng: &mut StdRng,
    member: &Member,
) -> Result<Option<Vec<pb::ConsumedRecord>>, Defect> {
    let request = pb::QueueFetchRequest {
        group: member.group.clone(),
        member_id: member.id.clone(),
        max_records: rng.random_range(1..=8),
        max_wait_ms: rng.random_range(20..=150),
        ..Default::default()
    };
    let mut client = ctx.cluster.client(member.node);
    let call = client.queue_fetch(request.clone());
    let Some(response) = answer(&request, call).await? else {
        return Ok(None);
    };
    let code = typed(&response.error)?;
    if code != pb::ErrorCode::None {
        if moved(code) {
            return Ok(None);
        }
        return Err(defect(
            "a member's valid fetch was refused",
            format!("{}: {:?}", member.group, response.error),
        ));
    }
    judge_fetch(&request, &Who::Joined(member.id.clone()), &response)?;
    Counts::add(&ctx.queue_counts.delivered, response.records.len());
    if let Some(record) = response
        .records
        .iter()
        .find(|r| r.topic != IDEMPOTENT_TOPIC)
    {
        return Err(defect(
            "a queue delivery from a topic the group does not read",
            format!("{}: {}/{}", member.group, record.topic, record.partition),
        ));
    }
    Ok(Some(response.records))
}

/// The settlement of `record` as it was delivered.
fn settlement_of(record: &pb::ConsumedRecord, action: pb::SettleAction) -> pb::Settlement {
    pb::Settlement {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        delivery_count: record.delivery_count,
        action: action as i32,
        delay_ms: 0,
        reason: String::new(),
    }
}

/// A settlement of a held record, made wrong in one way: it must be refused.
fn misnamed(rng: &mut StdRng, record: &pb::ConsumedRecord) -> pb::Settlement {
    let mut wrong = settlement_of(record, pb::SettleAction::SettleAck);
    match rng.random_range(0..7) {
        0 => wrong.delivery_count = record.delivery_count.wrapping_add(1).max(2),
        1 => wrong.delivery_count = pick(rng, &[0, u32::MAX]),
        2 => wrong.partition = pick(rng, &[IDEMPOTENT_PARTITIONS, u32::MAX]),
        3 => wrong.offset = record.offset.wrapping_add(1 << 40),
        4 => wrong.topic = super::model::PLAIN_TOPIC.into(),
        5 => wrong.topic = pick(rng, &[String::new(), format!("_dlq.{}", record.topic)]),
        _ => {
            wrong.action = pb::SettleAction::SettleRelease as i32;
            wrong.delay_ms = pick(rng, &[DELAY_MS_MAX + 1, u64::MAX]);
        }
    }
    wrong
}

/// Sends a settle; the answers, or `None` when the member is gone.
async fn settle(
    ctx: &Ctx,
    member: &Member,
    settlements: Vec<pb::Settlement>,
) -> Result<Option<pb::QueueSettleResponse>, Defect> {
    let request = pb::QueueSettleRequest {
        group: member.group.clone(),
        member_id: member.id.clone(),
        settlements,
    };
    let mut client = ctx.cluster.client(member.node);
    let call = client.queue_settle(request.clone());
    let Some(response) = answer(&request, call).await? else {
        return Ok(None);
    };
    let who = Who::Joined(member.id.clone());
    super::queues::judge_settle(&request, &who, &response)?;
    ctx.queue_counts.results(&response.results);
    let code = typed(&response.error)?;
    if code == pb::ErrorCode::None {
        return Ok(Some(response));
    }
    let unknown_action = request
        .settlements
        .iter()
        .any(|s| pb::SettleAction::try_from(s.action).is_err());
    if moved(code) || (unknown_action && code == pb::ErrorCode::InvalidRequest) {
        return Ok(None);
    }
    Err(defect(
        "a member's settle was refused whole",
        format!("{:?}: {}", response.error, super::harness::shown(&request)),
    ))
}

/// Hostile settlements of records the member holds (and valid extends): each wrong one is
/// refused, each extend taken. False: the member is gone.
async fn settle_hostile(
    ctx: &Ctx,
    rng: &mut StdRng,
    member: &Member,
    records: &[pb::ConsumedRecord],
) -> Result<bool, Defect> {
    let mut settlements: Vec<pb::Settlement> = Vec::new();
    let mut valid: Vec<bool> = Vec::new();
    for record in records {
        let extend = rng.random_ratio(1, 4);
        settlements.push(if extend {
            settlement_of(record, pb::SettleAction::SettleExtend)
        } else {
            misnamed(rng, record)
        });
        valid.push(extend);
    }
    if rng.random_ratio(1, 8) {
        let mut unknown = settlements[0].clone();
        unknown.action = pick(rng, &[4, -1, i32::MAX]);
        settlements.push(unknown);
        valid.push(false);
    }
    let Some(response) = settle(ctx, member, settlements.clone()).await? else {
        // Refused whole for its unknown action (nothing settled), or the member is gone.
        let unknown = |s: &pb::Settlement| pb::SettleAction::try_from(s.action).is_err();
        return Ok(settlements.iter().any(unknown));
    };
    for ((settlement, result), valid) in settlements.iter().zip(&response.results).zip(valid) {
        let code = typed(&Some(result.clone()))?;
        if valid != (code == pb::ErrorCode::None) {
            return Err(defect(
                "a member's settlement of a record it holds was judged wrong",
                format!(
                    "{} expected {}, got {result:?}",
                    super::harness::shown(settlement),
                    if valid { "NONE" } else { "a refusal" },
                ),
            ));
        }
    }
    Ok(true)
}

/// The valid outcome of a record: mostly an ack.
fn outcome(rng: &mut StdRng, record: &pb::ConsumedRecord) -> pb::Settlement {
    use pb::SettleAction as A;
    let action = match rng.random_range(0..40) {
        0..=29 => A::SettleAck,
        30..=35 => A::SettleRelease,
        36 => A::SettleReject,
        _ => A::SettleExtend,
    };
    let mut settlement = settlement_of(record, action);
    if action == A::SettleRelease {
        settlement.delay_ms = pick(rng, &[0, 10, 50]);
    }
    if matches!(action, A::SettleRelease | A::SettleReject) && rng.random_bool(0.5) {
        settlement.reason = "r".repeat(pick(rng, &[1, REASON_BYTES_MAX]));
    }
    settlement
}

/// The valid settle: every settlement is taken; then a second ack of an acked record is
/// refused. False: the member is gone.
async fn settle_valid(
    ctx: &Ctx,
    rng: &mut StdRng,
    member: &Member,
    records: &[pb::ConsumedRecord],
) -> Result<bool, Defect> {
    let settlements: Vec<pb::Settlement> = records.iter().map(|r| outcome(rng, r)).collect();
    let Some(response) = settle(ctx, member, settlements.clone()).await? else {
        return Ok(false);
    };
    for (settlement, result) in settlements.iter().zip(&response.results) {
        if typed(&Some(result.clone()))? != pb::ErrorCode::None {
            return Err(defect(
                "a member's valid settlement was refused",
                format!("{} got {result:?}", super::harness::shown(settlement)),
            ));
        }
    }
    let acked = settlements
        .iter()
        .find(|s| s.action == pb::SettleAction::SettleAck as i32);
    if let Some(acked) = acked.filter(|_| rng.random_bool(0.5)) {
        let Some(again) = settle(ctx, member, vec![acked.clone()]).await? else {
            return Ok(false);
        };
        if again.results.first().is_some_and(|r| r.code == 0) {
            return Err(defect(
                "a record was acknowledged twice",
                super::harness::shown(acked),
            ));
        }
    }
    Ok(true)
}

/// A valid member's session (see the module doc); `hostile`: settle wrongly first.
pub async fn session(ctx: &Ctx, rng: &mut StdRng, hostile: bool) -> Result<After, Defect> {
    let group = pick(rng, &MEMBER_GROUPS).to_string();
    let partition = rng.random_range(0..IDEMPOTENT_PARTITIONS);
    let mut after = After::touching_partition(IDEMPOTENT_TOPIC, partition);
    after.group = Some(group.clone());
    let Some(member) = join(ctx, &group).await? else {
        return Ok(after);
    };
    let mut present = true;
    for _ in 0..rng.random_range(1..=2) {
        let Some(records) = fetch(ctx, rng, &member).await? else {
            present = false;
            break;
        };
        if records.is_empty() {
            continue;
        }
        after.partition = Some((IDEMPOTENT_TOPIC.to_string(), records[0].partition));
        present = (!hostile || settle_hostile(ctx, rng, &member, &records).await?)
            && settle_valid(ctx, rng, &member, &records).await?;
        if !present {
            break;
        }
    }
    if present && rng.random_ratio(9, 10) {
        leave(ctx, &member).await?;
    }
    Ok(after)
}

/// Leaves: what the member holds goes back at once.
async fn leave(ctx: &Ctx, member: &Member) -> Result<(), Defect> {
    let request = pb::QueueFetchRequest {
        group: member.group.clone(),
        member_id: member.id.clone(),
        leave: true,
        ..Default::default()
    };
    let mut client = ctx.cluster.client(member.node);
    let call = client.queue_fetch(request.clone());
    if let Some(response) = answer(&request, call).await? {
        let code = typed(&response.error)?;
        if code != pb::ErrorCode::None && !moved(code) {
            return Err(defect(
                "a member's leave was refused",
                format!("{}: {:?}", member.group, response.error),
            ));
        }
        judge_fetch(&request, &Who::Joined(member.id.clone()), &response)?;
    }
    Ok(())
}

//! Cases of queue groups: QueueFetch and QueueSettle from hostile members (the valid members
//! are in [`super::queue_members`], Consume in queue mode in [`super::queue_streams`]).
//!
//! Hostile values: group names empty, over 255 bytes, or whose dead-letter topic
//! `_dlq.{group}.{topic}` cannot be named (non-ASCII, too long); member ids forged (random
//! hex, `0`, non-hex, signed, very long) or stolen from another member; subscriptions to no
//! topic, to internal topics, to patterns malformed or matching everything, to dead-letter
//! topics; lock periods, delivery limits and spans at and past their edges; record counts
//! and waits up to `u32::MAX`; leaves with and without a member id; settlements of records
//! never delivered, with delivery counts 0 and huge, unknown actions, delays past a day and
//! reasons past 1 KiB.
//!
//! What must hold: every answer is typed; a request with a fault that needs no cluster state
//! to see (an invalid setting, a forged member, a missing name) is refused; a join answers a
//! well-formed member id; a fetch never answers more records than it asked for; a settle
//! answers each settlement in order, and refuses each one it cannot take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use stave_broker::consumer_group::pattern::Pattern;
use stave_broker::queue::{
    DELAY_MS_MAX, FETCH_RECORDS_MAX, LOCK_MS_MAX, MAX_DELIVERIES_MAX, REASON_BYTES_MAX, SPAN_MAX,
    dead_letter_topic,
};
use stave_proto::v1 as pb;

use super::groups::{node_for, note, valid_group};
use super::harness::{Checked, Defect, answer, defect, typed};
use super::model::{IDEMPOTENT_PARTITIONS, IDEMPOTENT_TOPIC, PLAIN_PARTITIONS, PLAIN_TOPIC};
use super::names::{POOL_TOPICS, edge_i64, edge_u32, edge_u64, hostile_string, pattern, pick};
use super::{After, Ctx};

/// What the queue cases reached, counted over a run.
#[derive(Default)]
pub struct Counts {
    /// Joins taken (valid members and hostile ones).
    pub joins: AtomicU64,
    /// Records delivered (by QueueFetch, or pushed to a queue stream).
    pub delivered: AtomicU64,
    /// Settlements taken (NONE).
    pub settled: AtomicU64,
    /// Settlements refused one by one.
    pub refused: AtomicU64,
}

impl Counts {
    pub fn add(counter: &AtomicU64, count: usize) {
        counter.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts settlement answers: taken or refused.
    pub fn results(&self, results: &[pb::Error]) {
        let taken = results.iter().filter(|r| r.code == 0).count();
        Counts::add(&self.settled, taken);
        Counts::add(&self.refused, results.len() - taken);
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        write!(
            f,
            "{} joins, {} records delivered, {} settlements taken, {} refused",
            get(&self.joins),
            get(&self.delivered),
            get(&self.settled),
            get(&self.refused)
        )
    }
}

/// Queue groups only the valid members join (see [`super::queue_members`]); hostile
/// requests reach them only with forged member ids.
pub const MEMBER_GROUPS: [&str; 2] = ["fuzz.qm0", "fuzz.qm1"];

/// Members that joined a hostile group and did not leave, kept for others to steal.
const STOLEN_KEPT: usize = 16;

/// A fetch that may rightly wait this long or longer is given up by the client after
/// [`CLIENT_GIVES_UP`]: a real member's long poll is no hang.
const WAIT_LONG_MS: u32 = 200;
const CLIENT_GIVES_UP: Duration = Duration::from_millis(300);

/// A group a hostile member may join. A bounded set: a joined group runs a task on its
/// coordinator, reads its topics ahead, and creates a dead-letter topic per topic it
/// dead-letters. `fuzz.g1` is one of the consumer groups the group cases use.
pub fn join_group(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => String::new(),
        1 => "q".repeat(256),
        // Its dead-letter topics cannot be named: too long, or not ASCII.
        2 => "q".repeat(240),
        3 => "fuzz.q-ünïcode".into(),
        4 => "fuzz.g1".into(),
        5..=7 => "fuzz.q0".into(),
        _ => "fuzz.q1".into(),
    }
}

/// A group for a request that joins nothing (a forged or stolen member): any name.
pub fn any_group(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => hostile_string(rng),
        1 => pick(rng, &MEMBER_GROUPS).into(),
        _ => join_group(rng),
    }
}

/// A member id no member has: well-formed but unknown, zero, signed, non-hex, very long.
pub fn forged_member_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..9) {
        0 | 1 => format!("{:016x}", rng.random::<u64>()),
        2 => format!("{:016X}", rng.random::<u64>()),
        3 => pick(rng, &["0", "0000000000000000", "ffffffffffffffff"]).into(),
        4 => "f".repeat(pick(rng, &[17, 64, 100 * 1024])),
        5 => pick(rng, &["+1f", "-1", " 1f", "0x1f", "zz", "member-1", "1f\0"]).into(),
        6 => format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>()),
        _ => {
            let id = hostile_string(rng);
            if id.is_empty() { "g".into() } else { id }
        }
    }
}

/// A topic a member may name: model and pool topics, patterns valid and not, internal,
/// system (dead letters), unknown and hostile names.
pub fn subscribed_topic(rng: &mut StdRng) -> String {
    match rng.random_range(0..12) {
        0 | 1 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC]).into(),
        2 => pick(rng, &POOL_TOPICS).into(),
        3 => pick(
            rng,
            &["fuzz.model.*", "fuzz.#", "#", "*", "*.*.*", "fuzz.pool.*"],
        )
        .into(),
        4 => pattern(rng),
        5 => pick(rng, &["__offsets", "__fuzz", "__*"]).into(),
        6 => dead_letter_topic(&join_group(rng), IDEMPOTENT_TOPIC),
        7 => pick(rng, &["fuzz.nope", "fuzz.nope.#", "_fuzz.none"]).into(),
        8 => pick(rng, &["", ".", "a..b", "fuzz.*x", "fuzz.#.", "trail."]).into(),
        _ => hostile_string(rng),
    }
}

/// Options at and past their edges (each field unset half the time).
pub fn options(rng: &mut StdRng) -> Option<pb::QueueOptions> {
    if rng.random_bool(0.4) {
        return None;
    }
    let lock = [
        0,
        -1,
        1,
        2,
        50,
        30_000,
        LOCK_MS_MAX,
        LOCK_MS_MAX + 1,
        i64::MAX,
        i64::MIN,
    ];
    let deliveries = [
        0,
        1,
        2,
        5,
        MAX_DELIVERIES_MAX,
        MAX_DELIVERIES_MAX + 1,
        u32::MAX,
    ];
    let span = [0, 1, 2, 100_000, SPAN_MAX, SPAN_MAX + 1, u64::MAX];
    Some(pb::QueueOptions {
        lock_ms: rng.random_bool(0.5).then(|| pick(rng, &lock)),
        max_deliveries: rng.random_bool(0.5).then(|| pick(rng, &deliveries)),
        ordering: pick(rng, &[0, 0, 1, 2, -1, i32::MAX]),
        max_unacked_span: rng.random_bool(0.5).then(|| pick(rng, &span)),
    })
}

/// Why `options` must be refused, if they must.
pub fn options_fault(options: &Option<pb::QueueOptions>) -> Option<&'static str> {
    let options = options.as_ref()?;
    if options
        .lock_ms
        .is_some_and(|v| !(1..=LOCK_MS_MAX).contains(&v))
    {
        Some("lock_ms out of range")
    } else if options
        .max_deliveries
        .is_some_and(|v| !(1..=MAX_DELIVERIES_MAX).contains(&v))
    {
        Some("max_deliveries out of range")
    } else if options
        .max_unacked_span
        .is_some_and(|v| !(1..=SPAN_MAX).contains(&v))
    {
        Some("max_unacked_span out of range")
    } else {
        None
    }
}

/// Why a join with `topics` to `group` must be refused, if it must.
pub fn subscription_fault(group: &str, topics: &[String]) -> Option<&'static str> {
    if topics.is_empty() {
        return Some("no topic");
    }
    for topic in topics {
        let Ok(parsed) = Pattern::parse(topic) else {
            return Some("a malformed pattern");
        };
        if topic.starts_with("__") {
            return Some("an internal topic");
        }
        let letters = dead_letter_topic(group, topic);
        if parsed.is_literal() && stave_raft::controller::validate_topic_name(&letters).is_err() {
            return Some("a dead-letter topic that cannot be named");
        }
    }
    None
}

fn start(rng: &mut StdRng) -> Option<pb::queue_fetch_request::Start> {
    use pb::queue_fetch_request::Start;
    match rng.random_range(0..6) {
        0 => None,
        1 => Some(Start::Earliest(rng.random())),
        2 => Some(Start::Latest(rng.random())),
        3 => Some(Start::Offset(edge_u64(rng))),
        4 => Some(Start::TimestampMs(edge_i64(rng))),
        _ => Some(Start::Earliest(true)),
    }
}

/// Records a fetch asks for: mostly few (a hostile member's records may go to dead-letter
/// topics one write each), sometimes the most, or past it.
fn max_records(rng: &mut StdRng) -> u32 {
    match rng.random_range(0..30) {
        0 => FETCH_RECORDS_MAX,
        1 | 2 => FETCH_RECORDS_MAX + 1,
        3 | 4 => u32::MAX,
        5..=12 => 0,
        _ => rng.random_range(1..6),
    }
}

/// How long a fetch waits: mostly not long, sometimes past the 30 s cap.
fn max_wait_ms(rng: &mut StdRng) -> u32 {
    match rng.random_range(0..20) {
        0 => pick(rng, &[1_000, 30_000, 30_001, u32::MAX]),
        _ => rng.random_range(0..=50),
    }
}

/// The member a request names: the one this case joined, a forged one, a stolen one, none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Joined in this case (and not left).
    Joined(String),
    Forged(String),
    /// Another case's member (of any group): may or may not still be in.
    Stolen(String),
    /// Empty: a join.
    Nobody,
}

impl Who {
    pub fn id(&self) -> &str {
        match self {
            Who::Joined(id) | Who::Forged(id) | Who::Stolen(id) => id,
            Who::Nobody => "",
        }
    }
}

fn who(ctx: &Ctx, rng: &mut StdRng, joined: Option<&str>) -> Who {
    if let Some(id) = joined
        && rng.random_bool(0.7)
    {
        return Who::Joined(id.to_string());
    }
    match rng.random_range(0..10) {
        0..=3 => Who::Forged(forged_member_id(rng)),
        4 | 5 => {
            let stolen = ctx.queue_members.lock().unwrap().clone();
            if stolen.is_empty() {
                Who::Forged(forged_member_id(rng))
            } else {
                Who::Stolen(pick(rng, &stolen).1)
            }
        }
        _ => Who::Nobody,
    }
}

/// Keeps a hostile member for later cases to steal.
fn keep_member(ctx: &Ctx, group: &str, id: &str) {
    let mut kept = ctx.queue_members.lock().unwrap();
    if kept.len() >= STOLEN_KEPT {
        kept.remove(0);
    }
    kept.push((group.to_string(), id.to_string()));
}

fn fetch_request(rng: &mut StdRng, group: &str, who: &Who) -> pb::QueueFetchRequest {
    let topics = if *who == Who::Nobody || rng.random_ratio(1, 10) {
        (0..pick(rng, &[0, 1, 1, 1, 2, 3]))
            .map(|_| subscribed_topic(rng))
            .collect()
    } else {
        Vec::new()
    };
    pb::QueueFetchRequest {
        group: group.to_string(),
        member_id: who.id().to_string(),
        topics,
        options: options(rng),
        start: start(rng),
        max_records: max_records(rng),
        max_wait_ms: max_wait_ms(rng),
        leave: rng.random_ratio(3, 20),
    }
}

/// Why a fetch must be refused whatever the cluster holds, if it must.
pub fn fetch_fault(request: &pb::QueueFetchRequest, who: &Who) -> Option<&'static str> {
    if let Some(fault) = options_fault(&request.options) {
        return Some(fault);
    }
    if request.max_records > FETCH_RECORDS_MAX {
        return Some("too many records asked for");
    }
    if !valid_group(&request.group) {
        return Some("no group name");
    }
    match who {
        Who::Nobody if request.leave => Some("a leave without a member id"),
        Who::Nobody => subscription_fault(&request.group, &request.topics),
        Who::Forged(_) => Some("a forged member id"),
        Who::Joined(_) | Who::Stolen(_) => None,
    }
}

/// Judges a fetch's answer; the member id it answered, when it took the request.
pub fn judge_fetch(
    request: &pb::QueueFetchRequest,
    who: &Who,
    response: &pb::QueueFetchResponse,
) -> Result<Option<String>, Defect> {
    let code = typed(&response.error)?;
    let shown = || {
        format!(
            "{who:?} fetch {} topics {:?} options {:?} max_records {} leave {} answered {code:?} {:?}",
            super::harness::shown(&request.group),
            request
                .topics
                .iter()
                .map(|t| super::harness::shown(t))
                .collect::<Vec<_>>(),
            request.options,
            request.max_records,
            request.leave,
            response.error
        )
    };
    if code != pb::ErrorCode::None {
        return Ok(None);
    }
    if let Some(fault) = fetch_fault(request, who) {
        return Err(defect(
            "a queue fetch with a fault was taken",
            format!("{fault}: {}", shown()),
        ));
    }
    let id = &response.member_id;
    let well_formed = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed || matches!(who, Who::Joined(own) | Who::Stolen(own) if own != id) {
        return Err(defect(
            "a queue fetch answered another member id",
            format!("{id:?}: {}", shown()),
        ));
    }
    let asked = if request.leave {
        0
    } else {
        request.max_records as usize
    };
    if response.records.len() > asked {
        return Err(defect(
            "a queue fetch answered more records than asked",
            format!("{} records: {}", response.records.len(), shown()),
        ));
    }
    for record in &response.records {
        judge_delivered(record)?;
    }
    Ok(Some(id.clone()))
}

/// What every delivered record must be: of a topic a member may read, delivered at least
/// once.
pub fn judge_delivered(record: &pb::ConsumedRecord) -> Checked {
    if record.topic.starts_with("__") || record.delivery_count == 0 || record.lock_deadline_ms <= 0
    {
        return Err(defect(
            "a queue delivery is malformed",
            format!(
                "{}/{} offset {} delivery {} lock deadline {}",
                record.topic,
                record.partition,
                record.offset,
                record.delivery_count,
                record.lock_deadline_ms
            ),
        ));
    }
    let (topic, count) = (record.topic.as_str(), record.partition);
    let missing = (topic == PLAIN_TOPIC && count >= PLAIN_PARTITIONS)
        || (topic == IDEMPOTENT_TOPIC && count >= IDEMPOTENT_PARTITIONS);
    if missing {
        return Err(defect(
            "a queue delivery from a partition that does not exist",
            topic,
        ));
    }
    Ok(())
}

/// Sends a fetch. One that may rightly wait long (it may join, or names a member that may
/// be in) is given up by the client after [`CLIENT_GIVES_UP`]: `Ok(None)`, as for an
/// acceptable failure.
pub async fn send_fetch(
    ctx: &Ctx,
    node: usize,
    request: &pb::QueueFetchRequest,
    who: &Who,
) -> Result<Option<pb::QueueFetchResponse>, Defect> {
    let may_wait = request.max_records > 0
        && request.max_wait_ms > WAIT_LONG_MS
        && !request.leave
        && !matches!(who, Who::Forged(_));
    let mut client = ctx.cluster.client(node);
    let call = answer(request, client.queue_fetch(request.clone()));
    if !may_wait {
        return call.await;
    }
    tokio::time::timeout(CLIENT_GIVES_UP, call)
        .await
        .unwrap_or(Ok(None))
}

/// A hostile member's life: up to three fetches to one group, each joining, fetching,
/// heartbeating or leaving, as a forged, stolen or joined member.
async fn hostile_fetches(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let group = join_group(rng);
    let mut joined: Option<String> = None;
    let mut after = After::group(&group);
    for _ in 0..rng.random_range(1..=3) {
        let who = who(ctx, rng, joined.as_deref());
        let target = if matches!(who, Who::Stolen(_)) && rng.random_bool(0.5) {
            any_group(rng)
        } else {
            group.clone()
        };
        let request = fetch_request(rng, &target, &who);
        let node = node_for(ctx, rng, &target);
        let Some(response) = send_fetch(ctx, node, &request, &who).await? else {
            continue;
        };
        note(ctx, &target, &response.error);
        let taken = judge_fetch(&request, &who, &response)?;
        let counts = &ctx.queue_counts;
        Counts::add(&counts.delivered, response.records.len());
        if taken.is_some() && who == Who::Nobody {
            Counts::add(&counts.joins, 1);
        }
        if let Some(id) = taken.filter(|_| target == group) {
            if request.leave {
                joined = None;
            } else if who == Who::Nobody {
                joined = Some(id);
            }
        }
        if let Some(record) = response.records.first()
            && super::model::is_model_topic(&record.topic)
        {
            after.partition = Some((record.topic.clone(), record.partition));
        }
    }
    if let Some(id) = joined {
        keep_member(ctx, &group, &id);
    }
    Ok(after)
}

pub async fn queue_fetch(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    if rng.random_ratio(2, 5) {
        return super::queue_members::session(ctx, rng, false).await;
    }
    hostile_fetches(ctx, rng).await
}

/// A settlement's action: the four, or a number no action has.
fn action(rng: &mut StdRng) -> i32 {
    match rng.random_range(0..12) {
        0..=4 => pb::SettleAction::SettleAck as i32,
        5 | 6 => pb::SettleAction::SettleRelease as i32,
        7 => pb::SettleAction::SettleReject as i32,
        8 | 9 => pb::SettleAction::SettleExtend as i32,
        _ => pick(rng, &[4, 5, -1, i32::MAX, i32::MIN]),
    }
}

/// A reason: mostly short, sometimes at, just past, or far past 1 KiB (in bytes, not
/// characters: 513 two-byte characters are 1,026 bytes).
fn reason(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => "r".repeat(REASON_BYTES_MAX),
        1 => "r".repeat(REASON_BYTES_MAX + 1),
        2 => "é".repeat(REASON_BYTES_MAX / 2 + 1),
        3 => hostile_string(rng),
        4 => "r".repeat(64 * 1024),
        _ => String::new(),
    }
}

/// A settlement of a record never delivered, or named wrong: any topic, partition, offset
/// and delivery count; delays past a day; long reasons.
pub fn settlement(rng: &mut StdRng) -> pb::Settlement {
    let topic = match rng.random_range(0..4) {
        0 | 1 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC]).into(),
        _ => subscribed_topic(rng),
    };
    let (count_edge, delay_edge) = (edge_u32(rng), edge_u64(rng));
    let delays = [
        0,
        0,
        1,
        50,
        DELAY_MS_MAX,
        DELAY_MS_MAX + 1,
        u64::MAX,
        delay_edge,
    ];
    pb::Settlement {
        topic,
        partition: edge_u32(rng),
        offset: edge_u64(rng),
        delivery_count: pick(rng, &[0, 1, 1, 2, 5, u32::MAX, count_edge]),
        action: action(rng),
        delay_ms: pick(rng, &delays),
        reason: reason(rng),
    }
}

/// Settlements for one request: none, a few, or one past the most a settle may name (small
/// ones, so the request stays small).
pub fn settlements(rng: &mut StdRng) -> Vec<pb::Settlement> {
    match rng.random_range(0..25) {
        0 => Vec::new(),
        1 => {
            let small = pb::Settlement {
                topic: IDEMPOTENT_TOPIC.into(),
                delivery_count: 1,
                ..Default::default()
            };
            vec![small; FETCH_RECORDS_MAX as usize + 1]
        }
        _ => (0..rng.random_range(1..6))
            .map(|_| settlement(rng))
            .collect(),
    }
}

/// Whether a settle with `settlements` must be refused whole. (A settlement with an unknown
/// action may refuse the whole request or itself alone: see [`settlement_fault`].)
pub fn settle_fault(group: &str, settlements: &[pb::Settlement]) -> Option<&'static str> {
    if settlements.len() > FETCH_RECORDS_MAX as usize {
        Some("too many settlements")
    } else if !valid_group(group) {
        Some("no group name")
    } else {
        None
    }
}

/// Why one settlement must be refused whatever the member holds, if it must. (A reason past
/// 1 KiB may be refused or cut: either answer is typed.)
pub fn settlement_fault(settlement: &pb::Settlement) -> Option<&'static str> {
    let Ok(action) = pb::SettleAction::try_from(settlement.action) else {
        return Some("an unknown action");
    };
    if action == pb::SettleAction::SettleRelease && settlement.delay_ms > DELAY_MS_MAX {
        Some("a delay past a day")
    } else if settlement.delivery_count == 0 {
        Some("delivery 0 (deliveries count from 1)")
    } else if settlement.topic.is_empty()
        || settlement.topic.starts_with("__")
        || settlement.topic.contains(['*', '#'])
        || settlement.offset >= 1 << 40
    {
        Some("a record no member holds")
    } else {
        None
    }
}

/// Judges a settle's answer to `who`.
pub fn judge_settle(
    request: &pb::QueueSettleRequest,
    who: &Who,
    response: &pb::QueueSettleResponse,
) -> Checked {
    let code = typed(&response.error)?;
    let shown = || super::harness::shown(request);
    if code != pb::ErrorCode::None {
        if !response.results.is_empty() {
            return Err(defect("a refused settle answered settlements", shown()));
        }
        return Ok(());
    }
    let whole = settle_fault(&request.group, &request.settlements).or(match who {
        Who::Forged(_) => Some("a forged member id"),
        Who::Nobody => Some("no member id"),
        Who::Joined(_) | Who::Stolen(_) => None,
    });
    if let Some(fault) = whole {
        return Err(defect(
            "a settle with a fault was taken",
            format!("{fault}: {}", shown()),
        ));
    }
    if response.results.len() != request.settlements.len() {
        return Err(defect(
            "one answer per settlement",
            format!("{} answers: {}", response.results.len(), shown()),
        ));
    }
    for (settlement, result) in request.settlements.iter().zip(&response.results) {
        let code = typed(&Some(result.clone()))?;
        if let Some(fault) = settlement_fault(settlement).filter(|_| code == pb::ErrorCode::None) {
            return Err(defect(
                "a settlement with a fault was taken",
                format!("{fault}: {}", super::harness::shown(settlement)),
            ));
        }
    }
    Ok(())
}

/// Hostile settlements from a forged, stolen or missing member, to any group.
async fn hostile_settle(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let who = who(ctx, rng, None);
    let group = any_group(rng);
    let request = pb::QueueSettleRequest {
        group: group.clone(),
        member_id: who.id().to_string(),
        settlements: settlements(rng),
    };
    let node = node_for(ctx, rng, &group);
    if let Some(response) = answer(
        &request,
        ctx.cluster.client(node).queue_settle(request.clone()),
    )
    .await?
    {
        note(ctx, &group, &response.error);
        judge_settle(&request, &who, &response)?;
        ctx.queue_counts.results(&response.results);
    }
    Ok(After::group(&group))
}

pub async fn queue_settle(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    if rng.random_ratio(2, 5) {
        return super::queue_members::session(ctx, rng, true).await;
    }
    hostile_settle(ctx, rng).await
}

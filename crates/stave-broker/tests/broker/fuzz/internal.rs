//! The internal Raft services (`RaftControl`, `RaftData`) under hostile calls, from a client
//! without the cluster secret (each must be refused UNAUTHENTICATED) and from one holding it
//! (a node gone wrong, a leaked secret: nothing may break). Malformed and hostile calls: garbage and unknown group ids, missing fields, stale
//! and bogus terms and log ids, entries with malformed frames, huge payloads, snapshots that
//! do not decode, append streams that end abruptly.
//!
//! What the calls may carry is bounded by what a well-formed forgery could do on purpose
//! (see `forged.rs` and the issue 15 report): votes and appends for a running group carry a
//! term below the group's current one, or the current leader's vote with a previous log id
//! no replica holds, so no replica may act on them; pre-votes (which change nothing) carry
//! any term. Within that, nothing may hurt the cluster: after the cases no node panicked,
//! every model partition takes writes with all three replicas in sync, every acknowledged
//! record is served unchanged, and the cluster metadata (nodes, topics) is intact.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_broker::cluster_secret::ClusterSecret;
use stave_log::batch::ProducerFields;
use stave_proto::internal::raft as rpb;
use stave_proto::internal::raft::raft_control_client::RaftControlClient;
use stave_proto::internal::raft::raft_data_client::RaftDataClient;
use stave_proto::v1 as pb;
use stave_raft::transport::auth::AttachSecret;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::frames::{self, Size};
use super::harness::{self, Checked, Defect, HEAL_MAX, answer, defect, env_u64};
use super::model;
use super::names::{edge_u64, hostile_string, pick};
use super::{Ctx, case_rng};

/// Cases the internal fuzz makes unless `STAVE_FUZZ_INTERNAL_CASES` says otherwise.
const CASES_DEFAULT: u64 = 150;
/// The cluster's health is checked this often.
const HEAL_EVERY: u64 = 50;
/// The thread-name prefix of the nodes' runtime (the insider's run).
const THREADS: &str = "fuzz-raft-node";
/// The thread-name prefix of the nodes' runtime in the outsider's run.
const OUTSIDER_THREADS: &str = "fuzz-raft-outsider";

/// A node's `RaftControl` as the fuzz calls it (with the cluster secret or without).
pub type Control = RaftControlClient<InterceptedService<Channel, AttachSecret>>;
/// A node's `RaftData` as the fuzz calls it.
pub type Data = RaftDataClient<InterceptedService<Channel, AttachSecret>>;

/// Clients of a node's internal services.
#[derive(Clone)]
pub struct Internal {
    pub control: Vec<Control>,
    pub data: Vec<Data>,
    /// Node id of each node, by index.
    pub ids: Vec<u64>,
    /// Calls without the cluster secret: every one must be refused UNAUTHENTICATED.
    pub outsider: bool,
}

impl Internal {
    /// Clients that carry the cluster's secret, as another node's would.
    pub fn new(ctx: &Ctx) -> Internal {
        let secret = ctx.cluster.nodes[0].secret.clone();
        Internal::signed(ctx, Some(secret))
    }

    /// Clients of someone without the secret.
    pub fn outsider(ctx: &Ctx) -> Internal {
        Internal::signed(ctx, None)
    }

    /// Clients whose calls carry `secret` (none: no secret at all).
    pub fn signed(ctx: &Ctx, secret: Option<ClusterSecret>) -> Internal {
        let outsider = secret.as_ref() != Some(&ctx.cluster.nodes[0].secret);
        let attach = AttachSecret::new(secret);
        let channel = |addr: &str| {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy()
        };
        let nodes = &ctx.cluster.nodes;
        Internal {
            control: nodes
                .iter()
                .map(|n| {
                    RaftControlClient::with_interceptor(channel(&n.addr), attach.clone())
                        .max_decoding_message_size(128 << 20)
                        .max_encoding_message_size(128 << 20)
                })
                .collect(),
            data: nodes
                .iter()
                .map(|n| {
                    RaftDataClient::with_interceptor(channel(&n.addr), attach.clone())
                        .max_decoding_message_size(128 << 20)
                        .max_encoding_message_size(128 << 20)
                })
                .collect(),
            ids: nodes.iter().map(|n| n.id).collect(),
            outsider,
        }
    }

    /// A call's answer, as [`harness::answer`] judges it; from an outsider, only a refusal
    /// (UNAUTHENTICATED) is acceptable.
    pub async fn answer<T>(
        &self,
        request: &(dyn std::fmt::Debug + Sync),
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<Option<T>, Defect> {
        if !self.outsider {
            return answer(request, call).await;
        }
        match tokio::time::timeout(harness::CALL_MAX, call).await {
            Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated => Ok(None),
            Ok(Err(status)) => Err(defect(
                "an outsider's call was not refused UNAUTHENTICATED",
                format!(
                    "{:?}: {} to {}",
                    status.code(),
                    status.message(),
                    harness::shown(request)
                ),
            )),
            Ok(Ok(_)) => Err(defect(
                "an outsider's call was served",
                harness::shown(request),
            )),
            Err(_) => Err(defect("hang", harness::shown(request))),
        }
    }

    /// Who leads each group, and in which term, as the nodes say (`Leaderships`).
    pub async fn leaders(&self) -> Result<HashMap<u64, Vote>, Defect> {
        let mut leaders: HashMap<u64, Vote> = HashMap::new();
        for client in &self.control {
            let request = rpb::LeadershipsRequest {};
            let Some(answer) = answer(&request, client.clone().leaderships(request)).await? else {
                continue;
            };
            for group in answer.groups {
                let newer = leaders
                    .get(&group.group_id)
                    .is_none_or(|v| v.term < group.term);
                if newer {
                    let vote = Vote {
                        term: group.term,
                        leader: answer.node_id,
                    };
                    leaders.insert(group.group_id, vote);
                }
            }
        }
        Ok(leaders)
    }

    /// The index of node `id`.
    pub fn index_of(&self, id: u64) -> usize {
        self.ids.iter().position(|n| *n == id).unwrap_or(0)
    }
}

/// A group's current leader and term.
#[derive(Debug, Clone, Copy)]
pub struct Vote {
    pub term: u64,
    pub leader: u64,
}

impl Vote {
    /// The leader's own vote: what its appends carry.
    pub fn leaders(&self) -> rpb::Vote {
        rpb::Vote {
            term: self.term,
            node_id: self.leader,
            committed: true,
        }
    }
}

/// A group to aim at, with its current vote when it runs.
fn group(rng: &mut StdRng, leaders: &HashMap<u64, Vote>) -> (u64, Option<Vote>) {
    let running: Vec<u64> = leaders.keys().copied().collect();
    match rng.random_range(0..6) {
        // Ids no group has (the cluster's incarnations are small): any vote goes.
        0 => (rng.random_range(1 << 40..u64::MAX), None),
        1 => (pick(rng, &[u64::MAX, (1 << 20) - 1, 123_456 << 20]), None),
        _ if running.is_empty() => (u64::MAX, None),
        _ => {
            let id = pick(rng, &running);
            (id, leaders.get(&id).copied())
        }
    }
}

/// A vote no running replica may act on: a term below the group's (any term for a group
/// that does not run), or none at all.
fn stale_vote(rng: &mut StdRng, current: Option<Vote>) -> Option<rpb::Vote> {
    if rng.random_ratio(1, 8) {
        return None;
    }
    let term = match current {
        Some(vote) if vote.term == 0 => return None,
        Some(vote) => rng.random_range(0..vote.term),
        None => edge_u64(rng),
    };
    Some(rpb::Vote {
        term,
        node_id: node_id(rng),
        committed: rng.random(),
    })
}

/// A node id: a member's, 0, an unknown one, or any.
fn node_id(rng: &mut StdRng) -> u64 {
    let any = rng.random();
    pick(rng, &[1, 2, 3, 0, 99, u64::MAX, any])
}

fn log_id(rng: &mut StdRng) -> Option<rpb::LogId> {
    rng.random_bool(0.8).then(|| rpb::LogId {
        term: edge_u64(rng),
        index: edge_u64(rng),
    })
}

/// A previous log id no replica holds: an index far past any log.
fn unheld_log_id(rng: &mut StdRng, term: u64) -> Option<rpb::LogId> {
    Some(rpb::LogId {
        term,
        index: (1 << 62) + rng.random_range(0..1 << 20),
    })
}

/// A membership as a membership frame stores it (JSON), well-formed or not.
fn membership(rng: &mut StdRng) -> Bytes {
    let text = match rng.random_range(0..6) {
        0 => String::new(),
        1 => hostile_string(rng),
        2 => "{\"configs\":[],\"nodes\":{}}".into(),
        3 => "{\"configs\":[[1,2,3]],\"nodes\":{\"1\":\"a\",\"2\":\"b\",\"3\":\"c\"}}".into(),
        4 => format!("{{\"configs\":[[{}]],\"nodes\":{{}}}}", u64::MAX),
        _ => "{\"configs\":[[1],[2,99]],\"nodes\":{\"1\":\"x\",\"99\":\"127.0.0.1:1\"}}".into(),
    };
    Bytes::from(text)
}

/// An entry's frame: garbage, a valid or mutated data frame, a control frame, or (when
/// `huge` allows it) 4 MiB.
fn frame(rng: &mut StdRng, huge: &mut bool) -> Bytes {
    match rng.random_range(0..6) {
        0 => Bytes::new(),
        1 => Bytes::from(vec![0xB7u8; rng.random_range(1..100)]),
        2 => frames::valid_batch(rng, Size::Small, ProducerFields::NONE).bytes,
        3 => {
            let payload: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
            let kind = pick(
                rng,
                &[
                    stave_log::frame::FrameType::Command,
                    stave_log::frame::FrameType::Membership,
                    stave_log::frame::FrameType::Blank,
                ],
            );
            Bytes::from(stave_log::frame::encode_control_frame(kind, &payload))
        }
        4 if *huge && rng.random_ratio(1, 10) => {
            // One per message: a message stays within the 64 MiB the nodes take.
            *huge = false;
            Bytes::from(vec![0u8; 4 << 20])
        }
        _ => frames::hostile_batch(rng, -1).bytes,
    }
}

/// Entries of any shape; at most one 4 MiB frame among them if `huge`.
fn entries(rng: &mut StdRng, mut huge: bool) -> Vec<rpb::Entry> {
    let count = pick(rng, &[0, 1, 2, 5, 50]);
    (0..count)
        .map(|_| rpb::Entry {
            log_id: log_id(rng),
            payload: match rng.random_range(0..5) {
                0 => None,
                1 => Some(rpb::entry::Payload::Blank(rng.random())),
                2 => Some(rpb::entry::Payload::Membership(membership(rng))),
                _ => Some(rpb::entry::Payload::Frame(frame(rng, &mut huge))),
            },
        })
        .collect()
}

/// An append no replica may act on: a stale vote, or the leader's vote with a previous log
/// id no replica holds; entries of any shape (one of them 4 MiB at most, if `huge`).
fn append(rng: &mut StdRng, current: Option<Vote>, huge: bool) -> Option<rpb::AppendEntries> {
    if rng.random_ratio(1, 10) {
        return None;
    }
    let (vote, prev_log_id) = match current {
        Some(vote) if rng.random_bool(0.5) => (Some(vote.leaders()), unheld_log_id(rng, vote.term)),
        _ => (stale_vote(rng, current), log_id(rng)),
    };
    Some(rpb::AppendEntries {
        vote,
        prev_log_id,
        entries: entries(rng, huge),
        leader_commit: log_id(rng),
    })
}

/// Snapshot data: garbage, a partition snapshot's JSON (odd values), or large.
fn snapshot_data(rng: &mut StdRng) -> Bytes {
    match rng.random_range(0..5) {
        0 => Bytes::new(),
        1 => Bytes::from(hostile_string(rng)),
        2 => Bytes::from(format!("{{\"next_offset\":{}}}", edge_u64(rng))),
        3 if rng.random_ratio(1, 10) => Bytes::from(vec![b'{'; 2 << 20]),
        _ => Bytes::from(
            (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect::<Vec<u8>>(),
        ),
    }
}

/// One hostile call; a defect if the answer is not an acceptable one.
async fn call(raft: &Internal, rng: &mut StdRng, leaders: &HashMap<u64, Vote>) -> Checked {
    let node = rng.random_range(0..raft.control.len());
    let mut control = raft.control[node].clone();
    let (group_id, current) = group(rng, leaders);
    match rng.random_range(0..10) {
        0 | 1 => {
            let pre_vote = rng.random_bool(0.5);
            let vote = if pre_vote {
                Some(rpb::Vote {
                    term: edge_u64(rng),
                    node_id: pick(rng, &[1, 2, 3, u64::MAX]),
                    committed: rng.random(),
                })
            } else {
                stale_vote(rng, current)
            };
            let request = rpb::VoteRequest {
                group_id,
                pre_vote,
                vote,
                last_log_id: log_id(rng),
                leadership_transfer: rng.random(),
            };
            raft.answer(&request, control.vote(request)).await?;
        }
        2 | 3 => {
            let count = pick(rng, &[0, 1, 3, 50, 500]);
            let mut heartbeats = Vec::with_capacity(count);
            for _ in 0..count {
                let (group_id, current) = group(rng, leaders);
                heartbeats.push(rpb::Heartbeat {
                    group_id,
                    append: append(rng, current, count <= 3),
                });
            }
            let request = rpb::HeartbeatBatch { heartbeats };
            if let Some(results) = raft
                .answer(&request, control.heartbeats(request.clone()))
                .await?
                && results.results.len() != request.heartbeats.len()
            {
                return Err(defect(
                    "a heartbeat batch lost answers",
                    format!("{} for {}", results.results.len(), request.heartbeats.len()),
                ));
            }
        }
        4 | 5 => append_stream(raft, rng, node, leaders).await?,
        6 => {
            let request = rpb::SnapshotRequest {
                group_id,
                vote: stale_vote(rng, current),
                last_log_id: log_id(rng),
                membership_log_id: log_id(rng),
                membership: membership(rng),
                data: snapshot_data(rng),
            };
            raft.answer(&request, control.install_snapshot(request.clone()))
                .await?;
        }
        7 => {
            let from_leader = match current {
                Some(vote) if rng.random_bool(0.3) => Some(vote.leaders()),
                _ => stale_vote(rng, current),
            };
            let request = rpb::TransferLeaderRequest {
                group_id,
                from_leader,
                to_node_id: node_id(rng),
                last_log_id: log_id(rng),
            };
            raft.answer(&request, control.transfer_leader(request))
                .await?;
        }
        8 => rejoin(raft, rng, leaders).await?,
        _ => {
            let request = rpb::GroupStatusRequest { group_id };
            raft.answer(&request, control.group_status(request)).await?;
            let hello = rpb::HelloRequest {
                node_id: edge_u64(rng),
            };
            raft.answer(&hello, control.hello(hello)).await?;
        }
    }
    Ok(())
}

/// An append stream carrying a few hostile requests, ended abruptly or not.
async fn append_stream(
    raft: &Internal,
    rng: &mut StdRng,
    node: usize,
    leaders: &HashMap<u64, Vote>,
) -> Checked {
    let count = rng.random_range(1..8);
    let mut requests = Vec::with_capacity(count);
    for _ in 0..count {
        let (group_id, current) = group(rng, leaders);
        requests.push(rpb::AppendRequest {
            id: edge_u64(rng),
            group_id,
            append: append(rng, current, true),
        });
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    for request in &requests {
        sender
            .try_send(request.clone())
            .expect("room for every request");
    }
    let abrupt = rng.random_bool(0.4);
    let keep_open = if abrupt { Some(sender) } else { None };
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let Some(mut results) = raft
        .answer(&"an append stream", raft.data[node].clone().append(stream))
        .await?
    else {
        return Ok(());
    };
    let reads = if abrupt {
        rng.random_range(0..=count)
    } else {
        count
    };
    for _ in 0..reads {
        match tokio::time::timeout(harness::CALL_MAX, results.message()).await {
            Err(_) => {
                return Err(defect(
                    "hang",
                    format!(
                        "an append stream stopped answering: {}",
                        harness::shown(&requests)
                    ),
                ));
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => {
                return Err(defect(
                    "append stream ended early",
                    harness::shown(&requests),
                ));
            }
            Ok(Err(status)) if harness::status_acceptable(&status) => return Ok(()),
            Ok(Err(status)) => {
                return Err(defect(
                    "unacceptable status",
                    format!("append stream: {status}"),
                ));
            }
        }
    }
    drop(keep_open);
    Ok(())
}

/// Rejoin for a group that does not run, or at a node that does not lead the group (which
/// answers NOT_LEADER): on the leader a rejoin is a membership change anyone may ask for
/// (see the report), not a malformed call.
async fn rejoin(raft: &Internal, rng: &mut StdRng, leaders: &HashMap<u64, Vote>) -> Checked {
    let (group_id, current) = group(rng, leaders);
    let node = match current {
        Some(vote) => {
            let followers: Vec<usize> = (0..raft.ids.len())
                .filter(|i| raft.ids[*i] != vote.leader)
                .collect();
            pick(rng, &followers)
        }
        None => rng.random_range(0..raft.ids.len()),
    };
    let request = rpb::RejoinRequest {
        group_id,
        node_id: node_id(rng),
        addr: hostile_string(rng),
    };
    if let Some(answer) = raft
        .answer(&request, raft.control[node].clone().rejoin(request.clone()))
        .await?
        && let Some(rpb::rejoin_response::Result::LearnerSince(_)) = answer.result
    {
        return Err(defect(
            "a rejoin was taken by a node that does not lead",
            harness::shown(&request),
        ));
    }
    Ok(())
}

/// The Raft groups of the model partitions: the model topics are the first two created, so
/// their incarnations are 1 and 2.
pub fn model_groups() -> Vec<u64> {
    let plain = (0..model::PLAIN_PARTITIONS).map(|p| (1 << 20) | u64::from(p));
    let idempotent = (0..model::IDEMPOTENT_PARTITIONS).map(|p| (2 << 20) | u64::from(p));
    plain.chain(idempotent).collect()
}

/// Every replica of every model partition still runs its Raft: each answers a heartbeat of
/// term 0 (which a running replica refuses with its vote; a stopped one fails).
pub async fn replicas_running(raft: &Internal) -> Checked {
    for (node, id) in raft.ids.iter().enumerate() {
        let heartbeats = model_groups()
            .into_iter()
            .map(|group_id| rpb::Heartbeat {
                group_id,
                append: Some(rpb::AppendEntries {
                    vote: Some(rpb::Vote {
                        term: 0,
                        node_id: id % 3 + 1,
                        committed: true,
                    }),
                    prev_log_id: None,
                    entries: vec![],
                    leader_commit: None,
                }),
            })
            .collect();
        let request = rpb::HeartbeatBatch { heartbeats };
        let Some(answer) = answer(
            &request,
            raft.control[node].clone().heartbeats(request.clone()),
        )
        .await?
        else {
            return Err(defect("replica not answering", format!("node {id}")));
        };
        for (group_id, result) in model_groups().into_iter().zip(answer.results) {
            if let Some(rpb::heartbeat_result::Result::Failure(failure)) = result.result {
                return Err(defect(
                    "replica stopped",
                    format!("group {group_id} on node {id}: {}", failure.message),
                ));
            }
        }
    }
    Ok(())
}

/// What is wrong with the model groups' leadership, if anything: every replica must name
/// the same leader, one of the cluster's nodes.
async fn leadership_problem(raft: &Internal) -> Result<Option<String>, Defect> {
    for group_id in model_groups() {
        let mut named = Vec::new();
        for client in &raft.control {
            let request = rpb::GroupStatusRequest { group_id };
            let status = answer(&request, client.clone().group_status(request)).await?;
            named.push(status.and_then(|s| match s.result {
                Some(rpb::group_status_response::Result::Status(status)) => status.leader,
                _ => None,
            }));
        }
        let agreed = named.windows(2).all(|pair| pair[0] == pair[1]);
        let member = named[0].is_some_and(|leader| raft.ids.contains(&leader));
        if !agreed || !member {
            return Ok(Some(format!("group {group_id}: leaders named {named:?}")));
        }
    }
    Ok(None)
}

/// Every replica of the model groups follows the same leader, a cluster node, within the
/// heal time (a replica stuck following a leader that does not exist is lost to its group).
async fn one_leader_each(raft: &Internal) -> Checked {
    let started = Instant::now();
    loop {
        match leadership_problem(raft).await? {
            None => return Ok(()),
            Some(problem) if started.elapsed() > HEAL_MAX => {
                return Err(defect("replicas disagree on their leader", problem));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The cluster is whole: every replica of the model partitions runs and follows the same
/// leader, metadata is intact, every model partition takes a write with all its replicas in
/// sync, `__offsets` takes a commit.
pub async fn healthy(ctx: &Ctx, raft: &Internal, rng: &mut StdRng) -> Checked {
    replicas_running(raft).await?;
    one_leader_each(raft).await?;
    for (topic, partition) in model::model_partitions() {
        ctx.model.write(&ctx.cluster, rng, topic, partition).await?;
    }
    let started = Instant::now();
    loop {
        let request = pb::MetadataRequest::default();
        let response = answer(
            &request,
            ctx.cluster
                .client(ctx.cluster.any())
                .metadata(request.clone()),
        )
        .await?;
        let problem = match response {
            None => Some("no metadata".to_string()),
            Some(metadata) => metadata_problem(ctx, &metadata),
        };
        match problem {
            None => break,
            Some(problem) if started.elapsed() > HEAL_MAX => {
                return Err(defect("cluster not whole", problem));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    super::groups::commit_valid(ctx, "fuzz.internal").await
}

/// What is wrong with the cluster metadata, if anything: nodes, model topics, in-sync
/// replicas.
fn metadata_problem(ctx: &Ctx, metadata: &pb::MetadataResponse) -> Option<String> {
    let nodes: Vec<(u64, String)> = metadata
        .nodes
        .iter()
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let expected: Vec<(u64, String)> = ctx
        .cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    if nodes != expected {
        return Some(format!("nodes {nodes:?}, expected {expected:?}"));
    }
    for (name, count) in [
        (model::PLAIN_TOPIC, model::PLAIN_PARTITIONS),
        (model::IDEMPOTENT_TOPIC, model::IDEMPOTENT_PARTITIONS),
    ] {
        let Some(topic) = metadata.topics.iter().find(|t| t.name == name) else {
            return Some(format!("{name} missing"));
        };
        if topic.partitions.len() != count as usize {
            return Some(format!("{name}: {} partitions", topic.partitions.len()));
        }
        if let Some(p) = topic
            .partitions
            .iter()
            .find(|p| p.in_sync.len() != 3 || p.replicas.len() != 3)
        {
            return Some(format!(
                "{name}/{}: replicas {:?}, in sync {:?}",
                p.partition, p.replicas, p.in_sync
            ));
        }
    }
    None
}

/// `cases` hostile calls from an insider (a client holding the cluster secret) or, with
/// `outsider`, from a client without it, whose every call must be refused.
async fn fuzz_internal(nodes: Vec<crate::support::Node>, seed: u64, cases: u64, outsider: bool) {
    let ctx = super::start(nodes).await;
    let raft = Internal::new(&ctx);
    let caller = if outsider {
        Internal::outsider(&ctx)
    } else {
        raft.clone()
    };
    let mut rng = StdRng::seed_from_u64(seed);
    super::groups::commit_valid(&ctx, "fuzz.internal")
        .await
        .unwrap();
    let started = Instant::now();
    let mut defects = Vec::new();
    let mut leaders = HashMap::new();
    for index in 0..cases {
        if index % 10 == 0 {
            leaders = raft.leaders().await.unwrap_or_default();
        }
        let mut case = case_rng(seed, index);
        if let Err(err) = call(&caller, &mut case, &leaders).await {
            defects.push(format!("case {index}: {}: {}", err.kind, err.detail));
        }
        let panics = harness::panics_seen(if outsider { OUTSIDER_THREADS } else { THREADS });
        if !panics.is_empty() {
            defects.push(format!("case {index}: panic: {}", panics.join("\n")));
        }
        if ((index + 1) % HEAL_EVERY == 0 || index + 1 == cases)
            && let Err(err) = healthy(&ctx, &raft, &mut rng).await
        {
            defects.push(format!("after case {index}: {}: {}", err.kind, err.detail));
        }
        if !defects.is_empty() {
            break;
        }
    }
    if let Err(err) = ctx.model.verify(&ctx.cluster).await {
        defects.push(format!("verification: {}: {}", err.kind, err.detail));
    }
    eprintln!(
        "internal fuzz{}: {cases} cases in {:.1} s, seed {seed} (STAVE_SEED={seed})",
        if outsider { " (outsider)" } else { "" },
        started.elapsed().as_secs_f64()
    );
    assert!(defects.is_empty(), "seed {seed}:\n{}", defects.join("\n"));
}

/// Scenario: a client holding the cluster secret (a node gone wrong, or the secret leaked)
/// sends `STAVE_FUZZ_INTERNAL_CASES` (default 150) malformed and hostile calls to the Raft
/// services of a 3-node cluster (see the module doc for what they may carry), with the
/// cluster's health checked every 50. Proves: no node panics, every model partition keeps
/// taking writes with its three replicas in sync, the acknowledged records are served
/// unchanged, and the cluster metadata stays intact.
#[test]
fn internal_raft_services_survive_hostile_calls_from_an_insider() {
    let seed = env_u64("STAVE_SEED", harness::SEED_DEFAULT);
    let cases = env_u64("STAVE_FUZZ_INTERNAL_CASES", CASES_DEFAULT);
    eprintln!("internal fuzz: seed {seed}, {cases} cases (STAVE_SEED={seed})");
    let nodes = harness::NodeRuntime::new(THREADS);
    let cluster = nodes.cluster(3);
    harness::driver_runtime().block_on(fuzz_internal(cluster, seed, cases, false));
}

/// Scenario: the same hostile calls from a client without the cluster secret (anyone who
/// reaches a node's port). Proves: every one is refused UNAUTHENTICATED, and the cluster is
/// as whole as after the insider's.
#[test]
fn internal_raft_services_refuse_an_outsider() {
    let seed = env_u64("STAVE_SEED", harness::SEED_DEFAULT);
    let cases = env_u64("STAVE_FUZZ_INTERNAL_CASES", CASES_DEFAULT);
    let nodes = harness::NodeRuntime::new(OUTSIDER_THREADS);
    let cluster = nodes.cluster(3);
    harness::driver_runtime().block_on(fuzz_internal(cluster, seed, cases, true));
}

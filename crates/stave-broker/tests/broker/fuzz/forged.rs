//! Forged calls to the internal Raft services. Anyone who reaches a node's port can try
//! them; only calls carrying the cluster secret are served. The calls that did harm while
//! the services were open (a term of u64::MAX, a mismatched committed log id, a planted
//! append, a forged snapshot, Rejoin; see `crates/stave-broker/README.md`) are sent here by
//! clients without the secret and with a wrong one: each is refused UNAUTHENTICATED and the
//! partition's leader, term and voters are unchanged. The calls a node holding the secret
//! may make within Raft's rules (votes while the leader lives, a leader transfer) are tested
//! too: the group keeps taking writes with its three replicas, every acknowledged record is
//! served unchanged, no node panics.

use std::time::{Duration, Instant};

use stave_proto::internal::raft as rpb;

use super::harness::{self, HEAL_MAX};
use super::internal::{Internal, Vote};
use super::{Ctx, model};

/// The plain model topic's partition 0: the first topic created has incarnation 1.
const GROUP: u64 = 1 << 20;

/// The group's leader and term, once it has one.
async fn leader(raft: &Internal) -> Vote {
    let started = Instant::now();
    loop {
        let leaders = raft.leaders().await.unwrap();
        if let Some(vote) = leaders.get(&GROUP) {
            return *vote;
        }
        assert!(started.elapsed() < HEAL_MAX, "no leader for group {GROUP}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The index of a node that does not lead.
fn follower(raft: &Internal, vote: Vote) -> usize {
    (0..raft.ids.len())
        .find(|i| raft.ids[*i] != vote.leader)
        .unwrap()
}

/// One append (as a heartbeat) for `group_id` to node `node`; the answer.
pub async fn heartbeat(
    raft: &Internal,
    node: usize,
    group_id: u64,
    append: rpb::AppendEntries,
) -> String {
    let batch = rpb::HeartbeatBatch {
        heartbeats: vec![rpb::Heartbeat {
            group_id,
            append: Some(append),
        }],
    };
    let answer = raft.control[node].clone().heartbeats(batch).await;
    format!("{answer:?}")
}

/// The last index of `node`'s log in `term`, found as a leader would: heartbeats with a
/// previous log id, which succeed only where the replica holds that log id.
pub async fn last_index(raft: &Internal, node: usize, group_id: u64, vote: Vote) -> u64 {
    let (mut low, mut high) = (0u64, 1 << 20);
    while low + 1 < high {
        let middle = (low + high) / 2;
        let answer = heartbeat(
            raft,
            node,
            group_id,
            rpb::AppendEntries {
                vote: Some(vote.leaders()),
                prev_log_id: Some(rpb::LogId {
                    term: vote.term,
                    index: middle,
                }),
                entries: vec![],
                leader_commit: None,
            },
        )
        .await;
        if answer.contains("Success") {
            low = middle;
        } else {
            high = middle;
        }
    }
    low
}

/// A cluster with the model topics, some acknowledged records in the target partition, and
/// the internal clients.
async fn setup(nodes: Vec<crate::support::Node>) -> (std::sync::Arc<Ctx>, Internal) {
    let ctx = super::start(nodes).await;
    let mut rng = rand::SeedableRng::seed_from_u64(11);
    for _ in 0..20 {
        ctx.model
            .write(&ctx.cluster, &mut rng, model::PLAIN_TOPIC, 0)
            .await
            .unwrap();
    }
    let raft = Internal::new(&ctx);
    (ctx, raft)
}

/// What must hold after a forged call (once calls are authenticated): no panic, the cluster
/// whole again within the heal time, every acknowledged record served unchanged.
async fn unharmed(ctx: &Ctx, raft: &Internal, threads: &str) {
    let mut rng = rand::SeedableRng::seed_from_u64(12);
    let healthy = super::internal::healthy(ctx, raft, &mut rng).await;
    let panics = harness::panics_seen(threads);
    assert!(panics.is_empty(), "a node panicked: {panics:?}");
    healthy.unwrap();
    ctx.model.verify(&ctx.cluster).await.unwrap();
}

fn run(threads: &'static str, test: impl AsyncFnOnce(&Ctx, &Internal)) {
    let nodes = harness::NodeRuntime::new(threads);
    let cluster = nodes.cluster(3);
    harness::driver_runtime().block_on(async move {
        let (ctx, raft) = setup(cluster).await;
        test(&ctx, &raft).await;
        unharmed(&ctx, &raft, threads).await;
    });
}

/// Scenario: vote requests for the partition's group, in the name of a follower and of an
/// unknown node, with the next term and with term `u64::MAX`, each claiming a longer log,
/// sent to every replica by a client holding the cluster secret. Proves: while the leader lives no replica grants them (openraft's
/// leader lease), the term does not move, nothing is lost.
#[test]
fn forged_votes_are_refused_while_the_leader_lives() {
    run("forged-votes", async |_ctx, raft| {
        let vote = leader(raft).await;
        for term in [vote.term + 1, u64::MAX] {
            for candidate in [raft.ids[follower(raft, vote)], 99] {
                for node in 0..raft.ids.len() {
                    let request = rpb::VoteRequest {
                        group_id: GROUP,
                        pre_vote: false,
                        vote: Some(rpb::Vote {
                            term,
                            node_id: candidate,
                            committed: false,
                        }),
                        last_log_id: Some(rpb::LogId {
                            term,
                            index: u64::MAX,
                        }),
                        leadership_transfer: false,
                    };
                    let answer = raft.control[node].clone().vote(request).await.unwrap();
                    let granted = matches!(
                        answer.into_inner().result,
                        Some(rpb::vote_response::Result::Reply(rpb::VoteReply {
                            vote_granted: true,
                            ..
                        }))
                    );
                    assert!(
                        !granted,
                        "node {} granted term {term} to {candidate}",
                        raft.ids[node]
                    );
                }
            }
        }
        let after = leader(raft).await;
        assert_eq!((after.term, after.leader), (vote.term, vote.leader));
    });
}

/// The harmful calls, as an outsider would send them to node `node` of the group led in
/// `vote`: each answer's status (none if the call was served).
async fn harmful_calls(
    raft: &Internal,
    node: usize,
    vote: Vote,
) -> Vec<(&'static str, Option<tonic::Status>)> {
    let mut control = raft.control[node].clone();
    let max_term = rpb::Vote {
        term: u64::MAX,
        node_id: 99,
        committed: true,
    };
    let log_id = |term, index| Some(rpb::LogId { term, index });
    let heartbeat = |append: rpb::AppendEntries| rpb::HeartbeatBatch {
        heartbeats: vec![rpb::Heartbeat {
            group_id: GROUP,
            append: Some(append),
        }],
    };
    let planted = rpb::AppendEntries {
        vote: Some(vote.leaders()),
        prev_log_id: log_id(vote.term, 1),
        entries: vec![rpb::Entry {
            log_id: log_id(vote.term, 2),
            payload: Some(rpb::entry::Payload::Frame(bytes::Bytes::from_static(
                b"planted",
            ))),
        }],
        leader_commit: log_id(vote.term, 2),
    };
    let status = |result: Result<_, tonic::Status>| result.err();
    let mut answers = vec![
        (
            "Vote with term u64::MAX",
            status(
                control
                    .vote(rpb::VoteRequest {
                        group_id: GROUP,
                        pre_vote: false,
                        vote: Some(max_term),
                        last_log_id: log_id(u64::MAX, u64::MAX),
                        leadership_transfer: false,
                    })
                    .await
                    .map(drop),
            ),
        ),
        (
            "Heartbeats with term u64::MAX",
            status(
                control
                    .heartbeats(heartbeat(rpb::AppendEntries {
                        vote: Some(max_term),
                        prev_log_id: None,
                        entries: vec![],
                        leader_commit: None,
                    }))
                    .await
                    .map(drop),
            ),
        ),
        (
            "Heartbeats in the leader's name with a mismatched previous log id",
            status(
                control
                    .heartbeats(heartbeat(rpb::AppendEntries {
                        vote: Some(vote.leaders()),
                        prev_log_id: log_id(vote.term + 7, 2),
                        entries: vec![],
                        leader_commit: None,
                    }))
                    .await
                    .map(drop),
            ),
        ),
        (
            "Heartbeats planting an entry in the leader's name",
            status(
                control
                    .heartbeats(heartbeat(planted.clone()))
                    .await
                    .map(drop),
            ),
        ),
        (
            "InstallSnapshot from node 99",
            status(
                control
                    .install_snapshot(rpb::SnapshotRequest {
                        group_id: GROUP,
                        vote: Some(rpb::Vote {
                            term: vote.term + 1,
                            node_id: 99,
                            committed: true,
                        }),
                        last_log_id: log_id(vote.term + 1, 1000),
                        membership_log_id: log_id(0, 0),
                        membership: bytes::Bytes::from_static(b"{}"),
                        data: bytes::Bytes::from_static(b"{\"next_offset\":1000000}"),
                    })
                    .await
                    .map(drop),
            ),
        ),
        (
            "TransferLeader in the leader's name",
            status(
                control
                    .transfer_leader(rpb::TransferLeaderRequest {
                        group_id: GROUP,
                        from_leader: Some(vote.leaders()),
                        to_node_id: raft.ids[node],
                        last_log_id: None,
                    })
                    .await
                    .map(drop),
            ),
        ),
        (
            "Rejoin of a voter",
            status(
                control
                    .rejoin(rpb::RejoinRequest {
                        group_id: GROUP,
                        node_id: raft.ids[(node + 1) % raft.ids.len()],
                        addr: "127.0.0.1:1".into(),
                    })
                    .await
                    .map(drop),
            ),
        ),
        (
            "Hello",
            status(
                control
                    .hello(rpb::HelloRequest { node_id: 99 })
                    .await
                    .map(drop),
            ),
        ),
        (
            "GroupStatus",
            status(
                control
                    .group_status(rpb::GroupStatusRequest { group_id: GROUP })
                    .await
                    .map(drop),
            ),
        ),
        (
            "Leaderships",
            status(
                control
                    .leaderships(rpb::LeadershipsRequest {})
                    .await
                    .map(drop),
            ),
        ),
    ];
    let append = rpb::AppendRequest {
        id: 1,
        group_id: GROUP,
        append: Some(planted),
    };
    let stream = tokio_stream::iter([append]);
    let streamed = match raft.data[node].clone().append(stream).await {
        Err(status) => Some(status),
        Ok(answers) => answers.into_inner().message().await.err(),
    };
    answers.push(("Append (stream) planting an entry", streamed));
    answers
}

/// The group's voters, as node `node` sees them.
async fn voters(raft: &Internal, node: usize) -> Vec<u64> {
    let status = raft.control[node]
        .clone()
        .group_status(rpb::GroupStatusRequest { group_id: GROUP })
        .await
        .unwrap()
        .into_inner();
    match status.result {
        Some(rpb::group_status_response::Result::Status(status)) => status.voters,
        other => panic!("{other:?}"),
    }
}

/// Scenario: every RPC of `RaftControl` and `RaftData`, carrying the calls that did harm
/// while the services were open (a term of u64::MAX, a mismatched committed log id, an
/// entry planted in the leader's name by heartbeat and by append stream, a snapshot from a
/// stranger, a leader transfer, a Rejoin that demotes a voter; and Hello, GroupStatus,
/// Leaderships), sent to every node by a client without the cluster secret and by one with
/// a wrong secret. Proves: each call is refused UNAUTHENTICATED (the message never shows
/// the secret), and the partition's leader, term and three voters are unchanged.
#[test]
fn every_internal_call_without_the_cluster_secret_is_refused() {
    run("forged-outsider", async |ctx, raft| {
        let vote = leader(raft).await;
        let secret = ctx.cluster.nodes[0].secret.clone();
        let wrong = stave_broker::cluster_secret::ClusterSecret::generate();
        for outsider in [Internal::outsider(ctx), Internal::signed(ctx, Some(wrong))] {
            for node in 0..outsider.ids.len() {
                for (call, status) in harmful_calls(&outsider, node, vote).await {
                    let status = status.unwrap_or_else(|| panic!("{call} was served"));
                    assert_eq!(
                        status.code(),
                        tonic::Code::Unauthenticated,
                        "{call}: {status:?}"
                    );
                    assert!(!status.message().contains(secret.expose()));
                }
            }
        }
        let after = leader(raft).await;
        assert_eq!((after.term, after.leader), (vote.term, vote.leader));
        let leader = raft.index_of(vote.leader);
        assert_eq!(voters(raft, leader).await.len(), 3);
    });
}

/// Scenario: a leader transfer in the name of the partition's current leader, sent to a
/// follower, by a client holding the cluster secret. Proves: leadership moves and nothing is
/// lost (a disruption a node may cause, bounded by an election).
#[test]
fn a_forged_leader_transfer_moves_leadership() {
    run("forged-transfer", async |_ctx, raft| {
        let vote = leader(raft).await;
        let follower = follower(raft, vote);
        let transfer = rpb::TransferLeaderRequest {
            group_id: GROUP,
            from_leader: Some(vote.leaders()),
            to_node_id: raft.ids[follower],
            last_log_id: None,
        };
        let answer = raft.control[follower]
            .clone()
            .transfer_leader(transfer)
            .await;
        eprintln!("forged transfer answered {answer:?}");
    });
}

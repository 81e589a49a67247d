//! The controller group: three controller replicas over the in-process router agree on the
//! cluster metadata, refuse commands that cannot apply, never hand out a producer id twice,
//! snapshot and purge their log (a wiped replica rejoins through a snapshot install, a
//! restarted one reloads its own), and change members while commands go on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::Instant;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use openraft::storage::RaftLogStorage;
use stave_proto::internal::controller as proto;
use stave_proto::internal::controller::ErrorCode;
use stave_proto::internal::controller::command::Command as Kind;
use stave_proto::internal::controller::command_reply::Result as Outcome;
use stave_raft::controller::{
    ClusterMetadata, Controller, ControllerError, ControllerSnapshot, ControllerStateMachine,
    SnapshotCadence, controller_log_config, controller_raft_config,
};
use stave_raft::group::{CONTROLLER_GROUP, partition_group_id};
use stave_raft::membership::{self, MembershipError};
use stave_raft::sim_network::Router;
use tokio::sync::watch;
use tracing::info;

use crate::support::WAIT;

type Controllers = BTreeMap<u64, Controller>;

/// Snapshots every few entries and keeps no log behind them, so purges happen in a short test.
const FREQUENT_SNAPSHOTS: SnapshotCadence = SnapshotCadence {
    logs_since_last: 10,
    logs_kept: 0,
};

/// Opens node `id`'s controller replica in `dir`; nothing can reach it yet.
async fn open_controller(
    router: &Router,
    id: u64,
    dir: &Path,
    cadence: SnapshotCadence,
) -> Controller {
    let network = router.network::<ControllerSnapshot>(id, CONTROLLER_GROUP);
    let config = controller_raft_config(cadence);
    Controller::open(id, dir, controller_log_config(), config, network)
        .await
        .unwrap()
}

/// Opens node `id`'s controller replica in `dir` and makes it reachable.
async fn start_controller(
    router: &Router,
    id: u64,
    dir: &Path,
    cadence: SnapshotCadence,
) -> Controller {
    let controller = open_controller(router, id, dir, cadence).await;
    router.add_group(id, CONTROLLER_GROUP, Arc::new(controller.raft.clone()));
    controller
}

/// Starts controller replicas 1..=n and initializes the group on replica 1.
async fn start_initialized(
    router: &Router,
    dirs: &[tempfile::TempDir],
    cadence: SnapshotCadence,
) -> Controllers {
    let mut controllers = Controllers::new();
    for (id, dir) in (1..).zip(dirs) {
        controllers.insert(id, start_controller(router, id, dir.path(), cadence).await);
    }
    let members: BTreeMap<u64, BasicNode> = controllers
        .keys()
        .map(|&id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    controllers[&1].raft.initialize(members).await.unwrap();
    controllers
}

/// Starts and initializes controller replicas 1..=n, and waits for a leader with a
/// quorum-acknowledged lease. Returns the replicas and the leader.
async fn start_controllers(
    router: &Router,
    dirs: &[tempfile::TempDir],
    cadence: SnapshotCadence,
) -> (Controllers, u64) {
    let controllers = start_initialized(router, dirs, cadence).await;
    let leader = wait_leader(&controllers, None).await;
    (controllers, leader)
}

/// Waits until a live replica names a leader other than `not`, and that leader's lease has
/// been acknowledged by a quorum since this call. Returns its id.
async fn wait_leader(controllers: &Controllers, not: Option<u64>) -> u64 {
    let since = openraft::TokioInstant::now();
    let observers: Vec<&Controller> = controllers
        .iter()
        .filter(|&(&id, _)| Some(id) != not)
        .map(|(_, controller)| controller)
        .collect();
    for attempt in 0.. {
        let observer = observers[attempt % observers.len()];
        let metrics = observer
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| Some(l) != not),
                "a controller leader",
            )
            .await
            .unwrap();
        let leader = metrics.current_leader.expect("waited for a leader");
        if let Some(controller) = controllers.get(&leader) {
            let acked = controller
                .raft
                .wait(Some(Duration::from_secs(2)))
                .leader_with_quorum_acked(Some(since), "the controller leader's lease")
                .await;
            if acked.is_ok() {
                return leader;
            }
        }
        assert!(
            since.elapsed() < WAIT,
            "no controller leader within {WAIT:?}"
        );
    }
    unreachable!("the loop returns or fails")
}

/// Proposes `command` to `controller`, which must be the leader, and returns the outcome.
async fn propose(controller: &Controller, command: Kind) -> Outcome {
    let command = proto::Command {
        command: Some(command),
    };
    let reply = controller.propose(command).await.unwrap();
    reply.result.expect("every command has an outcome")
}

fn register(id: u64) -> Kind {
    Kind::RegisterNode(proto::RegisterNode {
        node: Some(proto::Node {
            id,
            addr: format!("127.0.0.1:{}", 7000 + id),
        }),
    })
}

/// CreateTopic with `partitions` partitions, replicas rotating over nodes 1..=3.
fn create(name: &str, partitions: u32) -> Kind {
    Kind::CreateTopic(proto::CreateTopic {
        name: name.to_owned(),
        partitions: (0..partitions)
            .map(|partition| proto::Partition {
                partition,
                replicas: (0..3).map(|r| 1 + u64::from(partition + r) % 3).collect(),
            })
            .collect(),
        configs: vec![proto::ConfigEntry {
            key: "retention.ms".to_owned(),
            value: "3600000".to_owned(),
        }],
    })
}

fn delete(name: &str) -> Kind {
    Kind::DeleteTopic(proto::DeleteTopic {
        name: name.to_owned(),
    })
}

fn allocate(count: u64) -> Kind {
    Kind::AllocateProducerIds(proto::AllocateProducerIds { count })
}

fn refused_with(outcome: &Outcome) -> Option<ErrorCode> {
    match outcome {
        Outcome::Error(error) => Some(error.code()),
        _ => None,
    }
}

/// Waits until every replica applied the leader's whole log, checks that their metadata is
/// identical, and returns it.
async fn converged(controllers: &Controllers, leader: u64) -> Arc<ClusterMetadata> {
    let last = controllers[&leader]
        .raft
        .metrics()
        .borrow_watched()
        .last_log_index;
    for controller in controllers.values() {
        controller
            .raft
            .wait(Some(WAIT))
            .applied_index_at_least(last, "replica applied the leader's log")
            .await
            .unwrap();
    }
    let reference = controllers[&leader].metadata();
    for (id, controller) in controllers {
        assert_eq!(
            *controller.metadata(),
            *reference,
            "replica {id} differs from the leader"
        );
    }
    reference
}

/// The first Raft index `controller`'s log store can still return (the one after its last
/// purged entry).
async fn log_start(controller: &Controller) -> u64 {
    let mut store = controller.store.clone();
    let state = store.get_log_state().await.unwrap();
    let start = state.last_purged_log_id.map_or(0, |id| id.index + 1);
    let before_start = controller.store.frames(0, start).await.unwrap();
    assert!(
        before_start.is_empty(),
        "the log returns entries below its start"
    );
    start
}

async fn shutdown(controllers: Controllers) {
    for controller in controllers.into_values() {
        controller.raft.shutdown().await.unwrap();
    }
}

/// Three controller replicas elect a leader, which initializes the cluster, registers nodes,
/// creates topics, alters a config and allocates producer ids. Proves every reply carries
/// what the command produced, a follower refuses proposals and names the leader, a follower's
/// watch sees the new metadata, and every replica ends with identical metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_elect_and_agree_on_the_metadata() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (controllers, leader) = start_controllers(&router, &dirs, SnapshotCadence::default()).await;
    let follower = *controllers.keys().find(|&&id| id != leader).unwrap();
    let mut watch = controllers[&follower].subscribe();
    let on_leader = &controllers[&leader];

    let init = Kind::InitCluster(proto::InitCluster {
        cluster_id: "stave-test".to_owned(),
    });
    assert_eq!(propose(on_leader, init).await, Outcome::Ok(true));
    for id in 1..=3 {
        assert_eq!(propose(on_leader, register(id)).await, Outcome::Ok(true));
    }
    let signed_up = propose(on_leader, create("v1.user.signedup", 3)).await;
    assert_eq!(signed_up, Outcome::Incarnation(1));
    let sign_up = propose(on_leader, create("v1.user.signup", 1)).await;
    assert_eq!(sign_up, Outcome::Incarnation(2));
    let alter = Kind::AlterTopicConfig(proto::AlterTopicConfig {
        name: "v1.user.signup".to_owned(),
        set: vec![proto::ConfigEntry {
            key: "segment.bytes".to_owned(),
            value: "1048576".to_owned(),
        }],
    });
    assert_eq!(propose(on_leader, alter).await, Outcome::Ok(true));
    assert_eq!(
        propose(on_leader, allocate(1000)).await,
        Outcome::FirstProducerId(1)
    );

    let refused = controllers[&follower]
        .propose(proto::Command {
            command: Some(allocate(1)),
        })
        .await;
    assert!(
        matches!(refused, Err(ControllerError::NotLeader { leader_hint: Some(l) }) if l == leader),
        "a follower proposes nothing: {refused:?}"
    );

    let seen = tokio::time::timeout(WAIT, watch.wait_for(|m| m.next_producer_id() == 1001))
        .await
        .expect("the follower's watch sees the allocation")
        .unwrap()
        .clone();
    let metadata = converged(&controllers, leader).await;
    assert_eq!(*seen, *metadata);
    assert_eq!(metadata.cluster_id(), Some("stave-test"));
    let addrs: Vec<&str> = metadata.nodes().values().map(String::as_str).collect();
    assert_eq!(
        addrs,
        ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
    );
    let topic = metadata.topic("v1.user.signedup").expect("the topic");
    assert_eq!((topic.incarnation(), topic.partition_count()), (1, 3));
    assert_eq!(topic.replicas(1), Some(&[2u64, 3, 1][..]));
    assert_eq!(topic.group_id(2), partition_group_id(1, 2));
    let configs = metadata
        .topic("v1.user.signup")
        .expect("the topic")
        .configs();
    assert_eq!(
        configs.get("segment.bytes").map(String::as_str),
        Some("1048576")
    );
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    assert_eq!(metadata.next_incarnation(), 3);
    shutdown(controllers).await;
}

/// Allocates producer id ranges before, during and after the leader is killed, then restarts
/// the old leader. Proves no two acknowledged ranges overlap (ids are never handed out
/// twice, whatever happened to the in-flight allocations), every range lies below the
/// agreed `next_producer_id`, and the new leader keeps allocating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_id_ranges_never_overlap_even_across_a_leader_kill() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (mut controllers, first) =
        start_controllers(&router, &dirs, SnapshotCadence::default()).await;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let allocations = |controller: Controller, counts: std::ops::Range<u64>| async move {
        let proposals = counts.map(|count| {
            let controller = controller.clone();
            async move {
                let command = proto::Command {
                    command: Some(allocate(count)),
                };
                match controller.propose(command).await {
                    Ok(proto::CommandReply {
                        result: Some(Outcome::FirstProducerId(first)),
                    }) => Some((first, count)),
                    _ => None,
                }
            }
        });
        futures_util::future::join_all(proposals).await
    };
    let before = allocations(controllers[&first].clone(), 1..41).await;
    assert!(
        before.iter().all(Option::is_some),
        "a healthy leader allocates"
    );
    ranges.extend(before.into_iter().flatten());

    info!("--- kill the leader while allocations are in flight");
    let in_flight = tokio::spawn(allocations(controllers[&first].clone(), 41..81));
    router.remove(first);
    let killed = controllers.remove(&first).expect("the leader");
    killed.raft.shutdown().await.unwrap();
    ranges.extend(in_flight.await.unwrap().into_iter().flatten());

    let second = wait_leader(&controllers, Some(first)).await;
    let after = allocations(controllers[&second].clone(), 81..121).await;
    assert!(
        after.iter().all(Option::is_some),
        "the new leader allocates"
    );
    ranges.extend(after.into_iter().flatten());

    info!("--- restart the old leader");
    let restarted = start_controller(
        &router,
        first,
        dirs[first as usize - 1].path(),
        SnapshotCadence::default(),
    )
    .await;
    controllers.insert(first, restarted);
    let metadata = converged(&controllers, second).await;
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((a_first, a_count), (b_first, _)) = (pair[0], pair[1]);
        assert!(a_first + a_count <= b_first, "ranges {pair:?} overlap");
    }
    let (last_first, last_count) = *ranges.last().expect("allocations");
    assert!(last_first + last_count <= metadata.next_producer_id());
    shutdown(controllers).await;
}

/// Proposes commands that cannot apply: a duplicate CreateTopic, a second InitCluster, an
/// invalid partition layout, deleting an unknown topic. Proves each is answered with its
/// error code and changes nothing on any replica, and a deleted then recreated topic gets a
/// new incarnation, so its partitions get new Raft group ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_change_nothing_and_a_recreated_topic_gets_a_new_incarnation() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (controllers, leader) = start_controllers(&router, &dirs, SnapshotCadence::default()).await;
    let on_leader = &controllers[&leader];
    let init = |id: &str| {
        Kind::InitCluster(proto::InitCluster {
            cluster_id: id.to_owned(),
        })
    };
    assert_eq!(propose(on_leader, init("c-1")).await, Outcome::Ok(true));
    for id in 1..=3 {
        propose(on_leader, register(id)).await;
    }
    assert_eq!(
        propose(on_leader, create("v1.orders", 2)).await,
        Outcome::Incarnation(1)
    );
    let before = converged(&controllers, leader).await;

    let mut unknown_replica = create("v1.payments", 1);
    if let Kind::CreateTopic(create) = &mut unknown_replica {
        create.partitions[0].replicas = vec![1, 9];
    }
    let refusals = [
        (create("v1.orders", 4), ErrorCode::TopicExists),
        (init("c-2"), ErrorCode::AlreadyInitialized),
        (create("v1.payments", 0), ErrorCode::Invalid),
        (unknown_replica, ErrorCode::Invalid),
        (create("v1 payments", 1), ErrorCode::Invalid),
        (delete("v1.unknown"), ErrorCode::UnknownTopic),
    ];
    for (command, code) in refusals {
        let described = format!("{command:?}");
        let outcome = propose(on_leader, command).await;
        assert_eq!(
            refused_with(&outcome),
            Some(code),
            "{described}: {outcome:?}"
        );
    }
    assert_eq!(
        *converged(&controllers, leader).await,
        *before,
        "a refusal changed the metadata"
    );

    assert_eq!(
        propose(on_leader, delete("v1.orders")).await,
        Outcome::Ok(true)
    );
    assert_eq!(
        propose(on_leader, create("v1.orders", 2)).await,
        Outcome::Incarnation(2)
    );
    let after = converged(&controllers, leader).await;
    let recreated = after.topic("v1.orders").expect("the recreated topic");
    assert_eq!(recreated.incarnation(), 2);
    let old_groups: BTreeSet<_> = (0..2).map(|p| partition_group_id(1, p)).collect();
    assert!((0..2).all(|p| !old_groups.contains(&recreated.group_id(p))));
    assert_eq!(after.cluster_id(), Some("c-1"));
    shutdown(controllers).await;
}

/// With a snapshot every 10 entries and no log kept behind it, writes many commands. Proves
/// the log start moves (openraft snapshots and purges on its own), and a replica whose data
/// directory is wiped rejoins (as a learner that does not vote, promoted once caught up) with
/// the full metadata although the log it missed is gone: it installed a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_purged_and_a_wiped_replica_rejoins_through_a_snapshot() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (mut controllers, leader) = start_controllers(&router, &dirs, FREQUENT_SNAPSHOTS).await;
    let on_leader = controllers[&leader].clone();
    for id in 1..=3 {
        propose(&on_leader, register(id)).await;
    }
    for i in 0..30 {
        let outcome = propose(&on_leader, create(&format!("v1.topic-{i}"), 1 + i % 4)).await;
        assert_eq!(outcome, Outcome::Incarnation(1 + u64::from(i)));
        propose(&on_leader, allocate(10)).await;
    }
    let purged = on_leader
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= 30),
            "the leader purges its log",
        )
        .await
        .unwrap()
        .purged
        .expect("waited for a purge");
    assert!(
        log_start(&on_leader).await > purged.index,
        "the log start moved past the purge"
    );
    converged(&controllers, leader).await;

    info!("--- wipe a follower");
    let wiped = *controllers.keys().find(|&&id| id != leader).unwrap();
    router.remove(wiped);
    let gone = controllers.remove(&wiped).expect("the follower");
    gone.raft.shutdown().await.unwrap();
    drop(gone);
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = open_controller(&router, wiped, fresh_dir.path(), FREQUENT_SNAPSHOTS).await;
    assert!(
        fresh.metadata().topics().is_empty(),
        "a wiped replica starts empty"
    );

    info!("--- it rejoins as a learner, not voting, and is promoted once caught up");
    let addr = format!("node-{wiped}");
    membership::rejoin_as_learner(&on_leader.raft, wiped, &addr)
        .await
        .unwrap();
    let groups = router.node(wiped);
    groups.insert_not_voting(CONTROLLER_GROUP, Arc::new(fresh.raft.clone()));
    membership::promote_when_caught_up(&on_leader.raft, wiped, WAIT)
        .await
        .unwrap();
    groups.insert(CONTROLLER_GROUP, Arc::new(fresh.raft.clone()));
    controllers.insert(wiped, fresh);
    propose(&on_leader, allocate(10)).await;
    let metadata = converged(&controllers, leader).await;
    assert_eq!(metadata.topics().len(), 30);
    assert_eq!(metadata.next_producer_id(), 1 + 31 * 10);
    let rejoined = &controllers[&wiped];
    let snapshot = rejoined.raft.metrics().borrow_watched().snapshot;
    assert!(snapshot.is_some(), "the rejoined replica holds a snapshot");
    assert!(
        log_start(rejoined).await > purged.index,
        "the rejoined replica's log starts after the snapshot it installed"
    );
    shutdown(controllers).await;
}

/// A follower snapshots everything it applied (and purges its log), then stops. Proves the
/// state machine reopened from its directory holds the whole metadata although the log
/// behind the snapshot is gone, the restarted replica serves it at once, and it then follows
/// new writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_reloads_its_snapshot() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (mut controllers, leader) = start_controllers(&router, &dirs, FREQUENT_SNAPSHOTS).await;
    let on_leader = controllers[&leader].clone();
    for id in 1..=3 {
        propose(&on_leader, register(id)).await;
    }
    for i in 0..15 {
        propose(&on_leader, create(&format!("v1.topic-{i}"), 2)).await;
        propose(&on_leader, allocate(5)).await;
    }
    let before = converged(&controllers, leader).await;

    let follower = *controllers.keys().find(|&&id| id != leader).unwrap();
    let raft = controllers[&follower].raft.clone();
    let applied = raft
        .metrics()
        .borrow_watched()
        .last_applied
        .expect("applied entries");
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot == Some(applied) && m.purged == Some(applied),
            "the follower snapshots and purges everything it applied",
        )
        .await
        .unwrap();

    info!("--- stop the follower and reopen its state machine");
    router.remove(follower);
    let stopped = controllers.remove(&follower).expect("the follower");
    stopped.raft.shutdown().await.unwrap();
    drop(stopped);
    let dir = dirs[follower as usize - 1].path();
    let reopened = ControllerStateMachine::open(dir).unwrap();
    assert_eq!(
        *reopened.metadata(),
        *before,
        "the snapshot file holds the metadata"
    );

    info!("--- restart the follower");
    let restarted = start_controller(&router, follower, dir, FREQUENT_SNAPSHOTS).await;
    assert_eq!(
        *restarted.metadata(),
        *before,
        "served from the snapshot at once"
    );
    assert!(
        log_start(&restarted).await > applied.index,
        "the log behind it is gone"
    );
    controllers.insert(follower, restarted);
    assert_eq!(
        propose(&on_leader, create("v1.after", 1)).await,
        Outcome::Incarnation(16)
    );
    let after = converged(&controllers, leader).await;
    assert!(after.topic("v1.after").is_some());
    shutdown(controllers).await;
}

/// Proposes to a leader the moment it is elected, before any quorum has acknowledged its
/// lease. Proves `propose` waits for the lease itself instead of bouncing the caller: the
/// command applies on the first call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_leader_accepts_a_proposal_made_the_moment_it_is_elected() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let controllers = start_initialized(&router, &dirs, SnapshotCadence::default()).await;
    let elected = controllers[&1]
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "an elected leader")
        .await
        .unwrap()
        .current_leader
        .expect("waited for a leader");
    let init = Kind::InitCluster(proto::InitCluster {
        cluster_id: "fresh".to_owned(),
    });
    assert_eq!(
        propose(&controllers[&elected], init).await,
        Outcome::Ok(true)
    );
    let metadata = converged(&controllers, elected).await;
    assert_eq!(metadata.cluster_id(), Some("fresh"));
    shutdown(controllers).await;
}

fn voters(controller: &Controller) -> BTreeSet<u64> {
    let metrics = controller.raft.metrics().borrow_watched().clone();
    metrics.membership_config.membership().voter_ids().collect()
}

fn learners(controller: &Controller) -> BTreeSet<u64> {
    let metrics = controller.raft.metrics().borrow_watched().clone();
    metrics
        .membership_config
        .membership()
        .learner_ids()
        .collect()
}

/// A command the proposer saw acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    Registered { node: u64 },
    Allocated { first: u64, count: u64 },
}

/// Bounds the proposer's loop; far more than a test proposes before it is stopped.
const PROPOSALS_MAX: u64 = 100_000;

/// Proposes to `controller`, one after another until `stop` turns true, a RegisterNode (of a
/// new node) or an AllocateProducerIds; publishes every acknowledged one on `acked`. Any
/// proposal that fails, or is answered other than with success, panics. Returns how many it
/// proposed.
async fn propose_until_stopped(
    controller: Controller,
    stop: watch::Receiver<bool>,
    acked: watch::Sender<Vec<Acked>>,
) -> u64 {
    for i in 0..PROPOSALS_MAX {
        if *stop.borrow() {
            return i;
        }
        let registers = i % 4 == 0;
        let (node, count) = (100 + i, 1 + i % 7);
        let command = if registers {
            register(node)
        } else {
            allocate(count)
        };
        let reply = controller
            .propose(proto::Command {
                command: Some(command),
            })
            .await
            .unwrap_or_else(|err| panic!("proposal {i} failed: {err}"));
        let ack = match reply.result {
            Some(Outcome::Ok(true)) if registers => Acked::Registered { node },
            Some(Outcome::FirstProducerId(first)) if !registers => {
                Acked::Allocated { first, count }
            }
            other => panic!("proposal {i} was answered {other:?}"),
        };
        acked.send_modify(|acked| acked.push(ack));
    }
    panic!("the proposer was not stopped after {PROPOSALS_MAX} proposals")
}

/// Waits until `count` more commands than now are acknowledged: the proposer goes on.
async fn wait_acked_more(acked: &mut watch::Receiver<Vec<Acked>>, count: usize) {
    let target = acked.borrow().len() + count;
    tokio::time::timeout(WAIT, acked.wait_for(|acked| acked.len() >= target))
        .await
        .expect("the proposer goes on acknowledging commands")
        .expect("the proposer stopped early (its panic is above)");
}

/// Checks that `metadata` holds every command in `acked`: each registered node, and each
/// producer id range below `next_producer_id`.
fn assert_applied(metadata: &ClusterMetadata, acked: &[Acked], replica: u64) {
    for ack in acked {
        match *ack {
            Acked::Registered { node } => assert!(
                metadata.nodes().contains_key(&node),
                "replica {replica} lacks acknowledged node {node}"
            ),
            Acked::Allocated { first, count } => assert!(
                first + count <= metadata.next_producer_id(),
                "replica {replica} lacks the acknowledged range [{first}, {})",
                first + count
            ),
        }
    }
}

/// Three controller replicas, with a snapshot every 10 entries and no log kept behind it; a
/// task proposes RegisterNode and AllocateProducerIds commands, one after another,
/// throughout. Once the leader has purged its log, a fourth replica is added (so it catches up
/// through a snapshot install), then a follower is removed. Proves the newcomer is promoted to
/// voter and holds every command acknowledged before, the voters end as expected on every
/// remaining replica, and every command acknowledged during the changes is applied
/// everywhere: the metadata is identical, holds every acknowledged node, and the acknowledged
/// producer id ranges are distinct and below `next_producer_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_member_is_added_and_another_removed_while_commands_go_on() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (mut controllers, leader) =
        start_controllers(&router, &dirs[..3], FREQUENT_SNAPSHOTS).await;
    let on_leader = controllers[&leader].clone();
    let (stop, stopped) = watch::channel(false);
    let (acked_sender, mut acked) = watch::channel(Vec::new());
    let proposer = tokio::spawn(propose_until_stopped(
        on_leader.clone(),
        stopped,
        acked_sender,
    ));
    on_leader
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= 30),
            "the leader purges its log",
        )
        .await
        .unwrap();

    info!("--- add a fourth replica while commands go on");
    controllers.insert(
        4,
        start_controller(&router, 4, dirs[3].path(), FREQUENT_SNAPSHOTS).await,
    );
    membership::add_replica(&on_leader.raft, 4, "node-4", WAIT)
        .await
        .unwrap();
    assert_eq!(voters(&on_leader), BTreeSet::from([1, 2, 3, 4]));
    // Read after the acknowledgements: the leader's log holds every one of them (an entry is
    // in its log before it commits, applies and is answered).
    let acked_before = acked.borrow().clone();
    let last = on_leader.raft.metrics().borrow_watched().last_log_index;
    controllers[&4]
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| {
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|id| id == 4)
                    && m.last_applied.map(|id| id.index) >= last
            },
            "the newcomer is a voter and applied the leader's log",
        )
        .await
        .unwrap();
    assert_applied(&controllers[&4].metadata(), &acked_before, 4);
    wait_acked_more(&mut acked, 20).await;

    info!("--- remove a follower while commands go on");
    let removed = *controllers
        .keys()
        .find(|&&id| id != leader && id != 4)
        .expect("a follower");
    membership::remove_replica(&on_leader.raft, removed)
        .await
        .unwrap();
    let expected: BTreeSet<u64> = controllers
        .keys()
        .copied()
        .filter(|&id| id != removed)
        .collect();
    assert_eq!(voters(&on_leader), expected);
    router.remove(removed);
    let gone = controllers.remove(&removed).expect("the removed replica");
    gone.raft.shutdown().await.unwrap();
    wait_acked_more(&mut acked, 20).await;
    stop.send_replace(true);
    let proposals = proposer.await.unwrap();

    for (id, controller) in &controllers {
        controller
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| {
                    m.membership_config
                        .membership()
                        .voter_ids()
                        .eq(expected.iter().copied())
                },
                "the final voters",
            )
            .await
            .unwrap_or_else(|err| panic!("replica {id}: {err}"));
    }
    let metadata = converged(&controllers, leader).await;
    let acked = acked.borrow().clone();
    assert_applied(&metadata, &acked, leader);
    let mut ranges: Vec<(u64, u64)> = acked
        .iter()
        .filter_map(|ack| match *ack {
            Acked::Allocated { first, count } => Some((first, count)),
            Acked::Registered { .. } => None,
        })
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((a_first, a_count), (b_first, _)) = (pair[0], pair[1]);
        assert!(a_first + a_count <= b_first, "ranges {pair:?} overlap");
    }
    info!(proposals, "--- done");
    shutdown(controllers).await;
}

/// A fourth controller replica whose links to the others are cut cannot catch up. Proves
/// adding it is reported (`LearnerBehind`) once the deadline has passed, it stays a learner,
/// the voters are unchanged, and the controller still commits commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_member_that_cannot_catch_up_is_reported_not_promoted() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Router::default();
    let (mut controllers, leader) =
        start_controllers(&router, &dirs[..3], SnapshotCadence::default()).await;
    let on_leader = controllers[&leader].clone();
    for id in 1..=3 {
        propose(&on_leader, register(id)).await;
    }
    controllers.insert(
        4,
        start_controller(&router, 4, dirs[3].path(), SnapshotCadence::default()).await,
    );
    for id in 1..=3 {
        router.cut(4, id);
    }

    let deadline = Duration::from_secs(2);
    let started = openraft::TokioInstant::now();
    let refused = membership::add_replica(&on_leader.raft, 4, "node-4", deadline).await;
    assert!(
        started.elapsed() >= deadline,
        "reported before the deadline"
    );
    match refused {
        Err(MembershipError::LearnerBehind { node: 4, lag, .. }) => {
            assert!(lag > membership::CAUGHT_UP_LAG, "reported lag {lag}")
        }
        other => panic!("expected LearnerBehind for node 4, got {other:?}"),
    }
    assert_eq!(voters(&on_leader), BTreeSet::from([1, 2, 3]));
    assert_eq!(learners(&on_leader), BTreeSet::from([4]));
    assert_eq!(
        propose(&on_leader, allocate(10)).await,
        Outcome::FirstProducerId(1),
        "the quorum is unchanged: commands still commit"
    );
    shutdown(controllers).await;
}

//! Whole nodes (controller + partition groups) over gRPC on loopback: bootstrap, partition
//! groups following the controller's assignment, a wiped node rejoining, reassignment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::Instant;
use openraft::async_runtime::watch::WatchReceiver;
use stave_proto::internal::controller as proto;
use stave_raft::group::{Groups, RaftGroupId, partition_group_id};
use stave_raft::node::{NodeConfig, RaftNode};
use stave_raft::transport::{NodeIdentity, TransportConfig};
use stave_raft::{FramePayload, PartitionRaft};

use crate::support::{batch, converged_log};

mod failures;

const WAIT: Duration = Duration::from_secs(60);

/// A node slot: its server runs for the whole test; the node in it can be stopped, wiped
/// and started again behind the same address.
struct Slot {
    id: u64,
    addr: String,
    groups: Groups,
    identity: NodeIdentity,
    dir: tempfile::TempDir,
    node: Option<RaftNode>,
}

struct Cluster {
    slots: BTreeMap<u64, Slot>,
    peers: BTreeMap<u64, String>,
}

fn config(slot: &Slot, peers: &BTreeMap<u64, String>) -> NodeConfig {
    let mut config = NodeConfig::new(
        slot.id,
        slot.dir.path().to_path_buf(),
        slot.addr.clone(),
        peers.clone(),
    );
    config.partition_log = stave_log::LogConfig {
        flush: stave_log::FlushPolicy::Always,
        segment_bytes: 1 << 20,
        ..stave_log::LogConfig::default()
    };
    let partition = openraft::Config {
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        enable_pre_vote: Some(true),
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..openraft::Config::default()
    };
    config.partition_raft = Arc::new(partition.validate().unwrap());
    config.catch_up_deadline = Duration::from_secs(20);
    config.bootstrap_retry = Duration::from_millis(100);
    config.reopen_backoff = vec![Duration::from_millis(100); 3];
    config
}

impl Cluster {
    /// Serves `count` node slots on loopback; starts the first `started` nodes.
    async fn new(count: u64, started: u64) -> Cluster {
        let mut slots = BTreeMap::new();
        for id in 1..=count {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let groups = Groups::default();
            let identity = NodeIdentity::new(id, Duration::from_secs(20));
            tokio::spawn(stave_raft::transport::serve(
                listener,
                groups.clone(),
                identity.clone(),
                TransportConfig::default(),
                std::future::pending(),
            ));
            let slot = Slot {
                id,
                addr,
                groups,
                identity,
                dir: tempfile::tempdir().unwrap(),
                node: None,
            };
            slots.insert(id, slot);
        }
        let peers: BTreeMap<u64, String> = slots
            .values()
            .filter(|slot| slot.id <= started)
            .map(|slot| (slot.id, slot.addr.clone()))
            .collect();
        let mut cluster = Cluster { slots, peers };
        for id in 1..=started {
            cluster.start(id).await;
        }
        cluster
    }

    async fn start(&mut self, id: u64) {
        let slot = &self.slots[&id];
        let mut peers = self.peers.clone();
        peers.insert(id, slot.addr.clone());
        let node = RaftNode::start_with(
            config(slot, &peers),
            slot.groups.clone(),
            slot.identity.clone(),
        )
        .await
        .unwrap();
        self.slots.get_mut(&id).unwrap().node = Some(node);
    }

    async fn stop(&mut self, id: u64) {
        let node = self.slots.get_mut(&id).unwrap().node.take().unwrap();
        node.shutdown().await;
    }

    fn node(&self, id: u64) -> &RaftNode {
        self.slots[&id].node.as_ref().unwrap()
    }

    fn nodes(&self) -> impl Iterator<Item = &RaftNode> {
        self.slots.values().filter_map(|slot| slot.node.as_ref())
    }

    /// Waits until every running node has the cluster id; returns it.
    async fn cluster_id(&self) -> String {
        let mut ids = BTreeSet::new();
        for node in self.nodes() {
            let mut stored = node.identity().subscribe_cluster_id();
            let seen = tokio::time::timeout(WAIT, stored.wait_for(Option::is_some))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "node {}: no cluster id in time; metadata says {:?}, node file {:?}",
                        node.id(),
                        node.controller().metadata().cluster_id(),
                        std::fs::read_to_string(self.slots[&node.id()].dir.path().join("node"))
                    )
                })
                .unwrap()
                .clone()
                .unwrap();
            ids.insert(seen);
        }
        assert_eq!(ids.len(), 1, "nodes disagree on the cluster id: {ids:?}");
        ids.into_iter().next().unwrap()
    }

    /// Proposes `command` through whichever node leads the controller.
    async fn propose(&self, command: proto::Command) -> proto::CommandReply {
        let started = tokio::time::Instant::now();
        loop {
            for node in self.nodes() {
                if let Ok(reply) = node.controller().propose(command.clone()).await {
                    return reply;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "no controller leader took {command:?}"
            );
            let any = self.nodes().next().unwrap();
            let _ = any
                .controller()
                .raft
                .wait(Some(Duration::from_secs(1)))
                .metrics(|m| m.current_leader.is_some(), "a controller leader")
                .await;
        }
    }

    async fn create_topic(&self, name: &str, replicas: &[&[u64]]) -> u64 {
        let create = proto::Command {
            command: Some(proto::command::Command::CreateTopic(proto::CreateTopic {
                name: name.to_string(),
                partitions: replicas
                    .iter()
                    .enumerate()
                    .map(|(i, r)| proto::Partition {
                        partition: i as u32,
                        replicas: r.to_vec(),
                    })
                    .collect(),
                configs: vec![],
            })),
        };
        match self.propose(create).await.result {
            Some(proto::command_reply::Result::Incarnation(incarnation)) => incarnation,
            other => panic!("topic {name} not created: {other:?}"),
        }
    }

    /// Waits until node `id` runs `group` and sees a leader there whose voters are `voters`.
    async fn wait_group(
        &self,
        id: u64,
        group: RaftGroupId,
        voters: &BTreeSet<u64>,
    ) -> PartitionRaft {
        let node = self.node(id);
        let mut running = node.subscribe_partitions();
        tokio::time::timeout(WAIT, running.wait_for(|groups| groups.contains(&group)))
            .await
            .unwrap_or_else(|_| panic!("node {id} does not run group {group}"))
            .unwrap();
        let raft = node.replica(group).unwrap().raft;
        let waited = raft
            .wait(Some(WAIT))
            .metrics(
                |m| {
                    m.current_leader.is_some()
                        && m.membership_config
                            .membership()
                            .voter_ids()
                            .collect::<BTreeSet<_>>()
                            == *voters
                },
                "a leader and the assigned voters",
            )
            .await;
        if let Err(err) = waited {
            // Every replica's view, the leader's replication state among them: what a rare
            // timeout here needs to be understood.
            let views: Vec<String> = self
                .nodes()
                .filter_map(|node| {
                    let replica = node.replica(group)?;
                    let metrics = replica.raft.metrics().borrow_watched().clone();
                    Some(format!("node {}: {metrics}", node.id()))
                })
                .collect();
            panic!(
                "node {id}, group {group}: {err}\nreplicas:\n{}",
                views.join("\n")
            );
        }
        raft
    }

    /// The replica of `group` that believes it leads, if any.
    fn leader_raft(&self, group: RaftGroupId) -> Option<PartitionRaft> {
        self.nodes().find_map(|node| {
            let replica = node.replica(group)?;
            let leads = replica.raft.metrics().borrow_watched().current_leader == Some(node.id());
            leads.then_some(replica.raft)
        })
    }

    /// Writes `count` batches to `group` through its leader; returns how many were
    /// acknowledged.
    async fn write(&self, group: RaftGroupId, seeds: std::ops::Range<u64>) -> usize {
        let started = tokio::time::Instant::now();
        loop {
            let leader = self.leader_raft(group);
            if let Some(raft) = leader {
                // A fresh leader refuses writes until a quorum has acknowledged its lease.
                let since = openraft::TokioInstant::now();
                let _ = raft
                    .wait(Some(Duration::from_secs(2)))
                    .leader_with_quorum_acked(Some(since), "the leader's lease")
                    .await;
                let writes = seeds
                    .clone()
                    .map(|seed| raft.client_write(FramePayload(batch(seed, 2, 100))));
                let acked = futures_util::future::join_all(writes)
                    .await
                    .into_iter()
                    .filter(Result::is_ok)
                    .count();
                if acked > 0 {
                    return acked;
                }
            }
            assert!(started.elapsed() < WAIT, "group {group} took no writes");
            let any = self.nodes().find_map(|node| node.replica(group)).unwrap();
            let _ = any
                .raft
                .wait(Some(Duration::from_secs(1)))
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await;
        }
    }

    /// Hands the leadership of `group`, whose voters are `voters`, to node `to` and waits
    /// until `to` leads (asking the leader again every 2 s: a transfer waits for `to` to hold
    /// the leader's log).
    async fn make_leader(&self, group: RaftGroupId, voters: &BTreeSet<u64>, to: u64) {
        let target = self.wait_group(to, group, voters).await;
        let started = tokio::time::Instant::now();
        loop {
            let leader = self.leader_raft(group);
            match leader {
                Some(leader) if leader.metrics().borrow_watched().id == to => {}
                // (A transfer to the leader itself would start an election.)
                Some(leader) => {
                    let _ = leader.trigger().transfer_leader(to).await;
                }
                None => {}
            }
            let led = target
                .wait(Some(Duration::from_secs(2)))
                .metrics(|m| m.current_leader == Some(to), "the new leader")
                .await;
            if led.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "node {to} did not take over group {group}"
            );
        }
    }

    /// Every running replica of `group` holds the same log.
    async fn converged(&self, group: RaftGroupId) -> usize {
        let replicas: BTreeMap<u64, stave_raft::PartitionReplica> = self
            .nodes()
            .filter_map(|node| Some((node.id(), node.replica(group)?)))
            .collect();
        let leader = replicas
            .values()
            .find_map(|r| r.raft.metrics().borrow_watched().current_leader)
            .unwrap();
        converged_log(&replicas, leader).await.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_bootstraps_and_runs_the_assigned_partitions() {
    let cluster = Cluster::new(3, 3).await;
    let cluster_id = cluster.cluster_id().await;
    for node in cluster.nodes() {
        assert_eq!(
            node.identity().cluster_id().as_deref(),
            Some(cluster_id.as_str())
        );
        let stored =
            std::fs::read_to_string(cluster.slots[&node.id()].dir.path().join("node")).unwrap();
        assert!(
            stored.contains(&cluster_id),
            "node {} stored {stored}",
            node.id()
        );
    }
    let incarnation = cluster
        .create_topic("v1.orders", &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]])
        .await;
    let all = BTreeSet::from([1, 2, 3]);
    for partition in 0..3 {
        let group = partition_group_id(incarnation, partition);
        for id in 1..=3 {
            cluster.wait_group(id, group, &all).await;
        }
        assert_eq!(cluster.write(group, 0..50).await, 50);
        assert!(cluster.converged(group).await >= 50);
    }
    // Deleting the topic stops its groups on every node and removes their directories.
    let delete = proto::Command {
        command: Some(proto::command::Command::DeleteTopic(proto::DeleteTopic {
            name: "v1.orders".into(),
        })),
    };
    cluster.propose(delete).await;
    for node in cluster.nodes() {
        let mut running = node.subscribe_partitions();
        tokio::time::timeout(WAIT, running.wait_for(BTreeSet::is_empty))
            .await
            .unwrap()
            .unwrap();
        let dir = cluster.slots[&node.id()].dir.path().join("partitions");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_rejoins_as_a_learner_and_catches_up() {
    let mut cluster = Cluster::new(3, 3).await;
    let cluster_id = cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.payments", &[&[3, 1, 2]]).await;
    let group = partition_group_id(incarnation, 0);
    let all = BTreeSet::from([1, 2, 3]);
    cluster.wait_group(1, group, &all).await;
    assert_eq!(cluster.write(group, 0..100).await, 100);

    // Node 3 loses its disk.
    cluster.stop(3).await;
    let slot = cluster.slots.get_mut(&3).unwrap();
    slot.dir = tempfile::tempdir().unwrap();
    assert_eq!(cluster.write(group, 100..150).await, 50);
    cluster.start(3).await;

    // It comes back into the controller and the partition as a voter, with everything.
    let controller = cluster.node(3).controller().raft.clone();
    controller
        .wait(Some(WAIT))
        .metrics(
            |m| {
                m.membership_config
                    .membership()
                    .voter_ids()
                    .collect::<BTreeSet<_>>()
                    == all
            },
            "node 3 a controller voter again",
        )
        .await
        .unwrap();
    assert_eq!(cluster.cluster_id().await, cluster_id);
    cluster.wait_group(3, group, &all).await;
    assert_eq!(cluster.write(group, 150..200).await, 50);
    let frames = cluster.converged(group).await;
    assert!(frames >= 200, "{frames} frames");
}

/// A partition moves from nodes 1, 2, 3 to 1, 2, 4 while node 1 leads it: node 4 joins the
/// group, node 3 leaves it and stops its replica, and every acknowledged write is on the new
/// replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_follows_its_new_assignment() {
    move_partition_off_node_3(1).await;
}

/// The same move while node 3, the replica leaving, leads the group: no assigned replica
/// leads, so node 3 itself must add node 4 and hand the group on (once, the move never
/// happened: node 4's replica waited as a learner that nobody replicated to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_off_the_replica_that_leads_it() {
    move_partition_off_node_3(3).await;
}

/// The move of the tests above, with the group led by `leader` when the controller moves it.
async fn move_partition_off_node_3(leader: u64) {
    // Four nodes in the cluster; the topic's partition starts on 1, 2, 3.
    let cluster = Cluster::new(4, 4).await;
    cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.stock", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let first = BTreeSet::from([1, 2, 3]);
    cluster.wait_group(1, group, &first).await;
    assert_eq!(cluster.write(group, 0..100).await, 100);
    cluster.make_leader(group, &first, leader).await;

    let reassign = proto::Command {
        command: Some(proto::command::Command::SetReplicas(proto::SetReplicas {
            name: "v1.stock".into(),
            incarnation,
            partition: 0,
            replicas: vec![1, 2, 4],
        })),
    };
    cluster.propose(reassign).await;
    let moved = BTreeSet::from([1, 2, 4]);
    cluster.wait_group(4, group, &moved).await;
    cluster.wait_group(1, group, &moved).await;
    assert_eq!(cluster.write(group, 100..150).await, 50);
    let mut running = cluster.node(3).subscribe_partitions();
    tokio::time::timeout(WAIT, running.wait_for(|groups| !groups.contains(&group)))
        .await
        .expect("node 3 stops its replica")
        .unwrap();
    assert!(cluster.converged(group).await >= 150);
}

/// A move that changes course: towards node 4, which is down (it stays a learner, never
/// caught up), then back to 1, 2, 3. The leader drops the learner it no longer needs (once,
/// it kept replicating to node 4 for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_move_drops_the_learner_it_added() {
    let mut cluster = Cluster::new(4, 4).await;
    cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.prices", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let first = BTreeSet::from([1, 2, 3]);
    cluster.wait_group(1, group, &first).await;
    cluster.make_leader(group, &first, 1).await;
    cluster.stop(4).await;
    let set_replicas = |replicas: Vec<u64>| proto::Command {
        command: Some(proto::command::Command::SetReplicas(proto::SetReplicas {
            name: "v1.prices".into(),
            incarnation,
            partition: 0,
            replicas,
        })),
    };
    let leader = cluster.node(1).replica(group).unwrap().raft;
    let learners = |m: &openraft::RaftMetrics<stave_raft::TypeConfig>| {
        m.membership_config
            .membership()
            .learner_ids()
            .collect::<BTreeSet<u64>>()
    };
    cluster.propose(set_replicas(vec![1, 2, 4])).await;
    leader
        .wait(Some(WAIT))
        .metrics(|m| learners(m).contains(&4), "node 4 added as a learner")
        .await
        .unwrap();
    cluster.propose(set_replicas(vec![1, 2, 3])).await;
    let settled = leader
        .wait(Some(WAIT))
        .metrics(|m| learners(m).is_empty(), "the learner removed")
        .await
        .unwrap();
    let voters: BTreeSet<u64> = settled.membership_config.membership().voter_ids().collect();
    assert_eq!(voters, first);
    assert_eq!(cluster.write(group, 0..10).await, 10);
}

/// A learner of the controller group that is a node of the cluster (a wiped node taken
/// back, whose promotion the leader that took it back did not finish) is promoted by the
/// controller's leader once caught up, whichever node leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_leader_promotes_a_caught_up_node_learner() {
    let cluster = Cluster::new(4, 4).await;
    cluster.cluster_id().await;
    let all = BTreeSet::from([1, 2, 3, 4]);
    let voters = |m: &openraft::RaftMetrics<stave_raft::TypeConfig>| {
        m.membership_config
            .membership()
            .voter_ids()
            .collect::<BTreeSet<u64>>()
    };
    let started = tokio::time::Instant::now();
    // Node 4 made a learner, as a rejoin leaves it, on whichever node leads the controller.
    let controller = loop {
        assert!(started.elapsed() < WAIT, "node 4 was not made a learner");
        // A leader with its lease (a change on a stale leader fails: ask the next one).
        let leader_id = cluster
            .node(1)
            .controller()
            .raft
            .wait(Some(WAIT))
            .metrics(|m| m.current_leader.is_some(), "a controller leader")
            .await
            .unwrap()
            .current_leader;
        let Some(leader) = cluster.nodes().find(|node| Some(node.id()) == leader_id) else {
            continue;
        };
        let demoted = leader
            .controller()
            .raft
            .change_membership(
                openraft::ChangeMembers::RemoveVoters(BTreeSet::from([4])),
                true,
            )
            .await;
        if let Ok(demoted) = demoted {
            let membership = demoted.membership.expect("a membership change");
            assert!(membership.learner_ids().any(|id| id == 4), "{membership:?}");
            break leader.controller().raft.clone();
        }
    };
    controller
        .wait(Some(WAIT))
        .metrics(|m| voters(m) == all, "node 4 a voter again")
        .await
        .unwrap();
}

/// Restarts keep a node's place: one node, then the whole cluster, restart from their data
/// directories; no replica goes through a rejoin (the memberships do not change), and the
/// partition takes writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_nodes_resume_from_their_data_directories() {
    let mut cluster = Cluster::new(3, 3).await;
    let cluster_id = cluster.cluster_id().await;
    let incarnation = cluster.create_topic("v1.audit", &[&[2, 3, 1]]).await;
    let group = partition_group_id(incarnation, 0);
    let all = BTreeSet::from([1, 2, 3]);
    cluster.wait_group(1, group, &all).await;
    assert_eq!(cluster.write(group, 0..50).await, 50);
    let membership_of = |cluster: &Cluster| {
        let replica = cluster.node(1).replica(group).unwrap();
        let metrics = replica.raft.metrics().borrow_watched().clone();
        metrics.membership_config.log_id().map(|id| id.index)
    };
    let before = membership_of(&cluster);

    cluster.stop(2).await;
    assert_eq!(cluster.write(group, 50..80).await, 30);
    cluster.start(2).await;
    cluster.wait_group(2, group, &all).await;
    assert_eq!(
        membership_of(&cluster),
        before,
        "node 2 went through a rejoin"
    );

    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.start(id).await;
    }
    assert_eq!(cluster.cluster_id().await, cluster_id);
    for id in 1..=3 {
        cluster.wait_group(id, group, &all).await;
    }
    assert_eq!(
        membership_of(&cluster),
        before,
        "a restart changed the membership"
    );
    assert_eq!(cluster.write(group, 80..100).await, 20);
    assert!(cluster.converged(group).await >= 100);
}

/// A new partition whose first replica is down: the other replicas, still pristine after a
/// while, initialize the group themselves (same membership), elect a leader and take writes;
/// the first replica joins when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_partition_forms_without_its_first_replica() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.cluster_id().await;
    cluster.stop(1).await;
    let incarnation = cluster.create_topic("v1.fallback", &[&[1, 2, 3]]).await;
    let group = partition_group_id(incarnation, 0);
    let all = BTreeSet::from([1, 2, 3]);
    cluster.wait_group(2, group, &all).await;
    assert_eq!(cluster.write(group, 0..30).await, 30);
    cluster.start(1).await;
    cluster.wait_group(1, group, &all).await;
    assert!(cluster.converged(group).await >= 30);
}

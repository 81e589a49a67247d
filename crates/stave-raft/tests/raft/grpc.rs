//! Partition groups between nodes over the gRPC transport (loopback): several groups share
//! each node pair's two connections.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_log::{FlushPolicy, LogConfig};
use stave_raft::group::{Groups, RaftGroupId};
use stave_raft::transport::{NodeIdentity, RaftClients, TransportConfig};
use stave_raft::{FramePayload, PartitionSnapshot, start_partition};
use tokio::sync::oneshot;

use crate::support::{
    Node, assert_acknowledged_present, batch, converged_log, wait_leader, write_seeds,
};

/// One node: its Raft services on a loopback port, its groups, its connections to peers.
struct GrpcNode {
    addr: String,
    groups: Groups,
    clients: RaftClients,
    dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

/// Nodes 1..=n, each running a replica of every group.
struct GrpcCluster {
    nodes: BTreeMap<u64, GrpcNode>,
    /// group -> node -> replica; a killed node's replicas are absent.
    replicas: BTreeMap<RaftGroupId, BTreeMap<u64, Node>>,
    raft_config: Arc<openraft::Config>,
}

fn log_config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Always,
        segment_bytes: 8 << 20,
        ..LogConfig::default()
    }
}

/// Timers between the in-process tests' and production's: elections within a second.
fn test_raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        enable_pre_vote: Some(true),
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..openraft::Config::default()
    };
    Arc::new(config.validate().unwrap())
}

impl GrpcCluster {
    async fn start(nodes: u64, groups: &[RaftGroupId], raft_config: Arc<openraft::Config>) -> Self {
        let mut cluster = GrpcCluster {
            nodes: BTreeMap::new(),
            replicas: groups.iter().map(|&g| (g, BTreeMap::new())).collect(),
            raft_config,
        };
        for id in 1..=nodes {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let node_groups = Groups::default();
            let (stop, stopped) = oneshot::channel::<()>();
            let serving = stave_raft::transport::serve(
                listener,
                node_groups.clone(),
                NodeIdentity::new(id, Duration::from_secs(20)),
                TransportConfig::default(),
                async {
                    let _ = stopped.await;
                },
            );
            tokio::spawn(serving);
            cluster.nodes.insert(
                id,
                GrpcNode {
                    addr,
                    groups: node_groups,
                    clients: RaftClients::new(TransportConfig::default()),
                    dir: tempfile::tempdir().unwrap(),
                    _stop: stop,
                },
            );
        }
        let ids: Vec<u64> = cluster.nodes.keys().copied().collect();
        for &id in &ids {
            cluster.start_node(id).await;
        }
        let members: BTreeMap<u64, BasicNode> = cluster
            .nodes
            .iter()
            .map(|(&id, node)| (id, BasicNode::new(node.addr.clone())))
            .collect();
        for (i, replicas) in cluster.replicas.values().enumerate() {
            // Spread the initializing node (and so the first leaders) over the nodes.
            let first = ids[i % ids.len()];
            replicas[&first]
                .raft
                .initialize(members.clone())
                .await
                .unwrap();
        }
        for replicas in cluster.replicas.values() {
            wait_leader(replicas, None).await;
        }
        cluster
    }

    /// Opens node `id`'s replica of every group from its directory and makes it reachable.
    async fn start_node(&mut self, id: u64) {
        let node = &self.nodes[&id];
        for (&group, replicas) in self.replicas.iter_mut() {
            let dir = node.dir.path().join(group.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let network = node.clients.network::<PartitionSnapshot>(group);
            let replica =
                start_partition(id, &dir, log_config(), self.raft_config.clone(), network)
                    .await
                    .unwrap();
            node.groups.insert(group, Arc::new(replica.raft.clone()));
            replicas.insert(id, replica);
        }
    }

    /// Stops every replica on node `id`: its groups answer nothing from now on.
    async fn kill_node(&mut self, id: u64) {
        for (&group, replicas) in self.replicas.iter_mut() {
            self.nodes[&id].groups.remove(group);
            if let Some(replica) = replicas.remove(&id) {
                replica.raft.shutdown().await.unwrap();
            }
        }
    }

    fn term(&self, group: RaftGroupId) -> u64 {
        self.replicas[&group]
            .values()
            .map(|r| r.raft.metrics().borrow_watched().current_term)
            .max()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_replicate_over_grpc_and_survive_a_node_kill() {
    let groups = [11, 12, 13, 14].map(RaftGroupId);
    let mut cluster = GrpcCluster::start(3, &groups, test_raft_config()).await;

    // Every group takes writes at once, over the same two connections per node pair.
    let mut acked = BTreeMap::new();
    let writes = groups.iter().map(|group| {
        let replicas = &cluster.replicas[group];
        async move {
            let leader = wait_leader(replicas, None).await;
            (*group, write_seeds(&replicas[&leader].raft, 0..150).await)
        }
    });
    for (group, written) in futures_util::future::join_all(writes).await {
        assert_eq!(written.len(), 150, "group {group}: a write failed");
        acked.insert(group, written);
    }

    // The node leading group 11 dies; every group goes on with the other two.
    let victim = wait_leader(&cluster.replicas[&RaftGroupId(11)], None).await;
    cluster.kill_node(victim).await;
    for group in groups {
        let replicas = &cluster.replicas[&group];
        let leader = wait_leader(replicas, Some(victim)).await;
        let more = write_seeds(&replicas[&leader].raft, 150..200).await;
        assert_eq!(
            more.len(),
            50,
            "group {group}: a write after the kill failed"
        );
        acked.get_mut(&group).unwrap().extend(more);
    }

    // It comes back from its directory and catches up: every replica of every group holds
    // every acknowledged write exactly once, at its acknowledged offset.
    cluster.start_node(victim).await;
    for group in groups {
        let replicas = &cluster.replicas[&group];
        let leader = wait_leader(replicas, None).await;
        let log = converged_log(replicas, leader).await;
        assert_acknowledged_present(&log, &acked[&group]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_node_asked_for() {
    let cluster = GrpcCluster::start(3, &[RaftGroupId(21)], test_raft_config()).await;
    let replicas = &cluster.replicas[&RaftGroupId(21)];
    let leader = wait_leader(replicas, None).await;
    write_seeds(&replicas[&leader].raft, 0..20).await;
    let target = replicas.keys().copied().find(|&id| id != leader).unwrap();

    replicas[&leader]
        .raft
        .trigger()
        .transfer_leader(target)
        .await
        .unwrap();
    let moved = wait_leader(replicas, Some(leader)).await;
    assert_eq!(moved, target, "leadership went to {moved}, not {target}");
    let written = write_seeds(&replicas[&target].raft, 20..40).await;
    assert_eq!(written.len(), 20, "the new leader takes writes");
    let log = converged_log(replicas, target).await;
    assert_eq!(crate::support::frames_by_seed(&log).len(), 40);
}

/// One group saturated with large writes must not starve the heartbeats of the others on the
/// same nodes: with production timers, no other group (and not the busy one) changes term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_group_causes_no_elections_in_the_others() {
    let hot = RaftGroupId(31);
    let idle: Vec<RaftGroupId> = (32..40).map(RaftGroupId).collect();
    let groups: Vec<RaftGroupId> = std::iter::once(hot).chain(idle.iter().copied()).collect();
    let cluster = GrpcCluster::start(3, &groups, stave_raft::partition_raft_config()).await;
    let terms_before: BTreeMap<RaftGroupId, u64> =
        groups.iter().map(|&g| (g, cluster.term(g))).collect();

    let replicas = &cluster.replicas[&hot];
    let leader = wait_leader(replicas, None).await;
    let raft = &replicas[&leader].raft;
    // 256 KiB batches, 16 in flight, for 4 s (at most 2,000 batches).
    let frame = FramePayload(batch(7, 256, 1000));
    let started = std::time::Instant::now();
    let mut written = 0u64;
    while started.elapsed() < Duration::from_secs(4) && written < 2000 {
        let wave = (0..16).map(|_| raft.client_write(frame.clone()));
        for result in futures_util::future::join_all(wave).await {
            result.unwrap();
            written += 1;
        }
    }
    assert!(written >= 16, "the hot group took writes");

    let terms_after: BTreeMap<RaftGroupId, u64> =
        groups.iter().map(|&g| (g, cluster.term(g))).collect();
    assert_eq!(
        terms_after, terms_before,
        "a group changed term while group {hot} took {written} batches of 256 KiB"
    );
}

//! How a node joins its cluster's controller: a new cluster's bootstrap (the lowest node
//! initializes the controller group and writes the nodes and the cluster id), a wiped node's
//! rejoin as a learner (of the controller, and of any group through `RaftNode::rejoin`),
//! its vote once promoted, and the controller leader's promotion of caught-up learners.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::BasicNode;
use stave_proto::internal::controller as proto;

use super::{RaftNode, lock};
use crate::controller::ClusterMetadata;
use crate::group::{CONTROLLER_GROUP, GroupHandle, RaftGroupId, Rejoined};
use crate::membership;
use crate::types::TypeConfig;

/// Whether `metrics` show a committed membership newer than `since` that makes `me` a voter:
/// a rejoined replica votes from then on.
pub(super) fn promoted_since(
    metrics: &openraft::RaftMetrics<TypeConfig>,
    me: u64,
    since: u64,
) -> bool {
    let committed = &metrics.committed_membership_config;
    committed.log_id().is_some_and(|id| id.index > since)
        && committed.membership().voter_ids().any(|id| id == me)
}

impl RaftNode {
    /// A node without controller state: a new cluster, or this node was wiped.
    pub(super) async fn bootstrap(&self) {
        let config = &self.inner.config;
        let others: Vec<(u64, String)> = config
            .peers
            .iter()
            .filter(|(id, _)| **id != config.id)
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        let lowest = config.peers.keys().next() == Some(&config.id);
        loop {
            let mut answered = 0;
            let mut peers_with_state = 0;
            let mut cluster: Option<(Option<u64>, u64)> = None;
            for (id, addr) in &others {
                match self.inner.clients.hello(*id, addr, config.id).await {
                    Ok(hello) => {
                        answered += 1;
                        peers_with_state += usize::from(hello.has_state);
                        if !hello.cluster_id.is_empty() {
                            cluster = Some((hello.controller_leader, *id));
                        }
                    }
                    Err(err) => tracing::debug!(peer = id, %err, "peer not reachable yet"),
                }
            }
            if let Some((leader, asked)) = cluster {
                // A cluster exists and this node holds nothing of it: it was wiped (or is
                // new to an existing cluster).
                if self.rejoin_controller(leader.unwrap_or(asked)).await {
                    return;
                }
            } else if answered == others.len() && !(lowest && peers_with_state > 0) {
                // A new cluster. (Peers with state but no cluster id yet: it is forming; the
                // lowest node waits for its id rather than initializing a second time.)
                if self.stopped() {
                    return;
                }
                self.inner.groups.insert(
                    CONTROLLER_GROUP,
                    Arc::new(self.inner.controller.raft.clone()),
                );
                if lowest {
                    self.initialize_cluster().await;
                }
                return;
            }
            if !self.pause().await {
                return;
            }
        }
    }

    /// The lowest node of a new cluster: initializes the controller group, then writes the
    /// nodes and the cluster id.
    async fn initialize_cluster(&self) {
        let config = &self.inner.config;
        let members: BTreeMap<u64, BasicNode> = config
            .peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        if let Err(err) = self.inner.controller.raft.initialize(members).await {
            tracing::warn!(%err, "controller group not initialized");
        }
        self.write_cluster().await;
    }

    /// Writes the initial nodes and the cluster id (on the controller leader, while the
    /// metadata has no cluster id: also after a restart between initialization and these
    /// writes; a second `InitCluster` is refused, `RegisterNode` is idempotent).
    pub(super) async fn write_cluster(&self) {
        let config = &self.inner.config;
        let cluster_id = format!("{:016x}", rand::random::<u64>());
        // The nodes first: whoever sees the cluster id finds them registered.
        let mut commands: Vec<proto::Command> = config
            .peers
            .iter()
            .map(|(id, addr)| proto::Command {
                command: Some(proto::command::Command::RegisterNode(proto::RegisterNode {
                    node: Some(proto::Node {
                        id: *id,
                        addr: addr.clone(),
                    }),
                })),
            })
            .collect();
        commands.push(proto::Command {
            command: Some(proto::command::Command::InitCluster(proto::InitCluster {
                cluster_id,
            })),
        });
        for command in commands {
            loop {
                match self.inner.controller.propose(command.clone()).await {
                    Ok(_) => break,
                    Err(err) => {
                        tracing::debug!(%err, "bootstrap command not applied yet");
                        if !self.pause().await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Whether this node leads the controller group.
    pub(super) fn leads_controller(&self) -> bool {
        let inner = &self.inner;
        inner
            .controller
            .raft
            .metrics()
            .borrow_watched()
            .current_leader
            == Some(inner.config.id)
    }

    /// On the controller's leader, while the metadata has no cluster id: writes the cluster
    /// (`write_cluster`) in a task of its own, unless one is at it already.
    pub(super) fn spawn_write_cluster(&self) {
        let writing = &self.inner.writing_cluster;
        if writing.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let node = self.clone();
        self.spawn(|_| async move {
            node.write_cluster().await;
            node.inner
                .writing_cluster
                .store(false, std::sync::atomic::Ordering::Release);
        });
    }

    /// Asks the controller leader (starting with `ask`) to take this wiped node back; true
    /// once it has (the controller replica is then reachable, not voting).
    async fn rejoin_controller(&self, ask: u64) -> bool {
        // Until its controller replica has caught up, every partition replica this node
        // creates rejoins: none initializes a group or votes. Stored before anything else.
        let marked = self
            .update_node_file(|file| file.rejoin_below_incarnation = Some(u64::MAX))
            .await;
        if let Err(err) = marked {
            tracing::error!(%err, "cannot record the rejoin");
            return false;
        }
        let peers = self.inner.config.peers.clone();
        let mut candidates: Vec<u64> = vec![ask];
        candidates.extend(peers.keys().copied().filter(|id| *id != ask));
        let Some(since) = self.rejoin(CONTROLLER_GROUP, &candidates, &peers).await else {
            return false;
        };
        if let Err(err) = self
            .update_node_file(|file| file.controller_learner_since = Some(since))
            .await
        {
            tracing::error!(%err, "cannot record the rejoin");
            return false;
        }
        if self.stopped() {
            return true;
        }
        let raft: Arc<dyn GroupHandle> = Arc::new(self.inner.controller.raft.clone());
        self.inner.groups.insert_not_voting(CONTROLLER_GROUP, raft);
        let node = self.clone();
        self.spawn(|_| async move { node.vote_again_when_promoted(since).await });
        true
    }

    /// Asks the leader of `group` (trying `candidates` in turn, following hints) to take back
    /// this node's wiped replica as a learner; the learner entry's log index once it has.
    pub(super) async fn rejoin(
        &self,
        group: RaftGroupId,
        candidates: &[u64],
        addrs: &BTreeMap<u64, String>,
    ) -> Option<u64> {
        let config = &self.inner.config;
        for &first in candidates {
            let mut ask = first;
            for _ in 0..=addrs.len() {
                let addr = addrs.get(&ask)?;
                match self
                    .inner
                    .clients
                    .rejoin(ask, addr, group, config.id, &config.addr)
                    .await
                {
                    Ok(Rejoined::Learner { since }) => return Some(since),
                    Ok(Rejoined::NotLeader(Some(leader)))
                        if leader != ask && leader != config.id =>
                    {
                        ask = leader
                    }
                    Ok(Rejoined::NotLeader(_)) => break,
                    Err(err) => {
                        tracing::debug!(group = %group, node = ask, %err, "rejoin refused");
                        break;
                    }
                }
            }
        }
        None
    }

    /// A rejoining controller replica votes again once the leader has promoted it. Once it
    /// has applied what was committed then, the topics it knows are the ones that existed
    /// before this node came back: its replicas of later topics join normally.
    pub(super) async fn vote_again_when_promoted(&self, since: u64) {
        let raft = self.inner.controller.raft.clone();
        let me = self.inner.config.id;
        let mut stop = self.inner.stop.subscribe();
        let caught_up = async {
            let promoted = raft
                .wait(None)
                .metrics(|m| promoted_since(m, me, since), "promoted")
                .await
                .ok()?;
            let committed = promoted.cluster_committed.map(|id| id.index);
            raft.wait(None)
                .applied_index_at_least(committed, "caught up")
                .await
                .ok()
        };
        let caught_up = tokio::select! {
            caught_up = caught_up => caught_up.is_some(),
            _ = stop.wait_for(|stopped| *stopped) => false,
        };
        if !caught_up || self.stopped() {
            return;
        }
        self.inner.groups.insert(CONTROLLER_GROUP, Arc::new(raft));
        let below = self.inner.controller.metadata().next_incarnation();
        let stored = self
            .update_node_file(|file| {
                file.controller_learner_since = None;
                file.rejoin_below_incarnation = Some(below);
            })
            .await;
        if let Err(err) = stored {
            tracing::error!(%err, "cannot record the end of the controller's rejoin");
        }
    }

    /// On the controller's leader: promotes the controller's learners that are nodes of the
    /// cluster (wiped nodes taken back) once they have caught up. The leader that took a
    /// rejoin back promotes it too, but only while it leads; this finishes the job after a
    /// leader change (else the node never votes again, and the controller has a voter less).
    pub(super) fn promote_controller_learners(&self, metadata: &ClusterMetadata) {
        let raft = self.inner.controller.raft.clone();
        let learners: Vec<u64> = raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .learner_ids()
            .filter(|id| metadata.nodes().contains_key(id))
            .collect();
        if learners.is_empty() || !lock(&self.inner.converging).insert(CONTROLLER_GROUP) {
            return;
        }
        let deadline = self.inner.config.catch_up_deadline;
        self.spawn(|node| async move {
            for id in learners {
                let promoted = membership::promote_when_caught_up(&raft, id, deadline).await;
                if let Err(err) = promoted {
                    tracing::warn!(node = id, %err, "controller learner not promoted yet");
                }
            }
            lock(&node.inner.converging).remove(&CONTROLLER_GROUP);
        });
    }
}

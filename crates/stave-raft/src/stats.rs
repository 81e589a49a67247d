//! What a replica shows to monitoring, without openraft's types: [`RaftStats`], read from
//! openraft's metrics when asked (a scrape), and [`ReplicaCounters`], a few atomics counted
//! where the events happen (openraft's core reports its state to them as a
//! `MetricsRecorder`; the state machine counts snapshots, the log store purges). Nothing here
//! runs on the write path beyond a relaxed atomic add.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::metrics::{MetricsRecorder, RaftMetrics};

use crate::types::TypeConfig;

/// One replica's Raft state and event counts, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftStats {
    pub term: u64,
    /// The leader this replica knows of.
    pub leader: Option<u64>,
    /// On the leader: each other replica (follower or learner) and how many entries it is
    /// behind the leader's last log index (all of them when it has matched none). Empty
    /// elsewhere.
    pub follower_lag_entries: Vec<(u64, u64)>,
    /// Times this replica became its group's leader since it was opened.
    pub leaderships_won: u64,
    /// Snapshots built here or installed from the leader since the replica was opened.
    pub snapshots: u64,
    /// Purges of the log's head (retention, compaction) since the replica was opened.
    pub purges: u64,
}

/// A replica's log on disk: its segments and the bytes of frames they hold (preallocated
/// space and indexes not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogUsage {
    pub segments: u64,
    pub bytes: u64,
}

/// A replica's event counts; shared by its state machine, its log store and (as its
/// `MetricsRecorder`) its Raft core.
#[derive(Debug, Default)]
pub struct ReplicaCounters {
    leading: AtomicBool,
    leaderships_won: AtomicU64,
    snapshots: AtomicU64,
    purges: AtomicU64,
}

impl ReplicaCounters {
    pub(crate) fn snapshot_taken(&self) {
        self.snapshots.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn purged(&self) {
        self.purges.fetch_add(1, Ordering::Relaxed);
    }

    /// Installs these counters as `raft`'s recorder, so that it reports its state changes.
    pub(crate) async fn install<SM>(self: &Arc<Self>, raft: &openraft::Raft<TypeConfig, SM>)
    where
        SM: openraft::storage::RaftStateMachine<TypeConfig>,
    {
        // Only fails once the Raft core stopped: nothing is left to count then.
        let _ = raft.set_metrics_recorder(Some(self.clone())).await;
    }

    /// The counts with the state in `metrics`.
    pub(crate) fn stats(&self, metrics: &RaftMetrics<TypeConfig>) -> RaftStats {
        let last = metrics.last_log_index.unwrap_or(0);
        let follower_lag_entries = metrics
            .replication
            .iter()
            .flatten()
            .filter(|(node, _)| **node != metrics.id)
            .map(|(node, matched)| {
                let behind = match matched {
                    Some(matched) => last.saturating_sub(matched.index),
                    None => last + 1,
                };
                (*node, behind)
            })
            .collect();
        RaftStats {
            term: metrics.current_term,
            leader: metrics.current_leader,
            follower_lag_entries,
            leaderships_won: self.leaderships_won.load(Ordering::Relaxed),
            snapshots: self.snapshots.load(Ordering::Relaxed),
            purges: self.purges.load(Ordering::Relaxed),
        }
    }
}

/// The stats of `raft`, whose counters are `counters`.
pub(crate) fn read<SM>(
    raft: &openraft::Raft<TypeConfig, SM>,
    counters: &ReplicaCounters,
) -> RaftStats
where
    SM: openraft::storage::RaftStateMachine<TypeConfig>,
{
    let metrics = raft.metrics();
    let metrics = metrics.borrow_watched();
    counters.stats(&metrics)
}

/// openraft's core calls these with every metrics report; only the server state matters
/// here (a change into `Leader` is a leadership won).
impl MetricsRecorder for ReplicaCounters {
    fn record_apply_batch(&self, _entry_count: u64) {}
    fn record_append_batch(&self, _entry_count: u64) {}
    fn record_write_batch(&self, _entry_count: u64) {}
    fn set_current_term(&self, _term: u64) {}
    fn set_last_log_index(&self, _index: u64) {}
    fn set_committed_index(&self, _index: u64) {}
    fn set_applied_index(&self, _index: u64) {}
    fn set_snapshot_index(&self, _index: u64) {}
    fn set_purged_index(&self, _index: u64) {}

    fn set_server_state(&self, state: u8) {
        // openraft's encoding (`forward_metrics`): 3 is Leader.
        let leading = state == server_state_code(ServerState::Leader);
        if self.leading.swap(leading, Ordering::Relaxed) != leading && leading {
            self.leaderships_won.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn increment_vote(&self) {}
    fn increment_heartbeat(&self) {}
    fn increment_append(&self) {}
}

/// The number openraft's `forward_metrics` reports `state` as.
fn server_state_code(state: ServerState) -> u8 {
    match state {
        ServerState::Learner => 0,
        ServerState::Follower => 1,
        ServerState::Candidate => 2,
        ServerState::Leader => 3,
        ServerState::Shutdown => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leadership_is_counted_once_per_change_into_leader() {
        let counters = ReplicaCounters::default();
        for state in [1, 2, 3, 3, 3, 1, 2, 3, 4] {
            counters.set_server_state(state);
        }
        assert_eq!(counters.leaderships_won.load(Ordering::Relaxed), 2);
    }
}

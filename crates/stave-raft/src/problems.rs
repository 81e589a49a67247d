//! Partition replicas in trouble: a replica whose Raft stopped on its own (a storage or state
//! machine error is fatal to openraft's core) or that could not be opened. The node reopens
//! such a replica from disk a bounded number of times, with backoff, then leaves it offline;
//! either way the other replicas of its group carry on (a stopped leader stops heartbeating,
//! so they elect another within an election timeout). Every node reports its problems with
//! its leaderships, and `stave cluster status` lists them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::types::RaftGroupId;

/// A replica that stopped or could not open, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProblem {
    pub group: RaftGroupId,
    /// Why it last failed.
    pub reason: String,
    /// Reopens tried so far.
    pub reopens: u32,
    /// No more reopens: the replica stays down until the node restarts.
    pub offline: bool,
}

/// What the node does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reopen the replica from disk once this has passed.
    ReopenAfter(Duration),
    /// Every reopen was tried: leave it down.
    Offline,
}

/// A replica that reopened is forgotten once it has run this long without failing.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Trouble {
    reason: String,
    failures: u32,
    retry_at: Instant,
    offline: bool,
    /// When the replica last opened after a failure.
    opened_at: Option<Instant>,
}

/// The node's replicas in trouble, by group. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Problems {
    inner: Arc<Mutex<BTreeMap<RaftGroupId, Trouble>>>,
}

impl Problems {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<RaftGroupId, Trouble>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `group`'s replica failed for `reason`: the n-th failure is reopened after
    /// `backoff[n - 1]`; once the delays are spent, it is offline.
    pub fn failed(&self, group: RaftGroupId, reason: String, backoff: &[Duration]) -> Next {
        let mut troubles = self.lock();
        let trouble = troubles.entry(group).or_insert_with(|| Trouble {
            reason: String::new(),
            failures: 0,
            retry_at: Instant::now(),
            offline: false,
            opened_at: None,
        });
        trouble.reason = reason;
        trouble.failures += 1;
        trouble.opened_at = None;
        match backoff.get(trouble.failures as usize - 1) {
            Some(&delay) => {
                trouble.retry_at = Instant::now() + delay;
                Next::ReopenAfter(delay)
            }
            None => {
                trouble.offline = true;
                Next::Offline
            }
        }
    }

    /// Whether `group`'s replica may be opened now: it is not in trouble, or its reopen is
    /// due.
    pub fn may_open(&self, group: RaftGroupId) -> bool {
        self.lock()
            .get(&group)
            .is_none_or(|t| !t.offline && Instant::now() >= t.retry_at)
    }

    /// `group`'s replica opened (again).
    pub fn opened(&self, group: RaftGroupId) {
        if let Some(trouble) = self.lock().get_mut(&group) {
            trouble.opened_at = Some(Instant::now());
        }
    }

    /// `group`'s replica runs: once it has run [`HEALTHY_AFTER`] since it reopened, its past
    /// failures are forgotten.
    pub fn running(&self, group: RaftGroupId) {
        let mut troubles = self.lock();
        let healthy = troubles
            .get(&group)
            .and_then(|t| t.opened_at)
            .is_some_and(|at| at.elapsed() >= HEALTHY_AFTER);
        if healthy {
            troubles.remove(&group);
        }
    }

    /// `group` is no longer this node's business (unassigned, deleted).
    pub fn forget(&self, group: RaftGroupId) {
        self.lock().remove(&group);
    }

    /// Every replica in trouble.
    pub fn list(&self) -> Vec<ReplicaProblem> {
        self.lock()
            .iter()
            .map(|(&group, t)| ReplicaProblem {
                group,
                reason: t.reason.clone(),
                reopens: t.failures.saturating_sub(u32::from(t.offline)),
                offline: t.offline,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RaftGroupId;

    /// Each failure is reopened after the next delay; past the last, the replica is offline
    /// and is not opened again.
    #[test]
    fn failures_back_off_then_go_offline() {
        let problems = Problems::default();
        let backoff = [Duration::ZERO, Duration::ZERO];
        assert!(problems.may_open(RaftGroupId(7)));
        assert_eq!(
            problems.failed(RaftGroupId(7), "one".into(), &backoff),
            Next::ReopenAfter(Duration::ZERO)
        );
        assert!(problems.may_open(RaftGroupId(7)));
        problems.opened(RaftGroupId(7));
        assert_eq!(
            problems.failed(RaftGroupId(7), "two".into(), &backoff),
            Next::ReopenAfter(Duration::ZERO)
        );
        assert_eq!(
            problems.failed(RaftGroupId(7), "three".into(), &backoff),
            Next::Offline
        );
        assert!(!problems.may_open(RaftGroupId(7)));
        let listed = problems.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (
                listed[0].offline,
                listed[0].reopens,
                listed[0].reason.as_str()
            ),
            (true, 2, "three")
        );
        problems.forget(RaftGroupId(7));
        assert!(problems.may_open(RaftGroupId(7)));
        assert!(problems.list().is_empty());
    }

    /// A reopen waits out its delay.
    #[test]
    fn a_reopen_waits_for_its_delay() {
        let problems = Problems::default();
        problems.failed(
            RaftGroupId(3),
            "stopped".into(),
            &[Duration::from_secs(3600)],
        );
        assert!(!problems.may_open(RaftGroupId(3)));
        assert!(problems.may_open(RaftGroupId(4)));
    }
}

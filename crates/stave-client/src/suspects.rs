//! Nodes that recently failed to answer: no answer within an attempt's bound, or no
//! connection. A paused node's sockets still accept, so without this the client would keep
//! sending to it: the controller it names first, or the NOT_LEADER and NOT_COORDINATOR hints
//! of nodes that have not noticed yet that it stopped (they point at it until their election
//! ends).
//!
//! A suspect is asked last for metadata and any-node requests, is not used as a partition's
//! leader, and hints naming it are not followed: the client asks the partition's other
//! replicas and refreshes its metadata instead. Suspicion ends on evidence of life: the node
//! answers a request, or metadata asked for after the suspicion began names it as a leader
//! (it answered that metadata's leadership gathering), as when a pause was too short for an
//! election and the node still leads. Without either, it ends after [`SUSPICION_MAX`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The longest a suspicion lasts without evidence of life. A partition whose leader stopped
/// elects another one 6-8 s later (openraft waits out the leader's lease, then an election
/// timeout), and hints keep naming the stopped node until then: this outlasts that with
/// room to spare, and keeps a wrong suspicion (a node only slow once) from lasting.
pub(crate) const SUSPICION_MAX: Duration = Duration::from_secs(30);

/// The suspected nodes, by address.
#[derive(Debug)]
pub(crate) struct Suspects {
    ttl: Duration,
    since: Mutex<HashMap<String, Instant>>,
    /// Entries in `since`, read without the lock: clearing after every answer is then free
    /// while nothing is suspected.
    count: AtomicUsize,
}

impl Suspects {
    pub(crate) fn new(ttl: Duration) -> Suspects {
        Suspects {
            ttl,
            since: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        match self.since.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `addr` failed to answer just now.
    pub(crate) fn add(&self, addr: &str) {
        let now = Instant::now();
        let mut since = self.lock();
        since.retain(|_, at| now.saturating_duration_since(*at) < self.ttl);
        since.insert(addr.to_string(), now);
        self.count.store(since.len(), Ordering::Release);
    }

    /// `addr` answered.
    pub(crate) fn remove(&self, addr: &str) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut since = self.lock();
        since.remove(addr);
        self.count.store(since.len(), Ordering::Release);
    }

    /// `addr` is known to have answered someone after `at`: a suspicion older than that ends.
    pub(crate) fn remove_if_since_before(&self, addr: &str, at: Instant) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut since = self.lock();
        if since.get(addr).is_some_and(|since| *since < at) {
            since.remove(addr);
            self.count.store(since.len(), Ordering::Release);
        }
    }

    /// Whether `addr` failed to answer within the last `ttl`.
    pub(crate) fn contains(&self, addr: &str) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.lock()
            .get(addr)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// `addrs` with the suspects moved to the end (each part keeps its order).
    pub(crate) fn last(&self, mut addrs: Vec<String>) -> Vec<String> {
        if self.count.load(Ordering::Acquire) > 0 {
            addrs.sort_by_key(|addr| self.contains(addr));
        }
        addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that failed is suspected until it answers, or until the suspicion expires.
    #[tokio::test(start_paused = true)]
    async fn suspicion_ends_with_an_answer_or_after_its_ttl() {
        let suspects = Suspects::new(Duration::from_secs(5));
        assert!(!suspects.contains("a:1"));
        suspects.add("a:1");
        suspects.add("b:1");
        assert!(suspects.contains("a:1") && suspects.contains("b:1"));
        suspects.remove("a:1");
        assert!(!suspects.contains("a:1"));
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(suspects.contains("b:1"));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!suspects.contains("b:1"), "expired");
        // Expired entries go with the next addition.
        suspects.add("c:1");
        assert_eq!(suspects.lock().len(), 1);
    }

    /// Metadata asked for after a suspicion began, naming the node as a leader, ends it;
    /// one asked for before does not (its answer may predate the silence).
    #[tokio::test(start_paused = true)]
    async fn a_later_sign_of_life_ends_a_suspicion_and_an_earlier_one_does_not() {
        let suspects = Suspects::new(Duration::from_secs(30));
        let before = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        suspects.add("a:1");
        suspects.remove_if_since_before("a:1", before);
        assert!(suspects.contains("a:1"));
        tokio::time::advance(Duration::from_millis(10)).await;
        suspects.remove_if_since_before("a:1", Instant::now());
        assert!(!suspects.contains("a:1"));
    }

    /// Suspects go last, and the order within each part stays.
    #[tokio::test(start_paused = true)]
    async fn suspects_are_asked_last() {
        let suspects = Suspects::new(Duration::from_secs(5));
        let addrs = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            suspects.last(addrs(&["a", "b", "c"])),
            addrs(&["a", "b", "c"])
        );
        suspects.add("a");
        assert_eq!(
            suspects.last(addrs(&["a", "b", "c"])),
            addrs(&["b", "c", "a"])
        );
        suspects.add("c");
        assert_eq!(
            suspects.last(addrs(&["c", "b", "a"])),
            addrs(&["b", "c", "a"])
        );
    }
}

//! What every fuzz case leans on: the run's settings (seed, case count), a panic counter for
//! the in-process nodes, the table of acceptable answers, and the cluster with its leader and
//! coordinator caches.
//!
//! Acceptable answers to a hostile request:
//! - a gRPC success whose `error` is NONE or a typed `ErrorCode` other than INTERNAL;
//! - a gRPC `Status` that fails the request as a whole, for a reason a client can act on:
//!   INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, NOT_FOUND, ALREADY_EXISTS,
//!   RESOURCE_EXHAUSTED (a message over a limit), UNAVAILABLE (no controller leader yet,
//!   a peer unreachable) and DEADLINE_EXCEEDED.
//!
//! Never acceptable: `ErrorCode::INTERNAL`, and the Status codes INTERNAL, UNKNOWN (what a
//! panicking handler or a broken connection looks like), UNIMPLEMENTED, DATA_LOSS, CANCELLED
//! (the server dropped the call), and no answer within [`CALL_MAX`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tonic::transport::Channel;

use crate::support::Node;

/// The seed a run uses unless `STAVE_SEED` says otherwise: CI is deterministic.
pub const SEED_DEFAULT: u64 = 0x5EED_F022;

/// Longest any single call may take before it counts as a hang (a produce waits at most the
/// 4 s produce timeout, a controller request 5 s for a leader).
pub const CALL_MAX: Duration = Duration::from_secs(20);

/// How long a partition may take to accept a valid write after a case (a re-election
/// included).
pub const HEAL_MAX: Duration = Duration::from_secs(20);

/// `name` from the environment, parsed, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// A defect: something no request may cause.
#[derive(Debug, Clone)]
pub struct Defect {
    pub kind: &'static str,
    pub detail: String,
}

pub fn defect(kind: &'static str, detail: impl Into<String>) -> Defect {
    Defect {
        kind,
        detail: detail.into(),
    }
}

/// The result of one case.
pub type Checked = Result<(), Defect>;

/// Panics seen on threads whose name starts with a prefix a fuzz runtime registered: the
/// in-process nodes run there, and a panic in one of their tasks fails nothing by itself.
static PANICS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();

fn panics() -> &'static Mutex<HashMap<String, Vec<String>>> {
    PANICS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if let Some(seen) = PANICS.get() {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                for (prefix, list) in seen.iter_mut() {
                    if name.starts_with(prefix.as_str()) {
                        list.push(format!("thread {name}: {info}"));
                    }
                }
            }
            previous(info);
        }));
        Mutex::new(HashMap::new())
    })
}

/// Starts counting panics on threads named `prefix*` (a runtime built with
/// `thread_name(prefix)`).
pub fn count_panics(prefix: &str) {
    panics()
        .lock()
        .unwrap()
        .insert(prefix.to_string(), Vec::new());
}

/// The panics seen so far on `prefix*` threads.
pub fn panics_seen(prefix: &str) -> Vec<String> {
    panics()
        .lock()
        .unwrap()
        .get(prefix)
        .cloned()
        .unwrap_or_default()
}

/// The runtime the nodes run on: its threads (workers and blocking) are named `prefix`, and
/// panics there are counted. Dropping it does not wait for its threads: a node stuck in a
/// loop must fail a test, not hang it.
pub struct NodeRuntime(Option<tokio::runtime::Runtime>);

impl NodeRuntime {
    pub fn new(prefix: &str) -> NodeRuntime {
        count_panics(prefix);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(prefix)
            .enable_all()
            .build()
            .unwrap();
        NodeRuntime(Some(runtime))
    }

    /// `count` nodes started on this runtime.
    pub fn cluster(&self, count: u64) -> Vec<Node> {
        self.cluster_with(count, |_| {})
    }

    /// `count` nodes started on this runtime, their configs changed by `tweak`.
    pub fn cluster_with(
        &self,
        count: u64,
        tweak: impl Fn(&mut stave_broker::BrokerConfig),
    ) -> Vec<Node> {
        let runtime = self.0.as_ref().expect("running until dropped");
        runtime.block_on(crate::support::cluster_with(count, tweak))
    }
}

impl Drop for NodeRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The runtime the fuzz itself runs on (clients, checks, timeouts), apart from the nodes'.
pub fn driver_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fuzz-driver")
        .enable_all()
        .build()
        .unwrap()
}

/// Whether a whole-request failure is one a client can act on (see the module doc).
pub fn status_acceptable(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::NotFound
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::Unavailable
            | Code::DeadlineExceeded
    )
}

/// The typed code of an answer's `error`, or a defect if it is INTERNAL or not a known code.
pub fn typed(error: &Option<pb::Error>) -> Result<pb::ErrorCode, Defect> {
    let Some(error) = error else {
        return Ok(pb::ErrorCode::None);
    };
    match pb::ErrorCode::try_from(error.code) {
        Ok(pb::ErrorCode::Internal) => Err(defect("INTERNAL error code", format!("{error:?}"))),
        Ok(code) => Ok(code),
        Err(_) => Err(defect("unknown error code", format!("{error:?}"))),
    }
}

/// A request as a failure report shows it: its first [`SHOWN_CHARS`] characters (some carry
/// 100 KB names or megabytes of frames, and are not formatted past that).
pub fn shown(request: &dyn std::fmt::Debug) -> String {
    use std::fmt::Write;
    /// Takes characters until it is full, then refuses the rest.
    struct Bounded(String);
    impl Write for Bounded {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            let room = SHOWN_CHARS.saturating_sub(self.0.len());
            if text.len() <= room {
                self.0.push_str(text);
                return Ok(());
            }
            let cut = (0..=room)
                .rev()
                .find(|at| text.is_char_boundary(*at))
                .unwrap_or(0);
            self.0.push_str(&text[..cut]);
            Err(std::fmt::Error)
        }
    }
    let mut out = Bounded(String::new());
    if write!(out, "{request:?}").is_err() {
        out.0.push('…');
    }
    out.0
}

/// How much of a request a failure report shows.
const SHOWN_CHARS: usize = 1_500;

/// A call's answer: the message, or a defect if it took longer than [`CALL_MAX`] or failed
/// with an unacceptable Status. `Ok(None)`: an acceptable whole-request failure.
pub async fn answer<T>(
    request: &(dyn std::fmt::Debug + Sync),
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<Option<T>, Defect> {
    match tokio::time::timeout(CALL_MAX, call).await {
        Err(_) => Err(defect(
            "hang",
            format!("no answer within {CALL_MAX:?} to {}", shown(request)),
        )),
        Ok(Ok(response)) => Ok(Some(response.into_inner())),
        Ok(Err(status)) if status_acceptable(&status) => Ok(None),
        Ok(Err(status)) => Err(defect(
            "unacceptable status",
            format!(
                "{:?}: {} to {}",
                status.code(),
                status.message(),
                shown(request)
            ),
        )),
    }
}

/// The nodes and a client for each, with what the fuzz learned of leaders and coordinators.
pub struct Cluster {
    pub nodes: Vec<Node>,
    clients: Vec<StaveClient<Channel>>,
    leaders: Mutex<HashMap<(String, u32), usize>>,
    coordinators: Mutex<HashMap<String, usize>>,
    /// Rotates requests sent to "any node".
    next: AtomicUsize,
}

/// A client that takes and sends messages up to 32 MiB (a Fetch answer may hold 16).
fn client(addr: &str) -> StaveClient<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true);
    StaveClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(32 << 20)
        .max_encoding_message_size(32 << 20)
}

impl Cluster {
    pub fn new(nodes: Vec<Node>) -> Cluster {
        let clients = nodes.iter().map(|node| client(&node.addr)).collect();
        Cluster {
            nodes,
            clients,
            leaders: Mutex::new(HashMap::new()),
            coordinators: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn client(&self, node: usize) -> StaveClient<Channel> {
        self.clients[node % self.clients.len()].clone()
    }

    /// The next node in turn.
    pub fn any(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()
    }

    fn index_of(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.addr == addr)
    }

    /// The node believed to lead `topic`/`partition` (any node if unknown).
    pub fn leader(&self, topic: &str, partition: u32) -> usize {
        let known = self
            .leaders
            .lock()
            .unwrap()
            .get(&(topic.to_string(), partition))
            .copied();
        known.unwrap_or_else(|| self.any())
    }

    /// Learns from a NOT_LEADER hint (or forgets the leader, so the next call tries another
    /// node).
    pub fn note_leader(&self, topic: &str, partition: u32, error: &Option<pb::Error>) {
        let hint = error.as_ref().and_then(|e| self.index_of(&e.leader_addr));
        let mut leaders = self.leaders.lock().unwrap();
        match hint {
            Some(node) => leaders.insert((topic.to_string(), partition), node),
            None => leaders.remove(&(topic.to_string(), partition)),
        };
    }

    pub fn set_leader(&self, topic: &str, partition: u32, node: usize) {
        self.leaders
            .lock()
            .unwrap()
            .insert((topic.to_string(), partition), node);
    }

    /// The node believed to coordinate `group` (any node if unknown).
    pub fn coordinator(&self, group: &str) -> usize {
        let known = self.coordinators.lock().unwrap().get(group).copied();
        known.unwrap_or_else(|| self.any())
    }

    /// Learns `group`'s coordinator from an answer's NOT_COORDINATOR hint or a
    /// FindCoordinator answer.
    pub fn note_coordinator(&self, group: &str, addr: &str) {
        let mut coordinators = self.coordinators.lock().unwrap();
        match self.index_of(addr) {
            Some(node) => coordinators.insert(group.to_string(), node),
            None => coordinators.remove(group),
        };
    }
}

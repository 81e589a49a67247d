//! Running `stave server` processes and talking to them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(60);

/// Shows the client's log in a failing test's output (`RUST_LOG` sets the filter; warnings
/// by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A free loopback port: bound, read, released (the server binds it right after).
pub fn reserve_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// One `stave server` process; killed (SIGKILL) when dropped.
pub struct Server {
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    peers: String,
    /// The cluster secret's file, shared by the cluster's servers.
    secret_file: PathBuf,
    /// More flags for `stave server`.
    extra: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

/// A cluster secret for the servers under `root`, in `root/cluster.secret` (0600).
pub fn cluster_secret_file(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join("cluster.secret");
    if !path.exists() {
        let secret = stave_broker::cluster_secret::ClusterSecret::generate();
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(&path, format!("{}\n", secret.expose())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

impl Server {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_stave"));
        command
            .args(["server", "--node-id", &self.id.to_string()])
            .args(["--data-dir", &self.dir.display().to_string()])
            .args(["--listen", &self.addr])
            // Nodes and tests run side by side: none takes the default metrics port.
            .args(["--metrics-listen", "off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if !self.peers.is_empty() {
            command.args(["--peers", &self.peers]);
            command.arg("--cluster-secret-file").arg(&self.secret_file);
        }
        command.args(&self.extra);
        self.child = Some(command.spawn().unwrap());
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same directory and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Replaces the data directory with an empty one (a lost disk).
    pub fn wipe(&mut self) {
        assert!(self.child.is_none(), "wipe a stopped node");
        std::fs::remove_dir_all(&self.dir).unwrap();
    }

    /// SIGSTOP: the process stays, and the kernel still accepts connections and buffers
    /// bytes for it, but nothing is read or answered (a paused VM, a long stall). It runs
    /// again (SIGCONT) when the returned guard is dropped, whichever way the test ends.
    pub fn freeze(&self) -> Frozen {
        let child = self.child.as_ref().expect("freeze a running node");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        // SAFETY: `kill` has no memory effects; `pid` is our own child, not yet reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGSTOP) };
        assert_eq!(sent, 0, "SIGSTOP node {}", self.id);
        Frozen { pid }
    }

    /// The server's output so far, for failure messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node stopped by [`Server::freeze`]; dropping it continues the process (SIGCONT), so no
/// test leaves a frozen process behind, even when it panics.
pub struct Frozen {
    pid: libc::pid_t,
}

impl Frozen {
    /// Continues the process now.
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as in `freeze`. A process already killed (the server dropped first) makes
        // this fail with ESRCH, which is fine.
        unsafe { libc::kill(self.pid, libc::SIGCONT) };
    }
}

/// `count` servers forming one cluster (no `--peers` for a single node), under `root`.
pub fn start(root: &Path, count: u64) -> Vec<Server> {
    start_with(root, count, &[])
}

/// [`start`], each server with the flags `extra` too.
pub fn start_with(root: &Path, count: u64, extra: &[&str]) -> Vec<Server> {
    let addrs: BTreeMap<u64, String> = (1..=count)
        .map(|id| (id, format!("127.0.0.1:{}", reserve_port())))
        .collect();
    let peers = if count == 1 {
        String::new()
    } else {
        addrs
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    addrs
        .into_iter()
        .map(|(id, addr)| {
            let mut server = Server {
                id,
                addr,
                dir: root.join(format!("node-{id}")),
                peers: peers.clone(),
                secret_file: cluster_secret_file(root),
                extra: extra.iter().map(|flag| flag.to_string()).collect(),
                log: root.join(format!("node-{id}.log")),
                child: None,
            };
            server.spawn();
            server
        })
        .collect()
}

pub fn client(addr: &str) -> StaveClient<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1));
    StaveClient::new(endpoint.connect_lazy())
}

pub fn code(error: &Option<pb::Error>) -> pb::ErrorCode {
    error.as_ref().map_or(pb::ErrorCode::None, |e| {
        pb::ErrorCode::try_from(e.code).unwrap()
    })
}

/// Waits until every server answers Metadata with the same cluster id.
pub async fn wait_ready(servers: &[Server]) {
    let started = Instant::now();
    for server in servers {
        loop {
            let answer = client(&server.addr)
                .metadata(pb::MetadataRequest { topics: vec![] })
                .await;
            if let Ok(answer) = answer
                && !answer.get_ref().cluster_id.is_empty()
            {
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "node {} not ready:\n{}",
                server.id,
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Creates a topic through `addr`, retrying while the cluster cannot yet.
pub async fn create_topic(addr: &str, name: &str, partitions: u32, configs: &[(&str, &str)]) {
    let started = Instant::now();
    loop {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::TopicSpec {
                name: name.into(),
                partitions,
                replication_factor: 0,
                configs: configs
                    .iter()
                    .map(|(key, value)| pb::ConfigEntry {
                        key: key.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
            }],
        };
        if let Ok(response) = client(addr).create_topics(request).await {
            let error = &response.get_ref().results[0].error;
            match code(error) {
                pb::ErrorCode::None | pb::ErrorCode::TopicExists => return,
                pb::ErrorCode::LeaderNotAvailable | pb::ErrorCode::RequestTimedOut => {}
                other => panic!("topic {name} not created: {other:?} {error:?}"),
            }
        }
        assert!(started.elapsed() < WAIT, "topic {name} not created in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch whose single record's key is `seed` and whose value names it.
pub fn seed_batch(seed: u64) -> Bytes {
    seed_batch_from(seed, ProducerFields::NONE)
}

/// [`seed_batch`] from an idempotent producer (its retries are written once).
pub fn seed_batch_from(seed: u64, producer: ProducerFields) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.producer(producer);
    let value = format!("record-{seed:08}-{}", "x".repeat((seed % 200) as usize));
    builder.push(&Record {
        timestamp: now_ms() + seed as i64 % 1000,
        key: Some(&seed.to_le_bytes()),
        value: Some(value.as_bytes()),
        headers: &[],
    });
    Bytes::from(builder.finish())
}

/// Every record of a partition from `from` up to its high watermark: (offset, key seed).
pub async fn read_all(addr: &str, topic: &str, partition: u32, from: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = from;
    let started = Instant::now();
    let first = addr.to_string();
    let mut addr = first.clone();
    loop {
        let answer = client(&addr)
            .fetch(pb::FetchRequest {
                topic: topic.into(),
                partition,
                offset,
                max_bytes: 1 << 20,
                min_bytes: 1,
                max_wait_ms: 0,
            })
            .await;
        let response = match answer {
            Ok(response) => response.into_inner(),
            Err(status) => {
                // A stale hint to a node that is down: start over where we began.
                assert!(started.elapsed() < WAIT, "no node to read from: {status}");
                addr = first.clone();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match code(&response.error) {
            pb::ErrorCode::None => {}
            pb::ErrorCode::LeaderNotAvailable | pb::ErrorCode::NotLeader => {
                if let Some(hint) = response.error.as_ref().map(|e| &e.leader_addr)
                    && !hint.is_empty()
                {
                    addr = hint.clone();
                }
                assert!(started.elapsed() < WAIT, "no leader to read from");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            other => panic!("fetch at {offset}: {other:?} {:?}", response.error),
        }
        for frame in stave_log::batch::BatchView::split(&response.batches) {
            let view = frame.unwrap();
            for (i, record) in view.records().enumerate() {
                let record = record.unwrap();
                let record_offset = view.base_offset().0 + i as u64;
                if record_offset < offset {
                    continue;
                }
                let key: [u8; 8] = record.key.unwrap().try_into().unwrap();
                out.push((record_offset, u64::from_le_bytes(key)));
            }
        }
        offset = response.next_offset;
        if offset >= response.high_watermark {
            return out;
        }
    }
}

/// Now, in epoch milliseconds (records older than a topic's `retention.ms` would go).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Asks `check` again and again, a tenth of a second apart, until it gives a value; fails
/// the test after `WAIT`. For state nothing announces (a remote committed offset, a
/// coordinator being elected): the retry loop with a deadline, written once.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
    }
}

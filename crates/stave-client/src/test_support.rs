//! In-process stand-ins for the unit tests of the per-attempt bound:
//!
//! - [`LiveNode`]: a real single node (`stave_broker::spawn`) on a loopback port;
//! - [`SilentNode`]: what a paused process looks like from outside, a listening socket that
//!   nobody reads: the kernel completes connections and buffers what is sent, nothing
//!   answers;
//! - [`Proxy`]: forwards bytes to a node both ways, and can hold back what the node sends
//!   (the requests are carried out, their answers never arrive).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use stave_broker::{BrokerConfig, Running};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::admin::NewTopic;
use crate::client::Client;
use crate::config::ClientConfig;

/// Long enough for a node's first elections on a loaded 2-core machine.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A real node, served in process, with data in a temp dir.
pub(crate) struct LiveNode {
    pub(crate) addr: String,
    _running: Running,
    _dir: TempDir,
}

impl LiveNode {
    pub(crate) async fn start() -> LiveNode {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut config = BrokerConfig::single_node(dir.path().join("data"), addr.clone());
        // Tests run in parallel: none takes the default metrics port.
        config.metrics_listen = stave_broker::metrics::MetricsListen::Off;
        LiveNode {
            addr,
            _running: stave_broker::spawn(listener, config),
            _dir: dir,
        }
    }

    /// A client of this node with `config`'s bounds, once the node can place a topic, and
    /// `topic` (one partition) created and led.
    pub(crate) async fn client_with_topic(&self, config: ClientConfig, topic: &str) -> Client {
        let config = ClientConfig {
            bootstrap: vec![self.addr.clone()],
            retry_timeout: READY_TIMEOUT,
            ..config
        };
        let client = Client::connect(config).await.unwrap();
        let admin = client.admin();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let cluster = admin.cluster().await.unwrap();
            if cluster.controller_id.is_some() && !cluster.nodes.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the node never registered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        admin.create_topic(NewTopic::new(topic, 1)).await.unwrap();
        admin.wait_for_leaders(topic, READY_TIMEOUT).await.unwrap();
        client
    }
}

/// A listening socket nobody accepts from or reads: a paused node.
pub(crate) struct SilentNode {
    pub(crate) addr: String,
    _listener: std::net::TcpListener,
}

impl SilentNode {
    pub(crate) fn start() -> SilentNode {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        SilentNode {
            addr: listener.local_addr().unwrap().to_string(),
            _listener: listener,
        }
    }
}

/// Forwards every connection to `upstream`; while held, what the upstream sends back is
/// kept (not lost: it goes on once released).
pub(crate) struct Proxy {
    pub(crate) addr: String,
    hold: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (hold, held) = watch::channel(false);
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(copy(client_read, server_write, None));
                tokio::spawn(copy(server_read, client_write, Some(held.clone())));
            }
        });
        Proxy { addr, hold, task }
    }

    /// Holds back (`true`) or lets through (`false`) what the upstream sends.
    pub(crate) fn hold_answers(&self, hold: bool) {
        self.hold.send_replace(hold);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either ends; each chunk waits while `held` says so.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: Option<watch::Receiver<bool>>,
) {
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if let Some(held) = &mut held
            && held.wait_for(|held| !*held).await.is_err()
        {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Client bounds for these tests: attempts bounded by `request_timeout`, keep-alive out of
/// the way (so the bound under test is the one that acts).
pub(crate) fn bounds(request_timeout: Duration) -> ClientConfig {
    ClientConfig {
        request_timeout,
        keep_alive_interval: Duration::from_secs(600),
        keep_alive_timeout: Duration::from_secs(600),
        ..ClientConfig::default()
    }
}

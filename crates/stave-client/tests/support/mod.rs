//! The test harness: a real node served in process (`stave_broker::spawn`) on a loopback
//! port, with data in a temp dir.

#![allow(clippy::unwrap_used, dead_code)]

use std::time::Duration;

use stave_broker::{BrokerConfig, Running};
use stave_client::{Client, ClientConfig, NewTopic};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Long enough for a node's first elections on a loaded 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Node {
    running: Option<Running>,
    pub addr: String,
    dir: TempDir,
}

impl Node {
    pub async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let running = serve(listener, &dir, &addr);
        Node {
            running: Some(running),
            addr,
            dir,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }

    /// Starts the node again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(&self.addr).await.unwrap();
        self.running = Some(serve(listener, &self.dir, &self.addr));
    }
}

fn serve(listener: TcpListener, dir: &TempDir, addr: &str) -> Running {
    let mut config = BrokerConfig::single_node(dir.path().join("data"), addr.to_string());
    config.retention_check_ms = 200;
    // Tests run in parallel: none takes the default metrics port.
    config.metrics_listen = stave_broker::metrics::MetricsListen::Off;
    stave_broker::spawn(listener, config)
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A client of `node`, once the node has registered itself with the controller (before,
/// a topic create finds no node to place replicas on).
pub async fn connect(node: &Node) -> Client {
    let mut config = ClientConfig::new(&node.addr).unwrap();
    config.retry_timeout = READY_TIMEOUT;
    let client = Client::connect(config).await.unwrap();
    let start = Instant::now();
    loop {
        let cluster = client.admin().cluster().await.unwrap();
        if cluster.controller_id.is_some() && !cluster.nodes.is_empty() {
            return client;
        }
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "the node never registered: {cluster:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn topic(client: &Client, name: &str, partitions: u32) {
    let admin = client.admin();
    admin
        .create_topic(NewTopic::new(name, partitions))
        .await
        .unwrap();
    admin.wait_for_leaders(name, READY_TIMEOUT).await.unwrap();
}

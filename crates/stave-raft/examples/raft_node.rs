//! A node that runs the Raft side of Stave and nothing else ([`RaftNode`]: the controller and
//! the partition groups the metadata assigns it), over the gRPC transport: for measuring what
//! idle groups cost (`scripts/idle-cpu.sh`). The broker (`stave server`) is the real node; this
//! one has no client API.
//!
//! ```text
//! raft_node --id 1 --listen 127.0.0.1:7101 \
//!     --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --partitions 300 --data-dir /tmp/n1
//! ```
//! The nodes bootstrap a cluster; the lowest id creates topic `idle` with `--partitions`
//! partitions of replication factor 3 (replicas rotated, so leaders spread). Each node prints
//! `ready` once it runs its replicas and sees a leader in each, then runs until killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use stave_proto::internal::controller as proto;
use stave_raft::node::{NodeConfig, RaftNode};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    id: u64,
    #[arg(long)]
    listen: String,
    /// ID=HOST:PORT,... for every node, this one included.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    #[arg(long, default_value_t = 300)]
    partitions: u32,
    #[arg(long)]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut peers = BTreeMap::new();
    for peer in &args.peers {
        let (id, addr) = peer.split_once('=').ok_or("--peers takes ID=HOST:PORT")?;
        peers.insert(id.parse::<u64>()?, addr.to_string());
    }
    let ids: Vec<u64> = peers.keys().copied().collect();
    let config = NodeConfig::new(args.id, args.data_dir, args.listen.clone(), peers);
    let node = RaftNode::start(config).await?;
    let (control, data) = node.services();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(control)
            .add_service(data)
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );

    let mut cluster_id = node.identity().subscribe_cluster_id();
    cluster_id.wait_for(Option::is_some).await?;
    if ids.first() == Some(&args.id) && node.controller().metadata().topic("idle").is_none() {
        let partitions = (0..args.partitions)
            .map(|p| proto::Partition {
                partition: p,
                replicas: (0..3.min(ids.len()))
                    .map(|r| ids[(p as usize + r) % ids.len()])
                    .collect(),
            })
            .collect();
        let create = proto::Command {
            command: Some(proto::command::Command::CreateTopic(proto::CreateTopic {
                name: "idle".into(),
                partitions,
                configs: vec![],
            })),
        };
        while node.controller().propose(create.clone()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mine = args.partitions as usize * 3.min(ids.len()) / ids.len();
    let mut running = node.subscribe_partitions();
    running.wait_for(|groups| groups.len() >= mine).await?;
    for group in node.partition_groups() {
        if let Some(replica) = node.replica(group) {
            replica
                .raft
                .wait(None)
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await?;
        }
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

//! A node that runs many partition groups and nothing else, over the gRPC transport: for
//! measuring what the groups cost when idle (`scripts/idle-cpu.sh`). The broker (`stave
//! server`) is the real node; this one has no client API.
//!
//! ```text
//! raft_node --id 1 --listen 127.0.0.1:7101 \
//!     --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --groups 300 --data-dir /tmp/n1
//! ```
//! Every node runs a replica of groups 1..=N on all peers; node i initializes the groups
//! whose number modulo the peer count is its position, so leaders spread over the nodes.
//! Prints `ready` once it sees a leader in every group, then runs until killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use openraft::impls::BasicNode;
use stave_raft::group::Groups;
use stave_raft::transport::{NodeIdentity, RaftClients, TransportConfig};
use stave_raft::{PartitionSnapshot, partition_raft_config, start_partition};

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
    groups: u64,
    #[arg(long)]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut peers = BTreeMap::new();
    for peer in &args.peers {
        let (id, addr) = peer.split_once('=').ok_or("--peers takes ID=HOST:PORT")?;
        peers.insert(id.parse::<u64>()?, BasicNode::new(addr));
    }
    let position = peers
        .keys()
        .position(|&id| id == args.id)
        .ok_or("--id is not among --peers")? as u64;

    let groups = Groups::default();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tokio::spawn(stave_raft::transport::serve(
        listener,
        groups.clone(),
        NodeIdentity::new(args.id, std::time::Duration::from_secs(30)),
        TransportConfig::default(),
        std::future::pending(),
    ));

    let clients = RaftClients::new(TransportConfig::default());
    let mut rafts = Vec::new();
    for group in 1..=args.groups {
        let dir = args.data_dir.join(group.to_string());
        std::fs::create_dir_all(&dir)?;
        let network = clients.network::<PartitionSnapshot>(group);
        let replica = start_partition(
            args.id,
            &dir,
            stave_log::LogConfig::default(),
            partition_raft_config(),
            network,
        )
        .await?;
        groups.insert(group, Arc::new(replica.raft.clone()));
        if group % peers.len() as u64 == position && !replica.raft.is_initialized().await? {
            replica.raft.initialize(peers.clone()).await?;
        }
        rafts.push(replica.raft);
    }
    for raft in &rafts {
        raft.wait(None)
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await?;
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

//! The `stave` command line: argument definitions and dispatch.
//! Each command lives in its own module; errors come back as one [`CliError`] that `main`
//! prints as a single line.

mod args;
mod bench;
mod cluster;
mod consume;
mod dev_certs;
pub mod error;
mod group;
mod output;
mod produce;
mod security;
mod server;
mod tls;
mod topic;

use std::time::Duration;

use clap::{Parser, Subcommand};
use stave_client::{Client, ClientConfig, ClientError, Credentials, parse_bootstrap};
use tokio::time::Instant;

use self::args::parse_duration;
pub use self::error::CliError;

/// How long a topic that is not in the metadata is looked for again before `produce` or
/// `consume` says it does not exist (metadata reaches every node a moment after a create).
const TOPIC_APPEAR_WAIT: Duration = Duration::from_secs(2);

/// Stave: a distributed log broker for event-driven microservices.
///
/// Start a node with `stave server`, create a topic with `stave topic create NAME`, write
/// lines with `stave produce NAME` and read them with `stave consume NAME --from-beginning`.
/// Client commands reach the cluster through --bootstrap (any reachable node will do).
#[derive(Debug, Parser)]
#[command(name = "stave", version, about, long_about)]
pub struct Cli {
    /// Nodes to contact: HOST:PORT[,HOST:PORT...]; any reachable one will do.
    #[arg(
        long,
        global = true,
        env = "STAVE_BOOTSTRAP",
        default_value = "127.0.0.1:7070",
        value_name = "HOST:PORT,..."
    )]
    bootstrap: String,
    /// How long a request retries "no leader yet", a leader change or a restarting node
    /// (10s, 500ms, 2m). A refused connection to every bootstrap address fails at once.
    #[arg(
        long,
        global = true,
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    timeout: Duration,
    #[command(flatten)]
    tls: tls::TlsArgs,
    /// A file holding this client's token (`stave user create` prints one; a node started
    /// with --auth required writes the first admin's to DATA_DIR/bootstrap-admin.token).
    /// STAVE_TOKEN gives the token itself.
    #[arg(long, global = true, env = "STAVE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (with no flags: one node, data in ./stave-data, on 127.0.0.1:7070).
    Server(server::ServerArgs),
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write one record per line of standard input (KEY<SEP>VALUE with --key-separator).
    Produce(produce::ProduceArgs),
    /// Print records as they arrive (from the end unless told otherwise).
    Consume(consume::ConsumeArgs),
    /// Inspect the cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// List consumer groups, show their lag, and reset their committed offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Measure throughput and latency: produce, consume (a group from the beginning), or
    /// end to end. Creates its topic if missing. A record not acknowledged within --timeout
    /// ends the run with an error.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Write a local CA, a node certificate and a client certificate into DIR, for trying
    /// TLS on one machine (not for production: the CA's key sits beside them).
    DevCerts(dev_certs::DevCertsArgs),
    /// Create, delete and list users (their tokens authenticate clients).
    #[command(subcommand)]
    User(security::UserCommand),
    /// Add, remove and list ACL entries: who may do what.
    #[command(subcommand)]
    Acl(security::AclCommand),
}

impl Cli {
    /// The default log filter: the server reports what it does, client commands only what
    /// went wrong (their output is for the user). `RUST_LOG` overrides it.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Server(_) => "info",
            _ => "warn",
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Server(args) => return server::run(args, &cli.tls).await,
        Command::DevCerts(args) => return dev_certs::run(&args),
        _ => {}
    }
    let credentials = credentials(cli.token_file.as_deref())?;
    let client = connect(&cli.bootstrap, cli.timeout, credentials, &cli.tls).await?;
    match cli.command {
        Command::Server(_) | Command::DevCerts(_) => Ok(()),
        Command::Topic(command) => topic::run(&client, command).await,
        Command::Produce(args) => produce::run(&client, args, cli.timeout).await,
        Command::Consume(args) => consume::run(&client, args, cli.timeout).await,
        Command::Cluster(command) => cluster::run(&client, command).await,
        Command::Group(command) => group::run(&client, command).await,
        Command::Bench(command) => bench::run(&client, command, cli.timeout).await,
        Command::User(command) => security::run_user(&client, command).await,
        Command::Acl(command) => security::run_acl(&client, command).await,
    }
}

/// The token of `--token-file`, else of STAVE_TOKEN, else none.
fn credentials(token_file: Option<&std::path::Path>) -> Result<Credentials, CliError> {
    let token = match token_file {
        Some(path) => std::fs::read_to_string(path).map_err(CliError::io(format!(
            "cannot read --token-file {}",
            path.display()
        )))?,
        None => match std::env::var("STAVE_TOKEN") {
            Ok(token) => token,
            Err(_) => return Ok(Credentials::none()),
        },
    };
    Ok(Credentials::token(&token)?)
}

async fn connect(
    bootstrap: &str,
    timeout: Duration,
    credentials: Credentials,
    tls: &tls::TlsArgs,
) -> Result<Client, CliError> {
    let tls = tls.client_config()?;
    let with_tls = tls.is_some();
    let defaults = ClientConfig::default();
    let config = ClientConfig {
        bootstrap: parse_bootstrap(bootstrap)?,
        connect_timeout: defaults.connect_timeout.min(timeout),
        request_timeout: defaults
            .request_timeout
            .min(timeout)
            .max(Duration::from_secs(1)),
        retry_timeout: timeout,
        credentials,
        tls,
        ..defaults
    };
    Client::connect(config)
        .await
        .map_err(|err| tls::with_tls_hint(err, with_tls))
}

/// Fails with UNKNOWN_TOPIC unless `topic` shows up in the metadata within a short wait.
async fn require_topic(client: &Client, topic: &str, timeout: Duration) -> Result<(), CliError> {
    let start = Instant::now();
    let mut metadata = client.metadata();
    loop {
        if metadata.topic(topic).is_some() {
            return Ok(());
        }
        if start.elapsed() >= TOPIC_APPEAR_WAIT.min(timeout) {
            return Err(ClientError::UnknownTopic {
                topic: topic.to_string(),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metadata = client.refresh_metadata().await?;
    }
}

//! `stave topic create|list|describe|alter|delete`.

use clap::Subcommand;
use stave_client::{Client, NewTopic, PartitionInfo, TopicDescription};

use super::args::parse_key_value;
use super::error::CliError;
use super::output::{Table, ids};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name: letters, digits, `.`, `_`, `-` (e.g. v1.user.signedup).
        name: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 3, value_name = "N")]
        partitions: u32,
        /// Replicas per partition [default: the smaller of 3 and the node count].
        #[arg(long, value_name = "R")]
        replication_factor: Option<u32>,
        /// A topic setting, repeatable: retention.ms, retention.bytes, segment.bytes,
        /// segment.ms, max.message.bytes, flush (always | never | interval:<ms>),
        /// dedupe.window.ms (how long Publish recognises a message id: 120000; 0 off),
        /// dedupe.max.ids (ids kept per partition: 1000000).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names (one per line). System topics (names starting with `_`: queue
    /// groups' dead letters `_dlq.{group}.{topic}`) only with --all.
    List {
        /// Include system topics.
        #[arg(long)]
        all: bool,
    },
    /// Show a topic's partitions, leaders, replicas and settings.
    Describe { name: String },
    /// Change a topic's settings (e.g. lower retention.bytes to free space on a full disk);
    /// `KEY=` with no value resets a key to its default.
    Alter {
        name: String,
        /// A topic setting, repeatable (the keys of `topic create --config`).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value, required = true)]
        configs: Vec<(String, String)>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub async fn run(client: &Client, command: TopicCommand) -> Result<(), CliError> {
    let admin = client.admin();
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            if partitions == 0 {
                return Err(CliError::Usage("--partitions must be at least 1".into()));
            }
            let mut topic = NewTopic::new(name.clone(), partitions);
            topic.replication_factor = replication_factor.unwrap_or(0);
            topic.configs = configs;
            admin.create_topic(topic).await?;
            println!("created topic {name} ({partitions} partitions)");
        }
        TopicCommand::List { all } => {
            for name in admin.list_topics().await? {
                if all || !name.starts_with('_') {
                    println!("{name}");
                }
            }
        }
        TopicCommand::Describe { name } => {
            let topic = admin.describe_topic(&name).await?;
            print!("{}", describe(&topic));
        }
        TopicCommand::Alter { name, configs } => {
            admin.alter_topic_config(&name, &configs).await?;
            let changed: Vec<String> = configs
                .iter()
                .map(|(key, value)| match value.is_empty() {
                    true => format!("{key} (default)"),
                    false => format!("{key}={value}"),
                })
                .collect();
            println!("altered topic {name}: {}", changed.join(", "));
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

fn describe(topic: &TopicDescription) -> String {
    let mut out = String::new();
    out.push_str(&format!("topic               {}\n", topic.name));
    out.push_str(&format!("partitions          {}\n", topic.partitions.len()));
    out.push_str(&format!(
        "replication factor  {}\n",
        topic.replication_factor()
    ));
    for (index, (key, value)) in topic.configs.iter().enumerate() {
        let label = if index == 0 { "config" } else { "" };
        out.push_str(&format!("{label:<20}{key}={value}\n"));
    }
    out.push('\n');
    let mut table = Table::new(["PARTITION", "LEADER", "REPLICAS", "IN-SYNC", ""]);
    for p in &topic.partitions {
        table.row([
            p.partition.to_string(),
            leader(p),
            ids(&p.replicas),
            ids(&p.in_sync),
            remarks(p),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// What an operator should know of a partition: under-replicated; a message-id table cut
/// short by dedupe.max.ids (retries older than the effective window are written again).
fn remarks(p: &PartitionInfo) -> String {
    let mut remarks = Vec::new();
    if p.is_under_replicated() {
        remarks.push("under-replicated".to_string());
    }
    if let Some(ms) = p.dedupe_window_effective_ms {
        remarks.push(format!(
            "dedupe window {:.1} s (dedupe.max.ids reached)",
            ms as f64 / 1000.0
        ));
    }
    remarks.join(", ")
}

fn leader(p: &PartitionInfo) -> String {
    p.leader
        .map_or_else(|| "none".to_string(), |id| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remarks_name_under_replication_and_a_cut_dedupe_window() {
        let mut p = PartitionInfo {
            partition: 0,
            leader: Some(1),
            replicas: vec![1, 2],
            in_sync: vec![1, 2],
            problems: vec![],
            dedupe_window_effective_ms: None,
        };
        assert_eq!(remarks(&p), "");
        p.in_sync = vec![1];
        p.dedupe_window_effective_ms = Some(45_250);
        assert_eq!(
            remarks(&p),
            "under-replicated, dedupe window 45.2 s (dedupe.max.ids reached)"
        );
    }
}

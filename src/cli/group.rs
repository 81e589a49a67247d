//! `stave group list|describe|reset`: consumer groups, their lag, and moving their committed
//! offsets (replay from the start, skip ahead, or go back to a point in time).

use clap::{Args, Subcommand};
use stave_client::{Client, GroupDescription, GroupListing, QueueGroupDescription, ResetTo};

use super::args::parse_time;
use super::error::CliError;
use super::output::{Table, ids};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their coordinator and member count.
    List,
    /// Show a group's members and, per partition, its committed offset, the high watermark
    /// and the lag between them.
    Describe {
        /// Group name.
        group: String,
    },
    /// Move a group's committed offsets in one topic. The group must have no members: stop
    /// its consumers first; they resume from the new offsets.
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Group name.
    group: String,
    /// The topic whose offsets move.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// A partition to reset, repeatable [default: every partition of the topic].
    #[arg(long = "partition", value_name = "P")]
    partitions: Vec<u32>,
    #[command(flatten)]
    to: ResetTarget,
}

/// Exactly one destination; clap refuses none and several, as usage errors.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ResetTarget {
    /// To the oldest record retention kept (replay everything).
    #[arg(long)]
    to_earliest: bool,
    /// To the end of the log (skip everything written so far).
    #[arg(long)]
    to_latest: bool,
    /// To offset N, clamped to the records the partition holds.
    #[arg(long, value_name = "N")]
    to_offset: Option<u64>,
    /// To the first record at or after T: RFC 3339 (2024-05-01T12:00:00Z) or epoch ms; the
    /// end of the log when there is none.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    to_time: Option<i64>,
}

impl ResetTarget {
    fn to_reset(&self) -> Result<ResetTo, CliError> {
        match (
            self.to_earliest,
            self.to_latest,
            self.to_offset,
            self.to_time,
        ) {
            (true, false, None, None) => Ok(ResetTo::Earliest),
            (false, true, None, None) => Ok(ResetTo::Latest),
            (false, false, Some(offset), None) => Ok(ResetTo::Offset(offset)),
            (false, false, None, Some(ms)) => Ok(ResetTo::Timestamp(ms)),
            // The arg group makes this unreachable through the command line; say so anyway
            // rather than pick one.
            _ => Err(CliError::Usage(
                "give exactly one of --to-earliest, --to-latest, --to-offset, --to-time".into(),
            )),
        }
    }
}

pub async fn run(client: &Client, command: GroupCommand) -> Result<(), CliError> {
    let admin = client.admin();
    match command {
        GroupCommand::List => {
            let listing = admin.list_groups().await?;
            print!("{}", list(&listing));
            if !listing.unreachable.is_empty() {
                eprintln!(
                    "note: nodes {} did not answer: their groups are missing from this list",
                    ids(&listing.unreachable)
                );
            }
        }
        GroupCommand::Describe { group } => {
            let description = admin.describe_group(&group).await?;
            print!("{}", describe(&description));
        }
        GroupCommand::Reset(args) => {
            let to = args.to.to_reset()?;
            let offsets = admin
                .reset_offsets(&args.group, &args.topic, &args.partitions, to)
                .await?;
            let mut table = Table::new(["TOPIC", "PARTITION", "OFFSET"]);
            for (partition, offset) in offsets {
                table.row([
                    args.topic.clone(),
                    partition.to_string(),
                    offset.to_string(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

fn list(listing: &GroupListing) -> String {
    if listing.groups.is_empty() {
        return "no consumer groups\n".into();
    }
    let mut table = Table::new(["GROUP", "COORDINATOR", "MEMBERS"]);
    for group in &listing.groups {
        table.row([
            group.group.clone(),
            group.coordinator.to_string(),
            group.members.to_string(),
        ]);
    }
    table.render()
}

fn describe(group: &GroupDescription) -> String {
    if group.is_empty() {
        return format!(
            "group {:?} has no members and no committed offsets\n",
            group.group
        );
    }
    if let Some(queue) = &group.queue {
        return describe_queue(&group.group, queue);
    }
    let mut out = format!("group {}\n\n", group.group);
    if group.members.is_empty() {
        out.push_str("no members\n");
    } else {
        let mut members = Table::new(["MEMBER", "EPOCH", "OWNED", "TARGET"]);
        for member in &group.members {
            members.row([
                member.member_id.clone(),
                member.member_epoch.to_string(),
                partitions(&member.owned),
                partitions(&member.target),
            ]);
        }
        out.push_str(&members.render());
    }
    out.push('\n');
    if group.offsets.is_empty() {
        out.push_str("no committed offsets\n");
        return out;
    }
    let mut offsets = Table::new(["TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "LAG"]);
    for lag in &group.offsets {
        // An unknown high watermark comes back as 0: show "-" rather than a made-up lag.
        let (high_watermark, behind) = if lag.is_high_watermark_known() {
            (lag.high_watermark.to_string(), lag.lag.to_string())
        } else {
            ("-".to_string(), "-".to_string())
        };
        offsets.row([
            lag.topic.clone(),
            lag.partition.to_string(),
            lag.committed.to_string(),
            high_watermark,
            behind,
        ]);
    }
    out.push_str(&offsets.render());
    out
}

/// A queue group: its settings, members, and per partition what is done, in flight and
/// dead-lettered.
fn describe_queue(name: &str, queue: &QueueGroupDescription) -> String {
    let mut out = if queue.running {
        format!(
            "queue group {name} (lock {} ms, max deliveries {}, {}, max unacked span {})\n\n",
            queue.lock_ms,
            queue.max_deliveries,
            if queue.key_order {
                "key order"
            } else {
                "any order"
            },
            queue.max_unacked_span
        )
    } else {
        format!(
            "queue group {name} (not running: as last written; the next member to join sets \
             its settings)\n\n"
        )
    };
    if queue.members.is_empty() {
        out.push_str("no members\n");
    } else {
        let mut members = Table::new(["MEMBER", "IN-FLIGHT", "DELIVERED", "ACKED"]);
        for member in &queue.members {
            members.row([
                member.member_id.clone(),
                member.in_flight.to_string(),
                member.delivered.to_string(),
                member.acked.to_string(),
            ]);
        }
        out.push_str(&members.render());
    }
    out.push('\n');
    let mut partitions = Table::new([
        "TOPIC",
        "PARTITION",
        "ACKED-UP-TO",
        "HIGH-WATERMARK",
        "IN-FLIGHT",
        "DELAYED",
        "REDELIVERIES",
        "DEAD-LETTERED",
        "OLDEST-UNACKED-S",
        "NOTE",
    ]);
    for p in &queue.partitions {
        partitions.row([
            p.topic.clone(),
            p.partition.to_string(),
            p.ack_floor.to_string(),
            p.high_watermark.to_string(),
            p.in_flight.to_string(),
            p.delayed.to_string(),
            p.redeliveries.to_string(),
            p.dead_lettered.to_string(),
            format!("{:.1}", p.oldest_unacked_age_s),
            if p.blocked.is_empty() {
                "-".into()
            } else {
                p.blocked.clone()
            },
        ]);
    }
    out.push_str(&partitions.render());
    out
}

/// Partitions as `topic/p,topic/p` (`-` for none).
fn partitions(pairs: &[(String, u32)]) -> String {
    if pairs.is_empty() {
        return "-".into();
    }
    pairs
        .iter()
        .map(|(topic, partition)| format!("{topic}/{partition}"))
        .collect::<Vec<_>>()
        .join(",")
}

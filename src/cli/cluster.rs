//! `stave cluster status`: nodes, who leads what, under-replicated partitions, and replicas
//! out of service (problems).

use clap::Subcommand;
use stave_client::{Client, ClusterMetadata};

use super::error::CliError;
use super::output::{Table, ids};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Nodes, the controller, partition leaders, partitions missing in-sync replicas, and
    /// problems: replicas a node took out of service (a storage error), with the reason.
    Status,
}

pub async fn run(client: &Client, command: ClusterCommand) -> Result<(), CliError> {
    match command {
        ClusterCommand::Status => {
            let metadata = client.admin().cluster().await?;
            print!("{}", status(&metadata));
        }
    }
    Ok(())
}

/// The report: the cluster's nodes, its partitions, then the partitions missing in-sync
/// replicas and the replicas out of service.
fn status(metadata: &ClusterMetadata) -> String {
    let mut out = String::new();
    let controller = metadata
        .controller_id
        .map_or_else(|| "none".to_string(), |id| format!("node {id}"));
    out.push_str(&format!(
        "cluster {}  controller: {controller}\n\n",
        if metadata.cluster_id.is_empty() {
            "-"
        } else {
            &metadata.cluster_id
        }
    ));
    out.push_str(&nodes(metadata).render());
    out.push('\n');

    let survey = Survey::of(metadata);
    if metadata.topics.is_empty() {
        out.push_str("no topics\n");
    } else {
        out.push_str(&survey.partitions.render());
    }
    out.push('\n');
    if survey.under_replicated.is_empty() {
        out.push_str("under-replicated partitions: none\n");
    } else {
        out.push_str(&format!(
            "under-replicated partitions ({}): {}\n",
            survey.under_replicated.len(),
            survey.under_replicated.join(" ")
        ));
    }
    if survey.problems.is_empty() {
        out.push_str("problems: none\n");
    } else {
        out.push_str(&format!("problems ({}):\n", survey.problems.len()));
        for line in survey.problems {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The nodes table: each node's address, and the partitions it leads, holds and is in sync
/// for. A node that holds replicas but is in sync for none of them is likely down.
fn nodes(metadata: &ClusterMetadata) -> Table<5> {
    let mut nodes = Table::new(["NODE", "ADDRESS", "LEADS", "REPLICAS", "IN-SYNC"]);
    for (&id, addr) in &metadata.nodes {
        let (mut replicas, mut in_sync) = (0, 0);
        for topic in metadata.topics.values() {
            for p in &topic.partitions {
                replicas += usize::from(p.replicas.contains(&id));
                in_sync += usize::from(p.in_sync.contains(&id));
            }
        }
        nodes.row([
            id.to_string(),
            addr.clone(),
            metadata.led_by(id).len().to_string(),
            replicas.to_string(),
            in_sync.to_string(),
        ]);
    }
    nodes
}

/// What one pass over the partitions finds.
struct Survey {
    /// Each partition's leader, replicas and in-sync replicas.
    partitions: Table<4>,
    /// Partitions missing in-sync replicas, as `topic/partition`.
    under_replicated: Vec<String>,
    /// One line per replica a node took out of service, with its state and the reason.
    problems: Vec<String>,
}

impl Survey {
    /// Surveys every partition of every topic in `metadata`.
    fn of(metadata: &ClusterMetadata) -> Survey {
        let mut survey = Survey {
            partitions: Table::new(["PARTITION", "LEADER", "REPLICAS", "IN-SYNC"]),
            under_replicated: Vec::new(),
            problems: Vec::new(),
        };
        for topic in metadata.topics.values() {
            for p in &topic.partitions {
                let name = format!("{}/{}", topic.name, p.partition);
                for problem in &p.problems {
                    let state = match problem.offline {
                        true => format!("offline after {} reopens", problem.reopens),
                        false => format!("reopening ({} so far)", problem.reopens),
                    };
                    survey.problems.push(format!(
                        "  {name} on node {}: {state}: {}",
                        problem.node, problem.reason
                    ));
                }
                survey.partitions.row([
                    name.clone(),
                    p.leader.map_or_else(|| "none".into(), |id| id.to_string()),
                    ids(&p.replicas),
                    ids(&p.in_sync),
                ]);
                if p.is_under_replicated() {
                    survey.under_replicated.push(name);
                }
            }
        }
        survey
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stave_client::{PartitionInfo, ReplicaProblem, TopicInfo};

    use super::*;

    /// A replica its node took out of service is listed under "problems" with its node, its
    /// state and the reason; without any, the section says none.
    #[test]
    fn status_lists_replicas_out_of_service_under_problems() {
        let problem = ReplicaProblem {
            node: 3,
            reason: "stopped: storage error".into(),
            reopens: 3,
            offline: true,
        };
        let partition = |problems: Vec<ReplicaProblem>| PartitionInfo {
            partition: 0,
            leader: Some(1),
            replicas: vec![1, 2, 3],
            in_sync: vec![1, 2],
            problems,
            dedupe_window_effective_ms: None,
        };
        let metadata = |problems| ClusterMetadata {
            cluster_id: "c".into(),
            controller_id: Some(1),
            nodes: BTreeMap::from([(1, "a:1".into()), (2, "b:2".into()), (3, "c:3".into())]),
            topics: BTreeMap::from([(
                "v1.x".to_string(),
                TopicInfo {
                    name: "v1.x".into(),
                    partitions: vec![partition(problems)],
                },
            )]),
        };
        let with = status(&metadata(vec![problem]));
        assert!(
            with.contains("problems (1):\n  v1.x/0 on node 3: offline after 3 reopens: stopped: storage error\n"),
            "{with}"
        );
        assert!(status(&metadata(vec![])).contains("problems: none\n"));
    }
}

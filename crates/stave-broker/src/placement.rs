//! Where a new topic's partitions live: replicas spread over the nodes, and the one
//! controller command that creates a topic (user topics and `__offsets` alike).

use stave_proto::internal::controller as cproto;

use crate::error::BrokerError;

/// Replicas for `partitions` partitions over `nodes`, `replication_factor` each: partition
/// `p`'s replicas start at node `(p + rotation) % n`, so partitions (and their first
/// replicas, which become their first leaders) spread over the nodes.
pub fn assign(
    nodes: &[u64],
    partitions: u32,
    replication_factor: u32,
    rotation: usize,
) -> Result<Vec<Vec<u64>>, BrokerError> {
    if replication_factor as usize > nodes.len() {
        return Err(BrokerError::NotEnoughNodes {
            asked: replication_factor,
            nodes: nodes.len(),
        });
    }
    Ok((0..partitions as usize)
        .map(|p| {
            (0..replication_factor as usize)
                .map(|r| nodes[(p + rotation + r) % nodes.len()])
                .collect()
        })
        .collect())
}

/// The controller command creating topic `name` with `partitions` partitions of
/// `replication_factor` replicas each over `nodes`, starting the rotation at `rotation`.
pub fn create_topic_command(
    name: &str,
    nodes: &[u64],
    (partitions, replication_factor, rotation): (u32, u32, usize),
    configs: &[(String, String)],
) -> Result<cproto::Command, BrokerError> {
    let assignment = assign(nodes, partitions, replication_factor, rotation)?;
    Ok(cproto::Command {
        command: Some(cproto::command::Command::CreateTopic(cproto::CreateTopic {
            name: name.to_string(),
            partitions: (0u32..)
                .zip(assignment)
                .map(|(partition, replicas)| cproto::Partition {
                    partition,
                    replicas,
                })
                .collect(),
            configs: configs
                .iter()
                .map(|(key, value)| cproto::ConfigEntry {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        })),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn assignment_spreads_partitions_and_first_replicas() {
        let nodes = [1, 2, 3];
        let replicas = assign(&nodes, 6, 3, 0).unwrap();
        let firsts: Vec<u64> = replicas.iter().map(|r| r[0]).collect();
        assert_eq!(firsts, vec![1, 2, 3, 1, 2, 3]);
        for r in &replicas {
            let mut sorted = r.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "distinct replicas: {r:?}");
        }
        assert!(matches!(
            assign(&nodes, 1, 4, 0),
            Err(BrokerError::NotEnoughNodes { asked: 4, nodes: 3 })
        ));
    }
}

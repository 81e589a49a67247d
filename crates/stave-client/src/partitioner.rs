//! Which partition a record goes to (docs/architecture.md, "The shape"): a keyed record to
//! `positive(murmur2(key)) % partitions`, bit for bit as Kafka's Java client
//! (`Utils.murmur2`, `Utils.toPositive`), so keys land where a Kafka user expects; a record
//! without a key to a sticky partition that changes once a batch's worth of bytes went to it
//! (Kafka's KIP-794 uniform sticky partitioner).

use rand::Rng;

pub use stave_log::hash::{murmur2, partition_for_key, to_positive};

/// The sticky partition of a topic's keyless records: one partition until `batch_bytes` went
/// to it, then another one at random.
#[derive(Debug, Clone)]
pub(crate) struct StickyPartition {
    partition: Option<u32>,
    bytes: usize,
}

impl StickyPartition {
    pub(crate) fn new() -> Self {
        StickyPartition {
            partition: None,
            bytes: 0,
        }
    }

    /// The partition for a keyless record of `bytes`, counting it.
    pub(crate) fn next(&mut self, partitions: u32, bytes: usize, batch_bytes: usize) -> u32 {
        let partitions = partitions.max(1);
        let current = match self.partition {
            Some(p) if p < partitions && self.bytes < batch_bytes => p,
            previous => {
                self.bytes = 0;
                pick_other(previous, partitions)
            }
        };
        self.partition = Some(current);
        self.bytes += bytes;
        current
    }
}

/// A random partition other than `previous` when there is a choice.
fn pick_other(previous: Option<u32>, partitions: u32) -> u32 {
    let mut rng = rand::rng();
    match previous {
        Some(previous) if partitions > 1 && previous < partitions => {
            let step = rng.random_range(1..partitions);
            (previous + step) % partitions
        }
        _ => rng.random_range(0..partitions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_partition_holds_for_a_batch_then_moves() {
        let mut sticky = StickyPartition::new();
        let first = sticky.next(4, 100, 250);
        assert_eq!(sticky.next(4, 100, 250), first);
        assert_eq!(sticky.next(4, 100, 250), first);
        // 300 bytes went to `first`: the next record moves elsewhere.
        let second = sticky.next(4, 100, 250);
        assert_ne!(second, first);
        assert!(second < 4);
    }

    #[test]
    fn sticky_partition_with_one_partition_stays_and_follows_shrinking_counts() {
        let mut sticky = StickyPartition::new();
        for _ in 0..10 {
            assert_eq!(sticky.next(1, 1000, 10), 0);
        }
        let mut sticky = StickyPartition::new();
        let p = sticky.next(8, 1, 1000);
        let q = sticky.next(p.max(1), 1, 1000);
        assert!(q < p.max(1));
    }
}

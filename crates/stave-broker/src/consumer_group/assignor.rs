//! The group coordinator's assignor: which member owns which partition. Balanced (members
//! that can take a partition differ by at most one in how many they own, when they share a
//! subscription) and sticky (a partition stays with its owner whenever balance allows, so a
//! rebalance moves as few partitions as it can). The protocol around it hands the result
//! out incrementally: a partition is revoked from its old owner before it goes to the new
//! one.

use std::collections::{BTreeMap, BTreeSet};

/// A partition of a topic.
pub type TopicPartition = (String, u32);

/// A member's id.
pub type MemberId = String;

/// The target assignment for `members` (each with the topics it subscribes to, patterns
/// already resolved), over `partitions` (topic → partition count), keeping as much of
/// `current` as balance allows. Every partition of a subscribed topic goes to exactly one
/// member subscribed to it.
pub fn assign(
    members: &BTreeMap<MemberId, BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
    current: &BTreeMap<MemberId, BTreeSet<TopicPartition>>,
) -> BTreeMap<MemberId, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<MemberId, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|member| (member.clone(), BTreeSet::new()))
        .collect();
    // Topics by the set of members that may own their partitions; each such pool is
    // balanced on its own (with one subscription for all, that is the whole group).
    let mut pools: BTreeMap<BTreeSet<MemberId>, Vec<TopicPartition>> = BTreeMap::new();
    for (topic, count) in partitions {
        let eligible: BTreeSet<MemberId> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(member, _)| member.clone())
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let pool = pools.entry(eligible).or_default();
        pool.extend((0..*count).map(|p| (topic.clone(), p)));
    }
    for (eligible, pool) in pools {
        let owners = eligible.len();
        let floor = pool.len() / owners;
        let extra = pool.len() % owners;
        // Members that keep the most of their current share take the `floor + 1` quotas.
        let mut kept: Vec<(MemberId, usize)> = eligible
            .iter()
            .map(|member| {
                let owned = current.get(member).map_or(0, |owned| {
                    pool.iter().filter(|tp| owned.contains(*tp)).count()
                });
                (member.clone(), owned)
            })
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let quota: BTreeMap<MemberId, usize> = kept
            .iter()
            .enumerate()
            .map(|(i, (member, _))| (member.clone(), floor + usize::from(i < extra)))
            .collect();
        // What each member took from this pool (quotas are per pool).
        let mut taken: BTreeMap<MemberId, usize> = BTreeMap::new();
        // Sticky: current owners keep what their quota allows.
        let mut free = Vec::new();
        for tp in &pool {
            let owner = eligible
                .iter()
                .find(|member| current.get(*member).is_some_and(|owned| owned.contains(tp)));
            match owner {
                Some(owner) if taken.get(owner).copied().unwrap_or(0) < quota[owner] => {
                    if let Some(owned) = target.get_mut(owner) {
                        owned.insert(tp.clone());
                        *taken.entry(owner.clone()).or_default() += 1;
                    }
                }
                _ => free.push(tp.clone()),
            }
        }
        // The rest go to whoever is furthest below its quota.
        for tp in free {
            let count = |member: &MemberId| taken.get(member).copied().unwrap_or(0);
            let taker = eligible
                .iter()
                .filter(|member| count(member) < quota[*member])
                .min_by_key(|member| (count(member), (*member).clone()))
                .cloned();
            if let Some(taker) = taker
                && let Some(owned) = target.get_mut(&taker)
            {
                owned.insert(tp);
                *taken.entry(taker).or_default() += 1;
            }
        }
    }
    target
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn members(names: &[&str], topics: &[&str]) -> BTreeMap<MemberId, BTreeSet<String>> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    fn counts(assignment: &BTreeMap<MemberId, BTreeSet<TopicPartition>>) -> Vec<usize> {
        assignment.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn six_partitions_over_three_members_are_two_each() {
        let partitions = BTreeMap::from([("v1.orders".to_string(), 6)]);
        let target = assign(
            &members(&["a", "b", "c"], &["v1.orders"]),
            &partitions,
            &BTreeMap::new(),
        );
        assert_eq!(counts(&target), vec![2, 2, 2]);
    }

    #[test]
    fn a_member_leaving_moves_only_its_partitions() {
        let partitions = BTreeMap::from([("v1.orders".to_string(), 6)]);
        let before = assign(
            &members(&["a", "b", "c"], &["v1.orders"]),
            &partitions,
            &BTreeMap::new(),
        );
        let after = assign(&members(&["a", "b"], &["v1.orders"]), &partitions, &before);
        assert_eq!(counts(&after), vec![3, 3]);
        for member in ["a", "b"] {
            assert!(
                before[member].is_subset(&after[member]),
                "{member} lost a partition"
            );
        }
    }

    #[test]
    fn members_only_get_topics_they_subscribe_to() {
        let mut group = members(&["a"], &["v1.orders"]);
        group.extend(members(&["b"], &["v1.orders", "v1.payments"]));
        let partitions = BTreeMap::from([
            ("v1.orders".to_string(), 2),
            ("v1.payments".to_string(), 2),
            ("v1.unwatched".to_string(), 4),
        ]);
        let target = assign(&group, &partitions, &BTreeMap::new());
        assert!(target["a"].iter().all(|(topic, _)| topic == "v1.orders"));
        let all: BTreeSet<&TopicPartition> = target.values().flatten().collect();
        assert_eq!(all.len(), 4, "the unwatched topic goes to nobody");
    }

    proptest! {
        #[test]
        fn balanced_complete_exclusive_and_sticky(
            member_count in 1usize..8,
            partition_count in 0u32..40,
            leaving in 0usize..3,
            joining in 0usize..3,
        ) {
            let names: Vec<String> = (0..member_count).map(|i| format!("m{i}")).collect();
            let group: BTreeMap<MemberId, BTreeSet<String>> = names
                .iter()
                .map(|n| (n.clone(), BTreeSet::from(["t".to_string()])))
                .collect();
            let partitions = BTreeMap::from([("t".to_string(), partition_count)]);
            let before = assign(&group, &partitions, &BTreeMap::new());

            let mut next = group.clone();
            for name in names.iter().take(leaving.min(member_count - 1)) {
                next.remove(name);
            }
            for j in 0..joining {
                next.insert(format!("new{j}"), BTreeSet::from(["t".to_string()]));
            }
            let after = assign(&next, &partitions, &before);

            // Every partition exactly once.
            let mut seen = BTreeSet::new();
            for owned in after.values() {
                for tp in owned {
                    prop_assert!(seen.insert(tp.clone()), "{tp:?} owned twice");
                }
            }
            prop_assert_eq!(seen.len(), partition_count as usize);
            // Balanced.
            let sizes = counts(&after);
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1, "unbalanced: {:?}", sizes);
            // Sticky: a surviving member keeps min(what it had, its new share) partitions.
            for (member, owned) in &after {
                if let Some(had) = before.get(member) {
                    let kept = had.intersection(owned).count();
                    prop_assert!(kept >= had.len().min(owned.len()), "{} lost more than needed", member);
                }
            }
        }
    }
}

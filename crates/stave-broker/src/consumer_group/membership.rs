//! A consumer group's membership on its coordinator, in the style of Kafka's KIP-848: members
//! heartbeat with their subscription and the partitions they own; the coordinator computes
//! the target assignment ([`super::assignor`]) and hands it out incrementally: a partition is
//! given to its new owner only once its old owner has reported it released, so no two
//! members ever own a partition at once. Each member has an epoch, bumped whenever its
//! assignment changes; a commit from a stale epoch is fenced. Members not heard from within
//! the session timeout are removed.
//!
//! Pure state (no I/O, time passed in): the RPC layer calls it under the group's lock.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{MemberId, TopicPartition, assign};
use super::pattern::Pattern;

/// A member's heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat<'a> {
    /// Empty: a new member joins (the coordinator names it).
    pub member_id: &'a str,
    pub member_epoch: u64,
    /// Topic names or patterns.
    pub subscription: &'a [String],
    /// The partitions the member holds now.
    pub owned: &'a BTreeSet<TopicPartition>,
}

/// A member as [`ConsumerGroup::describe`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: MemberId,
    pub member_epoch: u64,
    /// What it last reported holding.
    pub owned: BTreeSet<TopicPartition>,
    /// What the assignor wants it to hold.
    pub target: BTreeSet<TopicPartition>,
}

/// What a heartbeat answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub member_id: MemberId,
    pub member_epoch: u64,
    /// The partitions the member may own now.
    pub assignment: BTreeSet<TopicPartition>,
}

/// Why a heartbeat or commit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupMembershipError {
    #[error("member {0:?} is not in the group (expired or never joined): join again")]
    UnknownMember(MemberId),
    #[error("member {member:?} has epoch {current}, not {received}: it was fenced")]
    FencedEpoch {
        member: MemberId,
        current: u64,
        received: u64,
    },
    #[error("bad subscription: {0}")]
    BadSubscription(String),
}

#[derive(Debug, Clone)]
struct Member {
    epoch: u64,
    subscription: Vec<Pattern>,
    last_seen_ms: i64,
    /// What the member last reported owning.
    owned: BTreeSet<TopicPartition>,
    /// What the last reply allowed it to own (it may hold that until it reports otherwise).
    given: BTreeSet<TopicPartition>,
}

/// One group's members and assignment.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    members: BTreeMap<MemberId, Member>,
    /// The assignor's target, recomputed when members, subscriptions or topics change.
    target: BTreeMap<MemberId, BTreeSet<TopicPartition>>,
    /// Bumped on every change of the target.
    group_epoch: u64,
    /// The topics and partition counts the target was computed over.
    topics: BTreeMap<String, u32>,
    next_member: u64,
    /// Until then (ms) a member is handed only what it reports owning: a coordinator that
    /// just took over does not know who holds what, and waits out the session timeout of
    /// members of the previous one.
    hold_until_ms: i64,
}

impl ConsumerGroup {
    /// A group whose members may still hold partitions given by a previous coordinator,
    /// until `hold_until_ms`.
    pub fn holding(hold_until_ms: i64) -> ConsumerGroup {
        ConsumerGroup {
            hold_until_ms,
            ..ConsumerGroup::default()
        }
    }

    /// A member's heartbeat. `topics`: every topic with its partition count, for resolving
    /// patterns.
    pub fn heartbeat(
        &mut self,
        beat: Heartbeat<'_>,
        topics: &BTreeMap<String, u32>,
        now_ms: i64,
        session_timeout_ms: i64,
    ) -> Result<HeartbeatReply, GroupMembershipError> {
        let Heartbeat {
            member_id,
            member_epoch,
            subscription,
            owned,
        } = beat;
        self.expire(now_ms, session_timeout_ms);
        let subscription = subscription
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<Pattern>, String>>()
            .map_err(GroupMembershipError::BadSubscription)?;
        let member_id = if member_id.is_empty() {
            self.next_member += 1;
            let id = format!("member-{}", self.next_member);
            self.members.insert(
                id.clone(),
                Member {
                    epoch: 0,
                    subscription: subscription.clone(),
                    last_seen_ms: now_ms,
                    owned: BTreeSet::new(),
                    given: BTreeSet::new(),
                },
            );
            id
        } else {
            let member = self
                .members
                .get_mut(member_id)
                .ok_or_else(|| GroupMembershipError::UnknownMember(member_id.to_string()))?;
            if member_epoch != member.epoch {
                return Err(GroupMembershipError::FencedEpoch {
                    member: member_id.to_string(),
                    current: member.epoch,
                    received: member_epoch,
                });
            }
            member.last_seen_ms = now_ms;
            member.owned = owned.clone();
            member.subscription = subscription.clone();
            member_id.to_string()
        };
        self.retarget(topics);
        let mut assignment = self.handout(&member_id);
        if now_ms < self.hold_until_ms {
            assignment.retain(|tp| owned.contains(tp));
        }
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or_else(|| GroupMembershipError::UnknownMember(member_id.clone()))?;
        if assignment != member.given {
            member.epoch += 1;
        }
        member.given = assignment.clone();
        Ok(HeartbeatReply {
            member_id,
            member_epoch: member.epoch,
            assignment,
        })
    }

    /// A member leaves (its partitions are free at once).
    pub fn leave(&mut self, member_id: &str, topics: &BTreeMap<String, u32>) {
        if self.members.remove(member_id).is_some() {
            self.retarget(topics);
        }
    }

    /// Removes members not heard from within the session timeout.
    pub fn expire(&mut self, now_ms: i64, session_timeout_ms: i64) {
        let before = self.members.len();
        self.members
            .retain(|_, member| now_ms - member.last_seen_ms <= session_timeout_ms);
        if self.members.len() != before {
            let topics = self.topics.clone();
            self.retarget(&topics);
        }
    }

    /// Whether a commit from `member_id` at `member_epoch` may go through (a fenced or
    /// expired member's may not).
    pub fn validate_commit(
        &self,
        member_id: &str,
        member_epoch: u64,
    ) -> Result<(), GroupMembershipError> {
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| GroupMembershipError::UnknownMember(member_id.to_string()))?;
        if member.epoch != member_epoch {
            return Err(GroupMembershipError::FencedEpoch {
                member: member_id.to_string(),
                current: member.epoch,
                received: member_epoch,
            });
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn group_epoch(&self) -> u64 {
        self.group_epoch
    }

    /// Members with what they own (as last reported) and their target.
    pub fn describe(&self) -> Vec<MemberView> {
        self.members
            .iter()
            .map(|(id, member)| MemberView {
                member_id: id.clone(),
                member_epoch: member.epoch,
                owned: member.owned.clone(),
                target: self.target.get(id).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Recomputes the target if members, subscriptions or topics changed.
    fn retarget(&mut self, topics: &BTreeMap<String, u32>) {
        let subscribed: BTreeMap<MemberId, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, member)| {
                let matched = topics
                    .keys()
                    .filter(|topic| member.subscription.iter().any(|p| p.matches(topic)))
                    .cloned()
                    .collect();
                (id.clone(), matched)
            })
            .collect();
        let current: BTreeMap<MemberId, BTreeSet<TopicPartition>> = self
            .target
            .iter()
            .filter(|(id, _)| self.members.contains_key(*id))
            .map(|(id, owned)| (id.clone(), owned.clone()))
            .collect();
        let target = assign(&subscribed, topics, &current);
        if target != self.target || *topics != self.topics {
            self.group_epoch += 1;
            self.target = target;
            self.topics = topics.clone();
        }
    }

    /// What `member` may own now: its target, minus what another member may still hold (it
    /// was given it, or still reports owning it: revoked there, not released yet).
    fn handout(&self, member: &str) -> BTreeSet<TopicPartition> {
        let target = self.target.get(member).cloned().unwrap_or_default();
        target
            .into_iter()
            .filter(|tp| {
                !self.members.iter().any(|(other, m)| {
                    other != member && (m.owned.contains(tp) || m.given.contains(tp))
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SESSION: i64 = 10_000;

    fn topics() -> BTreeMap<String, u32> {
        BTreeMap::from([("v1.orders".to_string(), 6)])
    }

    fn sub() -> &'static [String] {
        static SUBSCRIPTION: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        SUBSCRIPTION.get_or_init(|| vec!["v1.#".to_string()])
    }

    fn beat<'a>(
        member_id: &'a str,
        member_epoch: u64,
        owned: &'a BTreeSet<TopicPartition>,
    ) -> Heartbeat<'a> {
        Heartbeat {
            member_id,
            member_epoch,
            subscription: sub(),
            owned,
        }
    }

    #[test]
    fn a_coordinator_that_took_over_hands_out_only_what_members_report_until_the_hold_ends() {
        let mut group = ConsumerGroup::holding(5_000);
        let none = BTreeSet::new();
        let reply = group
            .heartbeat(beat("", 0, &none), &topics(), 0, SESSION)
            .unwrap();
        assert!(reply.assignment.is_empty());
        let held: BTreeSet<TopicPartition> = [("v1.orders".to_string(), 3)].into();
        let reply = group
            .heartbeat(
                beat(&reply.member_id, reply.member_epoch, &held),
                &topics(),
                1_000,
                SESSION,
            )
            .unwrap();
        assert_eq!(reply.assignment, held);
        let reply = group
            .heartbeat(
                beat(&reply.member_id, reply.member_epoch, &held),
                &topics(),
                5_000,
                SESSION,
            )
            .unwrap();
        assert_eq!(reply.assignment.len(), 6);
    }

    #[test]
    fn three_members_end_up_with_two_partitions_each() {
        let mut group = ConsumerGroup::default();
        let mut members: Vec<(String, u64, BTreeSet<TopicPartition>)> = Vec::new();
        for _ in 0..3 {
            let reply = group
                .heartbeat(beat("", 0, &BTreeSet::new()), &topics(), 0, SESSION)
                .unwrap();
            members.push((reply.member_id, reply.member_epoch, reply.assignment));
        }
        // A few rounds: each member reports what it was given.
        for round in 1..5 {
            for member in &mut members {
                let reply = group
                    .heartbeat(
                        beat(&member.0, member.1, &member.2),
                        &topics(),
                        round,
                        SESSION,
                    )
                    .unwrap();
                member.1 = reply.member_epoch;
                member.2 = reply.assignment;
            }
        }
        let sizes: Vec<usize> = members.iter().map(|m| m.2.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2]);
    }

    #[test]
    fn stale_epochs_and_expired_members_are_fenced() {
        let mut group = ConsumerGroup::default();
        let a = group
            .heartbeat(beat("", 0, &BTreeSet::new()), &topics(), 0, SESSION)
            .unwrap();
        assert!(group.validate_commit(&a.member_id, a.member_epoch).is_ok());
        assert!(matches!(
            group.validate_commit(&a.member_id, a.member_epoch + 7),
            Err(GroupMembershipError::FencedEpoch { .. })
        ));
        // Silent past the session timeout: gone, and its commits refused.
        group.expire(SESSION + 1, SESSION);
        assert!(matches!(
            group.validate_commit(&a.member_id, a.member_epoch),
            Err(GroupMembershipError::UnknownMember(_))
        ));
    }

    proptest! {
        /// Members join, heartbeat (reporting what they hold, sometimes late), leave and
        /// expire in random order: at every step no partition is held by two members.
        #[test]
        fn no_partition_is_ever_owned_twice(steps in proptest::collection::vec((0u8..5, 0usize..6), 1..120)) {
            let mut group = ConsumerGroup::default();
            // What each member actually holds (only what a reply allowed).
            let mut held: BTreeMap<String, (u64, BTreeSet<TopicPartition>)> = BTreeMap::new();
            // When each member last heard back from the coordinator.
            let mut heard: BTreeMap<String, i64> = BTreeMap::new();
            let mut now = 0i64;
            for (action, pick) in steps {
                now += 500;
                // The client's side of the session contract: a member that has not heard
                // back within its session stops reading (it may be expired).
                held.retain(|id, _| now - heard[id] < SESSION);
                let names: Vec<String> = held.keys().cloned().collect();
                let chosen = names.get(pick % names.len().max(1)).cloned();
                match (action, chosen) {
                    (0, _) | (_, None) => {
                        let reply = group.heartbeat(beat("", 0, &BTreeSet::new()), &topics(), now, SESSION).unwrap();
                        heard.insert(reply.member_id.clone(), now);
                        held.insert(reply.member_id, (reply.member_epoch, reply.assignment));
                    }
                    (1, Some(name)) => {
                        group.leave(&name, &topics());
                        held.remove(&name);
                    }
                    (2, Some(name)) => {
                        // A member crashes: it holds nothing any more, and the session
                        // expires. (Time jumps, so every member's session expires: a live
                        // member that cannot heartbeat within its session stops consuming,
                        // the client's side of the contract.)
                        held.remove(&name);
                        now += SESSION + 1;
                        group.expire(now, SESSION);
                        let alive: BTreeSet<String> =
                            group.describe().into_iter().map(|m| m.member_id).collect();
                        held.retain(|id, _| alive.contains(id));
                    }
                    (_, Some(name)) => {
                        let (epoch, owned) = held[&name].clone();
                        match group.heartbeat(beat(&name, epoch, &owned), &topics(), now, SESSION) {
                            Ok(reply) => {
                                heard.insert(name.clone(), now);
                                held.insert(name, (reply.member_epoch, reply.assignment));
                            }
                            Err(_) => {
                                held.remove(&name);
                            }
                        }
                    }
                }
                let mut seen = BTreeSet::new();
                for (_, owned) in held.values() {
                    for tp in owned {
                        prop_assert!(seen.insert(tp.clone()), "{:?} held twice", tp);
                    }
                }
            }
        }
    }
}

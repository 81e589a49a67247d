//! Queue groups: a service's instances share its topics record by record. Every member may
//! get records from every partition; the coordinator hands the next records to whichever
//! member has a fetch waiting (round robin among them, never more than it asked for), each
//! locked to that member until it settles it (ack, release now or after a delay, reject,
//! extend) or the lock expires. A record delivered `max.deliveries` times and given back goes
//! to the group's dead-letter topic, `_dlq.{group}.{topic}`.
//!
//! Where the state lives: a queue group's coordinator is its consumer-group coordinator, the
//! leader of the group's `__offsets` partition. Per partition it keeps in memory the records
//! read ahead, the locks, and the done offsets above the first one not done (the floor); what
//! must survive a failover is written to that same `__offsets` partition, replicated like a
//! commit: the floor as the group's committed offset (so `group describe`, lag and
//! `group reset` work unchanged), and a state record (`stave_raft::offsets`, key version 2)
//! with the done ranges above the floor, delivery counts past the first, delays and the
//! dead-letter count. Settlements are answered once the write holding them is committed, so
//! an acknowledged record is never delivered again after a failover; locks are not written (a
//! record in flight at a failover is delivered again: at least once).
//!
//! - [`state`]: one partition's state (pure).
//! - [`engine`]: the coordinator's task per queue group: reading, dispatch, timers,
//!   persistence.
//! - `requests`: the broker's side of fetch, settle, describe and reset (to the task);
//!   `dead_letters`: writing them; `stream`: Consume in queue mode.

mod dead_letters;
pub mod engine;
mod requests;
pub mod state;
mod stream;

use std::sync::Arc;

use stave_client::ConsumerRecord;

use crate::consume::Start;
use crate::error::BrokerError;

pub use self::state::Action;

/// Default lock period (ms).
pub const LOCK_MS_DEFAULT: i64 = 30_000;
/// The longest lock period (ms).
pub const LOCK_MS_MAX: i64 = 3_600_000;
pub const MAX_DELIVERIES_DEFAULT: u32 = 5;
pub const MAX_DELIVERIES_MAX: u32 = 1_000;
pub const MAX_UNACKED_SPAN_DEFAULT: u64 = 100_000;
/// The largest `max_unacked_span` a group may ask for.
pub const SPAN_MAX: u64 = 1_000_000;
/// Records of one partition locked at once, at most.
pub const IN_FLIGHT_MAX: usize = 10_000;
/// Records one fetch may ask for.
pub const FETCH_RECORDS_MAX: u32 = 10_000;
/// The longest a fetch waits (ms).
pub const FETCH_WAIT_MAX_MS: u32 = 30_000;
/// A member not heard from for this long is dropped (what it holds is released).
pub const MEMBER_SESSION_MS: i64 = 30_000;
/// The longest delay a release may ask for (ms): a day.
pub const DELAY_MS_MAX: u64 = 86_400_000;
/// The longest reason kept (bytes).
pub const REASON_BYTES_MAX: usize = 1024;

/// The longest queue group name (it is part of its dead-letter topics' names).
pub const GROUP_NAME_BYTES_MAX: usize = 100;

/// The dead-letter topic of `group` for `topic`: `_dlq.{group}.{topic}`, or, when that is
/// longer than a topic name may be, the topic's name cut and followed by a hash of it
/// (`_dlq.{group}.{topic prefix}.{16 hex digits}`). A group name of at most
/// [`GROUP_NAME_BYTES_MAX`] topic characters always gives a valid name.
pub fn dead_letter_topic(group: &str, topic: &str) -> String {
    let name = format!("_dlq.{group}.{topic}");
    let max = stave_raft::controller::TOPIC_NAME_BYTES_MAX;
    if name.len() <= max {
        return name;
    }
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(topic.as_bytes()));
    let keep = max.saturating_sub(name.len() - topic.len() + 1 + hash.len());
    // Topic names are ASCII: any byte is a character boundary.
    let prefix = topic.get(..keep.min(topic.len())).unwrap_or_default();
    format!("_dlq.{group}.{prefix}.{hash}")
}

/// Topics starting with one `_` are system topics (`__` is internal): created by the broker
/// or a client library, never matched by patterns, left out of `topic list` unless asked.
pub fn is_system_topic(name: &str) -> bool {
    name.starts_with('_')
}

/// Key order, when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    #[default]
    None,
    Key,
}

/// A queue group's settings as a member asks for them (unset: the group's, or defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueOptions {
    pub lock_ms: Option<i64>,
    pub max_deliveries: Option<u32>,
    pub ordering: Ordering,
    pub max_unacked_span: Option<u64>,
}

/// A queue group's settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub lock_ms: i64,
    pub max_deliveries: u32,
    pub ordering: Ordering,
    pub max_unacked_span: u64,
}

impl QueueOptions {
    /// Refuses settings outside their ranges.
    pub fn check(&self) -> Result<(), BrokerError> {
        if let Some(lock_ms) = self.lock_ms
            && !(1..=LOCK_MS_MAX).contains(&lock_ms)
        {
            return Err(BrokerError::InvalidRequest(format!(
                "lock_ms is 1 to {LOCK_MS_MAX} milliseconds, not {lock_ms}"
            )));
        }
        if let Some(max) = self.max_deliveries
            && !(1..=MAX_DELIVERIES_MAX).contains(&max)
        {
            return Err(BrokerError::InvalidRequest(format!(
                "max_deliveries is 1 to {MAX_DELIVERIES_MAX}, not {max}"
            )));
        }
        if let Some(span) = self.max_unacked_span
            && !(1..=SPAN_MAX).contains(&span)
        {
            return Err(BrokerError::InvalidRequest(format!(
                "max_unacked_span is 1 to {SPAN_MAX} records, not {span}"
            )));
        }
        Ok(())
    }

    /// The settings a group started by this member runs with.
    pub fn settings(&self) -> Settings {
        Settings {
            lock_ms: self.lock_ms.unwrap_or(LOCK_MS_DEFAULT),
            max_deliveries: self.max_deliveries.unwrap_or(MAX_DELIVERIES_DEFAULT),
            ordering: self.ordering,
            max_unacked_span: self.max_unacked_span.unwrap_or(MAX_UNACKED_SPAN_DEFAULT),
        }
    }
}

/// A fetch (join, wait for records, heartbeat or leave), as it arrives.
#[derive(Debug, Clone, Default)]
pub struct QueueFetch {
    pub group: String,
    /// Empty: join.
    pub member_id: String,
    pub topics: Vec<String>,
    pub options: QueueOptions,
    pub start: Start,
    pub max_records: u32,
    pub max_wait_ms: u32,
    pub leave: bool,
}

/// A record locked to the member it went to.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub record: ConsumerRecord,
    pub delivery_count: u32,
    pub lock_deadline_ms: i64,
}

/// What a fetch answers.
#[derive(Debug, Clone, Default)]
pub struct QueueFetched {
    pub member_id: String,
    pub records: Vec<Delivered>,
}

/// One settlement, as it arrives.
#[derive(Debug, Clone)]
pub struct SettleItem {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub delivery_count: u32,
    pub action: Action,
}

impl SettleItem {
    /// Refuses a delay past [`DELAY_MS_MAX`]; a reason past [`REASON_BYTES_MAX`] is cut
    /// (at a character boundary): it is only ever shown.
    pub fn check(&mut self) -> Result<(), BrokerError> {
        match &mut self.action {
            Action::Release { delay_ms, reason } => {
                if *delay_ms > DELAY_MS_MAX {
                    return Err(BrokerError::InvalidRequest(format!(
                        "a release delays at most {DELAY_MS_MAX} ms, not {delay_ms}"
                    )));
                }
                cut_reason(reason);
                Ok(())
            }
            Action::Reject { reason } => {
                cut_reason(reason);
                Ok(())
            }
            Action::Ack | Action::Extend => Ok(()),
        }
    }
}

fn cut_reason(reason: &mut String) {
    if reason.len() > REASON_BYTES_MAX {
        let mut end = REASON_BYTES_MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
}

/// A member as `group describe` shows it.
#[derive(Debug, Clone)]
pub struct QueueMemberView {
    pub member_id: String,
    pub in_flight: u32,
    pub delivered: u64,
    pub acked: u64,
}

/// A partition as `group describe` shows it.
#[derive(Debug, Clone)]
pub struct QueuePartitionView {
    pub topic: Arc<str>,
    pub partition: u32,
    pub ack_floor: u64,
    pub in_flight: u32,
    pub delayed: u32,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    pub oldest_unacked_age_s: f64,
    /// Why nothing more goes out now (empty: it does).
    pub blocked: String,
}

/// A queue group as its coordinator sees it.
#[derive(Debug, Clone)]
pub struct QueueDescription {
    /// `None`: the group runs nowhere now (no member for a while, or its coordinator
    /// changed); the next member to join sets them.
    pub settings: Option<Settings>,
    pub members: Vec<QueueMemberView>,
    pub partitions: Vec<QueuePartitionView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_topic_is_always_a_topic_name() {
        assert_eq!(
            dead_letter_topic("mailer", "v1.user"),
            "_dlq.mailer.v1.user"
        );
        let group = "g".repeat(GROUP_NAME_BYTES_MAX);
        for len in [1, 100, 140, 143, 144, 200, 249] {
            let topic = "t".repeat(len);
            let name = dead_letter_topic(&group, &topic);
            assert!(
                stave_raft::controller::validate_topic_name(&name).is_ok(),
                "{len}: {name}"
            );
            assert!(name.starts_with(&format!("_dlq.{group}.t")), "{name}");
        }
        // Two long topics that share their first characters get two topics.
        let a = format!("{}a", "t".repeat(200));
        let b = format!("{}b", "t".repeat(200));
        assert_ne!(dead_letter_topic(&group, &a), dead_letter_topic(&group, &b));
    }
}

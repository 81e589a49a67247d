//! The queue-group requests as the broker takes them: a fetch (join, wait, heartbeat,
//! leave) or a settle goes to the group's task on this node (started by a join), describe
//! asks it, a reset stops it.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{mpsc, oneshot};

use super::engine::{Command, Engine, Handle, gone};
use super::state::Persisted;
use super::{
    FETCH_RECORDS_MAX, QueueDescription, QueueFetch, QueueFetched, QueuePartitionView, SettleItem,
};
use crate::broker::{Broker, lock};
use crate::consumer_group::pattern::Pattern;
use crate::error::BrokerError;
use stave_raft::controller::is_internal_topic;

impl Broker {
    /// The task of queue group `group` (this node must coordinate it), started if `join`
    /// (a member joining); otherwise a group not running here has no members, and the
    /// answer is UNKNOWN_MEMBER_ID (a forged or stale member id starts nothing).
    async fn queue_engine(
        &self,
        group: &str,
        member_id: &str,
        join: bool,
    ) -> Result<mpsc::Sender<Command>, BrokerError> {
        let (partition, raft_group) = self.coordinator_partition(group).await?;
        let term = partition.term();
        let mut engines = lock(&self.queue_groups);
        if let Some(handle) = engines.get(group)
            && handle.term == term
            && !handle.tx.is_closed()
        {
            return Ok(handle.tx.clone());
        }
        engines.retain(|_, handle| !handle.tx.is_closed());
        if !join {
            return Err(crate::consumer_group::GroupMembershipError::UnknownMember(
                member_id.to_string(),
            )
            .into());
        }
        let (tx, rx) = mpsc::channel(1024);
        let members = Arc::new(AtomicUsize::new(0));
        let engine = Engine::new(
            self.this.clone(),
            group.to_string(),
            (partition, raft_group, term),
            members.clone(),
        );
        tokio::spawn(engine.run(rx));
        engines.insert(
            group.to_string(),
            Handle {
                tx: tx.clone(),
                term,
                members,
            },
        );
        Ok(tx)
    }

    /// A queue member's fetch: join, wait for records, heartbeat or leave.
    pub(crate) async fn queue_fetch(&self, fetch: QueueFetch) -> Result<QueueFetched, BrokerError> {
        fetch.options.check()?;
        if fetch.max_records > FETCH_RECORDS_MAX {
            return Err(BrokerError::InvalidRequest(format!(
                "a fetch asks for at most {FETCH_RECORDS_MAX} records, not {}",
                fetch.max_records
            )));
        }
        if fetch.member_id.is_empty() && fetch.leave {
            return Err(BrokerError::InvalidRequest(
                "leave needs the member id".into(),
            ));
        }
        if fetch.member_id.is_empty() {
            check_subscription(&fetch.group, &fetch.topics)?;
            if self
                .consumer_groups_lock()
                .get(&fetch.group)
                .is_some_and(|group| !group.is_empty())
            {
                return Err(BrokerError::GroupMismatch {
                    group: fetch.group.clone(),
                    why: "it is a consumer group with members: a queue group needs its own name"
                        .into(),
                });
            }
        }
        let group = fetch.group.clone();
        let join = fetch.member_id.is_empty();
        let tx = self.queue_engine(&group, &fetch.member_id, join).await?;
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Fetch(fetch, reply))
            .await
            .map_err(|_| gone(&group))?;
        answer.await.map_err(|_| gone(&group))?
    }

    /// A queue member's settlements; one answer per item.
    pub(crate) async fn queue_settle(
        &self,
        group: &str,
        member_id: String,
        items: Vec<SettleItem>,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        if items.len() > FETCH_RECORDS_MAX as usize {
            return Err(BrokerError::InvalidRequest(format!(
                "a settle names at most {FETCH_RECORDS_MAX} records, not {}",
                items.len()
            )));
        }
        let tx = self.queue_engine(group, &member_id, false).await?;
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Settle {
            member_id,
            items,
            reply,
        })
        .await
        .map_err(|_| gone(group))?;
        answer.await.map_err(|_| gone(group))?
    }

    /// A queue group's state (this node coordinates it): as its task has it, or, when it
    /// runs nowhere now, as it was last written (floors, delays, dead letters; no members,
    /// no locks). `None`: not a queue group.
    pub(crate) async fn describe_queue(&self, group: &str) -> Option<QueueDescription> {
        let running = {
            let engines = lock(&self.queue_groups);
            engines
                .get(group)
                .filter(|handle| !handle.tx.is_closed())
                .map(|handle| handle.tx.clone())
        };
        if let Some(tx) = running {
            let (reply, answer) = oneshot::channel();
            if tx.send(Command::Describe(reply)).await.is_ok()
                && let Ok(description) = answer.await
            {
                return Some(description);
            }
        }
        self.written_queue(group).await
    }

    /// A queue group's state as last written to its `__offsets` partition.
    async fn written_queue(&self, group: &str) -> Option<QueueDescription> {
        let (partition, _) = self.coordinator_partition(group).await.ok()?;
        let table = partition.offsets_table()?;
        let now = crate::consumer_group::now_ms();
        let partitions: Vec<QueuePartitionView> = table
            .queue_group(group)
            .filter_map(|(key, value)| {
                let state = Persisted::decode(value)?;
                // A state for another floor than the committed one was reset away.
                let floor = table.get(key).map(|c| c.offset)?;
                (floor == state.floor).then(|| QueuePartitionView {
                    topic: Arc::from(key.topic.as_str()),
                    partition: key.partition,
                    ack_floor: floor,
                    in_flight: 0,
                    delayed: state.delayed.iter().filter(|(_, at)| *at > now).count() as u32,
                    redeliveries: 0,
                    dead_lettered: state.dead_lettered,
                    oldest_unacked_age_s: 0.0,
                    blocked: String::new(),
                })
            })
            .collect();
        (!partitions.is_empty()).then_some(QueueDescription {
            settings: None,
            members: Vec::new(),
            partitions,
        })
    }

    /// Members of queue group `group` running here.
    pub(crate) fn queue_members(&self, group: &str) -> usize {
        lock(&self.queue_groups)
            .get(group)
            .map_or(0, Handle::members)
    }

    /// Stops queue group `group`'s task (before a reset moves its offsets); refused while it
    /// has members.
    pub(crate) async fn stop_queue(&self, group: &str) -> Result<(), BrokerError> {
        let handle = lock(&self.queue_groups).remove(group);
        let Some(handle) = handle else {
            return Ok(());
        };
        if handle.members() > 0 {
            let group_name = group.to_string();
            lock(&self.queue_groups).insert(group_name, handle);
            return Err(BrokerError::ConsumerGroupNotEmpty(group.to_string()));
        }
        let (reply, stopped) = oneshot::channel();
        if handle.tx.send(Command::Stop(reply)).await.is_ok() {
            let _ = stopped.await;
        }
        Ok(())
    }
}

/// Refuses a subscription no queue group can have.
fn check_subscription(group: &str, topics: &[String]) -> Result<(), BrokerError> {
    // The name goes into its dead-letter topics' names: topic characters, and short enough
    // that `_dlq.{group}.` leaves room for any topic (see `dead_letter_topic`).
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if group.is_empty() || group.len() > super::GROUP_NAME_BYTES_MAX || !group.chars().all(allowed)
    {
        return Err(BrokerError::InvalidRequest(format!(
            "a queue group's name has 1 to {} characters from A-Z a-z 0-9 . _ - (it names \
             its dead-letter topics), not {group:?}",
            super::GROUP_NAME_BYTES_MAX
        )));
    }
    if topics.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "a queue group member needs at least one topic or pattern".into(),
        ));
    }
    for topic in topics {
        Pattern::parse(topic).map_err(BrokerError::InvalidRequest)?;
        if is_internal_topic(topic) {
            return Err(BrokerError::ReservedTopicName(topic.clone()));
        }
    }
    Ok(())
}

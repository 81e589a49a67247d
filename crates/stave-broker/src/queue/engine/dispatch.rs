//! Handing the records that may go out to the fetches waiting.

use super::*;

impl Engine {
    /// Hands the records that may go out to the fetches waiting: round robin among them,
    /// one record at a time, never more than a fetch asked for; then answers the fetches
    /// that got records.
    pub(super) fn dispatch(&mut self) {
        let room: usize = self
            .turns
            .iter()
            .filter_map(|id| self.members.get(id)?.waiter.as_ref())
            .filter(|w| w.bytes < ANSWER_BYTES_MAX)
            .map(|w| w.max.saturating_sub(w.records.len()))
            .sum();
        if room == 0 {
            return;
        }
        let settings = self.settings();
        let now = now_ms();
        let picked = self.pick(room, &settings, now);
        if picked.is_empty() {
            return;
        }
        self.hand_out(picked, now.saturating_add(settings.lock_ms));
        self.answer_served(now, &settings);
    }

    /// Up to `room` records that may go out now, partitions taking turns to go first.
    pub(super) fn pick(
        &mut self,
        mut room: usize,
        settings: &Settings,
        now: i64,
    ) -> Vec<(PartitionKey, u64)> {
        // Key order: keys in flight (or being dead-lettered) wait, and a key whose earliest
        // waiting record cannot go yet holds back its later ones.
        let mut blocked: HashSet<(Arc<str>, Bytes)> = HashSet::new();
        if settings.ordering == Ordering::Key {
            for ((topic, _), queue) in &self.queues {
                let held = queue
                    .locked
                    .values()
                    .map(|l| &l.record)
                    .chain(queue.dead_lettering.values().map(|d| &d.record));
                for record in held {
                    if let Some(key) = &record.key {
                        blocked.insert((topic.clone(), key.clone()));
                    }
                }
            }
        }
        let keys: Vec<PartitionKey> = self.queues.keys().cloned().collect();
        let mut picked: Vec<(PartitionKey, u64)> = Vec::new();
        let count = keys.len();
        for step in 0..count {
            if room == 0 {
                break;
            }
            let key = &keys[(self.partition_turn + step) % count];
            let Some(queue) = self.queues.get(key) else {
                continue;
            };
            let limit = queue.limit(settings.max_unacked_span);
            let mut free = IN_FLIGHT_MAX.saturating_sub(queue.locked.len());
            for (offset, waiting) in queue.waiting.range(..limit) {
                if room == 0 || free == 0 {
                    break;
                }
                if settings.ordering == Ordering::Key
                    && let Some(record_key) = &waiting.record.key
                    && !blocked.insert((key.0.clone(), record_key.clone()))
                {
                    continue;
                }
                if waiting.not_before_ms > now {
                    continue;
                }
                picked.push((key.clone(), *offset));
                room -= 1;
                free -= 1;
            }
        }
        self.partition_turn = self.partition_turn.wrapping_add(1);
        picked
    }

    /// Locks the picked records to the waiting fetches, one each in turn.
    pub(super) fn hand_out(&mut self, picked: Vec<(PartitionKey, u64)>, deadline: i64) {
        let mut picked = picked.into_iter();
        'give: loop {
            let mut gave = false;
            for _ in 0..self.turns.len() {
                let Some(id) = self.turns.pop_front() else {
                    break 'give;
                };
                self.turns.push_back(id);
                let Some(member) = self.members.get_mut(&id) else {
                    continue;
                };
                let Some(waiter) = member.waiter.as_mut() else {
                    continue;
                };
                if waiter.records.len() >= waiter.max || waiter.bytes >= ANSWER_BYTES_MAX {
                    continue;
                }
                let Some((key, offset)) = picked.next() else {
                    break 'give;
                };
                let Some(queue) = self.queues.get_mut(&key) else {
                    continue;
                };
                if let Some(locked) = queue.lock(offset, id, deadline) {
                    waiter.bytes += crate::consume::record_size(&locked.record) as usize;
                    waiter.records.push(Delivered {
                        record: locked.record.clone(),
                        delivery_count: locked.deliveries,
                        lock_deadline_ms: deadline,
                    });
                    member.delivered += 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }

    /// Answers the fetches that got records; a fetch whose caller went away gives its
    /// records back.
    pub(super) fn answer_served(&mut self, now: i64, settings: &Settings) {
        let mut served = Vec::new();
        for (id, member) in &mut self.members {
            if member.waiter.as_ref().is_none_or(|w| w.records.is_empty()) {
                continue;
            }
            let Some(waiter) = member.waiter.take() else {
                continue;
            };
            served.push(*id);
            let answer = QueueFetched {
                member_id: member.name.clone(),
                records: waiter.records,
            };
            let Err(Ok(lost)) = waiter.reply.send(Ok(answer)) else {
                continue;
            };
            for delivered in lost.records {
                let key = (delivered.record.topic.clone(), delivered.record.partition);
                if let Some(queue) = self.queues.get_mut(&key) {
                    let release = crate::queue::Action::Release {
                        delay_ms: 0,
                        reason: String::new(),
                    };
                    let _ = queue.settle(
                        *id,
                        delivered.record.offset,
                        delivered.delivery_count,
                        release,
                        now,
                        settings,
                    );
                }
            }
        }
        self.turns.retain(|id| !served.contains(id));
    }
}

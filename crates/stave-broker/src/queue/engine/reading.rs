//! Which partitions a queue group reads, from where, and pausing reading far ahead.

use super::*;

impl Engine {
    /// Matches the subscription against the topics now: partitions new to the group start
    /// at their committed offset (the floor a previous coordinator wrote) with its state, or
    /// at the group's start.
    pub(super) async fn refresh_partitions(&mut self) -> Result<(), BrokerError> {
        let Some(broker) = self.broker() else {
            return Err(gone(&self.group));
        };
        let wanted = broker.subscribed_topics(&self.topics)?;
        let missing: Vec<(String, u32)> = wanted
            .iter()
            .flat_map(|(topic, count)| (0..*count).map(move |p| (topic.clone(), p)))
            .filter(|(topic, p)| !self.queues.contains_key(&(Arc::from(topic.as_str()), *p)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let table = self.offsets.offsets_table().unwrap_or_default();
        let mut states: HashMap<(String, u32), Persisted> = HashMap::new();
        for (key, value) in table.queue_group(&self.group) {
            if let Some(state) = Persisted::decode(value) {
                states.insert((key.topic.clone(), key.partition), state);
            }
        }
        if self.consumer.is_none() {
            let client = broker.own_client().await?;
            self.consumer = Some(client.consumer(ConsumerConfig {
                offset_reset: OffsetReset::Earliest,
                fetch_bytes_max: PUSH_BYTES_MAX as u32,
                ..ConsumerConfig::default()
            }));
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(());
        };
        for (topic, partition) in missing {
            let committed = table.get(&OffsetKey {
                group: self.group.clone(),
                topic: topic.clone(),
                partition,
            });
            let start = match committed {
                Some(committed) => StartPosition::Offset(committed.offset),
                None => crate::consume::start_position(self.start),
            };
            let position = consumer
                .assign(&topic, partition, start)
                .await
                .map_err(crate::consume::client_error)?;
            let floor = committed.map_or(position, |c| c.offset);
            let state = states.remove(&(topic.clone(), partition));
            let mut queue = PartitionQueue::new(floor, state);
            if position > floor {
                // Retention removed records the group never finished.
                queue.skip_to(position);
            }
            if committed.is_none() {
                // Where a new group starts is written at once: a failover before its first
                // ack must not move the start to a later "latest".
                queue.dirty = true;
                queue.persisted_floor = u64::MAX;
            }
            let key: PartitionKey = (Arc::from(topic.as_str()), partition);
            self.reading.insert(key.clone());
            self.queues.insert(key, queue);
        }
        Ok(())
    }

    /// Reassigns every partition being read at its next offset (after a read error).
    pub(super) fn restart_reads(&mut self) {
        if let Some(consumer) = self.consumer.as_mut() {
            for (topic, partition) in consumer.assignment() {
                consumer.unassign(&topic, partition);
            }
        }
        // `adjust_reading` assigns them again.
        self.reading.clear();
    }

    pub(super) fn take_record(
        &mut self,
        record: Result<ConsumerRecord, stave_client::ClientError>,
    ) {
        match record {
            Ok(record) => {
                // The records fetched with it too, so a fetch waiting is answered with all
                // of them, not with the first alone.
                let mut next = Some(record);
                while let Some(record) = next {
                    let key: PartitionKey = (record.topic.clone(), record.partition);
                    if let Some(queue) = self.queues.get_mut(&key) {
                        queue.take_read(record);
                    }
                    next = self.consumer.as_mut().and_then(Consumer::try_next);
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "a queue group's read failed; retrying");
                self.read_broken = true;
            }
        }
    }

    /// Pauses partitions read far enough ahead (or at their span limit), resumes the others.
    pub(super) async fn adjust_reading(&mut self) {
        if self.read_broken {
            return;
        }
        let span = self.settings().max_unacked_span;
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (key, queue) in &self.queues {
            let limit = queue.limit(span);
            let reading = self.reading.contains(key);
            if reading && (queue.waiting.len() >= READ_AHEAD || queue.next_read >= limit) {
                pause.push(key.clone());
            } else if !reading && queue.waiting.len() < READ_AHEAD / 2 && queue.next_read < limit {
                resume.push((key.clone(), queue.next_read));
            }
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return;
        };
        for key in pause {
            consumer.unassign(&key.0, key.1);
            self.reading.remove(&key);
        }
        for (key, next) in resume {
            match consumer
                .assign(&key.0, key.1, StartPosition::Offset(next))
                .await
            {
                Ok(position) => {
                    if let Some(queue) = self.queues.get_mut(&key)
                        && position > queue.next_read
                    {
                        queue.skip_to(position);
                    }
                    self.reading.insert(key);
                }
                Err(err) => {
                    tracing::debug!(group = %self.group, %err, "cannot resume reading {}/{}", key.0, key.1);
                    self.read_broken = true;
                    return;
                }
            }
        }
    }
}

/// The next record read, when a consumer runs.
pub(super) async fn next_record(
    consumer: &mut Option<Consumer>,
) -> Result<ConsumerRecord, stave_client::ClientError> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}

//! Writing a queue group's state to its `__offsets` partition, and its dead letters.

use super::*;

impl Engine {
    /// Starts the next state write if none is under way: every partition changed since the
    /// last one (its state record, and its floor as the committed offset when it moved).
    pub(super) fn write_state(&mut self) {
        if self.writing {
            return;
        }
        let dirty: Vec<PartitionKey> = self
            .queues
            .iter()
            .filter(|(_, q)| q.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        if dirty.is_empty() {
            for (reply, results) in self.settles.drain(..) {
                let _ = reply.send(Ok(results));
            }
            return;
        }
        let Some(broker) = self.broker() else {
            return;
        };
        let commit_ms = now_ms();
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut floors = Vec::new();
        for key in dirty {
            let Some(queue) = self.queues.get_mut(&key) else {
                continue;
            };
            queue.dirty = false;
            let offset_key = OffsetKey {
                group: self.group.clone(),
                topic: key.0.to_string(),
                partition: key.1,
            };
            if queue.floor != queue.persisted_floor {
                let committed = Committed {
                    offset: queue.floor,
                    commit_ms,
                    metadata: String::new(),
                };
                let (k, v) = commit_record(&offset_key, Some(&committed));
                records.push((k, v.unwrap_or_default()));
                floors.push((key.clone(), queue.floor));
            }
            records.push((offset_key.encode_queue(), queue.persisted().encode()));
        }
        let mut builder = BatchBuilder::new();
        for (key, value) in &records {
            builder.push(&as_record(key, Some(value), commit_ms));
        }
        let batch = Bytes::from(builder.finish());
        let settles = std::mem::take(&mut self.settles);
        let partition = self.offsets.clone();
        let raft_group = self.raft_group;
        let done = self.written_tx.clone();
        self.writing = true;
        tokio::spawn(async move {
            let result = broker
                .propose_internal(&partition, OFFSETS_TOPIC, raft_group, batch)
                .await;
            let _ = done.send(Written {
                result,
                settles,
                floors,
            });
        });
    }

    pub(super) fn written(&mut self, written: Written) {
        self.writing = false;
        match written.result {
            Ok(()) => {
                for (key, floor) in written.floors {
                    if let Some(queue) = self.queues.get_mut(&key) {
                        queue.persisted_floor = floor;
                    }
                }
                for (reply, results) in written.settles {
                    let _ = reply.send(Ok(results));
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "a queue group's state was not written");
                for (key, _) in &written.floors {
                    if let Some(queue) = self.queues.get_mut(key) {
                        queue.dirty = true;
                    }
                }
                // Whatever else changed is written again with the next write.
                for queue in self.queues.values_mut() {
                    queue.dirty = true;
                }
                for (reply, _) in written.settles {
                    let _ = reply.send(Err(BrokerError::Timeout(format!(
                        "the queue group's state was not written: {err}"
                    ))));
                }
            }
        }
    }

    /// Starts the dead-letter writes due.
    pub(super) fn send_dead_letters(&mut self) {
        let Some(broker) = self.broker() else {
            return;
        };
        let now = Instant::now();
        for (key, queue) in &self.queues {
            for (offset, letter) in &queue.dead_lettering {
                let slot = (key.clone(), *offset);
                match self.letters.get(&slot) {
                    None => {}
                    Some(Some(retry_at)) if *retry_at <= now => {}
                    Some(_) => continue,
                }
                self.letters.insert(slot, None);
                let broker = broker.clone();
                let group = self.group.clone();
                let letter = letter.clone();
                let key = key.clone();
                let offset = *offset;
                let done = self.letters_tx.clone();
                tokio::spawn(async move {
                    let result = broker
                        .write_dead_letter(
                            &group,
                            &letter.record,
                            letter.deliveries,
                            &letter.reason,
                        )
                        .await;
                    let _ = done.send(LetterWritten {
                        key,
                        offset,
                        result,
                    });
                });
            }
        }
    }

    pub(super) fn letter_written(&mut self, letter: LetterWritten) {
        let slot = (letter.key.clone(), letter.offset);
        match letter.result {
            Ok(()) => {
                self.letters.remove(&slot);
                if let Some(queue) = self.queues.get_mut(&letter.key) {
                    queue.dead_lettered(letter.offset);
                }
            }
            Err(err) => {
                tracing::warn!(group = %self.group, %err, "dead letter of {}/{} offset {} not written; retrying", letter.key.0, letter.key.1, letter.offset);
                self.letters
                    .insert(slot, Some(Instant::now() + DEAD_LETTER_RETRY));
            }
        }
    }
}

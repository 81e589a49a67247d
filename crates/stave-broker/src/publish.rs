//! Publish: records as messages, for clients in any language. Any node takes a request; each
//! record is checked and routed on its own (explicit partition, else by key, else by message
//! id, murmur2 as the Rust client), records without an `id` header get one, and the records
//! of each partition become batches (in request order, each within the topic's size limit)
//! written as produces are: here if this node leads the partition, else forwarded once to
//! the leader. Every record gets its own answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use stave_log::batch::{BatchBuilder, Record};
use stave_log::frame::{BODY_HEADER_LEN, HEADER_LEN};
use stave_log::hash::partition_for_key;
use stave_log::message_id::{MESSAGE_ID_HEADER, uuid_v7};
use stave_raft::controller::is_internal_topic;

use crate::broker::Broker;
use crate::consumer_group::now_ms;
use crate::dedupe::{ById, IdTable, Seen, id_hash};
use crate::error::BrokerError;
use crate::produce::{ProduceRequest, Produced};
use crate::routing::Target;
use crate::topic_config::{TopicConfig, topic_config};
use stave_raft::controller::{ClusterMetadata, TopicMetadata};

/// The most records one Publish request may carry.
pub const PUBLISH_RECORDS_MAX: usize = 10_000;

/// One record to publish, as it arrives (unchecked).
#[derive(Debug, Clone, Default)]
pub struct PublishRecord {
    pub topic: String,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    pub partition: Option<u32>,
    pub timestamp_ms: Option<i64>,
}

/// Where a published record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedRecord {
    pub offset: u64,
    /// A retry of a record already written: the offset is the first write's.
    pub duplicate: bool,
}

/// The answer for one record.
#[derive(Debug)]
pub struct RecordOutcome {
    /// The record's message id (its own, or the one it was given).
    pub id: String,
    /// The partition it was routed to (0 if it was refused before routing).
    pub partition: u32,
    /// Shared by the records of one batch, which share its outcome.
    pub result: Result<PublishedRecord, Arc<BrokerError>>,
}

/// The topics one request names, each looked up once: its metadata and config, or `None`
/// if it does not exist.
struct Topics {
    metadata: Arc<ClusterMetadata>,
    /// Name → its slot in `found`, or `None` if it does not exist.
    slots: HashMap<String, Option<usize>>,
    found: Vec<(String, TopicMetadata, TopicConfig)>,
}

impl Topics {
    /// `name`'s slot, looked up in the metadata the first time.
    fn slot(&mut self, name: &str) -> Option<usize> {
        if let Some(slot) = self.slots.get(name) {
            return *slot;
        }
        let slot = self.metadata.topic(name).map(|meta| {
            self.found
                .push((name.to_string(), meta.clone(), topic_config(meta)));
            self.found.len() - 1
        });
        self.slots.insert(name.to_string(), slot);
        slot
    }

    /// The target of `partition` of the topic in `slot`.
    fn target(&self, slot: usize, partition: u32) -> Target {
        let (name, meta, config) = &self.found[slot];
        Target {
            topic: name.clone(),
            partition,
            raft_group: meta.group_id(partition),
            config: config.clone(),
        }
    }
}

/// A record that passed its checks, with its id and timestamp settled.
struct Routed {
    index: usize,
    /// Its message id, hashed (see `dedupe`), if the record brought it (an id the node gave
    /// is not looked up).
    id_hash: Option<u128>,
    timestamp_ms: i64,
    /// The headers to write: the record's, and an `id` if it had none.
    headers: Vec<(String, Bytes)>,
}

/// A batch's outcome, shared by its records.
type Written = Result<Produced, Arc<BrokerError>>;

/// One record's answer.
pub(crate) type Answer = Result<PublishedRecord, Arc<BrokerError>>;

/// One partition's records, sorted against its id table.
#[derive(Default)]
struct Sorted {
    /// New ids: to write (each marked in flight).
    fresh: Vec<Routed>,
    /// Answered already: written within the window, or in flight elsewhere.
    answered: Vec<(usize, Answer)>,
    /// An id repeated in this request: (index, index of its first record here).
    repeats: Vec<(usize, usize)>,
}

/// Sorts `routed` against `table`: each new id is marked in flight.
fn sort_by_id(table: &mut IdTable, routed: Vec<Routed>, now: i64) -> Sorted {
    let mut sorted = Sorted::default();
    let mut first_here: HashMap<u128, usize, ById> = HashMap::default();
    for record in routed {
        let Some(hash) = record.id_hash else {
            sorted.fresh.push(record);
            continue;
        };
        if let Some(&first) = first_here.get(&hash) {
            sorted.repeats.push((record.index, first));
            continue;
        }
        match table.begin(hash, now) {
            Seen::Written(offset) => {
                let answer = Ok(PublishedRecord {
                    offset,
                    duplicate: true,
                });
                sorted.answered.push((record.index, answer));
            }
            Seen::InFlight => {
                let answer = Err(Arc::new(BrokerError::DuplicateInFlight));
                sorted.answered.push((record.index, answer));
            }
            Seen::New => {
                first_here.insert(hash, record.index);
                sorted.fresh.push(record);
            }
        }
    }
    sorted
}

/// One batch to write, and the records (by request index) it holds, in order.
struct Job {
    target: Target,
    batch: Bytes,
    indices: Vec<usize>,
}

/// The first `id` header's value, if any.
fn id_of(headers: &[(String, Bytes)]) -> Option<&Bytes> {
    headers
        .iter()
        .find(|(key, _)| key == MESSAGE_ID_HEADER)
        .map(|(_, value)| value)
}

impl Broker {
    /// Publishes `records`; one outcome per record, in order. A `forwarded` request (from
    /// another node) is not forwarded again.
    pub(crate) async fn publish(
        &self,
        records: Vec<PublishRecord>,
        forwarded: bool,
    ) -> Vec<RecordOutcome> {
        if records.len() > PUBLISH_RECORDS_MAX {
            let why = format!(
                "{} records in one request: at most {PUBLISH_RECORDS_MAX}",
                records.len()
            );
            return records
                .iter()
                .map(|_| RecordOutcome {
                    id: String::new(),
                    partition: 0,
                    result: Err(Arc::new(BrokerError::InvalidRequest(why.clone()))),
                })
                .collect();
        }
        let now = now_ms();
        let mut topics = Topics {
            metadata: self.node().controller().metadata(),
            slots: HashMap::new(),
            found: Vec::new(),
        };
        let mut outcomes = Vec::with_capacity(records.len());
        let mut by_partition: BTreeMap<(usize, u32), Vec<Routed>> = BTreeMap::new();
        // Replaced once a record's batch is answered.
        let unanswered = Arc::new(BrokerError::Internal("not written".into()));
        for (index, record) in records.iter().enumerate() {
            let (id, routed) = route_record(&mut topics, index, record, now);
            let (partition, result) = match routed {
                Ok((slot, partition, routed)) => {
                    by_partition
                        .entry((slot, partition))
                        .or_default()
                        .push(routed);
                    (partition, Err(unanswered.clone()))
                }
                Err(err) => (0, Err(Arc::new(err))),
            };
            outcomes.push(RecordOutcome {
                id,
                partition,
                result,
            });
        }
        let answers =
            futures_util::future::join_all(by_partition.into_iter().map(|((slot, p), routed)| {
                let target = topics.target(slot, p);
                self.publish_partition(&records, target, routed, forwarded)
            }))
            .await;
        for (index, result) in answers.into_iter().flatten() {
            outcomes[index].result = result;
        }
        outcomes
    }

    /// Publishes one partition's records: here if this node leads it, else through its
    /// leader (unless the request was forwarded here already).
    async fn publish_partition(
        &self,
        records: &[PublishRecord],
        target: Target,
        routed: Vec<Routed>,
        forwarded: bool,
    ) -> Vec<(usize, Answer)> {
        let failed = |routed: &[Routed], err: BrokerError| {
            let err = Arc::new(err);
            routed.iter().map(|r| (r.index, Err(err.clone()))).collect()
        };
        match self.leader_partition(&target).await {
            Ok(partition) => self.publish_here(records, target, &partition, routed).await,
            Err(BrokerError::NotLeader {
                leader: Some(leader),
                ..
            }) if !forwarded && leader.node_id != self.node().id() => {
                let indices: Vec<usize> = routed.iter().map(|r| r.index).collect();
                let sent = routed
                    .into_iter()
                    .map(|r| PublishRecord {
                        partition: Some(target.partition),
                        timestamp_ms: Some(r.timestamp_ms),
                        headers: r.headers,
                        ..records[r.index].clone()
                    })
                    .collect();
                match self.remote_publish(&leader.addr, sent).await {
                    Ok(answers) => indices.into_iter().zip(answers).collect(),
                    Err(err) => {
                        let err = Arc::new(err);
                        indices.into_iter().map(|i| (i, Err(err.clone()))).collect()
                    }
                }
            }
            Err(err) => failed(&routed, err),
        }
    }

    /// Publishes one partition's records on this node, which leads it: ids already written
    /// within the window are answered as duplicates, the others written in order.
    async fn publish_here(
        &self,
        records: &[PublishRecord],
        target: Target,
        partition: &stave_raft::Partition,
        routed: Vec<Routed>,
    ) -> Vec<(usize, Answer)> {
        let table = match self.id_table(&target, partition).await {
            Ok(table) => table,
            Err(err) => {
                let err = Arc::new(err);
                return routed.iter().map(|r| (r.index, Err(err.clone()))).collect();
            }
        };
        let now = now_ms();
        let sorted = match &table {
            Some(table) => sort_by_id(&mut *table.lock().await, routed, now),
            None => Sorted {
                fresh: routed,
                ..Sorted::default()
            },
        };
        let mut answers = sorted.answered;
        // By request index: the id hash of each record written here, then its answer.
        let mut hashes: Vec<Option<u128>> = vec![None; records.len()];
        for record in &sorted.fresh {
            hashes[record.index] = record.id_hash;
        }
        let target_group = target.raft_group;
        let (jobs, refused) = self.batch_records(records, target, sorted.fresh);
        let written = self.write_in_order(jobs).await;
        let mut by_index: Vec<Option<Answer>> = vec![None; records.len()];
        for (index, err) in refused {
            by_index[index] = Some(Err(Arc::new(err)));
        }
        for (indices, result) in written {
            for (position, index) in indices.into_iter().enumerate() {
                let answer = result
                    .as_ref()
                    .map_err(Arc::clone)
                    .map(|produced| PublishedRecord {
                        offset: produced.base_offset.0 + position as u64,
                        duplicate: produced.duplicate,
                    });
                by_index[index] = Some(answer);
            }
        }
        if let Some(table) = &table {
            let mut table = table.lock().await;
            for (hash, answer) in hashes.iter().zip(&by_index) {
                if let (Some(hash), Some(answer)) = (hash, answer) {
                    table.end(*hash, answer.as_ref().ok().map(|w| (w.offset, now)));
                }
            }
            self.note_effective_window(target_group, &mut table);
        }
        for (index, first) in sorted.repeats {
            let answer = match &by_index[first] {
                Some(Ok(written)) => Ok(PublishedRecord {
                    offset: written.offset,
                    duplicate: true,
                }),
                Some(Err(err)) => Err(err.clone()),
                None => Err(Arc::new(BrokerError::Internal("unanswered".into()))),
            };
            answers.push((index, answer));
        }
        answers.extend(
            by_index
                .into_iter()
                .enumerate()
                .filter_map(|(index, answer)| Some((index, answer?))),
        );
        answers
    }

    /// Writes one partition's batches one after another, so its records keep their order;
    /// once one fails, the rest are not tried and share its answer.
    async fn write_in_order(&self, jobs: Vec<Job>) -> Vec<(Vec<usize>, Written)> {
        let mut answers = Vec::with_capacity(jobs.len());
        let mut failed: Option<Arc<BrokerError>> = None;
        for job in jobs {
            let written = match &failed {
                Some(err) => Err(err.clone()),
                None => self
                    .produce(ProduceRequest {
                        topic: job.target.topic,
                        partition: job.target.partition,
                        batch: job.batch,
                    })
                    .await
                    .map_err(Arc::new),
            };
            if let Err(err) = &written {
                failed = Some(err.clone());
            }
            answers.push((job.indices, written));
        }
        answers
    }

    /// Cuts one partition's records into batches within its size limit (a record that does
    /// not fit alone is answered MESSAGE_TOO_LARGE).
    fn batch_records(
        &self,
        records: &[PublishRecord],
        target: Target,
        routed: Vec<Routed>,
    ) -> (Vec<Job>, Vec<(usize, BrokerError)>) {
        let mut jobs = Vec::new();
        let mut refused = Vec::new();
        let max = (target.config.max_message_bytes as usize).min(self.config().max_message_bytes);
        let mut builder = BatchBuilder::new();
        let mut indices = Vec::new();
        for routed in routed {
            let source = &records[routed.index];
            let headers: Vec<(&str, &[u8])> = routed
                .headers
                .iter()
                .map(|(key, value)| (key.as_str(), &value[..]))
                .collect();
            let record = Record {
                timestamp: routed.timestamp_ms,
                key: source.key.as_deref(),
                value: Some(&source.value),
                headers: &headers,
            };
            let alone = HEADER_LEN + BODY_HEADER_LEN + builder.encoded_len(&record);
            if alone > max {
                refused.push((
                    routed.index,
                    BrokerError::MessageTooLarge { bytes: alone, max },
                ));
                continue;
            }
            if !builder.is_empty() && builder.frame_len() + builder.encoded_len(&record) > max {
                let full = std::mem::take(&mut builder);
                jobs.push(Job {
                    target: target.clone(),
                    batch: Bytes::from(full.finish()),
                    indices: std::mem::take(&mut indices),
                });
            }
            builder.push(&record);
            indices.push(routed.index);
        }
        if !builder.is_empty() {
            jobs.push(Job {
                target,
                batch: Bytes::from(builder.finish()),
                indices,
            });
        }
        (jobs, refused)
    }
}

/// Checks `record` and finds its partition (the topic's slot in `topics`, the partition);
/// its message id either way.
fn route_record(
    topics: &mut Topics,
    index: usize,
    record: &PublishRecord,
    now: i64,
) -> (String, Result<(usize, u32, Routed), BrokerError>) {
    let mut headers = record.headers.clone();
    let (id, own_id) = match id_of(&headers) {
        Some(id) => (String::from_utf8_lossy(id).into_owned(), true),
        None => {
            let id = uuid_v7(now, rand::rng().random());
            headers.push((MESSAGE_ID_HEADER.to_string(), Bytes::from(id.clone())));
            (id, false)
        }
    };
    let routed = check_record(record, &headers)
        .and_then(|()| partition_for(topics, record, id.as_bytes()))
        .map(|(slot, partition)| {
            let routed = Routed {
                index,
                // An id the node gave is new by construction: no table work for it.
                id_hash: own_id.then(|| id_hash(id.as_bytes())),
                timestamp_ms: record.timestamp_ms.unwrap_or(now),
                headers,
            };
            (slot, partition, routed)
        });
    (id, routed)
}

/// The partition `record` goes to: its own, else by key, else by `id`.
fn partition_for(
    topics: &mut Topics,
    record: &PublishRecord,
    id: &[u8],
) -> Result<(usize, u32), BrokerError> {
    let slot = topics
        .slot(&record.topic)
        .ok_or_else(|| BrokerError::UnknownTopic(record.topic.clone()))?;
    let partitions = topics.found[slot].1.partition_count();
    let partition = match (record.partition, &record.key) {
        (Some(partition), _) => partition,
        (None, Some(key)) => partition_for_key(key, partitions),
        (None, None) => partition_for_key(id, partitions),
    };
    if partition >= partitions {
        return Err(BrokerError::UnknownPartition {
            topic: record.topic.clone(),
            partition,
        });
    }
    Ok((slot, partition))
}

/// The checks of a record that need no metadata.
fn check_record(record: &PublishRecord, headers: &[(String, Bytes)]) -> Result<(), BrokerError> {
    if record.topic.is_empty() {
        return Err(BrokerError::InvalidTopicName(
            "a record needs a topic".into(),
        ));
    }
    if is_internal_topic(&record.topic) {
        return Err(BrokerError::InvalidRequest(format!(
            "{} is an internal topic",
            record.topic
        )));
    }
    if headers.iter().any(|(key, _)| key.is_empty()) {
        return Err(BrokerError::InvalidRequest(
            "a header key must not be empty".into(),
        ));
    }
    if id_of(headers).is_some_and(|id| id.is_empty()) {
        return Err(BrokerError::InvalidRequest(
            "the `id` header must not be empty".into(),
        ));
    }
    if record.timestamp_ms.is_some_and(|ms| ms < 0) {
        return Err(BrokerError::InvalidRequest(
            "timestamp_ms must not be negative".into(),
        ));
    }
    Ok(())
}

//! The model: every batch a model topic acknowledged (its base offset and records), and the
//! batches whose fate is unknown (a produce that timed out or lost its leader may still have
//! been committed). Valid writes go through here, and so does the check that every partition
//! of the model topics serves exactly what was acknowledged:
//! - every acknowledged batch is served at its offsets, records unchanged (values, keys,
//!   headers, timestamps);
//! - every other batch the log holds is one whose fate was unknown;
//! - offsets are dense from 0 (model topics keep everything) up to the high watermark.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use stave_log::batch::{BatchView, ProducerFields};
use stave_proto::v1 as pb;

use super::frames::{self, ModelRecord, Size};
use super::harness::{CALL_MAX, Checked, Cluster, Defect, HEAL_MAX, answer, defect, typed};

/// Model topics: written by the valid traffic (and by hostile batches that happen to be
/// valid); never deleted, their retention never enabled.
pub const PLAIN_TOPIC: &str = "fuzz.model.plain";
pub const PLAIN_PARTITIONS: u32 = 3;
/// Written by one idempotent producer whose id no forger uses.
pub const IDEMPOTENT_TOPIC: &str = "fuzz.model.idem";
pub const IDEMPOTENT_PARTITIONS: u32 = 2;

/// Configs of the model topics: fsync out of the way, nothing ever removed.
pub const MODEL_CONFIGS: [(&str, &str); 3] = [
    ("flush", "never"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// Bytes one verification fetch asks for.
const VERIFY_FETCH_BYTES: u32 = 8 << 20;

pub fn is_model_topic(topic: &str) -> bool {
    topic == PLAIN_TOPIC || topic == IDEMPOTENT_TOPIC
}

/// Every partition of the model topics.
pub fn model_partitions() -> Vec<(&'static str, u32)> {
    let plain = (0..PLAIN_PARTITIONS).map(|p| (PLAIN_TOPIC, p));
    let idempotent = (0..IDEMPOTENT_PARTITIONS).map(|p| (IDEMPOTENT_TOPIC, p));
    plain.chain(idempotent).collect()
}

#[derive(Debug, Default, Clone)]
struct PartitionModel {
    /// Base offset → records of each acknowledged batch.
    acked: BTreeMap<u64, Vec<ModelRecord>>,
    /// Batches that may or may not be in the log.
    unknown: Vec<Vec<ModelRecord>>,
}

/// The model of every model partition, and the idempotent producer's sequences.
pub struct Model {
    partitions: std::sync::Mutex<HashMap<(String, u32), PartitionModel>>,
    /// The idempotent producer: its id and epoch, and per partition its next sequence (the
    /// lock is held across a write, so its batches go one at a time).
    producer: (i64, i16),
    sequences: tokio::sync::Mutex<HashMap<u32, i32>>,
    /// Acknowledged batches and records, for the report.
    pub acked_batches: std::sync::atomic::AtomicU64,
}

impl Model {
    pub fn new(producer_id: i64, producer_epoch: i16) -> Model {
        Model {
            partitions: Default::default(),
            producer: (producer_id, producer_epoch),
            sequences: Default::default(),
            acked_batches: Default::default(),
        }
    }

    pub fn producer_id(&self) -> i64 {
        self.producer.0
    }

    /// Records an acknowledged batch at `[base, next)`: it must hold `records.len()` offsets
    /// and overlap no other acknowledged batch.
    pub fn acked(
        &self,
        topic: &str,
        partition: u32,
        answer: &pb::ProduceResponse,
        records: &[ModelRecord],
    ) -> Checked {
        let (base, next) = (answer.base_offset, answer.next_offset);
        if next.checked_sub(base) != Some(records.len() as u64) {
            return Err(defect(
                "wrong offsets acknowledged",
                format!(
                    "{topic}/{partition}: [{base}, {next}) for {} records",
                    records.len()
                ),
            ));
        }
        let mut partitions = self.partitions.lock().unwrap();
        let model = partitions
            .entry((topic.to_string(), partition))
            .or_default();
        let before = model.acked.range(..next).next_back();
        if let Some((&other, other_records)) = before
            && other + other_records.len() as u64 > base
        {
            // A retried idempotent batch answered as a duplicate names its first write.
            if other == base && other_records == records && answer.duplicate {
                return Ok(());
            }
            return Err(defect(
                "two batches acknowledged at one offset",
                format!("{topic}/{partition}: [{base}, {next}) overlaps the batch at {other}"),
            ));
        }
        model.acked.insert(base, records.to_vec());
        self.acked_batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Records a batch that may or may not have been written.
    pub fn unknown(&self, topic: &str, partition: u32, records: &[ModelRecord]) {
        self.partitions
            .lock()
            .unwrap()
            .entry((topic.to_string(), partition))
            .or_default()
            .unknown
            .push(records.to_vec());
    }

    /// The offset after the last acknowledged record.
    pub fn acked_end(&self, topic: &str, partition: u32) -> u64 {
        self.partitions
            .lock()
            .unwrap()
            .get(&(topic.to_string(), partition))
            .and_then(|m| m.acked.last_key_value().map(|(b, r)| b + r.len() as u64))
            .unwrap_or(0)
    }

    /// Checks one served frame against the acknowledged batches: one that starts where an
    /// acknowledged batch starts must hold its records; one that overlaps an acknowledged
    /// batch without matching it means offsets moved. (A frame the model does not know may
    /// be a write whose answer is still on its way: [`Model::verify`] judges those.)
    pub fn check_served(&self, topic: &str, partition: u32, view: &BatchView) -> Checked {
        let records = frames::records_of(view)
            .ok_or_else(|| defect("undecodable record served", format!("{topic}/{partition}")))?;
        let (base, next) = (view.base_offset().0, view.next_offset().0);
        let partitions = self.partitions.lock().unwrap();
        let Some(model) = partitions.get(&(topic.to_string(), partition)) else {
            return Ok(());
        };
        if let Some(acked) = model.acked.get(&base) {
            if *acked != records {
                return Err(defect(
                    "acknowledged records changed",
                    format!(
                        "{topic}/{partition} at {base}: served {records:?}, acknowledged {acked:?}"
                    ),
                ));
            }
            return Ok(());
        }
        let overlapping = model.acked.range(..next).next_back();
        if let Some((&other, other_records)) = overlapping
            && other + other_records.len() as u64 > base
        {
            return Err(defect(
                "acknowledged offsets moved",
                format!(
                    "{topic}/{partition}: a batch at [{base}, {next}) overlaps the one acknowledged at {other}"
                ),
            ));
        }
        Ok(())
    }

    /// A valid write to `topic`/`partition`, retried (at most [`HEAL_MAX`]) while the answer
    /// is retriable: the partition must take it. Plain batches, or the idempotent producer's
    /// next batch on the idempotent topic.
    pub async fn write(
        &self,
        cluster: &Cluster,
        rng: &mut StdRng,
        topic: &str,
        partition: u32,
    ) -> Checked {
        if topic != IDEMPOTENT_TOPIC {
            let batch = frames::valid_batch(rng, Size::Small, ProducerFields::NONE);
            return self
                .write_batch(cluster, topic, partition, &batch)
                .await
                .map(|_| ());
        }
        let mut sequences = self.sequences.lock().await;
        let sequence = *sequences.entry(partition).or_insert(0);
        let producer = ProducerFields {
            producer_id: self.producer.0,
            producer_epoch: self.producer.1,
            base_sequence: sequence,
        };
        let batch = frames::valid_batch(rng, Size::Small, producer);
        let count = self.write_batch(cluster, topic, partition, &batch).await?;
        sequences.insert(partition, stave_raft::sequence_add(sequence, count));
        Ok(())
    }

    /// Produces `batch` until it is acknowledged; returns its record count.
    async fn write_batch(
        &self,
        cluster: &Cluster,
        topic: &str,
        partition: u32,
        batch: &frames::Batch,
    ) -> Result<u32, Defect> {
        let records = batch.records.clone().expect("a valid batch");
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < HEAL_MAX {
            let node = cluster.leader(topic, partition);
            let request = pb::ProduceRequest {
                sequence: 0,
                topic: topic.into(),
                partition,
                batch: batch.bytes.clone(),
            };
            let mut client = cluster.client(node);
            match answer(&request, client.produce(request.clone())).await {
                Ok(Some(response)) => match typed(&response.error)? {
                    pb::ErrorCode::None => {
                        cluster.set_leader(topic, partition, node);
                        self.acked(topic, partition, &response, &records)?;
                        return Ok(records.len() as u32);
                    }
                    pb::ErrorCode::NotLeader
                    | pb::ErrorCode::LeaderNotAvailable
                    | pb::ErrorCode::RequestTimedOut => {
                        self.unknown(topic, partition, &records);
                        cluster.note_leader(topic, partition, &response.error);
                        last = format!("{:?}", response.error);
                    }
                    other => {
                        return Err(defect(
                            "a valid write was refused",
                            format!("{topic}/{partition}: {other:?} {:?}", response.error),
                        ));
                    }
                },
                Ok(None) => last = "an acceptable status".into(),
                Err(err) if err.kind == "hang" => {
                    self.unknown(topic, partition, &records);
                    last = err.detail;
                }
                Err(err) => return Err(err),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(defect(
            "partition stopped taking writes",
            format!(
                "{topic}/{partition}: no valid write taken within {HEAL_MAX:?}; last answer {last}"
            ),
        ))
    }

    /// Every model partition serves every acknowledged record unchanged, and nothing else
    /// but batches whose fate was unknown. Call with no write in flight.
    pub async fn verify(&self, cluster: &Cluster) -> Checked {
        for (topic, partition) in model_partitions() {
            let served = fetch_all(cluster, topic, partition).await?;
            self.judge(topic, partition, &served)?;
        }
        Ok(())
    }

    fn judge(&self, topic: &str, partition: u32, served: &Served) -> Checked {
        let model = self
            .partitions
            .lock()
            .unwrap()
            .get(&(topic.to_string(), partition))
            .cloned()
            .unwrap_or_default();
        let where_ = |at: u64| format!("{topic}/{partition} at {at}");
        let mut expected_base = 0;
        for (base, records) in &served.batches {
            if *base != expected_base {
                return Err(defect(
                    "offsets not dense",
                    format!("{}: expected a batch at {expected_base}", where_(*base)),
                ));
            }
            expected_base = base + records.len() as u64;
            match model.acked.get(base) {
                Some(acked) if acked == records => {}
                Some(acked) => {
                    return Err(defect(
                        "acknowledged records changed",
                        format!(
                            "{}: served {records:?}, acknowledged {acked:?}",
                            where_(*base)
                        ),
                    ));
                }
                None if model.unknown.contains(records) => {}
                None => {
                    return Err(defect(
                        "unknown batch served",
                        format!("{}: {records:?} was never produced", where_(*base)),
                    ));
                }
            }
        }
        if expected_base != served.high_watermark {
            return Err(defect(
                "high watermark off the served batches",
                format!(
                    "{topic}/{partition}: batches end at {expected_base}, high watermark {}",
                    served.high_watermark
                ),
            ));
        }
        let served_bases: std::collections::BTreeSet<u64> =
            served.batches.iter().map(|(base, _)| *base).collect();
        if let Some(lost) = model.acked.keys().find(|base| !served_bases.contains(base)) {
            return Err(defect(
                "acknowledged batch lost",
                format!(
                    "{}: not served (high watermark {})",
                    where_(*lost),
                    served.high_watermark
                ),
            ));
        }
        Ok(())
    }
}

/// What a partition serves from offset 0 to its high watermark.
#[derive(Debug, Default)]
pub struct Served {
    pub batches: Vec<(u64, Vec<ModelRecord>)>,
    pub high_watermark: u64,
}

/// Fetches `topic`/`partition` from 0 to its high watermark from its leader (found by
/// following hints).
pub async fn fetch_all(cluster: &Cluster, topic: &str, partition: u32) -> Result<Served, Defect> {
    let started = Instant::now();
    let mut served = Served::default();
    let mut offset = 0;
    loop {
        if started.elapsed() > HEAL_MAX + CALL_MAX {
            return Err(defect(
                "partition unreadable",
                format!("{topic}/{partition}: no leader served it from {offset}"),
            ));
        }
        let node = cluster.leader(topic, partition);
        let request = pb::FetchRequest {
            topic: topic.into(),
            partition,
            offset,
            max_bytes: VERIFY_FETCH_BYTES,
            min_bytes: 0,
            max_wait_ms: 0,
        };
        let Some(response) = answer(&request, cluster.client(node).fetch(request.clone())).await?
        else {
            continue;
        };
        match typed(&response.error)? {
            pb::ErrorCode::None => {}
            pb::ErrorCode::NotLeader | pb::ErrorCode::LeaderNotAvailable => {
                cluster.note_leader(topic, partition, &response.error);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            other => {
                return Err(defect(
                    "verification fetch refused",
                    format!(
                        "{topic}/{partition} from {offset}: {other:?} {:?}",
                        response.error
                    ),
                ));
            }
        }
        cluster.set_leader(topic, partition, node);
        served.high_watermark = response.high_watermark;
        for frame in BatchView::split(&response.batches) {
            let view = frame.map_err(|err| {
                defect(
                    "corrupt frame served",
                    format!("{topic}/{partition}: {err}"),
                )
            })?;
            let records = frames::records_of(&view).ok_or_else(|| {
                defect("undecodable record served", format!("{topic}/{partition}"))
            })?;
            if view.next_offset().0 > offset {
                served.batches.push((view.base_offset().0, records));
                offset = view.next_offset().0;
            }
        }
        if response.batches.is_empty() || offset >= response.high_watermark {
            return Ok(served);
        }
    }
}

/// Bytes of a frame, for the failure report.
pub fn describe(bytes: &Bytes) -> String {
    const SHOWN: usize = 128;
    let shown: Vec<String> = bytes
        .iter()
        .take(SHOWN)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{} bytes: {}{}",
        bytes.len(),
        shown.join(""),
        if bytes.len() > SHOWN { "…" } else { "" }
    )
}

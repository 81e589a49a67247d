//! Tests of the producer table: Kafka's sequence and epoch rules one by one, reservations,
//! rollback, snapshots, installs and expiry, then a model-based proptest (STYLE §6.2): random
//! checks, appends, truncations, applies, snapshots and installs run against the table and
//! against a model that recomputes everything from the list of appended batches, and the two
//! must agree after every step.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

/// Proptest cases: `base`, or twenty times as many when `STAVE_SOAK` is set (and not "0").
fn cases(base: u32) -> u32 {
    match std::env::var("STAVE_SOAK") {
        Ok(value) if !value.is_empty() && value != "0" => base * 20,
        _ => base,
    }
}

fn batch(producer_id: i64, epoch: i16, base_sequence: i32, record_count: u32) -> ProducerBatch {
    ProducerBatch {
        producer_id,
        producer_epoch: epoch,
        base_sequence,
        record_count,
        max_timestamp: 1_000,
    }
}

fn written(index: u64, base_offset: u64, record_count: u32) -> Written {
    Written {
        index,
        base_offset,
        next_offset: base_offset + u64::from(record_count),
    }
}

/// Checks `batch` and appends it at `index` (offsets `10 * index`), as a leader would.
fn write(table: &mut ProducerTable, batch: &ProducerBatch, index: u64) -> Written {
    assert!(
        matches!(table.check(batch), Verdict::New(_)),
        "{batch:?} is new"
    );
    let at = written(index, 10 * index, batch.record_count);
    table.append(batch, at);
    at
}

fn is_new<R>(verdict: &Verdict<R>) -> bool {
    matches!(verdict, Verdict::New(_))
}

#[test]
fn sequences_wrap_from_i32_max_to_zero() {
    assert_eq!(sequence_add(0, 1), 1);
    assert_eq!(sequence_add(i32::MAX, 1), 0);
    assert_eq!(sequence_add(i32::MAX - 1, 3), 1);
    assert_eq!(sequence_add(i32::MAX, 0), i32::MAX);
    // Records at MAX - 1, MAX and 0.
    assert_eq!(batch(1, 0, i32::MAX - 1, 3).last_sequence(), 0);
    assert_eq!(batch(1, 0, 7, 1).last_sequence(), 7);
    assert_eq!(sequence_add(i32::MAX, u32::MAX), i32::MAX - 1);
    assert_eq!(sequence_add(-1, 1), 0);
}

/// Shrunk from the model test: a follower's log may hold a batch no leader would accept (a
/// negative sequence); its range is counted as it is, not wrapped.
#[test]
fn a_negative_sequence_in_the_log_is_counted_unwrapped() {
    let mut table = ProducerTable::default();
    table.append(&batch(0, 0, -1, 1), written(0, 0, 1));
    assert_eq!(table.producers()[&0].batches[0].last_sequence, -1);
    assert!(is_new(&table.check(&batch(0, 0, 0, 1))));
}

#[test]
fn the_batch_after_i32_max_starts_at_zero() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, i32::MAX - 1, 2), 1);
    assert_eq!(
        table.check(&batch(1, 0, i32::MAX, 1)),
        Verdict::OutOfOrderSequence {
            expected: 0,
            received: i32::MAX
        }
    );
    write(&mut table, &batch(1, 0, 0, 1), 2);
    // A batch that wraps in its middle.
    write(&mut table, &batch(2, 0, i32::MAX - 1, 4), 3);
    assert!(is_new(&table.check(&batch(2, 0, 2, 1))));
}

#[test]
fn an_unknown_producer_is_accepted_at_any_sequence_but_a_negative_one() {
    let mut table = ProducerTable::default();
    assert!(is_new(&table.check(&batch(1, 0, 0, 1))));
    assert!(is_new(&table.check(&batch(2, 3, 12_345, 1))));
    assert_eq!(
        table.check(&batch(3, 0, -5, 1)),
        Verdict::OutOfOrderSequence {
            expected: 0,
            received: -5
        }
    );
}

#[test]
fn batches_without_a_producer_id_are_neither_checked_nor_counted() {
    let mut table = ProducerTable::default();
    let unchecked = batch(-1, -1, -1, 3);
    assert_eq!(table.check(&unchecked), Verdict::New(None));
    assert_eq!(table.check(&unchecked), Verdict::New(None));
    table.append(&unchecked, written(1, 0, 3));
    assert!(table.producers().is_empty());
    assert_eq!(table.pending_count(), 0);
}

#[test]
fn a_retry_of_any_of_the_last_five_batches_is_a_duplicate_with_its_offsets() {
    let mut table = ProducerTable::default();
    let batches: Vec<ProducerBatch> = (0..7).map(|i| batch(9, 0, i * 2, 2)).collect();
    let writes: Vec<Written> = (0..7)
        .map(|i| write(&mut table, &batches[i], i as u64 + 1))
        .collect();
    for i in 2..7 {
        assert_eq!(
            table.check(&batches[i]),
            Verdict::Duplicate {
                written: Some(writes[i])
            },
            "batch {i}"
        );
    }
    // Older than the last five: not recognized, and not in sequence.
    assert_eq!(
        table.check(&batches[1]),
        Verdict::OutOfOrderSequence {
            expected: 14,
            received: 2
        }
    );
    assert_eq!(table.pending_count(), 0, "duplicates reserve nothing");
}

#[test]
fn the_same_base_sequence_with_another_record_count_is_out_of_order() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 3), 1);
    assert_eq!(
        table.check(&batch(1, 0, 0, 2)),
        Verdict::OutOfOrderSequence {
            expected: 3,
            received: 0
        }
    );
}

#[test]
fn a_gap_in_the_sequence_is_out_of_order() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 3), 1);
    assert_eq!(
        table.check(&batch(1, 0, 4, 1)),
        Verdict::OutOfOrderSequence {
            expected: 3,
            received: 4
        }
    );
    assert!(is_new(&table.check(&batch(1, 0, 3, 1))));
}

#[test]
fn an_older_epoch_is_fenced_and_a_newer_one_starts_at_zero() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 2, 0, 1), 1);
    assert_eq!(
        table.check(&batch(1, 1, 1, 1)),
        Verdict::FencedEpoch {
            current: 2,
            received: 1
        }
    );
    assert_eq!(
        table.check(&batch(1, 3, 5, 1)),
        Verdict::OutOfOrderSequence {
            expected: 0,
            received: 5
        }
    );
    write(&mut table, &batch(1, 3, 0, 1), 2);
    let state = &table.producers()[&1];
    assert_eq!(state.epoch, 3);
    assert_eq!(state.batches.len(), 1, "a new epoch starts a new list");
    // A retry of the old epoch's batch is fenced, not a duplicate: the epoch moved on.
    assert_eq!(
        table.check(&batch(1, 2, 0, 1)),
        Verdict::FencedEpoch {
            current: 3,
            received: 2
        }
    );
}

#[test]
fn a_retry_of_a_reserved_batch_is_a_duplicate_without_offsets() {
    let mut table = ProducerTable::default();
    let first = batch(1, 0, 0, 2);
    assert!(is_new(&table.check(&first)));
    assert_eq!(table.check(&first), Verdict::Duplicate { written: None });
    assert_eq!(table.pending_count(), 1);
}

#[test]
fn pipelined_batches_are_checked_against_the_reserved_ones() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 2), 1);
    for base in [2, 4, 6, 8] {
        assert!(is_new(&table.check(&batch(1, 0, base, 2))), "batch {base}");
    }
    assert_eq!(
        table.check(&batch(1, 0, 12, 2)),
        Verdict::OutOfOrderSequence {
            expected: 10,
            received: 12
        }
    );
    // A reserved epoch bump fences the old epoch before it is appended.
    assert!(is_new(&table.check(&batch(1, 1, 0, 1))));
    assert_eq!(
        table.check(&batch(1, 0, 10, 1)),
        Verdict::FencedEpoch {
            current: 1,
            received: 0
        }
    );
}

#[test]
fn appending_consumes_the_reservation_and_releasing_frees_it() {
    let mut table = ProducerTable::default();
    let first = batch(1, 0, 0, 2);
    let Verdict::New(Some(id)) = table.check(&first) else {
        panic!("first check accepts");
    };
    table.release(id);
    assert_eq!(table.pending_count(), 0);
    let Verdict::New(Some(id)) = table.check(&first) else {
        panic!("a released batch is accepted again");
    };
    let at = written(4, 40, 2);
    table.append(&first, at);
    assert_eq!(table.pending_count(), 0, "the append consumed it");
    table.release(id);
    assert_eq!(
        table.check(&first),
        Verdict::Duplicate { written: Some(at) }
    );
}

#[test]
fn dropping_a_reservation_handle_releases_it() {
    let producers = Producers::default();
    let first = batch(1, 0, 0, 1);
    let verdict = producers.check_batch(&first);
    assert!(matches!(verdict, Verdict::New(_)));
    assert!(matches!(
        producers.check_batch(&first),
        Verdict::Duplicate { written: None }
    ));
    drop(verdict);
    assert!(matches!(producers.check_batch(&first), Verdict::New(_)));
}

#[test]
fn truncation_rolls_back_the_batches_after_it() {
    let mut table = ProducerTable::default();
    for i in 0..5 {
        write(&mut table, &batch(1, 0, i, 1), u64::from(i as u32) + 1);
    }
    let before = table.producers().clone();
    // Index 6 pushes the oldest batch out, 7 bumps the epoch, 8 is a new producer.
    write(&mut table, &batch(1, 0, 5, 1), 6);
    write(&mut table, &batch(1, 1, 0, 1), 7);
    write(&mut table, &batch(2, 0, 0, 1), 8);
    table.truncate_after(Some(5)).unwrap();
    assert_eq!(table.producers(), &before);
    assert!(is_new(&table.check(&batch(1, 0, 5, 1))));
    table.truncate_after(None).unwrap();
    assert!(table.producers().is_empty());
}

#[test]
fn truncation_below_the_applied_index_is_refused() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 1), 1);
    write(&mut table, &batch(1, 0, 1, 1), 2);
    table.mark_applied(1);
    let refused = BelowApplied {
        requested: Some(0),
        applied: Some(1),
    };
    assert_eq!(table.truncate_after(Some(0)), Err(refused));
    assert_eq!(
        table.snapshot_at(None),
        Err(BelowApplied {
            requested: None,
            applied: Some(1)
        })
    );
    table.truncate_after(Some(1)).unwrap();
    assert_eq!(table.producers()[&1].batches.len(), 1);
}

#[test]
fn a_snapshot_at_an_index_leaves_out_the_batches_after_it() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 1), 1);
    let at_1 = table.producers().clone();
    write(&mut table, &batch(1, 0, 1, 1), 2);
    write(&mut table, &batch(2, 0, 0, 1), 3);
    table.mark_applied(1);
    assert_eq!(table.snapshot_at(Some(1)).unwrap().producers, at_1);
    assert_eq!(
        &table.snapshot_at(Some(3)).unwrap().producers,
        table.producers()
    );
}

#[test]
fn an_installed_snapshot_keeps_the_batches_counted_after_it() {
    let mut leader = ProducerTable::default();
    write(&mut leader, &batch(1, 0, 0, 1), 1);
    write(&mut leader, &batch(1, 0, 1, 1), 2);
    let snapshot = leader.snapshot_at(Some(2)).unwrap();

    // A follower that holds index 3 (after the snapshot) but missed 1 and 2 in its table.
    let mut follower = ProducerTable::default();
    follower.append(&batch(1, 0, 2, 1), written(3, 30, 1));
    follower.install(Some(2), snapshot);
    write(&mut leader, &batch(1, 0, 2, 1), 3);
    assert_eq!(follower.producers(), leader.producers());
    // Entries up to the snapshot are applied: no going back there.
    assert!(follower.truncate_after(Some(1)).is_err());
    follower.truncate_after(Some(2)).unwrap();
    assert_eq!(follower.producers()[&1].batches.len(), 2);
}

#[test]
fn an_idle_producer_expires_once_its_batches_are_applied() {
    let mut table = ProducerTable::new(ProducerConfig { expiry_ms: 100 });
    let old = ProducerBatch {
        max_timestamp: 1_000,
        ..batch(1, 0, 0, 1)
    };
    let fresh = ProducerBatch {
        max_timestamp: 1_050,
        ..batch(2, 0, 0, 1)
    };
    write(&mut table, &old, 1);
    write(&mut table, &fresh, 2);
    table.expire(1_100);
    assert_eq!(table.producers().len(), 2, "not applied yet: kept");
    table.mark_applied(2);
    table.expire(1_099);
    assert_eq!(table.producers().len(), 2, "one ms short of the expiry");
    table.expire(1_100);
    assert_eq!(table.producers().keys().copied().collect::<Vec<_>>(), [2]);
    // Forgotten: its next batch is accepted at any sequence, as an unknown producer's.
    assert!(is_new(&table.check(&batch(1, 0, 7, 1))));
}

#[test]
fn expiry_runs_at_most_once_per_interval() {
    let mut table = ProducerTable::new(ProducerConfig { expiry_ms: 10 });
    let old = ProducerBatch {
        max_timestamp: 0,
        ..batch(1, 0, 0, 1)
    };
    write(&mut table, &old, 1);
    table.mark_applied(1);
    table.expire_every_interval(5);
    assert_eq!(table.producers().len(), 1);
    table.expire_every_interval(EXPIRY_CHECK_INTERVAL_MS);
    assert_eq!(
        table.producers().len(),
        1,
        "checked at 5: the next is later"
    );
    table.expire_every_interval(EXPIRY_CHECK_INTERVAL_MS + 5);
    assert!(table.producers().is_empty());
}

#[test]
fn a_snapshot_round_trips_through_json() {
    let mut table = ProducerTable::default();
    write(&mut table, &batch(1, 0, 0, 3), 1);
    write(&mut table, &batch(i64::MAX, i16::MAX, i32::MAX, 1), 2);
    let snapshot = table.snapshot_at(Some(2)).unwrap();
    let json = serde_json::to_vec(&snapshot).unwrap();
    let decoded: ProducerSnapshot = serde_json::from_slice(&json).unwrap();
    assert_eq!(decoded, snapshot);
}

#[test]
fn a_frame_too_short_for_a_body_header_is_refused() {
    let producers = Producers::default();
    assert!(producers.check(&[0u8; HEADER_LEN + 3]).is_err());
    assert!(producers.check(&[]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Model-based test.
// ---------------------------------------------------------------------------------------------

/// What sequence an operation uses, resolved against the model when it runs.
#[derive(Debug, Clone)]
enum Sequence {
    /// The producer's next expected sequence.
    Next,
    /// The range of one of the producer's retained batches (a retry).
    Retry(Index),
    /// This one.
    Exactly(i32),
}

#[derive(Debug, Clone)]
enum Op {
    /// A leader checks a batch; if new, the model keeps its reservation.
    Check {
        producer: i64,
        epoch: i16,
        sequence: Sequence,
        count: u32,
    },
    /// A reserved batch reaches the log.
    AppendReserved(Index),
    /// A batch reaches the log unchecked (as on a follower).
    Append {
        producer: i64,
        epoch: i16,
        sequence: Sequence,
        count: u32,
    },
    /// An entry of another kind (control frame, non-idempotent batch) takes an index.
    AppendOther,
    Release(Index),
    Truncate(Index),
    Apply(Index),
    SnapshotAt(Index),
    /// A snapshot within the log (the log after it is kept).
    InstallWithin(Index),
    /// A snapshot past the log's end, `gap` indexes later, holding the model's table.
    InstallPastEnd {
        gap: u64,
    },
}

fn sequence() -> impl Strategy<Value = Sequence> {
    prop_oneof![
        4 => Just(Sequence::Next),
        3 => any::<Index>().prop_map(Sequence::Retry),
        1 => prop_oneof![Just(0), Just(1), Just(i32::MAX - 1), Just(i32::MAX), Just(-1)]
            .prop_map(Sequence::Exactly),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let producer = 0i64..3;
    let epoch = 0i16..3;
    let count = 1u32..4;
    prop_oneof![
        6 => (producer.clone(), epoch.clone(), sequence(), count.clone()).prop_map(
            |(producer, epoch, sequence, count)| Op::Check { producer, epoch, sequence, count }
        ),
        5 => any::<Index>().prop_map(Op::AppendReserved),
        2 => (producer, epoch, sequence(), count).prop_map(
            |(producer, epoch, sequence, count)| Op::Append { producer, epoch, sequence, count }
        ),
        1 => Just(Op::AppendOther),
        1 => any::<Index>().prop_map(Op::Release),
        1 => any::<Index>().prop_map(Op::Truncate),
        2 => any::<Index>().prop_map(Op::Apply),
        1 => any::<Index>().prop_map(Op::SnapshotAt),
        1 => any::<Index>().prop_map(Op::InstallWithin),
        1 => (1u64..4).prop_map(|gap| Op::InstallPastEnd { gap }),
    ]
}

/// The simple model: a base table (the last installed snapshot, as of `base_index`) and the
/// batches appended after it. Everything else is recomputed from those on each question.
#[derive(Debug, Default)]
struct Model {
    base: BTreeMap<i64, ProducerState>,
    base_index: Option<u64>,
    log: Vec<(ProducerBatch, Written)>,
    applied: Option<u64>,
    pending: Vec<(ReservationId, ProducerBatch)>,
    /// The next index to append at.
    next_index: u64,
    next_offset: u64,
}

fn model_last_sequence(batch: &ProducerBatch) -> i32 {
    // Sequences live modulo 2^31.
    ((i64::from(batch.base_sequence) + i64::from(batch.record_count) - 1) % (1i64 << 31)) as i32
}

impl Model {
    /// The table as of `upto` (`None`: before the first entry).
    fn fold(&self, upto: Option<u64>) -> BTreeMap<i64, ProducerState> {
        let mut table = self.base.clone();
        for (batch, at) in &self.log {
            if Some(at.index) > upto {
                break;
            }
            let metadata = BatchMetadata {
                base_sequence: batch.base_sequence,
                last_sequence: model_last_sequence(batch),
                written: *at,
            };
            let state = table
                .entry(batch.producer_id)
                .or_insert_with(|| ProducerState {
                    epoch: batch.producer_epoch,
                    batches: VecDeque::new(),
                    last_timestamp_ms: 0,
                });
            if state.epoch != batch.producer_epoch {
                state.epoch = batch.producer_epoch;
                state.batches.clear();
            }
            state.batches.push_back(metadata);
            if state.batches.len() > BATCHES_RETAINED {
                state.batches.pop_front();
            }
            state.last_timestamp_ms = batch.max_timestamp;
        }
        table
    }

    /// The table as of the last appended batch.
    fn fold_all(&self) -> BTreeMap<i64, ProducerState> {
        self.fold(Some(u64::MAX))
    }

    fn tip(&self) -> Option<u64> {
        self.next_index.checked_sub(1)
    }

    /// The producer's epoch and last sequence, counting reservations.
    fn tail(&self, producer: i64) -> Option<(i16, Option<i32>)> {
        let reserved = self
            .pending
            .iter()
            .rev()
            .find(|(_, b)| b.producer_id == producer);
        if let Some((_, b)) = reserved {
            return Some((b.producer_epoch, Some(model_last_sequence(b))));
        }
        let table = self.fold_all();
        let state = table.get(&producer)?;
        Some((state.epoch, state.batches.back().map(|b| b.last_sequence)))
    }

    fn resolve(&self, producer: i64, sequence: &Sequence, count: u32) -> (i32, u32) {
        match sequence {
            Sequence::Next => {
                let next = match self.tail(producer) {
                    Some((_, Some(last))) => ((i64::from(last) + 1) % (1i64 << 31)) as i32,
                    _ => 0,
                };
                (next, count)
            }
            Sequence::Retry(index) => {
                let table = self.fold_all();
                match table.get(&producer) {
                    Some(state) if !state.batches.is_empty() => {
                        let b = state.batches[index.index(state.batches.len())];
                        let count = (i64::from(b.last_sequence) - i64::from(b.base_sequence))
                            .rem_euclid(1i64 << 31)
                            + 1;
                        (b.base_sequence, u32::try_from(count).unwrap())
                    }
                    _ => (0, count),
                }
            }
            Sequence::Exactly(sequence) => (*sequence, count),
        }
    }

    fn check(&self, batch: &ProducerBatch) -> Verdict<()> {
        if batch.producer_id < 0 {
            return Verdict::New(());
        }
        let received = batch.base_sequence;
        let Some((epoch, last)) = self.tail(batch.producer_id) else {
            return if received < 0 {
                Verdict::OutOfOrderSequence {
                    expected: 0,
                    received,
                }
            } else {
                Verdict::New(())
            };
        };
        let last_sequence = model_last_sequence(batch);
        if batch.producer_epoch == epoch {
            let table = self.fold_all();
            if let Some(state) = table.get(&batch.producer_id)
                && state.epoch == epoch
            {
                for b in &state.batches {
                    if b.base_sequence == received && b.last_sequence == last_sequence {
                        return Verdict::Duplicate {
                            written: Some(b.written),
                        };
                    }
                }
            }
            let reserved = self.pending.iter().any(|(_, b)| {
                b.producer_id == batch.producer_id
                    && b.producer_epoch == epoch
                    && b.base_sequence == received
                    && model_last_sequence(b) == last_sequence
            });
            if reserved {
                return Verdict::Duplicate { written: None };
            }
        }
        if batch.producer_epoch < epoch {
            return Verdict::FencedEpoch {
                current: epoch,
                received: batch.producer_epoch,
            };
        }
        let expected = match last {
            Some(last) if batch.producer_epoch == epoch => {
                ((i64::from(last) + 1) % (1i64 << 31)) as i32
            }
            _ => 0,
        };
        if received == expected {
            Verdict::New(())
        } else {
            Verdict::OutOfOrderSequence { expected, received }
        }
    }

    /// Appends `batch` to both.
    fn append(&mut self, table: &mut ProducerTable, batch: ProducerBatch) {
        let at = written(self.next_index, self.next_offset, batch.record_count);
        self.next_index += 1;
        self.next_offset = at.next_offset;
        table.append(&batch, at);
        if let Some(i) = self.pending.iter().position(|(_, b)| {
            b.producer_id == batch.producer_id
                && b.producer_epoch == batch.producer_epoch
                && b.base_sequence == batch.base_sequence
                && b.record_count == batch.record_count
        }) {
            self.pending.remove(i);
        }
        if batch.is_idempotent() {
            self.log.push((batch, at));
        }
    }

    /// Indexes a truncation, an apply or a snapshot may name: from the applied one (or the
    /// snapshot's) to the tip. `None` stands for "before the first entry".
    fn settled_range(&self) -> Vec<Option<u64>> {
        let low = self.applied.max(self.base_index);
        let mut range = Vec::new();
        if low.is_none() {
            range.push(None);
        }
        let start = low.unwrap_or(0);
        if let Some(tip) = self.tip() {
            range.extend((start..=tip).map(Some));
        }
        if range.is_empty() {
            range.push(low);
        }
        range
    }
}

fn make_batch(producer: i64, epoch: i16, (base_sequence, count): (i32, u32)) -> ProducerBatch {
    ProducerBatch {
        max_timestamp: i64::from(base_sequence),
        ..batch(producer, epoch, base_sequence, count)
    }
}

fn run(ops: Vec<Op>) {
    let mut table = ProducerTable::default();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Check {
                producer,
                epoch,
                sequence,
                count,
            } => {
                let b = make_batch(producer, epoch, model.resolve(producer, &sequence, count));
                let expected = model.check(&b);
                let verdict = table.check(&b);
                assert_eq!(
                    verdict.map_new(|_| ()),
                    expected,
                    "step {step}: check {b:?}"
                );
                if let Verdict::New(Some(id)) = verdict {
                    model.pending.push((id, b));
                }
            }
            Op::AppendReserved(index) => {
                if !model.pending.is_empty() {
                    let (_, b) = model.pending[index.index(model.pending.len())];
                    model.append(&mut table, b);
                }
            }
            Op::Append {
                producer,
                epoch,
                sequence,
                count,
            } => {
                let b = make_batch(producer, epoch, model.resolve(producer, &sequence, count));
                model.append(&mut table, b);
            }
            Op::AppendOther => model.append(&mut table, batch(-1, -1, -1, 1)),
            Op::Release(index) => {
                if !model.pending.is_empty() {
                    let (id, _) = model.pending.remove(index.index(model.pending.len()));
                    table.release(id);
                }
            }
            Op::Truncate(index) => {
                let range = model.settled_range();
                let last_kept = range[index.index(range.len())];
                table.truncate_after(last_kept).unwrap();
                model.log.retain(|(_, at)| Some(at.index) <= last_kept);
                model.next_index = last_kept.map_or(0, |last| last + 1);
            }
            Op::Apply(index) => {
                let range = model.settled_range();
                if let Some(applied) = range[index.index(range.len())] {
                    table.mark_applied(applied);
                    model.applied = model.applied.max(Some(applied));
                }
            }
            Op::SnapshotAt(index) => {
                let range = model.settled_range();
                let at = range[index.index(range.len())];
                let snapshot = table.snapshot_at(at).unwrap();
                assert_eq!(
                    snapshot.producers,
                    model.fold(at),
                    "step {step}: snapshot at {at:?}"
                );
            }
            Op::InstallWithin(index) => {
                let range = model.settled_range();
                let at = range[index.index(range.len())];
                let snapshot = ProducerSnapshot {
                    producers: model.fold(at),
                };
                table.install(at, snapshot.clone());
                model.base = snapshot.producers;
                model.base_index = model.base_index.max(at);
                model.log.retain(|(_, written)| Some(written.index) > at);
                model.applied = model.applied.max(at);
            }
            Op::InstallPastEnd { gap } => {
                let at = model.next_index + gap;
                let snapshot = ProducerSnapshot {
                    producers: model.fold_all(),
                };
                table.install(Some(at), snapshot.clone());
                model.base = snapshot.producers;
                model.base_index = Some(at);
                model.log.clear();
                model.applied = Some(at);
                model.next_index = at + 1;
                model.next_offset += 100;
            }
        }
        assert_eq!(table.producers(), &model.fold_all(), "step {step}: table");
        assert_eq!(
            table.pending_count(),
            model.pending.len(),
            "step {step}: reservations"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Any sequence of checks, appends, truncations, applies, snapshots and installs leaves the
    /// table equal to the model's fold of the appended batches, and every check answers as the
    /// model does.
    #[test]
    fn the_table_agrees_with_a_model_recomputed_from_the_log(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        run(ops);
    }
}

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, BatchView, Record};
use stave_proto::v1::ErrorCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use crate::error::ClientError;
use crate::record::RecordMetadata;

type Answer = oneshot::Receiver<Result<RecordMetadata, ClientError>>;

const ID: Identity = Identity {
    producer_id: 7,
    epoch: 0,
};

fn config() -> PipelineConfig {
    PipelineConfig {
        linger: Duration::from_millis(5),
        batch_bytes: 1000,
        request_bytes_max: 4000,
        in_flight_max: 3,
        backoff: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
    }
}

fn pipeline() -> Pipeline {
    Pipeline::new(Arc::from("t"), 2, config(), ID)
}

/// A pipeline with `linger` 0.
fn lingerless() -> Pipeline {
    let config = PipelineConfig {
        linger: Duration::ZERO,
        ..config()
    };
    Pipeline::new(Arc::from("t"), 2, config, ID)
}

/// A record with a `value_len`-byte value, due at `deadline`.
fn record(value_len: usize, deadline: Instant) -> (PendingRecord, Answer) {
    let value = Bytes::from(vec![b'v'; value_len]);
    let (reply, answer) = oneshot::channel();
    let bytes = record_bytes_max(None, Some(&value), &[]);
    let pending = PendingRecord {
        key: None,
        value: Some(value),
        headers: Vec::new(),
        timestamp: 1_000,
        bytes,
        deadline,
        reply: Reply::Future(reply),
        permit: None,
    };
    (pending, answer)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Pushes `count` records of `value_len` bytes and closes the batch.
fn batch_of(p: &mut Pipeline, count: usize, value_len: usize, now: Instant) -> Vec<Answer> {
    let answers = (0..count)
        .map(|_| {
            let (r, a) = record(value_len, far());
            p.push(r, now);
            a
        })
        .collect();
    p.close_open();
    answers
}

fn sent(next: Next) -> (u64, Bytes) {
    match next {
        Next::Send { batch_id, frame } => (batch_id, frame),
        other => panic!("expected a send, got {other:?}"),
    }
}

/// Sends one batch and acknowledges it, which opens the window (sequence 0 is spent).
fn prime(p: &mut Pipeline, now: Instant) {
    let _answer = batch_of(p, 1, 10, now);
    let (id, _) = sent(p.next_send(now));
    p.on_response(id, Outcome::Written { base_offset: 0 }, now);
}

fn producer_fields(frame: &Bytes) -> (i64, i16, i32, u32) {
    let view = BatchView::parse_unstamped(frame.clone()).unwrap();
    view.validate_records().unwrap();
    let body = view.body();
    (
        body.producer_id,
        body.producer_epoch,
        body.base_sequence,
        body.record_count,
    )
}

fn broker(code: ErrorCode) -> ClientError {
    ClientError::Broker {
        code,
        message: String::new(),
        leader_id: None,
        leader_addr: None,
    }
}

fn offsets(answers: Vec<Answer>) -> Vec<u64> {
    answers
        .into_iter()
        .map(|mut a| a.try_recv().unwrap().unwrap().offset)
        .collect()
}

fn failed(answers: Vec<Answer>) -> Vec<Option<ErrorCode>> {
    answers
        .into_iter()
        .map(|mut a| a.try_recv().unwrap().unwrap_err().code())
        .collect()
}

/// `record_bytes_max` never undercounts what `BatchBuilder` writes, so a batch's frame
/// stays within `request_bytes_max`.
#[test]
fn record_bytes_max_is_an_upper_bound_of_the_encoding() {
    let mut builder = BatchBuilder::new();
    for len in [0usize, 1, 63, 64, 127, 128, 8191, 8192, 70_000] {
        let value = Bytes::from(vec![1u8; len]);
        let key = Bytes::from(vec![2u8; len / 3]);
        let headers = vec![("id".to_string(), Bytes::from(vec![3u8; len / 7]))];
        let header_refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let rec = Record {
            timestamp: i64::MAX / 3,
            key: Some(&key),
            value: Some(&value),
            headers: &header_refs,
        };
        let exact = builder.encoded_len(&rec);
        let bound = record_bytes_max(Some(&key), Some(&value), &headers);
        assert!(exact <= bound, "len {len}: exact {exact} > bound {bound}");
        builder.push(&rec);
    }
    assert!(builder.frame_len() >= FRAME_OVERHEAD_BYTES);
}

#[test]
fn sequence_add_wraps_like_kafka() {
    assert_eq!(sequence_add(0, 5), 5);
    assert_eq!(sequence_add(i32::MAX, 1), 0);
    assert_eq!(sequence_add(i32::MAX - 1, 3), 1);
}

/// Records fill the open batch until `batch_bytes`; the batch then waits to be sent.
#[test]
fn a_batch_closes_when_it_reaches_batch_bytes() {
    let now = Instant::now();
    let mut p = pipeline();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (r, a) = record(300, far());
        p.push(r, now);
        answers.push(a);
    }
    // 300-byte records: the batch passes 1000 bytes at its 3rd record.
    let (first, frame) = sent(p.next_send(now));
    assert_eq!(producer_fields(&frame).3, 3);
    p.on_response(first, Outcome::Written { base_offset: 0 }, now);
    assert_eq!(p.next_send(now), Next::Idle, "the rest waits for linger");
    assert_eq!(p.linger_deadline(now), Some(now + Duration::from_millis(5)));
    assert_eq!(p.next_send(now + Duration::from_millis(4)), Next::Idle);
    let (second, frame) = sent(p.next_send(now + Duration::from_millis(5)));
    assert_eq!(producer_fields(&frame).3, 2);
    assert!(second > first);
}

/// A batch whose linger ended goes at the next chance to send; while the window is full it
/// keeps taking records (Kafka's accumulator), so `linger` 0 costs no timer and no batching.
#[test]
fn a_lingered_batch_takes_records_until_the_window_has_room() {
    let now = Instant::now();
    let mut p = lingerless();
    let (r, _a) = record(10, far());
    p.push(r, now);
    assert_eq!(
        p.linger_deadline(now),
        None,
        "no timer for a lingered batch"
    );
    let (first, frame) = sent(p.next_send(now));
    assert_eq!(producer_fields(&frame).3, 1, "a lone record goes at once");
    // One batch in flight until the first is written: the next records wait together.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let (r, a) = record(10, far());
        p.push(r, now);
        answers.push(a);
    }
    assert_eq!(p.next_send(now), Next::Idle);
    p.on_response(first, Outcome::Written { base_offset: 0 }, now);
    let (_, frame) = sent(p.next_send(now));
    assert_eq!(producer_fields(&frame).3, 4, "they went as one batch");
    assert!(p.open.is_none());
}

/// A batch that lingered but cannot go (no leader) still expires at its delivery deadline.
#[test]
fn an_open_batch_that_cannot_go_expires() {
    let now = Instant::now();
    let mut p = lingerless();
    let (r, answer) = record(10, now + Duration::from_secs(2));
    p.push(r, now);
    p.on_send_failure(broker(ErrorCode::LeaderNotAvailable), now);
    assert_eq!(
        p.wake_at(now + Duration::from_secs(1)),
        Some(now + Duration::from_secs(2))
    );
    p.expire(now + Duration::from_secs(2));
    assert!(p.is_idle());
    let err = { answer }.try_recv().unwrap().unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
}

/// A record that would push the frame past `request_bytes_max` starts a new batch.
#[test]
fn a_record_that_would_overflow_the_request_starts_a_new_batch() {
    let now = Instant::now();
    let mut p = Pipeline::new(
        Arc::from("t"),
        0,
        PipelineConfig {
            batch_bytes: 4000,
            ..config()
        },
        ID,
    );
    prime(&mut p, now);
    let _a = batch_of(&mut p, 3, 1500, now);
    let (_, first) = sent(p.next_send(now));
    let (_, second) = sent(p.next_send(now));
    assert_eq!(producer_fields(&first).3, 2);
    assert_eq!(producer_fields(&second).3, 1);
    assert!(first.len() <= 4000);
}

/// Each batch carries the producer identity and the next sequence: the previous batch's
/// base plus its record count.
#[test]
fn batches_carry_consecutive_sequences() {
    let now = Instant::now();
    let mut p = pipeline();
    let _a = batch_of(&mut p, 4, 10, now);
    let _b = batch_of(&mut p, 2, 10, now);
    let _c = batch_of(&mut p, 1, 10, now);
    let (id_a, a) = sent(p.next_send(now));
    p.on_response(id_a, Outcome::Written { base_offset: 0 }, now);
    let (_, b) = sent(p.next_send(now));
    let (_, c) = sent(p.next_send(now));
    assert_eq!(producer_fields(&a), (7, 0, 0, 4));
    assert_eq!(producer_fields(&b), (7, 0, 4, 2));
    assert_eq!(producer_fields(&c), (7, 0, 6, 1));
}

#[test]
fn a_producer_that_is_not_idempotent_sends_no_sequence() {
    let now = Instant::now();
    let mut p = Pipeline::new(Arc::from("t"), 0, config(), Identity::NONE);
    let _a = batch_of(&mut p, 2, 10, now);
    let (_, frame) = sent(p.next_send(now));
    assert_eq!(producer_fields(&frame), (-1, -1, -1, 2));
}

#[test]
fn batches_in_flight_are_bounded() {
    let now = Instant::now();
    let mut p = pipeline();
    prime(&mut p, now);
    let _answers: Vec<_> = (0..5).map(|_| batch_of(&mut p, 1, 10, now)).collect();
    for _ in 0..3 {
        sent(p.next_send(now));
    }
    assert_eq!(p.next_send(now), Next::Idle);
    assert_eq!(p.in_flight_len(), 3);
}

/// A written batch answers each record with its own offset.
#[test]
fn a_written_batch_answers_every_record_with_its_offset() {
    let now = Instant::now();
    let mut p = pipeline();
    let answers = batch_of(&mut p, 3, 10, now);
    let (id, _) = sent(p.next_send(now));
    p.on_response(id, Outcome::Written { base_offset: 40 }, now);
    assert_eq!(offsets(answers), [40, 41, 42]);
    assert!(p.is_idle());
}

/// A failed batch stops new sends until the window drains; then the failed batches go
/// again, in order, with the very same frames (so the broker can drop duplicates), after a
/// backoff.
#[test]
fn retries_resend_the_same_frames_in_order_after_the_window_drains() {
    let now = Instant::now();
    let mut p = pipeline();
    prime(&mut p, now);
    let a = batch_of(&mut p, 1, 10, now);
    let b = batch_of(&mut p, 1, 10, now);
    let c = batch_of(&mut p, 1, 10, now);
    let _d = batch_of(&mut p, 1, 10, now);
    let (id_a, frame_a) = sent(p.next_send(now));
    let (id_b, _) = sent(p.next_send(now));
    let (id_c, frame_c) = sent(p.next_send(now));

    p.on_response(id_a, Outcome::Retry(broker(ErrorCode::NotLeader)), now);
    assert!(!p.can_send(now), "a failed window sends nothing new");
    p.on_response(id_b, Outcome::Written { base_offset: 1 }, now);
    p.on_response(
        id_c,
        Outcome::Retry(broker(ErrorCode::RequestTimedOut)),
        now,
    );
    assert_eq!(offsets(vec![b.into_iter().next().unwrap()]), [1]);

    assert_eq!(p.next_send(now), Next::Idle, "backing off");
    let later = now + Duration::from_millis(100);
    let (again_a, resent_a) = sent(p.next_send(later));
    assert_eq!(again_a, id_a);
    assert_eq!(resent_a, frame_a);
    assert_eq!(
        p.next_send(later),
        Next::Idle,
        "a retry round starts with one batch"
    );
    p.on_response(id_a, Outcome::Written { base_offset: 0 }, later);
    assert_eq!(offsets(a), [0]);

    let (again_c, resent_c) = sent(p.next_send(later));
    assert_eq!(again_c, id_c);
    assert_eq!(resent_c, frame_c);
    // The 4th batch was never sent: it follows the retries with the next sequence.
    let (_, frame_d) = sent(p.next_send(later));
    assert_eq!(producer_fields(&frame_d).2, 4);
    p.on_response(id_c, Outcome::Written { base_offset: 2 }, later);
    assert_eq!(offsets(c), [2]);
}

/// A window that failed on a redirect (NOT_LEADER naming a live leader) resends at once,
/// the same frame; a second redirect in a row backs off as usual (two nodes naming each
/// other), and a written batch makes the next redirect immediate again.
#[test]
fn a_redirect_resends_at_once_but_not_twice_in_a_row() {
    let now = Instant::now();
    let mut p = pipeline();
    prime(&mut p, now);
    let a = batch_of(&mut p, 1, 10, now);
    let _b = batch_of(&mut p, 1, 10, now);
    let (id_a, frame_a) = sent(p.next_send(now));

    p.note_redirect();
    p.on_response(id_a, Outcome::Retry(broker(ErrorCode::NotLeader)), now);
    let (again, resent) = sent(p.next_send(now));
    assert_eq!(
        (again, &resent),
        (id_a, &frame_a),
        "at once, the same frame"
    );

    p.note_redirect();
    p.on_response(id_a, Outcome::Retry(broker(ErrorCode::NotLeader)), now);
    assert_eq!(p.next_send(now), Next::Idle, "backing off");
    let later = now + Duration::from_millis(100);
    let (again, _) = sent(p.next_send(later));
    assert_eq!(again, id_a);
    p.on_response(id_a, Outcome::Written { base_offset: 0 }, later);
    assert_eq!(offsets(a), [0]);

    let (id_b, _) = sent(p.next_send(later));
    p.note_redirect();
    p.on_response(id_b, Outcome::Retry(broker(ErrorCode::NotLeader)), later);
    assert_eq!(sent(p.next_send(later)).0, id_b, "at once again");
}

/// A batch refused for good fails its records; the later batch that the gap cut off is
/// built again under a new producer identity, starting at sequence 0.
#[test]
fn a_refused_batch_fails_and_the_batches_behind_it_get_a_new_identity() {
    let now = Instant::now();
    let mut p = pipeline();
    prime(&mut p, now);
    let a = batch_of(&mut p, 2, 10, now);
    let b = batch_of(&mut p, 1, 10, now);
    let (id_a, _) = sent(p.next_send(now));
    let (id_b, frame_b) = sent(p.next_send(now));
    assert_eq!(producer_fields(&frame_b).2, 3);

    p.on_response(id_a, Outcome::Fail(broker(ErrorCode::MessageTooLarge)), now);
    p.on_response(
        id_b,
        Outcome::OutOfOrder(broker(ErrorCode::OutOfOrderSequence)),
        now,
    );
    assert_eq!(failed(a), [Some(ErrorCode::MessageTooLarge); 2]);

    let later = now + Duration::from_secs(1);
    assert_eq!(p.next_send(later), Next::NeedIdentity);
    let fresh = Identity {
        producer_id: 8,
        epoch: 0,
    };
    p.set_identity(fresh);
    let (again_b, rebuilt) = sent(p.next_send(later));
    assert_eq!(again_b, id_b);
    assert_eq!(producer_fields(&rebuilt), (8, 0, 0, 1));
    p.on_response(id_b, Outcome::Written { base_offset: 9 }, later);
    assert_eq!(offsets(b), [9]);
}

/// A first OUT_OF_ORDER_SEQUENCE is retried as is (the broker may have seen the batches out
/// of order); a second one means a real gap, and the batch is rebuilt.
#[test]
fn a_second_out_of_order_answer_rebuilds_the_batch() {
    let now = Instant::now();
    let mut p = pipeline();
    let _a = batch_of(&mut p, 1, 10, now);
    let (id, frame) = sent(p.next_send(now));
    let out_of_order = || Outcome::OutOfOrder(broker(ErrorCode::OutOfOrderSequence));

    p.on_response(id, out_of_order(), now);
    let later = now + Duration::from_secs(1);
    let (_, again) = sent(p.next_send(later));
    assert_eq!(again, frame);

    p.on_response(id, out_of_order(), later);
    let later = later + Duration::from_secs(1);
    assert_eq!(p.next_send(later), Next::NeedIdentity);
    p.set_identity(Identity {
        producer_id: 9,
        epoch: 0,
    });
    let (_, rebuilt) = sent(p.next_send(later));
    assert_eq!(producer_fields(&rebuilt), (9, 0, 0, 1));
}

/// Records that could not be sent before their delivery timeout fail with a timeout that
/// carries the last error; nothing was written, so the identity stays.
#[test]
fn batches_never_sent_expire_at_their_delivery_deadline() {
    let now = Instant::now();
    let mut p = pipeline();
    let (r, answer) = record(10, now + Duration::from_secs(2));
    p.push(r, now);
    p.close_open();
    p.on_send_failure(broker(ErrorCode::LeaderNotAvailable), now);
    assert_eq!(p.wake_at(now), Some(now + Duration::from_millis(100)));
    assert_eq!(
        p.wake_at(now + Duration::from_millis(100)),
        Some(now + Duration::from_secs(2)),
        "a backoff that ended is no reason to wake"
    );
    p.expire(now + Duration::from_secs(1));
    assert!(!p.is_idle());
    p.expire(now + Duration::from_secs(2));
    assert!(p.is_idle());
    let err = { answer }.try_recv().unwrap().unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }));
    assert_eq!(err.code(), Some(ErrorCode::LeaderNotAvailable));
    let _b = batch_of(&mut p, 1, 10, now);
    let (_, frame) = sent(p.next_send(now + Duration::from_secs(3)));
    assert_eq!(producer_fields(&frame), (7, 0, 0, 1));
}

/// A batch that may have been written expires with every later batch of its identity that
/// may have been written too (rebuilding those could write them twice); batches never sent
/// go on under a new identity.
#[test]
fn an_expired_batch_in_doubt_takes_the_later_ones_in_doubt_with_it() {
    let now = Instant::now();
    let mut p = pipeline();
    prime(&mut p, now);
    let deadline = now + Duration::from_secs(5);
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (r, a) = record(10, deadline);
        p.push(r, now);
        p.close_open();
        answers.push(a);
    }
    let (r, never_sent) = record(10, far());
    p.push(r, now);
    p.close_open();
    let (id_a, _) = sent(p.next_send(now));
    let (id_b, _) = sent(p.next_send(now));
    p.on_response(
        id_a,
        Outcome::Retry(broker(ErrorCode::RequestTimedOut)),
        now,
    );
    p.on_response(
        id_b,
        Outcome::Retry(broker(ErrorCode::RequestTimedOut)),
        now,
    );

    p.expire(deadline);
    let codes: Vec<bool> = answers
        .into_iter()
        .map(|mut a| matches!(a.try_recv(), Ok(Err(ClientError::Timeout { .. }))))
        .collect();
    assert_eq!(codes, [true, true, true]);
    assert_eq!(p.next_send(deadline), Next::NeedIdentity);
    p.set_identity(Identity {
        producer_id: 11,
        epoch: 0,
    });
    let (id, frame) = sent(p.next_send(deadline));
    assert_eq!(producer_fields(&frame), (11, 0, 0, 1));
    p.on_response(id, Outcome::Written { base_offset: 3 }, deadline);
    assert_eq!(offsets(vec![never_sent]), [3]);
}

/// A new identity, and each round after a failure, sends one batch and waits for it before
/// opening the window: a broker that sees a new producer's batches out of order must see
/// the first one first.
#[test]
fn the_window_opens_only_after_a_batch_is_written() {
    let now = Instant::now();
    let mut p = pipeline();
    let _answers: Vec<_> = (0..6).map(|_| batch_of(&mut p, 1, 10, now)).collect();
    let (first, _) = sent(p.next_send(now));
    assert_eq!(p.next_send(now), Next::Idle);
    p.on_response(first, Outcome::Written { base_offset: 0 }, now);
    let (second, _) = sent(p.next_send(now));
    let (third, _) = sent(p.next_send(now));
    assert_eq!(p.in_flight_len(), 2);
    p.on_response(second, Outcome::Retry(broker(ErrorCode::NotLeader)), now);
    p.on_response(third, Outcome::Retry(broker(ErrorCode::NotLeader)), now);
    let later = now + Duration::from_secs(1);
    let (again, _) = sent(p.next_send(later));
    assert_eq!(again, second);
    assert_eq!(p.next_send(later), Next::Idle);
    p.on_response(second, Outcome::Written { base_offset: 1 }, later);
    sent(p.next_send(later));
    sent(p.next_send(later));
    sent(p.next_send(later));
    assert_eq!(p.in_flight_len(), 3);
}

/// A flush waits for every batch that existed when it came: `oldest_unfinished` moves past
/// the mark once they are all answered.
#[test]
fn oldest_unfinished_tracks_the_batches_a_flush_waits_for() {
    let now = Instant::now();
    let mut p = pipeline();
    assert_eq!(p.oldest_unfinished(), None);
    let _a = batch_of(&mut p, 1, 10, now);
    let _b = batch_of(&mut p, 1, 10, now);
    let mark = p.next_batch_id();
    let (id_a, _) = sent(p.next_send(now));
    assert_eq!(p.oldest_unfinished(), Some(id_a));
    p.on_response(id_a, Outcome::Written { base_offset: 0 }, now);
    let _c = batch_of(&mut p, 1, 10, now);
    assert!(p.oldest_unfinished().unwrap() < mark);
    let (id_b, _) = sent(p.next_send(now));
    p.on_response(id_b, Outcome::Written { base_offset: 1 }, now);
    assert!(p.oldest_unfinished().unwrap() >= mark);
}

//! Tests of the record batch codec: round trips, one test per refusal path, and an always-on
//! decoder fuzz whose accepted inputs must re-encode to the same bytes (STYLE §6.2, §6.3).
//!
//! Case counts are sized for a few seconds in a debug build; set `STAVE_SOAK=1` to run twenty
//! times as many.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::frame::{
    ATTR_CONTROL, FRAME_BYTES_LIMIT, FRAME_BYTES_MIN, FRAME_MAGIC, encode_control_frame,
    encode_unstamped, header_crc_of, u32_at,
};
use crate::types::LogId;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Proptest cases: `base`, or twenty times as many when `STAVE_SOAK` is set (and not "0").
fn cases(base: u32) -> u32 {
    match std::env::var("STAVE_SOAK") {
        Ok(value) if !value.is_empty() && value != "0" => base * 20,
        _ => base,
    }
}

/// A record that owns its bytes, so that strategies can generate it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedRecord {
    timestamp: TimestampMs,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

impl OwnedRecord {
    fn simple(timestamp: TimestampMs, key: &[u8], value: &[u8]) -> OwnedRecord {
        OwnedRecord {
            timestamp,
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: vec![("h".to_owned(), b"x".to_vec())],
        }
    }

    /// Lends the record as the builder's borrowed `Record`.
    fn with_record<R>(&self, f: impl FnOnce(&Record<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_slice()))
            .collect();
        f(&Record {
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &headers,
        })
    }

    fn from_view(view: &RecordView<'_>) -> OwnedRecord {
        OwnedRecord {
            timestamp: view.timestamp,
            key: view.key.map(<[u8]>::to_vec),
            value: view.value.map(<[u8]>::to_vec),
            headers: view
                .headers()
                .map(|(key, value)| (key.to_owned(), value.to_vec()))
                .collect(),
        }
    }
}

fn producer_of(body: &BodyHeader) -> ProducerFields {
    ProducerFields {
        producer_id: body.producer_id,
        producer_epoch: body.producer_epoch,
        base_sequence: body.base_sequence,
    }
}

/// Builds an unstamped data frame with `BatchBuilder`, checking before every push that
/// `encoded_len` predicts exactly the bytes the push adds.
fn build(records: &[OwnedRecord], producer: ProducerFields) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    builder.producer(producer);
    for record in records {
        record.with_record(|record| {
            let before = builder.frame_len();
            let predicted = builder.encoded_len(record);
            builder.push(record);
            assert_eq!(
                builder.frame_len() - before,
                predicted,
                "encoded_len of {record:?}"
            );
        });
    }
    builder.finish()
}

/// Rewrites the stamped fields of a frame's header, as `PartitionLog::append` does.
fn stamp(frame: &mut [u8], base_offset: Offset, log_id: LogId) {
    let header = FrameHeader::decode_unchecked(frame).unwrap();
    let stamped = FrameHeader {
        base_offset,
        log_id,
        ..header
    };
    frame[..HEADER_LEN].copy_from_slice(&stamped.encode());
}

/// A frame of any type around a hand-written body header and payload, with correct lengths
/// and CRCs: for bodies `BatchBuilder` would never write.
fn sealed(frame_type: FrameType, body: BodyHeader, payload: &[u8]) -> Vec<u8> {
    encode_unstamped(frame_type, &body, payload)
}

/// The body header `BatchBuilder` writes for `record_count` records, first timestamp
/// `first_timestamp` and largest timestamp `max_timestamp`.
fn data_body(record_count: u32, first_timestamp: i64, max_timestamp: i64) -> BodyHeader {
    BodyHeader {
        attributes: 0,
        last_offset_delta: record_count.saturating_sub(1),
        first_timestamp,
        max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count,
    }
}

/// One zigzag varint.
fn vi(value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    varint::encode_i64(value, &mut out);
    out
}

/// A varint carrying `extra` redundant bytes: the same value, not the shortest encoding.
fn overlong(value: i64, extra: usize) -> Vec<u8> {
    let mut out = vi(value);
    if extra > 0 {
        let last = out.len() - 1;
        out[last] |= 0x80;
        out.extend(std::iter::repeat_n(0x80, extra - 1));
        out.push(0);
    }
    out
}

/// A record as raw bytes: the length prefix, then `fields` as given.
fn raw_record(fields: &[&[u8]]) -> Vec<u8> {
    let body = fields.concat();
    [vi(body.len() as i64), body].concat()
}

/// The fields of the record `BatchBuilder` writes for record 0 with key "k", value "v", no
/// headers and a timestamp delta of 0, as `raw_record` pieces.
fn canonical_fields() -> Vec<Vec<u8>> {
    vec![
        vec![0],
        vi(0),
        vi(0),
        vi(1),
        b"k".to_vec(),
        vi(1),
        b"v".to_vec(),
        vi(0),
    ]
}

/// A one-record data frame whose record is made of `fields`.
fn one_record_frame(fields: &[Vec<u8>]) -> Vec<u8> {
    let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    sealed(FrameType::Data, data_body(1, 7, 7), &raw_record(&fields))
}

fn reason_of<T: std::fmt::Debug>(result: Result<T, LogError>) -> CorruptReason {
    match result {
        Err(LogError::InvalidFrame { reason }) => reason,
        other => panic!("expected an invalid frame, got {other:?}"),
    }
}

/// Parses an unstamped frame (which must pass the frame checks) and returns why its records
/// are refused.
fn records_refusal(frame: Vec<u8>) -> CorruptReason {
    let view = BatchView::parse_unstamped(Bytes::from(frame)).unwrap();
    reason_of(view.validate_records())
}

fn bad_record(record: u32, what: &'static str) -> CorruptReason {
    CorruptReason::BadRecord { record, what }
}

/// A stamped frame of three records with keys, tombstones and headers.
fn sample_stamped_frame() -> Vec<u8> {
    let records = [
        OwnedRecord::simple(1_700_000_000_000, b"alpha", b"one"),
        OwnedRecord {
            timestamp: 1_699_999_999_000,
            key: None,
            value: None,
            headers: vec![],
        },
        OwnedRecord {
            timestamp: 1_700_000_000_500,
            key: Some(vec![]),
            value: Some(b"three".to_vec()),
            headers: vec![
                ("trace".to_owned(), b"abc".to_vec()),
                ("é".to_owned(), vec![]),
            ],
        },
    ];
    let mut frame = build(&records, ProducerFields::NONE);
    stamp(&mut frame, Offset(1000), LogId::new(4, 17));
    frame
}

// ---------------------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------------------

/// A single record with a key, a value and a header parses back from the builder's output.
#[test]
fn builder_output_parses_back() {
    let mut builder = BatchBuilder::new();
    builder.push(&Record {
        timestamp: 5,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[("h", b"x")],
    });
    let view = BatchView::parse_unstamped(Bytes::from(builder.finish())).expect("parses");
    view.validate_records().expect("valid");
    let records: Vec<_> = view.records().collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, Some(&b"k"[..]));
    assert_eq!(
        records[0].headers().collect::<Vec<_>>(),
        vec![("h", &b"x"[..])]
    );
}

/// The test helpers `raw_record` and `canonical_fields` write what `BatchBuilder` writes, so
/// the hand-made frames in the refusal tests differ from valid ones only where they mean to.
#[test]
fn hand_made_record_matches_the_builder() {
    let built = build(
        &[OwnedRecord {
            timestamp: 7,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![],
        }],
        ProducerFields::NONE,
    );
    assert_eq!(one_record_frame(&canonical_fields()), built);
}

fn timestamp_strategy() -> impl Strategy<Value = TimestampMs> {
    prop_oneof![
        4 => 1_600_000_000_000i64..1_800_000_000_000,
        2 => -1_000i64..1_000,
        1 => any::<i64>(),
        1 => Just(TimestampMs::MIN),
        1 => Just(TimestampMs::MAX),
    ]
}

/// Bytes for keys and values: absent, empty, small random, or up to a few KiB of a pattern
/// (cheap to generate in a debug build).
fn payload_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => prop::collection::vec(any::<u8>(), 0..32).prop_map(Some),
        1 => (0usize..4096, any::<u8>()).prop_map(|(len, seed)| {
            Some((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
        }),
    ]
}

fn headers_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        ("\\PC{0,12}", prop::collection::vec(any::<u8>(), 0..24)),
        0..4,
    )
}

/// Records whose timestamps cluster around a base (so deltas are small and of either sign)
/// with some far outliers (so deltas wrap).
fn records_strategy(count_max: usize) -> impl Strategy<Value = Vec<OwnedRecord>> {
    timestamp_strategy().prop_flat_map(move |base| {
        let timestamp = prop_oneof![
            4 => (-5_000i64..5_000).prop_map(move |jitter| base.wrapping_add(jitter)),
            1 => timestamp_strategy(),
        ];
        let record = (
            timestamp,
            payload_strategy(),
            payload_strategy(),
            headers_strategy(),
        )
            .prop_map(|(timestamp, key, value, headers)| OwnedRecord {
                timestamp,
                key,
                value,
                headers,
            });
        prop::collection::vec(record, 1..count_max)
    })
}

fn producer_strategy() -> impl Strategy<Value = ProducerFields> {
    prop_oneof![
        Just(ProducerFields::NONE),
        (any::<i64>(), any::<i16>(), any::<i32>()).prop_map(
            |(producer_id, producer_epoch, base_sequence)| ProducerFields {
                producer_id,
                producer_epoch,
                base_sequence,
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Any batch round-trips: every record (offset, timestamp, key, value, headers) and every
    /// body field parses back as pushed, unstamped and after stamping, and `encoded_len`
    /// predicts each push exactly.
    #[test]
    fn any_batch_round_trips(
        records in records_strategy(50),
        producer in producer_strategy(),
        base_offset in 0u64..u64::MAX / 2,
        term in any::<u64>(),
        index in any::<u64>(),
    ) {
        let frame = build(&records, producer);
        let view = BatchView::parse_unstamped(Bytes::from(frame.clone())).unwrap();
        view.validate_records().unwrap();
        let body = view.body();
        prop_assert_eq!(view.frame_type(), FrameType::Data);
        prop_assert_eq!(view.record_count() as usize, records.len());
        prop_assert_eq!(body.first_timestamp, records[0].timestamp);
        let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap();
        prop_assert_eq!(body.max_timestamp, max_timestamp);
        prop_assert_eq!(producer_of(body), producer);
        let decoded: Vec<OwnedRecord> = view
            .records()
            .map(|record| OwnedRecord::from_view(&record.unwrap()))
            .collect();
        prop_assert_eq!(&decoded, &records);

        let mut stamped = frame;
        stamp(&mut stamped, Offset(base_offset), LogId::new(term, index));
        let view = BatchView::parse(Bytes::from(stamped)).unwrap();
        view.validate_records().unwrap();
        prop_assert_eq!(view.base_offset(), Offset(base_offset));
        prop_assert_eq!(view.header().log_id, LogId::new(term, index));
        prop_assert_eq!(view.next_offset(), Offset(base_offset + records.len() as u64));
        for (i, record) in view.records().enumerate() {
            let record = record.unwrap();
            prop_assert_eq!(record.offset, Offset(base_offset + i as u64));
            prop_assert_eq!(OwnedRecord::from_view(&record), records[i].clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals: the frame.
// ---------------------------------------------------------------------------------------------

/// A stamped frame is covered end to end by its two CRCs: changing any one byte to any other
/// value makes `BatchView::parse` fail.
#[test]
fn parse_refuses_every_single_byte_change_of_a_stamped_frame() {
    let frame = sample_stamped_frame();
    BatchView::parse(Bytes::from(frame.clone())).unwrap();
    for at in 0..frame.len() {
        for xor in 1..=u8::MAX {
            let mut changed = frame.clone();
            changed[at] ^= xor;
            assert!(
                BatchView::parse(Bytes::from(changed)).is_err(),
                "byte {at} xor {xor:#04x} accepted"
            );
        }
    }
}

/// Every strict prefix of a valid frame is refused as truncated, never parsed short.
#[test]
fn parse_refuses_every_truncation() {
    let frame = sample_stamped_frame();
    for len in 0..frame.len() {
        let reason = reason_of(BatchView::parse(Bytes::copy_from_slice(&frame[..len])));
        assert!(
            matches!(reason, CorruptReason::Truncated { .. }),
            "prefix of {len} bytes: {reason:?}"
        );
    }
}

/// `parse` checks the header CRC, `parse_unstamped` does not: a producer's frame is stamped
/// by the log after it is checked.
#[test]
fn only_stamped_parse_checks_the_header_crc() {
    let mut frame = sample_stamped_frame();
    frame[10] ^= 1; // base_offset, under the header CRC only.
    assert!(matches!(
        reason_of(BatchView::parse(Bytes::from(frame.clone()))),
        CorruptReason::HeaderCrcMismatch { .. }
    ));
    BatchView::parse_unstamped(Bytes::from(frame)).unwrap();
}

/// A changed body byte fails the body CRC, in both parses.
#[test]
fn parse_refuses_body_crc_mismatch() {
    let mut frame = sample_stamped_frame();
    let last = frame.len() - 1;
    frame[last] ^= 0x40;
    for result in [
        BatchView::parse(Bytes::from(frame.clone())),
        BatchView::parse_unstamped(Bytes::from(frame)),
    ] {
        assert!(matches!(
            reason_of(result),
            CorruptReason::CrcMismatch { .. }
        ));
    }
}

/// Bad magic, an unknown type and an out-of-bounds length are refused before anything else.
#[test]
fn parse_refuses_bad_magic_type_and_length() {
    let frame = sample_stamped_frame();
    let mut bad_magic = frame.clone();
    bad_magic[0] = 0x42;
    assert_eq!(
        reason_of(BatchView::parse_unstamped(Bytes::from(bad_magic))),
        CorruptReason::BadMagic(0x42)
    );
    let mut bad_type = frame.clone();
    bad_type[1] = 9;
    assert_eq!(
        reason_of(BatchView::parse_unstamped(Bytes::from(bad_type))),
        CorruptReason::BadType(9)
    );
    let mut too_long = frame;
    let batch_len = (FRAME_BYTES_LIMIT + 1 - HEADER_LEN as u64) as u32;
    too_long[6..10].copy_from_slice(&batch_len.to_le_bytes());
    assert!(matches!(
        reason_of(BatchView::parse_unstamped(Bytes::from(too_long))),
        CorruptReason::LengthOutOfBounds { .. }
    ));
}

/// A data frame must hold records and a control frame none; `last_offset_delta` must be
/// `record_count - 1`.
#[test]
fn parse_refuses_record_counts_that_do_not_fit_the_frame() {
    let empty_data = sealed(FrameType::Data, data_body(0, 0, 0), &[]);
    assert_eq!(
        reason_of(BatchView::parse_unstamped(Bytes::from(empty_data))),
        CorruptReason::RecordCount {
            frame_type: FrameType::Data as u8,
            record_count: 0
        }
    );
    let control_with_records = sealed(FrameType::Blank, data_body(1, 0, 0), &[]);
    assert_eq!(
        reason_of(BatchView::parse_unstamped(Bytes::from(
            control_with_records
        ))),
        CorruptReason::RecordCount {
            frame_type: FrameType::Blank as u8,
            record_count: 1
        }
    );
    let record = raw_record(&[&[0], &vi(0), &vi(0), &vi(-1), &vi(-1), &vi(0)]);
    let wrong_delta = sealed(
        FrameType::Data,
        BodyHeader {
            last_offset_delta: 1,
            ..data_body(1, 0, 0)
        },
        &record,
    );
    assert_eq!(
        reason_of(BatchView::parse_unstamped(Bytes::from(wrong_delta))),
        CorruptReason::OffsetDelta {
            last_offset_delta: 1,
            record_count: 1
        }
    );
}

/// A frame followed by more bytes parses as the frame alone: `parse` takes the front frame of
/// a run, and `FrameIter` splits the run.
#[test]
fn frame_iter_splits_a_run_and_stops_at_a_bad_frame() {
    let frame = sample_stamped_frame();
    let run = Bytes::from([frame.clone(), frame.clone(), vec![FRAME_MAGIC]].concat());
    let view = BatchView::parse(run.clone()).unwrap();
    assert_eq!(view.frame().as_ref(), frame.as_slice());
    let mut iter = BatchView::split(&run);
    assert!(iter.next().unwrap().is_ok());
    assert!(iter.next().unwrap().is_ok());
    assert!(matches!(
        reason_of(iter.next().unwrap()),
        CorruptReason::Truncated { .. }
    ));
    assert!(iter.next().is_none());
}

/// A stamped frame whose offsets would run past `u64::MAX` is refused: every record offset
/// and `next_offset` of an accepted view fit a `u64`.
#[test]
fn parse_refuses_offsets_past_u64_max() {
    let mut frame = sample_stamped_frame(); // Three records.
    stamp(&mut frame, Offset(u64::MAX - 3), LogId::new(1, 1));
    let view = BatchView::parse(Bytes::from(frame.clone())).unwrap();
    assert_eq!(view.next_offset(), Offset(u64::MAX));
    view.validate_records().unwrap();
    stamp(&mut frame, Offset(u64::MAX - 2), LogId::new(1, 1));
    assert_eq!(
        reason_of(BatchView::parse(Bytes::from(frame.clone()))),
        CorruptReason::OffsetOverflow {
            base_offset: u64::MAX - 2,
            record_count: 3
        }
    );
    assert!(BatchView::parse_unstamped(Bytes::from(frame)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Refusals: records.
// ---------------------------------------------------------------------------------------------

/// A batch whose compression bits are set is refused by iteration and validation alike:
/// compression is not supported yet.
#[test]
fn records_refuse_compressed_batches() {
    let frame = build(&[OwnedRecord::simple(1, b"k", b"v")], ProducerFields::NONE);
    let plain = BatchView::parse_unstamped(Bytes::from(frame)).unwrap();
    plain.validate_records().unwrap();
    for codec in 1..=7u16 {
        let body = BodyHeader {
            attributes: codec,
            ..*plain.body()
        };
        let compressed = sealed(FrameType::Data, body, &plain.payload());
        let view = BatchView::parse_unstamped(Bytes::from(compressed)).unwrap();
        let first = view.records().next().unwrap();
        assert_eq!(
            first,
            Err(CorruptReason::UnsupportedCompression(codec as u8))
        );
        assert_eq!(
            reason_of(view.validate_records()),
            CorruptReason::UnsupportedCompression(codec as u8)
        );
    }
}

/// A length that runs past the end of its record (a key longer than what is left), or a
/// record length past the end of the batch, is refused.
#[test]
fn records_refuse_fields_running_past_the_record() {
    let mut fields = canonical_fields();
    fields[3] = vi(2); // Key length 2, but "k" then the value follow.
    fields.truncate(5);
    assert_eq!(
        records_refusal(one_record_frame(&fields)),
        bad_record(0, "field runs past the record")
    );
    let mut record = raw_record(&[&[0], &vi(0), &vi(0), &vi(-1), &vi(-1), &vi(0)]);
    record[0] = vi(7)[0]; // Claims 7 bytes; 6 follow.
    let frame = sealed(FrameType::Data, data_body(1, 0, 0), &record);
    assert_eq!(
        records_refusal(frame),
        bad_record(0, "field runs past the record")
    );
    let empty_record = raw_record(&[]);
    let frame = sealed(FrameType::Data, data_body(1, 0, 0), &empty_record);
    assert_eq!(
        records_refusal(frame),
        bad_record(0, "field runs past the record")
    );
}

/// Negative lengths are refused: a record length, a key or value length below -1, and a
/// negative header count.
#[test]
fn records_refuse_negative_lengths() {
    let frame = sealed(FrameType::Data, data_body(1, 0, 0), &vi(-1));
    assert_eq!(
        records_refusal(frame),
        bad_record(0, "negative record length")
    );
    for field in [3, 5] {
        let mut fields = canonical_fields();
        fields[field] = vi(-2);
        fields.remove(field + 1);
        assert_eq!(
            records_refusal(one_record_frame(&fields)),
            bad_record(0, "negative length"),
            "field {field}"
        );
    }
    let mut fields = canonical_fields();
    fields[7] = vi(-1);
    assert_eq!(
        records_refusal(one_record_frame(&fields)),
        bad_record(0, "negative header count")
    );
}

/// A header key must be UTF-8, and neither a header key nor its value may be null.
#[test]
fn records_refuse_bad_headers() {
    let mut fields = canonical_fields();
    fields[7] = vi(1);
    fields.extend([vi(2), vec![0xc3, 0x28], vi(0)]);
    assert_eq!(
        records_refusal(one_record_frame(&fields)),
        bad_record(0, "header key is not UTF-8")
    );
    for (key, value) in [(vi(-1), vi(0)), ([vi(1), b"h".to_vec()].concat(), vi(-1))] {
        let mut fields = canonical_fields();
        fields[7] = vi(1);
        fields.extend([key, value]);
        assert_eq!(
            records_refusal(one_record_frame(&fields)),
            bad_record(0, "null header key or value")
        );
    }
}

/// Bytes after a record's last header, and bytes after the batch's last record, are refused.
#[test]
fn records_refuse_leftover_bytes() {
    let mut fields = canonical_fields();
    fields.push(vec![0]);
    assert_eq!(
        records_refusal(one_record_frame(&fields)),
        bad_record(0, "bytes left inside the record")
    );
    let canonical = one_record_frame(&canonical_fields());
    let view = BatchView::parse_unstamped(Bytes::from(canonical)).unwrap();
    let trailing = [view.payload().to_vec(), vec![0, 0]].concat();
    let frame = sealed(FrameType::Data, *view.body(), &trailing);
    assert_eq!(records_refusal(frame), CorruptReason::TrailingBytes(2));
}

/// Offset deltas must be 0, 1, 2, ... in order.
#[test]
fn records_refuse_offset_deltas_out_of_sequence() {
    let mut fields = canonical_fields();
    fields[2] = vi(1);
    assert_eq!(
        records_refusal(one_record_frame(&fields)),
        bad_record(0, "offset delta out of sequence")
    );
}

/// A batch's `max_timestamp` must be its largest record timestamp.
#[test]
fn validate_refuses_wrong_max_timestamp() {
    let fields = canonical_fields();
    let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let frame = sealed(FrameType::Data, data_body(1, 7, 8), &raw_record(&fields));
    assert_eq!(
        records_refusal(frame),
        bad_record(1, "max_timestamp is not the largest record timestamp")
    );
}

/// A varint written with more bytes than it needs is refused wherever it appears in a
/// record (here the timestamp delta, the key length, the header count and the record
/// length): `BatchBuilder` never writes one, so accepting it would break re-encoding to the
/// same bytes.
#[test]
fn records_refuse_overlong_varints() {
    for field in [1, 3, 7] {
        let mut fields = canonical_fields();
        let value = varint::decode_i64(&mut fields[field].as_slice()).unwrap();
        fields[field] = overlong(value, 1);
        assert_eq!(
            records_refusal(one_record_frame(&fields)),
            CorruptReason::BadVarint,
            "field {field}"
        );
    }
    let body = canonical_fields().concat();
    let record = [overlong(body.len() as i64, 1), body].concat();
    let frame = sealed(FrameType::Data, data_body(1, 7, 7), &record);
    assert_eq!(records_refusal(frame), CorruptReason::BadVarint);
}

/// A record's attributes byte is unused and must be 0.
#[test]
fn records_refuse_non_zero_record_attributes() {
    for attributes in [1u8, 0x80] {
        let mut fields = canonical_fields();
        fields[0] = vec![attributes];
        assert_eq!(
            records_refusal(one_record_frame(&fields)),
            bad_record(0, "record attributes are not 0")
        );
    }
}

/// The first record's timestamp delta must be 0, so the body's `first_timestamp` is the first
/// record's timestamp: a batch whose timestamps all decode right but whose first delta is
/// not 0 is a second encoding of the same batch.
#[test]
fn validate_refuses_first_record_with_non_zero_timestamp_delta() {
    let mut fields = canonical_fields();
    fields[1] = vi(2);
    // first_timestamp 5 plus delta 2: the record's timestamp is 7, as is max_timestamp.
    let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let frame = sealed(FrameType::Data, data_body(1, 5, 7), &raw_record(&fields));
    let view = BatchView::parse_unstamped(Bytes::from(frame.clone())).unwrap();
    assert_eq!(view.records().next().unwrap().unwrap().timestamp, 7);
    assert_eq!(
        records_refusal(frame),
        bad_record(0, "first record's timestamp delta is not 0")
    );
}

/// A data batch's attributes may hold nothing but a compression codec: the control bit, or
/// any bit not yet defined, is refused.
#[test]
fn validate_refuses_unknown_batch_attribute_bits() {
    let canonical = one_record_frame(&canonical_fields());
    let view = BatchView::parse_unstamped(Bytes::from(canonical)).unwrap();
    for bit in 3..16 {
        let body = BodyHeader {
            attributes: 1 << bit,
            ..*view.body()
        };
        let frame = sealed(FrameType::Data, body, &view.payload());
        assert_eq!(
            records_refusal(frame),
            CorruptReason::BadAttributes(1 << bit),
            "bit {bit}"
        );
    }
}

/// Control frames hold an opaque payload, not records: `validate_records` accepts them as
/// `encode_control_frame` writes them, payload and all.
#[test]
fn validate_accepts_control_frames_as_encoded() {
    for (frame_type, payload) in [
        (FrameType::Blank, &b""[..]),
        (FrameType::Membership, &b"voters: 1,2,3"[..]),
        (FrameType::Command, &[0u8, 1, 2][..]),
    ] {
        let frame = encode_control_frame(frame_type, payload);
        let view = BatchView::parse_unstamped(Bytes::from(frame)).unwrap();
        view.validate_records().unwrap();
        assert_eq!(view.records().count(), 0);
        assert_eq!(view.payload().as_ref(), payload);
    }
}

/// A control frame whose body header differs from the one `encode_control_frame` writes (no
/// control bit, a compression codec, a timestamp, producer fields) is refused.
#[test]
fn validate_refuses_control_frames_with_other_body_headers() {
    let control = BodyHeader::CONTROL;
    for body in [
        BodyHeader {
            attributes: 0,
            ..control
        },
        BodyHeader {
            attributes: ATTR_CONTROL | 1,
            ..control
        },
        BodyHeader {
            first_timestamp: 1,
            ..control
        },
        BodyHeader {
            max_timestamp: 1,
            ..control
        },
        BodyHeader {
            producer_id: 3,
            ..control
        },
    ] {
        let frame = sealed(FrameType::Command, body, b"payload");
        assert_eq!(
            records_refusal(frame),
            CorruptReason::ControlBodyHeader,
            "{body:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Zero copy.
// ---------------------------------------------------------------------------------------------

/// A record's key and value, and the `Bytes` that `slice_ref` makes of them, point into the
/// buffer the frame was parsed from: reading a batch copies no record bytes.
#[test]
fn record_slices_point_into_the_parsed_buffer() {
    let buffer = Bytes::from(sample_stamped_frame());
    let range = buffer.as_ptr_range();
    let view = BatchView::parse(buffer.clone()).unwrap();
    let mut checked = 0;
    for record in view.records() {
        let record = record.unwrap();
        for slice in [record.key, record.value].into_iter().flatten() {
            if slice.is_empty() {
                continue;
            }
            let shared = view.slice_ref(slice);
            assert_eq!(shared.as_ptr(), slice.as_ptr());
            assert!(range.contains(&shared.as_ptr()));
            assert!(shared.as_ptr_range().end <= range.end);
            assert_eq!(shared.as_ref(), slice);
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "alpha, one and three");
}

// ---------------------------------------------------------------------------------------------
// Decoder fuzz.
// ---------------------------------------------------------------------------------------------

/// Ways to make a batch encoding non-canonical or inconsistent, applied by `encode_quirky`.
/// Each is off by default.
#[derive(Debug, Clone, Default)]
struct Quirks {
    /// The n-th varint written (over the whole batch) gets this many redundant bytes.
    overlong_varint: Option<(usize, usize)>,
    /// Record n's attributes byte.
    record_attributes: Option<(usize, u8)>,
    /// Subtracted from the body's `first_timestamp` and so added to every timestamp delta:
    /// the same timestamps, encoded differently.
    first_timestamp_shift: i64,
    batch_attributes: u16,
    max_timestamp_shift: i64,
    record_count_shift: u32,
}

/// A second, independent writer of the batch format (it shares only the varint encoder), so
/// that the fuzz can produce frames `BatchBuilder` never would.
fn encode_quirky(records: &[OwnedRecord], producer: ProducerFields, quirks: &Quirks) -> Vec<u8> {
    let first_timestamp = records[0]
        .timestamp
        .wrapping_sub(quirks.first_timestamp_shift);
    let mut varints = 0usize;
    let mut varint = |value: i64, out: &mut Vec<u8>| {
        let extra = match quirks.overlong_varint {
            Some((n, extra)) if n == varints => extra,
            _ => 0,
        };
        varints += 1;
        out.extend(overlong(value, extra));
    };
    let mut payload = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let mut body = vec![match quirks.record_attributes {
            Some((n, attributes)) if n == i => attributes,
            _ => 0,
        }];
        varint(record.timestamp.wrapping_sub(first_timestamp), &mut body);
        varint(i as i64, &mut body);
        let mut optional = |bytes: Option<&[u8]>, body: &mut Vec<u8>| match bytes {
            Some(bytes) => {
                varint(bytes.len() as i64, body);
                body.extend_from_slice(bytes);
            }
            None => varint(-1, body),
        };
        optional(record.key.as_deref(), &mut body);
        optional(record.value.as_deref(), &mut body);
        varint(record.headers.len() as i64, &mut body);
        for (key, value) in &record.headers {
            varint(key.len() as i64, &mut body);
            body.extend_from_slice(key.as_bytes());
            varint(value.len() as i64, &mut body);
            body.extend_from_slice(value);
        }
        varint(body.len() as i64, &mut payload);
        payload.extend(body);
    }
    let record_count = (records.len() as u32).wrapping_add(quirks.record_count_shift);
    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap();
    let body = BodyHeader {
        attributes: quirks.batch_attributes,
        last_offset_delta: record_count.saturating_sub(1),
        first_timestamp,
        max_timestamp: max_timestamp.wrapping_add(quirks.max_timestamp_shift),
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        base_sequence: producer.base_sequence,
        record_count,
    };
    sealed(FrameType::Data, body, &payload)
}

/// Without quirks, the independent writer writes exactly what `BatchBuilder` writes.
#[test]
fn quirk_free_independent_encoding_matches_the_builder() {
    let records = [
        OwnedRecord::simple(10, b"a", b"b"),
        OwnedRecord::simple(-5, b"", b"c"),
        OwnedRecord::simple(i64::MAX, b"d", b""),
    ];
    let producer = ProducerFields {
        producer_id: 9,
        producer_epoch: 2,
        base_sequence: 40,
    };
    assert_eq!(
        encode_quirky(&records, producer, &Quirks::default()),
        build(&records, producer)
    );
}

/// A byte-level edit of a frame, at a position scaled to the frame's length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: Index,
        xor: u8,
    },
    Truncate {
        at: Index,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Remove {
        at: Index,
        len: usize,
    },
    /// Overwrites `replaced` bytes with a varint, sometimes overlong: lands on record
    /// lengths, key and value lengths, header counts and deltas.
    SpliceVarint {
        at: Index,
        replaced: usize,
        value: i64,
        extra: usize,
    },
    /// Overwrites a little-endian field of up to 8 bytes: lands on the header's `batch_len`
    /// and the body header's counts and timestamps.
    SpliceField {
        at: Index,
        width: usize,
        value: u64,
    },
}

impl Mutation {
    fn apply(&self, frame: &mut Vec<u8>) {
        let len = frame.len();
        match self {
            Mutation::Flip { at, xor } if len > 0 => frame[at.index(len)] ^= xor,
            Mutation::Truncate { at } => frame.truncate(at.index(len + 1)),
            Mutation::Insert { at, bytes } => {
                let at = at.index(len + 1);
                frame.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len: removed } if len > 0 => {
                let at = at.index(len);
                frame.drain(at..(at + removed).min(len));
            }
            Mutation::SpliceVarint {
                at,
                replaced,
                value,
                extra,
            } => {
                let at = at.index(len + 1);
                let end = (at + replaced).min(len);
                frame.splice(at..end, overlong(*value, *extra));
            }
            Mutation::SpliceField { at, width, value } if len >= *width => {
                let at = at.index(len - width + 1);
                frame[at..at + width].copy_from_slice(&value.to_le_bytes()[..*width]);
            }
            _ => {}
        }
    }
}

fn interesting_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -3i64..70,
        1 => Just(i64::from(i32::MAX)),
        1 => Just(i64::from(i32::MAX) + 1),
        1 => Just(i64::from(i32::MIN) - 1),
        1 => any::<i64>(),
    ]
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1..=u8::MAX).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<Index>(), 1usize..8).prop_map(|(at, len)| Mutation::Remove { at, len }),
        3 => (any::<Index>(), 0usize..3, interesting_i64(), prop_oneof![3 => Just(0usize), 1 => 1usize..3])
            .prop_map(|(at, replaced, value, extra)| Mutation::SpliceVarint {
                at,
                replaced,
                value,
                extra,
            }),
        1 => (any::<Index>(), prop::sample::select(vec![1usize, 2, 4, 8]), interesting_i64())
            .prop_map(|(at, width, value)| Mutation::SpliceField {
                at,
                width,
                value: value as u64,
            }),
    ]
}

fn quirks_strategy() -> impl Strategy<Value = Quirks> {
    use prop::option::weighted;
    (
        weighted(0.1, (0usize..64, 1usize..3)),
        weighted(0.1, (0usize..8, 1..=u8::MAX)),
        weighted(0.1, interesting_i64()),
        weighted(0.1, any::<u16>()),
        weighted(0.05, interesting_i64()),
        weighted(0.05, prop_oneof![Just(1u32), Just(u32::MAX), any::<u32>()]),
    )
        .prop_map(
            |(overlong_varint, record_attributes, shift, attributes, max_shift, count_shift)| {
                Quirks {
                    overlong_varint,
                    record_attributes,
                    first_timestamp_shift: shift.unwrap_or(0),
                    batch_attributes: attributes.unwrap_or(0),
                    max_timestamp_shift: max_shift.unwrap_or(0),
                    record_count_shift: count_shift.unwrap_or(0),
                }
            },
        )
}

/// How a mutated frame's header is repaired so that the fuzz gets past the CRCs.
#[derive(Debug, Clone, Copy)]
enum Reseal {
    /// Left as mutated: most inputs fail a CRC.
    No,
    /// Body CRC and header CRC recomputed, `batch_len` left as mutated.
    Crcs,
    /// `batch_len` set to the bytes present, then both CRCs recomputed.
    Full,
}

/// Repairs what `reseal` says, writing the raw header bytes (magic and type may be invalid).
fn reseal(frame: &mut [u8], reseal: Reseal) {
    if frame.len() < HEADER_LEN || matches!(reseal, Reseal::No) {
        return;
    }
    if matches!(reseal, Reseal::Full) {
        let batch_len = (frame.len() - HEADER_LEN) as u32;
        frame[6..10].copy_from_slice(&batch_len.to_le_bytes());
    }
    let batch_len = u32_at(frame, 6) as usize;
    let body_end = HEADER_LEN.saturating_add(batch_len).min(frame.len());
    let crc = crc32fast::hash(&frame[HEADER_LEN..body_end]);
    frame[34..38].copy_from_slice(&crc.to_le_bytes());
    let header_crc = header_crc_of(frame);
    frame[2..6].copy_from_slice(&header_crc.to_le_bytes());
}

fn reseal_strategy() -> impl Strategy<Value = Reseal> {
    prop_oneof![1 => Just(Reseal::No), 1 => Just(Reseal::Crcs), 6 => Just(Reseal::Full)]
}

/// Fuzz inputs: arbitrary bytes, a random body behind a valid header, and valid or quirky
/// batches (data and control) put through byte-level mutations and resealed.
fn fuzz_input_strategy() -> impl Strategy<Value = Vec<u8>> {
    let arbitrary = prop::collection::vec(any::<u8>(), 0..300);
    let random_body = (
        prop_oneof![4 => 1u8..=4, 1 => any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(frame_type, body)| {
            let mut frame = vec![0u8; HEADER_LEN];
            frame[0] = FRAME_MAGIC;
            frame[1] = frame_type;
            frame.extend(body);
            reseal(&mut frame, Reseal::Full);
            frame
        });
    let control = (
        prop::sample::select(vec![
            FrameType::Blank,
            FrameType::Membership,
            FrameType::Command,
        ]),
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..64)],
    )
        .prop_map(|(frame_type, payload)| encode_control_frame(frame_type, &payload));
    let batch = (records_strategy(6), producer_strategy(), quirks_strategy())
        .prop_map(|(records, producer, quirks)| encode_quirky(&records, producer, &quirks));
    let mutated = (
        prop_oneof![1 => control, 6 => batch],
        prop_oneof![2 => Just(Vec::new()), 3 => prop::collection::vec(mutation_strategy(), 1..4)],
        reseal_strategy(),
        prop_oneof![3 => any::<u64>(), 1 => u64::MAX - 8..=u64::MAX],
        any::<bool>(),
    )
        .prop_map(|(mut frame, mutations, how, base_offset, stamped)| {
            if stamped {
                stamp(
                    &mut frame,
                    Offset(base_offset),
                    LogId::new(base_offset / 3, 5),
                );
            }
            for mutation in &mutations {
                mutation.apply(&mut frame);
            }
            reseal(&mut frame, how);
            frame
        });
    prop_oneof![1 => arbitrary, 1 => random_body, 6 => mutated]
}

/// Reads everything a consumer can read from an accepted view; checks that every key and
/// value lies inside the frame.
fn read_all(view: &BatchView) {
    let _ = (
        view.next_offset(),
        view.payload(),
        view.header(),
        view.body(),
    );
    for record in view.records() {
        let Ok(record) = record else { break };
        assert_eq!(record.headers().count(), record.header_count() as usize);
        for slice in [record.key, record.value].into_iter().flatten() {
            assert_eq!(view.slice_ref(slice).as_ref(), slice);
        }
    }
    let _ = view.validate_records();
}

/// Re-encodes an accepted frame from what was decoded: data frames with `BatchBuilder`,
/// control frames with `encode_control_frame`, then stamped with the input's offset, term and
/// index. The result must be the input, byte for byte (the header CRC of an unstamped frame
/// is not checked, so it is compared only when it is right).
fn assert_reencodes(view: &BatchView) -> Result<(), TestCaseError> {
    let frame = view.frame();
    let mut rebuilt = if view.frame_type().is_data() {
        let records: Vec<OwnedRecord> = view
            .records()
            .map(|record| OwnedRecord::from_view(&record.unwrap()))
            .collect();
        build(&records, producer_of(view.body()))
    } else {
        encode_control_frame(view.frame_type(), &view.payload())
    };
    stamp(&mut rebuilt, view.base_offset(), view.header().log_id);
    prop_assert_eq!(&rebuilt[..2], &frame[..2]);
    prop_assert_eq!(&rebuilt[6..], &frame[6..]);
    if FrameHeader::decode(frame).is_ok() {
        prop_assert_eq!(&rebuilt[..], &frame[..]);
    }
    Ok(())
}

/// Runs every decoder entry point over `input`. None may panic; and whatever
/// `parse_unstamped` and `validate_records` accept must re-encode to the same bytes.
fn exercise_decoder(input: &[u8]) -> Result<(), TestCaseError> {
    let _ = FrameHeader::decode(input);
    let _ = FrameHeader::decode_unchecked(input);
    for at in [0, 1, HEADER_LEN, HEADER_LEN + BODY_HEADER_LEN] {
        let mut rest = input.get(at..).unwrap_or_default();
        let _ = varint::decode_i64(&mut rest);
        let _ = varint::decode_i32(&mut rest);
    }
    // Twice over, so that a valid frame is followed by another frame.
    let run = Bytes::from([input, input].concat());
    let mut frames = BatchView::split(&run);
    for frame in frames
        .by_ref()
        .take(run.len() / FRAME_BYTES_MIN as usize + 1)
    {
        match frame {
            Ok(view) => read_all(&view),
            Err(_) => break,
        }
    }
    prop_assert!(frames.next().is_none(), "FrameIter did not stop");
    let bytes = Bytes::copy_from_slice(input);
    if let Ok(view) = BatchView::parse(bytes.clone()) {
        read_all(&view);
    }
    if let Ok(view) = BatchView::parse_unstamped(bytes) {
        read_all(&view);
        if view.validate_records().is_ok() {
            assert_reencodes(&view)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    /// The decoder never panics on any input, and everything it accepts is the canonical
    /// encoding: re-encoding the decoded records gives back the input bytes.
    #[test]
    fn decoder_never_panics_and_accepts_only_canonical_frames(input in fuzz_input_strategy()) {
        exercise_decoder(&input)?;
    }
}

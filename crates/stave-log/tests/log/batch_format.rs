//! The example batch of `docs/batch-format.md`, byte for byte. The dumps below are copied from
//! the document (and checked to be in it), decoded field by field, and rebuilt with
//! `BatchBuilder` and the log, so the document cannot drift from the code.

use std::sync::Arc;

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, BatchView, ProducerFields, Record};
use stave_log::frame::{BODY_HEADER_LEN, FRAME_MAGIC, FrameType, HEADER_LEN};
use stave_log::storage::SimStorage;
use stave_log::{LogConfig, LogId, LogIndex, Offset, PartitionLog, Term};

const DOCUMENT: &str = include_str!("../../../../docs/batch-format.md");

/// The frame as a producer sends it (`ProduceRequest.batch`): offset, term and index zero.
const UNSTAMPED_DUMP: &str = "\
0000  b7 01 1a 94 4f cc 4a 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0020  00 00 b0 ae 92 d9 00 00 01 00 00 00 00 b8 75 bd
0030  9a 01 00 00 05 b8 75 bd 9a 01 00 00 07 00 00 00
0040  00 00 00 00 00 00 2a 00 00 00 02 00 00 00 20 00
0050  00 00 04 75 31 06 61 64 61 02 04 69 64 02 31 20
0060  00 0a 02 04 75 32 06 62 6f 62 02 04 69 64 02 32
";

/// The header of the same frame once a log stored it at offset 2, term 2, index 1.
const STAMPED_HEADER_DUMP: &str = "\
0000  b7 01 c3 54 4f 9e 4a 00 00 00 02 00 00 00 00 00
0010  00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00
0020  00 00 b0 ae 92 d9
";

/// One record of the example; its one header is `id`.
struct Example {
    timestamp: i64,
    key: &'static [u8],
    value: &'static [u8],
    id: &'static [u8],
}

/// The two records of the example.
const RECORDS: [Example; 2] = [
    Example {
        timestamp: 1_764_115_200_000,
        key: b"u1",
        value: b"ada",
        id: b"1",
    },
    Example {
        timestamp: 1_764_115_200_005,
        key: b"u2",
        value: b"bob",
        id: b"2",
    },
];

/// The bytes of a dump: every line is an offset, then up to 16 bytes in hex.
fn bytes_of(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| line.split_whitespace().skip(1))
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect()
}

fn u32_le(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn example_batch() -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    builder.producer(ProducerFields {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: 42,
    });
    for example in &RECORDS {
        builder.push(&Record {
            timestamp: example.timestamp,
            key: Some(example.key),
            value: Some(example.value),
            headers: &[("id", example.id)],
        });
    }
    builder.finish()
}

/// The dumps in this file are the ones the document shows.
#[test]
fn the_document_shows_these_dumps() {
    assert!(
        DOCUMENT.contains(UNSTAMPED_DUMP),
        "docs/batch-format.md lost its example dump"
    );
    assert!(
        DOCUMENT.contains(STAMPED_HEADER_DUMP),
        "docs/batch-format.md lost its stamped header dump"
    );
}

/// `BatchBuilder` writes exactly the example's bytes, and the producer's check accepts them.
#[test]
fn the_builder_writes_the_example_batch() {
    let frame = bytes_of(UNSTAMPED_DUMP);
    assert_eq!(frame.len(), 112);
    assert_eq!(example_batch(), frame);
    BatchView::parse_produced(Bytes::from(frame), u64::MAX).unwrap();
}

/// Every field of the frame header, the body header and the records, as the document lists
/// them, including which bytes each CRC covers.
#[test]
fn the_example_batch_decodes_field_by_field() {
    let frame = bytes_of(UNSTAMPED_DUMP);

    // Frame header: 38 bytes.
    assert_eq!(frame[0], FRAME_MAGIC);
    assert_eq!(frame[0], 0xb7);
    assert_eq!(frame[1], FrameType::Data as u8);
    let header_crc = u32_le(&frame, 2);
    assert_eq!(header_crc, 0xcc4f_941a);
    let mut covered = crc32fast::Hasher::new();
    covered.update(&frame[0..2]);
    covered.update(&frame[6..HEADER_LEN]);
    assert_eq!(covered.finalize(), header_crc);
    let body_crc = u32_le(&frame, 34);
    assert_eq!(body_crc, 0xd992_aeb0);
    assert_eq!(crc32fast::hash(&frame[HEADER_LEN..]), body_crc);
    // CRC-32 as zlib and IEEE 802.3 define it (not Kafka's CRC-32C): its check value.
    assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);

    let view = BatchView::parse_unstamped(Bytes::from(frame.clone())).unwrap();
    let header = view.header();
    assert_eq!(header.frame_type, FrameType::Data);
    assert_eq!(header.batch_len, 74);
    assert_eq!(header.frame_len(), 112);
    assert_eq!(header.base_offset, Offset(0));
    assert_eq!(header.log_id, LogId::new(0, 0));
    assert_eq!(header.crc, body_crc);

    // Body header: 40 bytes.
    let body = view.body();
    assert_eq!(body.attributes, 0);
    assert_eq!(body.last_offset_delta, 1);
    assert_eq!(body.first_timestamp, 1_764_115_200_000);
    assert_eq!(body.max_timestamp, 1_764_115_200_005);
    assert_eq!(body.producer_id, 7);
    assert_eq!(body.producer_epoch, 0);
    assert_eq!(body.base_sequence, 42);
    assert_eq!(body.record_count, 2);

    // Records: 17 bytes each, zigzag varints.
    let payload = view.payload();
    assert_eq!(payload.len(), 34);
    assert_eq!(&payload[..], &frame[HEADER_LEN + BODY_HEADER_LEN..]);
    assert_eq!(
        &payload[..17],
        &[
            0x20, 0x00, 0x00, 0x00, 0x04, b'u', b'1', 0x06, b'a', b'd', b'a', 0x02, 0x04, b'i',
            b'd', 0x02, b'1'
        ]
    );
    assert_eq!(
        &payload[17..],
        &[
            0x20, 0x00, 0x0a, 0x02, 0x04, b'u', b'2', 0x06, b'b', b'o', b'b', 0x02, 0x04, b'i',
            b'd', 0x02, b'2'
        ]
    );
    let records: Vec<_> = view.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    for ((record, example), offset) in records.iter().zip(&RECORDS).zip(0u64..) {
        assert_eq!(record.offset, Offset(offset));
        assert_eq!(record.timestamp, example.timestamp);
        assert_eq!(record.key, Some(example.key));
        assert_eq!(record.value, Some(example.value));
        assert_eq!(record.header_count(), 1);
        assert_eq!(
            record.headers().collect::<Vec<_>>(),
            vec![("id", example.id)]
        );
    }
    view.validate_records().unwrap();
}

/// The log stamps base offset, term and index and recomputes the header CRC; the body, and
/// so the body CRC, stay as the producer wrote them.
#[test]
fn the_log_stamps_the_header_and_keeps_the_body() {
    let frame = bytes_of(UNSTAMPED_DUMP);
    let mut log =
        PartitionLog::open(Arc::new(SimStorage::new()), "/p0", LogConfig::default()).unwrap();
    log.append(&frame, LogId::new(1, 0)).unwrap();
    let appended = log.append(&frame, LogId::new(2, 1)).unwrap();
    assert_eq!(appended.base_offset, Offset(2));
    assert_eq!(appended.next_offset, Offset(4));

    let read = log.read(Offset(2), 1 << 20).unwrap();
    let stored = read.batches().next().unwrap().unwrap();
    let stored = stored.frame().clone();
    let expected_header = bytes_of(STAMPED_HEADER_DUMP);
    assert_eq!(&stored[..HEADER_LEN], &expected_header[..]);
    assert_eq!(&stored[HEADER_LEN..], &frame[HEADER_LEN..]);
    let mut covered = crc32fast::Hasher::new();
    covered.update(&stored[0..2]);
    covered.update(&stored[6..HEADER_LEN]);
    assert_eq!(covered.finalize(), u32_le(&stored, 2));
    assert_eq!(u32_le(&stored, 2), 0x9e4f_54c3);

    let view = BatchView::parse(stored).unwrap();
    assert_eq!(view.base_offset(), Offset(2));
    assert_eq!(view.header().log_id.term, Term(2));
    assert_eq!(view.header().log_id.index, LogIndex(1));
    assert_eq!(view.next_offset(), Offset(4));
    let offsets: Vec<_> = view.records().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, vec![Offset(2), Offset(3)]);
    // `parse` checks the header CRC: a stamped field changed without it is refused.
    let mut damaged = frame.clone();
    damaged[10] = 2;
    assert!(BatchView::parse(Bytes::from(damaged)).is_err());
}

/// Varints are Kafka's zigzag varints: -1 (no key, no value) is one byte 0x01, and a length
/// of 64 or more takes two bytes, low 7 bits first.
#[test]
fn varints_are_zigzag_as_in_kafka() {
    let value = [b'x'; 64];
    let mut builder = BatchBuilder::new();
    for (timestamp, key, value) in [(5, None, None), (4, Some(&b"k"[..]), Some(&value[..]))] {
        builder.push(&Record {
            timestamp,
            key,
            value,
            headers: &[],
        });
    }
    let frame = builder.finish();
    let records = &frame[HEADER_LEN + BODY_HEADER_LEN..];
    // length 6, attributes, timestamp delta 0, offset delta 0, key -1, value -1, no headers.
    assert_eq!(&records[..7], &[0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]);
    // length 72 (0x90 0x01), attributes, timestamp delta -1 (0x01), offset delta 1 (0x02),
    // key length 1 (0x02) and "k", value length 64 (0x80 0x01), then the value.
    assert_eq!(
        &records[7..17],
        &[0x90, 0x01, 0x00, 0x01, 0x02, 0x02, b'k', 0x80, 0x01, b'x']
    );
    let view = BatchView::parse_unstamped(Bytes::from(frame)).unwrap();
    assert_eq!(view.body().first_timestamp, 5);
    assert_eq!(view.body().max_timestamp, 5);
    let records: Vec<_> = view.records().map(Result::unwrap).collect();
    assert_eq!((records[0].key, records[0].value), (None, None));
    assert_eq!(records[1].timestamp, 4);
    assert_eq!(records[1].value, Some(&value[..]));
}

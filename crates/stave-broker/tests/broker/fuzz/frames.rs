//! Produce batches, valid and hostile. A hostile batch starts as a valid frame and is mutated:
//! bytes flipped, cut, joined to another frame, lengths, record counts, offsets, timestamps,
//! types and producer fields lied about; after a body mutation the body CRC is sometimes
//! recomputed, so the checks behind the CRC are reached too. What the broker must answer is
//! computed here with `BatchView::parse_produced`, the same check the broker runs.

use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;
use stave_log::batch::{BatchBuilder, BatchView, ProducerFields, Record};
use stave_log::frame::{BODY_HEADER_LEN, FRAME_BYTES_LIMIT, FrameType, HEADER_LEN};

use super::names::{edge_i64, pick};

/// A record as a consumer sees it: what the model keeps and compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRecord {
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

/// The largest batch a model topic takes (the node's and the topic's default limit).
pub const BATCH_BYTES_MAX: usize = 1 << 20;

/// A batch to produce, with what the broker must make of it.
#[derive(Debug, Clone)]
pub struct Batch {
    pub bytes: Bytes,
    /// The mutations applied, for the failure report.
    pub how: String,
    /// Some: the broker must accept the frame (it passes `parse_produced` and the size
    /// limit), and these are its records. None: it must refuse it.
    pub records: Option<Vec<ModelRecord>>,
    /// The frame is larger than a model topic takes.
    pub too_large: bool,
}

impl Batch {
    fn judge(bytes: Bytes, how: String) -> Batch {
        let too_large = bytes.len() > BATCH_BYTES_MAX;
        let records = if too_large {
            None
        } else {
            BatchView::parse_produced(bytes.clone(), FRAME_BYTES_LIMIT)
                .ok()
                .map(|view| records_of(&view).expect("parse_produced checked every record"))
        };
        Batch {
            bytes,
            how,
            records,
            too_large,
        }
    }

    /// The producer fields of the frame, if its body header is there.
    pub fn producer(&self) -> Option<(i64, i16, i32)> {
        let body = self.bytes.get(HEADER_LEN..HEADER_LEN + BODY_HEADER_LEN)?;
        let producer_id = i64::from_le_bytes(body[22..30].try_into().ok()?);
        let epoch = i16::from_le_bytes(body[30..32].try_into().ok()?);
        let sequence = i32::from_le_bytes(body[32..36].try_into().ok()?);
        Some((producer_id, epoch, sequence))
    }
}

/// The records of a frame, as a consumer decodes them (None if one does not decode).
pub fn records_of(view: &BatchView) -> Option<Vec<ModelRecord>> {
    let mut out = Vec::with_capacity(view.record_count() as usize);
    for record in view.records() {
        let record = record.ok()?;
        out.push(ModelRecord {
            timestamp: record.timestamp,
            key: record.key.map(|k| view.slice_ref(k)),
            value: record.value.map(|v| view.slice_ref(v)),
            headers: record
                .headers()
                .map(|(k, v)| (k.to_string(), view.slice_ref(v)))
                .collect(),
        });
    }
    Some(out)
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random()).collect()
}

/// Random bytes, as many as a draw from `lengths`.
fn some_bytes(rng: &mut StdRng, lengths: std::ops::Range<usize>) -> Vec<u8> {
    let len = rng.random_range(lengths);
    random_bytes(rng, len)
}

/// How big the values of a valid batch are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Small,
    /// One value of about 100 KB.
    Huge,
    /// Past the 1 MiB limit.
    TooLarge,
}

/// A valid batch: 1 to 4 records (sometimes up to 200), keys, values and headers of every
/// shape, timestamps mostly now and sometimes at the edges of `i64`.
pub fn valid_batch(rng: &mut StdRng, size: Size, producer: ProducerFields) -> Batch {
    let count = if rng.random_ratio(1, 50) {
        rng.random_range(1..200)
    } else {
        rng.random_range(1..5)
    };
    let now = crate::support::now_ms();
    let odd_times = rng.random_ratio(1, 10);
    let header_keys = ["id", "", "ключ", "\0", "content-type", "traceparent"];
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let key = if rng.random_bool(0.5) {
            Some(some_bytes(rng, 0..16))
        } else {
            None
        };
        let value_len = match size {
            Size::Huge if index == 0 => 100 * 1024,
            Size::TooLarge if index == 0 => BATCH_BYTES_MAX + rng.random_range(1..1000),
            _ => rng.random_range(0..64),
        };
        let value = (!rng.random_ratio(1, 10)).then(|| random_bytes(rng, value_len));
        let headers: Vec<(String, Vec<u8>)> = (0..rng.random_range(0..3))
            .map(|_| {
                let value_len = rng.random_range(0..16);
                (
                    pick(rng, &header_keys).to_string(),
                    random_bytes(rng, value_len),
                )
            })
            .collect();
        let timestamp = if odd_times { edge_i64(rng) } else { now };
        records.push((timestamp, key, value, headers));
    }
    let mut builder = BatchBuilder::new();
    builder.producer(producer);
    for (timestamp, key, value, headers) in &records {
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        builder.push(&Record {
            timestamp: *timestamp,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &headers,
        });
    }
    Batch::judge(Bytes::from(builder.finish()), String::from("valid"))
}

/// Producer fields a forger would send: ids at the edges or random, any epoch, any sequence.
pub fn forged_producer(rng: &mut StdRng, avoid: i64) -> ProducerFields {
    let producer_id = match rng.random_range(0..6) {
        0 => -1,
        1 => i64::MIN,
        2 => i64::MAX,
        3 => (1 << 40) + rng.random_range(0..4),
        _ => rng.random_range(0..i64::MAX),
    };
    let producer_id = if producer_id == avoid {
        producer_id ^ (1 << 41)
    } else {
        producer_id
    };
    ProducerFields {
        producer_id,
        producer_epoch: {
            let any = rng.random();
            pick(rng, &[0, 1, -1, i16::MAX, i16::MIN, any])
        },
        base_sequence: {
            let any = rng.random();
            pick(rng, &[0, 1, -1, i32::MAX, i32::MAX - 1, i32::MIN, any])
        },
    }
}

fn put_u32(frame: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = frame.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

fn put_u64(frame: &mut [u8], at: usize, value: u64) {
    if let Some(slot) = frame.get_mut(at..at + 8) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// Recomputes the body CRC over the body the header declares (or all after the header,
/// when the declared length does not fit), so the checks behind the CRC run.
fn reseal(frame: &mut [u8]) {
    if frame.len() < HEADER_LEN {
        return;
    }
    let declared =
        HEADER_LEN + u32::from_le_bytes([frame[6], frame[7], frame[8], frame[9]]) as usize;
    let end = if declared <= frame.len() {
        declared
    } else {
        frame.len()
    };
    let crc = crc32fast::hash(&frame[HEADER_LEN..end]);
    put_u32(frame, 34, crc);
}

/// One mutation of `frame`; returns its name. `body` mutations want a reseal to get past the
/// CRC.
fn mutate(rng: &mut StdRng, frame: &mut Vec<u8>) -> (&'static str, bool) {
    let len = frame.len();
    let body = HEADER_LEN;
    match rng.random_range(0..18) {
        0 if len > 0 => {
            let at = rng.random_range(0..len);
            frame[at] ^= 1 << rng.random_range(0..8);
            ("flip a bit", at >= body)
        }
        1 if len > 0 => {
            let at = rng.random_range(0..len);
            frame[at] = rng.random();
            ("set a byte", at >= body)
        }
        2 => {
            frame.truncate(rng.random_range(0..=len));
            ("truncate", false)
        }
        3 => {
            let extra = some_bytes(rng, 1..16);
            frame.extend_from_slice(&extra);
            ("trailing bytes", false)
        }
        4 => {
            let other = valid_batch(rng, Size::Small, ProducerFields::NONE);
            frame.extend_from_slice(&other.bytes);
            ("two frames joined", false)
        }
        5 => {
            let declared = len.saturating_sub(body) as u32;
            let lie = pick(
                rng,
                &[
                    0,
                    1,
                    u32::MAX,
                    declared.wrapping_add(1),
                    declared.wrapping_sub(1),
                ],
            );
            put_u32(frame, 6, lie);
            ("lying batch_len", false)
        }
        6 => {
            let any = rng.random();
            let count = pick(rng, &[0, 1, 2, u32::MAX, any]);
            put_u32(frame, body + 36, count);
            ("lying record_count", true)
        }
        7 => {
            let any = rng.random();
            put_u32(frame, body + 2, pick(rng, &[0, 1, u32::MAX, any]));
            ("lying last_offset_delta", true)
        }
        8 => {
            // Stamped fields a producer leaves zero: base offset, term, index, header CRC.
            let at = pick(rng, &[10, 18, 26]);
            let any = rng.random();
            put_u64(frame, at, pick(rng, &[u64::MAX, 1 << 63, any]));
            put_u32(frame, 2, rng.random());
            ("forged stamps", false)
        }
        9 if len > 1 => {
            frame[1] = rng.random_range(0..8);
            ("frame type", false)
        }
        10 if len > 0 => {
            frame[0] = rng.random();
            ("magic", false)
        }
        11 => {
            let at = body + pick(rng, &[6, 14]);
            put_u64(frame, at, edge_i64(rng) as u64);
            ("timestamp", true)
        }
        12 => {
            if let Some(slot) = frame.get_mut(body..body + 2) {
                slot.copy_from_slice(&rng.random::<u16>().to_le_bytes());
            }
            ("attributes", true)
        }
        13 => {
            let forged = forged_producer(rng, i64::MIN);
            put_u64(frame, body + 22, forged.producer_id as u64);
            if let Some(slot) = frame.get_mut(body + 30..body + 32) {
                slot.copy_from_slice(&forged.producer_epoch.to_le_bytes());
            }
            put_u32(frame, body + 32, forged.base_sequence as u32);
            ("producer fields", true)
        }
        14 => {
            *frame = some_bytes(rng, 0..200);
            ("random bytes", false)
        }
        15 => {
            let kind = pick(
                rng,
                &[FrameType::Blank, FrameType::Membership, FrameType::Command],
            );
            let payload = some_bytes(rng, 0..64);
            *frame = stave_log::frame::encode_control_frame(kind, &payload);
            ("a control frame", false)
        }
        16 if len > body + BODY_HEADER_LEN => {
            // Inside the records: varints, lengths, attributes.
            let at = rng.random_range(body + BODY_HEADER_LEN..len);
            let any = rng.random();
            frame[at] = pick(rng, &[0x00, 0x01, 0x7f, 0x80, 0xff, any]);
            ("a record byte", true)
        }
        _ => {
            frame.clear();
            ("empty", false)
        }
    }
}

/// A hostile batch: a valid one (sometimes with forged producer fields, sometimes huge or
/// too large) given one to three mutations, or none.
pub fn hostile_batch(rng: &mut StdRng, avoid_producer: i64) -> Batch {
    let producer = if rng.random_bool(0.3) {
        forged_producer(rng, avoid_producer)
    } else {
        ProducerFields::NONE
    };
    let size = match rng.random_range(0..200) {
        0 => Size::TooLarge,
        1..=3 => Size::Huge,
        _ => Size::Small,
    };
    let base = valid_batch(rng, size, producer);
    if rng.random_ratio(1, 8) {
        return base;
    }
    let mut frame = base.bytes.to_vec();
    let mut how = Vec::new();
    for _ in 0..rng.random_range(1..4) {
        let (name, in_body) = mutate(rng, &mut frame);
        let resealed = in_body && rng.random_bool(0.6);
        if resealed {
            reseal(&mut frame);
        }
        how.push(if resealed {
            format!("{name} (resealed)")
        } else {
            name.to_string()
        });
    }
    Batch::judge(Bytes::from(frame), how.join(", "))
}

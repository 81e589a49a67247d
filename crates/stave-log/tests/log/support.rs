//! Shared helpers: building frames with known contents, opening logs.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, BatchView, Record};
use stave_log::storage::{FsStorage, Storage};
use stave_log::{LogConfig, Offset, PartitionLog, ReadFrames};

/// A data frame of `count` records whose values are derived from `seed`, so that a reader
/// can check every byte without keeping a copy.
pub fn frame(seed: u64, count: u32, value_len: usize, timestamp: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let value = value_for(seed, i, value_len);
        let key = format!("key-{seed}-{i}");
        builder.push(&Record {
            timestamp: timestamp + i64::from(i),
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[("id", b"x")],
        });
    }
    builder.finish()
}

pub fn value_for(seed: u64, record: u32, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(record);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        extent_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

pub fn open_fs(dir: &Path, config: LogConfig) -> PartitionLog {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    PartitionLog::open(storage, dir, config).unwrap()
}

/// Every record (offset, value) in a read result.
pub fn records(read: &ReadFrames) -> Vec<(Offset, Bytes)> {
    let mut out = Vec::new();
    for batch in read.batches() {
        let batch: BatchView = batch.unwrap();
        for record in batch.records() {
            let record = record.unwrap();
            out.push((record.offset, batch.slice_ref(record.value.unwrap())));
        }
    }
    out
}

/// The bytes the log stores for `frame` (unstamped, as appended) once it stamps it with
/// `log_id` and `base_offset`: what every read must return for it, byte for byte.
pub fn stamped(frame: &[u8], log_id: stave_log::LogId, base_offset: Offset) -> Vec<u8> {
    use stave_log::frame::{FrameHeader, HEADER_LEN};
    let header = FrameHeader::decode_unchecked(frame).unwrap();
    let header = FrameHeader {
        base_offset,
        log_id,
        ..header
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(&frame[HEADER_LEN..]);
    out
}

/// A blank (control) frame whose payload is derived from `seed`, so that no two are alike.
pub fn control_frame(seed: u64, payload_len: usize) -> Vec<u8> {
    use stave_log::frame::{FrameType, encode_control_frame};
    encode_control_frame(FrameType::Blank, &value_for(seed, u32::MAX, payload_len))
}

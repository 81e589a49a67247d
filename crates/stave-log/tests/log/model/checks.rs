//! The checks run after every step: the real log against the model, read by read.

use stave_log::batch::BatchView;
use stave_log::frame::{FrameHeader, FrameType, HEADER_LEN};
use stave_log::{LogId, LogIndex, Offset, StoredFrame, TimestampMs};

use super::Harness;
use super::in_memory::{Entry, Expected, assert_error};

impl Harness {
    pub(super) fn check(&mut self, step: &str) {
        self.check_bounds(step);
        self.check_read_by_index(step);
        self.check_read(step);
        self.check_timestamps(step);
    }

    fn check_bounds(&self, step: &str) {
        let (log, model) = (self.log(), &self.model);
        let state = log.state();
        assert_eq!(state.last_purged, model.last_purged, "{step}: last_purged");
        assert_eq!(state.last, model.last_log_id(), "{step}: last log id");
        assert_eq!(
            log.last_log_id(),
            model.last_log_id(),
            "{step}: last_log_id()"
        );
        assert_eq!(
            log.first_index(),
            LogIndex(model.first_index()),
            "{step}: first_index"
        );
        assert_eq!(
            log.next_index(),
            LogIndex(model.next_index()),
            "{step}: next_index"
        );
        let start = Offset(model.start_offset);
        assert_eq!(log.log_start_offset(), start, "{step}: log_start_offset");
        assert_eq!(state.log_start_offset, start, "{step}: state start");
        let end = Offset(model.end_offset());
        assert_eq!(log.log_end_offset(), end, "{step}: log_end_offset");
        assert_eq!(state.log_end_offset, end, "{step}: state end");
        assert_eq!(
            log.segment_bases(),
            model.segment_bases(),
            "{step}: segments"
        );
        assert_eq!(log.size_bytes(), model.size_bytes(), "{step}: size_bytes");
        let point = model.retention_point(self.retention, self.now());
        assert_eq!(log.retention_point(), point, "{step}: retention_point");
    }

    fn check_read_by_index(&mut self, step: &str) {
        let (first, next) = (self.model.first_index(), self.model.next_index());
        let all = self
            .log()
            .read_by_index(LogIndex(first), LogIndex(next), usize::MAX)
            .unwrap();
        let expected: Vec<&Entry> = self.model.entries().collect();
        assert_eq!(
            all.len(),
            expected.len(),
            "{step}: read_by_index over everything"
        );
        for (frame, entry) in all.iter().zip(&expected) {
            assert_stored_frame(frame, entry, step);
        }
        for _ in 0..4 {
            let from = first + self.check_rand(next - first + 1);
            let until = from + self.check_rand(next - from + 3);
            let bytes_max = [0, 1, 700, 5000][self.check_rand(4) as usize];
            let frames = self
                .log()
                .read_by_index(LogIndex(from), LogIndex(until), bytes_max)
                .unwrap();
            let ids: Vec<LogId> = frames.iter().map(|f| f.log_id).collect();
            let expected: Vec<LogId> = (self.model.read_by_index(from, until, bytes_max))
                .iter()
                .map(|e| e.log_id)
                .collect();
            assert_eq!(
                ids, expected,
                "{step}: read_by_index({from}, {until}, {bytes_max})"
            );
        }
        let mut outside = vec![next + 1];
        if first > 0 {
            outside.push(first - 1);
        }
        for from in outside {
            let err = (self.log())
                .read_by_index(LogIndex(from), LogIndex(next + 5), usize::MAX)
                .expect_err("read_by_index outside the log");
            let expected = Expected::IndexOutOfRange {
                requested: LogIndex(from),
                first: LogIndex(first),
                last_plus_one: LogIndex(next),
            };
            assert_error(&err, &expected, step);
        }
    }

    fn check_read(&mut self, step: &str) {
        let (start, end) = (self.model.start_offset, self.model.end_offset());
        // The whole log, record by record.
        self.check_read_once(start, end, usize::MAX, true, step);
        // From every offset, one frame: the index lookup must find the frame holding it.
        for from in start..=end {
            self.check_read_once(from, end, 1, false, step);
        }
        for _ in 0..4 {
            let from = start + self.check_rand(end - start + 1);
            let until = from + self.check_rand(end - from + 2);
            let bytes_max = [0, 500, 3000, usize::MAX][self.check_rand(4) as usize];
            self.check_read_once(from, until, bytes_max, true, step);
        }
        let mut outside = vec![end + 1];
        if start > 0 {
            outside.push(start - 1);
        }
        for from in outside {
            let err = self
                .log()
                .read(Offset(from), usize::MAX)
                .expect_err("read outside");
            let expected = Expected::OffsetOutOfRange {
                requested: Offset(from),
                log_start: Offset(start),
                log_end: Offset(end),
            };
            assert_error(&err, &expected, step);
        }
    }

    fn check_read_once(&self, from: u64, until: u64, bytes_max: usize, records: bool, step: &str) {
        let what = format!("{step}: read_until({from}, {until}, {bytes_max})");
        let read = self
            .log()
            .read_until(Offset(from), Offset(until), bytes_max)
            .unwrap_or_else(|err| panic!("{what}: {err:?}"));
        let (expected, next) = self.model.read_until(from, until, bytes_max);
        let batches: Vec<BatchView> = read
            .batches()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|err| panic!("{what}: {err:?}"));
        let ids: Vec<LogId> = batches.iter().map(|b| b.header().log_id).collect();
        let expected_ids: Vec<LogId> = expected.iter().map(|e| e.log_id).collect();
        assert_eq!(ids, expected_ids, "{what}: frames");
        assert_eq!(read.next_offset, Offset(next), "{what}: next_offset");
        for (batch, entry) in batches.iter().zip(&expected) {
            assert_eq!(batch.frame_type(), FrameType::Data, "{what}");
            assert_eq!(batch.base_offset(), Offset(entry.base_offset), "{what}");
            assert_eq!(
                &batch.frame()[HEADER_LEN..],
                &entry.frame[HEADER_LEN..],
                "{what}"
            );
            if records {
                assert_records(batch, entry, &what);
            }
        }
    }

    fn check_timestamps(&mut self, step: &str) {
        let timestamps: Vec<TimestampMs> = self
            .model
            .entries()
            .flat_map(|e| e.records.iter().map(|r| r.timestamp))
            .collect();
        let (low, high) = (
            timestamps.iter().copied().min().unwrap_or(0),
            timestamps.iter().copied().max().unwrap_or(0),
        );
        let mut targets = vec![low - 1, low, high, high + 1, TimestampMs::MIN, 0];
        for _ in 0..4 {
            let pick = self.check_rand(timestamps.len() as u64) as usize;
            if let Some(&t) = timestamps.get(pick) {
                targets.extend([t - 1, t, t + 1]);
            }
        }
        for target in targets {
            let found = self.log().offset_for_timestamp(target).unwrap();
            let expected = self.model.offset_for_timestamp(target);
            assert_eq!(found, expected, "{step}: offset_for_timestamp({target})");
        }
    }
}

fn assert_stored_frame(frame: &StoredFrame, entry: &Entry, step: &str) {
    let what = format!("{step}: frame {}", entry.log_id);
    assert_eq!(frame.log_id, entry.log_id, "{what}");
    assert_eq!(frame.frame_type, entry.frame_type, "{what}");
    assert_eq!(frame.base_offset, Offset(entry.base_offset), "{what}");
    assert_eq!(frame.record_count as usize, entry.records.len(), "{what}");
    assert_eq!(frame.bytes.len(), entry.frame.len(), "{what}: length");
    assert_eq!(
        &frame.bytes[HEADER_LEN..],
        &entry.frame[HEADER_LEN..],
        "{what}: body"
    );
    let header = FrameHeader::decode(&frame.bytes)
        .unwrap_or_else(|reason| panic!("{what}: {reason}"))
        .expect("a whole header");
    let unstamped = FrameHeader::decode_unchecked(&entry.frame).expect("built frames decode");
    assert_eq!(header.log_id, entry.log_id, "{what}: stamped log id");
    assert_eq!(
        header.base_offset,
        Offset(entry.base_offset),
        "{what}: stamped offset"
    );
    assert_eq!(header.crc, unstamped.crc, "{what}: body crc kept");
    assert_eq!(header.batch_len, unstamped.batch_len, "{what}");
}

fn assert_records(batch: &BatchView, entry: &Entry, what: &str) {
    let records: Vec<_> = batch
        .records()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|reason| panic!("{what}: {reason}"));
    assert_eq!(records.len(), entry.records.len(), "{what}: record count");
    for (i, (record, expected)) in records.iter().zip(&entry.records).enumerate() {
        assert_eq!(
            record.offset,
            Offset(entry.base_offset + i as u64),
            "{what}"
        );
        assert_eq!(record.timestamp, expected.timestamp, "{what}");
        assert_eq!(record.key, expected.key.as_deref(), "{what}");
        assert_eq!(record.value, Some(expected.value.as_slice()), "{what}");
        let headers: Vec<_> = record.headers().collect();
        assert_eq!(headers, vec![("h", &b"v"[..])], "{what}");
    }
}

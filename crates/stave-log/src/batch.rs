//! Record batches: `BatchBuilder` writes a data frame for a producer, `BatchView` reads one
//! without copying record bytes. Pure: no files, no clock (the client reuses this module).
//!
//! Records follow Kafka's record format v2, with zigzag varints:
//!
//! ```text
//! length           varint   bytes after this field
//! attributes       i8       0
//! timestamp_delta  varlong  against the body's first_timestamp
//! offset_delta     varint   0, 1, 2, ... within the batch
//! key_len          varint   -1 for no key
//! key              bytes
//! value_len        varint   -1 for no value (a tombstone)
//! value            bytes
//! header_count     varint
//! headers          key_len varint, key (UTF-8), value_len varint, value
//! ```
//!
//! Each batch has one accepted encoding, the one `BatchBuilder` writes: shortest varints,
//! record attributes 0, a first record timestamp delta of 0, and no batch attribute but the
//! compression codec. So a batch that passes [`BatchView::validate_records`] re-encodes to the
//! bytes it was read from (the decoder fuzz in `batch/tests.rs` checks this). A view's
//! record offsets and `next_offset` always fit a `u64`.

use bytes::Bytes;

use crate::error::{CorruptReason, LogError};
use crate::frame::{
    ATTR_COMPRESSION_MASK, BODY_HEADER_LEN, BodyHeader, FrameHeader, FrameType, HEADER_LEN,
    check_frame_with, seal_unstamped,
};
use crate::types::{Offset, TimestampMs};
use crate::varint;

/// One record to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: TimestampMs,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// The idempotent producer fields of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    /// A producer that is not idempotent.
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Builds one data frame, record by record, ready for `PartitionLog::append` or the wire.
#[derive(Debug)]
pub struct BatchBuilder {
    frame: Vec<u8>,
    record_count: u32,
    first_timestamp: TimestampMs,
    max_timestamp: TimestampMs,
    producer: ProducerFields,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::with_capacity(4096)
    }

    pub fn with_capacity(bytes: usize) -> Self {
        let mut frame = Vec::with_capacity(bytes.max(HEADER_LEN + BODY_HEADER_LEN));
        frame.resize(HEADER_LEN + BODY_HEADER_LEN, 0);
        BatchBuilder {
            frame,
            record_count: 0,
            first_timestamp: 0,
            max_timestamp: TimestampMs::MIN,
            producer: ProducerFields::NONE,
        }
    }

    pub fn producer(&mut self, producer: ProducerFields) -> &mut Self {
        self.producer = producer;
        self
    }

    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Bytes of the frame so far, header included.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Bytes that pushing `record` would add to the frame.
    pub fn encoded_len(&self, record: &Record<'_>) -> usize {
        let body = record_body_len(
            record,
            self.timestamp_delta(record.timestamp),
            self.record_count,
        );
        varint::len_i64(body as i64) + body
    }

    fn timestamp_delta(&self, timestamp: TimestampMs) -> i64 {
        if self.record_count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.first_timestamp)
        }
    }

    pub fn push(&mut self, record: &Record<'_>) {
        if self.record_count == 0 {
            self.first_timestamp = record.timestamp;
        }
        let timestamp_delta = self.timestamp_delta(record.timestamp);
        let body_len = record_body_len(record, timestamp_delta, self.record_count);
        let out = &mut self.frame;
        varint::encode_i64(body_len as i64, out);
        let start = out.len();
        out.push(0);
        varint::encode_i64(timestamp_delta, out);
        varint::encode_i64(i64::from(self.record_count), out);
        encode_optional_bytes(record.key, out);
        encode_optional_bytes(record.value, out);
        varint::encode_i64(record.headers.len() as i64, out);
        for (key, value) in record.headers {
            encode_optional_bytes(Some(key.as_bytes()), out);
            encode_optional_bytes(Some(value), out);
        }
        debug_assert_eq!(out.len() - start, body_len);
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
    }

    /// Finishes the frame: body header, body CRC, and a header with zero offset, term and
    /// index. Call only with at least one record.
    pub fn finish(mut self) -> Vec<u8> {
        debug_assert!(
            self.record_count > 0,
            "a data frame holds at least one record"
        );
        let body_header = BodyHeader {
            attributes: 0,
            last_offset_delta: self.record_count.saturating_sub(1),
            first_timestamp: self.first_timestamp,
            max_timestamp: if self.record_count == 0 {
                0
            } else {
                self.max_timestamp
            },
            producer_id: self.producer.producer_id,
            producer_epoch: self.producer.producer_epoch,
            base_sequence: self.producer.base_sequence,
            record_count: self.record_count,
        };
        body_header.encode_into(&mut self.frame[HEADER_LEN..HEADER_LEN + BODY_HEADER_LEN]);
        seal_unstamped(&mut self.frame, FrameType::Data);
        self.frame
    }
}

fn optional_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(bytes) => varint::len_i64(bytes.len() as i64) + bytes.len(),
        None => varint::len_i64(-1),
    }
}

fn record_body_len(record: &Record<'_>, timestamp_delta: i64, offset_delta: u32) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(key, value)| optional_len(Some(key.as_bytes())) + optional_len(Some(value)))
        .sum();
    1 + varint::len_i64(timestamp_delta)
        + varint::len_i64(i64::from(offset_delta))
        + optional_len(record.key)
        + optional_len(record.value)
        + varint::len_i64(record.headers.len() as i64)
        + headers
}

fn encode_optional_bytes(bytes: Option<&[u8]>, out: &mut Vec<u8>) {
    match bytes {
        Some(bytes) => {
            varint::encode_i64(bytes.len() as i64, out);
            out.extend_from_slice(bytes);
        }
        None => varint::encode_i64(-1, out),
    }
}

/// A checked view over one frame's bytes. Records are read in place.
#[derive(Debug, Clone)]
pub struct BatchView {
    frame: Bytes,
    header: FrameHeader,
    body: BodyHeader,
}

impl BatchView {
    /// Parses and checks one stored (stamped) frame at the front of `bytes`: header CRC,
    /// length, body CRC and body header. Record bytes are checked while iterating, or all at
    /// once by [`BatchView::validate_records`].
    pub fn parse(bytes: Bytes) -> Result<BatchView, LogError> {
        Self::parse_inner(bytes, true)
    }

    /// Like [`BatchView::parse`], for a frame not yet stamped by the log (as a producer
    /// sends it): the header CRC is not checked.
    pub fn parse_unstamped(bytes: Bytes) -> Result<BatchView, LogError> {
        Self::parse_inner(bytes, false)
    }

    /// Checks a frame exactly as a producer must send it (one `ProduceRequest.batch`): one
    /// unstamped data frame that fills `bytes` (nothing before or after it), at most
    /// `frame_bytes_max` long, whose records all decode ([`BatchView::validate_records`]).
    ///
    /// Whatever passes here, [`crate::PartitionLog::append`] accepts given a log configured
    /// with a `frame_bytes_max` at least as large. The broker relies on that: a frame the log
    /// refused after Raft had taken it would stop the partition's group.
    pub fn parse_produced(bytes: Bytes, frame_bytes_max: u64) -> Result<BatchView, LogError> {
        let invalid = |reason| LogError::InvalidFrame { reason };
        let len = bytes.len() as u64;
        if len > frame_bytes_max {
            return Err(invalid(CorruptReason::LengthOutOfBounds {
                len,
                min: crate::frame::FRAME_BYTES_MIN,
                max: frame_bytes_max,
            }));
        }
        let view = Self::parse_inner(bytes, false)?;
        let trailing = len - view.frame.len() as u64;
        if trailing != 0 {
            return Err(invalid(CorruptReason::BytesAfterFrame(trailing)));
        }
        if !view.frame_type().is_data() {
            return Err(invalid(CorruptReason::NotData(view.frame_type() as u8)));
        }
        view.validate_records()?;
        Ok(view)
    }

    fn parse_inner(bytes: Bytes, stamped: bool) -> Result<BatchView, LogError> {
        Self::parse_with(bytes, stamped, true)
    }

    fn parse_with(
        bytes: Bytes,
        stamped: bool,
        verify_body_crc: bool,
    ) -> Result<BatchView, LogError> {
        let invalid = |reason| LogError::InvalidFrame { reason };
        let (header, body) = check_frame_with(&bytes, stamped, verify_body_crc).map_err(invalid)?;
        // Every record offset and `next_offset` fit a u64 in an accepted view, so no reader
        // computes one with an overflow (a panic in debug builds, a wrong offset in release).
        if header
            .base_offset
            .0
            .checked_add(u64::from(body.record_count))
            .is_none()
        {
            return Err(invalid(CorruptReason::OffsetOverflow {
                base_offset: header.base_offset.0,
                record_count: body.record_count,
            }));
        }
        let frame = bytes.slice(..header.frame_len());
        Ok(BatchView {
            frame,
            header,
            body,
        })
    }

    /// Splits a run of stored frames (as `PartitionLog::read` or a fetch returns them).
    pub fn split(bytes: &Bytes) -> FrameIter {
        FrameIter {
            rest: bytes.clone(),
            verify_body_crc: true,
        }
    }

    /// [`BatchView::split`] for frames the log has just CRC-checked (`PartitionLog::read`):
    /// every other check still runs, but the body CRC is not computed a second time.
    pub(crate) fn split_checked(bytes: &Bytes) -> FrameIter {
        FrameIter {
            rest: bytes.clone(),
            verify_body_crc: false,
        }
    }

    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    pub fn body(&self) -> &BodyHeader {
        &self.body
    }

    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    pub fn frame_type(&self) -> FrameType {
        self.header.frame_type
    }

    pub fn base_offset(&self) -> Offset {
        self.header.base_offset
    }

    /// The offset after this batch's last record.
    pub fn next_offset(&self) -> Offset {
        Offset(self.header.base_offset.0 + u64::from(self.body.record_count))
    }

    pub fn record_count(&self) -> u32 {
        self.body.record_count
    }

    /// The bytes after the body header: records for data frames, the payload of control ones.
    pub fn payload(&self) -> Bytes {
        self.frame.slice(HEADER_LEN + BODY_HEADER_LEN..)
    }

    /// Iterates the records in place. Yields an error (and then stops) on malformed bytes.
    pub fn records(&self) -> RecordIter<'_> {
        let compression = (self.body.attributes & ATTR_COMPRESSION_MASK) as u8;
        let records = &self.frame[HEADER_LEN + BODY_HEADER_LEN..];
        RecordIter {
            rest: records,
            next: 0,
            count: if self.frame_type().is_data() {
                self.body.record_count
            } else {
                0
            },
            base_offset: self.header.base_offset,
            first_timestamp: self.body.first_timestamp,
            error: (compression != 0).then_some(CorruptReason::UnsupportedCompression(compression)),
        }
    }

    /// Checks every record: exactly `record_count` of them, dense offset deltas, nothing
    /// left over, and `max_timestamp` the largest record timestamp. The broker runs this on
    /// produce so that no consumer ever gets a batch it cannot decode.
    ///
    /// Only the encoding `BatchBuilder` writes passes (shortest varints, zero attributes, a
    /// first timestamp delta of 0), so an accepted batch re-encodes to the same bytes. A
    /// control frame passes when its body header is the one `encode_control_frame` writes:
    /// its payload is opaque. Callers that accept only data frames check the type.
    pub fn validate_records(&self) -> Result<(), LogError> {
        let invalid = |reason| LogError::InvalidFrame { reason };
        if !self.frame_type().is_data() {
            return self.validate_control().map_err(invalid);
        }
        let mut max_timestamp = TimestampMs::MIN;
        let mut iter = self.records();
        for (index, record) in iter.by_ref().enumerate() {
            let record = record.map_err(invalid)?;
            // The same timestamps can be written against any first_timestamp; a first delta of
            // 0 (what `BatchBuilder` writes) leaves one encoding per batch.
            if index == 0 && record.timestamp != self.body.first_timestamp {
                return Err(invalid(CorruptReason::BadRecord {
                    record: 0,
                    what: "first record's timestamp delta is not 0",
                }));
            }
            max_timestamp = max_timestamp.max(record.timestamp);
        }
        if !iter.rest.is_empty() {
            return Err(invalid(
                CorruptReason::TrailingBytes(iter.rest.len() as u64),
            ));
        }
        if max_timestamp != self.body.max_timestamp {
            return Err(invalid(CorruptReason::BadRecord {
                record: self.body.record_count,
                what: "max_timestamp is not the largest record timestamp",
            }));
        }
        // Compression bits were refused by `records()`. Any other bit (the control flag, or
        // one not defined yet) carries a meaning this decoder does not know.
        if self.body.attributes & !ATTR_COMPRESSION_MASK != 0 {
            return Err(invalid(CorruptReason::BadAttributes(self.body.attributes)));
        }
        Ok(())
    }

    /// A control frame's payload is opaque (a membership or a command), so only its body
    /// header is checked: it must be the one `encode_control_frame` writes.
    fn validate_control(&self) -> Result<(), CorruptReason> {
        if self.body != BodyHeader::CONTROL {
            return Err(CorruptReason::ControlBodyHeader);
        }
        Ok(())
    }

    /// A zero-copy `Bytes` for a slice of this frame (a record's key or value).
    pub fn slice_ref(&self, subset: &[u8]) -> Bytes {
        self.frame.slice_ref(subset)
    }
}

/// Splits a run of stored frames; yields an error and stops at the first bad one.
#[derive(Debug, Clone)]
pub struct FrameIter {
    rest: Bytes,
    verify_body_crc: bool,
}

impl Iterator for FrameIter {
    type Item = Result<BatchView, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match BatchView::parse_with(self.rest.clone(), true, self.verify_body_crc) {
            Ok(view) => {
                self.rest = self.rest.slice(view.frame.len()..);
                Some(Ok(view))
            }
            Err(err) => {
                self.rest = Bytes::new();
                Some(Err(err))
            }
        }
    }
}

/// One record, borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: Offset,
    pub timestamp: TimestampMs,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: u32,
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    pub fn header_count(&self) -> u32 {
        self.header_count
    }

    /// The record's headers, in order. Checked when the record was decoded.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.headers,
            left: self.header_count,
        }
    }
}

/// Iterates a record's headers as `(key, value)`.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The record decoder checked these bytes; a failure here would be a bug, so end early.
        decode_header(&mut self.rest, 0).ok()
    }
}

#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    next: u32,
    count: u32,
    base_offset: Offset,
    first_timestamp: TimestampMs,
    error: Option<CorruptReason>,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>, CorruptReason>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            self.count = self.next;
            return Some(Err(error));
        }
        if self.next >= self.count {
            return None;
        }
        let mut rest = self.rest;
        let fast =
            fast::decode_record(&mut rest, self.next, self.base_offset, self.first_timestamp);
        if let Some(record) = fast {
            self.rest = rest;
            self.next += 1;
            return Some(Ok(record));
        }
        // Malformed (or rare): the precise decoder names what is wrong.
        let result = decode_record(
            &mut self.rest,
            self.next,
            self.base_offset,
            self.first_timestamp,
        );
        if result.is_err() {
            self.count = self.next;
        } else {
            self.next += 1;
        }
        Some(result)
    }
}

#[inline]
fn take<'a>(buf: &mut &'a [u8], len: usize, record: u32) -> Result<&'a [u8], CorruptReason> {
    if buf.len() < len {
        return Err(CorruptReason::BadRecord {
            record,
            what: "field runs past the record",
        });
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

#[inline]
fn decode_optional<'a>(buf: &mut &'a [u8], record: u32) -> Result<Option<&'a [u8]>, CorruptReason> {
    let len = varint::decode_i32(buf)?;
    match len {
        -1 => Ok(None),
        len if len >= 0 => take(buf, len as usize, record).map(Some),
        _ => Err(CorruptReason::BadRecord {
            record,
            what: "negative length",
        }),
    }
}

#[inline]
fn decode_header<'a>(
    buf: &mut &'a [u8],
    record: u32,
) -> Result<(&'a str, &'a [u8]), CorruptReason> {
    let missing = CorruptReason::BadRecord {
        record,
        what: "null header key or value",
    };
    let key = decode_optional(buf, record)?.ok_or(missing.clone())?;
    let key = std::str::from_utf8(key).map_err(|_| CorruptReason::BadRecord {
        record,
        what: "header key is not UTF-8",
    })?;
    let value = decode_optional(buf, record)?.ok_or(missing)?;
    Ok((key, value))
}

#[inline]
fn decode_record<'a>(
    buf: &mut &'a [u8],
    record: u32,
    base_offset: Offset,
    first_timestamp: TimestampMs,
) -> Result<RecordView<'a>, CorruptReason> {
    let len = varint::decode_i32(buf)?;
    let len = usize::try_from(len).map_err(|_| CorruptReason::BadRecord {
        record,
        what: "negative record length",
    })?;
    let mut body = take(buf, len, record)?;
    if take(&mut body, 1, record)? != [0] {
        // Unused in format v2: a set bit would carry a meaning this decoder does not know.
        return Err(CorruptReason::BadRecord {
            record,
            what: "record attributes are not 0",
        });
    }
    let timestamp_delta = varint::decode_i64(&mut body)?;
    let offset_delta = varint::decode_i32(&mut body)?;
    if offset_delta != record as i32 {
        return Err(CorruptReason::BadRecord {
            record,
            what: "offset delta out of sequence",
        });
    }
    let key = decode_optional(&mut body, record)?;
    let value = decode_optional(&mut body, record)?;
    let header_count = varint::decode_i32(&mut body)?;
    let header_count = u32::try_from(header_count).map_err(|_| CorruptReason::BadRecord {
        record,
        what: "negative header count",
    })?;
    let headers = body;
    for _ in 0..header_count {
        decode_header(&mut body, record)?;
    }
    if !body.is_empty() {
        return Err(CorruptReason::BadRecord {
            record,
            what: "bytes left inside the record",
        });
    }
    Ok(RecordView {
        offset: Offset(base_offset.0 + u64::from(record)),
        timestamp: first_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        header_count,
        headers,
    })
}

#[cfg(test)]
mod tests;

/// The record decoder's fast path: the same checks as `decode_record`, with failures as
/// `None` (small return values, no error to build), so the precise decoder runs only on bad
/// input. Every acceptance here must be an acceptance there: `decode_record` is the reference.
mod fast {
    use super::RecordView;
    use crate::types::{Offset, TimestampMs};
    use crate::varint;

    #[inline(always)]
    fn varint(buf: &mut &[u8]) -> Option<i64> {
        varint::decode_i64(buf).ok()
    }

    #[inline(always)]
    fn take<'a>(buf: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
        let (head, tail) = buf.split_at_checked(len)?;
        *buf = tail;
        Some(head)
    }

    #[inline(always)]
    fn optional<'a>(buf: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
        let len = i32::try_from(varint(buf)?).ok()?;
        match len {
            -1 => Some(None),
            len => take(buf, usize::try_from(len).ok()?).map(Some),
        }
    }

    #[inline(always)]
    pub(super) fn decode_record<'a>(
        buf: &mut &'a [u8],
        record: u32,
        base_offset: Offset,
        first_timestamp: TimestampMs,
    ) -> Option<RecordView<'a>> {
        let len = usize::try_from(i32::try_from(varint(buf)?).ok()?).ok()?;
        let mut body = take(buf, len)?;
        if take(&mut body, 1)? != [0] {
            return None;
        }
        let timestamp_delta = varint(&mut body)?;
        let offset_delta = i32::try_from(varint(&mut body)?).ok()?;
        if offset_delta != record as i32 {
            return None;
        }
        let key = optional(&mut body)?;
        let value = optional(&mut body)?;
        let header_count = u32::try_from(i32::try_from(varint(&mut body)?).ok()?).ok()?;
        let headers = body;
        for _ in 0..header_count {
            std::str::from_utf8(optional(&mut body)??).ok()?;
            optional(&mut body)??;
        }
        if !body.is_empty() {
            return None;
        }
        Some(RecordView {
            offset: Offset(base_offset.0 + u64::from(record)),
            timestamp: first_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            header_count,
            headers,
        })
    }
}

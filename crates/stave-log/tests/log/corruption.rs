//! Damaged files on a real disk (`FsStorage` in a temporary directory), written while the log
//! is closed: flipped bytes, files cut short, garbage after the last frame, damaged `meta`
//! slots, missing and damaged indexes.
//!
//! The rule throughout: a frame is served whole and exactly as appended, or not at all.
//! Damage at the end of the tail segment looks like a torn write: recovery cuts the log before
//! the first bad frame, zeroes everything after it, and appends continue there. Damage anywhere
//! else is corruption: either opening fails, or reading the damaged range does, with
//! `LogError::Corrupt`.

use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use stave_log::frame::{FrameHeader, FrameType, HEADER_LEN};
use stave_log::{LogConfig, LogError, LogId, LogIndex, Offset, PartitionLog};

use crate::support::{control_frame, frame, open_fs, stamped};

/// One frame as the log must serve it.
#[derive(Debug, Clone)]
struct Written {
    id: LogId,
    frame_type: FrameType,
    base_offset: Offset,
    record_count: u32,
    stored: Vec<u8>,
}

impl Written {
    fn next_offset(&self) -> Offset {
        Offset(self.base_offset.0 + u64::from(self.record_count))
    }
}

/// Small segments, so that a few dozen frames fill several; no flusher thread.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_ms: None,
        extent_bytes: 4096,
        index_interval_bytes: 256,
        background_flusher: false,
        ..LogConfig::default()
    }
}

/// Frame number `n`'s shape: mostly data frames of one to three records of varying sizes,
/// every fifth a control frame. `small` makes every frame about 130 bytes.
fn frame_for(n: u64, small: bool) -> Vec<u8> {
    if n % 5 == 4 {
        return control_frame(n, 8);
    }
    if small {
        return frame(n, 1, 30, 1_000 + n as i64);
    }
    let count = 1 + (n % 3) as u32;
    let value_len = 20 + (n * 37 % 180) as usize;
    frame(n, count, value_len, 1_000 + n as i64 * 10)
}

/// Appends `bytes` as the next entry, in the last entry's term (1 for the first), and returns
/// what the log must serve for it.
fn append(log: &mut PartitionLog, bytes: &[u8]) -> Written {
    let term = log.last_log_id().map_or(1, |id| id.term.0);
    let id = LogId::new(term, log.next_index().0);
    let appended = log.append(bytes, id).unwrap();
    let (_, body) = stave_log::frame::check_frame(bytes, false).unwrap();
    let header = FrameHeader::decode_unchecked(bytes).unwrap();
    Written {
        id,
        frame_type: header.frame_type,
        base_offset: appended.base_offset,
        record_count: body.record_count,
        stored: stamped(bytes, id, appended.base_offset),
    }
}

/// Writes frames until the log holds `segments` segments and the tail holds
/// `tail_frames` frames, the last one small. Closes the log.
fn write_log(dir: &Path, segments: usize, tail_frames: usize, small: bool) -> Vec<Written> {
    let mut log = open_fs(dir, config());
    let mut written = Vec::new();
    let mut n = 0;
    while log.segment_bases().len() < segments {
        written.push(append(&mut log, &frame_for(n, small)));
        n += 1;
    }
    for i in 1..tail_frames {
        let last = i + 1 == tail_frames;
        written.push(append(&mut log, &frame_for(n, small || last)));
        n += 1;
    }
    assert_eq!(log.segment_bases().len(), segments, "the tail rolled over");
    log.close().unwrap();
    written
}

/// The segment files in `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
}

fn index_file(segment: &Path) -> PathBuf {
    segment.with_extension("index")
}

/// Where each frame of a segment file starts, and its length: every frame that decodes,
/// from the 64-byte segment header on.
fn frame_spans(segment: &Path) -> Vec<(usize, usize)> {
    let bytes = fs::read(segment).unwrap();
    let mut spans = Vec::new();
    let mut at = 64;
    while let Ok(Some(header)) = FrameHeader::decode(&bytes[at..]) {
        spans.push((at, header.frame_len()));
        at += header.frame_len();
    }
    spans
}

/// Every file of a directory, to put back between damages.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            (
                PathBuf::from(path.file_name().unwrap()),
                fs::read(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn restore(dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
    for entry in fs::read_dir(dir).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

fn flip_byte(path: &Path, at: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn write_at(path: &Path, at: usize, data: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at..at + data.len()].copy_from_slice(data);
    fs::write(path, bytes).unwrap();
}

fn set_len(path: &Path, len: usize) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len as u64).unwrap();
}

fn is_corrupt<T: Debug>(result: &Result<T, LogError>) -> bool {
    matches!(result, Err(LogError::Corrupt { .. }))
}

/// Checks that `log` holds exactly `expected` (its whole range, from its first index): its
/// bounds, every frame by Raft index (as a run and one by one) and every data frame by offset,
/// each byte for byte.
fn assert_serves(log: &PartitionLog, expected: &[Written]) {
    let first = log.first_index();
    let next = LogIndex(first.0 + expected.len() as u64);
    assert_eq!(log.next_index(), next, "next index");
    if let Some(last) = expected.last() {
        assert_eq!(log.last_log_id(), Some(last.id));
        assert_eq!(log.log_end_offset(), last.next_offset(), "log end offset");
    }
    let frames = log.read_by_index(first, next, usize::MAX).unwrap();
    assert_eq!(frames.len(), expected.len(), "frames read by index");
    for (frame, written) in frames.iter().zip(expected) {
        assert_eq!(frame.log_id, written.id);
        assert_eq!(frame.frame_type, written.frame_type);
        assert_eq!(frame.base_offset, written.base_offset);
        assert!(
            frame.bytes[..] == written.stored[..],
            "bytes of {}",
            written.id
        );
    }
    for written in expected {
        let one = log.read_by_index(written.id.index, next, 1).unwrap();
        assert!(
            one[0].bytes[..] == written.stored[..],
            "bytes of {}",
            written.id
        );
    }
    let data: Vec<&Written> = expected.iter().filter(|w| w.frame_type.is_data()).collect();
    let mut served = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let read = log.read(from, 1).unwrap();
        assert!(!read.is_empty(), "nothing at offset {from}");
        for batch in read.batches() {
            served.push(batch.unwrap().frame().clone());
        }
        from = read.next_offset;
    }
    assert_eq!(served.len(), data.len(), "data frames read by offset");
    for (bytes, written) in served.iter().zip(&data) {
        assert!(bytes[..] == written.stored[..], "bytes of {}", written.id);
    }
}

/// Reopens the log in `dir` (whose tail was damaged) and checks that recovery cut it right
/// after `all[..kept]`: those are served, nothing after; the tail file holds only zeros after
/// them; an append takes the next index and offset, and survives another reopen.
fn assert_recovers_to(dir: &Path, all: &[Written], kept: usize) {
    let mut log = open_fs(dir, config());
    assert_serves(&log, &all[..kept]);
    if let Some(cut) = all.get(kept) {
        assert_eq!(
            log.next_index(),
            cut.id.index,
            "appends continue at the cut"
        );
        assert_eq!(log.log_end_offset(), cut.base_offset);
    }
    let tail = segment_files(dir).pop().unwrap();
    let spans = frame_spans(&tail);
    let end = spans.last().map_or(64, |(at, len)| at + len);
    let bytes = fs::read(&tail).unwrap();
    assert!(
        bytes[end..].iter().all(|&b| b == 0),
        "bytes after the last frame of the tail are not zeroed"
    );
    let extra = append(&mut log, &frame(999, 2, 40, 99_999));
    let expected_offset = all[..kept].last().map_or(Offset(0), Written::next_offset);
    assert_eq!(extra.base_offset, expected_offset);
    log.close().unwrap();
    let log = open_fs(dir, config());
    let mut expected = all[..kept].to_vec();
    expected.push(extra);
    assert_serves(&log, &expected);
}

/// Warnings logged on this thread while `body` runs.
fn warnings_during<T>(body: impl FnOnce() -> T) -> (T, Vec<String>) {
    let recorder = WarnRecorder::default();
    let messages = recorder.messages.clone();
    let out = tracing::subscriber::with_default(recorder, body);
    let messages = messages.lock().unwrap().clone();
    (out, messages)
}

/// A `tracing` subscriber that keeps the message of every warning and error.
#[derive(Default)]
struct WarnRecorder {
    messages: Arc<Mutex<Vec<String>>>,
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for WarnRecorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        self.messages.lock().unwrap().push(visitor.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A log written once, kept as files; each case damages a fresh copy.
struct Fixture {
    _pristine: tempfile::TempDir,
    files: Vec<(PathBuf, Vec<u8>)>,
    all: Vec<Written>,
    work: tempfile::TempDir,
}

impl Fixture {
    /// Two segments, the tail holding `tail_frames` frames.
    fn new(tail_frames: usize, small: bool) -> Fixture {
        let pristine = tempfile::tempdir().unwrap();
        let all = write_log(pristine.path(), 2, tail_frames, small);
        let files = snapshot(pristine.path());
        Fixture {
            _pristine: pristine,
            files,
            all,
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh copy of the log; returns its tail segment file and the last frame's span.
    fn fresh(&self) -> (PathBuf, (usize, usize)) {
        restore(self.work.path(), &self.files);
        let tail = segment_files(self.work.path()).pop().unwrap();
        let last = *frame_spans(&tail).last().unwrap();
        (tail, last)
    }

    fn dir(&self) -> &Path {
        self.work.path()
    }
}

/// (a) A byte flipped in the tail segment's last frame (in its magic, type, header CRC,
/// length, offset, term, index, body CRC and body): reopening cuts the log before that frame
/// and says so, serves every earlier frame and nothing after, and appends continue at its
/// index and offset.
#[test]
fn a_flipped_byte_in_the_tail_cuts_the_log_before_that_frame() {
    let fixture = Fixture::new(5, false);
    let (_, (_, len)) = fixture.fresh();
    let kept = fixture.all.len() - 1;
    for at in [
        0,
        1,
        3,
        7,
        12,
        20,
        28,
        35,
        HEADER_LEN,
        HEADER_LEN + 37,
        len / 2,
        len - 1,
    ] {
        let (tail, (start, _)) = fixture.fresh();
        flip_byte(&tail, start + at, 0x04);
        let ((), warnings) =
            warnings_during(|| assert_recovers_to(fixture.dir(), &fixture.all, kept));
        assert!(
            !warnings.is_empty(),
            "flip at byte {at} of the frame: the cut was not reported"
        );
    }
}

/// (b) The tail file cut short in the middle of its last frame (in its header, in its body,
/// one byte short), while the log is closed: reopening cuts before that frame and says so,
/// serves every earlier frame, and appends continue at its index and offset.
#[test]
fn a_tail_file_cut_short_mid_frame_loses_only_that_frame() {
    let fixture = Fixture::new(5, false);
    let (_, (_, len)) = fixture.fresh();
    let kept = fixture.all.len() - 1;
    for cut in [1, HEADER_LEN - 1, HEADER_LEN + 10, len / 2, len - 1] {
        let (tail, (start, _)) = fixture.fresh();
        set_len(&tail, start + cut);
        let ((), warnings) =
            warnings_during(|| assert_recovers_to(fixture.dir(), &fixture.all, kept));
        assert!(
            !warnings.is_empty(),
            "cut at byte {cut} of the frame: not reported"
        );
    }
}

/// (c) The normal case: after the last frame, the tail's reserved space holds only zeros.
/// Reopening cuts nothing, writes nothing to the segment, warns about nothing, serves
/// everything, and appends continue after the last frame.
#[test]
fn a_zero_filled_reserved_tail_is_the_clean_end_of_the_log() {
    let fixture = Fixture::new(5, false);
    let (tail, (start, len)) = fixture.fresh();
    let before = fs::read(&tail).unwrap();
    assert!(
        before.len() > start + len,
        "the tail has reserved space after its last frame"
    );
    assert!(before[start + len..].iter().all(|&b| b == 0));
    let (log, warnings) = warnings_during(|| open_fs(fixture.dir(), config()));
    assert!(warnings.is_empty(), "a clean reopen warned: {warnings:?}");
    assert_serves(&log, &fixture.all);
    drop(log);
    assert!(
        fs::read(&tail).unwrap() == before,
        "a clean reopen rewrote the segment"
    );
    assert_recovers_to(fixture.dir(), &fixture.all, fixture.all.len());
}

/// (c) Garbage after the tail's last complete frame: random bytes, a stale copy of an
/// earlier frame (valid CRCs, wrong index), one stray byte deep in the reserved space.
/// Reopening keeps every frame, zeroes the garbage, and appends continue after the last frame.
#[test]
fn garbage_after_the_last_frame_is_cut_and_zeroed() {
    let fixture = Fixture::new(5, false);
    let all = &fixture.all;
    let noise: Vec<u8> = (0..200u32).map(|i| (i * 89 + 7) as u8 | 1).collect();
    let stale = all[all.len() - 3].stored.clone();
    let (_, (start, len)) = fixture.fresh();
    let end = start + len;
    let cases: [(&str, usize, &[u8]); 3] = [
        ("random bytes", end, &noise),
        ("a stale frame", end, &stale),
        ("a stray byte", 4000, &[0x5a]),
    ];
    for (what, at, garbage) in cases {
        let (tail, _) = fixture.fresh();
        write_at(&tail, at, garbage);
        let ((), warnings) = warnings_during(|| assert_recovers_to(fixture.dir(), all, all.len()));
        assert!(
            !warnings.is_empty(),
            "{what} after the last frame: not reported"
        );
    }
}

/// STYLE.md §6.4: the tail's last frame cut at every one of its bytes, by shortening the file
/// there or by zeroing from there to the file's end, for a tail of several frames and for a
/// tail whose only frame is that one. Every complete frame before it is served, the cut frame
/// is not (unless the zeroed bytes were zeros already), and appends continue at its index.
#[test]
fn the_last_frame_cut_at_every_byte_leaves_every_complete_frame_before_it() {
    for (tail_frames, small) in [(4, false), (1, true)] {
        let fixture = Fixture::new(tail_frames, small);
        let (_, (start, len)) = fixture.fresh();
        let last = fixture.all.last().unwrap().stored.clone();
        for at in 0..len {
            for zero in [false, true] {
                let (tail, _) = fixture.fresh();
                if zero {
                    let file_len = fs::metadata(&tail).unwrap().len() as usize;
                    write_at(&tail, start + at, &vec![0; file_len - start - at]);
                } else {
                    set_len(&tail, start + at);
                }
                let intact = zero && last[at..].iter().all(|&b| b == 0);
                let kept = fixture.all.len() - usize::from(!intact);
                assert_recovers_to(fixture.dir(), &fixture.all, kept);
            }
        }
    }
}

/// A log of four segments for damaging sealed segments; each case damages a fresh copy.
fn sealed_fixture() -> Fixture {
    let pristine = tempfile::tempdir().unwrap();
    let all = write_log(pristine.path(), 4, 3, false);
    let files = snapshot(pristine.path());
    Fixture {
        _pristine: pristine,
        files,
        all,
        work: tempfile::tempdir().unwrap(),
    }
}

/// The sealed length of the segment before `successor`, as `successor`'s header records it.
fn sealed_len(successor: &Path) -> usize {
    let bytes = fs::read(successor).unwrap();
    u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize
}

/// (d) A byte flipped inside the oldest (sealed) segment, at positions across its header,
/// its frames and the reserved space after them: opening succeeds or fails with
/// `LogError::Corrupt`; if it succeeds, reading the damaged frame (by Raft index, by offset,
/// or in a run from the log start) fails with `LogError::Corrupt`, and every read that
/// succeeds returns the bytes appended, never the damaged ones.
#[test]
fn a_flipped_byte_in_a_sealed_segment_is_never_served() {
    let fixture = sealed_fixture();
    let all = &fixture.all;
    restore(fixture.dir(), &fixture.files);
    let segments = segment_files(fixture.dir());
    let (oldest, successor) = (&segments[0], &segments[1]);
    let spans = frame_spans(oldest);
    let sealed = sealed_len(successor);
    assert_eq!(spans.last().map(|(at, len)| at + len), Some(sealed));
    let mut positions: Vec<usize> = (0..64).step_by(5).collect();
    positions.extend((64..sealed).step_by(11));
    positions.extend(spans.iter().flat_map(|&(at, len)| [at, at + len - 1]));
    positions.extend([sealed, sealed + 100]);
    let file_len = fs::metadata(oldest).unwrap().len() as usize;
    positions.retain(|&at| at < file_len);
    let mut opened = 0;
    for at in positions {
        restore(fixture.dir(), &fixture.files);
        flip_byte(oldest, at, 0x20);
        let log = PartitionLog::open(
            Arc::new(stave_log::storage::FsStorage),
            fixture.dir(),
            config(),
        );
        let log = match log {
            Ok(log) => log,
            Err(LogError::Corrupt { .. }) => continue,
            Err(err) => panic!("flip at {at}: open failed with {err}, not Corrupt"),
        };
        opened += 1;
        let damaged = spans
            .iter()
            .position(|&(start, len)| (start..start + len).contains(&at))
            .map(|i| &all[i]);
        assert_never_serves_damage(&log, all, damaged, at);
    }
    assert!(
        opened > 0,
        "every flip made open fail: reads were never tried"
    );
}

/// Reads every frame of `all` by Raft index and by offset, and all of them in one run: the
/// `damaged` frame must read as `Corrupt`; any read that succeeds returns the appended bytes.
fn assert_never_serves_damage(
    log: &PartitionLog,
    all: &[Written],
    damaged: Option<&Written>,
    at: usize,
) {
    let next = log.next_index();
    for written in all {
        let by_index = log.read_by_index(written.id.index, next, 1);
        let by_offset = written
            .frame_type
            .is_data()
            .then(|| log.read(written.base_offset, 1));
        let is_damaged = damaged.is_some_and(|d| d.id == written.id);
        if is_damaged {
            assert!(
                is_corrupt(&by_index),
                "flip at {at}: {} read by index",
                written.id
            );
            if let Some(by_offset) = &by_offset {
                assert!(
                    is_corrupt(by_offset),
                    "flip at {at}: {} read by offset",
                    written.id
                );
            }
        }
        if let Ok(frames) = &by_index {
            assert!(
                frames[0].bytes[..] == written.stored[..],
                "flip at {at}: {}",
                written.id
            );
        } else {
            assert!(is_corrupt(&by_index), "flip at {at}: {by_index:?}");
        }
        match by_offset {
            Some(Ok(read)) => {
                let batch = read.batches().next().unwrap().unwrap();
                assert!(
                    batch.frame()[..] == written.stored[..],
                    "flip at {at}: {}",
                    written.id
                );
            }
            Some(other) => assert!(is_corrupt(&other), "flip at {at}: {other:?}"),
            None => {}
        }
    }
    let run = log.read_by_index(log.first_index(), next, usize::MAX);
    let scan = log.read(log.log_start_offset(), usize::MAX);
    if damaged.is_some() {
        assert!(
            is_corrupt(&run),
            "flip at {at}: a run over the damage read {run:?}"
        );
        assert!(
            is_corrupt(&scan),
            "flip at {at}: a scan over the damage read fine"
        );
    } else {
        assert_serves(log, all);
    }
}

/// (e) The oldest (sealed) segment's file cut short: inside its header, right after it,
/// after its first frame, in the middle of a frame, one byte before its sealed end. Opening
/// fails with `LogError::Corrupt`: the successor records how long it was, so nothing is
/// guessed. Cutting only the reserved zeros after the sealed end loses nothing.
#[test]
fn a_sealed_segment_cut_short_fails_open_as_corrupt() {
    let fixture = sealed_fixture();
    restore(fixture.dir(), &fixture.files);
    let segments = segment_files(fixture.dir());
    let oldest = segments[0].clone();
    let sealed = sealed_len(&segments[1]);
    let (first_at, first_len) = frame_spans(&oldest)[0];
    for len in [
        10,
        64,
        first_at + first_len,
        first_at + first_len + 50,
        sealed - 1,
    ] {
        restore(fixture.dir(), &fixture.files);
        set_len(&oldest, len);
        let result = PartitionLog::open(
            Arc::new(stave_log::storage::FsStorage),
            fixture.dir(),
            config(),
        );
        assert!(
            is_corrupt(&result),
            "oldest segment cut to {len} bytes: {result:?}"
        );
    }
    restore(fixture.dir(), &fixture.files);
    set_len(&oldest, sealed);
    assert_serves(&open_fs(fixture.dir(), config()), &fixture.all);
}

/// A log whose `meta` file has had two stores: creation (sequence 1, slot B) and a purge to
/// index 2 (sequence 2, slot A), which deleted no segment.
fn purged_fixture() -> (tempfile::TempDir, Vec<Written>) {
    let dir = tempfile::tempdir().unwrap();
    let all = write_log(dir.path(), 3, 2, false);
    let mut log = open_fs(dir.path(), config());
    log.purge_to(LogIndex(2)).unwrap();
    assert_eq!(
        log.segment_bases()[0],
        LogIndex(0),
        "the purge deleted nothing"
    );
    log.close().unwrap();
    (dir, all)
}

const SLOT_A: usize = 0;
const SLOT_B: usize = 64;

/// (f) One damaged `meta` slot. With the older one (B, the creation) damaged, the newer one
/// is used: the log starts after the purge. With the newer one (A, the purge) damaged, the
/// older one is used: the log starts at 0 again, and every frame is still there to serve.
#[test]
fn a_damaged_meta_slot_falls_back_to_the_other() {
    let (dir, all) = purged_fixture();
    let meta = dir.path().join("meta");
    let pristine = fs::read(&meta).unwrap();
    flip_byte(&meta, SLOT_B + 20, 0x01);
    let log = open_fs(dir.path(), config());
    assert_eq!(log.first_index(), LogIndex(3));
    assert_eq!(log.state().last_purged, Some(all[2].id));
    assert_eq!(log.log_start_offset(), all[2].next_offset());
    assert_serves(&log, &all[3..]);
    drop(log);
    fs::write(&meta, &pristine).unwrap();
    flip_byte(&meta, SLOT_A + 20, 0x01);
    let log = open_fs(dir.path(), config());
    assert_eq!(log.first_index(), LogIndex(0));
    assert_eq!(log.state().last_purged, None);
    assert_serves(&log, &all);
}

/// (f) Both `meta` slots damaged: opening fails with `LogError::Corrupt` rather than guess
/// where the log starts.
#[test]
fn both_meta_slots_damaged_fail_open_as_corrupt() {
    let (dir, _) = purged_fixture();
    let meta = dir.path().join("meta");
    flip_byte(&meta, SLOT_A + 20, 0x01);
    flip_byte(&meta, SLOT_B + 9, 0x80);
    let result = PartitionLog::open(
        Arc::new(stave_log::storage::FsStorage),
        dir.path(),
        config(),
    );
    assert!(is_corrupt(&result), "{result:?}");
}

/// (f) The newer `meta` slot damaged after a purge that deleted whole segments: the older
/// slot points below the first segment left. Opening may fail with `LogError::Corrupt`, but
/// must never serve a log with a hole in it.
#[test]
fn a_damaged_newest_meta_slot_after_deleting_segments_never_serves_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let all = write_log(dir.path(), 4, 2, false);
    let mut log = open_fs(dir.path(), config());
    let second = log.segment_bases()[1];
    log.purge_to(second).unwrap();
    assert!(
        log.segment_bases()[0] > LogIndex(0),
        "the purge deleted a segment"
    );
    log.close().unwrap();
    let meta = dir.path().join("meta");
    flip_byte(&meta, SLOT_A + 20, 0x01);
    match PartitionLog::open(
        Arc::new(stave_log::storage::FsStorage),
        dir.path(),
        config(),
    ) {
        Ok(log) => {
            let first = log.first_index().0 as usize;
            assert_serves(&log, &all[first..]);
        }
        Err(err) => assert!(matches!(err, LogError::Corrupt { .. }), "{err}"),
    }
}

/// (g) A sealed segment's `.index` missing, or replaced by garbage (random bytes, all ones,
/// another segment's index, its own entries shifted by one): the log opens and serves exactly
/// the frames appended, by Raft index and by offset.
#[test]
fn a_missing_or_garbage_sealed_index_is_rebuilt() {
    let fixture = sealed_fixture();
    restore(fixture.dir(), &fixture.files);
    let segments = segment_files(fixture.dir());
    let index = index_file(&segments[1]);
    let original = fs::read(&index).unwrap();
    let other = fs::read(index_file(&segments[0])).unwrap();
    let random: Vec<u8> = (0..original.len() as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 29) as u8)
        .collect();
    let shifted = original[24..].to_vec();
    let cases: [(&str, Option<&[u8]>); 5] = [
        ("missing", None),
        ("random bytes", Some(&random)),
        ("all ones", Some(&[0xff; 4096])),
        ("another segment's index", Some(&other)),
        ("entries shifted by one", Some(&shifted)),
    ];
    for (what, content) in cases {
        restore(fixture.dir(), &fixture.files);
        match content {
            None => fs::remove_file(&index).unwrap(),
            Some(bytes) => fs::write(&index, bytes).unwrap(),
        }
        let log = PartitionLog::open(
            Arc::new(stave_log::storage::FsStorage),
            fixture.dir(),
            config(),
        )
        .unwrap_or_else(|err| panic!("index {what}: open failed: {err}"));
        assert_serves(&log, &fixture.all);
        for written in &fixture.all {
            let frames = log
                .read_by_index(written.id.index, log.next_index(), 1)
                .unwrap();
            assert_eq!(frames[0].log_id, written.id, "index {what}");
        }
    }
}

/// (g) One bit flipped in one entry of a sealed segment's `.index` (its offset, its Raft index
/// or its file position; any entry but the last, which opening checks against the frames).
/// Opening succeeds or fails with `LogError::Corrupt`; after it, a read by offset returns the
/// frame holding that offset and a read by Raft index the frame with that index, or
/// `LogError::Corrupt`: never a later frame, which would skip records silently.
#[test]
fn a_flipped_bit_in_a_sealed_index_never_misdirects_reads() {
    let fixture = sealed_fixture();
    restore(fixture.dir(), &fixture.files);
    let segments = segment_files(fixture.dir());
    let index = index_file(&segments[1]);
    let entries = fs::read(&index)
        .unwrap()
        .chunks_exact(24)
        .take_while(|entry| entry.iter().any(|&b| b != 0))
        .count();
    assert!(entries >= 3, "the segment has middle index entries");
    let mut misdirected = Vec::new();
    for entry in 1..entries - 1 {
        for field in [0, 4, 8] {
            for bit in 0..8 {
                restore(fixture.dir(), &fixture.files);
                flip_byte(&index, entry * 24 + field, 1 << bit);
                let log = match PartitionLog::open(
                    Arc::new(stave_log::storage::FsStorage),
                    fixture.dir(),
                    config(),
                ) {
                    Ok(log) => log,
                    Err(LogError::Corrupt { .. }) => continue,
                    Err(err) => panic!("open failed with {err}, not Corrupt"),
                };
                let case = format!("entry {entry}, byte {field}, bit {bit}");
                misdirected.extend(misdirected_reads(&log, &fixture.all, &case));
            }
        }
    }
    assert!(
        misdirected.is_empty(),
        "{} reads returned another frame than the one asked for, e.g. {:?}",
        misdirected.len(),
        &misdirected[..misdirected.len().min(5)]
    );
}

/// Reads each record's offset and each Raft index on its own; describes every read that
/// returned something other than the frame holding it (a `Corrupt` error is fine).
fn misdirected_reads(log: &PartitionLog, all: &[Written], case: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let next = log.next_index();
    for written in all {
        match log.read_by_index(written.id.index, next, 1) {
            Ok(frames)
                if frames
                    .first()
                    .is_some_and(|f| f.bytes[..] == written.stored[..]) => {}
            Ok(frames) => wrong.push(format!(
                "{case}: read_by_index({}) returned {:?}",
                written.id.index,
                frames.first().map(|f| f.log_id)
            )),
            Err(LogError::Corrupt { .. }) => {}
            Err(err) => panic!("{case}: read_by_index failed with {err}"),
        }
        for offset in written.base_offset.0..written.next_offset().0 {
            match log.read(Offset(offset), 1) {
                Ok(read) => {
                    let first = read.batches().next().map(|b| b.unwrap().frame().clone());
                    if first.as_deref() != Some(&written.stored[..]) {
                        let got = first.map(|bytes| {
                            let header = FrameHeader::decode(&bytes).unwrap().unwrap();
                            header.base_offset
                        });
                        wrong.push(format!(
                            "{case}: read({offset}) returned the frame at offset {got:?}, not {}",
                            written.base_offset
                        ));
                    }
                }
                Err(LogError::Corrupt { .. }) => {}
                Err(err) => panic!("{case}: read failed with {err}"),
            }
        }
    }
    wrong
}

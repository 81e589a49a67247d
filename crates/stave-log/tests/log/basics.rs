//! Append, read, reopen, truncate, purge on real files.

use stave_log::{LogId, LogIndex, Offset};

use crate::support::{frame, open_fs, records, small_config, value_for};

/// Appends across several segments, reads every record back by offset and by index, and
/// finds the same after a reopen.
#[test]
fn appended_records_read_back_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_fs(dir.path(), small_config());
    for i in 0..50u64 {
        let appended = log
            .append(&frame(i, 3, 100, 1000 + i as i64), LogId::new(1, i))
            .unwrap();
        assert_eq!(appended.base_offset, Offset(i * 3));
    }
    assert!(
        log.segment_bases().len() >= 3,
        "segments: {:?}",
        log.segment_bases()
    );
    let check = |log: &stave_log::PartitionLog| {
        let mut from = Offset(0);
        let mut seen = Vec::new();
        while from < log.log_end_offset() {
            let read = log.read(from, 1000).unwrap();
            assert!(!read.is_empty());
            from = read.next_offset;
            seen.extend(records(&read));
        }
        assert_eq!(seen.len(), 150);
        for (n, (offset, value)) in seen.iter().enumerate() {
            assert_eq!(*offset, Offset(n as u64));
            assert_eq!(
                value.as_ref(),
                value_for(n as u64 / 3, (n % 3) as u32, 100).as_slice()
            );
        }
        let frames = log
            .read_by_index(LogIndex(10), LogIndex(20), usize::MAX)
            .unwrap();
        assert_eq!(frames.len(), 10);
        assert_eq!(frames[0].log_id, LogId::new(1, 10));
        assert_eq!(frames[0].base_offset, Offset(30));
    };
    check(&log);
    log.close().unwrap();
    let log = open_fs(dir.path(), small_config());
    assert_eq!(log.last_log_id(), Some(LogId::new(1, 49)));
    check(&log);
}

/// Truncation removes the tail for good, and purge moves the start.
#[test]
fn truncate_and_purge_move_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_fs(dir.path(), small_config());
    for i in 0..40u64 {
        log.append(&frame(i, 2, 200, i as i64), LogId::new(1 + i / 20, i))
            .unwrap();
    }
    log.truncate_after(Some(LogIndex(24))).unwrap();
    assert_eq!(log.next_index(), LogIndex(25));
    assert_eq!(log.log_end_offset(), Offset(50));
    log.append(&frame(99, 1, 10, 5), LogId::new(3, 25)).unwrap();
    log.purge_to(LogIndex(9)).unwrap();
    assert_eq!(log.log_start_offset(), Offset(20));
    assert!(log.read(Offset(19), 100).is_err());
    drop(log);
    let log = open_fs(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), Offset(20));
    assert_eq!(log.last_log_id(), Some(LogId::new(3, 25)));
    let read = log.read(Offset(50), 10_000).unwrap();
    assert_eq!(
        records(&read)[0].1.as_ref(),
        value_for(99, 0, 10).as_slice()
    );
    assert_eq!(log.offset_for_timestamp(12).unwrap(), Some(Offset(23)));
}

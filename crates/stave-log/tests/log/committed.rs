//! Recovery keeps what Raft committed (issue 15): a torn or corrupt tail is cut only above
//! the persisted commit index. A log that would lose a committed entry is not opened.

use std::path::Path;

use stave_log::{CorruptReason, LogError, LogId, LogIndex, Offset, PartitionLog};

use crate::support::{frame, open_fs, records, small_config};

/// Ten frames (indexes 0..=9), synced, in `dir`; returns the tail segment's path.
fn ten_frames(dir: &Path) -> std::path::PathBuf {
    let mut log = open_fs(dir, small_config());
    for i in 0..10 {
        log.append(&frame(i, 1, 20, 1_000), LogId::new(1, i))
            .unwrap();
    }
    log.flush().unwrap();
    log.close().unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

/// Flips the last non-zero byte of `path`: inside the last frame.
fn damage_last_frame(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[last] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

fn open(dir: &Path, committed: Option<u64>) -> Result<PartitionLog, LogError> {
    let storage: std::sync::Arc<dyn stave_log::storage::Storage> =
        std::sync::Arc::new(stave_log::storage::FsStorage);
    PartitionLog::open_keeping(storage, dir, small_config(), committed.map(LogIndex))
}

fn lost(result: Result<PartitionLog, LogError>) -> (LogIndex, LogIndex) {
    match result {
        Err(LogError::Corrupt {
            reason:
                CorruptReason::CommittedEntryLost {
                    index, committed, ..
                },
            ..
        }) => (index, committed),
        other => panic!("expected CommittedEntryLost, got {other:?}"),
    }
}

/// A damaged last entry above the commit index is cut as before; at the commit index the
/// log is not opened, and nothing is cut (a later open without the floor still finds it).
#[test]
fn a_damaged_tail_is_cut_only_above_the_commit_index() {
    let dir = tempfile::tempdir().unwrap();
    let tail = ten_frames(dir.path());
    damage_last_frame(&tail);
    let before = std::fs::read(&tail).unwrap();

    assert_eq!(lost(open(dir.path(), Some(9))), (LogIndex(9), LogIndex(9)));
    assert_eq!(
        std::fs::read(&tail).unwrap(),
        before,
        "a refused open changed the file"
    );

    let log = open(dir.path(), Some(8)).unwrap();
    assert_eq!(log.next_index(), LogIndex(9));
    assert_eq!(records(&log.read(Offset(0), 1 << 20).unwrap()).len(), 9);
}

/// A log that ends (cleanly) below the commit index lost committed entries whole: it is not
/// opened either.
#[test]
fn a_log_ending_below_the_commit_index_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    ten_frames(dir.path());
    assert_eq!(
        lost(open(dir.path(), Some(12))),
        (LogIndex(10), LogIndex(12))
    );
    assert_eq!(
        open(dir.path(), Some(9)).unwrap().next_index(),
        LogIndex(10)
    );
}

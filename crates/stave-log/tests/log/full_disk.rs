//! A full disk is an answer, not a death (issue 15): an append that cannot get its space is
//! refused with `StorageFull` before anything is written, the log keeps serving and keeps
//! running, and the same append succeeds once space is freed. ENOSPC is injected at every
//! kind of write the log makes: a segment's data extent, a roll's new files, the index, and
//! the `meta` slots.

use std::path::Path;
use std::sync::Arc;

use stave_log::storage::{SimOp, SimStorage, Storage};
use stave_log::{LogConfig, LogError, LogId, LogIndex, Offset, PartitionLog};

use crate::support::{frame, records};

const DIR: &str = "/full";

/// Which operations on which paths fail with ENOSPC.
type Fault = fn(&Path, SimOp) -> bool;

fn config(reserve_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 10,
        extent_bytes: 64 << 10,
        index_interval_bytes: 1024,
        reserve_bytes,
        background_flusher: false,
        ..LogConfig::default()
    }
}

fn open(sim: &SimStorage, config: LogConfig) -> PartitionLog {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    PartitionLog::open(storage, DIR, config).unwrap()
}

fn append(log: &mut PartitionLog, seed: u64) -> Result<stave_log::Appended, LogError> {
    let bytes = frame(seed, 4, 500, 1_000 + seed as i64);
    let id = LogId::new(1, log.next_index().0);
    log.append(&bytes, id)
}

fn assert_full(result: Result<stave_log::Appended, LogError>, what: &str) {
    match result {
        Err(LogError::StorageFull { .. }) => {}
        other => panic!("{what}: expected StorageFull, got {other:?}"),
    }
}

/// Every value the log serves, in offset order.
fn served(log: &PartitionLog) -> usize {
    let read = log.read(Offset(0), usize::MAX).unwrap();
    let all = records(&read);
    for (i, (offset, _)) in all.iter().enumerate() {
        assert_eq!(offset.0, i as u64, "offsets are dense from the log start");
    }
    all.len()
}

/// Appends until the disk refuses one; returns how many went in.
fn fill(log: &mut PartitionLog) -> u64 {
    for seed in 0..10_000 {
        match append(log, seed) {
            Ok(_) => {}
            Err(LogError::StorageFull { .. }) => return seed,
            Err(other) => panic!("append {seed}: {other}"),
        }
    }
    panic!("the disk never filled");
}

/// Appends fill a small disk until one is refused with `StorageFull`; nothing of it is
/// written, reads serve every acknowledged record, and once space is freed the same append
/// and more succeed, without reopening the log.
#[test]
fn a_full_disk_refuses_appends_until_space_is_freed() {
    let sim = SimStorage::new();
    sim.set_capacity(Some(2 << 20));
    let mut log = open(&sim, config(0));
    let written = fill(&mut log);
    assert!(written > 100, "only {written} appends fit in 2 MiB");
    let next = log.next_index();
    assert_full(append(&mut log, written), "again");
    assert_eq!(log.next_index(), next, "a refused append leaves nothing");
    assert_eq!(served(&log), written as usize * 4);
    log.flush().unwrap();

    sim.set_capacity(Some(4 << 20));
    for seed in written..written + 50 {
        append(&mut log, seed).unwrap();
    }
    log.flush().unwrap();
    assert_eq!(served(&log), (written as usize + 50) * 4);
    drop(log);
    let reopened = open(&sim, config(0));
    assert_eq!(served(&reopened), (written as usize + 50) * 4);
}

/// The reserve is left alone: appends stop while the free space is above it, and a log
/// with no reserve (the controller's) can still grow into it.
#[test]
fn appends_leave_the_reserve_free() {
    let sim = SimStorage::new();
    let reserve = 512 << 10;
    sim.set_capacity(Some(2 << 20));
    let mut log = open(&sim, config(reserve));
    fill(&mut log);
    let free = sim.available_bytes(Path::new(DIR)).unwrap();
    assert!(
        free >= reserve,
        "appends dug into the reserve: {free} bytes free"
    );
    match append(&mut log, 99_999) {
        Err(LogError::StorageFull {
            reserve_bytes,
            available_bytes,
            ..
        }) => {
            assert_eq!(reserve_bytes, reserve);
            assert_eq!(available_bytes, free);
        }
        other => panic!("expected StorageFull, got {other:?}"),
    }
    drop(log);
    let mut unreserved = open(&sim, config(0));
    append(&mut unreserved, 100_000).unwrap();
}

/// An extent that does not fit is reserved smaller, down to what the append needs: a 16 MiB
/// extent must not refuse a small batch on a disk with 1 MiB free.
#[test]
fn an_extent_that_does_not_fit_is_reserved_smaller() {
    let sim = SimStorage::new();
    sim.set_capacity(Some(3 << 20));
    let config = LogConfig {
        extent_bytes: 16 << 20,
        segment_bytes: 64 << 20,
        ..config(0)
    };
    let mut log = open(&sim, config);
    let written = fill(&mut log);
    let used = sim.used_bytes();
    assert!(
        used > (3 << 20) - (16 << 10),
        "appends stopped with {} bytes free after {written}",
        (3 << 20) - used
    );
}

/// ENOSPC where each kind of write takes space: the data extent of the tail, a roll's new
/// segment file, the index. Each time the append is refused with `StorageFull`, the log
/// keeps its records and keeps running, and the append goes in once the fault is gone.
#[test]
fn no_space_at_every_kind_of_append_write_is_an_answer() {
    let kinds: [(&str, Fault); 4] = [
        ("data extent", |path, op| {
            op == SimOp::Allocate && path.extension().is_some_and(|e| e == "log")
        }),
        ("roll", |path, op| {
            op == SimOp::Create && path.extension().is_some_and(|e| e == "log")
        }),
        ("new index", |path, op| {
            op == SimOp::Create && path.extension().is_some_and(|e| e == "index")
        }),
        ("index extent", |path, op| {
            op == SimOp::Allocate && path.extension().is_some_and(|e| e == "index")
        }),
    ];
    for (what, fault) in kinds {
        let sim = SimStorage::new();
        let mut log = open(&sim, config(0));
        let mut acknowledged = 0;
        let mut refused = 0;
        sim.fail_with_no_space(Some(fault));
        // Enough appends to cross extents and segments: each kind of write is met.
        for seed in 0..600 {
            match append(&mut log, seed) {
                Ok(_) => acknowledged += 1,
                Err(LogError::StorageFull { .. }) => {
                    refused += 1;
                    sim.fail_with_no_space(None::<Fault>);
                    append(&mut log, seed).unwrap_or_else(|err| panic!("{what}: {err}"));
                    acknowledged += 1;
                    sim.fail_with_no_space(Some(fault));
                }
                Err(other) => panic!("{what}: the log failed instead of answering: {other}"),
            }
        }
        assert!(refused > 0, "{what}: the fault was never met");
        log.flush().unwrap();
        assert_eq!(served(&log), acknowledged * 4, "{what}");
        sim.fail_with_no_space(None::<Fault>);
        drop(log);
        assert_eq!(
            served(&open(&sim, config(0))),
            acknowledged * 4,
            "{what}: reopened"
        );
    }
}

/// A roll that finds no space after part of an append went into the old segment takes that
/// part back: an append is all or nothing, and its retry is not out of sequence.
#[test]
fn an_append_cut_short_by_a_roll_is_taken_back() {
    let sim = SimStorage::new();
    let mut log = open(&sim, config(0));
    // Close to the end of the first segment.
    let mut seed = 0;
    while log.segment_bases().len() == 1 {
        let bytes = frame(seed, 4, 500, 1_000);
        if log.would_roll(4 * bytes.len() as u64) {
            break;
        }
        append(&mut log, seed).unwrap();
        seed += 1;
    }
    let before = log.next_index();
    let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(1_000 + i, 4, 500, 1_000)).collect();
    let ids: Vec<LogId> = (0..8).map(|i| LogId::new(1, before.0 + i)).collect();
    sim.fail_with_no_space(Some(|path: &Path, op| {
        op == SimOp::Create && path.extension().is_some_and(|e| e == "log")
    }));
    let result = log.append_all(frames.iter().map(Vec::as_slice).zip(ids.iter().copied()));
    assert!(
        matches!(result, Err(LogError::StorageFull { .. })),
        "{result:?}"
    );
    assert_eq!(log.next_index(), before, "part of the append stayed");
    sim.fail_with_no_space(None::<Fault>);
    log.append_all(frames.iter().map(Vec::as_slice).zip(ids.iter().copied()))
        .unwrap();
    assert_eq!(log.next_index(), LogIndex(before.0 + 8));
    log.flush().unwrap();
    assert_eq!(served(&log), (seed as usize + 8) * 4);
}

/// The `meta` slots take their space when the log is created: a purge on a disk with no
/// byte free still moves the log start. A store that fails anyway is refused with
/// `StorageFull` and the log keeps running.
#[test]
fn the_log_start_moves_on_a_full_disk() {
    let sim = SimStorage::new();
    let mut log = open(&sim, config(0));
    for seed in 0..400 {
        append(&mut log, seed).unwrap();
    }
    log.flush().unwrap();
    assert!(log.segment_bases().len() > 2);
    sim.set_capacity(Some(sim.used_bytes()));
    let second = log.segment_bases()[1];
    log.purge_to(LogIndex(second.0 - 1)).unwrap();
    assert_eq!(log.segment_bases()[0], second);

    sim.fail_with_no_space(Some(|path: &Path, op| {
        op == SimOp::Write && path.file_name().is_some_and(|n| n == "meta")
    }));
    let third = log.segment_bases()[1];
    let purge = log.purge_to(LogIndex(third.0 - 1));
    assert!(
        matches!(purge, Err(LogError::StorageFull { .. })),
        "{purge:?}"
    );
    assert_eq!(
        log.segment_bases()[0],
        second,
        "a refused purge moved the start"
    );
    sim.fail_with_no_space(None::<Fault>);
    log.purge_to(LogIndex(third.0 - 1)).unwrap();
    sim.set_capacity(None);
    append(&mut log, 400).unwrap();
}

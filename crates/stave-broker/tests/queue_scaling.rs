//! Queue groups hand work to whoever is free: a member ten times slower gets at most a fifth
//! of what each fast one gets; and they scale past the partition count: eight members on
//! one partition, each sleeping 1 ms per record, get through records at least six times as
//! fast as one. A binary of its own: it times things, so no other test's load blurs them.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "broker/queue_support.rs"]
mod queue_support;
#[allow(dead_code)]
#[path = "broker/support.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stave_client::{QueueConsumer, QueuedRecord, Settle};

use crate::queue_support::{from_start, join, publish, rust_client};
use crate::support::{WAIT, cluster, create_topic, wait_for_leaders};

/// Records per second `members` members (sleeping `work` per record, acking every batch
/// of up to 8) get through `total` records of a 1-partition topic; and how many each got.
async fn run_members(
    addr: &str,
    topic: &str,
    members: usize,
    total: usize,
    work: Duration,
) -> (f64, Vec<u64>) {
    create_topic(addr, topic, 1, 1, &[]).await;
    wait_for_leaders(addr, topic).await;
    publish(addr, topic, total, |_| None).await;
    let client = rust_client(addr).await;
    let group = format!("{topic}.workers");
    let mut joined = Vec::new();
    for _ in 0..members {
        joined.push(join(&client, &group, topic, from_start(8)).await);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for member in joined {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = 0u64;
            let deadline = Instant::now() + WAIT * 2;
            while done.load(Ordering::SeqCst) < total {
                assert!(
                    Instant::now() < deadline,
                    "the group did not finish in time"
                );
                let records = member.fetch(8, Duration::from_millis(100)).await.unwrap();
                for _ in &records {
                    tokio::time::sleep(work).await;
                }
                let acks: Vec<(&QueuedRecord, Settle)> =
                    records.iter().map(|r| (r, Settle::Ack)).collect();
                if !acks.is_empty() {
                    for answer in member.settle(&acks).await.unwrap() {
                        answer.unwrap();
                    }
                }
                got += records.len() as u64;
                done.fetch_add(records.len(), Ordering::SeqCst);
            }
            member.close().await.unwrap();
            got
        }));
    }
    let mut per_member = Vec::new();
    for task in tasks {
        per_member.push(task.await.unwrap());
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    (rate, per_member)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_beyond_the_partition_count_all_work() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    let work = Duration::from_millis(1);
    let (one, _) = run_members(addr, "v1.scale.one", 1, 400, work).await;
    let (eight, per_member) = run_members(addr, "v1.scale.eight", 8, 3_200, work).await;
    assert!(
        per_member.iter().all(|got| *got > 0),
        "every member of eight on one partition got work: {per_member:?}"
    );
    assert!(
        eight >= 6.0 * one,
        "8 members: {eight:.0} records/s, 1 member: {one:.0} records/s (at least 6x expected)"
    );
}

/// What members acknowledged: offset → how many times, and per member how many.
#[derive(Default)]
struct Tally {
    acked: BTreeMap<u64, u32>,
    per_member: HashMap<usize, u64>,
}

/// A member that takes one record at a time (credit 1), works `work` on it, and acks it,
/// until `total` records are acknowledged by the group.
async fn worker(
    member: QueueConsumer,
    index: usize,
    work: Duration,
    tally: Arc<Mutex<Tally>>,
    total: usize,
) -> QueueConsumer {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        if tally.lock().unwrap().acked.len() >= total {
            return member;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not finish in time"
        );
        let records = member.fetch(1, Duration::from_millis(100)).await.unwrap();
        for record in records {
            tokio::time::sleep(work).await;
            member.ack(&record).await.unwrap();
            let mut tally = tally.lock().unwrap();
            *tally.acked.entry(record.offset).or_default() += 1;
            *tally.per_member.entry(index).or_default() += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_follows_speed() {
    let nodes = cluster(1).await;
    let addr = &nodes[0].addr;
    create_topic(addr, "v1.mail.send", 1, 1, &[]).await;
    wait_for_leaders(addr, "v1.mail.send").await;
    let total = 300;
    publish(addr, "v1.mail.send", total, |_| None).await;
    let client = rust_client(addr).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    // Member 0 takes ten times longer per record than members 1 and 2 (long enough that a
    // fetch and an ack per record, up to ~15 ms in a debug build on a busy machine, do
    // not blur it).
    for (index, work_ms) in [(0, 200), (1, 20), (2, 20)] {
        let member = join(&client, "mailer", "v1.mail.send", from_start(1)).await;
        tasks.push(tokio::spawn(worker(
            member,
            index,
            Duration::from_millis(work_ms),
            tally.clone(),
            total,
        )));
    }
    for task in tasks {
        task.await.unwrap().close().await.unwrap();
    }
    let tally = tally.lock().unwrap();
    assert_eq!(tally.acked.len(), total, "every record acknowledged");
    assert!(
        tally.acked.values().all(|times| *times == 1),
        "each record acknowledged once"
    );
    let slow = tally.per_member[&0];
    for fast in [1, 2] {
        let got = tally.per_member[&fast];
        assert!(
            slow * 5 <= got,
            "the slow member got {slow}, a fast one {got}: at most a fifth expected"
        );
    }
}

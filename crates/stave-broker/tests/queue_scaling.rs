//! Queue groups scale past the partition count: eight members on one partition, each
//! sleeping 1 ms per record, get through records at least six times as fast as one. A
//! binary of its own: it times things, so no other test shares the machine with it.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "broker/queue_support.rs"]
mod queue_support;
#[allow(dead_code)]
#[path = "broker/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stave_client::{QueuedRecord, Settle};

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

//! SIGKILL mid-produce: every acknowledged record survives, exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stave_proto::v1 as pb;

use crate::support::{client, code, create_topic, read_all, seed_batch, start, wait_ready};

/// Produces seeds from `next` in `lanes` concurrent loops until stopped; records what was
/// acknowledged (seed → offset) and announces how many on `count`.
async fn produce_until_killed(
    addr: String,
    topic: &'static str,
    next: Arc<AtomicU64>,
    lanes: usize,
    acked: Arc<std::sync::Mutex<BTreeMap<u64, u64>>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
) {
    let tasks = (0..lanes).map(|_| {
        let addr = addr.clone();
        let next = next.clone();
        let acked = acked.clone();
        let count = count.clone();
        tokio::spawn(async move {
            let mut api = client(&addr);
            loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                let request = pb::ProduceRequest {
                    sequence: seed,
                    topic: topic.into(),
                    partition: 0,
                    batch: seed_batch(seed),
                };
                match api.produce(request).await {
                    Ok(response) if code(&response.get_ref().error) == pb::ErrorCode::None => {
                        let acknowledged = {
                            let mut acked = acked.lock().unwrap();
                            acked.insert(seed, response.get_ref().base_offset);
                            acked.len()
                        };
                        count.send_replace(acknowledged);
                    }
                    // The server is gone: this lane is done.
                    Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
    });
    futures_util::future::join_all(tasks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_produce_keeps_every_acknowledged_record_once() {
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 1);
    wait_ready(&servers).await;
    let addr = servers[0].addr.clone();
    create_topic(&addr, "v1.crash", 1, &[("flush", "always")]).await;

    for round in 0..3 {
        let next = Arc::new(AtomicU64::new(1_000_000 * round));
        let acked = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let (count, mut acknowledged) = tokio::sync::watch::channel(0);
        let producing = tokio::spawn(produce_until_killed(
            addr.clone(),
            "v1.crash",
            next.clone(),
            8,
            acked.clone(),
            Arc::new(count),
        ));
        // Kill once a few hundred writes were acknowledged.
        acknowledged
            .wait_for(|n| *n >= 200 + 100 * round as usize)
            .await
            .expect("the producers stopped before the kill");
        servers[0].kill();
        producing.await.unwrap();
        servers[0].restart();
        wait_ready(&servers).await;

        let records = read_all(&addr, "v1.crash", 0, 0).await;
        let mut held: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (offset, seed) in &records {
            held.entry(*seed).or_default().push(*offset);
        }
        for (seed, offset) in acked.lock().unwrap().iter() {
            assert_eq!(
                held.get(seed).map(Vec::as_slice),
                Some(&[*offset][..]),
                "round {round}: acknowledged record {seed} at {offset}"
            );
        }
        // Offsets are dense: no hole, nothing twice.
        for (expected, (offset, _)) in records.iter().enumerate() {
            assert_eq!(
                *offset, expected as u64,
                "round {round}: offsets have a hole"
            );
        }
    }
}

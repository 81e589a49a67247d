//! A frozen partition leader (SIGSTOP: its sockets still accept, nothing answers) costs a
//! producer about one election, not its whole delivery timeout: each attempt is bounded,
//! the client moves to the new leader, and resends with the same producer sequence, so every
//! record is written exactly once (issue 15, item 6).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stave_client::{
    Client, ClientConfig, ConsumerConfig, ProducerConfig, ProducerRecord, RecordMetadata,
    StartPosition,
};
use stave_proto::v1 as pb;

use crate::support::{
    Server, WAIT, client, create_topic, eventually, init_tracing, start, wait_ready,
};

/// `stave produce`'s delivery timeout (the CLI's `--timeout` default).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until partition 0 of `topic` has a leader and all three replicas in sync, asking
/// `addr`: the node to freeze next is then not needed for a majority.
async fn leader_in_sync(addr: &str, topic: &str) -> u64 {
    eventually("partition 0 led, with 3 replicas in sync", || async {
        let answer = client(addr)
            .metadata(pb::MetadataRequest {
                topics: vec![topic.into()],
            })
            .await
            .ok()?
            .into_inner();
        let partition = answer.topics.first()?.partitions.first()?.clone();
        assert_eq!(partition.replicas.len(), 3, "replication factor 3");
        (partition.in_sync.len() == 3)
            .then_some(partition.leader)
            .flatten()
    })
    .await
}

/// The leader of partition 0 as `addr` sees it, once it is not `old`.
async fn leader_other_than(addr: &str, topic: &str, old: u64) -> u64 {
    eventually("a new leader for partition 0", || async {
        let answer = client(addr)
            .metadata(pb::MetadataRequest {
                topics: vec![topic.into()],
            })
            .await
            .ok()?
            .into_inner();
        answer
            .topics
            .first()?
            .partitions
            .first()?
            .leader
            .filter(|l| *l != old)
    })
    .await
}

/// Every value of `topic`/`partition` from offset 0 up to its high watermark, in offset
/// order, read with the Rust client through `bootstrap`.
async fn read_values(bootstrap: &str, topic: &str, partition: u32) -> Vec<String> {
    let stave = Client::connect(ClientConfig::new(bootstrap).unwrap())
        .await
        .unwrap();
    let end = stave
        .admin()
        .list_offsets(topic, partition, StartPosition::Latest)
        .await
        .unwrap();
    let mut consumer = stave.consumer(ConsumerConfig::default());
    consumer
        .assign(topic, partition, StartPosition::Earliest)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut values = Vec::new();
    let mut next_offset = 0;
    while next_offset < end {
        assert!(Instant::now() < deadline, "read {next_offset} of {end}");
        let Some(record) = consumer.poll(Duration::from_secs(1)).await.unwrap() else {
            continue;
        };
        assert_eq!(record.offset, next_offset, "offsets are dense");
        next_offset = record.offset + 1;
        values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
    }
    values
}

/// Runs `stave --bootstrap <bootstrap> <args>` with `input` on standard input; the process
/// is killed if it is still running after `WAIT` (it must end well before).
async fn stave_with_input(bootstrap: &str, args: &[&str], input: String) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stave"))
        .args(["--bootstrap", bootstrap])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let (done, output) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = match tokio::time::timeout(WAIT, output).await {
        Ok(output) => output.unwrap().unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the child this test started; it has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("stave {args:?} still running after {WAIT:?}");
        }
    };
    writer.join().unwrap().unwrap();
    output
}

/// The index of the server with node id `id`.
fn index_of(servers: &[Server], id: u64) -> usize {
    servers.iter().position(|s| s.id == id).unwrap()
}

/// `stave produce` (default 10 s delivery timeout) of 200 records to a partition whose
/// leader is frozen before the command starts, with the frozen node first in the bootstrap
/// list: the command succeeds well within its timeout through the new leader, and after the
/// old leader continues, the partition holds every record exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stave_produce_to_a_frozen_leader_completes_through_the_new_leader() {
    const TOPIC: &str = "v1.frozen.cli";
    const RECORDS: usize = 200;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 3);
    wait_ready(&servers).await;
    create_topic(&servers[0].addr, TOPIC, 1, &[]).await;
    let leader = leader_in_sync(&servers[0].addr, TOPIC).await;
    let frozen_index = index_of(&servers, leader);
    // The frozen node first: the client's first request goes to it.
    let mut order: Vec<&str> = vec![&servers[frozen_index].addr];
    order.extend(servers.iter().filter(|s| s.id != leader).map(|s| &*s.addr));
    let bootstrap = order.join(",");
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("record-{i:04}")).collect();

    let frozen = servers[frozen_index].freeze();
    let started = Instant::now();
    let output = stave_with_input(
        &bootstrap,
        &["produce", TOPIC, "--partition", "0"],
        expected.iter().map(|v| format!("{v}\n")).collect(),
    )
    .await;
    let took = started.elapsed();
    eprintln!("stave produce with leader {leader} frozen took {took:?}");
    assert!(
        output.status.success(),
        "stave produce failed after {took:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Success is the proof: the CLI gives up on a record after its 10 s delivery timeout
    // (before, it waited that long on the frozen node). Its wall-clock time, printed above,
    // includes starting the process and is not asserted (tests do not time things).
    let survivor = &servers[(frozen_index + 1) % 3].addr;
    let new_leader = leader_other_than(survivor, TOPIC, leader).await;
    eprintln!("node {new_leader} took over from frozen node {leader}");

    frozen.thaw();
    leader_in_sync(survivor, TOPIC).await;
    assert_eq!(read_values(&bootstrap, TOPIC, 0).await, expected);
}

/// Records in flight to a partition leader when it is frozen (the Rust client pipelining
/// batches on its produce stream): the stream is abandoned, the unanswered batches are
/// resent to the new leader with the same producer id, epoch and sequences, and every record
/// is acknowledged within its 10 s delivery timeout at the offset where it is read back,
/// exactly once and in order, after the old leader continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_flight_to_a_leader_frozen_mid_stream_are_written_once() {
    const TOPIC: &str = "v1.frozen.stream";
    const RECORDS: u64 = 3_000;
    /// Acknowledged records before the freeze.
    const BEFORE_FREEZE: u64 = 600;
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 3);
    wait_ready(&servers).await;
    create_topic(&servers[0].addr, TOPIC, 1, &[]).await;
    let leader = leader_in_sync(&servers[0].addr, TOPIC).await;
    let frozen_index = index_of(&servers, leader);
    let bootstrap: Vec<&str> = servers.iter().map(|s| &*s.addr).collect();
    let bootstrap = bootstrap.join(",");

    let stave = Client::connect(ClientConfig::new(&bootstrap).unwrap())
        .await
        .unwrap();
    let producer = stave
        .producer(ProducerConfig {
            delivery_timeout: DELIVERY_TIMEOUT,
            // Small batches, so several are in flight at any moment.
            batch_bytes: 2 << 10,
            ..ProducerConfig::default()
        })
        .await
        .unwrap();
    type Delivery = (Result<RecordMetadata, stave_client::ClientError>, Instant);
    let deliveries: Arc<Mutex<Vec<Option<Delivery>>>> =
        Arc::new(Mutex::new((0..RECORDS).map(|_| None).collect()));
    let (acked, mut acked_seen) = tokio::sync::watch::channel(0u64);
    let acked = Arc::new(acked);
    let answered = Arc::new(AtomicU64::new(0));
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("record-{i:05}")).collect();
    for (i, value) in expected.iter().enumerate() {
        let (deliveries, acked, answered) = (deliveries.clone(), acked.clone(), answered.clone());
        let record = ProducerRecord::new(TOPIC, value.clone()).partition(0);
        producer
            .enqueue_with(record, move |result| {
                let ok = result.is_ok();
                deliveries.lock().unwrap()[i] = Some((result, Instant::now()));
                answered.fetch_add(1, Ordering::AcqRel);
                if ok {
                    acked.send_modify(|n| *n += 1);
                }
            })
            .await
            .unwrap();
    }

    tokio::time::timeout(WAIT, acked_seen.wait_for(|n| *n >= BEFORE_FREEZE))
        .await
        .expect("the first records acknowledged")
        .unwrap();
    tracing::info!("--- freeze leader {leader}");
    let frozen = servers[frozen_index].freeze();
    let frozen_at = Instant::now();
    let answered_at_freeze = answered.load(Ordering::Acquire);
    assert!(
        answered_at_freeze < RECORDS,
        "records still in flight when the leader froze"
    );
    tokio::time::timeout(WAIT, async {
        producer.flush().await;
    })
    .await
    .expect("every record answered");

    let deliveries = std::mem::take(&mut *deliveries.lock().unwrap());
    let mut last_answer = frozen_at;
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let (result, at) = delivery.unwrap_or_else(|| panic!("record {i} has no answer"));
        let written = result.unwrap_or_else(|err| panic!("record {i}: {err}"));
        assert_eq!(
            written.offset, i as u64,
            "record {i} written at its place, once"
        );
        last_answer = last_answer.max(at);
    }
    let took = last_answer.saturating_duration_since(frozen_at);
    eprintln!(
        "leader {leader} frozen with {} of {RECORDS} records answered; the rest took {took:?}",
        answered_at_freeze
    );
    // Every record succeeded within its delivery timeout (checked above); the time is
    // printed, not asserted.
    producer.close().await;

    frozen.thaw();
    let survivor = &servers[(frozen_index + 1) % 3].addr;
    leader_in_sync(survivor, TOPIC).await;
    assert_eq!(read_values(&bootstrap, TOPIC, 0).await, expected);
}

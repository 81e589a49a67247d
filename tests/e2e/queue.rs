//! Queue groups with real processes: a member process killed by SIGKILL while it holds 100
//! records has each of them delivered again to another member once its locks expire; and on
//! three nodes, killing the node that holds a queue group's state loses no acknowledgement.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_client::{Client, ClientConfig, QueueConfig, QueueConsumer, StartPosition};
use stave_proto::v1 as pb;

use crate::records::{
    LogsOnPanic, coordinator_of, leader_with_every_replica_in_sync, publish_until_written, record,
};
use crate::support::{WAIT, client, code, create_topic, eventually, start, wait_ready};

async fn rust_client(addrs: &[&str]) -> Client {
    Client::connect(ClientConfig {
        bootstrap: addrs.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The queue state `addr`'s answer to DescribeGroup shows, once the group has one.
async fn queue_state(addr: &str, group: &str) -> Option<pb::QueueGroupState> {
    let answer = client(addr)
        .describe_group(pb::DescribeGroupRequest {
            group: group.into(),
        })
        .await
        .ok()?
        .into_inner();
    (code(&answer.error) == pb::ErrorCode::None)
        .then_some(answer.queue)
        .flatten()
}

/// Scenario: one node; 100 records of 4 KiB. A `stave consume --queue` process with credit
/// 100 and a 3 s lock takes all 100 and blocks printing them (its standard output is a pipe
/// nobody reads: 400 KiB do not fit), so it acknowledges none; it is killed with SIGKILL.
/// Proves: another member gets each of the 100 again (delivery 2), none before the locks
/// expire, none lost; each is acknowledged once, and nothing comes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_s_records_go_to_another_member_when_their_locks_expire() {
    const TOPIC: &str = "v1.render.asked";
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 1);
    let _logs = LogsOnPanic::new(root.path(), &servers);
    wait_ready(&servers).await;
    let addr = servers[0].addr.clone();
    create_topic(&addr, TOPIC, 1, &[]).await;
    let big = "x".repeat(4096);
    let records: Vec<pb::PublishRecord> = (0..100)
        .map(|i| record(TOPIC, None, &format!("render-{i}"), &format!("{i} {big}")))
        .collect();
    publish_until_written(&addr, &records).await;

    let mut member = Command::new(env!("CARGO_BIN_EXE_stave"))
        .args(["--bootstrap", &addr, "consume", TOPIC, "--queue", "render"])
        .args(["--credit", "100", "--lock", "3s", "--from-beginning"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open and never read: the member blocks writing.
    let _stdout = member.stdout.take();
    eventually("the member process holding 100 records", || async {
        let state = queue_state(&addr, "render").await?;
        (state.members.len() == 1 && state.members[0].in_flight == 100).then_some(())
    })
    .await;
    let locked_by = Instant::now();
    member.kill().unwrap();
    member.wait().unwrap();

    let rust = rust_client(&[&addr]).await;
    let config = QueueConfig {
        credit: 100,
        start: StartPosition::Earliest,
        ..QueueConfig::default()
    };
    let other = QueueConsumer::join(&rust, "render", &[TOPIC], config)
        .await
        .unwrap();
    let mut again = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while again.len() < 100 {
        assert!(Instant::now() < deadline, "redelivered {}", again.len());
        let fetched = other.fetch(100, Duration::from_secs(1)).await.unwrap();
        for taken in &fetched {
            // The locks were taken before `locked_by`: none expires sooner than 3 s after.
            assert!(
                locked_by.elapsed() >= Duration::from_millis(2_500),
                "offset {} redelivered {:?} after the member held it",
                taken.offset,
                locked_by.elapsed()
            );
            assert_eq!(taken.delivery_count, 2, "offset {}", taken.offset);
            assert!(again.insert(taken.offset), "offset {} twice", taken.offset);
            let value = taken.value.clone().unwrap_or_default();
            let index: u64 = std::str::from_utf8(&value)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(index, taken.offset);
            other.ack(taken).await.unwrap();
        }
    }
    assert_eq!(again, (0..100).collect());
    assert!(
        other
            .fetch(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty(),
        "nothing after the 100"
    );
    let state = queue_state(&addr, "render").await.unwrap();
    assert_eq!(state.partitions[0].ack_floor, 100);
    other.close().await.unwrap();
}

/// Scenario: three nodes; a topic of 1 partition with 3 replicas holds 300 records; one
/// member (bootstrapped at all three nodes) acknowledges 100 of them, then the node
/// coordinating the queue group (leading its `__offsets` partition, where its state is) is
/// killed with SIGKILL, and the member goes on. Proves: work continues under the new
/// coordinator, every record is acknowledged, and no record acknowledged before the kill is
/// delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_node_holding_a_queue_group_s_state_loses_no_acknowledgement() {
    const TOPIC: &str = "v1.invoice.due";
    const GROUP: &str = "invoicer";
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    let _logs = LogsOnPanic::new(root.path(), &servers);
    wait_ready(&servers).await;
    create_topic(&servers[0].addr, TOPIC, 1, &[]).await;
    leader_with_every_replica_in_sync(&servers[0].addr, TOPIC, 0).await;
    let records: Vec<pb::PublishRecord> = (0..300)
        .map(|i| pb::PublishRecord {
            value: Bytes::from(i.to_string()),
            ..record(TOPIC, None, &format!("inv-{i}"), "")
        })
        .collect();
    publish_until_written(&servers[0].addr, &records).await;

    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let bootstrap: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let rust = rust_client(&bootstrap).await;
    let config = QueueConfig {
        credit: 10,
        lock: Some(Duration::from_secs(2)),
        start: StartPosition::Earliest,
        ..QueueConfig::default()
    };
    let member = QueueConsumer::join(&rust, GROUP, &[TOPIC], config)
        .await
        .unwrap();
    let mut acked_before = BTreeSet::new();
    while acked_before.len() < 100 {
        for taken in member.fetch(10, Duration::from_secs(1)).await.unwrap() {
            member.ack(&taken).await.unwrap();
            acked_before.insert(taken.offset);
        }
    }
    let coordinator = coordinator_of(&servers[0].addr, GROUP).await;
    let victim = servers.iter().position(|s| s.id == coordinator).unwrap();
    println!("killing node {coordinator}, the coordinator of {GROUP}");
    servers[victim].kill();

    let mut acked = acked_before.clone();
    let deadline = Instant::now() + WAIT * 2;
    while acked.len() < 300 {
        assert!(Instant::now() < deadline, "acked {} of 300", acked.len());
        let fetched = match member.fetch(10, Duration::from_secs(1)).await {
            Ok(fetched) => fetched,
            // The coordinator is being elected: ask again.
            Err(err) if err.is_retriable() => continue,
            Err(err) => panic!("fetch after the kill: {err}"),
        };
        for taken in fetched {
            assert!(
                !acked_before.contains(&taken.offset),
                "offset {} was acknowledged before the kill and came again",
                taken.offset
            );
            // A record in flight at the kill may come again (at least once); its ack under
            // the member's old id is refused and it comes back.
            if member.ack(&taken).await.is_ok() {
                acked.insert(taken.offset);
            }
        }
    }
    assert_eq!(acked, (0..300).collect());
    member.close().await.unwrap();
}

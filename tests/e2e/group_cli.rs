//! `stave group list|describe|reset` against one real server: a group with committed offsets
//! is listed and described with its high watermarks and lag; each kind of reset moves the
//! committed offsets where it says; a group with a member refuses a reset in one line; bad
//! flags are usage errors.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use stave_client::{Client, ClientConfig, ProducerConfig, ProducerRecord};
use stave_proto::v1 as pb;

use crate::support::{WAIT, client, code, create_topic, now_ms, start, wait_ready};

const TOPIC: &str = "v1.email";
const GROUP: &str = "email";
/// Records in partitions 0 and 1; the record at index `i` has timestamp `base + i * 1000`.
const RECORDS: [u64; 2] = [10, 4];

/// Runs the CLI against `addr`.
fn stave(addr: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stave"))
        .args(["--bootstrap", addr])
        .args(args)
        .output()
        .unwrap()
}

/// Runs the CLI, asserts it succeeded, and returns its standard output.
fn stave_ok(addr: &str, args: &[&str]) -> String {
    let output = stave(addr, args);
    assert!(
        output.status.success(),
        "stave {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs the CLI, asserts it failed with `exit_code` (any non-zero one for `None`), and
/// returns its standard error.
fn stave_fails(addr: &str, args: &[&str], exit_code: Option<i32>) -> String {
    let output = stave(addr, args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success(), "stave {args:?} succeeded");
    if let Some(expected) = exit_code {
        assert_eq!(
            output.status.code(),
            Some(expected),
            "stave {args:?}: {stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 1, "one line of error: {stderr:?}");
    stderr
}

/// The whitespace-separated cells of the first line of `text` that starts with `first`.
fn row(text: &str, first: &[&str]) -> Vec<String> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.starts_with(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{text}"))
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// COMMITTED, HIGH-WATERMARK and LAG of `partition` in `describe`'s output.
fn lag(describe: &str, partition: u32) -> [String; 3] {
    let cells = row(describe, &[TOPIC, &partition.to_string()]);
    assert_eq!(cells.len(), 5, "{cells:?}");
    [cells[2].clone(), cells[3].clone(), cells[4].clone()]
}

/// The OFFSET column of `reset`'s output, per partition listed.
fn reset_offsets(output: &str) -> Vec<(u32, u64)> {
    output
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells[0], TOPIC, "{output}");
            (cells[1].parse().unwrap(), cells[2].parse().unwrap())
        })
        .collect()
}

/// Sends `request` to the group's coordinator (FindCoordinator first, again while it
/// moves or is being elected) until it answers without a coordinator error.
async fn at_coordinator<T, F, Fut>(addr: &str, mut call: F) -> T
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        let found = client(addr)
            .find_coordinator(pb::FindCoordinatorRequest {
                group: GROUP.into(),
            })
            .await;
        if let Ok(found) = found
            && code(&found.get_ref().error) == pb::ErrorCode::None
            && let Some(answer) = call(found.into_inner().addr).await
        {
            return answer;
        }
        assert!(started.elapsed() < WAIT, "the coordinator never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `error` says to ask again (the coordinator moved or is not ready yet).
fn coordinator_busy(error: &Option<pb::Error>) -> bool {
    match code(error) {
        pb::ErrorCode::None => false,
        pb::ErrorCode::NotCoordinator
        | pb::ErrorCode::CoordinatorNotAvailable
        | pb::ErrorCode::RequestTimedOut => true,
        other => panic!("coordinator answered {other:?}: {error:?}"),
    }
}

async fn commit(addr: &str, offsets: &[(u32, u64)]) {
    at_coordinator(addr, |coordinator| async move {
        let request = pb::CommitOffsetsRequest {
            group: GROUP.into(),
            offsets: offsets
                .iter()
                .map(|&(partition, offset)| pb::OffsetCommit {
                    topic: TOPIC.into(),
                    partition,
                    offset,
                    metadata: String::new(),
                })
                .collect(),
            member_id: String::new(),
            member_epoch: 0,
        };
        let answer = client(&coordinator).commit_offsets(request).await.ok()?;
        (!coordinator_busy(&answer.get_ref().error)).then_some(())
    })
    .await
}

/// Joins the group (or, with `leave`, leaves it as `member`): returns the member id and epoch.
async fn heartbeat(addr: &str, member: Option<(String, u64)>) -> (String, u64) {
    at_coordinator(addr, |coordinator| {
        let member = member.clone();
        async move {
            let leave = member.is_some();
            let (member_id, member_epoch) = member.unwrap_or_default();
            let request = pb::GroupHeartbeatRequest {
                group: GROUP.into(),
                member_id,
                member_epoch,
                subscription: vec![TOPIC.into()],
                owned: vec![],
                leave,
            };
            let answer = client(&coordinator)
                .group_heartbeat(request)
                .await
                .ok()?
                .into_inner();
            (!coordinator_busy(&answer.error)).then_some((answer.member_id, answer.member_epoch))
        }
    })
    .await
}

/// A group's offsets through the CLI: list and describe show what was committed, each reset
/// kind lands where it says (clamped offsets, timestamps, both ends), a group with a member
/// refuses a reset with one clear line, and bad flags are usage errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_cli_lists_describes_and_resets_committed_offsets() {
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 1);
    wait_ready(&servers).await;
    let addr = servers[0].addr.clone();
    create_topic(&addr, TOPIC, 2, &[]).await;

    // Records a minute old, one second apart, so a time between two of them names one.
    let base_ms = now_ms() - 60_000;
    let stave_client = Client::connect(ClientConfig::new(&addr).unwrap())
        .await
        .unwrap();
    let producer = stave_client
        .producer(ProducerConfig::default())
        .await
        .unwrap();
    for (partition, count) in (0u32..).zip(RECORDS) {
        for i in 0..count {
            let record = ProducerRecord::new(TOPIC, format!("mail-{i}"))
                .partition(partition)
                .timestamp(base_ms + i as i64 * 1000);
            let written = producer.send(record).await.unwrap();
            assert_eq!((written.partition, written.offset), (partition, i));
        }
    }
    producer.close().await;
    commit(&addr, &[(0, 3), (1, 4)]).await;

    // list and describe show the committed offsets against the high watermarks.
    let listed = stave_ok(&addr, &["group", "list"]);
    assert_eq!(
        listed
            .lines()
            .next()
            .map(str::split_whitespace)
            .map(Vec::from_iter),
        Some(vec!["GROUP", "COORDINATOR", "MEMBERS"]),
        "{listed}"
    );
    assert_eq!(row(&listed, &[GROUP]), [GROUP, "1", "0"]);
    let described = stave_ok(&addr, &["group", "describe", GROUP]);
    assert!(described.contains("no members"), "{described}");
    assert_eq!(lag(&described, 0), ["3", "10", "7"]);
    assert_eq!(lag(&described, 1), ["4", "4", "0"]);
    let unknown = stave_ok(&addr, &["group", "describe", "nobody"]);
    assert_eq!(
        unknown,
        "group \"nobody\" has no members and no committed offsets\n"
    );

    // Each kind of reset, checked through its output and through describe.
    let reset = |args: &[&str]| {
        let mut full = vec!["group", "reset", GROUP, "--topic", TOPIC];
        full.extend_from_slice(args);
        reset_offsets(&stave_ok(&addr, &full))
    };
    assert_eq!(reset(&["--to-earliest"]), [(0, 0), (1, 0)]);
    let described = stave_ok(&addr, &["group", "describe", GROUP]);
    assert_eq!(lag(&described, 0), ["0", "10", "10"]);
    assert_eq!(reset(&["--to-offset", "5", "--partition", "0"]), [(0, 5)]);
    assert_eq!(reset(&["--to-offset", "999", "--partition", "1"]), [(1, 4)]);
    let described = stave_ok(&addr, &["group", "describe", GROUP]);
    assert_eq!(lag(&described, 0), ["5", "10", "5"]);
    assert_eq!(lag(&described, 1), ["4", "4", "0"]);
    // Partition 1 has nothing at or after record 6's time: the end.
    let time = (base_ms + 6_000).to_string();
    assert_eq!(reset(&["--to-time", &time]), [(0, 6), (1, 4)]);
    assert_eq!(reset(&["--to-earliest"]), [(0, 0), (1, 0)]);
    assert_eq!(
        reset(&["--to-time", "2999-01-01T00:00:00Z", "--partition", "0"]),
        [(0, 10)]
    );
    assert_eq!(reset(&["--to-latest"]), [(0, 10), (1, 4)]);
    let described = stave_ok(&addr, &["group", "describe", GROUP]);
    assert_eq!(lag(&described, 0), ["10", "10", "0"]);

    // A group with a member refuses a reset, in one line, until the member leaves.
    let member = heartbeat(&addr, None).await;
    let listed = stave_ok(&addr, &["group", "list"]);
    assert_eq!(row(&listed, &[GROUP]), [GROUP, "1", "1"]);
    let described = stave_ok(&addr, &["group", "describe", GROUP]);
    assert_eq!(row(&described, &[&member.0])[1], member.1.to_string());
    let refused = stave_fails(
        &addr,
        &["group", "reset", GROUP, "--topic", TOPIC, "--to-earliest"],
        Some(1),
    );
    assert!(
        refused.starts_with(
            "error: consumer group \"email\" has members: stop its consumers before resetting its offsets"
        ),
        "{refused}"
    );
    heartbeat(&addr, Some(member)).await;
    assert_eq!(reset(&["--to-earliest"]), [(0, 0), (1, 0)]);

    // Bad input.
    let unknown_topic = stave_fails(
        &addr,
        &["group", "reset", GROUP, "--topic", "nope", "--to-earliest"],
        Some(1),
    );
    assert!(
        unknown_topic.contains("unknown topic \"nope\""),
        "{unknown_topic}"
    );
    let usage: [&[&str]; 4] = [
        &["--topic", TOPIC],
        &["--topic", TOPIC, "--to-earliest", "--to-latest"],
        &["--topic", TOPIC, "--to-time", "yesterday"],
        &["--to-earliest"],
    ];
    for args in usage {
        let mut full = vec!["group", "reset", GROUP];
        full.extend_from_slice(args);
        let stderr = stave_fails(&addr, &full, Some(2));
        assert!(stderr.contains("see stave --help"), "{full:?}: {stderr}");
    }
}

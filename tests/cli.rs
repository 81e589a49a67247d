//! The `stave` binary against a `stave server` child process, as a user runs them: topics,
//! produce from stdin, consume back (text and JSON), cluster status, and the one-line errors
//! of bad input and unreachable brokers.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a node's first elections on a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries `attempt` every `every` until it gives a value, failing the test with its last
/// reason after `READY_TIMEOUT`: for state another process holds, which announces nothing.
fn until<T>(every: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(why) => assert!(start.elapsed() < READY_TIMEOUT, "{why}"),
        }
        std::thread::sleep(every);
    }
}

/// How long a command may take when it should fail at once.
const FAIL_FAST: Duration = Duration::from_secs(3);

const STAVE: &str = env!("CARGO_BIN_EXE_stave");

/// A `stave server` child process on a reserved loopback port, killed (by PID) on drop.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let addr = reserve_port();
        let child = Command::new(STAVE)
            // Tests run in parallel: none takes the default metrics port.
            .args(["server", "--listen", &addr, "--metrics-listen", "off", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            addr,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    /// Waits until the node serves metadata and has registered itself (a topic create
    /// before that finds no node to place replicas on).
    fn wait_ready(&self) {
        until(Duration::from_millis(100), || {
            let out = self.stave(&["cluster", "status", "--timeout", "1s"]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.status.success()
                && stdout.contains("controller: node 1")
                && stdout.contains(&self.addr)
            {
                return Ok(());
            }
            Err(format!("server not ready: {out:?}"))
        })
    }

    /// Runs `stave ARGS --bootstrap ADDR`.
    fn stave(&self, args: &[&str]) -> Output {
        stave(args, &self.addr, None)
    }

    /// Runs `stave ARGS --bootstrap ADDR` with `input` on stdin.
    fn stave_with_input(&self, args: &[&str], input: &str) -> Output {
        stave(args, &self.addr, Some(input))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port: bound, read, released, for the server to bind.
fn reserve_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn stave(args: &[&str], bootstrap: &str, input: Option<&str>) -> Output {
    let mut child = Command::new(STAVE)
        .args(args)
        .args(["--bootstrap", bootstrap])
        .env_remove("STAVE_BOOTSTRAP")
        .env_remove("RUST_LOG")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stave failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failure is exactly one line on stderr, a non-zero exit, and no panic.
fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure: {out:?}");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr:?}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr:?}");
    stderr
}

/// A topic's life through the CLI: create, list, describe, produce lines from stdin (plain,
/// keyed with a separator, with headers), consume them back as text and as JSON, from the
/// beginning, from an offset, from a partition, and delete it.
#[test]
fn topic_produce_consume_round_trip() {
    let server = Server::start();
    let created = server.stave(&["topic", "create", "v1.user.signedup", "--partitions", "2"]);
    assert!(stdout(&created).contains("created topic v1.user.signedup"));
    assert_eq!(
        stdout(&server.stave(&["topic", "list"])),
        "v1.user.signedup\n"
    );
    let described = stdout(&server.stave(&["topic", "describe", "v1.user.signedup"]));
    assert!(described.contains("partitions          2"), "{described}");
    assert!(described.contains("retention.ms="), "{described}");

    let lines = "ada\nbob\n\ncarol\r\n";
    let produced =
        server.stave_with_input(&["produce", "v1.user.signedup", "--partition", "0"], lines);
    assert_eq!(stdout(&produced), "");
    let text = stdout(&server.stave(&[
        "consume",
        "v1.user.signedup",
        "--partition",
        "0",
        "--from-beginning",
        "--max-messages",
        "4",
    ]));
    assert_eq!(text, "ada\nbob\n\ncarol\n");

    let keyed = server.stave_with_input(
        &[
            "produce",
            "v1.user.signedup",
            "--key-separator",
            ":",
            "--header",
            "source=cli",
        ],
        "user-1:{\"plan\":\"pro\"}\nuser-3:x:y\n",
    );
    stdout(&keyed);
    let json = stdout(&server.stave(&[
        "consume",
        "v1.user.signedup",
        "--from-beginning",
        "--max-messages",
        "6",
        "--format",
        "json",
    ]));
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 6);
    let user_1 = records.iter().find(|r| r["key"] == "user-1").unwrap();
    assert_eq!(user_1["value"], "{\"plan\":\"pro\"}");
    assert_eq!(user_1["headers"]["source"], "cli");
    assert_eq!(user_1["headers"]["id"].as_str().unwrap().len(), 36);
    assert_eq!(user_1["topic"], "v1.user.signedup");
    assert!(user_1["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    // Kafka's murmur2 partitioning: "user-1" goes to partition 0 of 2, "user-3" to 1.
    assert_eq!(user_1["partition"], 0);
    let user_3 = records.iter().find(|r| r["key"] == "user-3").unwrap();
    assert_eq!(
        (&user_3["value"], &user_3["partition"]),
        (&"x:y".into(), &1.into())
    );
    let partition_0: Vec<(u64, &str)> = records
        .iter()
        .filter(|r| r["partition"] == 0)
        .map(|r| (r["offset"].as_u64().unwrap(), r["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        partition_0,
        [
            (0, "ada"),
            (1, "bob"),
            (2, ""),
            (3, "carol"),
            (4, "{\"plan\":\"pro\"}")
        ]
    );

    let from_offset = stdout(&server.stave(&[
        "consume",
        "v1.user.signedup",
        "--partition",
        "0",
        "--offset",
        "3",
        "--max-messages",
        "1",
    ]));
    assert_eq!(from_offset, "carol\n");

    let deleted = server.stave(&["topic", "delete", "v1.user.signedup"]);
    assert!(stdout(&deleted).contains("deleted topic v1.user.signedup"));
    assert_eq!(stdout(&server.stave(&["topic", "list"])), "");
}

/// A consumer started at the end (the default) sees only what is produced afterwards.
#[test]
fn consume_starts_at_the_end_unless_told() {
    let server = Server::start();
    stdout(&server.stave(&["topic", "create", "v1.orders", "--partitions", "1"]));
    stdout(&server.stave_with_input(&["produce", "v1.orders"], "old\n"));
    let consumer = Command::new(STAVE)
        .args(["consume", "v1.orders", "--max-messages", "1"])
        .args(["--bootstrap", &server.addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The consumer may not have found the end yet when the first record is written: keep
    // writing until it has printed one.
    let mut child = consumer;
    let status = until(Duration::from_millis(200), || {
        stdout(&server.stave_with_input(&["produce", "v1.orders"], "new\n"));
        child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "the consumer printed nothing".to_string())
    });
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "new\n");
}

/// `cluster status` names the node, what it leads, and the under-replicated partitions.
#[test]
fn cluster_status_shows_nodes_and_leaders() {
    let server = Server::start();
    stdout(&server.stave(&["topic", "create", "v1.audit", "--partitions", "2"]));
    let status = until(Duration::from_millis(100), || {
        let status = stdout(&server.stave(&["cluster", "status"]));
        if status.contains("under-replicated partitions: none") {
            Ok(status)
        } else {
            Err(format!("no leaders: {status}"))
        }
    });
    assert!(status.contains(&server.addr), "{status}");
    assert!(status.contains("v1.audit/0  1"), "{status}");
    assert!(status.contains("v1.audit/1  1"), "{status}");
}

/// Bad input: one line on stderr, a non-zero exit, and nothing changed.
#[test]
fn bad_input_fails_with_one_line() {
    let server = Server::start();
    let bad_name = one_line_error(&server.stave(&["topic", "create", "bad name!"]));
    assert!(bad_name.contains("INVALID_TOPIC_NAME"), "{bad_name}");
    let reserved = one_line_error(&server.stave(&["topic", "create", "__offsets"]));
    assert!(reserved.contains("RESERVED_TOPIC_NAME"), "{reserved}");
    let bad_config = one_line_error(&server.stave(&[
        "topic",
        "create",
        "v1.x",
        "--config",
        "retention.ms=soon",
    ]));
    assert!(bad_config.contains("INVALID_CONFIG"), "{bad_config}");
    assert_eq!(stdout(&server.stave(&["topic", "list"])), "");

    let unknown = one_line_error(&server.stave_with_input(&["produce", "v1.nope"], "x\n"));
    assert!(unknown.contains("unknown topic"), "{unknown}");
    let described = one_line_error(&server.stave(&["topic", "describe", "v1.nope"]));
    assert!(described.contains("unknown topic"), "{described}");

    stdout(&server.stave(&["topic", "create", "v1.ok", "--partitions", "1"]));
    let exists = one_line_error(&server.stave(&["topic", "create", "v1.ok"]));
    assert!(exists.contains("TOPIC_EXISTS"), "{exists}");
    let no_separator = one_line_error(&server.stave_with_input(
        &["produce", "v1.ok", "--key-separator", ":"],
        "k:v\nno separator here\n",
    ));
    assert!(
        no_separator.contains("line 2 has no key separator"),
        "{no_separator}"
    );
    let pattern = one_line_error(&server.stave(&["consume", "v1.#"]));
    assert!(pattern.contains("patterns need --group"), "{pattern}");
    let bad_pattern = one_line_error(&server.stave(&["consume", "v1.#.x#", "--group", "g"]));
    assert!(bad_pattern.contains("INVALID_REQUEST"), "{bad_pattern}");
    let both = server.stave(&["consume", "v1.ok", "--group", "g", "--partition", "0"]);
    assert_eq!(both.status.code(), Some(2));
    let out_of_range = one_line_error(&server.stave(&[
        "consume",
        "v1.ok",
        "--partition",
        "0",
        "--offset",
        "1000",
    ]));
    assert!(out_of_range.contains("out of range"), "{out_of_range}");
    let no_partition = one_line_error(&server.stave(&["consume", "v1.ok", "--partition", "7"]));
    assert!(no_partition.contains("no partition 7"), "{no_partition}");

    // A usage error is one line too (exit code 2, as clap's).
    let usage = server.stave(&["topic", "create", "v1.y", "--partitions", "many"]);
    assert_eq!(usage.status.code(), Some(2));
    one_line_error(&usage);
}

/// Every bootstrap address refuses the connection: the command fails at once, in one line.
#[test]
fn unreachable_bootstrap_fails_fast() {
    let closed = reserve_port();
    let list = format!("{closed},{}", reserve_port());
    for args in [
        &["topic", "list"][..],
        &["cluster", "status"],
        &["consume", "v1.x"],
    ] {
        let start = Instant::now();
        let out = stave(args, &list, None);
        assert!(
            start.elapsed() < FAIL_FAST,
            "{args:?} took {:?}",
            start.elapsed()
        );
        let line = one_line_error(&out);
        assert!(line.contains("no broker reachable"), "{line}");
        assert!(line.contains(&closed), "{line}");
    }
}

/// A node given peers but no cluster secret refuses to start, in one line that says how to
/// give it one; with a secret file that is too short, it says that.
#[test]
fn a_node_with_peers_and_no_cluster_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let peers = format!("1={},2={}", reserve_port(), reserve_port());
    let server = |extra: &[&str]| {
        Command::new(STAVE)
            .args(["server", "--node-id", "1", "--peers", &peers, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env("RUST_LOG", "off")
            .env_remove("STAVE_CLUSTER_SECRET")
            .env_remove("STAVE_CLUSTER_SECRET_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let err = one_line_error(&server(&[]));
    assert!(started.elapsed() < FAIL_FAST * 2, "{:?}", started.elapsed());
    assert!(err.contains("no cluster secret"), "{err}");
    assert!(err.contains("--cluster-secret-file"), "{err}");
    let short = dir.path().join("short.secret");
    std::fs::write(&short, "abc\n").unwrap();
    let err = one_line_error(&server(&["--cluster-secret-file", short.to_str().unwrap()]));
    assert!(err.contains("16 to 1024 characters"), "{err}");
}

/// `stave server` stops cleanly on SIGTERM.
#[test]
fn server_stops_on_sigterm() {
    let mut server = Server::start();
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = until(Duration::from_millis(50), || {
        server
            .child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "the server did not stop".to_string())
    });
    assert!(status.success(), "{status:?}");
}

/// `stave bench`: each workload creates its topic if needed, moves the records it says, and
/// ends with one JSON object carrying the keys docs/performance.md lists ("How to
/// reproduce"; figures are not checked: benchmarks are not tests).
#[test]
fn bench_reports_its_workloads_as_json() {
    let server = Server::start();
    let json = |out: &Output| -> serde_json::Value {
        let text = stdout(out);
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let produced = json(&server.stave(&[
        "bench",
        "produce",
        "--topic",
        "b",
        "--partitions",
        "2",
        "--messages",
        "2000",
        "--size",
        "100",
        "--flush",
        "never",
        "--json",
    ]));
    for key in [
        "records_per_s",
        "mb_per_s",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
    ] {
        assert!(produced[key].is_number(), "{key} in {produced}");
    }
    assert_eq!(produced["records"], 2000);
    assert_eq!(produced["bytes"], 200_000);
    assert_eq!(produced["flush"], "never");
    assert!(produced["p50_us"].as_u64() <= produced["max_us"].as_u64());

    let consumed = json(&server.stave(&["bench", "consume", "--topic", "b", "--json"]));
    assert_eq!(consumed["records"], 2000);
    assert_eq!(consumed["bytes"], 200_000);
    assert!(consumed["p99_us"].is_null());

    let e2e = json(&server.stave(&[
        "bench",
        "e2e",
        "--topic",
        "e",
        "--partitions",
        "1",
        "--messages",
        "50",
        "--in-flight",
        "1",
        "--json",
    ]));
    assert_eq!(e2e["records"], 50);
    assert!(e2e["p99_us"].is_number(), "{e2e}");

    // At a fixed rate (sent from the paced thread): every record, and not faster than asked.
    for workload in ["produce", "e2e"] {
        let paced = json(&server.stave(&[
            "bench",
            workload,
            "--topic",
            "p",
            "--partitions",
            "2",
            "--messages",
            "300",
            "--rate",
            "2000",
            "--linger-ms",
            "0",
            "--json",
        ]));
        assert_eq!(paced["records"], 300, "{paced}");
        if workload == "produce" {
            // Counted from each send, a record's latency is never more than from when it
            // was due.
            for (sent, due) in [("send_p50_us", "p50_us"), ("send_p99_us", "p99_us")] {
                assert!(
                    paced[sent].as_u64().unwrap() <= paced[due].as_u64().unwrap(),
                    "{paced}"
                );
            }
        }
        let elapsed = paced["elapsed_s"].as_f64().unwrap();
        assert!(
            elapsed >= 299.0 / 2000.0,
            "{workload} ran ahead of --rate: {paced}"
        );
    }

    let usage = server.stave(&["bench", "produce", "--messages", "5", "--duration", "1s"]);
    assert_eq!(usage.status.code(), Some(2));
}

/// `stave bench e2e --in-flight` against a broker that goes away mid-run: it ends with the
/// producer's error within its --timeout, instead of waiting forever for consumers to hand
/// back places in the in-flight window.
#[test]
fn bench_e2e_ends_with_an_error_when_the_broker_goes_away() {
    let mut server = Server::start();
    let bench = Command::new(STAVE)
        .args(["bench", "e2e", "--topic", "gone", "--partitions", "1"])
        .args(["--in-flight", "1", "--duration", "120s", "--size", "100"])
        .args(["--timeout", "2s", "--bootstrap", &server.addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed (by PID) if the test ends before the bench does.
    let mut guard = KillOnDrop(Some(bench.id()));
    let (ended, end) = std::sync::mpsc::channel();
    std::thread::spawn(move || ended.send(bench.wait_with_output()));
    // Records are flowing: the topic holds one.
    until(Duration::from_millis(100), || {
        let out = server.stave(&[
            "consume",
            "gone",
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout",
            "1s",
        ]);
        match out.status.success() && !out.stdout.is_empty() {
            true => Ok(()),
            false => Err(format!("no record written yet: {out:?}")),
        }
    });
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let out = end
        .recv_timeout(Duration::from_secs(60))
        .expect("bench e2e still running 60 s after the broker went away")
        .unwrap();
    guard.0 = None;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("error: "), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// Kills a child process by PID when dropped, unless it has been reaped (`None`).
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) with a PID this test started and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// A consumer of `bench e2e` that cannot join says why at once, instead of the run waiting a
/// minute for partitions nobody will take.
#[test]
fn bench_e2e_reports_a_consumer_that_cannot_join() {
    let server = Server::start();
    let started = Instant::now();
    let out = server.stave(&[
        "bench",
        "e2e",
        "--topic",
        "nobody",
        "--partitions",
        "1",
        "--messages",
        "5",
        "--group",
        "",
    ]);
    let stderr = one_line_error(&out);
    assert!(stderr.contains("group name"), "stderr: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// An explicit `--metrics-listen` address that is taken stops the server at start, with one
/// line naming it (a taken default address only warns: see the broker's metrics tests).
#[test]
fn server_fails_at_start_on_a_taken_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let child = Command::new(STAVE)
        .args([
            "server",
            "--listen",
            &reserve_port(),
            "--metrics-listen",
            &taken,
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its exit is the event: waited for on a thread, so a server that keeps running fails
    // the test (killed by PID) instead of hanging it.
    let pid = child.id().to_string();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(child.wait_with_output()));
    let Ok(output) = exit.recv_timeout(READY_TIMEOUT) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the server did not stop on a taken metrics address");
    };
    let error = one_line_error(&output.unwrap());
    assert!(error.contains("cannot serve metrics on"), "{error}");
    assert!(error.contains(&taken), "{error}");
}

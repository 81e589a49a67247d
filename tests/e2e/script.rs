//! `scripts/cluster.sh`, as the README uses it: start a local 3-node cluster on the default
//! ports, create a topic, watch `cluster status` while a node is killed, stop exactly the
//! processes it started.

use std::process::Command;
use std::time::{Duration, Instant};

fn stave(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stave"))
        .args(args)
        .output()
        .unwrap()
}

fn script(state: &std::path::Path, command: &str) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
        .arg(command)
        .env("STAVE_BIN", env!("CARGO_BIN_EXE_stave"))
        .env("STAVE_CLUSTER_DIR", state)
        .output()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn the_cluster_script_starts_serves_survives_a_kill_and_stops_its_own_processes() {
    // The script uses the CLI's default ports; if something already listens there, this
    // machine runs its own Stave (or something else): say so instead of failing.
    for port in [7070, 7071, 7072] {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            eprintln!("port {port} is in use: not running the cluster script test");
            return;
        }
    }
    let state = tempfile::tempdir().unwrap();
    // Stops the cluster however the test ends.
    struct Stop<'a>(&'a std::path::Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = script(self.0, "stop");
        }
    }
    let _stop = Stop(state.path());
    let started = script(state.path(), "start");
    assert!(
        started.status.success(),
        "start: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let pids: Vec<u32> = (1..=3)
        .map(|id| {
            std::fs::read_to_string(state.path().join(format!("node-{id}.pid")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    let created = stave(&["topic", "create", "v1.script", "--partitions", "3"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // Kill node 2; within the election timeouts the status shows its partitions led by the
    // other two.
    Command::new("kill")
        .args(["-9", &pids[1].to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = stave(&["cluster", "status"]);
        let text = String::from_utf8_lossy(&status.stdout).to_string();
        let led_elsewhere = text
            .lines()
            .filter(|line| line.starts_with("v1.script/"))
            .all(|line| {
                let leader = line.split_whitespace().nth(1).unwrap_or("none");
                leader == "1" || leader == "3"
            });
        if status.status.success() && led_elsewhere && text.contains("v1.script/2") {
            break;
        }
        assert!(Instant::now() < deadline, "status never settled:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }

    let stopped = script(state.path(), "stop");
    assert!(stopped.status.success());
    for pid in [pids[0], pids[2]] {
        assert!(!alive(pid), "node process {pid} still runs after stop");
    }
}

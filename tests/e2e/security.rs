//! The README's "Security" commands against a real server started with `--auth required`:
//! the bootstrap admin's token file, users, ACLs, a consumer limited to what it may read,
//! and a deleted user's token refused.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{eventually, start_with};

/// Runs the CLI against `addr` with the token in `token_file` (none: anonymous).
fn stave(addr: &str, token_file: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stave"));
    command
        .args(["--bootstrap", addr, "--timeout", "5s"])
        .env_remove("STAVE_TOKEN")
        .env_remove("STAVE_TOKEN_FILE");
    if let Some(file) = token_file {
        command.arg("--token-file").arg(file);
    }
    command.args(args).output().unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The one line a refused command prints.
fn refused(output: Output) -> String {
    assert!(!output.status.success(), "expected a refusal: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// Scenario: the README's security walk-through. Proves: an anonymous command is refused
/// with a line saying how to authenticate; the bootstrap admin creates a topic, a user and
/// its ACLs; the user consumes through its group what the admin produced, may not delete the
/// topic (PERMISSION_DENIED naming admin and the topic), and once deleted its token is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_security_commands_work() {
    let root = tempfile::tempdir().unwrap();
    let servers = start_with(root.path(), 1, &["--auth", "required"]);
    let addr = servers[0].addr.clone();
    let admin = servers[0].dir.join("bootstrap-admin.token");
    eventually("the bootstrap admin's token file", || {
        let exists = admin.exists();
        async move { exists.then_some(()) }
    })
    .await;
    let anonymous = refused(stave(&addr, None, &["topic", "list"]));
    assert!(anonymous.contains("requires authentication"), "{anonymous}");
    let admin_file = admin;
    let admin = Some(admin_file.as_path());
    ok(stave(
        &addr,
        admin,
        &["topic", "create", "v1.user.signedup", "--partitions", "1"],
    ));
    let token = ok(stave(&addr, admin, &["user", "create", "billing"]));
    let billing_file = root.path().join("billing.token");
    std::fs::write(&billing_file, token).unwrap();
    let billing = Some(billing_file.as_path());
    for resource in ["topic:v1.user.*", "group:billing"] {
        let acl = [
            "acl",
            "add",
            "--principal",
            "billing",
            "--resource",
            resource,
        ];
        ok(stave(
            &addr,
            admin,
            &[&acl[..], &["--operation", "consume"]].concat(),
        ));
    }
    let listed = ok(stave(&addr, admin, &["acl", "list"]));
    assert!(
        listed.contains("billing    topic:v1.user.*  consume"),
        "{listed}"
    );
    let mut producer = Command::new(env!("CARGO_BIN_EXE_stave"))
        .args(["--bootstrap", &addr, "--token-file"])
        .arg(&admin_file)
        .args(["produce", "v1.user.signedup"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    producer
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice\nbob\n")
        .unwrap();
    assert!(producer.wait().unwrap().success());
    let read = ok(stave(
        &addr,
        billing,
        &[
            "consume",
            "v1.user.signedup",
            "--group",
            "billing",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
    ));
    assert_eq!(read.lines().collect::<Vec<_>>(), ["alice", "bob"]);
    let denied = refused(stave(
        &addr,
        billing,
        &["topic", "delete", "v1.user.signedup"],
    ));
    assert!(denied.contains("may not admin"), "{denied}");
    ok(stave(&addr, admin, &["user", "delete", "billing"]));
    let gone = refused(stave(&addr, billing, &["topic", "list"]));
    assert!(gone.contains("unknown or revoked token"), "{gone}");
}

//! TLS through the CLI, as a user sets it up: `stave dev-certs DIR`, a `stave server` given
//! the node certificate, and client commands given the CA (and the client certificate).

use crate::support::{eventually, reserve_port};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const STAVE: &str = env!("CARGO_BIN_EXE_stave");

/// A `stave server` process, killed (by its PID) when dropped.
struct TlsServer {
    child: Child,
    addr: String,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `stave --bootstrap ADDR ARGS` with `input` on standard input.
fn stave(addr: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(STAVE)
        .args(["--bootstrap", addr])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(output: Output) -> String {
    assert!(
        output.status.success(),
        "stave failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A failure: one line on standard error, starting `error: `.
fn one_line_error(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr:?}");
    stderr
}

/// Starts a node with TLS from the files in `certs`, and waits until it serves a client that
/// trusts the CA.
async fn start_tls_server(certs: &Path, data: &Path) -> TlsServer {
    let addr = format!("127.0.0.1:{}", reserve_port());
    let file = |name: &str| certs.join(name).display().to_string();
    let child = Command::new(STAVE)
        .args(["server", "--listen", &addr, "--data-dir"])
        .arg(data)
        .args([
            "--tls-cert",
            &file("node.pem"),
            "--tls-key",
            &file("node-key.pem"),
        ])
        .args(["--tls-ca", &file("ca.pem")])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer { child, addr };
    let ca = file("ca.pem");
    eventually("the TLS node serving a client that trusts its CA", || {
        let (addr, ca) = (server.addr.clone(), ca.clone());
        async move {
            let status = tokio::task::spawn_blocking(move || {
                let args = ["--tls-ca", &ca, "--timeout", "1s", "cluster", "status"];
                stave(&addr, &args, "")
            })
            .await
            .unwrap();
            (status.status.success()
                && String::from_utf8_lossy(&status.stdout).contains("controller: node 1"))
            .then_some(())
        }
    })
    .await;
    server
}

/// Scenario: `stave dev-certs DIR` writes the CA, node and client certificates (keys 0600)
/// and refuses to overwrite them; a server started with the node certificate serves `topic
/// create`, `produce` and `consume` given `--tls-ca`, and with the client certificate too; a
/// command without `--tls-ca` fails in one line that points at the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_certs_and_a_tls_server_serve_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let made = Command::new(STAVE)
        .args(["dev-certs"])
        .arg(&certs)
        .output()
        .unwrap();
    let printed = stdout(made);
    assert!(printed.contains("--tls-ca"), "{printed}");
    for key in ["ca-key.pem", "node-key.pem", "client-key.pem"] {
        let mode = std::fs::metadata(certs.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let again = Command::new(STAVE)
        .args(["dev-certs"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(one_line_error(again).contains("--force"));

    let server = start_tls_server(&certs, &dir.path().join("data")).await;
    let addr = &server.addr;
    let ca = certs.join("ca.pem").display().to_string();
    let tls = ["--tls-ca", ca.as_str()];
    let created = stave(
        addr,
        &[&tls[..], &["topic", "create", "v1.tls.works"]].concat(),
        "",
    );
    assert!(stdout(created).contains("created topic v1.tls.works"));
    let produced = stave(
        addr,
        &[&tls[..], &["produce", "v1.tls.works", "--partition", "0"]].concat(),
        "ada\nbob\n",
    );
    stdout(produced);
    let client_cert = certs.join("client.pem").display().to_string();
    let client_key = certs.join("client-key.pem").display().to_string();
    let consume = [
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
        "consume",
        "v1.tls.works",
        "--partition",
        "0",
        "--from-beginning",
        "--max-messages",
        "2",
    ];
    let consumed = stave(addr, &[&tls[..], &consume[..]].concat(), "");
    assert_eq!(stdout(consumed), "ada\nbob\n");

    let plaintext = stave(addr, &["--timeout", "2s", "topic", "list"], "");
    let err = one_line_error(plaintext);
    assert!(err.contains("--tls-ca"), "no hint at TLS: {err}");
}

//! `stave dev-certs DIR`: a local CA, a node certificate and a client certificate, written
//! as PEM files (keys mode 0600), and the flags that use them. Existing files are left alone
//! unless `--force`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use stave_broker::tls::dev_certs::{DevCerts, NODE_HOSTS_DEFAULT};

use super::error::CliError;

#[derive(Debug, Args)]
pub struct DevCertsArgs {
    /// The directory to write ca.pem, ca-key.pem, node.pem, node-key.pem, client.pem and
    /// client-key.pem into (made if missing).
    dir: PathBuf,
    /// Another DNS name or IP address the node certificate is valid for (repeatable);
    /// localhost, 127.0.0.1 and ::1 always are.
    #[arg(long = "host", value_name = "NAME|IP")]
    hosts: Vec<String>,
    /// The client certificate's subject CN: the principal the client is known as.
    #[arg(long, default_value = "admin", value_name = "NAME")]
    client_name: String,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

/// Certificates are for anyone to read; keys for their owner only.
const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

pub fn run(args: &DevCertsArgs) -> Result<(), CliError> {
    let certs = DevCerts::generate(&args.hosts, &args.client_name)?;
    let dir = &args.dir;
    let files = [
        ("ca.pem", &certs.ca.cert_pem, CERT_MODE),
        ("ca-key.pem", &certs.ca.key_pem, KEY_MODE),
        ("node.pem", &certs.node.cert_pem, CERT_MODE),
        ("node-key.pem", &certs.node.key_pem, KEY_MODE),
        ("client.pem", &certs.client.cert_pem, CERT_MODE),
        ("client-key.pem", &certs.client.key_pem, KEY_MODE),
    ];
    if !args.force
        && let Some((name, _, _)) = files.iter().find(|(name, _, _)| dir.join(name).exists())
    {
        return Err(CliError::Usage(format!(
            "{} exists: pass --force to overwrite it and the other certificates",
            dir.join(name).display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(CliError::io(format!("cannot create {}", dir.display())))?;
    for (name, pem, mode) in files {
        write(&dir.join(name), pem, mode)?;
    }
    print_usage(dir, args);
    Ok(())
}

/// Writes `pem` to `path` with permissions `mode` (also when the file existed: a key must
/// not stay readable by others because an older file was).
fn write(path: &Path, pem: &str, mode: u32) -> Result<(), CliError> {
    let failed = || CliError::io(format!("cannot write {}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(failed())?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(failed())?;
    file.write_all(pem.as_bytes()).map_err(failed())?;
    file.sync_all().map_err(failed())
}

fn print_usage(dir: &Path, args: &DevCertsArgs) {
    let path = |name: &str| dir.join(name).display().to_string();
    let hosts: Vec<&str> = NODE_HOSTS_DEFAULT
        .iter()
        .copied()
        .chain(args.hosts.iter().map(String::as_str))
        .collect();
    println!(
        "wrote a CA, a node certificate ({}) and a client certificate (CN {}) to {}",
        hosts.join(", "),
        args.client_name,
        dir.display()
    );
    println!("start a node with TLS:");
    println!(
        "  stave server --tls-cert {} --tls-key {} --tls-ca {}",
        path("node.pem"),
        path("node-key.pem"),
        path("ca.pem")
    );
    println!("talk to it:");
    println!("  stave --tls-ca {} topic list", path("ca.pem"));
    println!("with the client certificate (mutual TLS):");
    println!(
        "  stave --tls-ca {} --tls-cert {} --tls-key {} topic list",
        path("ca.pem"),
        path("client.pem"),
        path("client-key.pem")
    );
}

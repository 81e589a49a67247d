//! `stave`: the Stave broker, its admin/produce/consume CLI and its benchmark tool, in one
//! binary. So far it only prints its version and help: the storage engine (`stave-log`) is
//! built, the server and the client commands come next.

use clap::Parser;

/// Stave, a distributed log broker for event-driven microservices.
///
/// This build is the foundation only: the partition log (crate `stave-log`) and its tests and
/// benches. The `server`, `topic`, `produce`, `consume`, `group`, `cluster` and `bench`
/// commands described in DESIGN.md are not built yet; for now this binary prints its version
/// and this help.
#[derive(Debug, Parser)]
#[command(name = "stave", version, about, long_about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "stave {}: only --version and --help so far; the server is not built yet (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
}

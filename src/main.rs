//! `stave`: the Stave broker and its admin, produce and consume commands, in one binary.
//! See `stave --help`, and the README's "Try it".

mod cli;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    init_logging(cli.default_log_filter());
    keep_large_buffers_on_the_heap();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report(format_args!("error: cannot start the async runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Background tasks (a producer's workers, fetches ahead) have nothing left to do.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            report(format_args!("error: {}", stave_client::display_chain(&err)));
            ExitCode::FAILURE
        }
    }
}

/// Batches of several MiB (produced, fetched, replicated) and tonic's message buffers are
/// allocated and freed all the time. glibc serves allocations above its mmap threshold
/// (128 KiB at first, adapting up to 32 MiB) from fresh mappings: every use pays page faults
/// and zeroing, every free an munmap. Up to 32 MiB (the most glibc documents) they stay on
/// the heap here, and up to 128 MiB of freed heap is kept for reuse (docs/performance.md,
/// History: W3 went from 0.74-0.91M to 1.09-1.23M records/s). Settings given through
/// `GLIBC_TUNABLES` win.
fn keep_large_buffers_on_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|tunables| tunables.contains("malloc.")) {
        // SAFETY: mallopt only sets allocator parameters; no other thread runs yet.
        unsafe {
            // The trim threshold only if the first took: setting it alone would freeze the
            // mmap threshold at its 128 KiB default.
            if libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1 {
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
            }
        }
    }
}

/// Help and version print as clap prints them; a bad argument is one line on stderr.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        _ => {
            // clap's message is the lines before the usage and tips: join them.
            let text = err.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|line| line.is_empty())
                .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
                .collect();
            let message = if message.is_empty() {
                "error: invalid arguments".to_string()
            } else {
                message.join(" ")
            };
            eprintln!("{message} (see stave --help)");
            ExitCode::from(2)
        }
    }
}

/// Writes one line to standard error, ignoring a failure to (`eprintln!` would panic).
fn report(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // A log line that cannot be written is dropped, never reported with `eprintln!` (which
    // panics when standard error fails): a full disk often holds the server's log file too,
    // and the server must not stop because its own output has nowhere to go.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

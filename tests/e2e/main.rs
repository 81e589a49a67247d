//! End-to-end tests: real `stave server` processes on loopback ports this harness reserved,
//! killed with SIGKILL, restarted, wiped; spoken to through the public gRPC API.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod cluster;
mod crash;
mod frozen;
mod full_disk;
mod group_cli;
mod groups;
mod keyed;
mod queue;
mod records;
mod script;
mod security;
mod support;
mod tls;

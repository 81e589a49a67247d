//! Integration tests of `stave-raft`, one binary (see STYLE.md §1).
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod controller;
mod failover;
mod grpc;
mod membership;
mod node;
mod offsets;
mod producers;
mod random;
mod replication;
mod suite;
mod support;

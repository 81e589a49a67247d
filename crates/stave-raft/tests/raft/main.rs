//! Integration tests of `stave-raft`, one binary (see STYLE.md §1).
#![allow(clippy::unwrap_used)]

mod failover;
mod grpc;
mod membership;
mod random;
mod replication;
mod suite;
mod support;

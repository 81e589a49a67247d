//! Integration tests of `stave-broker`: nodes served in-process on loopback ports, spoken to
//! through the public gRPC API.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod api;
mod auth;
mod cluster;
mod consume;
mod fuzz;
mod metrics;
mod offsets;
mod publish;
mod queue;
mod queue_support;
mod support;
mod tls;

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::listen::bind_with_default;
use super::*;
use crate::error::BrokerError;

/// Log lines written while a test ran, for asserting what a node said.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Runs `f` with the logs it writes captured.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, captured.text())
}

/// An address some listener holds (the returned one, kept alive by the caller).
fn taken() -> (std::net::TcpListener, SocketAddr) {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    (holder, addr)
}

/// Several nodes on one host: the second finds the default address taken, says so once,
/// and runs without metrics.
#[tokio::test]
async fn the_default_address_taken_is_one_warning_and_no_metrics() {
    let (_holder, addr) = taken();
    let (bound, logs) = logged(|| bind_with_default(&MetricsListen::Default, addr));
    assert!(bound.unwrap().is_none());
    let warnings: Vec<&str> = logs.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("default metrics address is taken"),
        "{logs}"
    );
    assert!(warnings[0].contains(&addr.to_string()), "{logs}");
}

/// An address someone chose must work: taken, it is an error naming it, and nothing is
/// logged (the error is reported once, where the node's start fails).
#[tokio::test]
async fn an_explicit_address_taken_is_an_error() {
    let (_holder, addr) = taken();
    let (bound, logs) = logged(|| bind_with_default(&MetricsListen::At(addr), addr));
    let err = bound.unwrap_err();
    assert!(matches!(err, BrokerError::MetricsListen { .. }), "{err:?}");
    let shown = stave_client::display_chain(&err);
    assert!(shown.contains(&addr.to_string()), "{shown}");
    assert!(shown.contains("--metrics-listen"), "{shown}");
    assert!(logs.is_empty(), "{logs}");
}

#[tokio::test]
async fn a_free_address_binds_and_off_binds_nothing() {
    let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert!(
        bind_with_default(&MetricsListen::Default, free)
            .unwrap()
            .is_some()
    );
    assert!(
        bind_with_default(&MetricsListen::At(free), free)
            .unwrap()
            .is_some()
    );
    assert!(
        bind_with_default(&MetricsListen::Off, free)
            .unwrap()
            .is_none()
    );
}

/// A listener bound by the caller is served as it is, once.
#[tokio::test]
async fn a_bound_listener_is_handed_over_once() {
    let (holder, addr) = taken();
    let listen = MetricsListen::bound(holder).unwrap();
    let listener = bind(&listen).unwrap().unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr);
    assert!(bind(&listen).is_err());
}

#[test]
fn metrics_listen_parses_addresses_and_off() {
    assert!(matches!(
        "off".parse::<MetricsListen>(),
        Ok(MetricsListen::Off)
    ));
    assert!(matches!(
        "OFF".parse::<MetricsListen>(),
        Ok(MetricsListen::Off)
    ));
    let at = "127.0.0.1:9700".parse::<MetricsListen>().unwrap();
    assert_eq!(at.to_string(), "127.0.0.1:9700");
    assert!("localhost:9644".parse::<MetricsListen>().is_err());
    assert!("9644".parse::<MetricsListen>().is_err());
    assert_eq!(
        MetricsListen::default().to_string(),
        "127.0.0.1:9644 (default)"
    );
}

fn encoded(metrics: &Metrics) -> String {
    let mut out = String::new();
    metrics.encode(&mut out).unwrap();
    out
}

#[test]
fn data_path_series_are_per_partition_or_per_topic() {
    let per_partition = Metrics::new(true);
    per_partition.produced("orders", 2, 10, 1000);
    per_partition.produced("orders", 2, 5, 500);
    per_partition.fetched("orders", 2, 3, 300);
    let text = encoded(&per_partition);
    assert!(
        text.contains(r#"stave_partition_records_produced_total{topic="orders",partition="2"} 15"#),
        "{text}"
    );
    assert!(
        text.contains(r#"stave_partition_bytes_produced_total{topic="orders",partition="2"} 1500"#),
        "{text}"
    );
    assert!(
        text.contains(r#"stave_partition_records_fetched_total{topic="orders",partition="2"} 3"#),
        "{text}"
    );
    let per_topic = Metrics::new(false);
    per_topic.produced("orders", 0, 1, 10);
    per_topic.produced("orders", 1, 2, 20);
    let text = encoded(&per_topic);
    assert!(
        text.contains(r#"stave_partition_records_produced_total{topic="orders"} 3"#),
        "{text}"
    );
    assert!(!text.contains("partition=\""), "{text}");
}

#[test]
fn rpc_codes_are_named_as_grpc_spells_them() {
    assert_eq!(rpc::code_name(tonic::Code::Ok), "OK");
    assert_eq!(
        rpc::code_name(tonic::Code::InvalidArgument),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        rpc::code_name(tonic::Code::Unauthenticated),
        "UNAUTHENTICATED"
    );
}

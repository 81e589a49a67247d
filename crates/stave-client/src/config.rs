//! Settings of the client, the producer and the consumer. Defaults live in the `Default`
//! impls here and nowhere else.

use std::time::Duration;

use crate::credentials::Credentials;
use crate::error::ClientError;
use crate::tls::TlsConfig;

/// The port a bootstrap address without one gets (`stave server`'s default).
pub const DEFAULT_PORT: u16 = 7070;

/// The largest gRPC message the client sends or receives: the broker's own limit (the header
/// of `proto/stave/v1/stave.proto`, "Message sizes").
pub const MESSAGE_BYTES_MAX: usize = 16 << 20;

/// How to reach the cluster, and how long to keep trying.
///
/// Two bounds keep a node that stops answering (paused, overloaded, cut off: its sockets may
/// still accept) from holding a request for longer than one election: `request_timeout` bounds
/// each attempt of each request, and HTTP/2 keep-alive PINGs close a connection whose peer
/// stops answering them. Either way the client gives up on that node for the attempt,
/// refreshes its metadata and retries where the answers point (the producer with the same
/// sequence numbers, so nothing is written twice), until `retry_timeout` or the producer's
/// `delivery_timeout`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of nodes to start from: any reachable one will do.
    pub bootstrap: Vec<String>,
    /// How long one TCP connection attempt may take. (A paused process's kernel still
    /// accepts connections: that case is caught by the two bounds below.)
    pub connect_timeout: Duration,
    /// How long one attempt of a request may wait for its answer before the client gives up
    /// on that node for this attempt and retries: the same for every call (produce, metadata,
    /// admin, consumer-group coordinator calls); a fetch adds its long-poll wait
    /// (`ConsumerConfig::fetch_wait_max`) to it.
    pub request_timeout: Duration,
    /// How long a connection may go without receiving anything before the client sends an
    /// HTTP/2 PING on it (idle connections included).
    pub keep_alive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed and every request
    /// on it fails (to be retried): a node whose process stopped answers no PING.
    pub keep_alive_timeout: Duration,
    /// How long metadata and admin requests retry "no leader yet", a leader change or a
    /// restarting node before giving up.
    pub retry_timeout: Duration,
    /// The first pause between retries; it doubles up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// TLS to every node (`https://`): the CA that signs their certificates, and a client
    /// certificate for mutual TLS; `None` speaks plaintext.
    pub tls: Option<TlsConfig>,
    /// Who the client is, sent with every call (a bearer token); none by default.
    pub credentials: Credentials,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap: vec![format!("127.0.0.1:{DEFAULT_PORT}")],
            // A TCP handshake takes well under a millisecond on a LAN; 2 s leaves room for one
            // lost SYN (retransmitted after 1 s), as the nodes' own Raft transport does.
            connect_timeout: Duration::from_secs(2),
            // The broker answers every produce within its produce timeout (4 s, about a
            // partition's longest election timeout): written, or REQUEST_TIMED_OUT when its
            // partition has no quorum. One more second covers the network and a loaded node.
            // So a live node always answers first, and by the time an attempt on a frozen
            // leader is given up the other replicas have had a full election timeout (2-4 s)
            // to elect a new one. Half of `stave`'s 10 s timeout: room for the retry.
            request_timeout: Duration::from_secs(5),
            // A node's process answers a PING from its connection task, in well under a
            // millisecond even when busy. Silence for 1 s, then 2 s more without an answer,
            // closes the connection: 3 s, inside `request_timeout`, so requests with a longer
            // bound (a fetch's long poll, a produce stream) learn as early.
            keep_alive_interval: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(2),
            retry_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_millis(50),
            // While a partition has no leader that answers, this is also how often a producer
            // or a consumer asks its replicas again: a new leader is found at most this long
            // after it is elected.
            retry_backoff_max: Duration::from_millis(500),
            tls: None,
            credentials: Credentials::none(),
        }
    }
}

impl ClientConfig {
    /// Defaults with a bootstrap list `host:port[,host:port...]`.
    pub fn new(bootstrap: &str) -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig {
            bootstrap: parse_bootstrap(bootstrap)?,
            ..ClientConfig::default()
        })
    }

    /// Refuses settings that cannot work: a zero timeout would fail every request.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("keep_alive_interval", self.keep_alive_interval),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(ClientError::Config {
                    message: format!("{name} must be above zero"),
                });
            }
        }
        Ok(())
    }

    /// The pause before retry number `attempt` (0-based).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.retry_backoff_max)
    }
}

/// Splits `host:port[,host:port...]`; an address without a port gets [`DEFAULT_PORT`].
pub fn parse_bootstrap(list: &str) -> Result<Vec<String>, ClientError> {
    let mut addrs = Vec::new();
    for addr in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let addr = addr
            .strip_prefix("http://")
            .unwrap_or(addr)
            .trim_end_matches('/');
        let has_port = match addr.rsplit_once(':') {
            // A bare IPv6 address has colons but no port unless it is bracketed.
            Some((host, port)) => {
                port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
            }
            None => false,
        };
        if addr.contains(char::is_whitespace) || addr.contains('/') {
            return Err(ClientError::Config {
                message: format!("{addr:?} is not HOST:PORT"),
            });
        }
        if has_port {
            addrs.push(addr.to_string());
        } else {
            addrs.push(format!("{addr}:{DEFAULT_PORT}"));
        }
    }
    if addrs.is_empty() {
        return Err(ClientError::Config {
            message: format!("bootstrap list {list:?} holds no address"),
        });
    }
    Ok(addrs)
}

/// How a producer batches, retries and identifies itself.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// How long a batch waits for more records before it is sent (Kafka's `linger.ms`).
    pub linger: Duration,
    /// A batch is sent once it holds this many bytes (Kafka's `batch.size`); a keyless record
    /// also moves to another sticky partition after this many bytes.
    pub batch_bytes: usize,
    /// The largest batch frame a request carries: the broker's `max_message_bytes`.
    pub request_bytes_max: usize,
    /// Bytes of records accepted but not yet acknowledged; `send` waits while it is full.
    pub buffer_bytes_max: usize,
    /// Batches in flight per partition (at most 5: the broker remembers a producer's last 5
    /// batches for duplicate detection).
    pub in_flight_max: usize,
    /// How long a record may take from being accepted by `send` (after any wait for room in
    /// the buffer) to acknowledgement, retries included.
    pub delivery_timeout: Duration,
    /// Idempotent produce (a producer id and sequence numbers): retries never duplicate.
    pub idempotent: bool,
    /// Add a unique `id` header to every record that has none.
    pub message_ids: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::from_millis(5),
            batch_bytes: 256 << 10,
            request_bytes_max: 1 << 20,
            buffer_bytes_max: 32 << 20,
            in_flight_max: IN_FLIGHT_LIMIT,
            delivery_timeout: Duration::from_secs(120),
            idempotent: true,
            message_ids: true,
        }
    }
}

/// The most batches in flight per partition the broker's duplicate detection covers
/// (`stave_raft::producers::BATCHES_RETAINED`).
pub const IN_FLIGHT_LIMIT: usize = 5;

impl ProducerConfig {
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        let fail = |message: String| Err(ClientError::Config { message });
        if self.in_flight_max == 0 || self.in_flight_max > IN_FLIGHT_LIMIT {
            return fail(format!(
                "in_flight_max {} must be within [1, {IN_FLIGHT_LIMIT}]",
                self.in_flight_max
            ));
        }
        if self.batch_bytes == 0 || self.batch_bytes > self.request_bytes_max {
            return fail(format!(
                "batch_bytes {} must be within [1, request_bytes_max {}]",
                self.batch_bytes, self.request_bytes_max
            ));
        }
        if self.buffer_bytes_max < self.request_bytes_max {
            return fail(format!(
                "buffer_bytes_max {} must be at least request_bytes_max {}",
                self.buffer_bytes_max, self.request_bytes_max
            ));
        }
        Ok(())
    }
}

/// Where a consumer starts reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The log start: the oldest record retention kept.
    Earliest,
    /// The high watermark: only records written from now on.
    Latest,
    /// This offset.
    Offset(u64),
    /// The first record with a timestamp at or after this (epoch milliseconds); the end when
    /// there is none.
    Timestamp(i64),
}

/// What a consumer does when its position is outside the partition's records (retention
/// removed them, or it asked for an offset not written yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Continue from the log start (records in between are lost to this consumer).
    Earliest,
    /// Continue from the high watermark.
    Latest,
    /// Stop with [`ClientError::OffsetOutOfRange`]: the consumer decides.
    #[default]
    Error,
}

/// How a consumer fetches.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Bytes of batches one fetch returns at most, per partition.
    pub fetch_bytes_max: u32,
    /// A fetch waits until this many bytes are ready, or `fetch_wait_max` passed.
    pub fetch_bytes_min: u32,
    pub fetch_wait_max: Duration,
    pub offset_reset: OffsetReset,
    /// How long a partition may keep failing with retriable errors (no leader, node down)
    /// before the consumer reports the error.
    pub retry_timeout: Duration,
    /// Group members: how often positions are committed (also on revocation and close);
    /// `None` commits only when told ([`Consumer::commit`](crate::Consumer::commit)).
    pub auto_commit_interval: Option<Duration>,
    /// Group members: where a partition the group never committed starts (Kafka's
    /// `auto.offset.reset`): `Latest` (only new records) by default, `Earliest` for
    /// everything retention kept.
    pub start_without_commit: StartPosition,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_bytes_max: 4 << 20,
            fetch_bytes_min: 1,
            fetch_wait_max: Duration::from_millis(500),
            offset_reset: OffsetReset::default(),
            retry_timeout: Duration::from_secs(60),
            auto_commit_interval: Some(Duration::from_secs(5)),
            start_without_commit: StartPosition::Latest,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bootstrap_list_parses_and_adds_the_default_port() {
        let addrs = parse_bootstrap("127.0.0.1:7071, localhost ,http://h:9/,[::1]:7000").unwrap();
        assert_eq!(
            addrs,
            ["127.0.0.1:7071", "localhost:7070", "h:9", "[::1]:7000"]
        );
    }

    #[test]
    fn bootstrap_list_refuses_empty_and_garbage() {
        assert!(parse_bootstrap(" , ").is_err());
        assert!(parse_bootstrap("a b:1").is_err());
        assert!(parse_bootstrap("h:1/x").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let config = ClientConfig::default();
        assert_eq!(config.backoff(0), Duration::from_millis(50));
        assert_eq!(config.backoff(2), Duration::from_millis(200));
        assert_eq!(config.backoff(40), Duration::from_millis(500));
    }

    /// Each attempt is bounded well inside `stave`'s 10 s timeout yet above the broker's 4 s
    /// produce timeout (a live leader always answers first), and a silent connection is
    /// closed before an attempt's bound.
    #[test]
    fn default_bounds_leave_room_for_a_retry_after_a_frozen_node() {
        let config = ClientConfig::default();
        assert!(config.validate().is_ok());
        assert!(config.request_timeout > Duration::from_secs(4));
        assert!(config.request_timeout * 2 <= Duration::from_secs(10));
        assert!(config.keep_alive_interval + config.keep_alive_timeout < config.request_timeout);
        let zero = ClientConfig {
            request_timeout: Duration::ZERO,
            ..ClientConfig::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn producer_config_limits_in_flight_to_what_the_broker_deduplicates() {
        let mut config = ProducerConfig::default();
        assert!(config.validate().is_ok());
        config.in_flight_max = 6;
        assert!(config.validate().is_err());
        config.in_flight_max = 1;
        config.batch_bytes = config.request_bytes_max + 1;
        assert!(config.validate().is_err());
    }
}

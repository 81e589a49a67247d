//! `ClientError`, the one error type of this crate.
//!
//! Broker answers keep their typed [`ErrorCode`]: callers match on [`ClientError::code`]
//! rather than on text. [`ClientError::is_retriable`] is the one table of what a retry can
//! fix; the producer refines it per outcome (see `producer::outcome`).

use std::time::Duration;

use stave_proto::v1::ErrorCode;

/// What went wrong talking to Stave.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration cannot work (an empty bootstrap list, a bad address, a zero limit).
    #[error("invalid configuration: {message}")]
    Config { message: String },

    /// A TLS file or PEM cannot be used (`what` names it: a file, or "the CA certificate").
    #[error("TLS {what}")]
    Tls {
        what: String,
        #[source]
        problem: TlsProblem,
    },

    /// A caller's argument is refused before anything is sent.
    #[error("{message}")]
    InvalidArgument { message: String },

    /// Every bootstrap address refused the connection: nothing to retry against.
    #[error("no broker reachable at {addrs}")]
    Unreachable {
        addrs: String,
        #[source]
        source: Box<ClientError>,
    },

    /// A connection to one node could not be made.
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },

    /// A request failed as a whole (gRPC status): the connection dropped, the node is shutting
    /// down, or it does not serve the call.
    #[error("{addr} failed the request: {code:?}: {message}")]
    Rpc {
        addr: String,
        code: tonic::Code,
        message: String,
    },

    /// A node did not answer one attempt within its bound (`request_timeout`, plus the long
    /// poll of a fetch): it may be paused, overloaded or cut off, and the request may have
    /// been carried out. Retried elsewhere, or at the same node later.
    #[error("{addr} did not answer within {} ms", .waited.as_millis())]
    NoAnswer { addr: String, waited: Duration },

    /// The broker answered with a typed error.
    #[error("{}", broker_message(*.code, .message))]
    Broker {
        code: ErrorCode,
        message: String,
        /// NOT_LEADER: the leader the answering node knows of.
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },

    /// The topic does not exist (by the cluster's metadata).
    #[error("unknown topic {topic:?}")]
    UnknownTopic { topic: String },

    /// The topic exists, the partition does not.
    #[error("topic {topic:?} has {partitions} partitions, there is no partition {partition}")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },

    /// A consumer's position is outside what the partition holds, and its reset policy is
    /// [`OffsetReset::Error`](crate::OffsetReset::Error).
    #[error(
        "offset {offset} of {topic}/{partition} is out of range [{log_start_offset}, \
         {high_watermark}]: {}",
        if offset < log_start_offset { "retention removed it" } else { "it is not written yet" }
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        log_start_offset: u64,
        high_watermark: u64,
    },

    /// One record is larger than a produce request may be.
    #[error("a record of {bytes} bytes is larger than the {bytes_max} bytes a request may carry")]
    RecordTooLarge { bytes: usize, bytes_max: usize },

    /// A fetched batch failed its CRC or does not decode: the bytes were damaged on the way.
    #[error("corrupt batch in {topic}/{partition}")]
    Corrupt {
        topic: String,
        partition: u32,
        #[source]
        source: stave_log::LogError,
    },

    /// Retries did not succeed within the time allowed. `last` is the last failure seen.
    #[error("{what}: gave up after {} ms", .elapsed.as_millis())]
    Timeout {
        what: String,
        elapsed: Duration,
        #[source]
        last: Option<Box<ClientError>>,
    },

    /// The producer or consumer was closed.
    #[error("{what} is closed")]
    Closed { what: &'static str },
}

/// Why a TLS file or PEM cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsProblem {
    #[error("cannot be read")]
    Read(#[source] std::io::Error),
    #[error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoPrivateKey,
    #[error("is not valid PEM: {0}")]
    BadPem(String),
    #[error("is not the private key of {cert}")]
    KeyMismatch { cert: String },
    #[error("is not usable: {0}")]
    Unusable(String),
}

fn broker_message(code: ErrorCode, message: &str) -> String {
    if message.is_empty() {
        code.as_str_name().to_string()
    } else {
        format!("{message} ({})", code.as_str_name())
    }
}

impl ClientError {
    /// The broker's error code, when the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            ClientError::UnknownTopic { .. } => Some(ErrorCode::UnknownTopic),
            ClientError::UnknownPartition { .. } => Some(ErrorCode::UnknownPartition),
            ClientError::OffsetOutOfRange { .. } => Some(ErrorCode::OffsetOutOfRange),
            ClientError::RecordTooLarge { .. } => Some(ErrorCode::MessageTooLarge),
            ClientError::Timeout {
                last: Some(last), ..
            } => last.code(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: no leader yet, a leader change, a node
    /// restarting, a request that timed out on the broker.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => is_retriable_code(*code),
            ClientError::Connect { .. } | ClientError::NoAnswer { .. } => true,
            ClientError::Rpc { code, .. } => is_retriable_status(*code),
            _ => false,
        }
    }

    /// Whether the failure says nothing about the request's fate: it may have been carried
    /// out (a timeout, a connection lost after sending).
    pub fn is_in_doubt(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => {
                matches!(code, ErrorCode::RequestTimedOut | ErrorCode::Internal)
            }
            ClientError::Rpc { code, .. } => !matches!(code, tonic::Code::Unimplemented),
            ClientError::NoAnswer { .. } => true,
            _ => false,
        }
    }

    /// Whether the cached metadata is likely stale after this failure.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Broker {
                code: ErrorCode::NotLeader,
                leader_addr,
                ..
            } => leader_addr.is_none(),
            ClientError::Broker { code, .. } => matches!(
                code,
                ErrorCode::LeaderNotAvailable
                    | ErrorCode::UnknownTopic
                    | ErrorCode::UnknownPartition
            ),
            ClientError::Connect { .. }
            | ClientError::Rpc { .. }
            | ClientError::NoAnswer { .. } => true,
            ClientError::UnknownTopic { .. } | ClientError::UnknownPartition { .. } => true,
            _ => false,
        }
    }

    /// A connection-level failure: the cached connection to that node should be dropped.
    pub(crate) fn is_connection_failure(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            ClientError::Rpc { code, .. } => {
                matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown)
            }
            _ => false,
        }
    }

    /// The node itself failed the request (no answer in time, or no connection), as opposed
    /// to answering it: the client asks it last for a while (see `Client::suspect`).
    pub(crate) fn is_node_failure(&self) -> bool {
        matches!(self, ClientError::NoAnswer { .. }) || self.is_connection_failure()
    }

    /// A redirect: NOT_LEADER with the leader's address.
    pub(crate) fn leader_hint(&self) -> Option<(Option<u64>, &str)> {
        match self {
            ClientError::Broker {
                code: ErrorCode::NotLeader,
                leader_id,
                leader_addr: Some(addr),
                ..
            } => Some((*leader_id, addr.as_str())),
            _ => None,
        }
    }

    /// A copy for one more waiter: a batch's error goes to each of its records. Sources that
    /// cannot be cloned keep their text.
    pub(crate) fn replicate(&self) -> ClientError {
        match self {
            ClientError::Config { message } => ClientError::Config {
                message: message.clone(),
            },
            ClientError::InvalidArgument { message } => ClientError::InvalidArgument {
                message: message.clone(),
            },
            ClientError::Tls { what, problem } => ClientError::Config {
                message: format!("TLS {what}: {}", display_chain(problem)),
            },
            ClientError::Unreachable { addrs, source } => ClientError::Unreachable {
                addrs: addrs.clone(),
                source: Box::new(source.replicate()),
            },
            ClientError::Connect { addr, source } => ClientError::Rpc {
                addr: addr.clone(),
                code: tonic::Code::Unavailable,
                message: display_chain(source),
            },
            ClientError::Rpc {
                addr,
                code,
                message,
            } => ClientError::Rpc {
                addr: addr.clone(),
                code: *code,
                message: message.clone(),
            },
            ClientError::NoAnswer { addr, waited } => ClientError::NoAnswer {
                addr: addr.clone(),
                waited: *waited,
            },
            ClientError::Corrupt {
                topic,
                partition,
                source,
            } => ClientError::Broker {
                code: ErrorCode::CorruptBatch,
                message: format!("corrupt batch in {topic}/{partition}: {source}"),
                leader_id: None,
                leader_addr: None,
            },
            ClientError::Timeout {
                what,
                elapsed,
                last,
            } => ClientError::Timeout {
                what: what.clone(),
                elapsed: *elapsed,
                last: last.as_ref().map(|last| Box::new(last.replicate())),
            },
            ClientError::Closed { what } => ClientError::Closed { what },
            ClientError::Broker { .. }
            | ClientError::UnknownTopic { .. }
            | ClientError::UnknownPartition { .. }
            | ClientError::OffsetOutOfRange { .. }
            | ClientError::RecordTooLarge { .. } => self.replicate_answer(),
        }
    }

    /// [`ClientError::replicate`] of a typed answer (a broker's error code, an unknown topic or
    /// partition, an offset out of range, a record too large): every field is copied.
    fn replicate_answer(&self) -> ClientError {
        match self {
            ClientError::Broker {
                code,
                message,
                leader_id,
                leader_addr,
            } => ClientError::Broker {
                code: *code,
                message: message.clone(),
                leader_id: *leader_id,
                leader_addr: leader_addr.clone(),
            },
            ClientError::UnknownTopic { topic } => ClientError::UnknownTopic {
                topic: topic.clone(),
            },
            ClientError::UnknownPartition {
                topic,
                partition,
                partitions,
            } => ClientError::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
                partitions: *partitions,
            },
            ClientError::OffsetOutOfRange {
                topic,
                partition,
                offset,
                log_start_offset,
                high_watermark,
            } => ClientError::OffsetOutOfRange {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
                log_start_offset: *log_start_offset,
                high_watermark: *high_watermark,
            },
            ClientError::RecordTooLarge { bytes, bytes_max } => ClientError::RecordTooLarge {
                bytes: *bytes,
                bytes_max: *bytes_max,
            },
            other => unreachable!("replicate copies {other:?} itself"),
        }
    }

    pub(crate) fn rpc(addr: &str, status: tonic::Status) -> ClientError {
        // The status message of a transport failure is generic ("transport error"); its
        // source chain says what happened (connection refused, reset), so keep both.
        let mut message = status.message().to_string();
        let mut source = std::error::Error::source(&status);
        while let Some(err) = source {
            let text = err.to_string();
            if !message.contains(&text) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&text);
            }
            source = err.source();
        }
        ClientError::Rpc {
            addr: addr.to_string(),
            code: status.code(),
            message,
        }
    }

    /// A typed error from a response's `Error` field; `None` when the code is `NONE`.
    pub(crate) fn from_proto(error: Option<stave_proto::v1::Error>) -> Option<ClientError> {
        let error = error?;
        let code = ErrorCode::try_from(error.code).unwrap_or(ErrorCode::Internal);
        if code == ErrorCode::None {
            return None;
        }
        Some(ClientError::Broker {
            code,
            message: error.message,
            leader_id: error.leader_id,
            leader_addr: (!error.leader_addr.is_empty()).then_some(error.leader_addr),
        })
    }

    /// `Err` for a response error other than `NONE`.
    pub(crate) fn check(error: Option<stave_proto::v1::Error>) -> Result<(), ClientError> {
        match Self::from_proto(error) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Broker codes a retry can fix.
pub(crate) fn is_retriable_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeader
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::RequestTimedOut
            | ErrorCode::DuplicateInFlight
            | ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            // The node's disk is full: writes resume by themselves once space is freed.
            | ErrorCode::StorageFull
    )
}

/// gRPC statuses a retry can fix: the node is unreachable, restarting or overloaded.
fn is_retriable_status(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
    )
}

/// The error and its sources on one line, separated by ": ", each said once.
pub fn display_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = next.source();
    }
    line.replace('\n', " ")
}

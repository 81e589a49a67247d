//! One `ProduceStream` per node: requests from every partition led by that node share the
//! stream, each tagged with a stream-wide `sequence` that the answer echoes back. Requests
//! for one partition are answered in order, so a partition can keep several batches in
//! flight (pipelining) without reordering them.
//!
//! The stream's end (the node went away, or shut down) answers every request still waiting
//! with a connection error; the next request opens a new stream. Bounded by construction:
//! each partition has at most `in_flight_max` requests out.
//!
//! Each request waits at most `request_timeout` for its answer. A live node answers every
//! request within its produce timeout, which is shorter, so a request left unanswered means
//! the node stopped (paused, cut off): the whole stream is abandoned at once — every request
//! on it fails with [`ClientError::NoAnswer`] and the stream is reset — so the partitions'
//! workers resend those batches (same producer id, epoch and sequence) to wherever their
//! leader is now, and the broker answers any it already wrote as duplicates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stave_proto::v1::{ProduceRequest, ProduceResponse};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::debug;

use crate::client::{Client, NodeClient};
use crate::error::ClientError;

type Reply = oneshot::Sender<Result<ProduceResponse, ClientError>>;

/// Answers waiting on one stream.
#[derive(Debug, Default)]
struct Waiting {
    /// The stream ended: no answer will come.
    closed: bool,
    replies: HashMap<u64, Reply>,
}

#[derive(Debug)]
struct State {
    addr: String,
    waiting: Mutex<Waiting>,
    next_sequence: AtomicU64,
    /// The task reading the stream's answers; aborted (which resets the stream) when the
    /// stream is abandoned.
    reader: Mutex<Option<AbortHandle>>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        match self.waiting.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn close(&self, err: &ClientError) {
        let replies = {
            let mut waiting = self.lock();
            waiting.closed = true;
            std::mem::take(&mut waiting.replies)
        };
        for (_, reply) in replies {
            let _ = reply.send(Err(err.replicate()));
        }
    }

    /// Gives up on the stream: fails every request still waiting with `err`, and stops
    /// reading (dropping the call resets the HTTP/2 stream).
    fn abandon(&self, err: &ClientError) {
        self.close(err);
        let reader = match self.reader.lock() {
            Ok(mut reader) => reader.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(reader) = reader {
            reader.abort();
        }
    }
}

/// A produce stream to one node.
#[derive(Debug)]
pub(crate) struct Session {
    state: Arc<State>,
    requests: mpsc::UnboundedSender<ProduceRequest>,
}

impl Session {
    fn open(addr: String, mut node: NodeClient) -> Session {
        let (requests, outgoing) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            addr,
            waiting: Mutex::new(Waiting::default()),
            next_sequence: AtomicU64::new(0),
            reader: Mutex::new(None),
        });
        let reader = state.clone();
        let task = tokio::spawn(async move {
            let outgoing = UnboundedReceiverStream::new(outgoing);
            let end = match node.produce_stream(outgoing).await {
                Err(status) => ClientError::rpc(&reader.addr, status),
                Ok(response) => {
                    let mut answers = response.into_inner();
                    loop {
                        match answers.message().await {
                            Ok(Some(answer)) => {
                                let reply = reader.lock().replies.remove(&answer.sequence);
                                if let Some(reply) = reply {
                                    let _ = reply.send(Ok(answer));
                                }
                            }
                            Ok(None) => {
                                break ClientError::Rpc {
                                    addr: reader.addr.clone(),
                                    code: tonic::Code::Unavailable,
                                    message: "the produce stream ended".into(),
                                };
                            }
                            Err(status) => break ClientError::rpc(&reader.addr, status),
                        }
                    }
                }
            };
            debug!(addr = %reader.addr, error = %end, "produce stream closed");
            reader.close(&end);
        });
        if let Ok(mut reader) = state.reader.lock() {
            *reader = Some(task.abort_handle());
        }
        Session { state, requests }
    }

    fn is_closed(&self) -> bool {
        self.state.lock().closed || self.requests.is_closed()
    }

    /// Sends `request`; the returned future answers it, or fails after `timeout` with
    /// [`ClientError::NoAnswer`], abandoning the stream (see the module's header).
    pub(crate) fn send(
        &self,
        mut request: ProduceRequest,
        timeout: Duration,
    ) -> impl Future<Output = Result<ProduceResponse, ClientError>> + Send + 'static {
        let sequence = self.state.next_sequence.fetch_add(1, Ordering::Relaxed);
        request.sequence = sequence;
        let (reply, answer) = oneshot::channel();
        let refused = {
            let mut waiting = self.state.lock();
            if waiting.closed {
                Some(reply)
            } else {
                waiting.replies.insert(sequence, reply);
                None
            }
        };
        if let Some(reply) = refused {
            let _ = reply.send(Err(self.closed_error()));
        } else if self.requests.send(request).is_err() {
            let reply = self.state.lock().replies.remove(&sequence);
            if let Some(reply) = reply {
                let _ = reply.send(Err(self.closed_error()));
            }
        }
        let state = self.state.clone();
        async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ClientError::Rpc {
                    addr: state.addr.clone(),
                    code: tonic::Code::Unavailable,
                    message: "the produce stream ended".into(),
                }),
                Err(_) => {
                    let err = ClientError::NoAnswer {
                        addr: state.addr.clone(),
                        waited: timeout,
                    };
                    debug!(addr = %state.addr, "no produce answer in time: abandoning the stream");
                    state.abandon(&err);
                    Err(err)
                }
            }
        }
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Rpc {
            addr: self.state.addr.clone(),
            code: tonic::Code::Unavailable,
            message: "the produce stream is closed".into(),
        }
    }
}

/// The producer's streams, one per node address.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// The open stream to `addr`, or a new one.
    pub(crate) async fn get(
        &self,
        client: &Client,
        addr: &str,
    ) -> Result<Arc<Session>, ClientError> {
        if let Some(session) = self.lookup(addr) {
            return Ok(session);
        }
        let node = client.connection(addr).await?;
        let mut open = match self.open.lock() {
            Ok(open) => open,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another worker may have opened one meanwhile.
        if let Some(session) = open.get(addr).filter(|s| !s.is_closed()) {
            return Ok(session.clone());
        }
        let session = Arc::new(Session::open(addr.to_string(), node));
        open.insert(addr.to_string(), session.clone());
        Ok(session)
    }

    fn lookup(&self, addr: &str) -> Option<Arc<Session>> {
        let open = self.open.lock().ok()?;
        open.get(addr).filter(|s| !s.is_closed()).cloned()
    }

    /// Stops handing out `session` for `addr` (requests in flight on it still complete).
    pub(crate) fn retire(&self, addr: &str, session: &Arc<Session>) {
        if let Ok(mut open) = self.open.lock()
            && open.get(addr).is_some_and(|s| Arc::ptr_eq(s, session))
        {
            open.remove(addr);
        }
    }

    /// Closes every stream (their requests end once the last sender is dropped).
    pub(crate) fn clear(&self) {
        if let Ok(mut open) = self.open.lock() {
            open.clear();
        }
    }
}

#[cfg(test)]
mod tests;

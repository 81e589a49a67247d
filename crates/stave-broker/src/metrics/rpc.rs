//! Every RPC on the node's port, counted by method and gRPC status code, and timed: one tower
//! layer on the tonic server, so the public API, health, reflection and the Raft services
//! are all seen the same way, whatever a handler does.
//!
//! The method is the request's path (`/stave.v1.Stave/Produce`). The code is the
//! `grpc-status` of the response's headers (a trailers-only answer: an error, or an unknown
//! method) or of its trailers (a normal end); a body dropped before its trailers (the client
//! went away) counts as CANCELLED. A path the server has no route for is answered
//! UNIMPLEMENTED in the headers and counted as method `other`, so a client cannot grow the
//! label set. The duration is the time to the response's headers: the whole call for a
//! unary RPC, the time to open the stream for a streaming one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::Code;

use super::Metrics;

/// The label of paths with no route.
const METHOD_OTHER: &str = "other";
/// Paths longer than this are counted as [`METHOD_OTHER`] (no method of ours is near it).
const METHOD_LEN_MAX: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RpcLabels {
    method: String,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct MethodLabels {
    method: String,
}

type DurationFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The RPC series.
#[derive(Debug)]
pub(crate) struct RpcMetrics {
    requests: Family<RpcLabels, Counter>,
    duration: DurationFamily,
}

fn duration_histogram() -> Histogram {
    // 100 µs to ~26 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 19))
}

impl RpcMetrics {
    pub(super) fn register(registry: &mut Registry) -> RpcMetrics {
        let requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "stave_rpc_requests",
            "RPCs answered on the node's port, by method (the gRPC path, `other` for paths with \
             no route) and gRPC status code (CANCELLED when the client left before the end); \
             a streaming RPC counts when it ends.",
            requests.clone(),
        );
        let duration = DurationFamily::new_with_constructor(duration_histogram);
        registry.register(
            "stave_rpc_duration_seconds",
            "Time from an RPC's request to its response headers: the whole call for a unary \
             RPC, the time to open the stream for a streaming one.",
            duration.clone(),
        );
        RpcMetrics { requests, duration }
    }

    fn finished(&self, method: &str, code: &'static str) {
        let labels = RpcLabels {
            method: method.to_string(),
            code,
        };
        self.requests.get_or_create(&labels).inc();
    }

    fn answered(&self, method: &str, seconds: f64) {
        let labels = MethodLabels {
            method: method.to_string(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
    }
}

/// The layer to put on the tonic server builder (`Server::builder().layer(..)`).
#[derive(Debug, Clone)]
pub(crate) struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    pub(crate) fn new(metrics: Arc<Metrics>) -> RpcLayer {
        RpcLayer { metrics }
    }
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// [`RpcLayer`]'s service.
#[derive(Debug, Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for RpcService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = http::Response<RecordedBody<RB>>;
    type Error = S::Error;
    type Future = RpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        RpcFuture {
            inner: self.inner.call(request),
            started: Instant::now(),
            call: Some((self.metrics.clone(), path)),
        }
    }
}

pin_project_lite::pin_project! {
    /// An RPC until its response headers.
    pub(crate) struct RpcFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        call: Option<(Arc<Metrics>, String)>,
    }
}

impl<F, RB, E> Future for RpcFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<RecordedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let seconds = this.started.elapsed().as_secs_f64();
        let Some((metrics, path)) = this.call.take() else {
            // Polled after it finished: the service's contract says it never is.
            return Poll::Ready(result.map(|response| response.map(RecordedBody::done)));
        };
        let Ok(response) = result else {
            let method = method_label(&path, None);
            metrics.rpc().answered(&method, seconds);
            metrics.rpc().finished(&method, code_name(Code::Unknown));
            return Poll::Ready(result.map(|response| response.map(RecordedBody::done)));
        };
        let code = grpc_status(response.headers());
        let method = method_label(&path, code);
        metrics.rpc().answered(&method, seconds);
        let pending = match code {
            // A trailers-only answer: the call ends here.
            Some(code) => {
                metrics.rpc().finished(&method, code_name(code));
                None
            }
            None => Some(Pending {
                metrics,
                method,
                finished: false,
            }),
        };
        Poll::Ready(Ok(response.map(|inner| RecordedBody { inner, pending })))
    }
}

/// The method label of a call to `path` answered `code` in its headers.
fn method_label(path: &str, code: Option<Code>) -> String {
    if code == Some(Code::Unimplemented) || path.len() > METHOD_LEN_MAX {
        METHOD_OTHER.to_string()
    } else {
        path.to_string()
    }
}

/// The `grpc-status` in `headers`, if any (an unreadable one is UNKNOWN).
fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// A call whose trailers have not been seen yet; dropped unfinished, it counts as CANCELLED.
struct Pending {
    metrics: Arc<Metrics>,
    method: String,
    finished: bool,
}

impl Pending {
    fn finish(mut self, code: Code) {
        self.finished = true;
        self.metrics.rpc().finished(&self.method, code_name(code));
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics
                .rpc()
                .finished(&self.method, code_name(Code::Cancelled));
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its call once its trailers pass.
    pub(crate) struct RecordedBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }
}

impl<B> RecordedBody<B> {
    fn done(inner: B) -> RecordedBody<B> {
        RecordedBody {
            inner,
            pending: None,
        }
    }
}

impl<B: http_body::Body> http_body::Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = ready!(this.inner.poll_frame(cx));
        let ended = match &polled {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| grpc_status(trailers).unwrap_or(Code::Unknown)),
            Some(Err(_)) | None => Some(Code::Unknown),
        };
        if let Some(code) = ended
            && let Some(pending) = this.pending.take()
        {
            pending.finish(code);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The status code's name as gRPC spells it (`INVALID_ARGUMENT`).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

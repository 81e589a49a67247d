//! The metrics listener: HTTP/1.1 on its own port, `GET /metrics` answered with the
//! OpenMetrics text, anything else 404.
//!
//! It can cost the broker little: at most [`CONNECTIONS_MAX`] connections (more are closed
//! at once), each closed after [`CONNECTION_TIME_MAX`] whatever it does (a slow or stuck
//! scraper holds nothing but its own socket), one scrape gathered at a time, and the
//! listener holds the broker weakly, so a node that stops is not kept alive by a scraper.

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::broker::Broker;

/// Connections served at once; more are closed as they arrive.
const CONNECTIONS_MAX: usize = 8;
/// How long a connection may stay open, requests and idle time together.
const CONNECTION_TIME_MAX: Duration = Duration::from_secs(30);
/// The pause after a failed accept (out of descriptors), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What prometheus-client encodes, and Prometheus asks for first.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running listener; dropping it stops it and its connections.
#[derive(Debug)]
pub(crate) struct Exporter {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `/metrics` of `broker` on `listener` (none: nothing to serve) until the returned
/// handle is dropped.
pub(crate) fn serve(
    broker: &Arc<Broker>,
    listener: Option<tokio::net::TcpListener>,
) -> Option<Exporter> {
    let listener = listener?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving metrics on /metrics");
    }
    let broker = Arc::downgrade(broker);
    Some(Exporter {
        task: tokio::spawn(accept(listener, broker)),
    })
}

async fn accept(listener: tokio::net::TcpListener, broker: Weak<Broker>) {
    let connections = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let scraping = Arc::new(tokio::sync::Mutex::new(()));
    // Dropped with this task: every connection ends with the listener.
    let mut served = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::debug!(%err, "metrics listener: accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        while served.try_join_next().is_some() {}
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            continue;
        };
        let broker = broker.clone();
        let scraping = scraping.clone();
        served.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (broker, scraping) = (broker.clone(), scraping.clone());
                async move { Ok::<_, Infallible>(respond(request, &broker, &scraping).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            let _ = tokio::time::timeout(CONNECTION_TIME_MAX, connection).await;
            drop(permit);
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    broker: &Weak<Broker>,
    scraping: &tokio::sync::Mutex<()>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at GET /metrics\n",
        );
    }
    let Some(broker) = broker.upgrade() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping\n");
    };
    let text = {
        let _one_at_a_time = scraping.lock().await;
        super::collect::scrape(&broker).await
    };
    match text {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(CONTENT_TYPE),
            );
            response
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

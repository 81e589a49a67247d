//! The latency floor of a lone produce over tonic on this machine, with no broker behind it.
//!
//! A server that answers each `ProduceStream` request at once (no Raft, no log) and a client
//! that sends from a paced thread straight into the request stream (no producer pipeline):
//! what gRPC over HTTP/2 and tokio cost before Stave does anything. `stave bench produce
//! --rate` measures the same path with the broker and the client library added, so the two
//! side by side say how much of a lone record's latency is Stave's own.
//!
//! A measurement tool, not a usage example: the root package builds it as the example
//! `grpc_floor` (an `[[example]]` entry in `Cargo.toml`), and `w4-split.sh` beside it and
//! `scripts/compare/nats.sh` run it.
//!
//! ```text
//! cargo run --release --example grpc_floor -- serve 127.0.0.1:7700 [inline|tasks]
//! cargo run --release --example grpc_floor -- send 127.0.0.1:7700 [RATE] [SECS] [direct|hop] [TOPIC]
//! cargo run --release --example grpc_floor -- serve-tcp 127.0.0.1:7701
//! cargo run --release --example grpc_floor -- send-tcp 127.0.0.1:7701 [RATE] [SECS]
//! ```
//!
//! With TOPIC, `send` writes real one-record batches to a Stave broker's TOPIC (6 partitions,
//! round robin): the broker's cost with this bare client, without the producer library.
//!
//! `inline` answers from the stream hyper polls; `tasks` hands each request to a task of its
//! own and the answer back through a channel, the way the broker's produce stream does.
//! `direct` sends from the paced thread into the request stream; `hop` goes through a tokio
//! task first, the way the producer's partition worker does. Latency counts from the send.
//!
//! `serve-tcp`/`send-tcp` are the same echo without HTTP/2 or gRPC: plain TCP on tokio, each
//! request a length, a sequence number and the payload, each answer the sequence number. What
//! a produce path beside gRPC (plain TCP framing, as Kafka and NATS have) could start from.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use stave_proto::v1::stave_client::StaveClient;
use stave_proto::v1::{ProduceRequest, ProduceResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

/// About what a batch frame of one 1 KiB record takes on the wire (the echo's payload).
const ECHO_BATCH_BYTES: usize = 1100;

type Answers = Pin<Box<dyn Stream<Item = Result<ProduceResponse, Status>> + Send>>;

#[derive(Clone, Copy)]
struct Echo {
    tasks: bool,
}

impl NamedService for Echo {
    const NAME: &'static str = "stave.v1.Stave";
}

impl<B> Service<http::Request<B>> for Echo
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let echo = *self;
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<ProduceResponse, ProduceRequest>::default();
            Ok(tonic::server::Grpc::new(codec)
                .streaming(echo, request)
                .await)
        })
    }
}

fn answer(request: &ProduceRequest) -> ProduceResponse {
    ProduceResponse {
        sequence: request.sequence,
        ..Default::default()
    }
}

impl StreamingService<ProduceRequest> for Echo {
    type Response = ProduceResponse;
    type ResponseStream = Answers;
    type Future = BoxFuture<Response<Answers>, Status>;

    fn call(&mut self, request: Request<Streaming<ProduceRequest>>) -> Self::Future {
        let tasks = self.tasks;
        Box::pin(async move {
            let mut incoming = request.into_inner();
            if !tasks {
                let answers = incoming.map(|request| request.map(|request| answer(&request)));
                return Ok(Response::new(Box::pin(answers) as Answers));
            }
            let (sender, receiver) = mpsc::channel(1024);
            tokio::spawn(async move {
                while let Some(Ok(request)) = incoming.next().await {
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        let _ = sender.send(Ok(answer(&request))).await;
                    });
                }
            });
            let answers = tokio_stream::wrappers::ReceiverStream::new(receiver);
            Ok(Response::new(Box::pin(answers) as Answers))
        })
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: grpc_floor serve IP:PORT [inline|tasks]\n       \
         grpc_floor send IP:PORT [RATE] [SECS] [direct|hop] [TOPIC]\n       \
         grpc_floor serve-tcp IP:PORT\n       \
         grpc_floor send-tcp IP:PORT [RATE] [SECS]\n\
         defaults: inline; RATE 5000 requests/s, SECS 10, direct; TOPIC (a Stave topic with\n\
         6 partitions) needs the mode word before it"
    );
    std::process::exit(2)
}

/// `args[index]` parsed, `default` when absent; a bad value ends with a message naming it.
fn arg<T: std::str::FromStr>(args: &[String], index: usize, what: &str, default: T) -> T {
    match args.get(index) {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("grpc_floor: {what} {text:?} is not valid");
            usage()
        }),
    }
}

/// `args[index]` when it is one of `words` (`words[0]` when absent).
fn mode<'a>(args: &'a [String], index: usize, words: &[&'a str]) -> &'a str {
    match args.get(index) {
        None => words[0],
        Some(word) if words.contains(&word.as_str()) => word,
        Some(word) => {
            eprintln!("grpc_floor: mode {word:?} is not one of {words:?}");
            usage()
        }
    }
}

/// At most this many requests per run (the send times are kept in memory).
const REQUESTS_MAX: u64 = 100_000_000;

/// The `IP:PORT` after the command word.
fn address(args: &[String]) -> std::net::SocketAddr {
    arg(
        args,
        1,
        "address",
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
}

/// A sender's `IP:PORT [RATE] [SECS]`: the address, the rate and the number of requests.
fn target(args: &[String]) -> (std::net::SocketAddr, u64, u64) {
    let addr = address(args);
    let rate: u64 = arg(args, 2, "rate", 5000);
    let secs: u64 = arg(args, 3, "seconds", 10);
    let count = rate.checked_mul(secs).filter(|&n| n <= REQUESTS_MAX);
    let Some(count) = count.filter(|_| rate > 0) else {
        eprintln!("grpc_floor: RATE must be at least 1 and RATE x SECS at most {REQUESTS_MAX}");
        usage()
    };
    (addr, rate, count)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if (2..=3).contains(&args.len()) => {
            let addr = address(&args);
            let tasks = mode(&args, 2, &["inline", "tasks"]) == "tasks";
            // The broker's transport settings (crates/stave-broker/src/lib.rs).
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(32 << 20)
                .add_service(Echo { tasks })
                .serve_with_incoming(incoming)
                .await?;
            Ok(())
        }
        Some("send") if (2..=6).contains(&args.len()) => {
            let (addr, rate, count) = target(&args);
            let hop = mode(&args, 4, &["direct", "hop"]) == "hop";
            send(addr, rate, count, hop, args.get(5).cloned()).await
        }
        Some("serve-tcp") if args.len() == 2 => serve_tcp(address(&args)).await,
        Some("send-tcp") if (2..=4).contains(&args.len()) => {
            let (addr, rate, count) = target(&args);
            send_tcp(addr, rate, count).await
        }
        _ => usage(),
    }
}

async fn send(
    addr: std::net::SocketAddr,
    rate: u64,
    count: u64,
    hop: bool,
    topic: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    // The client's transport settings (crates/stave-client/src/client.rs).
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .connect()
        .await?;
    let mut client = StaveClient::new(channel);
    let (requests, outgoing) = mpsc::unbounded_channel::<ProduceRequest>();
    let mut answers = client
        .produce_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(
            outgoing,
        ))
        .await?
        .into_inner();
    let sent: SendTimes = Arc::new(Mutex::new(vec![None; count as usize]));
    // `hop`: the paced thread hands each request to a task, which sends it on.
    let (to_task, mut task_inbox) = mpsc::unbounded_channel::<ProduceRequest>();
    if hop {
        let requests = requests.clone();
        tokio::spawn(async move {
            while let Some(request) = task_inbox.recv().await {
                let _ = requests.send(request);
            }
        });
    }
    let batch = match &topic {
        None => bytes::Bytes::from(vec![7u8; ECHO_BATCH_BYTES]),
        Some(_) => {
            let mut builder = stave_log::batch::BatchBuilder::new();
            builder.push(&stave_log::batch::Record {
                timestamp: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as i64),
                key: None,
                value: Some(&[7u8; 1024]),
                headers: &[],
            });
            bytes::Bytes::from(builder.finish())
        }
    };
    let batch_bytes = batch.len();
    let topic = topic.unwrap_or_else(|| "floor".into());
    let mut latency = Latency::new(sent.clone())?;
    let pacer = pace(rate, count, sent, move |sequence| {
        let request = ProduceRequest {
            sequence,
            topic: topic.clone(),
            partition: (sequence % 6) as u32,
            batch: batch.clone(),
        };
        if hop {
            to_task.send(request).is_ok()
        } else {
            requests.send(request).is_ok()
        }
    });
    while latency.answered < count {
        let Some(answer) = answers.message().await? else {
            break;
        };
        if let Some(error) = answer.error {
            return Err(format!("the broker refused a batch: {error:?}").into());
        }
        latency.answer(answer.sequence)?;
    }
    let _ = pacer.join();
    latency.report("grpc-floor", count, batch_bytes);
    Ok(())
}

/// Send times by sequence number, filled in by the pacer.
type SendTimes = Arc<Mutex<Vec<Option<Instant>>>>;

/// A thread that calls `send(sequence)` for `count` sequence numbers at `rate` a second,
/// noting each send's time in `sent`; it stops early when `send` says the other side is gone.
fn pace(
    rate: u64,
    count: u64,
    sent: SendTimes,
    mut send: impl FnMut(u64) -> bool + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
        let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        let start = Instant::now();
        for sequence in 0..count {
            let due = start + Duration::from_nanos(sequence * 1_000_000_000 / rate);
            if let Some(left) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(left);
            }
            if let Ok(mut sent) = sent.lock() {
                sent[sequence as usize] = Some(Instant::now());
            }
            if !send(sequence) {
                break;
            }
        }
    })
}

/// Latency from each request's send to its answer.
struct Latency {
    sent: SendTimes,
    histogram: hdrhistogram::Histogram<u64>,
    answered: u64,
    started: Instant,
}

impl Latency {
    fn new(sent: SendTimes) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            sent,
            histogram: hdrhistogram::Histogram::new(3)?,
            answered: 0,
            started: Instant::now(),
        })
    }

    fn answer(&mut self, sequence: u64) -> Result<(), hdrhistogram::RecordError> {
        let now = Instant::now();
        let sent_at = self
            .sent
            .lock()
            .ok()
            .and_then(|sent| sent.get(sequence as usize).copied().flatten());
        if let Some(sent_at) = sent_at {
            self.histogram
                .record(now.duration_since(sent_at).as_micros() as u64)?;
        }
        self.answered += 1;
        Ok(())
    }

    /// A line for people on stderr, and the keys `stave bench --json` uses on stdout, so
    /// scripts read both alike (latency is from the send: there is no due time to count from).
    fn report(&self, workload: &str, count: u64, request_bytes: usize) {
        let (answered, histogram) = (self.answered, &self.histogram);
        let elapsed = self.started.elapsed().as_secs_f64();
        let at = |q: f64| histogram.value_at_quantile(q);
        eprintln!(
            "answered {answered} of {count}: from send p50 {} p90 {} p99 {} p99.9 {} max {} us",
            at(0.5),
            at(0.9),
            at(0.99),
            at(0.999),
            histogram.max()
        );
        println!(
            "{{\"workload\":\"{workload}\",\"records\":{answered},\"elapsed_s\":{elapsed:.3},\
             \"records_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\
             \"p999_us\":{},\"max_us\":{},\"send_p50_us\":{},\"send_p99_us\":{},\"send_p999_us\":{}}}",
            answered as f64 / elapsed,
            answered as f64 * request_bytes as f64 / elapsed / f64::from(1 << 20),
            at(0.5),
            at(0.9),
            at(0.99),
            at(0.999),
            histogram.max(),
            at(0.5),
            at(0.99),
            at(0.999),
        );
    }
}

/// A plain-TCP request: payload length (u32), sequence (u64), payload; the answer is the
/// sequence (u64). Big-endian.
const TCP_HEADER_BYTES: usize = 12;

/// The largest payload `serve-tcp` takes (ours are `ECHO_BATCH_BYTES`).
const TCP_PAYLOAD_MAX: usize = 1 << 20;

async fn serve_tcp(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        // Each connection answers its requests in order, from the task that reads them.
        tokio::spawn(async move {
            let (reader, mut writer) = socket.into_split();
            let mut reader = tokio::io::BufReader::with_capacity(64 << 10, reader);
            let mut payload = Vec::new();
            loop {
                let Ok(len) = reader.read_u32().await else {
                    return;
                };
                let Ok(sequence) = reader.read_u64().await else {
                    return;
                };
                if len as usize > TCP_PAYLOAD_MAX {
                    return; // not a request of ours: drop the connection
                }
                payload.resize(len as usize, 0);
                if reader.read_exact(&mut payload).await.is_err()
                    || writer.write_all(&sequence.to_be_bytes()).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn send_tcp(
    addr: std::net::SocketAddr,
    rate: u64,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let (reader, mut writer) = socket.into_split();
    // The same shape as `send`: the paced thread hands each request to the task that owns
    // the connection's write half.
    let (requests, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(request) = outgoing.recv().await {
            if writer.write_all(&request).await.is_err() {
                return;
            }
        }
    });
    let sent: SendTimes = Arc::new(Mutex::new(vec![None; count as usize]));
    let mut latency = Latency::new(sent.clone())?;
    let pacer = pace(rate, count, sent, move |sequence| {
        let mut request = Vec::with_capacity(TCP_HEADER_BYTES + ECHO_BATCH_BYTES);
        request.extend_from_slice(&(ECHO_BATCH_BYTES as u32).to_be_bytes());
        request.extend_from_slice(&sequence.to_be_bytes());
        request.resize(TCP_HEADER_BYTES + ECHO_BATCH_BYTES, 7);
        requests.send(request).is_ok()
    });
    let mut reader = tokio::io::BufReader::new(reader);
    while latency.answered < count {
        let sequence = reader.read_u64().await?;
        latency.answer(sequence)?;
    }
    let _ = pacer.join();
    latency.report("tcp-floor", count, ECHO_BATCH_BYTES);
    Ok(())
}

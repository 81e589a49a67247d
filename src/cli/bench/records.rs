//! `--api records`: the same workloads through the record face, as a client in another
//! language would run them with nothing but the generated stubs: `PublishStream` for
//! produce (records gathered into requests of up to `--batch-bytes`, at most
//! [`REQUESTS_IN_FLIGHT`] requests outstanding per stream, one stream per producer), and a
//! `Consume` stream per group member for consume (credits granted in steps of
//! [`CREDIT_STEP`] records). e2e keeps the batch producers and reads through `Consume`
//! (`e2e::Reader::read_records`), so the two consumers are compared on the same writes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use stave_client::{Client, ClientError};
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::progress::Progress;
use super::schedule::Schedule;
use super::{BenchArgs, Outcome, ensure_topic, fresh_group, histogram, micros, payload};
use crate::cli::error::CliError;

/// Publish requests a producer keeps outstanding on its stream.
const REQUESTS_IN_FLIGHT: usize = 8;
/// Records a Consume stream is granted at a time (again when half of them came).
const CREDIT_STEP: u32 = 50_000;
/// gRPC message limit of the bench's own connections (a node's is 16 MiB).
const MESSAGE_BYTES_MAX: usize = 16 << 20;

/// A stub connection to the first bootstrap node (over TLS when the client has TLS).
pub(super) async fn connect(client: &Client) -> Result<StaveClient<Channel>, ClientError> {
    let addr = client
        .config()
        .bootstrap
        .first()
        .cloned()
        .unwrap_or_default();
    let endpoint = stave_client::tls::endpoint(&addr, client.config().tls.as_ref())?
        .tcp_nodelay(true)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(32 << 20);
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ClientError::Connect { addr, source })?;
    Ok(StaveClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX))
}

/// A random tag, so two producers (or runs) never share ids.
fn rand_tag() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

pub(super) fn rpc_error(status: tonic::Status) -> ClientError {
    ClientError::Rpc {
        addr: String::new(),
        code: status.code(),
        message: status.message().to_string(),
    }
}

/// What one producer wrote: records acknowledged, latency from due and from send.
type Written = (u64, Histogram<u64>, Histogram<u64>);

/// produce, through `PublishStream`.
pub(super) async fn produce(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    ensure_topic(client, args).await?;
    let total = super::produce_total(args);
    let start = Instant::now();
    let until = args.duration.map(|d| start + d);
    let progress = Progress::start("produce", Arc::default(), total, args.size, until);
    let mut tasks = JoinSet::new();
    for p in 0..args.producers {
        let schedule = Schedule::new(args, start, until, total, p);
        let stub = connect(client).await?;
        tasks.spawn(publish(stub, args.clone(), schedule, progress.done.clone()));
    }
    let (mut records, mut latency, mut from_send) = (0, histogram(), histogram());
    while let Some(joined) = tasks.join_next().await {
        let (count, due, sent) =
            joined.map_err(|e| CliError::Usage(format!("a producer task failed: {e}")))??;
        records += count;
        let _ = latency.add(due);
        let _ = from_send.add(sent);
    }
    let elapsed = start.elapsed();
    progress.finish();
    Ok(Outcome {
        workload: "produce",
        records,
        bytes: records * args.size as u64,
        elapsed,
        latency: Some(latency),
        from_send: Some(from_send),
        after_ack: None,
    })
}

/// The records of one request on their way: when each was due, and when it was sent.
struct Sent {
    dues: Vec<Instant>,
    sent: Instant,
}

/// One producer: the schedule hands each record's due time to a batcher, which sends
/// requests on one PublishStream; the answers are read in order.
async fn publish(
    mut stub: StaveClient<Channel>,
    args: BenchArgs,
    schedule: Schedule,
    done: Arc<AtomicU64>,
) -> Result<Written, ClientError> {
    let (requests, outgoing) = mpsc::channel::<pb::PublishRequest>(REQUESTS_IN_FLIGHT);
    let mut answers = stub
        .publish_stream(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
        .map_err(rpc_error)?
        .into_inner();
    let (dues_tx, dues) = mpsc::channel::<Instant>(4096);
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Sent>();
    let room = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    let record = pb::PublishRecord {
        topic: args.topic.clone(),
        value: payload(args.size),
        ..Default::default()
    };
    let per_request = (args.batch_bytes / args.size.max(1)).clamp(1, 10_000);
    let ids = args
        .message_ids
        .then(|| format!("{}-{}", super::fresh_group(), rand_tag()));
    let batcher = tokio::spawn(batch(
        dues,
        requests,
        sent_tx,
        room.clone(),
        (record, ids),
        per_request,
    ));
    let scheduled = tokio::spawn(schedule.run(move |due| {
        let dues_tx = dues_tx.clone();
        async move { Ok(dues_tx.send(due).await.is_ok()) }
    }));
    let (mut count, mut from_due, mut from_send) = (0u64, histogram(), histogram());
    while let Some(request) = sent_rx.recv().await {
        let answer = answers
            .message()
            .await
            .map_err(rpc_error)?
            .ok_or(ClientError::Closed {
                what: "the publish stream",
            })?;
        room.add_permits(1);
        let now = Instant::now();
        for (due, result) in request.dues.iter().zip(&answer.results) {
            if let Some(error) = result.error.as_ref().filter(|e| e.code != 0) {
                return Err(ClientError::InvalidArgument {
                    message: format!("a record was refused: {error:?}"),
                });
            }
            let _ = from_due.record(micros(now - *due));
            let _ = from_send.record(micros(now - request.sent));
        }
        count += request.dues.len() as u64;
        done.fetch_add(request.dues.len() as u64, Ordering::Relaxed);
    }
    scheduled.await.map_err(|e| ClientError::InvalidArgument {
        message: format!("the schedule stopped: {e}"),
    })??;
    let _ = batcher.await;
    Ok((count, from_due, from_send))
}

/// Gathers due records into requests of up to `per_request` records (whatever is due when a
/// request's turn comes) and sends them, at most [`REQUESTS_IN_FLIGHT`] outstanding.
async fn batch(
    mut dues: mpsc::Receiver<Instant>,
    requests: mpsc::Sender<pb::PublishRequest>,
    sent: mpsc::UnboundedSender<Sent>,
    room: Arc<Semaphore>,
    (record, ids): (pb::PublishRecord, Option<String>),
    per_request: usize,
) {
    let mut sequence = 0;
    let mut next_id = 0u64;
    while let Some(first) = dues.recv().await {
        let mut due = vec![first];
        while due.len() < per_request {
            match dues.try_recv() {
                Ok(next) => due.push(next),
                Err(_) => break,
            }
        }
        let Ok(permit) = room.acquire().await else {
            return;
        };
        permit.forget();
        let records = match &ids {
            // A unique id per record: `<run>-<n>`.
            Some(prefix) => (0..due.len())
                .map(|_| {
                    next_id += 1;
                    let mut record = record.clone();
                    record.headers.push(pb::Header {
                        key: "id".into(),
                        value: format!("{prefix}-{next_id}").into(),
                    });
                    record
                })
                .collect(),
            None => vec![record.clone(); due.len()],
        };
        let request = pb::PublishRequest { records, sequence };
        sequence += 1;
        let _ = sent.send(Sent {
            dues: due,
            sent: Instant::now(),
        });
        if requests.send(request).await.is_err() {
            return;
        }
    }
}

/// consume, through a `Consume` stream per member of a new group (from the earliest).
pub(super) async fn consume(client: &Client, args: &BenchArgs) -> Result<Outcome, CliError> {
    crate::cli::require_topic(client, &args.topic, Duration::from_secs(10)).await?;
    let total = match (args.messages, args.duration) {
        (Some(messages), _) => Some(messages),
        (None, Some(_)) => None,
        (None, None) => Some(super::consume::records_in(client, &args.topic).await?),
    };
    let group = args.group.clone().unwrap_or_else(fresh_group);
    let start = Instant::now();
    let until = args.duration.map(|d| start + d);
    let progress = Progress::start("consume", Arc::default(), total, args.size, until);
    let (stop_tx, stop) = watch::channel(false);
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = JoinSet::new();
    for _ in 0..args.consumers {
        let stub = connect(client).await?;
        let reader = Member {
            topic: args.topic.clone(),
            group: group.clone(),
            total,
            done: progress.done.clone(),
            first: first.clone(),
            stop_tx: stop_tx.clone(),
        };
        tasks.spawn(reader.read(stub, stop.clone()));
    }
    let mut bytes = 0;
    let ended = tokio::select! {
        _ = async { stop.clone().wait_for(|s| *s).await.map(|_| ()) } => Ok(()),
        () = super::sleep_until(until) => Ok(()),
        failed = first_failure(&mut tasks, &mut bytes) => failed,
    };
    let elapsed = first.get().map_or_else(|| start.elapsed(), |f| f.elapsed());
    let _ = stop_tx.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Ok(read)) = joined {
            bytes += read;
        }
    }
    ended?;
    let records = progress.done.load(Ordering::Relaxed);
    progress.finish();
    Ok(Outcome {
        workload: "consume",
        records,
        bytes,
        elapsed,
        latency: None,
        from_send: None,
        after_ack: None,
    })
}

/// Waits for a member to fail (never returns while they all run); the bytes of the members
/// that finished meanwhile are added to `bytes`.
async fn first_failure(
    tasks: &mut JoinSet<Result<u64, ClientError>>,
    bytes: &mut u64,
) -> Result<(), CliError> {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Err(err)) => return Err(err.into()),
            Ok(Ok(read)) => *bytes += read,
            Err(_) => {}
        }
    }
    std::future::pending().await
}

/// One member of the group, on its own Consume stream.
struct Member {
    topic: String,
    group: String,
    total: Option<u64>,
    done: Arc<AtomicU64>,
    first: Arc<std::sync::OnceLock<Instant>>,
    stop_tx: watch::Sender<bool>,
}

impl Member {
    /// Reads until `total` records came over all members, or `stop`; the bytes of values.
    async fn read(
        self,
        mut stub: StaveClient<Channel>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<u64, ClientError> {
        use pb::consume_request::Request;
        let (send, outgoing) = mpsc::channel(16);
        let subscribe = pb::Subscribe {
            topics: vec![self.topic.clone()],
            group: self.group.clone(),
            start: Some(pb::subscribe::Start::Earliest(true)),
            ..Default::default()
        };
        let credit = |records| pb::ConsumeRequest {
            request: Some(Request::Credit(pb::Credit { records, bytes: 0 })),
        };
        let _ = send
            .send(pb::ConsumeRequest {
                request: Some(Request::Subscribe(subscribe)),
            })
            .await;
        let _ = send.send(credit(CREDIT_STEP)).await;
        let mut pushed = stub
            .consume(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .map_err(rpc_error)?
            .into_inner();
        let (mut bytes, mut unused) = (0u64, u64::from(CREDIT_STEP));
        let mut pending = VecDeque::new();
        loop {
            let message = tokio::select! {
                message = pushed.message() => message.map_err(rpc_error)?,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Some(message) = message else { break };
            match message.response {
                Some(pb::consume_response::Response::Records(records)) => {
                    self.first.get_or_init(Instant::now);
                    let count = records.records.len() as u64;
                    bytes += records
                        .records
                        .iter()
                        .map(|r| r.value.len() as u64)
                        .sum::<u64>();
                    unused = unused.saturating_sub(count);
                    if unused < u64::from(CREDIT_STEP / 2) {
                        unused += u64::from(CREDIT_STEP);
                        pending.push_back(credit(CREDIT_STEP));
                    }
                    while let Some(grant) = pending.pop_front() {
                        let _ = send.send(grant).await;
                    }
                    let read = self.done.fetch_add(count, Ordering::Relaxed) + count;
                    if self.total.is_some_and(|total| read >= total) {
                        let _ = self.stop_tx.send(true);
                        break;
                    }
                }
                Some(pb::consume_response::Response::Error(error)) => {
                    return Err(ClientError::InvalidArgument {
                        message: format!("the Consume stream failed: {error:?}"),
                    });
                }
                _ => {}
            }
        }
        Ok(bytes)
    }
}

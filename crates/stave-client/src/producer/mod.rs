//! [`Producer`]: sends records to partition leaders, batched per partition, pipelined,
//! retried without duplicates.
//!
//! `send` picks the partition (explicit; by key, as Kafka; sticky for keyless records), adds
//! a unique `id` header unless the record has one, waits for room in the buffer
//! (`buffer_bytes_max`: back-pressure), and hands the record to its partition's worker task.
//! The worker batches (`linger`, `batch_bytes`), keeps up to `in_flight_max` batches in flight
//! on the leader's produce stream and retries retriable failures with the same batch until the
//! record's `delivery_timeout` (see `pipeline.rs` for the sequence rules).
//!
//! Ordering: records of one partition are written in `send` order, retries included.
//! Without `idempotent` a retry after a lost answer may write a batch twice.

mod outcome;
mod pipeline;
mod session;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use stave_proto::v1::InitProducerIdRequest;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::pipeline::{FRAME_OVERHEAD_BYTES, Identity, Pipeline, PipelineConfig, Reply};
use self::session::Sessions;
use self::worker::{Accepted, Command, Worker};
use crate::client::Client;
use crate::config::ProducerConfig;
use crate::error::ClientError;
use crate::partitioner::{StickyPartition, partition_for_key};
use crate::record::{MESSAGE_ID_HEADER, ProducerRecord, RecordMetadata, message_id};

/// Sends records to a Stave cluster. Cheap to clone; clones share batches and workers.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    identity: Identity,
    sessions: Arc<Sessions>,
    /// Per topic written to: its partition count, sticky partition and workers. One lock
    /// and one lookup per record.
    routes: Mutex<HashMap<Arc<str>, Route>>,
    buffer: Arc<Semaphore>,
    closed: AtomicBool,
}

/// What the producer knows of a topic: its partition count, its sticky partition, and the
/// workers of the partitions written to.
struct Route {
    partitions: u32,
    sticky: StickyPartition,
    workers: HashMap<u32, WorkerHandle>,
}

impl Route {
    fn new(partitions: u32) -> Route {
        Route {
            partitions,
            sticky: StickyPartition::new(),
            workers: HashMap::new(),
        }
    }
}

struct WorkerHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

/// Resolves to where a record was written, or why it was not.
#[derive(Debug)]
#[must_use = "a delivery is only known by awaiting it"]
pub struct DeliveryFuture {
    answer: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer).poll(cx).map(|answer| {
            answer.unwrap_or(Err(ClientError::Closed {
                what: "the producer",
            }))
        })
    }
}

/// Asks the cluster for a producer id (idempotent produce).
pub(crate) async fn init_producer_id(client: &Client) -> Result<Identity, ClientError> {
    client
        .call_any("get a producer id", |addr, mut node| async move {
            let response = client
                .unary(&addr, node.init_producer_id(InitProducerIdRequest {}))
                .await?;
            ClientError::check(response.error)?;
            let epoch =
                i16::try_from(response.producer_epoch).map_err(|_| ClientError::Broker {
                    code: stave_proto::v1::ErrorCode::Internal,
                    message: format!("producer epoch {} out of range", response.producer_epoch),
                    leader_id: None,
                    leader_addr: None,
                })?;
            Ok(Identity {
                producer_id: response.producer_id,
                epoch,
            })
        })
        .await
}

impl Client {
    /// A producer with `config`; with `config.idempotent` it first obtains a producer id.
    pub async fn producer(&self, config: ProducerConfig) -> Result<Producer, ClientError> {
        Producer::new(self.clone(), config).await
    }
}

impl Producer {
    pub(crate) async fn new(
        client: Client,
        config: ProducerConfig,
    ) -> Result<Producer, ClientError> {
        config.validate()?;
        let identity = if config.idempotent {
            init_producer_id(&client).await?
        } else {
            Identity::NONE
        };
        let permits = config.buffer_bytes_max.min(Semaphore::MAX_PERMITS);
        Ok(Producer {
            shared: Arc::new(Shared {
                client,
                identity,
                sessions: Arc::new(Sessions::default()),
                routes: Mutex::new(HashMap::new()),
                buffer: Arc::new(Semaphore::new(permits)),
                closed: AtomicBool::new(false),
                config,
            }),
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// Sends `record` and waits until it is written: resolves to its partition and offset.
    /// To keep many records in flight, use [`Producer::enqueue`] (or run several `send`s
    /// concurrently).
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata, ClientError> {
        self.enqueue(record).await?.await
    }

    /// Accepts `record` for sending (waiting while the buffer is full) and returns at once a
    /// future of its delivery. Records of one partition are written in the order they were
    /// enqueued.
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.accept(record, Reply::Future(reply)).await?;
        Ok(DeliveryFuture { answer })
    }

    /// Like [`Producer::enqueue`], but hands the delivery's outcome to `on_delivery` instead
    /// of returning a future: the cheapest way to keep many records in flight (Kafka's
    /// `send(record, callback)`). `on_delivery` is called exactly once if this returns `Ok`
    /// (never if it returns an error), on the producer's own task, in write order within a
    /// partition: it must be quick and must not block (a panic in it is caught and logged).
    pub async fn enqueue_with<F>(
        &self,
        record: ProducerRecord,
        on_delivery: F,
    ) -> Result<(), ClientError>
    where
        F: FnOnce(Result<RecordMetadata, ClientError>) + Send + 'static,
    {
        self.accept(record, Reply::Callback(Box::new(on_delivery)))
            .await
    }

    async fn accept(&self, record: ProducerRecord, reply: Reply) -> Result<(), ClientError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed {
                what: "the producer",
            });
        }
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            mut headers,
            timestamp,
        } = record;
        if shared.config.message_ids && !headers.iter().any(|(k, _)| k == MESSAGE_ID_HEADER) {
            headers.push((MESSAGE_ID_HEADER.to_string(), Bytes::from(message_id())));
        }
        let bytes = pipeline::record_bytes_max(key.as_ref(), value.as_ref(), &headers);
        if bytes + FRAME_OVERHEAD_BYTES > shared.config.request_bytes_max {
            return Err(ClientError::RecordTooLarge {
                bytes: bytes + FRAME_OVERHEAD_BYTES,
                bytes_max: shared.config.request_bytes_max,
            });
        }
        // `bytes` is at most `request_bytes_max`, which `validate` keeps within the buffer.
        let permit = shared
            .buffer
            .clone()
            .acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
            .await
            .map_err(|_| ClientError::Closed {
                what: "the producer",
            })?;
        let mut accepted = Accepted {
            key,
            value,
            headers,
            timestamp,
            bytes,
            reply,
            permit,
        };
        loop {
            match self.submit(&topic, partition, accepted)? {
                None => return Ok(()),
                Some(back) => {
                    // The first record to this topic: learn its partitions, then route.
                    self.partition_count(&topic).await?;
                    accepted = back;
                }
            }
        }
    }

    /// Waits until every record enqueued before this call has been answered (written or
    /// failed: each delivery future tells which). Batches waiting for `linger` go at once.
    pub async fn flush(&self) {
        let waits: Vec<oneshot::Receiver<()>> = {
            let routes = lock(&self.shared.routes);
            routes
                .values()
                .flat_map(|route| route.workers.values())
                .filter_map(|worker| {
                    let (done, wait) = oneshot::channel();
                    worker
                        .commands
                        .send(Command::Flush(done))
                        .ok()
                        .map(|()| wait)
                })
                .collect()
        };
        for wait in waits {
            let _ = wait.await;
        }
    }

    /// Refuses new records, waits for those accepted (bounded by their delivery timeout),
    /// and stops the workers. Clones of this producer are closed too.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.flush().await;
        let workers: Vec<WorkerHandle> = {
            let mut routes = lock(&self.shared.routes);
            routes
                .values_mut()
                .flat_map(|route| route.workers.drain().map(|(_, worker)| worker))
                .collect()
        };
        let tasks: Vec<JoinHandle<()>> = workers
            .into_iter()
            .map(|WorkerHandle { commands, task }| {
                drop(commands);
                task
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        self.shared.sessions.clear();
    }

    /// The topic's partition count, from the cluster's metadata the first time. A topic not
    /// found is looked for again (it may have just been created) for up to the client's
    /// `retry_timeout`.
    async fn partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        if let Some(route) = lock(&self.shared.routes).get(topic) {
            return Ok(route.partitions);
        }
        let client = &self.shared.client;
        let limit = client
            .config()
            .retry_timeout
            .min(self.shared.config.delivery_timeout);
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let err = match client.partition_count(topic).await {
                Ok(partitions) if partitions > 0 => {
                    lock(&self.shared.routes)
                        .entry(Arc::from(topic))
                        .or_insert_with(|| Route::new(partitions));
                    return Ok(partitions);
                }
                Ok(_) => ClientError::UnknownTopic {
                    topic: topic.to_string(),
                },
                Err(err) => err,
            };
            let unknown = matches!(err, ClientError::UnknownTopic { .. });
            if !unknown && !err.is_retriable() {
                return Err(err);
            }
            let pause = client.config().backoff(attempt);
            if start.elapsed() + pause > limit {
                if unknown {
                    return Err(err);
                }
                return Err(ClientError::Timeout {
                    what: format!("looking up topic {topic:?}"),
                    elapsed: start.elapsed(),
                    last: Some(Box::new(err)),
                });
            }
            tokio::time::sleep(pause).await;
            if unknown {
                let _ = client.refresh_metadata().await;
            }
            attempt += 1;
        }
    }

    /// Picks the record's partition (explicit; by key; sticky) and hands it to the
    /// partition's worker, under one lock: records of one partition reach its worker in the
    /// order their partition was picked. Gives the record back when the topic's partition
    /// count is not known yet.
    fn submit(
        &self,
        topic: &Arc<str>,
        partition: Option<u32>,
        accepted: Accepted,
    ) -> Result<Option<Accepted>, ClientError> {
        let shared = &self.shared;
        let mut routes = lock(&shared.routes);
        if shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed {
                what: "the producer",
            });
        }
        let Some(route) = routes.get_mut(topic) else {
            return Ok(Some(accepted));
        };
        let partitions = route.partitions;
        let partition = match (partition, accepted.key.as_deref()) {
            (Some(partition), _) if partition >= partitions => {
                return Err(ClientError::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                    partitions,
                });
            }
            (Some(partition), _) => partition,
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => {
                route
                    .sticky
                    .next(partitions, accepted.bytes, shared.config.batch_bytes)
            }
        };
        let worker = route
            .workers
            .entry(partition)
            .or_insert_with(|| self.spawn_worker(topic, partition));
        worker
            .commands
            .send(Command::Record(accepted))
            .map_err(|_| ClientError::Closed {
                what: "the producer",
            })?;
        Ok(None)
    }

    fn spawn_worker(&self, topic: &Arc<str>, partition: u32) -> WorkerHandle {
        let shared = &self.shared;
        let config = &shared.config;
        let client_config = shared.client.config();
        let topic = topic.clone();
        let pipeline = Pipeline::new(
            topic.clone(),
            partition,
            PipelineConfig {
                linger: config.linger,
                batch_bytes: config.batch_bytes,
                request_bytes_max: config.request_bytes_max,
                in_flight_max: config.in_flight_max,
                backoff: client_config.retry_backoff,
                backoff_max: client_config.retry_backoff_max,
            },
            shared.identity,
        );
        let (commands, receiver) = mpsc::unbounded_channel();
        let worker = Worker::new(
            shared.client.clone(),
            shared.sessions.clone(),
            topic,
            partition,
            pipeline,
            config.idempotent,
            client_config.request_timeout,
            config.delivery_timeout,
            receiver,
        );
        let task = tokio::spawn(worker.run());
        WorkerHandle { commands, task }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests;

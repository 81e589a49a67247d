//! Queue groups: members share a group's topics record by record. The coordinator hands the
//! next records to whichever member asks (work follows speed), each locked to it until it
//! settles it — [`QueueConsumer::ack`], [`QueueConsumer::release`] (now or after a delay),
//! [`QueueConsumer::reject`] (to the dead-letter topic `_dlq.{group}.{topic}`),
//! [`QueueConsumer::extend`] — or the lock expires and the record goes to another delivery.
//!
//! ```no_run
//! # async fn run(client: stave_client::Client) -> Result<(), stave_client::ClientError> {
//! use stave_client::{QueueConfig, QueueConsumer};
//! let mut queue = QueueConsumer::join(&client, "mailer", &["v1.user.signedup"], QueueConfig::default()).await?;
//! loop {
//!     let record = queue.next().await?;
//!     // ... handle it ...
//!     queue.ack(&record).await?;
//! }
//! # }
//! ```
//!
//! Settling takes `&self`: a member may settle from other tasks while it waits for records
//! (a [`QueueConsumer`] is not `Clone`; share it behind an `Arc` or use [`QueueConsumer::settler`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use stave_proto::v1 as proto;

use crate::client::Client;
use crate::config::StartPosition;
use crate::coordinator::Coordinator;
use crate::error::ClientError;
use crate::record::ConsumerRecord;

/// Key order, when asked: no two records with the same key in flight in the group at once,
/// a key's records delivered in offset order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueOrdering {
    #[default]
    None,
    Key,
}

/// How a member joins (and, for the group's first member, the group's settings).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The most records the member holds at once (fetches ask for what is free of it).
    pub credit: u32,
    /// How long a delivery is locked to the member (`None`: the group's, default 30 s).
    pub lock: Option<Duration>,
    /// Deliveries before a record given back goes to the dead-letter topic (default 5).
    pub max_deliveries: Option<u32>,
    pub ordering: QueueOrdering,
    /// How far past a partition's first unacknowledged record the group delivers
    /// (default 100,000).
    pub max_unacked_span: Option<u64>,
    /// Where a new group starts in partitions it never acknowledged (default: the end).
    pub start: StartPosition,
    /// How long one fetch waits for records before it is asked again.
    pub fetch_wait: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            credit: 64,
            lock: None,
            max_deliveries: None,
            ordering: QueueOrdering::None,
            max_unacked_span: None,
            start: StartPosition::Latest,
            fetch_wait: Duration::from_secs(5),
        }
    }
}

/// A record locked to this member.
#[derive(Debug, Clone)]
pub struct QueuedRecord {
    pub record: ConsumerRecord,
    /// Deliveries of this record so far, this one included.
    pub delivery_count: u32,
    /// When the lock expires (epoch milliseconds).
    pub lock_deadline_ms: i64,
}

impl std::ops::Deref for QueuedRecord {
    type Target = ConsumerRecord;

    fn deref(&self) -> &ConsumerRecord {
        &self.record
    }
}

/// What to do with a record held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Ack,
    /// Deliver again, not before the delay.
    Release {
        delay: Duration,
        reason: String,
    },
    /// To the dead-letter topic.
    Reject {
        reason: String,
    },
    /// Keep the lock another lock period.
    Extend,
}

/// One record's settlement, named by its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub delivery_count: u32,
    pub settle: Settle,
}

impl Settlement {
    pub fn of(record: &QueuedRecord, settle: Settle) -> Settlement {
        Settlement {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            delivery_count: record.delivery_count,
            settle,
        }
    }
}

/// Settles records for a member; cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct Settler {
    coordinator: Arc<Coordinator>,
    member_id: Arc<str>,
    client: Client,
}

/// A member of a queue group. Leave with [`QueueConsumer::close`]; a member dropped without
/// it (or whose process dies) is dropped by the group after 30 s without a fetch, and the
/// records it held go out again as their locks expire.
#[derive(Debug)]
pub struct QueueConsumer {
    settler: Settler,
    config: QueueConfig,
    buffered: VecDeque<QueuedRecord>,
}

fn options(config: &QueueConfig) -> proto::QueueOptions {
    proto::QueueOptions {
        lock_ms: config
            .lock
            .map(|lock| i64::try_from(lock.as_millis()).unwrap_or(i64::MAX)),
        max_deliveries: config.max_deliveries,
        ordering: match config.ordering {
            QueueOrdering::None => proto::QueueOrdering::None,
            QueueOrdering::Key => proto::QueueOrdering::Key,
        } as i32,
        max_unacked_span: config.max_unacked_span,
    }
}

fn start(start: StartPosition) -> proto::queue_fetch_request::Start {
    use proto::queue_fetch_request::Start as S;
    match start {
        StartPosition::Earliest => S::Earliest(true),
        StartPosition::Latest => S::Latest(true),
        StartPosition::Offset(offset) => S::Offset(offset),
        StartPosition::Timestamp(ms) => S::TimestampMs(ms),
    }
}

/// A pushed or fetched record, as the client hands it out.
pub(crate) fn queued(record: proto::ConsumedRecord) -> QueuedRecord {
    QueuedRecord {
        delivery_count: record.delivery_count,
        lock_deadline_ms: record.lock_deadline_ms,
        record: ConsumerRecord {
            topic: Arc::from(record.topic.as_str()),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp_ms,
            key: record.key,
            value: Some(record.value),
            headers: record
                .headers
                .into_iter()
                .map(|h| (h.key, h.value))
                .collect(),
        },
    }
}

impl QueueConsumer {
    /// Joins queue group `group` reading `topics` (names or patterns).
    pub async fn join(
        client: &Client,
        group: &str,
        topics: &[&str],
        config: QueueConfig,
    ) -> Result<QueueConsumer, ClientError> {
        if config.credit == 0 {
            return Err(ClientError::InvalidArgument {
                message: "a queue member's credit is at least 1".into(),
            });
        }
        let coordinator = Arc::new(Coordinator::new(client.clone(), group));
        let request = proto::QueueFetchRequest {
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            options: Some(options(&config)),
            start: Some(start(config.start)),
            max_records: 0,
            ..Default::default()
        };
        let answer = fetch_call(client, &coordinator, request, Duration::ZERO).await?;
        Ok(QueueConsumer {
            settler: Settler {
                coordinator,
                member_id: Arc::from(answer.member_id.as_str()),
                client: client.clone(),
            },
            config,
            buffered: VecDeque::new(),
        })
    }

    /// The member id the group gave.
    pub fn member_id(&self) -> &str {
        &self.settler.member_id
    }

    /// A handle that settles this member's records from elsewhere.
    pub fn settler(&self) -> Settler {
        self.settler.clone()
    }

    /// The next record, waiting as long as it takes. Fetches up to `free` records when none
    /// is buffered (`free`: what the caller may still take; the CLI and `next` pass the
    /// credit minus what they hold).
    pub async fn next_within(&mut self, free: u32) -> Result<QueuedRecord, ClientError> {
        loop {
            if let Some(record) = self.buffered.pop_front() {
                return Ok(record);
            }
            let records = self.fetch(free.max(1), self.config.fetch_wait).await?;
            self.buffered.extend(records);
        }
    }

    /// The next record (fetching up to the credit when none is buffered).
    pub async fn next(&mut self) -> Result<QueuedRecord, ClientError> {
        self.next_within(self.config.credit).await
    }

    /// Records already fetched and not handed out yet.
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// One fetch: up to `max` records, waiting up to `wait` for the first (empty if none).
    pub async fn fetch(&self, max: u32, wait: Duration) -> Result<Vec<QueuedRecord>, ClientError> {
        let request = proto::QueueFetchRequest {
            group: self.settler.coordinator.group().to_string(),
            member_id: self.settler.member_id.to_string(),
            max_records: max,
            max_wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        let answer = fetch_call(
            &self.settler.client,
            &self.settler.coordinator,
            request,
            wait,
        )
        .await?;
        Ok(answer.records.into_iter().map(queued).collect())
    }

    /// Tells the group this member is alive (when it holds records longer than 30 s).
    pub async fn heartbeat(&self) -> Result<(), ClientError> {
        self.fetch(0, Duration::ZERO).await.map(|_| ())
    }

    pub async fn ack(&self, record: &QueuedRecord) -> Result<(), ClientError> {
        self.settler.ack(record).await
    }

    pub async fn release(
        &self,
        record: &QueuedRecord,
        delay: Duration,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.settler.release(record, delay, reason).await
    }

    pub async fn reject(&self, record: &QueuedRecord, reason: &str) -> Result<(), ClientError> {
        self.settler.reject(record, reason).await
    }

    pub async fn extend(&self, record: &QueuedRecord) -> Result<(), ClientError> {
        self.settler.extend(record).await
    }

    /// Settles many records in one request; one answer per record.
    pub async fn settle(
        &self,
        items: &[(&QueuedRecord, Settle)],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        self.settler.settle(items).await
    }

    /// Leaves the group; what it holds unsettled (and what was fetched and not handed out)
    /// goes out again at once.
    pub async fn close(self) -> Result<(), ClientError> {
        self.leave().await
    }

    /// [`QueueConsumer::close`] for a member shared behind an `Arc`.
    pub async fn leave(&self) -> Result<(), ClientError> {
        let request = proto::QueueFetchRequest {
            group: self.settler.coordinator.group().to_string(),
            member_id: self.settler.member_id.to_string(),
            leave: true,
            ..Default::default()
        };
        fetch_call(
            &self.settler.client,
            &self.settler.coordinator,
            request,
            Duration::ZERO,
        )
        .await
        .map(|_| ())
    }
}

impl Settler {
    pub async fn ack(&self, record: &QueuedRecord) -> Result<(), ClientError> {
        self.one(record, Settle::Ack).await
    }

    pub async fn release(
        &self,
        record: &QueuedRecord,
        delay: Duration,
        reason: &str,
    ) -> Result<(), ClientError> {
        let release = Settle::Release {
            delay,
            reason: reason.to_string(),
        };
        self.one(record, release).await
    }

    pub async fn reject(&self, record: &QueuedRecord, reason: &str) -> Result<(), ClientError> {
        self.one(
            record,
            Settle::Reject {
                reason: reason.to_string(),
            },
        )
        .await
    }

    pub async fn extend(&self, record: &QueuedRecord) -> Result<(), ClientError> {
        self.one(record, Settle::Extend).await
    }

    async fn one(&self, record: &QueuedRecord, settle: Settle) -> Result<(), ClientError> {
        let mut answers = self.settle(&[(record, settle)]).await?;
        answers.pop().unwrap_or(Ok(()))
    }

    /// Settles many records in one request; one answer per record.
    pub async fn settle(
        &self,
        items: &[(&QueuedRecord, Settle)],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let items: Vec<Settlement> = items
            .iter()
            .map(|(record, settle)| Settlement::of(record, settle.clone()))
            .collect();
        self.settle_all(&items).await
    }

    /// Settles deliveries named by topic, partition, offset and delivery count.
    pub async fn settle_all(
        &self,
        items: &[Settlement],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let settlements: Vec<proto::Settlement> = items.iter().map(settlement).collect();
        let request = proto::QueueSettleRequest {
            group: self.coordinator.group().to_string(),
            member_id: self.member_id.to_string(),
            settlements,
        };
        let what = format!(
            "settle records of queue group {:?}",
            self.coordinator.group()
        );
        let client = &self.client;
        let timeout = client.config().request_timeout;
        let answer = self
            .coordinator
            .call(&what, timeout, |addr, mut node| {
                let request = request.clone();
                async move {
                    let answer = client.unary(&addr, node.queue_settle(request)).await?;
                    ClientError::check(answer.error)?;
                    Ok(answer.results)
                }
            })
            .await?;
        Ok(answer
            .into_iter()
            .map(|error| ClientError::check(Some(error)))
            .collect())
    }
}

/// A settlement as the API carries it.
fn settlement(item: &Settlement) -> proto::Settlement {
    let (action, delay_ms, reason) = match &item.settle {
        Settle::Ack => (proto::SettleAction::SettleAck, 0, String::new()),
        Settle::Release { delay, reason } => (
            proto::SettleAction::SettleRelease,
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason.clone(),
        ),
        Settle::Reject { reason } => (proto::SettleAction::SettleReject, 0, reason.clone()),
        Settle::Extend => (proto::SettleAction::SettleExtend, 0, String::new()),
    };
    proto::Settlement {
        topic: item.topic.clone(),
        partition: item.partition,
        offset: item.offset,
        delivery_count: item.delivery_count,
        action: action as i32,
        delay_ms,
        reason,
    }
}

async fn fetch_call(
    client: &Client,
    coordinator: &Coordinator,
    request: proto::QueueFetchRequest,
    wait: Duration,
) -> Result<proto::QueueFetchResponse, ClientError> {
    let what = format!("fetch from queue group {:?}", coordinator.group());
    let timeout = client.config().request_timeout;
    coordinator
        .call(&what, timeout + wait, |addr, mut node| {
            let request = request.clone();
            async move {
                let answer = client
                    .unary_with(&addr, wait, node.queue_fetch(request))
                    .await?;
                ClientError::check(answer.error.clone())?;
                Ok(answer)
            }
        })
        .await
}

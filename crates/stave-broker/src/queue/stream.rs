//! Consume with `mode = QUEUE`: the node holding the stream is the queue group's member on
//! the client's behalf (a [`QueueConsumer`] of the node's own client, talking to the group's
//! coordinator wherever it runs). It fetches as many records as the stream's credit allows,
//! one fetch at a time, and passes Settle messages on (pipelined: each is answered by its
//! `id` when the coordinator has written it). When the stream ends the member leaves, and
//! what it holds unsettled goes out again at once.

use std::sync::Arc;
use std::time::Duration;

use stave_client::{QueueConfig, QueueConsumer, QueueOrdering, QueuedRecord};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Ordering;
use crate::broker::Broker;
use crate::consume::{
    ConsumeInput, ConsumeOutput, Credits, PUSH_BYTES_MAX, Subscription, client_error, record_size,
    start_position,
};
use crate::error::BrokerError;

/// How long one fetch for the stream waits before it is asked again.
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// Records one fetch asks for at most.
const FETCH_MAX: u64 = 1_000;

type Fetched = Result<Vec<QueuedRecord>, stave_client::ClientError>;

impl Broker {
    /// Serves a Consume stream in queue mode (see the module's doc).
    pub(crate) async fn consume_queue(
        &self,
        subscription: Subscription,
        mut input: mpsc::Receiver<ConsumeInput>,
        output: mpsc::Sender<ConsumeOutput>,
    ) {
        let member = match self.join_queue(&subscription).await {
            Ok(member) => Arc::new(member),
            Err(err) => {
                let _ = output.send(ConsumeOutput::Failed(err)).await;
                return;
            }
        };
        let mut credits = Credits::default();
        let mut fetching: Option<JoinHandle<Fetched>> = None;
        let mut client_done = false;
        loop {
            if fetching.is_none() && credits.allow() && !client_done {
                let member = member.clone();
                let max = credits_records(&credits);
                fetching = Some(tokio::spawn(
                    async move { member.fetch(max, FETCH_WAIT).await },
                ));
            }
            if client_done && fetching.is_none() {
                break;
            }
            tokio::select! {
                asked = input.recv(), if !client_done => match asked {
                    Some(ConsumeInput::Credit { records, bytes }) => credits.grant(records, bytes),
                    Some(asked) => {
                        if !answer(asked, &member, &output).await {
                            break;
                        }
                    }
                    None => client_done = true,
                },
                fetched = async { fetching.as_mut().expect("guarded").await }, if fetching.is_some() => {
                    fetching = None;
                    let records = match fetched {
                        Ok(Ok(records)) => records,
                        Ok(Err(err)) => {
                            let _ = output.send(ConsumeOutput::Failed(client_error(err))).await;
                            break;
                        }
                        Err(join) => {
                            let err = BrokerError::Internal(format!("a queue fetch failed: {join}"));
                            let _ = output.send(ConsumeOutput::Failed(err)).await;
                            break;
                        }
                    };
                    if !push(records, &mut credits, &output).await {
                        break;
                    }
                }
                () = output.closed() => break,
            }
        }
        if let Some(fetch) = fetching.take() {
            // Records it brings are released by the leave below (they are locked to this
            // member); wait for it so the leave comes after.
            let _ = fetch.await;
        }
        if let Err(err) = member.leave().await {
            tracing::debug!(%err, "a queue stream's member did not leave cleanly");
        }
    }

    async fn join_queue(&self, subscription: &Subscription) -> Result<QueueConsumer, BrokerError> {
        if subscription.group.is_empty() {
            return Err(BrokerError::InvalidRequest(
                "mode = QUEUE needs `group`: the queue group's name".into(),
            ));
        }
        if !subscription.partitions.is_empty() || subscription.auto_commit {
            return Err(BrokerError::InvalidRequest(
                "a queue group shares every partition and settles per record: `partitions` \
                 and `auto_commit` are for consumer groups"
                    .into(),
            ));
        }
        let options = subscription.queue.clone().unwrap_or_default();
        options.check()?;
        let config = QueueConfig {
            credit: 1,
            lock: options
                .lock_ms
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            max_deliveries: options.max_deliveries,
            ordering: match options.ordering {
                Ordering::None => QueueOrdering::None,
                Ordering::Key => QueueOrdering::Key,
            },
            max_unacked_span: options.max_unacked_span,
            start: start_position(subscription.start),
            fetch_wait: FETCH_WAIT,
        };
        let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
        let client = self.own_client().await?;
        QueueConsumer::join(&client, &subscription.group, &topics, config)
            .await
            .map_err(client_error)
    }
}

/// Answers a message other than Credit; false: the stream ends.
async fn answer(
    asked: ConsumeInput,
    member: &QueueConsumer,
    output: &mpsc::Sender<ConsumeOutput>,
) -> bool {
    match asked {
        ConsumeInput::Settle { id, items } => {
            // Pipelined: answered when the coordinator has written it, by its id.
            let settler = member.settler();
            let output = output.clone();
            tokio::spawn(async move {
                let result = settler
                    .settle_all(&items)
                    .await
                    .map(|answers| {
                        answers
                            .into_iter()
                            .map(|answer| answer.map_err(client_error))
                            .collect()
                    })
                    .map_err(client_error);
                let _ = output.send(ConsumeOutput::Settled { id, result }).await;
            });
            true
        }
        ConsumeInput::Commit { id, .. } => {
            let refused =
                BrokerError::InvalidRequest("a queue group commits by Settle, not Commit".into());
            let answer = ConsumeOutput::Committed {
                id,
                result: Err(refused),
            };
            output.send(answer).await.is_ok()
        }
        ConsumeInput::Refused(err) => {
            let _ = output.send(ConsumeOutput::Failed(err)).await;
            false
        }
        ConsumeInput::Credit { .. } => true,
    }
}

/// Records the credits allow one fetch to ask for.
fn credits_records(credits: &Credits) -> u32 {
    credits.records().min(FETCH_MAX) as u32
}

/// Pushes fetched records (within the push bounds); false if the stream closed.
async fn push(
    records: Vec<QueuedRecord>,
    credits: &mut Credits,
    output: &mpsc::Sender<ConsumeOutput>,
) -> bool {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for record in records {
        let size = record_size(&record.record);
        credits.spend(size);
        if !batch.is_empty() && bytes + size as usize > PUSH_BYTES_MAX {
            if output
                .send(ConsumeOutput::Queued(std::mem::take(&mut batch)))
                .await
                .is_err()
            {
                return false;
            }
            bytes = 0;
        }
        bytes += size as usize;
        batch.push(record);
    }
    batch.is_empty() || output.send(ConsumeOutput::Queued(batch)).await.is_ok()
}

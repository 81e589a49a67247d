//! Helpers of the queue-group tests (shared by the `broker` and `queue_scaling` binaries).

use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_client::{Client, ClientConfig, QueueConfig, QueueConsumer, StartPosition};
use stave_proto::v1 as pb;

use crate::support::{WAIT, client, code, retriable, retry};

/// Publishes `count` records (value = their index, an id per record so a retry is not a
/// second copy), keyed by `key(i)` when given.
pub async fn publish(addr: &str, topic: &str, count: usize, key: impl Fn(usize) -> Option<String>) {
    let records: Vec<pb::PublishRecord> = (0..count)
        .map(|i| pb::PublishRecord {
            topic: topic.into(),
            key: key(i).map(Bytes::from),
            value: Bytes::from(i.to_string()),
            headers: vec![pb::Header {
                key: "id".into(),
                value: Bytes::from(format!("{topic}-{i}")),
            }],
            ..Default::default()
        })
        .collect();
    let api = client(addr).await;
    for chunk in records.chunks(5_000) {
        retry(|| {
            let mut api = api.clone();
            let request = pb::PublishRequest {
                records: chunk.to_vec(),
                sequence: 0,
            };
            async move {
                let results = api
                    .publish(request)
                    .await
                    .map_err(|s| s.to_string())?
                    .into_inner()
                    .results;
                match results
                    .iter()
                    .find(|r| code(&r.error) != pb::ErrorCode::None)
                {
                    Some(r) if retriable(code(&r.error)) => Err(format!("{r:?}")),
                    Some(r) => panic!("publish refused: {r:?}"),
                    None => Ok(()),
                }
            }
        })
        .await;
    }
}

pub async fn rust_client(addr: &str) -> Client {
    Client::connect(ClientConfig {
        bootstrap: vec![addr.to_string()],
        ..Default::default()
    })
    .await
    .unwrap()
}

pub fn from_start(credit: u32) -> QueueConfig {
    QueueConfig {
        credit,
        start: StartPosition::Earliest,
        fetch_wait: Duration::from_millis(200),
        ..QueueConfig::default()
    }
}

pub async fn join(client: &Client, group: &str, topic: &str, config: QueueConfig) -> QueueConsumer {
    let started = Instant::now();
    loop {
        match QueueConsumer::join(client, group, &[topic], config.clone()).await {
            Ok(member) => return member,
            Err(err) if err.is_retriable() && started.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("join {group}: {err}"),
        }
    }
}

/// Fetches (up to `max` at a time) and acks until `acked` holds `until` offsets, within
/// `WAIT`.
pub async fn ack_until(
    member: &QueueConsumer,
    max: u32,
    acked: &mut std::collections::BTreeSet<u64>,
    until: usize,
) {
    let deadline = Instant::now() + WAIT;
    while acked.len() < until {
        assert!(Instant::now() < deadline, "acked {acked:?}");
        for taken in member.fetch(max, Duration::from_millis(200)).await.unwrap() {
            member.ack(&taken).await.unwrap();
            acked.insert(taken.offset);
        }
    }
}

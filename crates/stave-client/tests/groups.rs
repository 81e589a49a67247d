//! Consumer groups through the client, against a node served in process: partitions split
//! between members without ever being read by two at once, a stopped service resumes where
//! it stopped, patterns pick up new topics, and many members converge.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stave_client::{
    AssignmentChange, Client, Consumer, ConsumerConfig, ConsumerRecord, ProducerConfig,
    ProducerRecord, StartPosition,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod support;
use support::{Node, READY_TIMEOUT, connect, init_tracing, topic};

fn config() -> ConsumerConfig {
    ConsumerConfig {
        start_without_commit: StartPosition::Earliest,
        auto_commit_interval: Some(Duration::from_millis(200)),
        retry_timeout: READY_TIMEOUT,
        ..ConsumerConfig::default()
    }
}

/// What a member did, in order: `(when, member, change)`.
type Journal = Arc<Mutex<Vec<(Instant, usize, AssignmentChange)>>>;

/// A group member reading in a task: it publishes the partitions it holds and keeps the
/// records it read, until told to stop (then it closes: commit and leave).
struct Member {
    holding: watch::Receiver<BTreeSet<(String, u32)>>,
    records: Arc<Mutex<Vec<ConsumerRecord>>>,
    /// How many records it read so far.
    read: watch::Receiver<usize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Member {
    async fn start(
        client: &Client,
        group: &str,
        patterns: &[&str],
        index: usize,
        journal: Journal,
    ) -> Member {
        let mut consumer = client.consumer(config());
        consumer.subscribe(group, patterns).await.unwrap();
        let (holding_tx, holding) = watch::channel(BTreeSet::new());
        consumer.on_assignment_change(move |change| {
            journal
                .lock()
                .unwrap()
                .push((Instant::now(), index, change.clone()));
            holding_tx.send_modify(|held| match change {
                AssignmentChange::Assigned { partitions, .. } => {
                    held.extend(partitions.iter().map(|(t, p, _)| (t.to_string(), *p)));
                }
                AssignmentChange::Revoked { partitions, .. }
                | AssignmentChange::Lost { partitions } => {
                    for (t, p) in partitions {
                        held.remove(&(t.to_string(), *p));
                    }
                }
            });
        });
        let records = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let kept = records.clone();
        let (read_tx, read) = watch::channel(0);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    record = consumer.next() => {
                        kept.lock().unwrap().push(record.unwrap());
                        read_tx.send_modify(|n| *n += 1);
                    }
                    _ = &mut stopped => break,
                }
            }
            consumer.close().await.unwrap();
        });
        Member {
            holding,
            records,
            read,
            stop: Some(stop),
            task,
        }
    }

    async fn close(mut self) -> Vec<ConsumerRecord> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

/// Waits until `done` holds for the members' holdings.
async fn wait_holdings(
    members: &[&Member],
    what: &str,
    done: impl Fn(&[BTreeSet<(String, u32)>]) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut watches: Vec<_> = members.iter().map(|m| m.holding.clone()).collect();
    loop {
        let now: Vec<_> = watches
            .iter_mut()
            .map(|w| w.borrow_and_update().clone())
            .collect();
        if done(&now) {
            return start.elapsed();
        }
        let changed =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let remaining = (READY_TIMEOUT * 2).saturating_sub(start.elapsed());
        assert!(
            tokio::time::timeout(remaining, changed).await.is_ok(),
            "{what}: not reached in {:?}; holdings {now:?}",
            READY_TIMEOUT * 2
        );
    }
}

/// Waits until `done` holds for the records the members read so far.
async fn wait_records(
    members: &[&Member],
    what: &str,
    done: impl Fn(&[Vec<ConsumerRecord>]) -> bool,
) {
    let start = Instant::now();
    let mut watches: Vec<_> = members.iter().map(|m| m.read.clone()).collect();
    loop {
        for watch in &mut watches {
            watch.borrow_and_update();
        }
        let now: Vec<Vec<ConsumerRecord>> = members
            .iter()
            .map(|m| m.records.lock().unwrap().clone())
            .collect();
        if done(&now) {
            return;
        }
        let changed =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let remaining = READY_TIMEOUT.saturating_sub(start.elapsed());
        assert!(
            tokio::time::timeout(remaining, changed).await.is_ok(),
            "{what}: not reached in {READY_TIMEOUT:?}"
        );
    }
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap_or_default().to_vec()).unwrap()
}

fn sizes(holdings: &[BTreeSet<(String, u32)>]) -> Vec<usize> {
    holdings.iter().map(BTreeSet::len).collect()
}

/// No two members' holding intervals of a partition overlap. An interval runs from the
/// `Assigned` call (after reading started) to the `Revoked` call (before release): inside
/// the true holding time, so an overlap here is a real one.
fn check_no_overlap(journal: &[(Instant, usize, AssignmentChange)], end: Instant) {
    /// Member, from, to.
    type Interval = (usize, Instant, Instant);
    let mut open: BTreeMap<(String, u32), (usize, Instant)> = BTreeMap::new();
    let mut intervals: BTreeMap<(String, u32), Vec<Interval>> = BTreeMap::new();
    for (when, member, change) in journal {
        match change {
            AssignmentChange::Assigned { partitions, .. } => {
                for (topic, partition, _) in partitions {
                    let key = (topic.to_string(), *partition);
                    if let Some((holder, since)) = open.get(&key) {
                        for entry in journal {
                            eprintln!("{entry:?}");
                        }
                        panic!(
                            "{key:?} given to member {member} at {when:?} while member {holder} holds it since {since:?}"
                        );
                    }
                    open.insert(key, (*member, *when));
                }
            }
            AssignmentChange::Revoked { partitions, .. }
            | AssignmentChange::Lost { partitions } => {
                for (topic, partition) in partitions {
                    let key = (topic.to_string(), *partition);
                    let (holder, since) = open.remove(&key).unwrap();
                    assert_eq!(
                        holder, *member,
                        "{key:?} revoked from a member not holding it"
                    );
                    intervals
                        .entry(key)
                        .or_default()
                        .push((holder, since, *when));
                }
            }
        }
    }
    for (key, (holder, since)) in open {
        intervals.entry(key).or_default().push((holder, since, end));
    }
    for (key, mut list) in intervals {
        list.sort_by_key(|(_, since, _)| *since);
        for pair in list.windows(2) {
            assert!(
                pair[0].2 <= pair[1].1,
                "{key:?} held by members {} and {} at once",
                pair[0].0,
                pair[1].0
            );
        }
    }
}

/// Three members over six partitions: they settle on two each, no partition is ever held by
/// two at once (while they join one by one, and while one leaves), and the group's view
/// (DescribeGroup's epochs and holdings) matches theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_six_partitions_and_never_share_one() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.orders.placed", 6).await;
    let journal: Journal = Arc::default();
    // The coordinator's side, sampled throughout: what each member reports holding, with
    // its epoch; no partition in two members' hands in any sample.
    let (stop_sampling, mut sampling_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = client.admin();
    let sampler = tokio::spawn(async move {
        let mut samples = 0;
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = &mut sampling_stopped => return samples,
            }
            let Ok(group) = admin.describe_group("billing").await else {
                continue;
            };
            let mut owner: BTreeMap<(String, u32), (String, u64)> = BTreeMap::new();
            for member in &group.members {
                for tp in &member.owned {
                    let mine = (member.member_id.clone(), member.member_epoch);
                    if let Some(other) = owner.insert(tp.clone(), mine.clone()) {
                        panic!("{tp:?} owned by {other:?} and {mine:?} at once");
                    }
                }
            }
            samples += 1;
        }
    });
    let mut members = Vec::new();
    for index in 0..3 {
        members.push(
            Member::start(&client, "billing", &["v1.orders.*"], index, journal.clone()).await,
        );
        let refs: Vec<&Member> = members.iter().collect();
        let expected = 6 / members.len();
        wait_holdings(&refs, "balanced after a join", |h| {
            sizes(h).iter().all(|&n| n == expected)
        })
        .await;
    }
    // Records go to all three.
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..60 {
        producer
            .send(ProducerRecord::new("v1.orders.placed", format!("o{i}")).partition(i % 6))
            .await
            .unwrap();
    }
    producer.close().await;

    let leaving = members.remove(0);
    let read_by_leaver = leaving.close().await;
    let refs: Vec<&Member> = members.iter().collect();
    wait_holdings(&refs, "rebalanced after a leave", |h| sizes(h) == [3, 3]).await;
    check_no_overlap(&journal.lock().unwrap(), Instant::now());
    let _ = stop_sampling.send(());
    let samples = sampler.await.unwrap();
    assert!(
        samples > 10,
        "only {samples} samples of the coordinator's view"
    );

    // Every record read at least once, by the three together.
    let mut seen: BTreeSet<String> = read_by_leaver.iter().map(value).collect();
    let refs: Vec<&Member> = members.iter().collect();
    wait_records(&refs, "all 60 records read", |read| {
        let mut all = seen.clone();
        all.extend(read.iter().flatten().map(value));
        all.len() == 60
    })
    .await;
    seen.clear();
    for member in members {
        member.close().await;
    }
}

/// The service-down case: the group's only member stops (committing), 10,000 records are
/// written, and a new member of the group gets exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_resumes_with_exactly_what_it_missed() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.user.signedup", 3).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    for i in 0..10 {
        producer
            .send(ProducerRecord::new(
                "v1.user.signedup",
                format!("before-{i}"),
            ))
            .await
            .unwrap();
    }
    let mut consumer: Consumer = client.consumer(config());
    consumer
        .subscribe("email", &["v1.user.signedup"])
        .await
        .unwrap();
    for _ in 0..10 {
        consumer.next().await.unwrap();
    }
    consumer.close().await.unwrap();

    let mut deliveries = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let record = ProducerRecord::new("v1.user.signedup", format!("missed-{i}"));
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;

    let mut consumer = client.consumer(config());
    consumer
        .subscribe("email", &["v1.user.signedup"])
        .await
        .unwrap();
    let mut values = BTreeSet::new();
    for _ in 0..10_000 {
        let record = consumer.next().await.unwrap();
        let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
        assert!(value.starts_with("missed-"), "{value} read again");
        assert!(values.insert(value.clone()), "{value} read twice");
    }
    // Nothing else is left: every partition's position is its end.
    let admin = client.admin();
    for (topic, partition) in consumer.assignment() {
        let end = admin
            .list_offsets(&topic, partition, StartPosition::Latest)
            .await
            .unwrap();
        assert_eq!(consumer.position(&topic, partition), Some(end));
    }
    consumer.close().await.unwrap();
}

/// A pattern subscription picks up a topic created after the member joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_picks_up_a_topic_created_later() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.audit.login", 1).await;
    let journal: Journal = Arc::default();
    let member = Member::start(&client, "auditor", &["v1.audit.#"], 0, journal).await;
    wait_holdings(&[&member], "the first topic", |h| sizes(h) == [1]).await;
    topic(&client, "v1.audit.logout", 2).await;
    wait_holdings(&[&member], "the new topic", |h| sizes(h) == [3]).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    producer
        .send(ProducerRecord::new("v1.audit.logout", "bye").partition(1))
        .await
        .unwrap();
    producer.close().await;
    wait_records(&[&member], "the new topic's record", |read| {
        !read[0].is_empty()
    })
    .await;
    let records = member.close().await;
    assert_eq!(&*records[0].topic, "v1.audit.logout");
}

/// Fifty members join at once and converge to a stable, balanced assignment (two partitions
/// each of a hundred) within 30 s; the time is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_members_converge_quickly() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.clicks", 100).await;
    let journal: Journal = Arc::default();
    let start = Instant::now();
    let joins: Vec<_> = (0..50)
        .map(|index| {
            let client = client.clone();
            let journal = journal.clone();
            tokio::spawn(async move {
                Member::start(&client, "analytics", &["v1.clicks"], index, journal).await
            })
        })
        .collect();
    let mut members = Vec::new();
    for join in joins {
        members.push(join.await.unwrap());
    }
    let refs: Vec<&Member> = members.iter().collect();
    wait_holdings(&refs, "50 members balanced", |h| {
        sizes(h).iter().all(|&n| n == 2)
    })
    .await;
    let took = start.elapsed();
    println!("50 members converged in {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    check_no_overlap(&journal.lock().unwrap(), Instant::now());
    for member in members {
        member.close().await;
    }
}

/// Replay: after the group read everything and stopped, a reset to a time makes it read
/// again from the first record at or after that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_to_a_time_replays_from_the_first_record_at_or_after_it() {
    init_tracing();
    let node = Node::start().await;
    let client = connect(&node).await;
    topic(&client, "v1.payments", 2).await;
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    // Partition p, record i: timestamp 1_000_000 + i * 1000.
    for partition in 0..2 {
        for i in 0..5i64 {
            producer
                .send(
                    ProducerRecord::new("v1.payments", format!("p{partition}-{i}"))
                        .partition(partition)
                        .timestamp(1_000_000 + i * 1000),
                )
                .await
                .unwrap();
        }
    }
    producer.close().await;
    let mut consumer = client.consumer(config());
    consumer
        .subscribe("ledger", &["v1.payments"])
        .await
        .unwrap();
    for _ in 0..10 {
        consumer.next().await.unwrap();
    }
    consumer.close().await.unwrap();

    let admin = client.admin();
    let moved = admin
        .reset_offsets(
            "ledger",
            "v1.payments",
            &[],
            stave_client::ResetTo::Timestamp(1_002_500),
        )
        .await
        .unwrap();
    assert_eq!(moved, [(0, 3), (1, 3)]);

    let mut consumer = client.consumer(config());
    consumer
        .subscribe("ledger", &["v1.payments"])
        .await
        .unwrap();
    let mut replayed = BTreeSet::new();
    for _ in 0..4 {
        let record = consumer.next().await.unwrap();
        assert!(record.timestamp >= 1_002_500, "{record:?}");
        replayed.insert(value(&record));
    }
    let expected: BTreeSet<String> = ["p0-3", "p0-4", "p1-3", "p1-4"].map(String::from).into();
    assert_eq!(replayed, expected);
    consumer.close().await.unwrap();
}

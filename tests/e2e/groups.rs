//! Consumer groups across real processes: three `stave server` nodes and `stave consume
//! --group` processes, one of them killed with SIGKILL; the coordinator's node killed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stave_client::{Client, ClientConfig, ProducerConfig, ProducerRecord};

use crate::support::{WAIT, create_topic, eventually, start, wait_ready};

/// What a consumer process printed.
#[derive(Debug)]
enum Line {
    /// A record (stdout, JSON): topic, partition, offset, value.
    Record(String, u32, u64, String),
    /// An assignment note (stderr): `assigned: t/p@offset ...`, `revoked: t/p ...`, `lost...`.
    Note(String),
}

/// A `stave consume --group` process; its output comes over a channel, line by line, tagged
/// with its index. Killed (SIGKILL) when dropped.
struct ConsumerProcess {
    child: Child,
}

impl ConsumerProcess {
    fn spawn(
        index: usize,
        bootstrap: &str,
        args: &[&str],
        lines: &mpsc::Sender<(usize, Line)>,
    ) -> ConsumerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stave"))
            .args(["--bootstrap", bootstrap, "consume"])
            .args(args)
            .args(["--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let json: serde_json::Value = serde_json::from_str(&line).unwrap();
                let record = Line::Record(
                    json["topic"].as_str().unwrap().to_string(),
                    json["partition"].as_u64().unwrap() as u32,
                    json["offset"].as_u64().unwrap(),
                    json["value"].as_str().unwrap().to_string(),
                );
                if out.send((index, record)).is_err() {
                    return;
                }
            }
        });
        let err = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err.send((index, Line::Note(line))).is_err() {
                    return;
                }
            }
        });
        ConsumerProcess { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (commit and leave), and wait for the exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the consumers printed so far, folded: records and holdings per consumer.
#[derive(Default)]
struct Seen {
    /// (consumer, topic, partition) -> offsets in the order printed.
    records: BTreeMap<(usize, String, u32), Vec<u64>>,
    values: BTreeMap<usize, BTreeSet<String>>,
    holding: BTreeMap<usize, BTreeSet<(String, u32)>>,
    /// Where each consumer started each partition it was assigned, in order.
    starts: Vec<(usize, String, u32, u64)>,
}

fn parse_partition(text: &str) -> (String, u32, Option<u64>) {
    let (tp, offset) = match text.split_once('@') {
        Some((tp, offset)) => (tp, Some(offset.parse().unwrap())),
        None => (text, None),
    };
    let (topic, partition) = tp.rsplit_once('/').unwrap();
    (topic.to_string(), partition.parse().unwrap(), offset)
}

impl Seen {
    fn take(&mut self, index: usize, line: Line) {
        match line {
            Line::Record(topic, partition, offset, value) => {
                self.records
                    .entry((index, topic, partition))
                    .or_default()
                    .push(offset);
                self.values.entry(index).or_default().insert(value);
            }
            Line::Note(note) => {
                let holding = self.holding.entry(index).or_default();
                if let Some(list) = note.strip_prefix("assigned: ") {
                    for item in list.split_whitespace() {
                        let (topic, partition, offset) = parse_partition(item);
                        holding.insert((topic.clone(), partition));
                        self.starts.push((index, topic, partition, offset.unwrap()));
                    }
                } else if let Some((_, list)) = note.split_once(": ")
                    && (note.starts_with("revoked") || note.starts_with("lost"))
                {
                    for item in list.split_whitespace() {
                        let (topic, partition, _) = parse_partition(item);
                        holding.remove(&(topic, partition));
                    }
                }
            }
        }
    }

    fn sizes(&self, consumers: &[usize]) -> Vec<usize> {
        consumers
            .iter()
            .map(|c| self.holding.get(c).map_or(0, BTreeSet::len))
            .collect()
    }

    fn all_values(&self) -> BTreeSet<String> {
        self.values.values().flatten().cloned().collect()
    }

    /// Waits for lines until `done` holds (at most `WAIT`).
    fn wait(
        &mut self,
        lines: &mpsc::Receiver<(usize, Line)>,
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok((index, line)) => self.take(index, line),
                Err(_) => panic!(
                    "{what}: not reached within {WAIT:?}; holdings {:?}, {} values",
                    self.holding,
                    self.all_values().len()
                ),
            }
        }
    }
}

async fn producer_client(bootstrap: &str) -> Client {
    let mut config = ClientConfig::new(bootstrap).unwrap();
    config.retry_timeout = WAIT;
    Client::connect(config).await.unwrap()
}

/// Writes `prefix-0..count` spread evenly over `partitions` partitions.
async fn produce(client: &Client, topic: &str, prefix: &str, count: usize, partitions: u32) {
    let producer = client.producer(ProducerConfig::default()).await.unwrap();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record =
            ProducerRecord::new(topic, format!("{prefix}-{i}")).partition(i as u32 % partitions);
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;
}

fn expected(prefix: &str, count: usize) -> BTreeSet<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Three consumers over six partitions split them two each; one is killed with SIGKILL: its
/// partitions move to the two others within the session timeout, every record is read at
/// least once, and the takers start each moved partition at a committed offset: no earlier
/// than what the group had committed before the kill, no later than the first record the
/// killed consumer had not printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumer_s_partitions_move_on_and_resume_at_the_last_commit() {
    let root = tempfile::tempdir().unwrap();
    let servers = start(root.path(), 3);
    wait_ready(&servers).await;
    let bootstrap: String = servers
        .iter()
        .map(|s| s.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&servers[0].addr, "v1.orders", 6, &[]).await;
    let client = producer_client(&bootstrap).await;

    let (sender, lines) = mpsc::channel();
    let args = ["v1.orders", "--group", "billing", "--from-beginning"];
    let mut consumers: Vec<ConsumerProcess> = (0..3)
        .map(|i| ConsumerProcess::spawn(i, &bootstrap, &args, &sender))
        .collect();
    let mut seen = Seen::default();
    seen.wait(&lines, "two partitions each", |s| {
        s.sizes(&[0, 1, 2]) == [2, 2, 2]
    });

    produce(&client, "v1.orders", "a", 600, 6).await;
    seen.wait(&lines, "the first 600 read", |s| {
        s.all_values().is_superset(&expected("a", 600))
    });
    let admin = client.admin();
    // What the group committed before the kill (auto-commit runs every 5 s).
    let before: BTreeMap<u32, u64> = admin
        .describe_group("billing")
        .await
        .unwrap()
        .offsets
        .iter()
        .map(|o| (o.partition, o.committed))
        .collect();
    produce(&client, "v1.orders", "b", 300, 6).await;
    seen.wait(&lines, "the next 300 read", |s| {
        s.all_values().is_superset(&expected("b", 300))
    });

    let victim = 0;
    let victims: BTreeSet<(String, u32)> = seen.holding[&victim].clone();
    consumers[victim].kill();
    let killed_at = Instant::now();
    let starts_before = seen.starts.len();
    seen.wait(&lines, "the killed consumer's partitions taken over", |s| {
        s.sizes(&[1, 2]) == [3, 3]
    });
    let moved_in = killed_at.elapsed();
    println!("partitions moved {moved_in:?} after the SIGKILL");
    assert!(moved_in < Duration::from_secs(20), "took {moved_in:?}");

    for (index, topic, partition, start) in &seen.starts[starts_before..] {
        if !victims.contains(&(topic.clone(), *partition)) {
            continue;
        }
        let printed = seen
            .records
            .get(&(victim, topic.clone(), *partition))
            .and_then(|offsets| offsets.iter().max())
            .map_or(0, |last| last + 1);
        let committed = before.get(partition).copied().unwrap_or(0);
        assert!(
            committed <= *start && *start <= printed,
            "consumer {index} resumed {topic}/{partition} at {start}: the group had committed \
             {committed}, the killed consumer printed up to {printed}"
        );
    }

    produce(&client, "v1.orders", "c", 300, 6).await;
    seen.wait(&lines, "everything read at least once", |s| {
        let all = s.all_values();
        all.is_superset(&expected("a", 600))
            && all.is_superset(&expected("b", 300))
            && all.is_superset(&expected("c", 300))
    });
    // The takers read each moved partition from where they started, no earlier.
    for ((index, topic, partition), offsets) in &seen.records {
        if *index == victim || !victims.contains(&(topic.clone(), *partition)) {
            continue;
        }
        let start = seen.starts[starts_before..]
            .iter()
            .find(|(i, t, p, _)| i == index && t == topic && p == partition)
            .map(|(_, _, _, start)| *start)
            .unwrap();
        assert_eq!(offsets.first(), Some(&start), "{topic}/{partition}");
    }
    for consumer in &mut consumers[1..] {
        consumer.terminate();
    }
    // SIGTERM committed and left: nothing left to read, no members.
    let described = admin.describe_group("billing").await.unwrap();
    assert!(described.members.is_empty(), "{:?}", described.members);
    for offset in &described.offsets {
        assert_eq!(offset.lag, 0, "{offset:?}");
    }
}

/// The node coordinating a group is killed: the group carries on (on the new coordinator,
/// after the session timeout of the old one's members) and its committed offsets are never
/// lost or moved backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_carries_on_when_its_coordinator_s_node_is_killed() {
    let root = tempfile::tempdir().unwrap();
    let mut servers = start(root.path(), 3);
    wait_ready(&servers).await;
    let bootstrap: String = servers
        .iter()
        .map(|s| s.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&servers[0].addr, "v1.audit", 3, &[]).await;
    let client = producer_client(&bootstrap).await;
    let (sender, lines) = mpsc::channel();
    let args = ["v1.audit", "--group", "audit", "--from-beginning"];
    let _consumer = ConsumerProcess::spawn(0, &bootstrap, &args, &sender);
    let mut seen = Seen::default();
    seen.wait(&lines, "all three partitions", |s| s.sizes(&[0]) == [3]);
    produce(&client, "v1.audit", "a", 300, 3).await;
    seen.wait(&lines, "the first 300", |s| {
        s.all_values().is_superset(&expected("a", 300))
    });

    let admin = client.admin();
    let committed = |admin: stave_client::Admin| async move {
        admin.describe_group("audit").await.map(|d| {
            d.offsets
                .iter()
                .map(|o| (o.partition, (o.committed, o.lag)))
                .collect::<BTreeMap<u32, (u64, u64)>>()
        })
    };
    // Auto-commit catches up with the 300 (every 5 s).
    let before = eventually("the first 300 committed", || {
        let admin = admin.clone();
        async move {
            let now = committed(admin).await.ok()?;
            (now.len() == 3 && now.values().all(|(_, lag)| *lag == 0)).then_some(now)
        }
    })
    .await;

    let coordinator = client_coordinator(&bootstrap, "audit").await;
    let victim = servers.iter_mut().find(|s| s.addr == coordinator).unwrap();
    victim.kill();
    let killed_at = Instant::now();

    produce(&client, "v1.audit", "b", 300, 3).await;
    seen.wait(&lines, "the 300 written after the kill", |s| {
        s.all_values().is_superset(&expected("b", 300))
    });
    println!(
        "the group read on {:?} after its coordinator was killed",
        killed_at.elapsed()
    );
    // Committed offsets reach the new end, and never went below what they were.
    eventually("the commits after the kill", || {
        let admin = admin.clone();
        let before = &before;
        async move {
            let now = committed(admin).await.ok()?;
            for (partition, (offset, _)) in &now {
                assert!(
                    *offset >= before[partition].0,
                    "partition {partition}: committed {offset} < {} before the kill",
                    before[partition].0
                );
            }
            let done = now.len() == 3
                && now
                    .iter()
                    .all(|(p, (offset, lag))| *lag == 0 && *offset >= before[p].0 + 100);
            done.then_some(())
        }
    })
    .await;
}

/// The address of `group`'s coordinator.
async fn client_coordinator(bootstrap: &str, group: &str) -> String {
    let addr = bootstrap.split(',').next().unwrap();
    let answer = crate::support::client(addr)
        .find_coordinator(stave_proto::v1::FindCoordinatorRequest {
            group: group.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.error.is_none(), "{:?}", answer.error);
    answer.addr
}

//! A full disk is an answer, not a death (issue 15), tried on a real one: a node whose data
//! directory (and log file) sits on a small tmpfs. Mounting one needs root: elsewhere the
//! tests say so and pass without running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stave_log::batch::{BatchBuilder, ProducerFields, Record};
use stave_proto::v1 as pb;

use crate::support::{
    WAIT, client, code, create_topic, now_ms, read_all, reserve_port, seed_batch,
};

/// A tmpfs of a given size, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts one at `dir`, or says why it cannot.
    fn mount(dir: &Path, bytes: u64) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "stave-test"])
            .arg(dir)
            .output()
            .map_err(|err| err.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A `stave server` whose output goes to `log` (on the full disk too); killed when dropped.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    /// Node `id` on `addr`; `cluster`: the peers and the cluster secret's file, if not alone.
    fn start(
        id: u64,
        data_dir: &Path,
        log: &Path,
        cluster: Option<(&str, &Path)>,
        addr: &str,
    ) -> Node {
        let output = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_stave"));
        command
            .args(["server", "--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", addr])
            .args(["--metrics-listen", "off"])
            .args(["--disk-reserve-bytes", &(4 << 20).to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output);
        if let Some((peers, secret_file)) = cluster {
            command.args(["--peers", peers]);
            command.arg("--cluster-secret-file").arg(secret_file);
        }
        Node {
            child: command.spawn().unwrap(),
            log: log.to_path_buf(),
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One record of `bytes` bytes, keyed by `seed`.
fn big_batch(seed: u64, bytes: usize) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.producer(ProducerFields::NONE);
    let value = vec![b'f'; bytes];
    builder.push(&Record {
        timestamp: now_ms(),
        key: Some(&seed.to_le_bytes()),
        value: Some(&value),
        headers: &[],
    });
    Bytes::from(builder.finish())
}

/// One produce, answered as it is; a transport failure is a failed test.
async fn produce(addr: &str, topic: &str, batch: Bytes) -> pb::ProduceResponse {
    tokio::time::timeout(
        WAIT,
        client(addr).produce(pb::ProduceRequest {
            sequence: 0,
            topic: topic.into(),
            partition: 0,
            batch,
        }),
    )
    .await
    .expect("a produce got no answer")
    .expect("a produce failed at the transport")
    .into_inner()
}

/// Produces `batch` until an answer is neither NONE's wait for an election nor STORAGE_FULL
/// when `while_full`: the final answer.
async fn produce_until(
    addr: &str,
    topic: &str,
    batch: Bytes,
    while_full: bool,
) -> pb::ProduceResponse {
    let started = Instant::now();
    loop {
        let answer = produce(addr, topic, batch.clone()).await;
        let retry = match code(&answer.error) {
            pb::ErrorCode::LeaderNotAvailable | pb::ErrorCode::NotLeader => true,
            pb::ErrorCode::StorageFull => while_full,
            _ => false,
        };
        if !retry {
            return answer;
        }
        assert!(started.elapsed() < WAIT, "still {answer:?} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mount_or_skip(root: &Path, bytes: u64) -> Option<Tmpfs> {
    match Tmpfs::mount(&root.join("disk"), bytes) {
        Ok(tmpfs) => Some(tmpfs),
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({})", why.trim());
            None
        }
    }
}

/// A node whose disk (data and log file) fills up: writes are refused with STORAGE_FULL
/// naming the node and the space, reads serve every acknowledged record, a topic created on
/// the full disk starts (its writes get STORAGE_FULL, not LEADER_NOT_AVAILABLE), and once a
/// topic is deleted, writes are taken again, by the same process, and every acknowledged
/// record is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers_without_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let Some(tmpfs) = mount_or_skip(root.path(), 40 << 20) else {
        return;
    };
    let addr = format!("127.0.0.1:{}", reserve_port());
    let mut node = Node::start(
        1,
        &tmpfs.dir.join("data"),
        &tmpfs.dir.join("node.log"),
        None,
        &addr,
    );
    let small = [("segment.bytes", "1048576")];
    create_topic(&addr, "v1.keep", 1, &small).await;
    create_topic(&addr, "v1.filler", 1, &small).await;
    let mut kept = Vec::new();
    for seed in 0..20 {
        let answer = produce_until(&addr, "v1.keep", seed_batch(seed), false).await;
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
        kept.push(seed);
    }

    // Fill the disk.
    let mut full = None;
    let mut filled = 0;
    for seed in 0..1_000 {
        let answer = produce_until(&addr, "v1.filler", big_batch(seed, 200_000), false).await;
        match code(&answer.error) {
            pb::ErrorCode::None => filled += 1,
            pb::ErrorCode::StorageFull => {
                full = answer.error;
                break;
            }
            other => panic!("filling: {other:?} {answer:?}\n{}", node.output()),
        }
    }
    let full = full.expect("40 MiB never filled");
    for part in ["node 1", "bytes free", "kept in reserve", "disk"] {
        assert!(
            full.message.contains(part),
            "{part:?} missing from {:?}",
            full.message
        );
    }

    // Writes to the other topic: taken while its segment has room, then refused; never an
    // internal error or a timeout.
    for seed in 20..200 {
        let answer = produce_until(&addr, "v1.keep", seed_batch(seed), false).await;
        match code(&answer.error) {
            pb::ErrorCode::None => kept.push(seed),
            pb::ErrorCode::StorageFull => {}
            other => panic!("keep: {other:?} {answer:?}"),
        }
    }
    let read: Vec<u64> = read_all(&addr, "v1.keep", 0, 0)
        .await
        .into_iter()
        .map(|(_, seed)| seed)
        .collect();
    assert_eq!(read, kept, "reads on the full disk");

    // A topic created on the full disk starts: its partition answers.
    create_topic(&addr, "v1.after", 1, &[]).await;
    let answer = produce_until(&addr, "v1.after", seed_batch(0), false).await;
    assert!(
        matches!(
            code(&answer.error),
            pb::ErrorCode::None | pb::ErrorCode::StorageFull
        ),
        "{answer:?}"
    );

    // Free space: delete the filler. Writes resume by themselves.
    let deleted = client(&addr)
        .delete_topics(pb::DeleteTopicsRequest {
            names: vec!["v1.filler".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        code(&deleted.results[0].error),
        pb::ErrorCode::None,
        "{deleted:?}"
    );
    for seed in 200..220 {
        let answer = produce_until(&addr, "v1.keep", seed_batch(seed), true).await;
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
        kept.push(seed);
    }
    assert!(node.alive(), "the node stopped:\n{}", node.output());
    eprintln!(
        "filled with {filled} batches of 200 kB; refused with {:?}; {} records kept",
        full.message,
        kept.len()
    );
    let read: Vec<u64> = read_all(&addr, "v1.keep", 0, 0)
        .await
        .into_iter()
        .map(|(_, seed)| seed)
        .collect();
    assert_eq!(read, kept, "every acknowledged record, once, in order");
    drop(node);
    drop(tmpfs);
}

/// A server whose output cannot be written (standard output and error on `/dev/full`, every
/// write failing with ENOSPC, as when the log file shares the full disk) keeps serving: a
/// log line that cannot be written is dropped. Before, tracing-subscriber reported the
/// failure with `eprintln!`, which panics when standard error fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_log_output_fails_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", reserve_port());
    let mut node = Node::start(
        1,
        &root.path().join("data"),
        Path::new("/dev/full"),
        None,
        &addr,
    );
    create_topic(&addr, "v1.quiet", 1, &[]).await;
    for seed in 0..10 {
        let answer = produce_until(&addr, "v1.quiet", seed_batch(seed), false).await;
        assert_eq!(code(&answer.error), pb::ErrorCode::None, "{answer:?}");
    }
    let read: Vec<u64> = read_all(&addr, "v1.quiet", 0, 0)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(read, (0..10).collect::<Vec<_>>());
    assert!(node.alive(), "the server died writing its log");
}

/// The leader and in-sync replicas of `topic`'s partitions, as node `addr` gathers them.
async fn partitions(addr: &str, topic: &str) -> Vec<pb::PartitionMetadata> {
    let answer = client(addr)
        .metadata(pb::MetadataRequest {
            topics: vec![topic.into()],
        })
        .await;
    answer.map_or_else(
        |_| Vec::new(),
        |a| a.into_inner().topics.remove(0).partitions,
    )
}

/// On a 3-node cluster, the disk of one follower fills up: it stops acknowledging, the
/// leader and the other follower carry on (every write is taken), and once space is freed
/// on its disk the follower catches up by itself (back in sync, same process). After the
/// leader is killed, every acknowledged record is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_out_of_space_stops_acknowledging_and_catches_up() {
    let root = tempfile::tempdir().unwrap();
    // 32 MiB, less 12 MiB of ballast and the 4 MiB reserve: node 3 fills up before the
    // 20 MB written have all reached it; without the ballast they all fit.
    let Some(tmpfs) = mount_or_skip(root.path(), 32 << 20) else {
        return;
    };
    // Ballast: what an operator deletes to free space.
    let ballast = tmpfs.dir.join("ballast");
    std::fs::write(&ballast, vec![1u8; 12 << 20]).unwrap();
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", reserve_port()))
        .collect();
    let secret_file = crate::support::cluster_secret_file(root.path());
    let peers: String = (1..)
        .zip(&addrs)
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (1..=3u64)
        .map(|id| {
            let (data, log) = match id {
                3 => (tmpfs.dir.join("data"), tmpfs.dir.join("node-3.log")),
                _ => (
                    root.path().join(format!("node-{id}")),
                    root.path().join(format!("node-{id}.log")),
                ),
            };
            let cluster = Some((peers.as_str(), secret_file.as_path()));
            Node::start(id, &data, &log, cluster, &addrs[id as usize - 1])
        })
        .collect();
    let addr = addrs[0].clone();
    create_topic(&addr, "v1.repl", 3, &[("segment.bytes", "1048576")]).await;
    let (partition, leader) = crate::support::eventually("a partition led off node 3", || {
        let addr = addr.clone();
        async move {
            let all = partitions(&addr, "v1.repl").await;
            all.iter()
                .find(|p| p.leader.is_some_and(|l| l != 3) && p.in_sync.len() == 3)
                .map(|p| (p.partition, p.leader.unwrap_or_default()))
        }
    })
    .await;
    let leader_addr = addrs[leader as usize - 1].clone();

    let mut acknowledged = Vec::new();
    for seed in 0..100u64 {
        let answer = tokio::time::timeout(
            WAIT,
            client(&leader_addr).produce(pb::ProduceRequest {
                sequence: 0,
                topic: "v1.repl".into(),
                partition,
                batch: big_batch(seed, 200_000),
            }),
        )
        .await
        .unwrap()
        .unwrap()
        .into_inner();
        assert_eq!(
            code(&answer.error),
            pb::ErrorCode::None,
            "write {seed}: {answer:?}"
        );
        acknowledged.push(seed);
    }
    let behind = crate::support::eventually("node 3 out of sync", || {
        let addr = leader_addr.clone();
        async move {
            let all = partitions(&addr, "v1.repl").await;
            let p = all.into_iter().find(|p| p.partition == partition)?;
            (!p.in_sync.contains(&3)).then_some(p.in_sync)
        }
    })
    .await;
    assert!(nodes[2].alive(), "node 3 stopped:\n{}", nodes[2].output());

    std::fs::remove_file(&ballast).unwrap();
    crate::support::eventually("node 3 back in sync", || {
        let addr = leader_addr.clone();
        async move {
            let all = partitions(&addr, "v1.repl").await;
            let p = all.into_iter().find(|p| p.partition == partition)?;
            p.in_sync.contains(&3).then_some(())
        }
    })
    .await;
    assert!(nodes[2].alive(), "node 3 restarted or stopped");
    eprintln!("in sync while node 3 was full: {behind:?}");

    // Node 3 holds the data: with the leader gone, the partition serves every record.
    let leader_index = leader as usize - 1;
    drop(nodes.remove(leader_index));
    let other = addrs
        .iter()
        .enumerate()
        .find(|(i, _)| *i != leader_index)
        .map(|(_, a)| a.clone())
        .unwrap();
    let read: Vec<u64> = read_all(&other, "v1.repl", partition, 0)
        .await
        .into_iter()
        .map(|(_, seed)| seed)
        .collect();
    assert_eq!(read, acknowledged);
    drop(nodes);
    drop(tmpfs);
}

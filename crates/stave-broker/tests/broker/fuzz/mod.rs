//! The API fuzz suite (issue 15): property-generated, mostly hostile requests to every RPC of
//! `stave.v1.Stave` against an in-process 3-node cluster, interleaved with valid traffic to
//! the model topics, whose acknowledged records the model keeps.
//!
//! After every case: no node panicked (a panic hook counts panics on the nodes' threads), the
//! answer was typed (see [`harness`] for what is acceptable), and the partition the case
//! targeted still takes a valid write (a group's `__offsets` partition a valid commit). Every
//! [`VERIFY_EVERY`] cases and at the end, every model partition serves every acknowledged
//! record unchanged ([`model`]).
//!
//! Cases run a few at a time ([`WORKERS_DEFAULT`]); case `i` draws everything from a generator
//! seeded with `(seed, i)`, so a failing case's request is reproduced by its seed and index
//! (the cluster state around it depends on the cases before it, and on their interleaving).
//! - `STAVE_FUZZ_CASES=N`: run N cases (default [`CASES_DEFAULT`]).
//! - `STAVE_SEED=S`: replay seed S (default [`harness::SEED_DEFAULT`]); a failure prints it.
//! - `STAVE_FUZZ_WORKERS=W`: cases in flight at once.
//! - `STAVE_FUZZ_KEEP_GOING=1`: collect defects and carry on, rather than stop at the first.
//!
//! Queue groups: hostile members in [`queues`], the valid members in [`queue_members`],
//! Consume in queue mode in [`queue_streams`]. Internal Raft services from an outsider:
//! [`internal`]. Every RPC from the anonymous and the unauthorised under `--auth required`:
//! [`denied`]. Minimised defects: [`regressions`].

mod admin;
mod data;
mod denied;
mod forged;
mod frames;
mod groups;
mod harness;
mod internal;
mod model;
mod names;
mod queue_members;
mod queue_streams;
mod queues;
mod records;
mod regressions;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_proto::v1 as pb;

use harness::{Checked, Cluster, Defect, defect, env_u64};
use model::Model;

/// Cases a run makes unless `STAVE_FUZZ_CASES` says otherwise: well under a minute in a
/// debug build on two busy cores.
const CASES_DEFAULT: u64 = 1_000;
/// Cases in flight at once.
const WORKERS_DEFAULT: u64 = 4;
/// The model is checked in full this often (and at the end).
const VERIFY_EVERY: u64 = 1_000;
/// A long run says how far it got this often.
const PROGRESS_EVERY: u64 = 10_000;
/// The thread-name prefix of the runtime the nodes run on (panics there are counted). The
/// fuzz itself runs on another runtime, so a node stuck on its threads cannot stop the
/// fuzz from noticing.
const THREADS: &str = "fuzz-api-node";

/// The RPCs of `stave.v1.Stave`, each with its share of the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Rpc {
    Publish,
    PublishStream,
    Consume,
    Produce,
    ProduceStream,
    Fetch,
    ListOffsets,
    Metadata,
    InitProducerId,
    CreateTopics,
    DeleteTopics,
    DescribeTopics,
    AlterTopicConfig,
    FindCoordinator,
    CommitOffsets,
    FetchOffsets,
    GroupHeartbeat,
    DescribeGroup,
    ListGroups,
    ResetOffsets,
    QueueFetch,
    QueueSettle,
    /// Consume with `mode = QUEUE` (and Settle messages).
    ConsumeQueue,
}

const WEIGHTS: [(Rpc, u32); 23] = [
    (Rpc::Publish, 8),
    (Rpc::PublishStream, 3),
    (Rpc::Consume, 4),
    (Rpc::Produce, 26),
    (Rpc::ProduceStream, 8),
    (Rpc::Fetch, 14),
    (Rpc::ListOffsets, 6),
    (Rpc::Metadata, 3),
    (Rpc::InitProducerId, 2),
    (Rpc::CreateTopics, 3),
    (Rpc::DeleteTopics, 2),
    (Rpc::DescribeTopics, 3),
    (Rpc::AlterTopicConfig, 4),
    (Rpc::FindCoordinator, 3),
    (Rpc::CommitOffsets, 6),
    (Rpc::FetchOffsets, 3),
    (Rpc::GroupHeartbeat, 8),
    (Rpc::DescribeGroup, 3),
    (Rpc::ListGroups, 1),
    (Rpc::ResetOffsets, 5),
    (Rpc::QueueFetch, 6),
    (Rpc::QueueSettle, 5),
    (Rpc::ConsumeQueue, 4),
];

fn choose(rng: &mut StdRng) -> Rpc {
    let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut at = rng.random_range(0..total);
    for (rpc, weight) in WEIGHTS {
        if at < weight {
            return rpc;
        }
        at -= weight;
    }
    Rpc::Produce
}

/// What the fuzz shares between its workers.
pub struct Ctx {
    cluster: Cluster,
    model: Model,
    /// Every producer id InitProducerId handed out.
    producer_ids: std::sync::Mutex<HashSet<i64>>,
    /// Queue members (group, member id) hostile cases joined and did not leave, for other
    /// cases to steal.
    queue_members: std::sync::Mutex<Vec<(String, String)>>,
    /// How far the queue cases got (so a run shows they reached the real paths).
    queue_counts: queues::Counts,
}

/// What a case leaves to check after it.
pub struct After {
    /// A model partition the case aimed at: it must still take a valid write.
    partition: Option<(String, u32)>,
    /// A group (valid name) the case aimed at: a plain commit to it must go through.
    group: Option<String>,
    /// A pool topic's partition the case aimed at: if it exists, it must still take a write.
    pool: Option<(String, u32)>,
    /// A long poll that the valid write must wake.
    waiting: Option<tokio::task::JoinHandle<Checked>>,
}

impl After {
    fn nothing() -> After {
        After {
            partition: None,
            pool: None,
            group: None,
            waiting: None,
        }
    }

    fn touching(target: &data::Target) -> After {
        let mut after = After::nothing();
        let pool = names::POOL_TOPICS.contains(&target.topic.as_str()) && target.partition < 3;
        if target.kind == data::TargetKind::Model {
            after.partition = Some((target.topic.clone(), target.partition));
        } else if pool {
            after.pool = Some((target.topic.clone(), target.partition));
        }
        after
    }

    fn touching_partition(topic: &str, partition: u32) -> After {
        let mut after = After::nothing();
        after.partition = Some((topic.to_string(), partition));
        after
    }

    fn group(group: &str) -> After {
        let mut after = After::nothing();
        if groups::valid_group(group) {
            after.group = Some(group.to_string());
        }
        after
    }
}

/// Case `index`'s generator: a function of the seed and the index only.
fn case_rng(seed: u64, index: u64) -> StdRng {
    // splitmix64 of the pair, so neighbouring indexes get unrelated streams.
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

async fn run_rpc(ctx: &Arc<Ctx>, rpc: Rpc, rng: &mut StdRng) -> Result<After, Defect> {
    match rpc {
        Rpc::Publish => records::publish(ctx, rng).await,
        Rpc::PublishStream => records::publish_stream(ctx, rng).await,
        Rpc::Consume => records::consume(ctx, rng).await,
        Rpc::Produce => data::produce(ctx, rng).await,
        Rpc::ProduceStream => data::produce_stream(ctx, rng).await,
        Rpc::Fetch => data::fetch(ctx, rng).await,
        Rpc::ListOffsets => data::list_offsets(ctx, rng).await,
        Rpc::Metadata => admin::metadata(ctx, rng).await,
        Rpc::InitProducerId => admin::init_producer_id(ctx, rng).await,
        Rpc::CreateTopics => admin::create_topics(ctx, rng).await,
        Rpc::DeleteTopics => admin::delete_topics(ctx, rng).await,
        Rpc::DescribeTopics => admin::describe_topics(ctx, rng).await,
        Rpc::AlterTopicConfig => admin::alter_topic_config(ctx, rng).await,
        Rpc::FindCoordinator => groups::find_coordinator(ctx, rng).await,
        Rpc::CommitOffsets => groups::commit_offsets(ctx, rng).await,
        Rpc::FetchOffsets => groups::fetch_offsets(ctx, rng).await,
        Rpc::GroupHeartbeat => groups::group_heartbeat(ctx, rng).await,
        Rpc::DescribeGroup => groups::describe_group(ctx, rng).await,
        Rpc::ListGroups => groups::list_groups(ctx, rng).await,
        Rpc::ResetOffsets => groups::reset_offsets(ctx, rng).await,
        Rpc::QueueFetch => queues::queue_fetch(ctx, rng).await,
        Rpc::QueueSettle => queues::queue_settle(ctx, rng).await,
        Rpc::ConsumeQueue => queue_streams::consume_queue(ctx, rng).await,
    }
}

/// One case: the request, then what must hold after it.
async fn run_case(ctx: &Arc<Ctx>, seed: u64, index: u64) -> (Rpc, Checked) {
    let mut rng = case_rng(seed, index);
    let rpc = choose(&mut rng);
    let checked = async {
        let after = run_rpc(ctx, rpc, &mut rng).await?;
        if let Some((topic, partition)) = &after.pool {
            data::write_if_exists(ctx, &mut rng, topic, *partition).await?;
        }
        if let Some((topic, partition)) = &after.partition {
            ctx.model
                .write(&ctx.cluster, &mut rng, topic, *partition)
                .await?;
        }
        if let Some(waiting) = after.waiting {
            match tokio::time::timeout(harness::CALL_MAX, waiting).await {
                Err(_) => return Err(defect("hang", "a long poll did not wake on new data")),
                Ok(joined) => joined.map_err(|e| defect("task failed", e.to_string()))??,
            }
        }
        if let Some(group) = &after.group {
            groups::commit_valid(ctx, group).await?;
        }
        let panics = harness::panics_seen(THREADS);
        if !panics.is_empty() {
            return Err(defect("panic", panics.join("\n")));
        }
        Ok(())
    }
    .await;
    (rpc, checked)
}

/// The run's shared progress.
struct Progress {
    seed: u64,
    cases: u64,
    keep_going: bool,
    started: Instant,
    next: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
    /// Held (read) by every case in flight, taken (write) by a full verification.
    quiet: tokio::sync::RwLock<()>,
    defects: std::sync::Mutex<Vec<String>>,
    counts: std::sync::Mutex<BTreeMap<Rpc, (u64, Duration)>>,
}

impl Progress {
    fn report(&self, what: String) {
        eprintln!("fuzz defect: {what}");
        self.defects.lock().unwrap().push(what);
        if !self.keep_going {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// The full check: every replica of the model partitions runs, and the model topics serve
/// every acknowledged record unchanged. Runs with no case in flight.
async fn verify(ctx: &Ctx, progress: &Progress, at: u64) {
    let _quiet = progress.quiet.write().await;
    let raft = internal::Internal::new(ctx);
    let verified = match internal::replicas_running(&raft).await {
        Ok(()) => ctx.model.verify(&ctx.cluster).await,
        Err(err) => Err(err),
    };
    if let Err(err) = verified {
        progress.report(format!(
            "verification after {at} cases: {}: {}",
            err.kind, err.detail
        ));
    }
}

async fn worker(ctx: Arc<Ctx>, progress: Arc<Progress>) {
    while !progress.stop.load(Ordering::SeqCst) {
        let index = progress.next.fetch_add(1, Ordering::SeqCst);
        if index >= progress.cases {
            break;
        }
        let case_started = Instant::now();
        let (rpc, checked) = {
            let _quiet = progress.quiet.read().await;
            run_case(&ctx, progress.seed, index).await
        };
        {
            let mut counts = progress.counts.lock().unwrap();
            let entry = counts.entry(rpc).or_default();
            entry.0 += 1;
            entry.1 += case_started.elapsed();
        }
        if let Err(err) = checked {
            progress.report(format!(
                "case {index} ({rpc:?}): {}: {}\n  replay: STAVE_SEED={} STAVE_FUZZ_CASES={}",
                err.kind,
                err.detail,
                progress.seed,
                index + 1
            ));
        }
        let done = progress.done.fetch_add(1, Ordering::SeqCst) + 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            let elapsed = progress.started.elapsed().as_secs_f64();
            eprintln!(
                "fuzz: {done} cases in {elapsed:.0} s ({:.0} cases/s)",
                done as f64 / elapsed.max(1e-9)
            );
        }
        if done.is_multiple_of(VERIFY_EVERY) {
            verify(&ctx, &progress, done).await;
        }
    }
}

/// The cluster with its model topics created and taking writes, and the model's producer.
async fn start(nodes: Vec<crate::support::Node>) -> Arc<Ctx> {
    for (topic, partitions) in [
        (model::PLAIN_TOPIC, model::PLAIN_PARTITIONS),
        (model::IDEMPOTENT_TOPIC, model::IDEMPOTENT_PARTITIONS),
    ] {
        crate::support::create_topic(&nodes[0].addr, topic, partitions, 3, &model::MODEL_CONFIGS)
            .await;
    }
    let cluster = Cluster::new(nodes);
    let producer = crate::support::retry(|| {
        let mut client = cluster.client(0);
        async move {
            let answer = client
                .init_producer_id(pb::InitProducerIdRequest {})
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            match crate::support::code(&answer.error) {
                pb::ErrorCode::None => Ok(answer),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let ctx = Arc::new(Ctx {
        cluster,
        model: Model::new(producer.producer_id, producer.producer_epoch as i16),
        producer_ids: std::sync::Mutex::new(HashSet::from([producer.producer_id])),
        queue_members: std::sync::Mutex::new(Vec::new()),
        queue_counts: Default::default(),
    });
    // Every model partition takes a write before the cases start (elections done).
    let mut rng = StdRng::seed_from_u64(0);
    for (topic, partition) in model::model_partitions() {
        ctx.model
            .write(&ctx.cluster, &mut rng, topic, partition)
            .await
            .unwrap_or_else(|err| panic!("{topic}/{partition} never took a write: {err:?}"));
    }
    ctx
}

/// Runs the public-API fuzz: `cases` cases from `seed`, then a last verification.
async fn fuzz_public_api(
    nodes: Vec<crate::support::Node>,
    seed: u64,
    cases: u64,
    workers: u64,
    keep_going: bool,
) {
    let ctx = start(nodes).await;
    let progress = Arc::new(Progress {
        seed,
        cases,
        keep_going,
        started: Instant::now(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        quiet: tokio::sync::RwLock::new(()),
        defects: Default::default(),
        counts: Default::default(),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(ctx.clone(), progress.clone())))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let done = progress.done.load(Ordering::SeqCst);
    verify(&ctx, &progress, done).await;
    let timings = progress.counts.lock().unwrap().clone();
    let counts: BTreeMap<Rpc, u64> = timings.iter().map(|(rpc, (n, _))| (*rpc, *n)).collect();
    let mean_ms: BTreeMap<Rpc, u128> = timings
        .iter()
        .map(|(rpc, (n, total))| (*rpc, total.as_millis() / u128::from((*n).max(1))))
        .collect();
    eprintln!("fuzz: mean ms per case by RPC: {mean_ms:?}");
    eprintln!(
        "fuzz: {done} cases in {:.1} s ({:.0} cases/s), seed {seed} (STAVE_SEED={seed}), {} acknowledged batches; per RPC: {counts:?}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64().max(1e-9),
        ctx.model.acked_batches.load(Ordering::Relaxed),
    );
    eprintln!("fuzz: queue groups: {}", ctx.queue_counts);
    let defects = progress.defects.lock().unwrap().clone();
    assert!(
        defects.is_empty(),
        "{} defect(s), seed {seed}:\n{}",
        defects.len(),
        defects.join("\n")
    );
    if done >= 500 {
        let missing: Vec<Rpc> = WEIGHTS
            .iter()
            .map(|(rpc, _)| *rpc)
            .filter(|rpc| !counts.contains_key(rpc))
            .collect();
        assert!(missing.is_empty(), "RPCs never fuzzed: {missing:?}");
    }
}

/// Scenario: a 3-node cluster takes `STAVE_FUZZ_CASES` (default 1,000) generated requests to
/// every RPC of the public API, most of them hostile, interleaved with valid writes to model
/// topics. Proves: no request panics a node, every answer is a typed one (never INTERNAL),
/// every partition a request aimed at keeps taking writes, every `__offsets` partition keeps
/// taking commits, and every acknowledged record is served back unchanged.
#[test]
fn public_api_survives_hostile_requests() {
    let seed = env_u64("STAVE_SEED", harness::SEED_DEFAULT);
    let cases = env_u64("STAVE_FUZZ_CASES", CASES_DEFAULT);
    let workers = env_u64("STAVE_FUZZ_WORKERS", WORKERS_DEFAULT).max(1);
    let keep_going = env_u64("STAVE_FUZZ_KEEP_GOING", 0) != 0;
    // `RUST_LOG` shows the nodes' logs (a replica that cannot open says why only there).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    eprintln!("fuzz: seed {seed}, {cases} cases, {workers} workers (STAVE_SEED={seed})");
    let nodes = harness::NodeRuntime::new(THREADS);
    let cluster = nodes.cluster(3);
    harness::driver_runtime().block_on(fuzz_public_api(cluster, seed, cases, workers, keep_going));
}

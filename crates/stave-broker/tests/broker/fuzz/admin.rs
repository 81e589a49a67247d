//! Cases of metadata and topic admin: Metadata, DescribeTopics, InitProducerId, CreateTopics,
//! DeleteTopics, AlterTopicConfig. Topics are created only from a small pool (and with at
//! most three partitions), so the cluster's load stays bounded however long the run; model
//! topics are never deleted, and their configs only altered in ways that keep every record
//! (a wrong value, which must be refused, or a harmless one).

use rand::Rng;
use rand::rngs::StdRng;
use stave_proto::v1 as pb;

use super::harness::{Checked, Defect, answer, defect, typed};
use super::model::{IDEMPOTENT_TOPIC, PLAIN_PARTITIONS, PLAIN_TOPIC, is_model_topic};
use super::names::{POOL_TOPICS, config_entry, edge_u32, hostile_string, pick};
use super::{After, Ctx};

/// The most partitions a topic may have (`stave_raft::group::MAX_PARTITIONS`).
const MAX_PARTITIONS: u32 = 1 << 20;

/// Whether a user may create a topic named `name` (DESIGN, `topic_name.rs`): 1 to 249
/// characters of `[A-Za-z0-9._-]`, not `.` or `..`, not starting with `__`.
fn creatable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name != "."
        && name != ".."
        && !name.starts_with("__")
}

/// A list of names to ask about: empty (every topic), model and pool names, hostile ones,
/// sometimes many.
fn names(rng: &mut StdRng) -> Vec<String> {
    let count = match rng.random_range(0..10) {
        0 => 0,
        1 => 300,
        _ => rng.random_range(1..5),
    };
    (0..count)
        .map(|_| match rng.random_range(0..4) {
            0 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC, "__offsets"]).to_string(),
            1 => pick(rng, &POOL_TOPICS).to_string(),
            _ => hostile_string(rng),
        })
        .collect()
}

pub async fn metadata(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let topics = names(rng);
    let request = pb::MetadataRequest {
        topics: topics.clone(),
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .metadata(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    if !topics.is_empty() && response.topics.len() != topics.len() {
        return Err(defect(
            "wrong metadata answer",
            format!(
                "asked {} topics, got {}",
                topics.len(),
                response.topics.len()
            ),
        ));
    }
    for topic in &response.topics {
        let code = typed(&topic.error)?;
        if topic.name == PLAIN_TOPIC
            && (code != pb::ErrorCode::None || topic.partitions.len() != PLAIN_PARTITIONS as usize)
        {
            return Err(defect("model topic metadata lost", format!("{topic:?}")));
        }
        if !topics.is_empty()
            && !creatable(&topic.name)
            && topic.name != "__offsets"
            && code == pb::ErrorCode::None
        {
            return Err(defect(
                "metadata of a topic that cannot exist",
                format!("{topic:?}"),
            ));
        }
    }
    if response.nodes.len() != ctx.cluster.len() {
        return Err(defect(
            "node metadata lost",
            format!("{:?}", response.nodes),
        ));
    }
    Ok(After::nothing())
}

pub async fn describe_topics(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let asked = names(rng);
    let request = pb::DescribeTopicsRequest {
        names: asked.clone(),
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .describe_topics(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    if !asked.is_empty() && response.topics.len() != asked.len() {
        return Err(defect(
            "wrong describe answer",
            format!("asked {}, got {}", asked.len(), response.topics.len()),
        ));
    }
    for topic in &response.topics {
        typed(&topic.error)?;
    }
    Ok(After::nothing())
}

pub async fn init_producer_id(ctx: &Ctx, _rng: &mut StdRng) -> Result<After, Defect> {
    let request = pb::InitProducerIdRequest {};
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .init_producer_id(request),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    if typed(&response.error)? == pb::ErrorCode::None {
        let fresh = ctx
            .producer_ids
            .lock()
            .unwrap()
            .insert(response.producer_id);
        if response.producer_id < 0 || response.producer_epoch != 0 || !fresh {
            return Err(defect(
                "bad producer id",
                format!("{response:?} (fresh: {fresh})"),
            ));
        }
    }
    Ok(After::nothing())
}

/// A topic spec: a pool or hostile name, partition and replica counts at the edges (but at
/// most three partitions for a name that could be created), hostile configs.
fn topic_spec(rng: &mut StdRng) -> pb::TopicSpec {
    let name = match rng.random_range(0..10) {
        0..=4 => pick(rng, &POOL_TOPICS).to_string(),
        5 => pick(rng, &[PLAIN_TOPIC, "__offsets", "__new"]).to_string(),
        _ => hostile_string(rng),
    };
    let partitions = if creatable(&name) {
        pick(rng, &[0, 1, 2, 3, MAX_PARTITIONS + 1, u32::MAX])
    } else {
        edge_u32(rng)
    };
    let mut configs: Vec<pb::ConfigEntry> = (0..rng.random_range(0..3))
        .map(|_| {
            let (key, value) = config_entry(rng);
            pb::ConfigEntry { key, value }
        })
        .collect();
    if rng.random_bool(0.5) {
        configs.push(pb::ConfigEntry {
            key: "flush".into(),
            value: "never".into(),
        });
    }
    pb::TopicSpec {
        name,
        partitions,
        replication_factor: pick(rng, &[0, 1, 2, 3, 4, u32::MAX]),
        configs,
    }
}

pub async fn create_topics(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let count = pick(rng, &[0, 1, 1, 2, 3]);
    let topics: Vec<pb::TopicSpec> = (0..count).map(|_| topic_spec(rng)).collect();
    let request = pb::CreateTopicsRequest {
        topics: topics.clone(),
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .create_topics(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    if response.results.len() != topics.len() {
        return Err(defect(
            "wrong create answer",
            format!("{} specs, {} results", topics.len(), response.results.len()),
        ));
    }
    for (spec, result) in topics.iter().zip(&response.results) {
        let code = typed(&result.error)?;
        let refused = matches!(
            code,
            pb::ErrorCode::InvalidTopicName | pb::ErrorCode::ReservedTopicName
        );
        let ok = match () {
            _ if result.name != spec.name => false,
            _ if !creatable(&spec.name) => refused,
            _ if is_model_topic(&spec.name) => code != pb::ErrorCode::None,
            _ if spec.partitions > MAX_PARTITIONS || spec.replication_factor > 3 => {
                code != pb::ErrorCode::None
            }
            _ => !refused,
        };
        if !ok {
            return Err(defect(
                "wrong create answer",
                format!(
                    "{} partitions {} rf {} {:?}: {code:?} {:?}",
                    spec.name.escape_debug(),
                    spec.partitions,
                    spec.replication_factor,
                    spec.configs,
                    result.error
                ),
            ));
        }
    }
    Ok(After::nothing())
}

pub async fn delete_topics(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let names: Vec<String> = names(rng)
        .into_iter()
        .filter(|name| !is_model_topic(name))
        .collect();
    let request = pb::DeleteTopicsRequest {
        names: names.clone(),
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .delete_topics(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    if response.results.len() != names.len() {
        return Err(defect(
            "wrong delete answer",
            format!("{} names, {} results", names.len(), response.results.len()),
        ));
    }
    for result in &response.results {
        let code = typed(&result.error)?;
        if result.name.starts_with("__") && code == pb::ErrorCode::None {
            return Err(defect("an internal topic was deleted", result.name.clone()));
        }
    }
    Ok(After::nothing())
}

/// Whether setting `key` to `value` on a model topic keeps every record and every valid
/// write possible: retention stays off, the batch limit stays at 1 MiB or more. Anything
/// else is kept only if it is invalid (and so refused).
fn harmless_to_model(key: &str, value: &str) -> bool {
    match key {
        "retention.ms" | "retention.bytes" => {
            value == "-1" || value.parse::<i64>().map_or(!value.is_empty(), |v| v < -1)
        }
        "max.message.bytes" => {
            !value.is_empty()
                && value
                    .parse::<u64>()
                    .map_or(true, |v| v == 0 || v >= 1 << 20)
        }
        _ => true,
    }
}

pub async fn alter_topic_config(ctx: &Ctx, rng: &mut StdRng) -> Result<After, Defect> {
    let name = match rng.random_range(0..10) {
        0..=3 => pick(rng, &[PLAIN_TOPIC, IDEMPOTENT_TOPIC]).to_string(),
        4..=7 => pick(rng, &POOL_TOPICS).to_string(),
        8 => "__offsets".to_string(),
        _ => hostile_string(rng),
    };
    let mut set: Vec<pb::ConfigEntry> = Vec::new();
    for _ in 0..rng.random_range(0..4) {
        let (key, value) = config_entry(rng);
        if is_model_topic(&name) && !harmless_to_model(&key, &value) {
            continue;
        }
        set.push(pb::ConfigEntry { key, value });
    }
    let request = pb::AlterTopicConfigRequest {
        name: name.clone(),
        set: set.clone(),
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .alter_topic_config(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    let code = typed(&response.error)?;
    if name.starts_with("__") && code == pb::ErrorCode::None {
        return Err(defect(
            "an internal topic's config was altered",
            format!("{set:?}"),
        ));
    }
    check_model_configs(ctx, &name).await
}

/// After an alter of a model topic: its configs still keep every record.
async fn check_model_configs(ctx: &Ctx, name: &str) -> Result<After, Defect> {
    if !is_model_topic(name) {
        return Ok(After::nothing());
    }
    let request = pb::DescribeTopicsRequest {
        names: vec![name.to_string()],
    };
    let Some(response) = answer(
        &request,
        ctx.cluster
            .client(ctx.cluster.any())
            .describe_topics(request.clone()),
    )
    .await?
    else {
        return Ok(After::nothing());
    };
    let configs = response
        .topics
        .first()
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let value = |key: &str| {
        configs
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.clone())
    };
    let kept: Checked = match (value("retention.ms"), value("retention.bytes")) {
        (Some(ms), Some(bytes)) if ms == "-1" && bytes == "-1" => Ok(()),
        other => Err(defect(
            "an alter turned a model topic's retention on",
            format!("{name}: retention.ms, retention.bytes = {other:?}"),
        )),
    };
    kept?;
    Ok(After::touching_partition(name, last_partition(name)))
}

/// The model topic's partition an alter case checks still takes writes.
fn last_partition(name: &str) -> u32 {
    if name == PLAIN_TOPIC {
        PLAIN_PARTITIONS - 1
    } else {
        0
    }
}

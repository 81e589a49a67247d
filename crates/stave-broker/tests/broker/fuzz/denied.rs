//! Every RPC of `stave.v1.Stave` on a 3-node cluster started with `--auth required`, from
//! the callers it must turn away: anonymous (each call refused UNAUTHENTICATED) and a user
//! with no ACL entry (each refused PERMISSION_DENIED, or INVALID_ARGUMENT when malformed, or
//! answered with a listing that shows nothing; InitProducerId, which hands out a number and
//! touches nothing, is allowed).
//! Requests carry hostile names (see `names`) or the names of real topics and groups, and
//! streams carry a request after their first. After the cases nothing changed: the same
//! topics, users, ACLs, committed offsets and high watermarks, and no node panicked.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stave_broker::auth::AuthMode;
use stave_client::Credentials;
use stave_proto::v1 as pb;
use stave_proto::v1::stave_client::StaveClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::harness::{self, env_u64};
use super::names::{edge_u32, edge_u64, hostile_string, pattern, pick};

type Api = StaveClient<InterceptedService<Channel, Credentials>>;

/// Cases per caller unless `STAVE_FUZZ_DENIED_CASES` says otherwise.
const CASES_DEFAULT: u64 = 300;
/// The thread-name prefix of the nodes' runtime.
const THREADS: &str = "fuzz-denied-node";
/// A topic and a group that exist, so some requests aim at something real.
const TOPIC: &str = "v1.denied.real";
const GROUP: &str = "denied-real";
/// How many RPCs the public service has (`call` numbers them 0 to 27).
const RPCS: u32 = 28;

fn api(addr: &str, credentials: Credentials) -> Api {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    StaveClient::with_interceptor(channel, credentials)
        .max_decoding_message_size(32 << 20)
        .max_encoding_message_size(32 << 20)
}

fn name(rng: &mut StdRng) -> String {
    if rng.random_bool(0.4) {
        pick(rng, &[TOPIC, GROUP, "v1.#", "*", "cluster"]).to_string()
    } else {
        hostile_string(rng)
    }
}

/// What an answer showed, when a call was served.
#[derive(Debug)]
enum Served {
    /// A listing with nothing in it, or a refusal typed in the answer.
    Nothing,
    /// Something else: a defect unless the RPC allows it.
    Something(String),
}

fn nothing_if(empty: bool, answer: impl std::fmt::Debug) -> Served {
    if empty {
        Served::Nothing
    } else {
        Served::Something(harness::shown(&answer))
    }
}

/// A stream's first answer: a refusal (status), or what it showed.
async fn first<T: std::fmt::Debug>(
    answer: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
    refused: impl Fn(&T) -> bool,
) -> Result<Served, tonic::Status> {
    let mut stream = answer?.into_inner();
    match tokio::time::timeout(harness::CALL_MAX, stream.message()).await {
        Ok(Ok(Some(message))) => Ok(nothing_if(refused(&message), message)),
        Ok(Ok(None)) => Ok(Served::Nothing),
        Ok(Err(status)) => Err(status),
        Err(_) => Ok(Served::Something("a stream that hangs".into())),
    }
}

/// One call of RPC `rpc` (0 to [`RPCS`] - 1) with generated fields.
async fn call(api: &Api, rpc: u32, rng: &mut StdRng) -> Result<Served, tonic::Status> {
    let mut api = api.clone();
    let (topic, group) = (name(rng), name(rng));
    let wanted = if rng.random_bool(0.5) {
        topic.clone()
    } else {
        pattern(rng)
    };
    let record = pb::PublishRecord {
        topic: topic.clone(),
        value: vec![7; rng.random_range(0..64)].into(),
        ..Default::default()
    };
    let publish = pb::PublishRequest {
        records: vec![record],
        sequence: edge_u64(rng),
    };
    let produce = pb::ProduceRequest {
        sequence: 0,
        topic: topic.clone(),
        partition: edge_u32(rng),
        batch: vec![0u8; rng.random_range(0..128)].into(),
    };
    Ok(match rpc {
        0 => nothing_if(false, api.publish(publish).await?),
        1 => {
            first(
                api.publish_stream(tokio_stream::iter([publish.clone(), publish]))
                    .await,
                |_| false,
            )
            .await?
        }
        2 => {
            let subscribe = pb::Subscribe {
                topics: vec![wanted.clone()],
                group: pick(rng, &[String::new(), group.clone()]),
                ..Default::default()
            };
            let requests = [
                pb::ConsumeRequest {
                    request: Some(pb::consume_request::Request::Subscribe(subscribe)),
                },
                pb::ConsumeRequest {
                    request: Some(pb::consume_request::Request::Credit(pb::Credit {
                        records: 10,
                        bytes: 0,
                    })),
                },
            ];
            let refused = |m: &pb::ConsumeResponse| {
                matches!(m.response, Some(pb::consume_response::Response::Error(_)))
            };
            first(api.consume(tokio_stream::iter(requests)).await, refused).await?
        }
        3 => nothing_if(false, api.produce(produce).await?),
        4 => {
            first(
                api.produce_stream(tokio_stream::iter([produce])).await,
                |_| false,
            )
            .await?
        }
        5 => {
            let request = pb::FetchRequest {
                topic,
                partition: edge_u32(rng),
                offset: edge_u64(rng),
                max_bytes: 1 << 20,
                ..Default::default()
            };
            nothing_if(false, api.fetch(request).await?)
        }
        6 => {
            let request = pb::ListOffsetsRequest {
                topic,
                partition: edge_u32(rng),
                spec: Some(pb::list_offsets_request::Spec::Latest(true)),
            };
            nothing_if(false, api.list_offsets(request).await?)
        }
        7 => {
            let topics = pick(rng, &[vec![], vec![topic]]);
            let answer = api
                .metadata(pb::MetadataRequest { topics })
                .await?
                .into_inner();
            nothing_if(answer.topics.is_empty(), answer)
        }
        8 => {
            let answer = api
                .init_producer_id(pb::InitProducerIdRequest::default())
                .await?;
            let _ = answer;
            Served::Nothing
        }
        9 => {
            let spec = pb::TopicSpec {
                name: topic,
                partitions: 1,
                ..Default::default()
            };
            let request = pb::CreateTopicsRequest { topics: vec![spec] };
            nothing_if(false, api.create_topics(request).await?)
        }
        10 => nothing_if(
            false,
            api.delete_topics(pb::DeleteTopicsRequest { names: vec![topic] })
                .await?,
        ),
        11 => {
            let names = pick(rng, &[vec![], vec![topic]]);
            let answer = api
                .describe_topics(pb::DescribeTopicsRequest { names })
                .await?
                .into_inner();
            nothing_if(answer.topics.is_empty(), answer)
        }
        12 => {
            let request = pb::AlterTopicConfigRequest {
                name: topic,
                set: vec![pb::ConfigEntry {
                    key: "retention.ms".into(),
                    value: "1".into(),
                }],
            };
            nothing_if(false, api.alter_topic_config(request).await?)
        }
        13 => nothing_if(
            false,
            api.find_coordinator(pb::FindCoordinatorRequest { group })
                .await?,
        ),
        14 => {
            let request = pb::CommitOffsetsRequest {
                group,
                offsets: vec![pb::OffsetCommit {
                    topic,
                    partition: 0,
                    offset: edge_u64(rng),
                    ..Default::default()
                }],
                ..Default::default()
            };
            nothing_if(false, api.commit_offsets(request).await?)
        }
        15 => nothing_if(
            false,
            api.fetch_offsets(pb::FetchOffsetsRequest { group }).await?,
        ),
        16 => {
            let request = pb::GroupHeartbeatRequest {
                group,
                subscription: vec![wanted],
                leave: rng.random_bool(0.2),
                ..Default::default()
            };
            nothing_if(false, api.group_heartbeat(request).await?)
        }
        17 => nothing_if(
            false,
            api.describe_group(pb::DescribeGroupRequest { group })
                .await?,
        ),
        18 => {
            let answer = api
                .list_groups(pb::ListGroupsRequest {})
                .await?
                .into_inner();
            nothing_if(answer.groups.is_empty(), answer)
        }
        19 => {
            let request = pb::ResetOffsetsRequest {
                group,
                topic,
                to: Some(pb::reset_offsets_request::To::Earliest(true)),
                ..Default::default()
            };
            nothing_if(false, api.reset_offsets(request).await?)
        }
        20 => {
            let request = pb::QueueFetchRequest {
                group,
                topics: vec![wanted],
                max_records: 10,
                ..Default::default()
            };
            nothing_if(false, api.queue_fetch(request).await?)
        }
        21 => {
            let request = pb::QueueSettleRequest {
                group,
                member_id: hostile_string(rng),
                settlements: vec![],
            };
            nothing_if(false, api.queue_settle(request).await?)
        }
        22 => nothing_if(
            false,
            api.create_user(pb::CreateUserRequest { name: topic })
                .await?,
        ),
        23 => nothing_if(
            false,
            api.delete_user(pb::DeleteUserRequest {
                name: "admin".into(),
            })
            .await?,
        ),
        24 => nothing_if(false, api.list_users(pb::ListUsersRequest {}).await?),
        25 | 26 => {
            let entry = pb::AclEntry {
                principal: pick(rng, &["nobody", "*"]).into(),
                resource: pick(rng, &["cluster".to_string(), format!("topic:{topic}")]),
                operation: "admin".into(),
            };
            let request = pb::AclRequest { entry: Some(entry) };
            if rpc == 25 {
                nothing_if(false, api.add_acl(request).await?)
            } else {
                nothing_if(false, api.remove_acl(request).await?)
            }
        }
        _ => nothing_if(false, api.list_acls(pb::ListAclsRequest::default()).await?),
    })
}

/// What must not change: topics, users, ACLs, the real group's offsets, the real topic's
/// high watermark.
async fn state(admin: &Api) -> (BTreeSet<String>, Vec<String>, String, String, u64) {
    let mut admin = admin.clone();
    let topics = admin
        .metadata(pb::MetadataRequest::default())
        .await
        .unwrap();
    let topics = topics
        .into_inner()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    let users = admin
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .names;
    let acls = admin
        .list_acls(pb::ListAclsRequest::default())
        .await
        .unwrap();
    let offsets = admin
        .fetch_offsets(pb::FetchOffsetsRequest {
            group: GROUP.into(),
        })
        .await
        .unwrap();
    let latest = pb::ListOffsetsRequest {
        topic: TOPIC.into(),
        partition: 0,
        spec: Some(pb::list_offsets_request::Spec::Latest(true)),
    };
    let end = admin
        .list_offsets(latest)
        .await
        .unwrap()
        .into_inner()
        .offset;
    (
        topics,
        users,
        format!("{:?}", acls.into_inner().entries),
        format!("{:?}", offsets.into_inner().offsets),
        end,
    )
}

/// Runs `cases` calls from `caller`; a list of defects.
async fn run(caller: &Api, anonymous: bool, seed: u64, cases: u64) -> Vec<String> {
    let mut defects = Vec::new();
    for index in 0..cases {
        let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let rpc = rng.random_range(0..RPCS);
        let answer = tokio::time::timeout(harness::CALL_MAX, call(caller, rpc, &mut rng)).await;
        let expected = if anonymous {
            Code::Unauthenticated
        } else {
            Code::PermissionDenied
        };
        let defect = match answer {
            Err(_) => Some("hang".to_string()),
            Ok(Err(status)) if status.code() == expected => None,
            // A malformed request may be refused for that before anyone is asked about it.
            Ok(Err(status)) if !anonymous && status.code() == Code::InvalidArgument => None,
            Ok(Err(status)) => Some(format!("{:?}: {}", status.code(), status.message())),
            Ok(Ok(Served::Nothing)) if !anonymous => None,
            Ok(Ok(Served::Nothing)) => Some("served (nothing shown)".to_string()),
            Ok(Ok(Served::Something(what))) => Some(format!("served: {what}")),
        };
        if let Some(defect) = defect {
            let who = if anonymous { "anonymous" } else { "nobody" };
            defects.push(format!("case {index} (rpc {rpc}, {who}): {defect}"));
        }
    }
    defects
}

/// Scenario: `STAVE_FUZZ_DENIED_CASES` (default 300) calls, spread over every RPC, from an
/// anonymous client and from a user without ACLs, to a 3-node cluster with auth required.
/// Proves: each is refused with its typed status (or shows nothing), no node panics, and
/// nothing changed.
#[test]
fn every_rpc_refuses_the_anonymous_and_the_unauthorised() {
    let seed = env_u64("STAVE_SEED", harness::SEED_DEFAULT);
    let cases = env_u64("STAVE_FUZZ_DENIED_CASES", CASES_DEFAULT);
    let nodes = harness::NodeRuntime::new(THREADS);
    let cluster = nodes.cluster_with(3, |config| config.auth = AuthMode::Required);
    harness::driver_runtime().block_on(async move {
        let dirs: Vec<_> = cluster
            .iter()
            .map(|n| n.dir().join("bootstrap-admin.token"))
            .collect();
        let token = crate::support::retry(|| {
            let found = dirs
                .iter()
                .find_map(|file| std::fs::read_to_string(file).ok());
            async move { found.ok_or_else(|| "no bootstrap token yet".to_string()) }
        })
        .await;
        let addr = cluster[0].addr.clone();
        let admin = api(&addr, Credentials::token(&token).unwrap());
        crate::support::retry(|| {
            let mut admin = admin.clone();
            async move {
                let spec = pb::TopicSpec {
                    name: TOPIC.into(),
                    partitions: 1,
                    ..Default::default()
                };
                let answer = admin
                    .create_topics(pb::CreateTopicsRequest { topics: vec![spec] })
                    .await
                    .map_err(|s| s.to_string())?;
                match crate::support::code(&answer.into_inner().results[0].error) {
                    pb::ErrorCode::None | pb::ErrorCode::TopicExists => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        let created = admin
            .clone()
            .create_user(pb::CreateUserRequest {
                name: "nobody".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let before = state(&admin).await;
        let mut defects = Vec::new();
        for (index, node) in cluster.iter().enumerate() {
            let anonymous = api(&node.addr, Credentials::none());
            let nobody = api(&node.addr, Credentials::token(&created.token).unwrap());
            let part = cases / 3 + u64::from(index == 0) * (cases % 3);
            defects.extend(run(&anonymous, true, seed + index as u64, part).await);
            defects.extend(run(&nobody, false, seed + index as u64, part).await);
        }
        let panics = harness::panics_seen(THREADS);
        assert!(panics.is_empty(), "a node panicked: {panics:?}");
        assert!(defects.is_empty(), "seed {seed}:\n{}", defects.join("\n"));
        assert_eq!(
            state(&admin).await,
            before,
            "a refused call changed something"
        );
        drop(cluster);
    });
}

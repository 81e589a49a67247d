//! `stave-client`: the Rust client for Stave.
//!
//! - [`Client`] holds connections to the nodes and the cluster's metadata, and routes each
//!   partition's requests to its leader (following NOT_LEADER hints and refreshing metadata
//!   after leader changes and lost connections).
//! - [`Producer`] batches records per partition and pipelines them to the leaders;
//!   idempotent, so retries never write a record twice.
//! - [`Consumer`] reads explicitly assigned partitions with a fetch running ahead, or joins
//!   a consumer group ([`Consumer::subscribe`]) that assigns them and keeps its offsets.
//! - [`Admin`] creates, deletes, describes and configures topics, reads cluster state, and
//!   lists, describes and resets consumer groups.
//! - [`TlsConfig`] ([`ClientConfig::tls`]): TLS to the nodes, checked when it is made.
//!
//! ```no_run
//! use stave_client::{Client, ClientConfig, ConsumerConfig, NewTopic, ProducerConfig,
//!     ProducerRecord, StartPosition};
//!
//! # async fn example() -> Result<(), stave_client::ClientError> {
//! let client = Client::connect(ClientConfig::new("127.0.0.1:7070")?).await?;
//! client.admin().create_topic(NewTopic::new("v1.user.signedup", 3)).await?;
//!
//! let producer = client.producer(ProducerConfig::default()).await?;
//! let written = producer
//!     .send(ProducerRecord::new("v1.user.signedup", "ada").key("user-1"))
//!     .await?;
//! println!("partition {} offset {}", written.partition, written.offset);
//! producer.close().await;
//!
//! let mut consumer = client.consumer(ConsumerConfig::default());
//! consumer.assign_topic("v1.user.signedup", StartPosition::Earliest).await?;
//! let record = consumer.next().await?;
//! assert_eq!(record.value.as_deref(), Some(&b"ada"[..]));
//! # Ok(())
//! # }
//! ```

mod admin;
mod admin_groups;
mod admin_security;
mod client;
mod config;
mod consumer;
mod coordinator;
mod credentials;
mod error;
mod metadata;
mod partitioner;
mod producer;
mod queue;
mod record;
mod suspects;
#[cfg(test)]
mod test_support;
pub mod tls;

pub use admin::{Admin, NewTopic, TopicDescription};
pub use admin_groups::{
    GroupDescription, GroupListing, GroupPartitionLag, GroupSummary, MemberDescription,
    QueueGroupDescription, QueueMemberState, QueuePartitionState, ResetTo,
};
pub use admin_security::AclEntry;
pub use client::{Client, LocalNode};
pub use config::{
    ClientConfig, ConsumerConfig, DEFAULT_PORT, IN_FLIGHT_LIMIT, OffsetReset, ProducerConfig,
    StartPosition, parse_bootstrap,
};
pub use consumer::{AssignmentChange, Consumer};
pub use credentials::Credentials;
pub use error::{ClientError, TlsProblem, display_chain};
pub use metadata::{ClusterMetadata, PartitionInfo, ReplicaProblem, TopicInfo};
pub use partitioner::{murmur2, partition_for_key, to_positive};
pub use producer::{DeliveryFuture, Producer};
pub use queue::{
    QueueConfig, QueueConsumer, QueueOrdering, QueuedRecord, Settle, Settlement, Settler,
};
pub use record::{ConsumerRecord, MESSAGE_ID_HEADER, ProducerRecord, RecordMetadata, message_id};
pub use stave_proto::v1::ErrorCode;
pub use tls::TlsConfig;

//! The edge's side of authorization: what each request touches, asked of
//! [`crate::auth::AuthState`], and the user and ACL RPCs.

use std::collections::BTreeSet;

use stave_proto::v1 as pb;
use stave_raft::controller::AclOperation;
use tonic::{Response, Status};

use super::convert;
use crate::auth::users::{acl_text, parse_acl};
use crate::auth::{Principal, Resource};
use crate::broker::Broker;
use crate::consumer_group::pattern::Pattern;

impl Broker {
    /// PERMISSION_DENIED (or UNAUTHENTICATED for a deleted user) unless `principal` may do
    /// `operation` on `resource`.
    pub(super) fn authorize(
        &self,
        principal: &Principal,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> Result<(), Status> {
        self.auth.authorize(principal, operation, resource)
    }

    /// `operation` on every topic of `topics`.
    pub(super) fn authorize_topics<'a>(
        &self,
        principal: &Principal,
        operation: AclOperation,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Status> {
        if principal.name().is_none() {
            return Ok(()); // ACLs do not apply to it.
        }
        let distinct: BTreeSet<&str> = topics.into_iter().collect();
        for topic in distinct {
            self.authorize(principal, operation, Resource::Topic(topic))?;
        }
        Ok(())
    }

    /// What a subscription names, as the principal may read it: consume on every plain
    /// topic name (refused otherwise), and each pattern replaced by the topics it matches
    /// now that the principal may consume (a pattern never reaches a topic it may not). For
    /// a principal ACLs do not apply to, the subscription as it is.
    pub(super) fn readable_subscription(
        &self,
        principal: &Principal,
        subscription: &[String],
    ) -> Result<Vec<String>, Status> {
        if principal.name().is_none() {
            return Ok(subscription.to_vec());
        }
        let metadata = self.node().controller().metadata();
        let mut readable = Vec::new();
        for wanted in subscription {
            let pattern = Pattern::parse(wanted).map_err(Status::invalid_argument)?;
            if pattern.is_literal() {
                self.authorize(principal, AclOperation::Consume, Resource::Topic(wanted))?;
                readable.push(wanted.clone());
                continue;
            }
            readable.extend(
                metadata
                    .topics()
                    .keys()
                    .filter(|topic| pattern.matches(topic))
                    .filter(|topic| {
                        self.auth
                            .allows(principal, AclOperation::Consume, Resource::Topic(topic))
                    })
                    .cloned(),
            );
        }
        readable.sort();
        readable.dedup();
        Ok(readable)
    }

    /// Consume on every topic `topics` names or matches now, for a queue group (whose
    /// members share one subscription, so a pattern cannot be narrowed per member).
    pub(super) fn authorize_queue_topics(
        &self,
        principal: &Principal,
        topics: &[String],
    ) -> Result<(), Status> {
        if principal.name().is_none() {
            return Ok(());
        }
        let metadata = self.node().controller().metadata();
        for wanted in topics {
            let pattern = Pattern::parse(wanted).map_err(Status::invalid_argument)?;
            if pattern.is_literal() {
                self.authorize(principal, AclOperation::Consume, Resource::Topic(wanted))?;
                continue;
            }
            for topic in metadata.topics().keys().filter(|t| pattern.matches(t)) {
                self.authorize(principal, AclOperation::Consume, Resource::Topic(topic))?;
            }
        }
        Ok(())
    }

    /// Whether `principal` may describe `topic` (for filtering listings).
    pub(super) fn may_describe_topic(&self, principal: &Principal, topic: &str) -> bool {
        self.auth
            .allows(principal, AclOperation::Describe, Resource::Topic(topic))
    }

    /// Whether `principal` may describe `group` (for filtering listings).
    pub(super) fn may_describe_group(&self, principal: &Principal, group: &str) -> bool {
        self.auth
            .allows(principal, AclOperation::Describe, Resource::Group(group))
    }
}

/// CreateUser, on the controller's leader.
pub(super) async fn create_user(
    broker: &Broker,
    message: pb::CreateUserRequest,
) -> Result<Response<pb::CreateUserResponse>, Status> {
    let response = match broker.create_user(&message.name).await {
        Ok(token) => pb::CreateUserResponse { error: None, token },
        Err(err) => pb::CreateUserResponse {
            error: Some(convert::error(&err)),
            token: String::new(),
        },
    };
    Ok(Response::new(response))
}

/// DeleteUser, on the controller's leader.
pub(super) async fn delete_user(
    broker: &Broker,
    message: pb::DeleteUserRequest,
) -> Result<Response<pb::DeleteUserResponse>, Status> {
    let outcome = broker.delete_user(&message.name).await;
    Ok(Response::new(pb::DeleteUserResponse {
        error: convert::outcome(outcome),
    }))
}

/// The users this node's metadata knows.
pub(super) fn list_users(broker: &Broker) -> pb::ListUsersResponse {
    let metadata = broker.node().controller().metadata();
    pb::ListUsersResponse {
        names: metadata.security().users().keys().cloned().collect(),
    }
}

/// AddAcl (`add`) or RemoveAcl, on the controller's leader.
pub(super) async fn change_acl(
    broker: &Broker,
    message: pb::AclRequest,
    add: bool,
) -> Result<Response<pb::AclResponse>, Status> {
    let entry = message.entry.unwrap_or_default();
    let outcome = match parse_acl(&entry.principal, &entry.resource, &entry.operation) {
        Ok(entry) => broker.change_acl(&entry, add).await,
        Err(why) => Err(crate::error::BrokerError::InvalidRequest(why)),
    };
    Ok(Response::new(pb::AclResponse {
        error: convert::outcome(outcome),
    }))
}

/// The ACL entries this node's metadata holds (only `principal`'s and `*`'s, if given).
pub(super) fn list_acls(broker: &Broker, principal: &str) -> pb::ListAclsResponse {
    let metadata = broker.node().controller().metadata();
    let entries = metadata
        .security()
        .acls()
        .iter()
        .filter(|entry| {
            principal.is_empty() || entry.principal == principal || entry.principal == "*"
        })
        .map(|entry| {
            let (principal, resource, operation) = acl_text(entry);
            pb::AclEntry {
                principal,
                resource,
                operation,
            }
        })
        .collect();
    pb::ListAclsResponse { entries }
}

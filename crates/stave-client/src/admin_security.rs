//! Users and ACLs through [`Admin`] (admin on the cluster; any node takes them, forwarding
//! to the controller). A create retried after a lost answer may find its own user: it is
//! reported as ALREADY_EXISTS then, since the token of the first attempt is lost anyway.

use stave_proto::v1 as proto;

use crate::admin::Admin;
use crate::error::ClientError;

/// One ACL entry: `principal` (a user, a certificate's common name, or `*`) may do
/// `operation` (produce, consume, describe, create, admin) on `resource`
/// (`topic:NAME-OR-PATTERN`, `group:NAME-OR-PATTERN` or `cluster`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    pub principal: String,
    pub resource: String,
    pub operation: String,
}

impl AclEntry {
    pub fn new(principal: &str, resource: &str, operation: &str) -> AclEntry {
        AclEntry {
            principal: principal.to_string(),
            resource: resource.to_string(),
            operation: operation.to_string(),
        }
    }

    fn to_proto(&self) -> proto::AclEntry {
        proto::AclEntry {
            principal: self.principal.clone(),
            resource: self.resource.clone(),
            operation: self.operation.clone(),
        }
    }
}

impl Admin {
    /// Creates user `name`; its token (shown once: only its hash is kept).
    pub async fn create_user(&self, name: &str) -> Result<String, ClientError> {
        let what = format!("create user {name:?}");
        let client = &self.client;
        client
            .call_any(&what, |addr, mut node| {
                let request = proto::CreateUserRequest {
                    name: name.to_string(),
                };
                async move {
                    let response = client.unary(&addr, node.create_user(request)).await?;
                    ClientError::check(response.error)?;
                    Ok(response.token)
                }
            })
            .await
    }

    /// Deletes user `name`: its token stops working at once, on every node.
    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        let what = format!("delete user {name:?}");
        let client = &self.client;
        client
            .call_any(&what, |addr, mut node| {
                let request = proto::DeleteUserRequest {
                    name: name.to_string(),
                };
                async move {
                    let response = client.unary(&addr, node.delete_user(request)).await?;
                    ClientError::check(response.error)
                }
            })
            .await
    }

    /// Every user's name, sorted.
    pub async fn list_users(&self) -> Result<Vec<String>, ClientError> {
        let client = &self.client;
        client
            .call_any("list users", |addr, mut node| async move {
                let response = client
                    .unary(&addr, node.list_users(proto::ListUsersRequest {}))
                    .await?;
                Ok(response.names)
            })
            .await
    }

    /// Adds `entry` (adding one that exists changes nothing).
    pub async fn add_acl(&self, entry: &AclEntry) -> Result<(), ClientError> {
        self.change_acl(entry, true).await
    }

    /// Removes `entry`: NOT_FOUND if there is no such entry.
    pub async fn remove_acl(&self, entry: &AclEntry) -> Result<(), ClientError> {
        self.change_acl(entry, false).await
    }

    async fn change_acl(&self, entry: &AclEntry, add: bool) -> Result<(), ClientError> {
        let what = if add { "add an ACL" } else { "remove an ACL" };
        let client = &self.client;
        client
            .call_any(what, |addr, mut node| {
                let request = proto::AclRequest {
                    entry: Some(entry.to_proto()),
                };
                async move {
                    let response = if add {
                        client.unary(&addr, node.add_acl(request)).await?
                    } else {
                        client.unary(&addr, node.remove_acl(request)).await?
                    };
                    ClientError::check(response.error)
                }
            })
            .await
    }

    /// The ACL entries (only `principal`'s and `*`'s, if given), sorted.
    pub async fn list_acls(&self, principal: Option<&str>) -> Result<Vec<AclEntry>, ClientError> {
        let client = &self.client;
        let mut entries = client
            .call_any("list ACLs", |addr, mut node| {
                let request = proto::ListAclsRequest {
                    principal: principal.unwrap_or_default().to_string(),
                };
                async move {
                    let response = client.unary(&addr, node.list_acls(request)).await?;
                    Ok(response.entries)
                }
            })
            .await?
            .into_iter()
            .map(|entry| AclEntry {
                principal: entry.principal,
                resource: entry.resource,
                operation: entry.operation,
            })
            .collect::<Vec<_>>();
        entries.sort();
        Ok(entries)
    }
}

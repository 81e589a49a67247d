//! Users and ACLs through the controller (the gRPC edge forwards these to the node that
//! leads it), and the bootstrap admin of a cluster started with `--auth required`.

use std::path::Path;
use std::time::Duration;

use rand::RngCore;
use stave_proto::internal::controller as cproto;
use stave_raft::controller::security::{acl_to_proto, valid_name};
use stave_raft::controller::{AclEntry, AclResource};

use super::acl::{operation_name, parse_operation};
use super::token_hash;
use crate::broker::Broker;
use crate::cluster_secret::write_private;
use crate::consumer_group::pattern::Pattern;
use crate::error::BrokerError;

/// The file in the data directory the bootstrap admin's token is written to.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-admin.token";
/// The bootstrap admin's name.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A new token: `stave_` and 64 hex digits (32 bytes from a generator the OS seeds).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("stave_{hex}")
}

/// An ACL entry from its text form: principal, `topic:P` / `group:P` / `cluster`, operation.
pub fn parse_acl(principal: &str, resource: &str, operation: &str) -> Result<AclEntry, String> {
    if principal != "*" && !valid_name(principal) {
        return Err(format!(
            "a principal is a user or certificate name (visible characters, no spaces) or `*`, \
             not {principal:?}"
        ));
    }
    let pattern = |text: &str| Pattern::parse(text).map(|p| p.as_str().to_string());
    let resource = match resource.split_once(':') {
        Some(("topic", text)) => AclResource::Topic(pattern(text)?),
        Some(("group", text)) => AclResource::Group(pattern(text)?),
        None if resource == "cluster" => AclResource::Cluster,
        _ => {
            return Err(format!(
                "a resource is `topic:NAME-OR-PATTERN`, `group:NAME-OR-PATTERN` or `cluster`, \
                 not {resource:?}"
            ));
        }
    };
    let operation = parse_operation(operation).ok_or_else(|| {
        format!("an operation is produce, consume, describe, create or admin, not {operation:?}")
    })?;
    Ok(AclEntry {
        principal: principal.to_string(),
        resource,
        operation,
    })
}

/// An ACL entry's text form: (principal, resource, operation).
pub fn acl_text(entry: &AclEntry) -> (String, String, String) {
    let resource = match &entry.resource {
        AclResource::Topic(pattern) => format!("topic:{pattern}"),
        AclResource::Group(pattern) => format!("group:{pattern}"),
        AclResource::Cluster => "cluster".to_string(),
    };
    (
        entry.principal.clone(),
        resource,
        operation_name(entry.operation).to_string(),
    )
}

fn command(kind: cproto::command::Command) -> cproto::Command {
    cproto::Command {
        command: Some(kind),
    }
}

/// A controller reply as the API's outcome.
fn outcome(reply: cproto::CommandReply) -> Result<bool, BrokerError> {
    use cproto::command_reply::Result as R;
    match reply.result {
        Some(R::Ok(changed)) => Ok(changed),
        Some(R::Error(error)) => Err(match cproto::ErrorCode::try_from(error.code) {
            Ok(cproto::ErrorCode::Exists) => BrokerError::AlreadyExists(error.message),
            Ok(cproto::ErrorCode::NotFound) => BrokerError::NotFound(error.message),
            _ => BrokerError::InvalidRequest(error.message),
        }),
        other => Err(BrokerError::Internal(format!(
            "unexpected controller reply {other:?}"
        ))),
    }
}

impl Broker {
    /// Creates user `name` (this node leads the controller); its token.
    pub(crate) async fn create_user(&self, name: &str) -> Result<String, BrokerError> {
        if !valid_name(name) || name == "*" {
            return Err(BrokerError::InvalidRequest(format!(
                "a user name is 1 to 512 visible characters without spaces (not `*`): {name:?}"
            )));
        }
        let token = new_token();
        let create = cproto::CreateUser {
            user: Some(cproto::User {
                name: name.to_string(),
                token_sha256: token_hash(&token).to_vec().into(),
            }),
            only_if_none: false,
            cluster_admin: false,
        };
        let kind = cproto::command::Command::CreateUser(create);
        outcome(self.command(command(kind)).await?)?;
        Ok(token)
    }

    /// Deletes user `name` (this node leads the controller).
    pub(crate) async fn delete_user(&self, name: &str) -> Result<(), BrokerError> {
        let kind = cproto::command::Command::DeleteUser(cproto::DeleteUser {
            name: name.to_string(),
        });
        outcome(self.command(command(kind)).await?).map(drop)
    }

    /// Adds (`add`) or removes an ACL entry (this node leads the controller).
    pub(crate) async fn change_acl(&self, entry: &AclEntry, add: bool) -> Result<(), BrokerError> {
        let entry = Some(acl_to_proto(entry));
        let kind = if add {
            cproto::command::Command::AddAcl(cproto::AddAcl { entry })
        } else {
            cproto::command::Command::RemoveAcl(cproto::RemoveAcl { entry })
        };
        outcome(self.command(command(kind)).await?).map(drop)
    }

    /// With `--auth required`: once the cluster has a controller leader, if it has no users,
    /// the leader creates `admin` (admin on the cluster) and writes its token to
    /// `DATA_DIR/bootstrap-admin.token` (0600). The token file is written before the command
    /// is proposed, so a crash between the two loses nothing; a node that finds users
    /// already stops.
    pub(crate) async fn bootstrap_admin(&self) {
        let path = self.config().data_dir.join(BOOTSTRAP_TOKEN_FILE);
        let mut metadata = self.node().controller().subscribe();
        loop {
            if !metadata.borrow_and_update().security().users().is_empty() || path.exists() {
                return;
            }
            if self.node().controller().leader() == Some(self.node().id())
                && self.node().controller().metadata().cluster_id().is_some()
            {
                match self.propose_bootstrap_admin(&path).await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(%err, "creating the bootstrap admin failed; retrying")
                    }
                }
            }
            // The metadata changes when the controller elects and commits; a leader change
            // alone shows in a second or so.
            let _ = tokio::time::timeout(Duration::from_secs(1), metadata.changed()).await;
        }
    }

    async fn propose_bootstrap_admin(&self, path: &Path) -> Result<(), BrokerError> {
        let token = new_token();
        let pending = path.with_extension("token.pending");
        write_private(&pending, &token).map_err(|err| io_error(&pending, &err))?;
        let create = cproto::CreateUser {
            user: Some(cproto::User {
                name: BOOTSTRAP_ADMIN.to_string(),
                token_sha256: token_hash(&token).to_vec().into(),
            }),
            only_if_none: true,
            cluster_admin: true,
        };
        let kind = cproto::command::Command::CreateUser(create);
        let created = outcome(self.command(command(kind)).await?)?;
        if created {
            std::fs::rename(&pending, path).map_err(|err| io_error(path, &err))?;
            tracing::warn!(
                path = %path.display(),
                "auth is required and the cluster had no users: created user `admin` (admin on \
                 the cluster); its token is in this file (give it with --token-file, then make \
                 your own users and delete the file)"
            );
        } else {
            let _ = std::fs::remove_file(&pending);
        }
        Ok(())
    }
}

fn io_error(path: &Path, err: &std::io::Error) -> BrokerError {
    BrokerError::Config {
        message: format!("cannot write {}: {err}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use stave_raft::controller::AclOperation;

    use super::*;

    #[test]
    fn acl_entries_parse_and_print_back() {
        let entry = parse_acl("svc", "topic:v1.user.*", "produce").unwrap();
        assert_eq!(entry.resource, AclResource::Topic("v1.user.*".into()));
        assert_eq!(entry.operation, AclOperation::Produce);
        let text = acl_text(&entry);
        assert_eq!(
            (text.0.as_str(), text.1.as_str(), text.2.as_str()),
            ("svc", "topic:v1.user.*", "produce")
        );
        assert_eq!(
            parse_acl("*", "cluster", "admin").unwrap().resource,
            AclResource::Cluster
        );
        assert!(parse_acl("svc", "topic:v1..x", "produce").is_err());
        assert!(parse_acl("svc", "queue:x", "produce").is_err());
        assert!(parse_acl("svc", "topic:x", "write").is_err());
        assert!(parse_acl("two words", "topic:x", "produce").is_err());
    }

    #[test]
    fn tokens_are_long_random_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), "stave_".len() + 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}

//! Users and ACLs in the cluster metadata ([`SecurityMetadata`]): replicated with the rest of
//! the metadata, so a user created or an ACL added on one node is enforced on every node and
//! survives a full restart. The controller stores them and checks their form; what they mean
//! (matching patterns, which operation implies which) is the broker's.
//!
//! Invariants: a user's name is 1 to [`NAME_BYTES_MAX`] visible characters, its token
//! stored only as a SHA-256; no two users share a token hash; ACL entries are unique (a set);
//! `generation` grows with every change to either.

use std::collections::{BTreeMap, BTreeSet};

use stave_proto::internal::controller as proto;
use stave_proto::internal::controller::ErrorCode;

/// The longest user name, principal or ACL pattern (bytes).
pub const NAME_BYTES_MAX: usize = 512;
/// The most users a cluster holds.
pub const USERS_MAX: usize = 10_000;
/// The most ACL entries a cluster holds.
pub const ACLS_MAX: usize = 100_000;

/// What an ACL entry is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclResource {
    /// Topics named by a name or a `*`/`#` pattern.
    Topic(String),
    /// Consumer and queue groups named by a name or a pattern.
    Group(String),
    /// The cluster itself: users, ACLs, every group and topic listing.
    Cluster,
}

/// What an ACL entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOperation {
    Produce,
    Consume,
    Describe,
    Create,
    Admin,
}

/// One permission: `principal` (`*`: anyone authenticated) may do `operation` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclEntry {
    pub principal: String,
    pub resource: AclResource,
    pub operation: AclOperation,
}

/// The cluster's users and ACLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityMetadata {
    /// User name → SHA-256 of its token.
    pub(super) users: BTreeMap<String, [u8; 32]>,
    pub(super) acls: BTreeSet<AclEntry>,
    pub(super) generation: u64,
}

impl SecurityMetadata {
    /// User name → SHA-256 of its token.
    pub fn users(&self) -> &BTreeMap<String, [u8; 32]> {
        &self.users
    }

    pub fn acls(&self) -> &BTreeSet<AclEntry> {
        &self.acls
    }

    /// Changes with every user or ACL change.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// A validated change to users or ACLs.
#[derive(Debug)]
pub(super) enum SecurityChange {
    CreateUser {
        name: String,
        hash: [u8; 32],
        /// Admin on the cluster for it, in the same change.
        cluster_admin: bool,
    },
    DeleteUser {
        name: String,
    },
    AddAcl(AclEntry),
    RemoveAcl(AclEntry),
}

fn rejection(code: ErrorCode, message: impl Into<String>) -> proto::CommandError {
    proto::CommandError {
        code: code as i32,
        message: message.into(),
    }
}

/// Whether `name` can be a user name or principal: 1 to [`NAME_BYTES_MAX`] visible
/// characters (no spaces, no control characters).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl SecurityMetadata {
    pub(super) fn validate_create_user(
        &self,
        create: proto::CreateUser,
    ) -> Result<Option<SecurityChange>, proto::CommandError> {
        let user = create
            .user
            .ok_or_else(|| rejection(ErrorCode::Invalid, "CreateUser without a user"))?;
        let (name, hash) = user_from_proto(user)?;
        if create.only_if_none && !self.users.is_empty() {
            return Ok(None);
        }
        if self.users.contains_key(&name) {
            let message = format!("user {name:?} exists");
            return Err(rejection(ErrorCode::Exists, message));
        }
        if self.users.values().any(|existing| *existing == hash) {
            return Err(rejection(ErrorCode::Exists, "that token is taken"));
        }
        if self.users.len() >= USERS_MAX {
            let message = format!("a cluster has at most {USERS_MAX} users");
            return Err(rejection(ErrorCode::Invalid, message));
        }
        Ok(Some(SecurityChange::CreateUser {
            name,
            hash,
            cluster_admin: create.cluster_admin,
        }))
    }

    pub(super) fn validate_delete_user(
        &self,
        delete: proto::DeleteUser,
    ) -> Result<SecurityChange, proto::CommandError> {
        if !self.users.contains_key(&delete.name) {
            let message = format!("no user {:?}", delete.name);
            return Err(rejection(ErrorCode::NotFound, message));
        }
        Ok(SecurityChange::DeleteUser { name: delete.name })
    }

    pub(super) fn validate_add_acl(
        &self,
        entry: Option<proto::AclEntry>,
    ) -> Result<SecurityChange, proto::CommandError> {
        let entry = acl_from_proto(entry)?;
        if self.acls.len() >= ACLS_MAX && !self.acls.contains(&entry) {
            let message = format!("a cluster has at most {ACLS_MAX} ACL entries");
            return Err(rejection(ErrorCode::Invalid, message));
        }
        Ok(SecurityChange::AddAcl(entry))
    }

    pub(super) fn validate_remove_acl(
        &self,
        entry: Option<proto::AclEntry>,
    ) -> Result<SecurityChange, proto::CommandError> {
        let entry = acl_from_proto(entry)?;
        if !self.acls.contains(&entry) {
            return Err(rejection(ErrorCode::NotFound, "no such ACL entry"));
        }
        Ok(SecurityChange::RemoveAcl(entry))
    }

    pub(super) fn commit(&mut self, change: SecurityChange) {
        match change {
            SecurityChange::CreateUser {
                name,
                hash,
                cluster_admin,
            } => {
                if cluster_admin {
                    self.acls.insert(AclEntry {
                        principal: name.clone(),
                        resource: AclResource::Cluster,
                        operation: AclOperation::Admin,
                    });
                }
                self.users.insert(name, hash);
            }
            SecurityChange::DeleteUser { name } => {
                self.users.remove(&name);
            }
            SecurityChange::AddAcl(entry) => {
                self.acls.insert(entry);
            }
            SecurityChange::RemoveAcl(entry) => {
                self.acls.remove(&entry);
            }
        }
        self.generation += 1;
    }

    /// As the snapshot's fields.
    pub(super) fn to_proto(&self) -> (Vec<proto::User>, Vec<proto::AclEntry>, u64) {
        let users = self
            .users
            .iter()
            .map(|(name, hash)| proto::User {
                name: name.clone(),
                token_sha256: hash.to_vec().into(),
            })
            .collect();
        let acls = self.acls.iter().map(acl_to_proto).collect();
        (users, acls, self.generation)
    }

    /// From the snapshot's fields, checked as commands would have been.
    pub(super) fn from_proto(
        users: Vec<proto::User>,
        acls: Vec<proto::AclEntry>,
        generation: u64,
    ) -> Result<SecurityMetadata, String> {
        let mut security = SecurityMetadata {
            generation,
            ..SecurityMetadata::default()
        };
        for user in users {
            let (name, hash) = user_from_proto(user).map_err(|err| err.message)?;
            if security.users.insert(name.clone(), hash).is_some() {
                return Err(format!("user {name:?} is listed twice"));
            }
        }
        for entry in acls {
            let entry = acl_from_proto(Some(entry)).map_err(|err| err.message)?;
            if !security.acls.insert(entry) {
                return Err("an ACL entry is listed twice".into());
            }
        }
        Ok(security)
    }
}

fn user_from_proto(user: proto::User) -> Result<(String, [u8; 32]), proto::CommandError> {
    if !valid_name(&user.name) {
        let message = format!(
            "a user name is 1 to {NAME_BYTES_MAX} visible characters without spaces: {:?}",
            user.name
        );
        return Err(rejection(ErrorCode::Invalid, message));
    }
    let hash: [u8; 32] = user.token_sha256.as_ref().try_into().map_err(|_| {
        rejection(
            ErrorCode::Invalid,
            "a user's token hash is 32 bytes (SHA-256)",
        )
    })?;
    Ok((user.name, hash))
}

fn acl_from_proto(entry: Option<proto::AclEntry>) -> Result<AclEntry, proto::CommandError> {
    use proto::AclOperation as Op;
    use proto::AclResourceKind as Kind;
    let invalid = |message: String| rejection(ErrorCode::Invalid, message);
    let entry = entry.ok_or_else(|| invalid("an ACL command without an entry".into()))?;
    if !valid_name(&entry.principal) {
        return Err(invalid(format!(
            "a principal is 1 to {NAME_BYTES_MAX} visible characters without spaces, or `*`: \
             {:?}",
            entry.principal
        )));
    }
    let pattern = || {
        if entry.pattern.is_empty() || entry.pattern.len() > NAME_BYTES_MAX {
            Err(invalid(format!(
                "a resource pattern is 1 to {NAME_BYTES_MAX} bytes"
            )))
        } else {
            Ok(entry.pattern.clone())
        }
    };
    let resource = match Kind::try_from(entry.kind) {
        Ok(Kind::Topic) => AclResource::Topic(pattern()?),
        Ok(Kind::Group) => AclResource::Group(pattern()?),
        Ok(Kind::Cluster) if entry.pattern.is_empty() => AclResource::Cluster,
        Ok(Kind::Cluster) => return Err(invalid("the cluster resource has no pattern".into())),
        _ => return Err(invalid(format!("unknown resource kind {}", entry.kind))),
    };
    let operation = match Op::try_from(entry.operation) {
        Ok(Op::Produce) => AclOperation::Produce,
        Ok(Op::Consume) => AclOperation::Consume,
        Ok(Op::Describe) => AclOperation::Describe,
        Ok(Op::Create) => AclOperation::Create,
        Ok(Op::Admin) => AclOperation::Admin,
        _ => return Err(invalid(format!("unknown operation {}", entry.operation))),
    };
    Ok(AclEntry {
        principal: entry.principal,
        resource,
        operation,
    })
}

/// `entry` as its proto form (for commands and snapshots).
pub fn acl_to_proto(entry: &AclEntry) -> proto::AclEntry {
    use proto::AclOperation as Op;
    use proto::AclResourceKind as Kind;
    let (kind, pattern) = match &entry.resource {
        AclResource::Topic(pattern) => (Kind::Topic, pattern.clone()),
        AclResource::Group(pattern) => (Kind::Group, pattern.clone()),
        AclResource::Cluster => (Kind::Cluster, String::new()),
    };
    let operation = match entry.operation {
        AclOperation::Produce => Op::Produce,
        AclOperation::Consume => Op::Consume,
        AclOperation::Describe => Op::Describe,
        AclOperation::Create => Op::Create,
        AclOperation::Admin => Op::Admin,
    };
    proto::AclEntry {
        principal: entry.principal.clone(),
        kind: kind as i32,
        pattern,
        operation: operation as i32,
    }
}

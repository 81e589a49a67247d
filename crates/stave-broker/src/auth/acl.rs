//! What the ACLs in the metadata allow: the table compiled from them once per security
//! generation ([`Compiled`]), and the one question it answers, [`Compiled::allows`].
//!
//! Rules, each a line of code below:
//! - An entry's principal is a name, or `*` for anyone authenticated.
//! - A resource pattern is a topic or group name, or a `*`/`#` pattern (the subscription
//!   syntax). A pattern that starts with a wildcard never matches a system (`_`) or internal
//!   (`__`) topic; one whose first word is `_dlq` or `_reply` does.
//! - `admin` on the cluster allows everything; `describe` on the cluster allows describing
//!   every topic and group.
//! - `admin` on a resource allows every operation on it; `produce`, `consume` and `create`
//!   each allow `describe`.

use std::collections::{HashMap, HashSet};

use stave_raft::controller::{AclEntry, AclOperation, AclResource, ClusterMetadata};

use crate::consumer_group::pattern::Pattern;

/// What a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
    Cluster,
}

/// The most characters of a name a refusal shows: a refusal travels in a header, and a
/// hostile 100 KB name must not make it too large to deliver.
const NAME_SHOWN_MAX: usize = 200;

/// `name` as a refusal shows it: quoted, cut at [`NAME_SHOWN_MAX`] characters.
pub(crate) fn shown(name: &str) -> String {
    match name.char_indices().nth(NAME_SHOWN_MAX) {
        Some((cut, _)) => format!("{:?}…", &name[..cut]),
        None => format!("{name:?}"),
    }
}

impl std::fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(name) => write!(f, "topic {}", shown(name)),
            Resource::Group(name) => write!(f, "group {}", shown(name)),
            Resource::Cluster => f.write_str("the cluster"),
        }
    }
}

/// An operation's name as the CLI and errors spell it.
pub fn operation_name(operation: AclOperation) -> &'static str {
    match operation {
        AclOperation::Produce => "produce",
        AclOperation::Consume => "consume",
        AclOperation::Describe => "describe",
        AclOperation::Create => "create",
        AclOperation::Admin => "admin",
    }
}

/// An operation from its name.
pub fn parse_operation(name: &str) -> Option<AclOperation> {
    Some(match name {
        "produce" => AclOperation::Produce,
        "consume" => AclOperation::Consume,
        "describe" => AclOperation::Describe,
        "create" => AclOperation::Create,
        "admin" => AclOperation::Admin,
        _ => return None,
    })
}

/// One compiled entry.
#[derive(Debug)]
struct Rule {
    /// None: `*`.
    principal: Option<String>,
    target: Target,
    operation: AclOperation,
}

#[derive(Debug)]
enum Target {
    Topic(Pattern),
    Group(Pattern),
    Cluster,
}

/// The users' token hashes and the ACL rules of one security generation.
#[derive(Debug, Default)]
pub struct Compiled {
    pub generation: u64,
    /// SHA-256 of a token → its user.
    tokens: HashMap<[u8; 32], String>,
    users: HashSet<String>,
    rules: Vec<Rule>,
}

impl Compiled {
    pub fn new(metadata: &ClusterMetadata) -> Compiled {
        let security = metadata.security();
        let tokens = security
            .users()
            .iter()
            .map(|(name, hash)| (*hash, name.clone()))
            .collect();
        let rules = security.acls().iter().filter_map(compile).collect();
        Compiled {
            generation: security.generation(),
            tokens,
            users: security.users().keys().cloned().collect(),
            rules,
        }
    }

    /// Whether user `name` exists.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.contains(name)
    }

    /// The user whose token hashes to `hash`.
    pub fn user(&self, hash: &[u8; 32]) -> Option<&str> {
        self.tokens.get(hash).map(String::as_str)
    }

    /// Whether `principal` may do `operation` on `resource`.
    /// An empty principal (nobody) is allowed nothing.
    pub fn allows(&self, principal: &str, operation: AclOperation, resource: Resource<'_>) -> bool {
        !principal.is_empty()
            && self.rules.iter().any(|rule| {
                rule.principal.as_deref().is_none_or(|p| p == principal)
                    && implies(rule, operation, resource)
            })
    }
}

/// Whether `rule` (its principal matched) allows `operation` on `resource`.
fn implies(rule: &Rule, operation: AclOperation, resource: Resource<'_>) -> bool {
    let operation_covered = rule.operation == operation
        || rule.operation == AclOperation::Admin
        || (operation == AclOperation::Describe && rule.operation != AclOperation::Describe);
    match (&rule.target, resource) {
        (Target::Cluster, _) if rule.operation == AclOperation::Admin => true,
        (Target::Cluster, Resource::Topic(_) | Resource::Group(_)) => {
            rule.operation == AclOperation::Describe && operation == AclOperation::Describe
        }
        (Target::Cluster, Resource::Cluster) => operation_covered,
        (Target::Topic(pattern), Resource::Topic(name))
        | (Target::Group(pattern), Resource::Group(name)) => {
            operation_covered && matches(pattern, name)
        }
        _ => false,
    }
}

/// Whether an ACL `pattern` covers `name`: a literal its own name; a wildcard never a
/// system or internal name unless its first word is literal (`_dlq.#`).
fn matches(pattern: &Pattern, name: &str) -> bool {
    if pattern.is_literal() {
        return pattern.as_str() == name;
    }
    if name.starts_with('_') {
        return pattern.first_word_is_literal() && pattern.matches_any(name);
    }
    pattern.matches(name)
}

fn compile(entry: &AclEntry) -> Option<Rule> {
    let target = match &entry.resource {
        AclResource::Topic(text) => Target::Topic(Pattern::parse(text).ok()?),
        AclResource::Group(text) => Target::Group(Pattern::parse(text).ok()?),
        AclResource::Cluster => Target::Cluster,
    };
    Some(Rule {
        principal: (entry.principal != "*").then(|| entry.principal.clone()),
        target,
        operation: entry.operation,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use AclOperation::*;

    fn rule(principal: &str, target: &str, operation: AclOperation) -> Rule {
        let target = match target.split_once(':') {
            Some(("topic", p)) => Target::Topic(Pattern::parse(p).unwrap()),
            Some(("group", p)) => Target::Group(Pattern::parse(p).unwrap()),
            _ => Target::Cluster,
        };
        Rule {
            principal: (principal != "*").then(|| principal.to_string()),
            target,
            operation,
        }
    }

    fn table(rules: Vec<Rule>) -> Compiled {
        Compiled {
            rules,
            ..Compiled::default()
        }
    }

    #[test]
    fn a_topic_pattern_grants_its_operation_and_describe() {
        let acls = table(vec![rule("svc", "topic:v1.user.*", Produce)]);
        assert!(acls.allows("svc", Produce, Resource::Topic("v1.user.signedup")));
        assert!(acls.allows("svc", Describe, Resource::Topic("v1.user.signedup")));
        assert!(!acls.allows("svc", Produce, Resource::Topic("v1.order.placed")));
        assert!(!acls.allows("svc", Consume, Resource::Topic("v1.user.signedup")));
        assert!(!acls.allows("other", Produce, Resource::Topic("v1.user.signedup")));
        assert!(!acls.allows("svc", Produce, Resource::Group("v1.user.signedup")));
    }

    #[test]
    fn admin_and_wildcard_principals() {
        let acls = table(vec![
            rule("root", "cluster", Admin),
            rule("*", "topic:v1.public.#", Consume),
            rule("ops", "group:billing", Admin),
            rule("auditor", "cluster", Describe),
        ]);
        assert!(acls.allows("root", Admin, Resource::Cluster));
        assert!(acls.allows("root", Produce, Resource::Topic("__offsets")));
        assert!(acls.allows("anyone", Consume, Resource::Topic("v1.public.news")));
        assert!(
            !acls.allows("", Consume, Resource::Topic("v1.public.news")),
            "nobody is not anyone"
        );
        assert!(!acls.allows("anyone", Produce, Resource::Topic("v1.public.news")));
        assert!(acls.allows("ops", Consume, Resource::Group("billing")));
        assert!(!acls.allows("ops", Admin, Resource::Cluster));
        assert!(acls.allows("auditor", Describe, Resource::Topic("v1.x")));
        assert!(acls.allows("auditor", Describe, Resource::Cluster));
        assert!(!acls.allows("auditor", Consume, Resource::Topic("v1.x")));
    }

    #[test]
    fn wildcards_reach_system_topics_only_from_a_literal_first_word() {
        let acls = table(vec![
            rule("a", "topic:#", Consume),
            rule("b", "topic:_dlq.#", Consume),
        ]);
        assert!(!acls.allows("a", Consume, Resource::Topic("_dlq.mailer.v1.x")));
        assert!(!acls.allows("a", Consume, Resource::Topic("__offsets")));
        assert!(acls.allows("b", Consume, Resource::Topic("_dlq.mailer.v1.x")));
        assert!(!acls.allows("b", Consume, Resource::Topic("v1.x")));
    }
}

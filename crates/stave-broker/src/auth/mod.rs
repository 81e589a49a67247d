//! Who is calling, and may they. Authentication happens once per call, in
//! [`Authenticator`] (a tonic interceptor on the public service and reflection): a bearer
//! token (`authorization: Bearer …`, looked up by its SHA-256), a TLS client certificate
//! (its subject CN, `crate::tls::peer_common_name`), or a call from another node
//! (the cluster secret, carrying the client's principal in `stave-principal-bin` when it
//! forwards one), or nobody. With `--auth required` nobody is refused `UNAUTHENTICATED`;
//! with auth off every call is allowed. The [`Principal`] goes into the request's
//! extensions; each handler then asks [`Broker::authorize`] for what it touches, which
//! answers `PERMISSION_DENIED` naming the operation and the resource.
//!
//! The token table and the ACLs are compiled from the controller's metadata once per
//! security generation ([`acl::Compiled`]), so a user deleted or an ACL revoked takes effect
//! on the next call on every node; open streams re-check when the generation moves.

pub mod acl;
pub mod users;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use stave_raft::controller::{AclOperation, ClusterMetadata};
use stave_raft::transport::ClusterSecret;
use tokio::sync::watch;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

pub use acl::{Compiled, Resource};

/// The metadata entry a forwarding node names the client's principal in (binary: a name
/// may be any UTF-8).
pub const PRINCIPAL_HEADER: &str = "stave-principal-bin";

/// Whether calls must be authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every call is allowed (the default).
    #[default]
    Off,
    /// Anonymous calls are refused; ACLs decide the rest.
    Required,
}

impl std::str::FromStr for AuthMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "off" => Ok(AuthMode::Off),
            "required" => Ok(AuthMode::Required),
            other => Err(format!("--auth is `required` or `off`, not {other:?}")),
        }
    }
}

/// Who a call comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Auth is off: everything is allowed.
    Anyone,
    /// Another node of the cluster, on its own behalf: everything is allowed.
    Node,
    /// A user, by its token: the call stops being allowed when the user is deleted.
    User(String),
    /// A client certificate's name, or a principal another node forwarded.
    Named(String),
}

impl Principal {
    /// The principal of `request`, as [`Authenticator`] put it there. A request that did not
    /// pass it (a bug) is nobody: an empty name, which no ACL entry matches, `*` included.
    pub fn of<T>(request: &Request<T>) -> Principal {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(|| Principal::Named(String::new()))
    }

    /// The name ACLs know it by (none: everything is allowed).
    pub fn name(&self) -> Option<&str> {
        match self {
            Principal::User(name) | Principal::Named(name) => Some(name),
            Principal::Anyone | Principal::Node => None,
        }
    }
}

/// The SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What authentication and authorization read: the mode, the cluster secret, the metadata
/// (for users and ACLs) and the denials counted.
#[derive(Debug)]
pub struct AuthState {
    pub mode: AuthMode,
    secret: ClusterSecret,
    metadata: watch::Receiver<Arc<ClusterMetadata>>,
    compiled: Mutex<Arc<Compiled>>,
    /// Calls refused UNAUTHENTICATED since the node started.
    pub unauthenticated: AtomicU64,
    /// Calls refused PERMISSION_DENIED since the node started.
    pub permission_denied: AtomicU64,
}

impl AuthState {
    pub fn new(
        mode: AuthMode,
        secret: ClusterSecret,
        metadata: watch::Receiver<Arc<ClusterMetadata>>,
    ) -> AuthState {
        AuthState {
            mode,
            secret,
            metadata,
            compiled: Mutex::new(Arc::new(Compiled::default())),
            unauthenticated: AtomicU64::new(0),
            permission_denied: AtomicU64::new(0),
        }
    }

    /// The users and ACLs of the metadata this node has applied, compiled (again only when
    /// their generation moved).
    pub fn compiled(&self) -> Arc<Compiled> {
        let metadata = self.metadata.borrow().clone();
        let generation = metadata.security().generation();
        let mut compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if compiled.generation != generation {
            *compiled = Arc::new(Compiled::new(&metadata));
        }
        compiled.clone()
    }

    /// The current security generation (what open streams watch).
    pub fn generation(&self) -> u64 {
        self.metadata.borrow().security().generation()
    }

    /// A receiver that sees the metadata change (open streams re-check on it).
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.metadata.clone()
    }

    /// `status` (UNAUTHENTICATED or PERMISSION_DENIED), counted.
    fn deny(&self, status: Status) -> Status {
        let counter = match status.code() {
            tonic::Code::PermissionDenied => &self.permission_denied,
            _ => &self.unauthenticated,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        status
    }

    /// Who the caller is: another node (the cluster secret), else by its token, else by its
    /// client certificate (`certificate_name`, the CN the node's TLS checked against its CA),
    /// else nobody.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        certificate_name: Option<String>,
    ) -> Result<Principal, Status> {
        if self.secret.presented_in(metadata) {
            return match metadata.get_bin(PRINCIPAL_HEADER) {
                None => Ok(Principal::Node),
                Some(name) => match name.to_bytes() {
                    Ok(bytes) => Ok(Principal::Named(String::from_utf8_lossy(&bytes).into())),
                    Err(_) => Err(Status::unauthenticated(
                        "an undecodable forwarded principal",
                    )),
                },
            };
        }
        if self.mode == AuthMode::Off {
            return Ok(Principal::Anyone);
        }
        if let Some(value) = metadata.get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|text| text.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or_default();
            return match self.compiled().user(&token_hash(token)) {
                Some(user) => Ok(Principal::User(user.to_string())),
                None => Err(self.deny(Status::unauthenticated(
                    "unknown or revoked token (authorization: Bearer TOKEN)",
                ))),
            };
        }
        if let Some(name) = certificate_name {
            return Ok(Principal::Named(name));
        }
        Err(self.deny(Status::unauthenticated(
            "this cluster requires authentication: give a token (--token-file FILE or \
             STAVE_TOKEN) or a client certificate",
        )))
    }

    /// Whether `principal` may do `operation` on `resource`; PERMISSION_DENIED naming both if
    /// not (never the principal's secret).
    pub fn authorize(
        &self,
        principal: &Principal,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> Result<(), Status> {
        let Some(name) = principal.name() else {
            return Ok(());
        };
        let compiled = self.compiled();
        if let Principal::User(user) = principal
            && !compiled.has_user(user)
        {
            return Err(self.deny(Status::unauthenticated(format!(
                "user {} was deleted",
                acl::shown(user)
            ))));
        }
        if compiled.allows(name, operation, resource) {
            return Ok(());
        }
        Err(self.deny(Status::permission_denied(format!(
            "{} may not {} {resource}",
            acl::shown(name),
            acl::operation_name(operation)
        ))))
    }

    /// Whether `principal` may do `operation` on `resource` (no error, no count: for
    /// filtering lists and pattern matches).
    pub fn allows(
        &self,
        principal: &Principal,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> bool {
        principal
            .name()
            .is_none_or(|name| self.compiled().allows(name, operation, resource))
    }
}

/// The interceptor on the public service: authenticates each call and puts its
/// [`Principal`] into the request. With `cluster_only`, only describe on the cluster passes
/// (reflection).
#[derive(Debug, Clone)]
pub struct Authenticator {
    state: Arc<AuthState>,
    describe_cluster: bool,
}

impl Authenticator {
    pub fn new(state: Arc<AuthState>) -> Authenticator {
        Authenticator {
            state,
            describe_cluster: false,
        }
    }

    /// For reflection: describe on the cluster is required too.
    pub fn describing_the_cluster(state: Arc<AuthState>) -> Authenticator {
        Authenticator {
            state,
            describe_cluster: true,
        }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let certificate_name = crate::tls::peer_common_name(&request);
        let principal = self
            .state
            .authenticate(request.metadata(), certificate_name)?;
        if self.describe_cluster {
            self.state
                .authorize(&principal, AclOperation::Describe, Resource::Cluster)?;
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

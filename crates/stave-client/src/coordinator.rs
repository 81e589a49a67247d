//! A consumer group's coordinator: found with FindCoordinator (any node answers), cached,
//! and followed when it moves (NOT_COORDINATOR names the new one; COORDINATOR_NOT_AVAILABLE
//! and lost connections look it up again). A coordinator named after it failed to answer
//! (a suspect: nodes keep naming a paused one until the election of its `__offsets`
//! partition ends) counts as none for now: the lookup is retried after a pause.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use stave_proto::v1 as proto;
use stave_proto::v1::ErrorCode;

use crate::client::{Client, NodeClient, Retry};
use crate::error::ClientError;

/// Routes one group's requests to its coordinator.
#[derive(Debug)]
pub(crate) struct Coordinator {
    client: Client,
    group: String,
    addr: Mutex<Option<String>>,
}

impl Coordinator {
    pub(crate) fn new(client: Client, group: &str) -> Coordinator {
        Coordinator {
            client,
            group: group.to_string(),
            addr: Mutex::new(None),
        }
    }

    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    fn cached(&self) -> Option<String> {
        self.addr.lock().ok()?.clone()
    }

    fn remember(&self, addr: Option<String>) {
        if let Ok(mut cached) = self.addr.lock() {
            *cached = addr;
        }
    }

    /// Forgets the coordinator: the next call looks it up again.
    pub(crate) fn forget(&self) {
        self.remember(None);
    }

    /// Asks any node where the group's coordinator is.
    async fn find(&self) -> Result<String, ClientError> {
        let what = format!("find the coordinator of group {:?}", self.group);
        let group = self.group.clone();
        self.client
            .call_any(&what, |addr, mut node| {
                let request = proto::FindCoordinatorRequest {
                    group: group.clone(),
                };
                async move {
                    let answer = self
                        .client
                        .unary(&addr, node.find_coordinator(request))
                        .await?;
                    ClientError::check(answer.error)?;
                    Ok(answer.addr)
                }
            })
            .await
    }

    /// Runs `op` against the coordinator, following it when it moves and retrying retriable
    /// failures until `timeout`.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(String, NodeClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut retry = Retry::new(&self.client, what, timeout);
        loop {
            let err = match self.try_once(&mut op).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let moved = match &err {
                ClientError::Broker {
                    code: ErrorCode::NotCoordinator,
                    leader_addr: Some(addr),
                    ..
                } if !self.client.is_suspect(addr) => {
                    self.remember(Some(addr.clone()));
                    true
                }
                _ => {
                    self.forget();
                    false
                }
            };
            retry.again(err, moved).await?;
        }
    }

    async fn try_once<T, F, Fut>(&self, op: &mut F) -> Result<T, ClientError>
    where
        F: FnMut(String, NodeClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let addr = match self.cached() {
            Some(addr) => addr,
            None => {
                let addr = self.find().await?;
                if self.client.is_suspect(&addr) {
                    return Err(ClientError::Broker {
                        code: ErrorCode::CoordinatorNotAvailable,
                        message: format!(
                            "the coordinator of group {:?} is said to be {addr}, which did not \
                             answer in time",
                            self.group
                        ),
                        leader_id: None,
                        leader_addr: None,
                    });
                }
                self.remember(Some(addr.clone()));
                addr
            }
        };
        let node = self.client.connection(&addr).await?;
        op(addr, node).await
    }
}

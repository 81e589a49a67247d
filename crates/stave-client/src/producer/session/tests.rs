#![allow(clippy::unwrap_used)]

use std::time::Duration;

use stave_proto::v1::stave_client::StaveClient;
use tonic::transport::Endpoint;

use super::*;
use crate::test_support::SilentNode;

fn request() -> ProduceRequest {
    ProduceRequest {
        sequence: 0,
        topic: "t".into(),
        partition: 0,
        batch: bytes::Bytes::new(),
    }
}

/// The first request on a stream to a node that never answers fails with NO_ANSWER after
/// its bound, and takes every other request on that stream with it at once (long before
/// their own bounds): the stream is abandoned, closed to new requests, and the producer's
/// batches go elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_abandons_the_stream_and_every_request_on_it() {
    let silent = SilentNode::start();
    let channel = Endpoint::from_shared(format!("http://{}", silent.addr))
        .unwrap()
        .connect_lazy();
    let session = Session::open(
        silent.addr.clone(),
        StaveClient::with_interceptor(channel, crate::Credentials::none()),
    );
    let first = session.send(request(), Duration::from_millis(300));
    let later: Vec<_> = (0..3)
        .map(|_| session.send(request(), Duration::from_secs(600)))
        .collect();

    let err = first.await.unwrap_err();
    assert!(matches!(err, ClientError::NoAnswer { .. }), "{err:?}");
    assert!(session.is_closed());
    for answer in later {
        let err = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("failed with the first, not after its own bound")
            .unwrap_err();
        assert!(matches!(err, ClientError::NoAnswer { .. }), "{err:?}");
    }
    let err = session
        .send(request(), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(
        err.is_connection_failure(),
        "a closed stream takes no more: {err:?}"
    );
}

//! What a produce answer means for its batch: written, worth a retry with the same sequence,
//! refused for its sequence, or refused for good. The one table the producer's retries follow.

use stave_proto::v1::{ErrorCode, ProduceResponse};

use crate::error::ClientError;

/// The fate of one attempt to write a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Written (now, or by an earlier attempt: a duplicate) from `base_offset`.
    Written { base_offset: u64 },
    /// Not written, or in doubt: sending the same batch again (same producer id, epoch and
    /// sequence) settles it, as the leader drops duplicates.
    Retry(ClientError),
    /// Refused because its sequence does not follow the producer's last one: not written.
    OutOfOrder(ClientError),
    /// Refused, and a retry would be refused again: its records fail with this error.
    Fail(ClientError),
}

/// Classifies the answer to one produce request (or the failure to get one).
pub(crate) fn classify(result: Result<ProduceResponse, ClientError>) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(err) if err.is_retriable() => return Outcome::Retry(err),
        Err(err) => return Outcome::Fail(err),
    };
    let Some(err) = ClientError::from_proto(response.error) else {
        return Outcome::Written {
            base_offset: response.base_offset,
        };
    };
    let code = err.code().unwrap_or(ErrorCode::Internal);
    match code {
        ErrorCode::NotLeader
        | ErrorCode::LeaderNotAvailable
        | ErrorCode::RequestTimedOut
        | ErrorCode::DuplicateInFlight
        // In doubt: the broker failed while writing; a retry is answered as a duplicate if
        // the first attempt made it.
        | ErrorCode::Internal
        // Metadata spreads to every node a moment after a topic is created: the delivery
        // timeout bounds how long a producer waits for a topic that never comes.
        | ErrorCode::UnknownTopic
        | ErrorCode::UnknownPartition
        // Nothing was written; the node takes writes again once space is freed.
        | ErrorCode::StorageFull => Outcome::Retry(err),
        ErrorCode::OutOfOrderSequence => Outcome::OutOfOrder(err),
        ErrorCode::None
        | ErrorCode::OffsetOutOfRange
        | ErrorCode::InvalidTopicName
        | ErrorCode::ReservedTopicName
        | ErrorCode::TopicExists
        | ErrorCode::MessageTooLarge
        | ErrorCode::CorruptBatch
        | ErrorCode::InvalidRequest
        | ErrorCode::InvalidConfig
        | ErrorCode::ProducerFenced
        | ErrorCode::NotEnoughNodes
        // Group coordination errors never answer a produce.
        | ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::FencedMemberEpoch
        | ErrorCode::UnknownMemberId
        | ErrorCode::GroupNotEmpty
        | ErrorCode::DeliveryNotHeld
        | ErrorCode::GroupMismatch
        // User and ACL admin errors never answer a produce.
        | ErrorCode::NotFound
        | ErrorCode::AlreadyExists => Outcome::Fail(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stave_proto::v1::Error;

    fn answer(code: ErrorCode) -> Result<ProduceResponse, ClientError> {
        Ok(ProduceResponse {
            sequence: 0,
            error: Some(Error {
                code: code as i32,
                message: "m".into(),
                leader_id: None,
                leader_addr: String::new(),
            }),
            base_offset: 0,
            next_offset: 0,
            duplicate: false,
        })
    }

    #[test]
    fn success_and_duplicates_are_written_at_the_answered_offset() {
        for duplicate in [false, true] {
            let outcome = classify(Ok(ProduceResponse {
                sequence: 3,
                error: None,
                base_offset: 42,
                next_offset: 45,
                duplicate,
            }));
            assert!(matches!(outcome, Outcome::Written { base_offset: 42 }));
        }
    }

    #[test]
    fn leader_changes_timeouts_and_in_flight_duplicates_are_retried() {
        for code in [
            ErrorCode::NotLeader,
            ErrorCode::LeaderNotAvailable,
            ErrorCode::RequestTimedOut,
            ErrorCode::DuplicateInFlight,
            ErrorCode::Internal,
            ErrorCode::UnknownTopic,
        ] {
            assert!(
                matches!(classify(answer(code)), Outcome::Retry(_)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn connection_loss_is_retried_and_an_unimplemented_call_is_not() {
        let lost = ClientError::Rpc {
            addr: "a:1".into(),
            code: tonic::Code::Unavailable,
            message: "connection reset".into(),
        };
        assert!(matches!(classify(Err(lost)), Outcome::Retry(_)));
        let unimplemented = ClientError::Rpc {
            addr: "a:1".into(),
            code: tonic::Code::Unimplemented,
            message: String::new(),
        };
        assert!(matches!(classify(Err(unimplemented)), Outcome::Fail(_)));
    }

    #[test]
    fn refusals_fail_the_batch_and_sequence_gaps_are_told_apart() {
        for code in [
            ErrorCode::MessageTooLarge,
            ErrorCode::CorruptBatch,
            ErrorCode::InvalidRequest,
            ErrorCode::ProducerFenced,
            ErrorCode::ReservedTopicName,
        ] {
            assert!(
                matches!(classify(answer(code)), Outcome::Fail(_)),
                "{code:?}"
            );
        }
        assert!(matches!(
            classify(answer(ErrorCode::OutOfOrderSequence)),
            Outcome::OutOfOrder(_)
        ));
    }
}

package stave

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// ErrorCode is the server's code for a failed record or call (stave.v1.ErrorCode).
type ErrorCode int32

// The server's error codes; see proto/stave/v1/stave.proto for what each means.
const (
	CodeNone                    ErrorCode = 0
	CodeUnknownTopic            ErrorCode = 1
	CodeUnknownPartition        ErrorCode = 2
	CodeNotLeader               ErrorCode = 3
	CodeLeaderNotAvailable      ErrorCode = 4
	CodeOffsetOutOfRange        ErrorCode = 5
	CodeInvalidTopicName        ErrorCode = 6
	CodeReservedTopicName       ErrorCode = 7
	CodeTopicExists             ErrorCode = 8
	CodeMessageTooLarge         ErrorCode = 9
	CodeCorruptBatch            ErrorCode = 10
	CodeInvalidRequest          ErrorCode = 11
	CodeInvalidConfig           ErrorCode = 12
	CodeOutOfOrderSequence      ErrorCode = 13
	CodeProducerFenced          ErrorCode = 14
	CodeDuplicateInFlight       ErrorCode = 15
	CodeRequestTimedOut         ErrorCode = 16
	CodeNotEnoughNodes          ErrorCode = 17
	CodeInternal                ErrorCode = 18
	CodeNotCoordinator          ErrorCode = 19
	CodeCoordinatorNotAvailable ErrorCode = 20
	CodeFencedMemberEpoch       ErrorCode = 21
	CodeUnknownMemberID         ErrorCode = 22
	CodeGroupNotEmpty           ErrorCode = 23
	CodeStorageFull             ErrorCode = 24
	CodeDeliveryNotHeld         ErrorCode = 25
	CodeGroupMismatch           ErrorCode = 26
)

// String returns the code's name as the proto spells it, e.g. "UNKNOWN_TOPIC".
func (c ErrorCode) String() string {
	if name, ok := pb.ErrorCode_name[int32(c)]; ok {
		return name
	}
	return fmt.Sprintf("ErrorCode(%d)", int32(c))
}

// Retriable reports whether a request that failed with this code may succeed if sent again
// (after a pause). UNKNOWN_TOPIC is not counted: it is retriable only right after the topic
// was created, which the producer handles on its own.
func (c ErrorCode) Retriable() bool {
	switch c {
	case CodeNotLeader, CodeLeaderNotAvailable, CodeRequestTimedOut, CodeDuplicateInFlight,
		CodeStorageFull, CodeNotCoordinator, CodeCoordinatorNotAvailable:
		return true
	}
	return false
}

// Error is a failure the server answered with a typed code. Use errors.As to get it from any
// error this package returns:
//
//	var serr *stave.Error
//	if errors.As(err, &serr) && serr.Code == stave.CodeUnknownTopic { ... }
type Error struct {
	// Code is the server's error code.
	Code ErrorCode
	// Message is the server's explanation.
	Message string
	// LeaderAddr is the leader's address on NOT_LEADER and NOT_COORDINATOR, when known.
	LeaderAddr string
}

// Error formats the code and the message.
func (e *Error) Error() string {
	if e.Message == "" {
		return "stave: " + e.Code.String()
	}
	return fmt.Sprintf("stave: %s: %s", e.Code, e.Message)
}

// Retriable reports whether the failed request may succeed if sent again.
func (e *Error) Retriable() bool { return e.Code.Retriable() }

// CodeOf returns the server's code carried by err (CodeNone if err carries none).
func CodeOf(err error) ErrorCode {
	var serr *Error
	if errors.As(err, &serr) {
		return serr.Code
	}
	return CodeNone
}

// IsRetriable reports whether err is worth retrying: a server code that says so (see
// ErrorCode.Retriable), or a connection failure (gRPC UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED or ABORTED: no node reachable, a node restarting, a deadline that
// passed on the way). A cancelled context is not retriable.
func IsRetriable(err error) bool {
	if err == nil {
		return false
	}
	var serr *Error
	if errors.As(err, &serr) {
		return serr.Retriable()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			return true
		}
	}
	return false
}

// fromPB converts a proto error; nil for none (unset or NONE).
func fromPB(e *pb.Error) *Error {
	if e == nil || e.Code == pb.ErrorCode_NONE {
		return nil
	}
	return &Error{Code: ErrorCode(e.Code), Message: e.Message, LeaderAddr: e.LeaderAddr}
}

// asError returns nil when pb carries no error, so a nil *Error never becomes a non-nil
// error interface.
func asError(e *pb.Error) error {
	if converted := fromPB(e); converted != nil {
		return converted
	}
	return nil
}

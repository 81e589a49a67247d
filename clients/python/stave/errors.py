"""Errors: :class:`StaveError` carries the server's :class:`ErrorCode`."""

from __future__ import annotations

import enum

import grpc


class ErrorCode(enum.IntEnum):
    """The server's error codes, as in ``stave.v1.ErrorCode`` (proto/stave/v1/stave.proto)."""

    NONE = 0
    UNKNOWN_TOPIC = 1
    UNKNOWN_PARTITION = 2
    NOT_LEADER = 3
    LEADER_NOT_AVAILABLE = 4
    OFFSET_OUT_OF_RANGE = 5
    INVALID_TOPIC_NAME = 6
    RESERVED_TOPIC_NAME = 7
    TOPIC_EXISTS = 8
    MESSAGE_TOO_LARGE = 9
    CORRUPT_BATCH = 10
    INVALID_REQUEST = 11
    INVALID_CONFIG = 12
    OUT_OF_ORDER_SEQUENCE = 13
    PRODUCER_FENCED = 14
    DUPLICATE_IN_FLIGHT = 15
    REQUEST_TIMED_OUT = 16
    NOT_ENOUGH_NODES = 17
    INTERNAL = 18
    NOT_COORDINATOR = 19
    COORDINATOR_NOT_AVAILABLE = 20
    FENCED_MEMBER_EPOCH = 21
    UNKNOWN_MEMBER_ID = 22
    GROUP_NOT_EMPTY = 23
    STORAGE_FULL = 24
    DELIVERY_NOT_HELD = 25
    GROUP_MISMATCH = 26
    NOT_FOUND = 27
    ALREADY_EXISTS = 28


#: Codes after which the same request may succeed when sent again (UNKNOWN_TOPIC only for a
#: short while after a create: the clients retry it briefly, see Producer).
RETRIABLE_CODES = frozenset(
    {
        ErrorCode.NOT_LEADER,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.DUPLICATE_IN_FLIGHT,
        ErrorCode.STORAGE_FULL,
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
    }
)

#: gRPC statuses that mean the connection or the node failed, not the request.
RETRIABLE_GRPC_STATUSES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


def _code_of(value: int) -> ErrorCode | int:
    try:
        return ErrorCode(value)
    except ValueError:  # a code newer than this client
        return value


class StaveError(Exception):
    """A request failed. ``code`` is the server's :class:`ErrorCode`.

    Failures of the connection or of a whole gRPC call (the node is down, a deadline passed)
    are :class:`StaveTransportError`, a subclass whose ``code`` is
    ``ErrorCode.REQUEST_TIMED_OUT`` for retriable statuses and ``ErrorCode.INTERNAL``
    otherwise, with the gRPC status in ``grpc_status``.
    """

    def __init__(self, code: ErrorCode | int, message: str, *, leader_addr: str = "") -> None:
        self.code = _code_of(int(code))
        self.message = message
        #: For NOT_LEADER / NOT_COORDINATOR: the node to ask, when the server knows it.
        self.leader_addr = leader_addr
        name = self.code.name if isinstance(self.code, ErrorCode) else str(self.code)
        super().__init__(f"{name}: {message}" if message else name)

    @property
    def retriable(self) -> bool:
        """Whether sending the same request again may succeed."""
        return self.code in RETRIABLE_CODES

    @classmethod
    def from_proto(cls, err) -> "StaveError":
        """Builds the error from a ``stave.v1.Error`` message."""
        return cls(err.code, err.message, leader_addr=err.leader_addr)

    def __reduce__(self):
        return (self.__class__, (self.code, self.message), {"leader_addr": self.leader_addr})


class StaveTransportError(StaveError):
    """A gRPC call failed as a whole: ``grpc_status`` says how (e.g. UNAVAILABLE)."""

    def __init__(self, grpc_status: grpc.StatusCode, message: str) -> None:
        self.grpc_status = grpc_status
        #: The gRPC status details, as the server or the transport gave them.
        self.details = message
        code = (
            ErrorCode.REQUEST_TIMED_OUT
            if grpc_status in RETRIABLE_GRPC_STATUSES
            else ErrorCode.INTERNAL
        )
        super().__init__(code, f"{grpc_status.name}: {message}")

    @property
    def retriable(self) -> bool:
        return self.grpc_status in RETRIABLE_GRPC_STATUSES

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> "StaveTransportError":
        """Wraps a ``grpc.RpcError`` (a failed call)."""
        status = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = err.details() if hasattr(err, "details") else str(err)
        return cls(status or grpc.StatusCode.UNKNOWN, details or "")

    def __reduce__(self):
        return (self.__class__, (self.grpc_status, self.details))

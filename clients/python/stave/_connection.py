"""A gRPC channel to one node of a bootstrap list, moving to the next node when one fails."""

from __future__ import annotations

import threading
import time
from typing import Sequence

import grpc

from stave._proto.stave.v1 import stave_pb2_grpc
from stave.errors import RETRIABLE_GRPC_STATUSES, StaveTransportError

#: The node's message limit (proto/stave/v1/stave.proto, "Message sizes").
MESSAGE_BYTES_MAX = 16 * 1024 * 1024

_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    # A restarted node is back within a second or two: reconnect soon, not after the
    # default backoff (1 s growing to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Answer the node's pings on an idle Consume stream (it pings after 5 s).
    ("grpc.keepalive_permit_without_calls", 1),
]


def parse_bootstrap(bootstrap: str | Sequence[str]) -> list[str]:
    """``"h1:p1,h2:p2"`` or a list of ``"host:port"`` strings → a list of addresses."""
    if isinstance(bootstrap, str):
        parts = bootstrap.split(",")
    else:
        parts = list(bootstrap)
    addresses = [p.strip() for p in parts if p and p.strip()]
    if not addresses:
        raise ValueError("bootstrap names no address (want HOST:PORT[,HOST:PORT...])")
    return addresses


def backoff_s(attempt: int, first_s: float = 0.05, max_s: float = 1.0) -> float:
    """The pause before retry number ``attempt`` (0-based): doubling from ``first_s``."""
    return min(max_s, first_s * (2 ** min(attempt, 16)))


class Connection:
    """One channel at a time, to one address of the bootstrap list; ``rotate`` moves on."""

    def __init__(self, bootstrap: str | Sequence[str]) -> None:
        self.addresses = parse_bootstrap(bootstrap)
        self._lock = threading.Lock()
        self._index = 0
        self._generation = 0
        self._closed = False
        self._channel = grpc.insecure_channel(self.addresses[0], options=_CHANNEL_OPTIONS)
        self._stub = stave_pb2_grpc.StaveStub(self._channel)

    @property
    def address(self) -> str:
        """The address of the node in use."""
        return self.addresses[self._index]

    def stub(self) -> tuple[stave_pb2_grpc.StaveStub, int]:
        """The current stub and its generation (to pass to ``rotate``)."""
        with self._lock:
            if self._closed:
                raise StaveTransportError(grpc.StatusCode.CANCELLED, "the client is closed")
            return self._stub, self._generation

    def rotate(self, generation: int) -> None:
        """The channel of ``generation`` failed: open one to the next address (the same
        address again when there is one; a fresh channel reconnects at once)."""
        with self._lock:
            if self._closed or generation != self._generation:
                return  # someone rotated already
            old = self._channel
            self._index = (self._index + 1) % len(self.addresses)
            self._generation += 1
            self._channel = grpc.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
            self._stub = stave_pb2_grpc.StaveStub(self._channel)
        # Calls still running on the old channel (other streams) fail and rotate no further.
        old.close()

    def call(self, method: str, request, *, timeout_s: float, attempt_timeout_s: float = 10.0):
        """Calls unary ``method`` and returns its answer, retrying a failed connection or a
        restarting node (gRPC UNAVAILABLE, DEADLINE_EXCEEDED) on the next address with
        backoff until ``timeout_s`` has passed. Raises StaveTransportError."""
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            stub, generation = self.stub()
            remaining = deadline - time.monotonic()
            try:
                return getattr(stub, method)(
                    request, timeout=max(0.001, min(attempt_timeout_s, remaining))
                )
            except grpc.RpcError as err:
                error = StaveTransportError.from_rpc_error(err)
                if error.grpc_status not in RETRIABLE_GRPC_STATUSES:
                    raise error from None
                pause = backoff_s(attempt)
                if time.monotonic() + pause >= deadline:
                    raise error from None
                self.rotate(generation)
                time.sleep(pause)
                attempt += 1

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channel = self._channel
        channel.close()

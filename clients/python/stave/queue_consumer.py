"""QueueConsumer: a member of a queue group, on a Consume stream in queue mode.

A queue group's members share every partition record by record: the node hands each record
to one member, locked to it until the member settles it (ack, release, reject) or the lock
expires. The stream's credit is the most records it holds at once: the consumer grants one
record back for each delivery it held that an ack, release or reject settled (once answered),
never for an extend.

Settlements are pipelined: each call queues one and returns a Future; the stream's sender
gathers those queued while it was busy into one Settle message, answered by a Settled with
the same id (one result per settlement, in order).
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Iterator, NamedTuple, Sequence

import grpc

from stave._proto.stave.v1 import stave_pb2
from stave.consumer import _ConsumeStream
from stave.errors import ErrorCode, StaveError, StaveTransportError
from stave.types import QueueRecord

log = logging.getLogger("stave.queue_consumer")

#: Put on the request queue to have the sender gather the settlements waiting into a Settle.
_FLUSH = object()

#: Settlements in one Settle message at most; more wait for the next.
SETTLEMENTS_PER_MESSAGE_MAX = 1_000

#: The node's bounds on a settlement (proto: Settlement). It refuses a Settle message with
#: one settlement past them by ending the whole stream, so the client keeps within them: a
#: longer delay is refused here, a longer reason cut (the proto keeps "up to 1 KiB").
DELAY_MS_MAX = 86_400_000
REASON_BYTES_MAX = 1024

_ORDERINGS = {"none": stave_pb2.QUEUE_ORDERING_NONE, "key": stave_pb2.QUEUE_ORDERING_KEY}

# A delivery: the record and the delivery_count it came with.
_Delivery = tuple[str, int, int, int]


class _Settlement(NamedTuple):
    delivery: _Delivery
    action: int
    message: stave_pb2.Settlement
    future: Future


def _reason_within_bounds(reason: str) -> str:
    """``reason`` cut to REASON_BYTES_MAX bytes of UTF-8, at a character boundary."""
    data = reason.encode("utf-8")
    if len(data) <= REASON_BYTES_MAX:
        return reason
    return data[:REASON_BYTES_MAX].decode("utf-8", "ignore")


def _outcomes(results, count: int) -> list[StaveError | None]:
    """The error (or None: done) of each of ``count`` settlements, from a Settled's results:
    one per settlement, in order. A node that failed a whole Settle answers one result for
    all of them; no results at all is every one done (unset)."""
    errors = [None if r.code == ErrorCode.NONE else StaveError.from_proto(r) for r in results]
    if len(errors) == count:
        return errors
    if len(errors) == 1:
        return errors * count
    if not errors:
        return [None] * count
    missing = StaveError(ErrorCode.INTERNAL, f"the node answered {len(errors)} results for {count} settlements")
    return [errors[i] if i < len(errors) else missing for i in range(count)]


def _delivery_of(record: QueueRecord) -> _Delivery:
    return (record.topic, record.partition, record.offset, record.delivery_count)


def _queue_records_of(message) -> list[QueueRecord]:
    return [
        QueueRecord(
            r.topic,
            r.partition,
            r.offset,
            r.timestamp_ms,
            r.key if r.HasField("key") else None,
            r.value,
            [(h.key, h.value) for h in r.headers] if r.headers else [],
            r.delivery_count,
            r.lock_deadline_ms,
        )
        for r in message.records
    ]


class QueueConsumer(_ConsumeStream):
    """A member of queue group ``group``, sharing the records of ``topics`` with the other
    members record by record (not partition by partition).

    ``topics``: names or patterns of dot-separated words (``orders.*``, ``orders.#``).
    ``from_beginning``: where a new group starts in partitions it never acknowledged (True:
    the earliest record; False: only new records). ``credit``: the most records this member
    holds (unsettled) at once. ``lock_ms``, ``max_deliveries`` and ``ordering`` (``"none"``
    or ``"key"``: no two records with the same key in flight in the group at once) are the
    group's settings, set by the member that starts the group; None takes the group's (or
    the node's defaults: 30 s, 5 deliveries). A member asking for another ``ordering`` than
    the group's is refused with GROUP_MISMATCH (raised by :meth:`poll`).

    Every record returned must be settled once: :meth:`ack` (done), :meth:`release` (to be
    delivered again, to any member), :meth:`reject` (to the dead-letter topic
    ``_dlq.{group}.{topic}``); :meth:`extend` renews its lock. Each returns a Future that
    resolves to None once the node has settled it, or raises StaveError (DELIVERY_NOT_HELD:
    the delivery is not this member's, e.g. settled already or its lock expired). A record
    not settled before its lock expires (``record.lock_deadline_ms``) is delivered again.

    :meth:`close` (or a broken stream) releases every record held at once. A consumer whose
    connection fails joins again (``reconnect_timeout_ms``); records received before that
    can no longer be settled (DELIVERY_NOT_HELD, or the stream's error).
    """

    def __init__(
        self,
        bootstrap: str | Sequence[str] = "127.0.0.1:7070",
        group: str = "",
        topics: str | Sequence[str] = (),
        from_beginning: bool = False,
        *,
        credit: int = 64,
        lock_ms: int | None = None,
        max_deliveries: int | None = None,
        ordering: str = "none",
        reconnect_timeout_ms: float = 30_000,
    ) -> None:
        if not group:
            raise ValueError("a QueueConsumer needs a group")
        topic_list = [topics] if isinstance(topics, str) else list(topics)
        if not topic_list:
            raise ValueError("a QueueConsumer needs at least one topic or pattern")
        if ordering not in _ORDERINGS:
            raise ValueError(f"ordering must be 'none' or 'key', not {ordering!r}")
        options = stave_pb2.QueueOptions(ordering=_ORDERINGS[ordering])
        if lock_ms is not None:
            options.lock_ms = lock_ms
        if max_deliveries is not None:
            options.max_deliveries = max_deliveries
        subscribe = stave_pb2.Subscribe(
            topics=topic_list, group=group, mode=stave_pb2.CONSUME_MODE_QUEUE, queue=options
        )
        if from_beginning:
            subscribe.earliest = True
        else:
            subscribe.latest = True
        self.group = group
        self._closed = False
        # Guarded by _lock (the base class's): deliveries of the current stream not yet
        # settled by ack/release/reject; settlements waiting for the sender; Settle
        # messages sent and not answered, by id.
        self._deliveries: set[_Delivery] = set()
        self._waiting: list[_Settlement] = []
        self._flush_queued = False
        self._in_flight: dict[int, list[_Settlement]] = {}
        self._settle_id = 0
        # False from a stream's end until the next one opens: settlements fail at once.
        self._stream_live = False
        super().__init__(
            bootstrap,
            subscribe,
            credit_records=credit,
            on_assign=None,
            on_revoke=None,
            reconnect_timeout_s=reconnect_timeout_ms / 1000,
        )

    # ------------------------------------------------------------------------- settle

    def ack(self, record: QueueRecord) -> Future:
        """Done with ``record``: it is never delivered again."""
        return self._settle(record, stave_pb2.SETTLE_ACK)

    def release(self, record: QueueRecord, delay_ms: int = 0, reason: str = "") -> Future:
        """Deliver ``record`` again (to any member), now or after ``delay_ms``; past the
        group's ``max_deliveries`` it goes to the dead-letter topic instead, with
        ``reason`` (cut to 1 KiB of UTF-8). ``delay_ms``: at most one day."""
        if not 0 <= delay_ms <= DELAY_MS_MAX:
            raise ValueError(f"delay_ms must be 0 to {DELAY_MS_MAX} (one day), not {delay_ms}")
        return self._settle(record, stave_pb2.SETTLE_RELEASE, delay_ms=delay_ms, reason=reason)

    def reject(self, record: QueueRecord, reason: str = "") -> Future:
        """Send ``record`` to the dead-letter topic ``_dlq.{group}.{topic}`` now, with
        ``reason`` in its ``stave-dlq-reason`` header (cut to 1 KiB of UTF-8)."""
        return self._settle(record, stave_pb2.SETTLE_REJECT, reason=reason)

    def extend(self, record: QueueRecord) -> Future:
        """Keep ``record`` locked to this member for another lock period from now."""
        return self._settle(record, stave_pb2.SETTLE_EXTEND)

    def _settle(self, record: QueueRecord, action: int, *, delay_ms: int = 0, reason: str = "") -> Future:
        if not isinstance(record, QueueRecord):
            raise TypeError("settle a QueueRecord this consumer returned")
        future: Future = Future()
        message = stave_pb2.Settlement(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            delivery_count=record.delivery_count,
            action=action,
            delay_ms=delay_ms,
            reason=_reason_within_bounds(reason),
        )
        with self._lock:
            requests = self._requests
            if requests is None or self._closing:
                future.set_exception(StaveTransportError(
                    grpc.StatusCode.CANCELLED, "the consumer is closed"))
                return future
            if not self._stream_live:
                future.set_exception(StaveTransportError(
                    grpc.StatusCode.UNAVAILABLE, "the stream is reconnecting"))
                return future
            self._waiting.append(_Settlement(_delivery_of(record), action, message, future))
            if not self._flush_queued:
                self._flush_queued = True
                requests.put(_FLUSH)
        return future

    def _requests_of(self, requests: queue.SimpleQueue) -> Iterator[stave_pb2.ConsumeRequest]:
        # Runs in gRPC's sending thread: settlements queued while it sent the last message
        # go out together.
        while True:
            item = requests.get()
            if item is None:
                return
            if item is not _FLUSH:
                yield item
                continue
            message = self._next_settle(requests)
            if message is not None:
                yield message

    def _next_settle(self, requests: queue.SimpleQueue) -> stave_pb2.ConsumeRequest | None:
        """The settlements waiting (up to the per-message cap) as one Settle, registered as
        in flight; None if there are none, or the stream of ``requests`` is over."""
        with self._lock:
            if requests is not self._requests or not self._stream_live:
                return None  # _stream_ended fails what waits
            batch = self._waiting[:SETTLEMENTS_PER_MESSAGE_MAX]
            del self._waiting[:SETTLEMENTS_PER_MESSAGE_MAX]
            if self._waiting:
                requests.put(_FLUSH)
            else:
                self._flush_queued = False
            if not batch:
                return None
            self._settle_id += 1
            self._in_flight[self._settle_id] = batch
            return stave_pb2.ConsumeRequest(settle=stave_pb2.Settle(
                id=self._settle_id, settlements=[s.message for s in batch]))

    def _settled(self, answer) -> None:
        """A Settled answer (the reader thread): completes its settlements, and grants one
        record of credit for each delivery held that an ack, release or reject ended."""
        results = answer.results
        with self._lock:
            batch = self._in_flight.pop(answer.id, None)
            if batch is None:
                return
            granted = 0
            for settlement in batch:
                if settlement.action == stave_pb2.SETTLE_EXTEND:
                    continue
                if settlement.delivery in self._deliveries:
                    self._deliveries.discard(settlement.delivery)
                    granted += 1
            if granted and self._requests is not None and not self._closing:
                self._requests.put(stave_pb2.ConsumeRequest(
                    credit=stave_pb2.Credit(records=granted)))
        for settlement, error in zip(batch, _outcomes(results, len(batch))):
            if error is not None:
                settlement.future.set_exception(error)
            else:
                settlement.future.set_result(None)

    # ------------------------------------------------------------------------- stream

    def _convert_records(self, message) -> list[QueueRecord]:
        records = _queue_records_of(message)
        with self._lock:
            self._deliveries.update(_delivery_of(r) for r in records)
        return records

    def _stream_ended(self, error: StaveError) -> None:
        # The node released what the stream held; settlements not answered are lost with it.
        with self._lock:
            self._stream_live = False
            self._deliveries.clear()
            failed = [s for batch in self._in_flight.values() for s in batch] + self._waiting
            self._in_flight.clear()
            self._waiting = []
            self._flush_queued = False
        for settlement in failed:
            settlement.future.set_exception(error)

    def _stream_opened(self) -> None:
        with self._lock:
            self._stream_live = True

    def _took(self, record) -> None:
        """Credit comes back with settlements, not as records are taken."""

    def _maybe_grant(self) -> None:
        """Credit comes back with settlements, not as records are taken."""

    def _may_reconnect(self) -> bool:
        return True

    # ------------------------------------------------------------------------- close

    def close(self, timeout: float = 10.0) -> None:
        """Waits (up to ``timeout`` seconds) for the settlements already made to be answered,
        then ends the stream: the node releases every record still held (delivered again at
        once, to other members). Safe to call from another thread: an iteration in progress
        ends."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = [s.future for s in self._waiting]
            pending += [s.future for batch in self._in_flight.values() for s in batch]
        for future in pending:
            try:
                future.exception(max(0.0, deadline - time.monotonic()))
            except FutureTimeoutError:
                log.warning("settlements not answered within %g s of close", timeout)
                break
        self._close_stream(max(0.1, deadline - time.monotonic()))


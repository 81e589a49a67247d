"""Consumer (a group's member) and PartitionReader (no group), both on the Consume stream."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Callable, Iterator, Sequence

import grpc

from stave._connection import Connection, backoff_s
from stave._proto.stave.v1 import stave_pb2
from stave.errors import ErrorCode, StaveError, StaveTransportError
from stave.types import Record, TopicPartition

log = logging.getLogger("stave.consumer")

AssignmentCallback = Callable[[list[TopicPartition]], None]

# Items the reader thread hands to the application's thread, besides lists of records.
_ASSIGNMENT = "assignment"
_ERROR = "error"
_END = "end"


def _records_of(message) -> list[Record]:
    out = []
    append = out.append
    for r in message.records:
        headers = r.headers
        append(
            Record(
                r.topic,
                r.partition,
                r.offset,
                r.timestamp_ms,
                r.key if r.HasField("key") else None,
                r.value,
                [(h.key, h.value) for h in headers] if headers else [],
            )
        )
    return out


def _partitions_of(offsets) -> list[TopicPartition]:
    return [TopicPartition(o.topic, o.partition, o.offset) for o in offsets]


class _ConsumeStream:
    """A Consume stream: a request queue, a reader thread that turns answers into items of a
    queue, and the application side that takes records and grants credit as it goes."""

    def __init__(
        self,
        bootstrap: str | Sequence[str],
        subscribe: stave_pb2.Subscribe,
        *,
        credit_records: int,
        on_assign: AssignmentCallback | None,
        on_revoke: AssignmentCallback | None,
        reconnect_timeout_s: float,
    ) -> None:
        if credit_records < 1:
            raise ValueError("credit_records must be at least 1")
        self._conn = Connection(bootstrap)
        self._subscribe = subscribe
        self._credit_records = credit_records
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._reconnect_timeout_s = reconnect_timeout_s

        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Guarded by _lock (written by the reader thread):
        self._held: set[tuple[str, int]] = set()
        self._commits: dict[int, Future] = {}
        self._requests: queue.SimpleQueue | None = None
        self._call = None
        self._closing = False

        # The application's side (one thread):
        self._batch: list[Record] = []
        self._index = 0
        self._taken_ungranted = 0
        self._positions: dict[tuple[str, int], int] = {}
        self._assignment: dict[tuple[str, int], TopicPartition] = {}
        self._ended = False
        self._commit_id = 0

        self._open()
        self._reader = threading.Thread(target=self._run_reader, name="stave-consumer", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------------- records

    def poll(self, timeout: float | None = None) -> Record | None:
        """The next record, waiting at most ``timeout`` seconds (None: until one comes or
        the consumer is closed). Returns None when the time passed or the consumer closed.
        Assignment callbacks run here, in the caller's thread. Raises StaveError when the
        stream failed for good."""
        index = self._index
        batch = self._batch
        if index < len(batch):
            record = batch[index]
            self._index = index + 1
            self._took(record)
            return record
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._ended:
                return None
            try:
                if deadline is None:
                    item = self._items.get()
                else:
                    item = self._items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if type(item) is list:
                if item:
                    self._batch = item
                    self._index = 1
                    record = item[0]
                    self._took(record)
                    return record
            else:
                self._handle(item)

    def poll_many(self, max_records: int = 1000, timeout: float | None = 0.0) -> list[Record]:
        """Up to ``max_records`` records: those already received, or, if there are none,
        the first to come within ``timeout`` seconds (None: no limit) and those with it."""
        out: list[Record] = []
        while len(out) < max_records:
            batch = self._batch
            index = self._index
            if index < len(batch):
                end = min(len(batch), index + max_records - len(out))
                taken = batch[index:end]
                self._index = end
                positions = self._positions
                for record in taken:
                    positions[(record.topic, record.partition)] = record.offset + 1
                self._taken_ungranted += len(taken)
                self._maybe_grant()
                out.extend(taken)
                continue
            record = self.poll(timeout if not out else 0.0)
            if record is None:
                break
            out.append(record)
        return out

    def __iter__(self) -> Iterator[Record]:
        """Records as they come, until the consumer is closed (from another thread, or by
        breaking out and calling close)."""
        while True:
            record = self.poll(None)
            if record is None:
                return
            yield record

    def _took(self, record: Record) -> None:
        self._positions[(record.topic, record.partition)] = record.offset + 1
        self._taken_ungranted += 1
        if self._taken_ungranted * 2 >= self._credit_records:
            self._maybe_grant()
        self._after_take()

    def _after_take(self) -> None:
        """Hook for auto-commit."""

    def _maybe_grant(self) -> None:
        if self._taken_ungranted * 2 >= self._credit_records:
            self._send(stave_pb2.ConsumeRequest(
                credit=stave_pb2.Credit(records=self._taken_ungranted)))
            self._taken_ungranted = 0

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == _ASSIGNMENT:
            _, assigned, revoked, lost = item
            gone = revoked + lost
            if gone:
                for tp in gone:
                    self._assignment.pop((tp.topic, tp.partition), None)
                if self._on_revoke is not None:
                    self._on_revoke(gone)
            if assigned:
                for tp in assigned:
                    self._assignment[(tp.topic, tp.partition)] = tp
                    # Read from the group's offset now: an old position is not ours to commit.
                    self._positions.pop((tp.topic, tp.partition), None)
                if self._on_assign is not None:
                    self._on_assign(assigned)
        elif kind == _ERROR:
            self._ended = True
            raise item[1]
        elif kind == _END:
            self._ended = True

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads now, as the callbacks reported them, each with
        the offset it started from."""
        return sorted(self._assignment.values())

    def positions(self) -> dict[tuple[str, int], int]:
        """Per ``(topic, partition)``, the offset after the last record returned."""
        return dict(self._positions)

    # ------------------------------------------------------------------------- stream

    def _open(self) -> None:
        stub, generation = self._conn.stub()
        requests: queue.SimpleQueue = queue.SimpleQueue()
        requests.put(stave_pb2.ConsumeRequest(subscribe=self._subscribe))
        requests.put(stave_pb2.ConsumeRequest(
            credit=stave_pb2.Credit(records=self._credit_records)))
        call = stub.Consume(self._requests_of(requests))
        with self._lock:
            if self._requests is not None:
                self._requests.put(None)  # the failed stream's request iterator ends
            self._requests = requests
            self._call = call
            self._generation = generation
        self._stream_opened()

    def _requests_of(self, requests: queue.SimpleQueue) -> Iterator[stave_pb2.ConsumeRequest]:
        """The stream's requests: what is put on ``requests``, until None."""
        return iter(requests.get, None)

    def _send(self, request: stave_pb2.ConsumeRequest) -> None:
        with self._lock:
            if self._requests is not None:
                self._requests.put(request)

    def _run_reader(self) -> None:
        attempt = 0
        failing_since = None
        while True:
            error = self._read_stream()
            if self._answered:  # the stream worked: a new failure gets its own time
                attempt = 0
                failing_since = None
            with self._lock:
                closing = self._closing
                held = [TopicPartition(t, p) for t, p in self._held]
                self._held.clear()
                pending = list(self._commits.values())
                self._commits.clear()
            ended = error or StaveTransportError(grpc.StatusCode.CANCELLED, "the stream ended")
            for future in pending:
                future.set_exception(ended)
            self._stream_ended(ended)
            if held:
                self._items.put((_ASSIGNMENT, [], [], held))
            if closing or error is None:
                self._items.put((_END,))
                return
            now = time.monotonic()
            failing_since = failing_since or now
            can_retry = (
                error.retriable
                and isinstance(error, StaveTransportError)
                and self._may_reconnect()
                and now - failing_since < self._reconnect_timeout_s
            )
            if not can_retry:
                self._items.put((_ERROR, error))
                return
            log.info("consume stream failed (%s); reconnecting", error)
            self._conn.rotate(self._generation)
            time.sleep(backoff_s(attempt, 0.1, 1.0))
            attempt += 1
            with self._lock:
                if self._closing:
                    self._items.put((_END,))
                    return
            self._open()

    def _may_reconnect(self) -> bool:
        return False

    def _convert_records(self, message) -> list[Record]:
        """The records of a Records message (the reader thread)."""
        return _records_of(message)

    def _stream_opened(self) -> None:
        """Hook: a stream was opened (its subscribe and first credit are queued)."""

    def _stream_ended(self, error: StaveError) -> None:
        """Hook: a stream ended (before any new one opens); ``error`` says why."""

    def _settled(self, answer) -> None:
        """Hook: a Settled answer (queue mode)."""

    def _read_stream(self) -> StaveError | None:
        """Reads the current stream until it ends. Returns why it failed (None: it ended
        because we closed it)."""
        call = self._call
        items = self._items
        self._answered = False
        try:
            for response in call:
                self._answered = True
                kind = response.WhichOneof("response")
                if kind == "records":
                    items.put(self._convert_records(response.records))
                elif kind == "assignment":
                    self._assignment_changed(response.assignment)
                elif kind == "committed":
                    self._committed(response.committed)
                elif kind == "settled":
                    self._settled(response.settled)
                elif kind == "error":
                    return None if self._closing else StaveError.from_proto(response.error)
            return None if self._closing else StaveTransportError(
                grpc.StatusCode.UNAVAILABLE, "the node ended the stream")
        except grpc.RpcError as err:
            if self._closing:
                return None
            return StaveTransportError.from_rpc_error(err)

    def _assignment_changed(self, change) -> None:
        assigned = _partitions_of(change.assigned)
        revoked = _partitions_of(change.revoked)
        lost = _partitions_of(change.lost)
        with self._lock:
            for tp in revoked + lost:
                self._held.discard((tp.topic, tp.partition))
            for tp in assigned:
                self._held.add((tp.topic, tp.partition))
        self._items.put((_ASSIGNMENT, assigned, revoked, lost))

    def _committed(self, answer) -> None:
        with self._lock:
            future = self._commits.pop(answer.id, None)
        if future is None:
            return
        if answer.error.code != ErrorCode.NONE:
            future.set_exception(StaveError.from_proto(answer.error))
        else:
            future.set_result(None)

    # ------------------------------------------------------------------------- commit

    def _commit_async(self) -> Future | None:
        """Sends a commit of every position taken of a partition held; None if there is
        nothing to commit."""
        future: Future = Future()
        with self._lock:
            offsets = [
                stave_pb2.CommitOffset(topic=t, partition=p, offset=o)
                for (t, p), o in list(self._positions.items())
                if (t, p) in self._held
            ]
            if not offsets or self._requests is None:
                return None
            self._commit_id += 1
            self._commits[self._commit_id] = future
            self._requests.put(stave_pb2.ConsumeRequest(
                commit=stave_pb2.Commit(id=self._commit_id, offsets=offsets)))
        return future

    def _commit_sync(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for attempt in range(3):
            future = self._commit_async()
            if future is None:
                return
            try:
                future.result(max(0.0, deadline - time.monotonic()))
                return
            except FutureTimeoutError:
                raise StaveError(ErrorCode.REQUEST_TIMED_OUT,
                                 f"commit not answered within {timeout:g} s") from None
            except StaveError as err:
                # A partition revoked while the commit travelled: commit the rest again.
                if err.code != ErrorCode.INVALID_REQUEST or attempt == 2:
                    raise

    # ------------------------------------------------------------------------- close

    def _close_stream(self, timeout: float = 10.0) -> None:
        with self._lock:
            pending = list(self._commits.values())
        # Let commits on their way be answered (auto-commit) before the stream goes.
        deadline = time.monotonic() + timeout
        for future in pending:
            try:
                future.result(max(0.0, deadline - time.monotonic()))
            except (StaveError, FutureTimeoutError):
                pass
        with self._lock:
            self._closing = True
            call = self._call
            requests = self._requests
            self._requests = None
        if requests is not None:
            # The node ends a stream that subscribes twice at once, and leaves the group.
            # (A half-closed stream is served until its credits are used up, and nodes
            # before f8f4994 kept a cancelled one as a member until they next pushed to it.)
            requests.put(stave_pb2.ConsumeRequest(subscribe=self._subscribe))
            requests.put(None)  # half-close: ends the request iterator
        self._reader.join(max(0.0, deadline - time.monotonic()))
        if call is not None:
            call.cancel()
        self._reader.join()
        self._conn.close()
        self._ended = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # type: ignore[attr-defined]


class Consumer(_ConsumeStream):
    """A member of consumer group ``group``, reading its share of ``topics``.

    ``topics``: names or patterns of dot-separated words (``orders.*``: one word,
    ``orders.#``: any number); with a group, topics created later that match join by
    themselves. ``from_beginning``: where to start in partitions the group never committed
    (True: the earliest record, False: only new records).

    Offsets are committed by :meth:`commit` (what this consumer returned so far), by
    ``auto_commit`` (the same, every ``auto_commit_interval_ms`` while the application polls)
    and by :meth:`close`. Only records the application took are committed, never records
    buffered here, so a consumer that stops reads from where it stopped (records taken after
    the last commit come again: at-least-once).

    ``on_assign(partitions)`` and ``on_revoke(partitions)`` run in the thread that polls,
    before the next record is returned; the ``TopicPartition`` s carry the offset reading
    starts from (assigned) or stopped at (revoked). Partitions are revoked by the node
    (another member joined, or the stream failed): records of them already received may
    still be returned, but can no longer be committed by this member.

    ``credit_records``: how many records the node may send ahead of the application.
    A consumer whose connection fails joins again (``reconnect_timeout_ms``); its partitions
    are revoked, then assigned anew.
    """

    def __init__(
        self,
        bootstrap: str | Sequence[str] = "127.0.0.1:7070",
        group: str = "",
        topics: str | Sequence[str] = (),
        from_beginning: bool = False,
        auto_commit: bool = False,
        on_assign: AssignmentCallback | None = None,
        on_revoke: AssignmentCallback | None = None,
        *,
        auto_commit_interval_ms: float = 5_000,
        credit_records: int = 1_000,
        reconnect_timeout_ms: float = 30_000,
    ) -> None:
        if not group:
            raise ValueError("a Consumer needs a group (use PartitionReader to read without one)")
        topic_list = [topics] if isinstance(topics, str) else list(topics)
        if not topic_list:
            raise ValueError("a Consumer needs at least one topic or pattern")
        subscribe = stave_pb2.Subscribe(topics=topic_list, group=group)
        if from_beginning:
            subscribe.earliest = True
        else:
            subscribe.latest = True
        self.group = group
        self._auto_commit_s = auto_commit_interval_ms / 1000 if auto_commit else None
        self._next_auto_commit = time.monotonic() + (self._auto_commit_s or 0)
        self._closed = False
        super().__init__(
            bootstrap,
            subscribe,
            credit_records=credit_records,
            on_assign=on_assign,
            on_revoke=on_revoke,
            reconnect_timeout_s=reconnect_timeout_ms / 1000,
        )

    def commit(self, timeout: float = 10.0) -> None:
        """Commits, for every partition held, the offset after the last record returned;
        waits for the node's answer. Raises StaveError if it refused."""
        self._commit_sync(timeout)

    def close(self, timeout: float = 10.0, *, commit: bool = True) -> None:
        """Commits what was returned (see :meth:`commit`; not with ``commit=False``), leaves
        the group (its partitions go to the other members at once) and stops. A failed
        commit is logged. Safe to call from another thread: an iteration in progress ends."""
        if self._closed:
            return
        self._closed = True
        if commit and not self._ended:
            try:
                self._commit_sync(timeout)
            except StaveError as err:
                log.warning("commit at close failed: %s", err)
        self._close_stream(timeout)

    def _after_take(self) -> None:
        if self._auto_commit_s is not None and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self._auto_commit_s
            future = self._commit_async()
            if future is not None:
                future.add_done_callback(_log_commit_failure)

    def _may_reconnect(self) -> bool:
        return True


def _log_commit_failure(future: Future) -> None:
    err = future.exception()
    if err is not None:
        log.warning("auto-commit failed: %s", err)


class PartitionReader(_ConsumeStream):
    """Reads partitions of ``topic`` without a group: all of them, or ``partitions``.

    Starts at ``offset`` (an int, ``"earliest"`` or ``"latest"``) or, when ``timestamp_ms``
    is given, at each partition's first record at or after that time (epoch milliseconds). A
    position outside a partition's records moves to its log start. Nothing is committed;
    :meth:`positions` tells where to start a new reader to go on. A reader whose connection
    fails raises the error from ``poll``.
    """

    def __init__(
        self,
        bootstrap: str | Sequence[str] = "127.0.0.1:7070",
        topic: str = "",
        partitions: Sequence[int] | None = None,
        offset: int | str = "earliest",
        timestamp_ms: int | None = None,
        *,
        credit_records: int = 1_000,
    ) -> None:
        if not topic:
            raise ValueError("a PartitionReader needs a topic")
        subscribe = stave_pb2.Subscribe(topics=[topic], partitions=list(partitions or []))
        if timestamp_ms is not None:
            subscribe.timestamp_ms = timestamp_ms
        elif offset == "earliest":
            subscribe.earliest = True
        elif offset == "latest":
            subscribe.latest = True
        elif isinstance(offset, int) and offset >= 0:
            subscribe.offset = offset
        else:
            raise ValueError(f"offset must be an int >= 0, 'earliest' or 'latest', not {offset!r}")
        self.topic = topic
        self._closed = False
        super().__init__(
            bootstrap,
            subscribe,
            credit_records=credit_records,
            on_assign=None,
            on_revoke=None,
            reconnect_timeout_s=0.0,
        )

    def close(self) -> None:
        """Stops reading."""
        if self._closed:
            return
        self._closed = True
        self._close_stream()

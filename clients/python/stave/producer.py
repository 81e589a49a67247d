"""Producer: publishes records through the node's record face (PublishStream)."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Iterable, Mapping, NamedTuple, Sequence, Union

import grpc

from stave._connection import Connection, backoff_s
from stave._proto.stave.v1 import stave_pb2
from stave._uuid7 import uuid7_many
from stave.errors import ErrorCode, StaveError, StaveTransportError
from stave.types import RecordMetadata

log = logging.getLogger("stave.producer")

BytesLike = Union[bytes, bytearray, memoryview, str]
Headers = Union[Mapping[str, BytesLike], Sequence[tuple[str, BytesLike]], None]

#: The most records one Publish request may carry.
REQUEST_RECORDS_MAX = 10_000
# Bytes a record costs in a request beyond its key, value, headers and topic (tags, lengths).
_RECORD_OVERHEAD_BYTES = 24


class ProducerRecord(NamedTuple):
    """A record to publish with :meth:`Producer.publish_batch` (a plain tuple
    ``(topic, value)``, ``(topic, value, key)``, ... works as well)."""

    topic: str
    value: BytesLike
    key: BytesLike | None = None
    headers: Headers = None
    partition: int | None = None
    timestamp_ms: int | None = None


class BatchPublishError(StaveError):
    """Some records of a :meth:`Producer.publish_batch` failed. ``code`` and ``message`` are
    the first failure's; ``results`` has, for every record in order, its RecordMetadata or
    its StaveError."""

    def __init__(self, results: list[RecordMetadata | StaveError]) -> None:
        self.results = results
        errors = [r for r in results if isinstance(r, StaveError)]
        first = errors[0]
        super().__init__(
            first.code,
            f"{len(errors)} of {len(results)} records failed, the first: {first.message}",
            leader_addr=first.leader_addr,
        )

    @property
    def retriable(self) -> bool:
        return all(r.retriable for r in self.results if isinstance(r, StaveError))

    def __reduce__(self):
        return (self.__class__, (self.results,))


def _to_bytes(value: BytesLike, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


def _header_list(headers: Headers) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for key, value in pairs:
        if not isinstance(key, str):
            raise TypeError(f"a header key must be str, not {type(key).__name__}")
        out.append((key, _to_bytes(value, f"header {key!r}")))
    return out


class _PublishFuture(Future):
    """The Future of one published record: it cannot be cancelled (the record may be on its
    way already), so its outcome always arrives."""

    def cancel(self) -> bool:
        return False


class _BatchSink:
    """Collects the outcomes of one publish_batch call."""

    __slots__ = ("results", "remaining", "lock", "done")

    def __init__(self, count: int) -> None:
        self.results: list = [None] * count
        self.remaining = count
        self.lock = threading.Lock()
        self.done = threading.Event()
        if count == 0:
            self.done.set()

    def set(self, index: int, outcome) -> None:
        self.results[index] = outcome
        self.settled(1)

    def settled(self, count: int) -> None:
        """``count`` more outcomes were stored in ``results``."""
        with self.lock:
            self.remaining -= count
            if self.remaining == 0:
                self.done.set()


class _Pending:
    """A record on its way: what to send, where its outcome goes, and its retry state."""

    __slots__ = (
        "topic", "key", "value", "headers", "partition", "timestamp_ms", "id", "size",
        "sink", "index", "deadline", "attempts", "last_error", "unknown_topic_until", "urgent",
    )

    def __init__(self, topic, key, value, headers, partition, timestamp_ms, id_, sink, index,
                 deadline, urgent):
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
        self.timestamp_ms = timestamp_ms
        self.id = id_
        size = len(value) + len(topic) + _RECORD_OVERHEAD_BYTES
        if key is not None:
            size += len(key)
        for k, v in headers:
            size += len(k) + len(v) + 4
        self.size = size
        self.sink = sink  # a Future, or a _BatchSink with `index`
        self.index = index
        self.deadline = deadline
        self.attempts = 0
        self.last_error: StaveError | None = None
        self.unknown_topic_until = 0.0
        self.urgent = urgent

    def resolve(self, outcome) -> None:
        sink = self.sink
        if isinstance(sink, _BatchSink):
            sink.set(self.index, outcome)
        elif isinstance(outcome, BaseException):
            sink.set_exception(outcome)
        else:
            sink.set_result(outcome)


class _Stream:
    """One PublishStream call: requests go in through a queue, a thread reads answers."""

    def __init__(self, stub, generation: int) -> None:
        self.generation = generation
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.call = stub.PublishStream(iter(self.requests.get, None))
        self.failed = False
        self.cancelled_by_us = False


class Producer:
    """Publishes records to Stave topics.

    ``publish`` queues one record and returns a Future; a background thread gathers queued
    records into requests (sent at once when ``batch_records`` or ``batch_bytes`` are
    reached, else after ``linger_ms``) on one PublishStream, with up to ``max_in_flight``
    requests outstanding. ``publish_batch`` sends many records and waits for them.

    Every record gets a message id (a UUIDv7 in its ``id`` header) unless it has one: a
    record retried after a retriable error (NOT_LEADER, LEADER_NOT_AVAILABLE,
    REQUEST_TIMED_OUT, DUPLICATE_IN_FLIGHT, STORAGE_FULL, a broken connection, and for
    ``unknown_topic_retry_ms`` UNKNOWN_TOPIC) is sent with the same id, so the node writes it
    once. Retries stop ``delivery_timeout_ms`` after ``publish``; the record then fails with
    the last error.

    ``bootstrap``: ``"host:port"``, several separated by commas, or a list; any node will do.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        bootstrap: str | Sequence[str] = "127.0.0.1:7070",
        *,
        linger_ms: float = 5.0,
        batch_records: int = 5_000,
        batch_bytes: int = 1024 * 1024,
        max_in_flight: int = 4,
        buffer_records: int = 100_000,
        delivery_timeout_ms: float = 30_000,
        request_timeout_ms: float = 15_000,
        unknown_topic_retry_ms: float = 2_000,
    ) -> None:
        if not 1 <= batch_records <= REQUEST_RECORDS_MAX:
            raise ValueError(f"batch_records must be in 1..{REQUEST_RECORDS_MAX}")
        self._conn = Connection(bootstrap)
        self._linger_s = linger_ms / 1000
        self._batch_records = batch_records
        self._batch_bytes = batch_bytes
        self._max_in_flight = max_in_flight
        self._buffer_records = buffer_records
        self._delivery_timeout_s = delivery_timeout_ms / 1000
        self._request_timeout_s = request_timeout_ms / 1000
        self._unknown_topic_retry_s = unknown_topic_retry_ms / 1000

        self._cond = threading.Condition()
        # Guarded by _cond:
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queue_since = 0.0  # when the oldest queued record arrived
        self._urgent = 0  # queued records of publish_batch calls: no lingering
        self._retry: list[tuple[float, _Pending]] = []  # (not before, record)
        self._inflight: collections.OrderedDict[int, tuple[list[_Pending], float]] = (
            collections.OrderedDict()
        )
        self._unfinished = 0  # records published and not resolved yet
        self._flushing = 0
        self._closed = False
        self._closed_hard = False  # everything left was failed: retry nothing more
        self._sequence = 0
        self._stream: _Stream | None = None

        self._sender = threading.Thread(target=self._run_sender, name="stave-producer", daemon=True)
        self._sender.start()

    # ----------------------------------------------------------------------------- public

    def publish(
        self,
        topic: str,
        value: BytesLike,
        key: BytesLike | None = None,
        headers: Headers = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> "Future[RecordMetadata]":
        """Queues one record; the Future resolves to its :class:`RecordMetadata`, or fails
        with a :class:`StaveError`. ``value``, ``key`` and header values are bytes or str
        (str is sent as UTF-8). ``headers``: a dict or a list of ``(key, value)`` pairs.
        ``partition`` skips routing by key or id. Blocks while ``buffer_records`` records
        are waiting to be sent. Raises RuntimeError once the producer is closed."""
        future = _PublishFuture()
        pending = self._pending(
            ProducerRecord(topic, value, key, headers, partition, timestamp_ms),
            None, future, 0, time.monotonic() + self._delivery_timeout_s, False,
        )
        self._enqueue([pending])
        return future

    def publish_batch(
        self, records: Iterable[ProducerRecord | tuple | Mapping]
    ) -> list[RecordMetadata]:
        """Publishes many records and waits for all of them; returns their metadata in
        order. Items are :class:`ProducerRecord` s, tuples in its field order, or dicts with
        its field names. Raises :class:`BatchPublishError` (a StaveError) if any record
        failed; its ``results`` tell which."""
        items = [self._as_record(r) for r in records]
        sink = _BatchSink(len(items))
        deadline = time.monotonic() + self._delivery_timeout_s
        # A request's worth at a time, so the first is on its way while the next is built.
        step = self._batch_records
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            ids = uuid7_many(len(chunk))
            self._enqueue([
                self._pending(record, ids[i], sink, start + i, deadline, True)
                for i, record in enumerate(chunk)
            ])
        sink.done.wait()
        if any(isinstance(r, StaveError) for r in sink.results):
            raise BatchPublishError(sink.results)
        return sink.results

    def flush(self, timeout: float | None = None) -> bool:
        """Sends every queued record at once and waits until all published records are
        resolved. Returns False if ``timeout`` (seconds) passed first."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._unfinished == 0, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        """Flushes (waiting at most ``timeout`` seconds, default: until every record is
        resolved, which the delivery timeout bounds), then stops. Records still unresolved
        fail."""
        self.flush(timeout)
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._sender.join()
        self._conn.close()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------- building

    @staticmethod
    def _as_record(record) -> ProducerRecord:
        if isinstance(record, ProducerRecord):
            return record
        if isinstance(record, Mapping):
            return ProducerRecord(**record)
        return ProducerRecord(*record)

    def _pending(self, record: ProducerRecord, id_, sink, index, deadline, urgent) -> _Pending:
        topic, value, key, headers, partition, timestamp_ms = record
        if not isinstance(topic, str):
            raise TypeError(f"topic must be str, not {type(topic).__name__}")
        if partition is not None and not (isinstance(partition, int) and 0 <= partition < 2**32):
            raise ValueError(f"partition must be an int in 0..2**32-1, not {partition!r}")
        if timestamp_ms is not None and not (
            isinstance(timestamp_ms, int) and -(2**63) <= timestamp_ms < 2**63
        ):
            raise ValueError(f"timestamp_ms must be a 64-bit int, not {timestamp_ms!r}")
        value = _to_bytes(value, "value")
        if key is not None:
            key = _to_bytes(key, "key")
        header_list = _header_list(headers)
        given = None
        for k, v in header_list:
            if k == "id":
                given = v
                break
        if given is not None:
            id_ = given.decode("utf-8", "replace")
        else:
            if id_ is None:
                id_ = uuid7_many(1)[0]
            header_list.append(("id", id_.encode("ascii")))
        return _Pending(topic, key, value, header_list, partition, timestamp_ms, id_, sink,
                        index, deadline, urgent)

    def _enqueue(self, pending: list[_Pending]) -> None:
        with self._cond:
            self._cond.wait_for(
                lambda: self._closed or len(self._queue) < self._buffer_records
            )
            if self._closed:
                raise RuntimeError("the producer is closed")
            was_empty = not self._queue
            if was_empty:
                self._queue_since = time.monotonic()
            self._queue.extend(pending)
            self._unfinished += len(pending)
            if pending[0].urgent:
                self._urgent += len(pending)
            # The sender waits for a first record, or lingers on a timer: wake it only when
            # that changes (waking it per record costs more than the record).
            filled = len(self._queue) >= self._batch_records > len(self._queue) - len(pending)
            if was_empty or pending[0].urgent or filled:
                self._cond.notify_all()

    @staticmethod
    def _request(sequence: int, items: list[_Pending]) -> stave_pb2.PublishRequest:
        request = stave_pb2.PublishRequest(sequence=sequence)
        add = request.records.add
        for it in items:
            record = add(topic=it.topic, value=it.value)
            if it.key is not None:
                record.key = it.key
            headers_add = record.headers.add
            for k, v in it.headers:
                headers_add(key=k, value=v)
            if it.partition is not None:
                record.partition = it.partition
            if it.timestamp_ms is not None:
                record.timestamp_ms = it.timestamp_ms
        return request

    # --------------------------------------------------------------------------- sender

    def _run_sender(self) -> None:
        try:
            while True:
                batch, sequence, stream = self._next_batch()
                if batch is None:
                    break
                stream.requests.put(self._request(sequence, batch))
        except BaseException:  # a bug: fail what is waiting rather than hang the callers
            log.exception("the producer's sender thread failed")
            self._fail_all(StaveError(ErrorCode.INTERNAL, "the producer's sender thread failed"))
            raise
        finally:
            self._shutdown()

    def _next_batch(self):
        """Waits for records to send and room in flight; takes a request's worth. Returns
        (None, 0, None) once closed with nothing left."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._expire(now)
                wait_s = self._check_inflight(now)
                if self._closed:
                    return None, 0, None
                if len(self._inflight) < self._max_in_flight:
                    ready_retry = self._retry and self._retry[0][0] <= now
                    if ready_retry or self._queue:
                        linger_left = self._linger_left(now)
                        if ready_retry or linger_left <= 0:
                            batch = self._take(now)
                            if batch:
                                stream = self._stream_locked()
                                self._sequence += 1
                                self._inflight[self._sequence] = (batch, now)
                                return batch, self._sequence, stream
                        else:
                            wait_s = min(wait_s, linger_left)
                    if self._retry:
                        wait_s = min(wait_s, max(0.0, self._retry[0][0] - now))
                self._cond.wait(wait_s)

    def _linger_left(self, now: float) -> float:
        if self._urgent or self._flushing or self._closed:
            return 0.0
        if len(self._queue) >= self._batch_records:
            return 0.0
        return self._queue_since + self._linger_s - now

    def _take(self, now: float) -> list[_Pending]:
        """Up to batch_records / batch_bytes records: due retries first, then the queue."""
        batch: list[_Pending] = []
        size = 0
        limit_records = self._batch_records
        limit_bytes = self._batch_bytes
        retry = self._retry
        taken = 0
        while taken < len(retry) and retry[taken][0] <= now and len(batch) < limit_records:
            item = retry[taken][1]
            if batch and size + item.size > limit_bytes:
                break
            taken += 1
            batch.append(item)
            size += item.size
        del retry[:taken]
        if size >= limit_bytes:
            return batch
        queue_ = self._queue
        while queue_ and len(batch) < limit_records:
            item = queue_[0]
            if batch and size + item.size > limit_bytes:
                break
            queue_.popleft()
            if item.urgent:
                self._urgent -= 1
            batch.append(item)
            size += item.size
        if queue_:
            self._queue_since = now - self._linger_s  # they waited: no more lingering
        self._cond.notify_all()  # room in the buffer for publish()
        return batch

    def _stream_locked(self) -> _Stream:
        stream = self._stream
        if stream is None or stream.failed:
            stub, generation = self._conn.stub()
            stream = _Stream(stub, generation)
            self._stream = stream
            threading.Thread(
                target=self._run_reader, args=(stream,), name="stave-producer-reader", daemon=True
            ).start()
        return stream

    def _check_inflight(self, now: float) -> float:
        """Cancels the stream when its oldest request went unanswered for the request
        timeout (its records are retried). Returns how long to wait at most."""
        if not self._inflight:
            return 1.0
        sent = next(iter(self._inflight.values()))[1]
        left = sent + self._request_timeout_s - now
        if left <= 0 and self._stream is not None and not self._stream.cancelled_by_us:
            self._stream.cancelled_by_us = True
            self._stream.call.cancel()
            return 0.05
        return max(0.01, min(1.0, left))

    def _expire(self, now: float) -> None:
        """Fails retries whose delivery timeout passed."""
        if not self._retry:
            return
        keep = []
        for ready, item in self._retry:
            if item.deadline <= now:
                self._resolve_locked(item, item.last_error or StaveError(
                    ErrorCode.REQUEST_TIMED_OUT, "delivery timeout passed"))
            else:
                keep.append((ready, item))
        self._retry = keep

    # --------------------------------------------------------------------------- reader

    def _run_reader(self, stream: _Stream) -> None:
        error: StaveError | None = None
        try:
            for response in stream.call:
                with self._cond:
                    batch, _ = self._inflight.pop(response.sequence)
                    self._cond.notify_all()
                self._answer(batch, response.results)
        except grpc.RpcError as err:
            if stream.cancelled_by_us:
                error = StaveTransportError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no answer within {self._request_timeout_s:g} s",
                )
            else:
                error = StaveTransportError.from_rpc_error(err)
        except BaseException:
            log.exception("the producer's reader thread failed")
            error = StaveError(ErrorCode.INTERNAL, "the producer's reader thread failed")
        stream.requests.put(None)  # ends grpc's thread reading the request queue
        with self._cond:
            stream.failed = True
            if self._stream is stream:
                self._stream = None
            if error is None:
                error = StaveTransportError(grpc.StatusCode.UNAVAILABLE, "the stream ended")
            lost = [item for batch, _ in self._inflight.values() for item in batch]
            self._inflight.clear()
            self._cond.notify_all()
        if lost:
            if error.retriable:
                self._conn.rotate(stream.generation)
            log.info("publish stream failed (%s); %d records to retry", error, len(lost))
            self._retry_or_fail(lost, error)

    def _answer(self, batch: list[_Pending], results) -> None:
        if len(results) != len(batch):
            error = StaveError(
                ErrorCode.INTERNAL,
                f"the node answered {len(results)} results for {len(batch)} records",
            )
            self._retry_or_fail(batch, error, retriable=False)
            return
        retry: list[_Pending] = []
        written = 0
        sinks: dict[_BatchSink, int] = {}  # outcomes stored per publish_batch, counted once
        for item, result in zip(batch, results):
            if result.error.code == 0:
                meta = RecordMetadata(item.topic, result.partition, result.offset,
                                      result.duplicate, result.id or item.id)
                sink = item.sink
                if type(sink) is _BatchSink:
                    sink.results[item.index] = meta  # each index is written once
                    sinks[sink] = sinks.get(sink, 0) + 1
                else:
                    sink.set_result(meta)
                written += 1
            else:
                item.last_error = StaveError.from_proto(result.error)
                retry.append(item)
        for sink, count in sinks.items():
            sink.settled(count)
        if retry:
            self._retry_or_fail(retry, None)
        with self._cond:
            self._unfinished -= written
            if self._unfinished == 0:
                self._cond.notify_all()

    def _retry_or_fail(self, items: list[_Pending], error: StaveError | None,
                       retriable: bool | None = None) -> None:
        """Schedules ``items`` for another try, or fails those that may not: ``error`` is
        every item's (None: each item's own ``last_error``)."""
        now = time.monotonic()
        with self._cond:
            for item in items:
                if error is not None:
                    item.last_error = error
                err = item.last_error
                ok = err.retriable if retriable is None else retriable
                pause = backoff_s(item.attempts)
                if err.code == ErrorCode.UNKNOWN_TOPIC and retriable is None:
                    if item.attempts == 0:
                        item.unknown_topic_until = now + self._unknown_topic_retry_s
                    ok = now + pause < item.unknown_topic_until
                elif err.code == ErrorCode.STORAGE_FULL:
                    pause = max(pause, 1.0)
                if ok and not self._closed_hard and now + pause < item.deadline:
                    item.attempts += 1
                    self._retry.append((now + pause, item))
                else:
                    self._resolve_locked(item, err)
            self._retry.sort(key=lambda pair: pair[0])
            self._cond.notify_all()

    def _resolve_locked(self, item: _Pending, outcome) -> None:
        item.resolve(outcome)
        self._unfinished -= 1
        self._cond.notify_all()

    def _fail_all(self, error: StaveError) -> None:
        with self._cond:
            self._closed_hard = True
            items = list(self._queue) + [i for _, i in self._retry]
            items += [i for batch, _ in self._inflight.values() for i in batch]
            self._queue.clear()
            self._retry.clear()
            self._inflight.clear()
            for item in items:
                self._resolve_locked(item, error)

    def _shutdown(self) -> None:
        with self._cond:
            self._closed = True  # publish() refuses from now on, even if the thread failed
            stream = self._stream
            self._stream = None
        if stream is not None:
            stream.requests.put(None)  # half-close: the node answers what it has, then ends
        self._fail_all(StaveError(ErrorCode.REQUEST_TIMED_OUT, "the producer was closed"))
        if stream is not None:
            stream.call.cancel()

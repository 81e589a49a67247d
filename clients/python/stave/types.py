"""Values the client hands back: record metadata, records, partitions, topic descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class RecordMetadata(NamedTuple):
    """Where a published record went.

    ``duplicate`` is true when the record's id had been written before (a retry): nothing was
    written, and ``partition``/``offset`` are the first write's.
    """

    topic: str
    partition: int
    offset: int
    duplicate: bool
    id: str


class TopicPartition(NamedTuple):
    """A partition of a topic, with an offset where one applies (assignment changes carry
    the offset the consumer reads from, or stopped at)."""

    topic: str
    partition: int
    offset: int = -1


class Record:
    """A record read from a topic. ``key`` is ``None`` when the record has no key;
    ``headers`` is a list of ``(key, value)`` pairs in their written order (keys may
    repeat; the first ``id`` header is the record's message id)."""

    __slots__ = ("topic", "partition", "offset", "timestamp_ms", "key", "value", "headers")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp_ms = timestamp_ms
        self.key = key
        self.value = value
        self.headers = headers

    @property
    def id(self) -> str | None:
        """The record's message id (its first ``id`` header), if it has one."""
        for k, v in self.headers:
            if k == "id":
                return v.decode("utf-8", "replace")
        return None

    def header(self, key: str) -> bytes | None:
        """The value of the first header named ``key``, or None."""
        for k, v in self.headers:
            if k == key:
                return v
        return None

    def __repr__(self) -> str:
        return (
            f"Record(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"timestamp_ms={self.timestamp_ms}, key={self.key!r}, value={self.value!r}, "
            f"headers={self.headers!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


class QueueRecord(Record):
    """A record delivered by a queue group (:class:`stave.QueueConsumer`): a
    :class:`Record` with ``delivery_count`` (deliveries of it so far, this one included) and
    ``lock_deadline_ms`` (when its lock to this member expires, epoch milliseconds). Settle
    it with the consumer's ``ack``, ``release``, ``reject`` or ``extend``."""

    __slots__ = ("delivery_count", "lock_deadline_ms")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        delivery_count: int,
        lock_deadline_ms: int,
    ) -> None:
        super().__init__(topic, partition, offset, timestamp_ms, key, value, headers)
        self.delivery_count = delivery_count
        self.lock_deadline_ms = lock_deadline_ms

    def __repr__(self) -> str:
        return (
            f"QueueRecord(topic={self.topic!r}, partition={self.partition}, "
            f"offset={self.offset}, delivery_count={self.delivery_count}, "
            f"lock_deadline_ms={self.lock_deadline_ms}, timestamp_ms={self.timestamp_ms}, "
            f"key={self.key!r}, value={self.value!r}, headers={self.headers!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueueRecord):
            return NotImplemented
        return Record.__eq__(self, other) and (
            self.delivery_count, self.lock_deadline_ms
        ) == (other.delivery_count, other.lock_deadline_ms)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a topic: its leader (None while there is none), replicas in
    preference order, and the replicas in sync with the leader."""

    partition: int
    leader: int | None
    replicas: list[int]
    in_sync: list[int]


@dataclass(frozen=True)
class TopicDescription:
    """A topic: its partitions and every config setting (defaults included)."""

    name: str
    partitions: list[PartitionInfo]
    configs: dict[str, str] = field(default_factory=dict)

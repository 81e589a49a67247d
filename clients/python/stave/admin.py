"""Admin: create, describe, list and delete topics."""

from __future__ import annotations

import time
from typing import Mapping, Sequence

from stave._connection import Connection, backoff_s
from stave._proto.stave.v1 import stave_pb2
from stave.errors import ErrorCode, StaveError
from stave.types import PartitionInfo, TopicDescription


def _check(error) -> None:
    if error.code != ErrorCode.NONE:
        raise StaveError.from_proto(error)


def _partitions(partitions) -> list[PartitionInfo]:
    return [
        PartitionInfo(
            partition=p.partition,
            leader=p.leader if p.HasField("leader") else None,
            replicas=list(p.replicas),
            in_sync=list(p.in_sync),
        )
        for p in partitions
    ]


class Admin:
    """Topic administration against any node of ``bootstrap``.

    Each call retries a failed connection or a restarting node on the next address until
    ``timeout_ms`` passed, then raises :class:`StaveTransportError`; the node's refusals
    raise :class:`StaveError` with its code.
    """

    def __init__(
        self, bootstrap: str | Sequence[str] = "127.0.0.1:7070", *, timeout_ms: float = 10_000
    ) -> None:
        self._conn = Connection(bootstrap)
        self._timeout_s = timeout_ms / 1000

    def _call(self, method: str, request):
        return self._conn.call(method, request, timeout_s=self._timeout_s)

    def _retrying(self, attempt_fn, *, done_on_retry: ErrorCode | None = None) -> None:
        """Runs ``attempt_fn`` (which raises StaveError) again on retriable codes (the
        cluster still forming, the controller moving) until the admin timeout. A retry
        answered ``done_on_retry`` (TOPIC_EXISTS after a create, UNKNOWN_TOPIC after a
        delete) means an earlier try got through."""
        deadline = time.monotonic() + self._timeout_s
        attempt = 0
        while True:
            try:
                attempt_fn()
                return
            except StaveError as err:
                if attempt > 0 and err.code == done_on_retry:
                    return
                pause = backoff_s(attempt, 0.02, 0.5)
                if not err.retriable or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            attempt += 1

    def create_topic(
        self,
        name: str,
        partitions: int = 3,
        replication_factor: int | None = None,
        configs: Mapping[str, str] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Creates topic ``name``. ``replication_factor`` None: the smaller of 3 and the node
        count. ``configs``: topic settings such as ``{"retention.ms": "3600000"}``. With
        ``wait``, returns once every partition has a leader (so writes are taken at once).
        Raises StaveError (TOPIC_EXISTS, INVALID_TOPIC_NAME, RESERVED_TOPIC_NAME,
        INVALID_CONFIG, NOT_ENOUGH_NODES, ...)."""
        spec = stave_pb2.TopicSpec(
            name=name,
            partitions=partitions,
            replication_factor=replication_factor or 0,
            configs=[stave_pb2.ConfigEntry(key=k, value=str(v)) for k, v in (configs or {}).items()],
        )
        request = stave_pb2.CreateTopicsRequest(topics=[spec])

        def attempt() -> None:
            for result in self._call("CreateTopics", request).results:
                _check(result.error)

        self._retrying(attempt, done_on_retry=ErrorCode.TOPIC_EXISTS)
        if wait:
            self.wait_for_leaders(name)

    def wait_for_leaders(self, name: str, timeout: float | None = None) -> TopicDescription:
        """Waits until every partition of ``name`` has a leader (and the topic is known to
        the node: right after a create it may not be yet). Raises StaveError
        (LEADER_NOT_AVAILABLE, or UNKNOWN_TOPIC) when ``timeout`` (default: the admin
        timeout) passes first."""
        deadline = time.monotonic() + (self._timeout_s if timeout is None else timeout)
        attempt = 0
        while True:
            try:
                topic = self.describe_topic(name)
                if topic.partitions and all(p.leader is not None for p in topic.partitions):
                    return topic
                error = StaveError(ErrorCode.LEADER_NOT_AVAILABLE,
                                   f"topic {name!r} has partitions without a leader")
            except StaveError as err:
                if err.code != ErrorCode.UNKNOWN_TOPIC:
                    raise
                error = err
            pause = backoff_s(attempt, 0.01, 0.2)
            if time.monotonic() + pause > deadline:
                raise error
            time.sleep(pause)
            attempt += 1

    def describe_topic(self, name: str) -> TopicDescription:
        """Topic ``name``: partitions (leader, replicas, in sync) and every config setting.
        Raises StaveError (UNKNOWN_TOPIC)."""
        response = self._call("DescribeTopics", stave_pb2.DescribeTopicsRequest(names=[name]))
        for topic in response.topics:
            _check(topic.error)
            return TopicDescription(
                name=topic.name,
                partitions=_partitions(topic.partitions),
                configs={c.key: c.value for c in topic.configs},
            )
        raise StaveError(ErrorCode.UNKNOWN_TOPIC, f"topic {name!r} was not described")

    def list_topics(self) -> list[str]:
        """The names of every topic (internal ones excluded), sorted."""
        response = self._call("Metadata", stave_pb2.MetadataRequest())
        return sorted(t.name for t in response.topics)

    def delete_topic(self, name: str) -> None:
        """Deletes topic ``name`` and its records. Raises StaveError (UNKNOWN_TOPIC)."""
        request = stave_pb2.DeleteTopicsRequest(names=[name])

        def attempt() -> None:
            for result in self._call("DeleteTopics", request).results:
                _check(result.error)

        self._retrying(attempt, done_on_retry=ErrorCode.UNKNOWN_TOPIC)

    def close(self) -> None:
        """Closes the connection."""
        self._conn.close()

    def __enter__(self) -> "Admin":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

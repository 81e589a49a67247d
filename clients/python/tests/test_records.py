"""Publish and read back; bad input raises the server's ErrorCode."""

import time
import uuid

import pytest

import stave
from stave import ErrorCode, ProducerRecord
from conftest import poll_until


def sample_records(topic: str) -> list[ProducerRecord]:
    """Keys, no keys, empty values, binary bytes, repeated header keys, str and bytes."""
    return [
        ProducerRecord(topic, b"\x00\xffbinary\x80", b"k-\x00\x01", [("h1", b"\x00\x01\x02"), ("h1", b"again")]),
        ProducerRecord(topic, "text value é", "text key", {"trace": "t-1", "empty": b""}),
        ProducerRecord(topic, b"", None, None),
        ProducerRecord(topic, b"no key, headers", None, [("a", b"1"), ("b", b"2"), ("a", b"3")]),
        ProducerRecord(topic, b"empty key", b"", None),
        ProducerRecord(topic, bytes(range(256)) * 40, b"big", [("bin", bytes(range(256)))]),
    ]


def expected_bytes(record: ProducerRecord, meta: stave.RecordMetadata):
    enc = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
    headers = record.headers or []
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    pairs = [(k, enc(v)) for k, v in pairs] + [("id", meta.id.encode())]
    key = None if record.key is None else enc(record.key)
    return (meta.partition, meta.offset, key, enc(record.value), pairs)


def as_tuple(record: stave.Record):
    return (record.partition, record.offset, record.key, record.value, record.headers)


def test_publish_and_read_back_through_a_group_and_a_reader(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=3)
    records = sample_records(topic_name)
    with stave.Producer(bootstrap) as producer:
        metas = producer.publish_batch(records[:3])
        futures = [producer.publish(r.topic, r.value, r.key, r.headers) for r in records[3:]]
        metas += [f.result(timeout=30) for f in futures]
    assert all(not m.duplicate and m.topic == topic_name for m in metas)
    assert len({m.id for m in metas}) == len(metas)
    expected = sorted(expected_bytes(r, m) for r, m in zip(records, metas))

    with stave.Consumer(bootstrap, f"g-{uuid.uuid4().hex}", [topic_name], from_beginning=True) as consumer:
        [got] = poll_until([consumer], lambda c: len(c[0]) >= len(records), what="the records")
    assert sorted(as_tuple(r) for r in got) == expected
    assert all(r.topic == topic_name and r.timestamp_ms > 0 for r in got)

    with stave.PartitionReader(bootstrap, topic_name) as reader:
        [read] = poll_until([reader], lambda c: len(c[0]) >= len(records), what="the records")
    assert sorted(as_tuple(r) for r in read) == expected

    # Only some partitions, from an offset.
    first = next(m for m in metas if m.offset == 0)
    with stave.PartitionReader(bootstrap, topic_name, partitions=[first.partition], offset=1) as reader:
        n = sum(1 for m in metas if m.partition == first.partition) - 1
        if n:
            [part] = poll_until([reader], lambda c: len(c[0]) >= n, what="one partition")
            assert {r.partition for r in part} == {first.partition}
            assert min(r.offset for r in part) == 1


def test_reader_from_a_time(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=1)
    with stave.Producer(bootstrap) as producer:
        producer.publish_batch([(topic_name, f"old {i}", None, None, None, 1_000 + i) for i in range(5)])
        producer.publish_batch([(topic_name, f"new {i}", None, None, None, 2_000 + i) for i in range(5)])
    with stave.PartitionReader(bootstrap, topic_name, timestamp_ms=2_000) as reader:
        [got] = poll_until([reader], lambda c: len(c[0]) >= 5, what="the newer records")
    assert [r.value for r in got] == [f"new {i}".encode() for i in range(5)]
    assert [r.timestamp_ms for r in got] == [2_000 + i for i in range(5)]


def test_caller_ids_are_kept_and_a_repeat_is_a_duplicate(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=2)
    with stave.Producer(bootstrap) as producer:
        first = producer.publish(topic_name, b"v", headers={"id": "my-id-1"}).result(30)
        again = producer.publish(topic_name, b"v", headers={"id": "my-id-1"}).result(30)
    assert first.id == "my-id-1" and not first.duplicate
    assert again.duplicate and (again.partition, again.offset) == (first.partition, first.offset)


@pytest.mark.parametrize(
    "kwargs, code",
    [
        (dict(topic=""), ErrorCode.INVALID_TOPIC_NAME),
        (dict(topic="no-such-topic-anywhere"), ErrorCode.UNKNOWN_TOPIC),
        (dict(headers=[("", b"x")]), ErrorCode.INVALID_REQUEST),
        (dict(headers={"id": ""}), ErrorCode.INVALID_REQUEST),
        (dict(partition=99), ErrorCode.UNKNOWN_PARTITION),
        (dict(timestamp_ms=-5), ErrorCode.INVALID_REQUEST),
        (dict(topic="__offsets"), ErrorCode.INVALID_REQUEST),
    ],
)
def test_bad_publish_raises_the_server_code(admin, bootstrap, topic_name, kwargs, code):
    admin.create_topic(topic_name, partitions=2)
    args = dict(topic=topic_name, value=b"v")
    args.update(kwargs)
    started = time.monotonic()
    with stave.Producer(bootstrap, unknown_topic_retry_ms=300) as producer:
        with pytest.raises(stave.StaveError) as info:
            producer.publish(**args).result(timeout=30)
        assert info.value.code == code
        assert not info.value.retriable
        # In a batch: the good records are written, the bad one reported in place.
        with pytest.raises(stave.BatchPublishError) as batch_info:
            producer.publish_batch(
                [ProducerRecord(topic_name, b"ok"), ProducerRecord(**args), ProducerRecord(topic_name, b"ok")]
            )
    results = batch_info.value.results
    assert batch_info.value.code == code
    assert isinstance(results[1], stave.StaveError) and results[1].code == code
    assert isinstance(results[0], stave.RecordMetadata) and isinstance(results[2], stave.RecordMetadata)
    assert time.monotonic() - started < 10


def test_bad_consume_raises_the_server_code(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=2)
    with stave.PartitionReader(bootstrap, "no-such-topic-anywhere") as reader:
        with pytest.raises(stave.StaveError) as info:
            reader.poll(10)
    assert info.value.code == ErrorCode.UNKNOWN_TOPIC
    with stave.PartitionReader(bootstrap, topic_name, partitions=[7]) as reader:
        with pytest.raises(stave.StaveError) as info:
            reader.poll(10)
    assert info.value.code == ErrorCode.UNKNOWN_PARTITION
    with stave.Consumer(bootstrap, "g-bad", [""]) as consumer:
        with pytest.raises(stave.StaveError) as info:
            consumer.poll(10)
    assert info.value.code == ErrorCode.INVALID_REQUEST


def test_producer_publishes_many_records_in_order_per_partition(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=3)
    with stave.Producer(bootstrap, linger_ms=2, batch_records=500) as producer:
        futures = [producer.publish(topic_name, f"{i}", key=f"k{i % 7}") for i in range(5_000)]
        assert producer.flush(timeout=60)
        metas = [f.result() for f in futures]
    by_key: dict[str, list] = {}
    for i, meta in enumerate(metas):
        by_key.setdefault(f"k{i % 7}", []).append(meta)
    for key, ms in by_key.items():
        assert len({m.partition for m in ms}) == 1, key
        offsets = [m.offset for m in ms]
        assert offsets == sorted(offsets), key

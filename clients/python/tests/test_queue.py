"""Queue groups: members sharing a partition record by record, release, reject to the
dead-letter topic, a second ack refused."""

import time
import uuid

import pytest

import stave
from stave import ErrorCode

#: Bound on each wait for the node (records to arrive, a settlement to be answered).
WAIT_S = 20.0


def group_name() -> str:
    return f"q-{uuid.uuid4().hex[:12]}"


def publish(bootstrap, topic, values):
    with stave.Producer(bootstrap) as producer:
        return producer.publish_batch([stave.ProducerRecord(topic, v) for v in values])


def take(consumer, n, timeout_s=WAIT_S):
    """Exactly ``n`` records from ``consumer``, or the test fails after ``timeout_s``."""
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        left = deadline - time.monotonic()
        record = consumer.poll(left) if left > 0 else None
        if record is None:
            pytest.fail(f"{len(out)} of {n} records within {timeout_s:g} s")
        out.append(record)
    return out


def test_two_members_share_a_partition_record_by_record(admin, bootstrap, topic_name):
    """Two members of one queue group on a 1-partition topic: each holds at most its credit,
    so both get records; every record is acked once, by one member, and together they
    acked all of them."""
    admin.create_topic(topic_name, partitions=1)
    values = [f"job-{i}".encode() for i in range(40)]
    publish(bootstrap, topic_name, values)
    group = group_name()
    a = stave.QueueConsumer(bootstrap, group, topic_name, from_beginning=True, credit=5)
    b = None
    try:
        # a holds its 5 unsettled: whatever b gets, a could not have.
        first_a = take(a, 5)
        b = stave.QueueConsumer(bootstrap, group, topic_name, from_beginning=True, credit=5)
        first_b = take(b, 5)
        assert all(r.delivery_count == 1 for r in first_a + first_b)
        assert not {r.offset for r in first_a} & {r.offset for r in first_b}

        acked = {"a": [], "b": []}
        futures = [(name, r, c.ack(r)) for name, c, rs in (("a", a, first_a), ("b", b, first_b)) for r in rs]
        deadline = time.monotonic() + WAIT_S
        while sum(len(v) for v in acked.values()) + len(futures) < len(values):
            assert time.monotonic() < deadline, f"acked {[len(v) for v in acked.values()]}"
            for name, consumer in (("a", a), ("b", b)):
                record = consumer.poll(0.05)
                if record is not None:
                    assert record.delivery_count == 1
                    futures.append((name, record, consumer.ack(record)))
            done = [f for f in futures if f[2].done()]
            for name, record, future in done:
                future.result()  # raises the node's error, if any
                acked[name].append(record.offset)
                futures.remove((name, record, future))
        for name, record, future in futures:
            future.result(WAIT_S)
            acked[name].append(record.offset)

        assert acked["a"] and acked["b"], "both members got records"
        everything = acked["a"] + acked["b"]
        assert sorted(everything) == list(range(len(values))), "each record acked once"
        assert a.poll(0.3) is None and b.poll(0.3) is None
    finally:
        a.close()
        if b is not None:
            b.close()


def test_a_released_record_comes_back_with_delivery_count_two(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=1)
    publish(bootstrap, topic_name, [b"retry me"])
    with stave.QueueConsumer(bootstrap, group_name(), topic_name, from_beginning=True, credit=1) as consumer:
        [first] = take(consumer, 1)
        assert (first.offset, first.delivery_count, first.value) == (0, 1, b"retry me")
        assert first.lock_deadline_ms > time.time() * 1000 - 1000
        consumer.release(first, reason="not yet").result(WAIT_S)
        [again] = take(consumer, 1)
        assert (again.offset, again.delivery_count, again.value) == (0, 2, b"retry me")
        consumer.ack(again).result(WAIT_S)
        assert consumer.poll(0.3) is None


def test_a_rejected_record_goes_to_the_dead_letter_topic(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=1)
    publish(bootstrap, topic_name, [b"fine", b"poison"])
    group = group_name()
    with stave.QueueConsumer(bootstrap, group, topic_name, from_beginning=True) as consumer:
        records = {r.value: r for r in take(consumer, 2)}
        consumer.ack(records[b"fine"]).result(WAIT_S)
        consumer.reject(records[b"poison"], reason="cannot parse").result(WAIT_S)
        poison = records[b"poison"]

    dead = read_dead_letter(bootstrap, f"_dlq.{group}.{topic_name}")
    assert dead.value == b"poison"
    assert dead.header("stave-dlq-topic") == topic_name.encode()
    assert dead.header("stave-dlq-partition") == b"0"
    assert dead.header("stave-dlq-offset") == str(poison.offset).encode()
    assert dead.header("stave-dlq-deliveries") == b"1"
    assert dead.header("stave-dlq-reason") == b"cannot parse"


def read_dead_letter(bootstrap, topic):
    """The first record of ``topic``, read by exact name. The node creates the topic with the
    first dead letter: until then a reader is refused UNKNOWN_TOPIC, so it is opened again
    (a poll with a deadline, as nothing announces the topic)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with stave.PartitionReader(bootstrap, topic) as reader:
            try:
                record = reader.poll(max(0.1, deadline - time.monotonic()))
            except stave.StaveError as err:
                if err.code != ErrorCode.UNKNOWN_TOPIC or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
        assert record is not None, f"nothing in {topic} within {WAIT_S:g} s"
        return record


def test_a_second_ack_is_refused_delivery_not_held(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=1)
    publish(bootstrap, topic_name, [b"once"])
    with stave.QueueConsumer(bootstrap, group_name(), topic_name, from_beginning=True) as consumer:
        [record] = take(consumer, 1)
        consumer.ack(record).result(WAIT_S)
        with pytest.raises(stave.StaveError) as info:
            consumer.ack(record).result(WAIT_S)
        assert info.value.code == ErrorCode.DELIVERY_NOT_HELD
        assert consumer.poll(0.3) is None


def test_settlements_made_together_are_answered_each(admin, bootstrap, topic_name):
    """Settlements issued back to back are pipelined (gathered into Settle messages); each
    gets its own answer, a bad one among good ones included."""
    admin.create_topic(topic_name, partitions=1)
    publish(bootstrap, topic_name, [f"{i}".encode() for i in range(20)])
    with stave.QueueConsumer(bootstrap, group_name(), topic_name, from_beginning=True, credit=20) as consumer:
        records = take(consumer, 20)
        futures = [consumer.ack(r) for r in records[:10]]
        futures.append(consumer.ack(records[0]))  # twice in one go
        futures += [consumer.extend(r) for r in records[10:]]
        for future in futures[:10]:
            assert future.result(WAIT_S) is None
        assert futures[10].exception(WAIT_S).code == ErrorCode.DELIVERY_NOT_HELD
        for future in futures[11:]:
            assert future.result(WAIT_S) is None
        # Extended records are still held: releasing them works, and they come back.
        for future in [consumer.release(r) for r in records[10:]]:
            future.result(WAIT_S)
        again = take(consumer, 10)
        assert sorted(r.offset for r in again) == [r.offset for r in records[10:]]
        assert {r.delivery_count for r in again} == {2}


def test_a_reason_past_1_kib_is_cut_not_the_stream(admin, bootstrap, topic_name):
    """The node ends the whole stream on a settlement whose reason passes 1 KiB; the client
    cuts the reason to 1 KiB instead, and the dead letter carries the cut reason."""
    admin.create_topic(topic_name, partitions=1)
    publish(bootstrap, topic_name, [b"long", b"next"])
    group = group_name()
    with stave.QueueConsumer(bootstrap, group, topic_name, from_beginning=True) as consumer:
        records = {r.value: r for r in take(consumer, 2)}
        consumer.reject(records[b"long"], reason="é" * 600).result(WAIT_S)
        consumer.ack(records[b"next"]).result(WAIT_S)  # the stream lives on
    dead = read_dead_letter(bootstrap, f"_dlq.{group}.{topic_name}")
    assert dead.header("stave-dlq-reason") == ("é" * 512).encode()

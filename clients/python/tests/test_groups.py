"""Consumer groups: sharing partitions, handing them over, resuming at the commit."""

import uuid

import stave
from conftest import poll_until


def group_name() -> str:
    return f"g-{uuid.uuid4().hex}"


def held(consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def publish_per_partition(bootstrap, topic, partitions, per_partition, tag):
    records = [
        stave.ProducerRecord(topic, f"{tag}-{p}-{i}", partition=p)
        for p in range(partitions)
        for i in range(per_partition)
    ]
    with stave.Producer(bootstrap) as producer:
        return producer.publish_batch(records)


def test_two_consumers_split_the_partitions_and_one_leaving_hands_them_over(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=4)
    group = group_name()
    events = {"a_assigned": [], "a_revoked": [], "b_assigned": []}
    a = stave.Consumer(
        bootstrap, group, [topic_name], from_beginning=True,
        on_assign=events["a_assigned"].extend, on_revoke=events["a_revoked"].extend,
    )
    b = None
    try:
        poll_until([a], lambda _: held(a) == {0, 1, 2, 3}, what="a to hold every partition")
        b = stave.Consumer(bootstrap, group, [topic_name], from_beginning=True,
                           on_assign=events["b_assigned"].extend)
        poll_until([a, b], lambda _: len(held(a)) == 2 and len(held(b)) == 2,
                   what="the partitions to be split")
        assert held(a) | held(b) == {0, 1, 2, 3}
        assert events["a_revoked"], "a was told what it gave up"

        publish_per_partition(bootstrap, topic_name, 4, 10, "first")
        got_a, got_b = poll_until([a, b], lambda c: len(c[0]) + len(c[1]) >= 40, what="40 records")
        assert {r.partition for r in got_a} <= held(a)
        assert {r.partition for r in got_b} <= held(b)
        assert len({(r.partition, r.offset) for r in got_a + got_b}) == 40

        a_partitions = held(a)
        a.close()  # commits what it read, leaves
        # Within the 10 s session timeout: a left, its membership did not expire.
        poll_until([b], lambda _: held(b) == {0, 1, 2, 3}, timeout_s=8,
                   what="b to take over a's partitions")
        publish_per_partition(bootstrap, topic_name, 4, 10, "second")
        [more] = poll_until([b], lambda c: len(c[0]) >= 40, what="b to read the second 40")
        # a committed all it read: b reads a's partitions from there, nothing twice.
        assert sorted(r.value for r in more) == sorted(
            f"second-{p}-{i}".encode() for p in range(4) for i in range(10)
        )
        handed = [tp for tp in events["b_assigned"] if tp.partition in a_partitions]
        assert handed and all(tp.offset == 10 for tp in handed)
    finally:
        a.close()
        if b is not None:
            b.close()


def test_a_restarted_consumer_resumes_at_its_commit(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=2)
    publish_per_partition(bootstrap, topic_name, 2, 15, "r")
    everything = {f"r-{p}-{i}".encode() for p in range(2) for i in range(15)}
    group = group_name()

    first = stave.Consumer(bootstrap, group, topic_name, from_beginning=True, credit_records=4)
    taken = []
    while len(taken) < 12:
        record = first.poll(10)
        assert record is not None
        taken.append(record)
    first.commit()
    extra = [first.poll(10) for _ in range(5)]
    assert all(r is not None for r in extra)
    first.close(commit=False)  # as if it crashed: the 5 extra are not committed

    second = stave.Consumer(bootstrap, group, topic_name, from_beginning=True)
    try:
        [rest] = poll_until([second], lambda c: len(c[0]) >= 18, what="the 18 uncommitted")
        values = [r.value for r in rest]
        assert len(values) == len(set(values)) == 18
        assert set(values) == everything - {r.value for r in taken}
        second.close()  # commits everything it read

        third = stave.Consumer(bootstrap, group, topic_name, from_beginning=True)
        with third:
            poll_until([third], lambda _: held(third) == {0, 1}, what="third's assignment")
            assert third.poll(0.5) is None
            assert sorted(tp.offset for tp in third.assignment()) == [15, 15]
    finally:
        second.close()


def test_auto_commit_commits_what_was_returned(admin, bootstrap, topic_name):
    admin.create_topic(topic_name, partitions=1)
    publish_per_partition(bootstrap, topic_name, 1, 10, "a")
    group = group_name()
    with stave.Consumer(bootstrap, group, topic_name, from_beginning=True, auto_commit=True,
                        auto_commit_interval_ms=0) as consumer:
        for _ in range(6):
            assert consumer.poll(10) is not None
        # A commit went out with each record taken; close lets them finish, adding none.
        consumer.close(commit=False)
    with stave.Consumer(bootstrap, group, topic_name, from_beginning=True) as again:
        [rest] = poll_until([again], lambda c: len(c[0]) >= 4, what="the last 4")
        assert [r.value for r in rest] == [f"a-0-{i}".encode() for i in range(6, 10)]


def test_iteration_ends_when_closed_from_another_thread(admin, bootstrap, topic_name):
    import threading

    admin.create_topic(topic_name, partitions=1)
    publish_per_partition(bootstrap, topic_name, 1, 3, "it")
    consumer = stave.Consumer(bootstrap, group_name(), topic_name, from_beginning=True)
    seen = []
    third = threading.Event()

    def read():
        for record in consumer:
            seen.append(record.value)
            if len(seen) == 3:
                third.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert third.wait(20)
    consumer.close()
    reader.join(10)
    assert not reader.is_alive()
    assert seen == [b"it-0-0", b"it-0-1", b"it-0-2"]

"""A publish retried across a SIGKILL and restart of the node is written once."""

import stave
from stave import ProducerRecord
from conftest import poll_until


def test_publish_retried_after_sigkill_and_restart_is_written_once(own_server):
    bootstrap = own_server.bootstrap
    topic = "restart"
    with stave.Admin(bootstrap) as admin:
        admin.create_topic(topic, partitions=3)

    ids = [stave.uuid7() for _ in range(50)]
    records = [ProducerRecord(topic, f"value {i}", f"key {i % 5}", {"id": ids[i]}) for i in range(50)]
    with stave.Producer(bootstrap) as producer:
        first = producer.publish_batch(records)
        assert [m.id for m in first] == ids and not any(m.duplicate for m in first)

        own_server.kill()
        # Queued while the node is down: retried (same id) until it is back.
        during = producer.publish(topic, b"while down", b"k")
        own_server.start()
        during_meta = during.result(timeout=30)
        assert not during_meta.duplicate

        # The answers of the first publish "were lost": the same records again.
        second = producer.publish_batch(records)
    assert all(m.duplicate for m in second)
    assert [(m.partition, m.offset) for m in second] == [(m.partition, m.offset) for m in first]

    with stave.PartitionReader(bootstrap, topic) as reader:
        [got] = poll_until([reader], lambda c: len(c[0]) >= 51, what="51 records")
        assert reader.poll(0.5) is None  # and nothing more
    seen = [r.id for r in got]
    assert sorted(seen) == sorted(ids + [during_meta.id])

"""A consumer whose node restarts joins again and goes on from the group's commit."""

import uuid

import stave
from conftest import poll_until


def test_consumer_rejoins_after_its_node_restarts(own_server):
    bootstrap = own_server.bootstrap
    topic = "rejoin"
    with stave.Admin(bootstrap) as admin:
        admin.create_topic(topic, partitions=2)
    with stave.Producer(bootstrap) as producer:
        producer.publish_batch([(topic, f"before {i}") for i in range(10)])

    revoked = []
    consumer = stave.Consumer(bootstrap, f"g-{uuid.uuid4().hex}", topic, from_beginning=True,
                              on_revoke=revoked.extend)
    try:
        [before] = poll_until([consumer], lambda c: len(c[0]) >= 10, what="the first 10")
        consumer.commit()
        own_server.kill()
        own_server.start()
        with stave.Producer(bootstrap) as producer:
            producer.publish_batch([(topic, f"after {i}") for i in range(10)])
        [after] = poll_until([consumer], lambda c: len(c[0]) >= 10, timeout_s=30,
                             what="the 10 written after the restart")
        assert sorted(r.value for r in after) == sorted(f"after {i}".encode() for i in range(10))
        assert {tp.partition for tp in revoked} == {0, 1}  # lost with the old stream
        assert {tp.partition for tp in consumer.assignment()} == {0, 1}
    finally:
        consumer.close()

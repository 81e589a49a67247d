"""Topics: create, describe, list, delete, and the codes of refusals."""

import pytest

import stave
from stave import ErrorCode


def test_create_describe_list_delete(admin, topic_name):
    admin.create_topic(topic_name, partitions=4, configs={"retention.ms": "3600000"})
    described = admin.describe_topic(topic_name)
    assert described.name == topic_name
    assert [p.partition for p in described.partitions] == [0, 1, 2, 3]
    assert all(p.leader is not None and p.replicas for p in described.partitions)
    assert described.configs["retention.ms"] == "3600000"
    assert topic_name in admin.list_topics()
    admin.delete_topic(topic_name)
    assert topic_name not in admin.list_topics()


@pytest.mark.parametrize(
    "name, kwargs, code",
    [
        ("", {}, ErrorCode.INVALID_TOPIC_NAME),
        ("has space", {}, ErrorCode.INVALID_TOPIC_NAME),
        ("__mine", {}, ErrorCode.RESERVED_TOPIC_NAME),
        (None, {"configs": {"no.such.setting": "1"}}, ErrorCode.INVALID_CONFIG),
        (None, {"replication_factor": 5}, ErrorCode.NOT_ENOUGH_NODES),
    ],
)
def test_create_refusals(admin, topic_name, name, kwargs, code):
    with pytest.raises(stave.StaveError) as info:
        admin.create_topic(topic_name if name is None else name, **kwargs)
    assert info.value.code == code


def test_exists_and_unknown(admin, topic_name):
    admin.create_topic(topic_name, partitions=1)
    with pytest.raises(stave.StaveError) as info:
        admin.create_topic(topic_name)
    assert info.value.code == ErrorCode.TOPIC_EXISTS
    for call in (admin.describe_topic, admin.delete_topic):
        with pytest.raises(stave.StaveError) as info:
            call("no-such-topic-anywhere")
        assert info.value.code == ErrorCode.UNKNOWN_TOPIC

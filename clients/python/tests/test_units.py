"""Pieces that need no server: ids, errors, argument checks."""

import pickle
import time
import uuid

import grpc
import pytest

import stave
from stave._connection import parse_bootstrap
from stave._uuid7 import uuid7_many
from stave.errors import StaveTransportError


def test_uuid7_is_a_version_7_rfc_uuid_with_the_current_time():
    before = time.time_ns() // 1_000_000
    text = stave.uuid7()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_uuid7_many_are_distinct():
    ids = uuid7_many(10_000)
    assert len(set(ids)) == 10_000
    assert all(uuid.UUID(i).version == 7 for i in ids[:100])


def test_error_carries_code_and_retriable():
    err = stave.StaveError(stave.ErrorCode.NOT_LEADER, "ask node 2", leader_addr="h:1")
    assert err.code is stave.ErrorCode.NOT_LEADER
    assert err.retriable and err.leader_addr == "h:1"
    assert "NOT_LEADER" in str(err)
    assert not stave.StaveError(stave.ErrorCode.UNKNOWN_TOPIC, "x").retriable
    copy = pickle.loads(pickle.dumps(err))
    assert copy.code == err.code and copy.leader_addr == "h:1"


def test_transport_error_is_retriable_when_unavailable():
    err = StaveTransportError(grpc.StatusCode.UNAVAILABLE, "down")
    assert isinstance(err, stave.StaveError) and err.retriable
    assert not StaveTransportError(grpc.StatusCode.INVALID_ARGUMENT, "bad").retriable


def test_bootstrap_lists():
    assert parse_bootstrap("a:1, b:2") == ["a:1", "b:2"]
    assert parse_bootstrap(["a:1"]) == ["a:1"]
    with pytest.raises(ValueError):
        parse_bootstrap(" , ")


def test_publish_checks_argument_types():
    # The channel connects lazily: nothing needs to listen for these checks.
    with stave.Producer("127.0.0.1:1", delivery_timeout_ms=100) as producer:
        with pytest.raises(TypeError):
            producer.publish("t", 42)
        with pytest.raises(TypeError):
            producer.publish(b"t", b"v")
        with pytest.raises(ValueError):
            producer.publish("t", b"v", partition=-1)


def test_uuid7_after_fork_differs_from_the_parent():
    import os

    stave.uuid7()  # fill the pool before forking
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.write(write_end, "\n".join(stave.uuid7() for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    parent = {stave.uuid7() for _ in range(50)}
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(child) == 50 and not parent & child


def test_queue_settlement_bounds():
    from stave._proto.stave.v1 import stave_pb2
    from stave.queue_consumer import REASON_BYTES_MAX, _outcomes, _reason_within_bounds

    assert _reason_within_bounds("short") == "short"
    cut = _reason_within_bounds("é" * 600)  # 1,200 bytes: cut between characters
    assert cut == "é" * 512 and len(cut.encode()) == REASON_BYTES_MAX
    ok, refused = stave_pb2.Error(), stave_pb2.Error(code=25, message="not held")
    assert _outcomes([ok, refused], 2)[0] is None
    assert _outcomes([ok, refused], 2)[1].code == stave.ErrorCode.DELIVERY_NOT_HELD
    # A whole Settle refused: one result for every settlement.
    assert [e.code for e in _outcomes([refused], 3)] == [stave.ErrorCode.DELIVERY_NOT_HELD] * 3
    assert _outcomes([], 2) == [None, None]
    assert _outcomes([ok, ok], 3)[2].code == stave.ErrorCode.INTERNAL


def test_queue_release_refuses_a_delay_past_a_day():
    # The channel connects lazily: nothing needs to listen for these checks.
    consumer = stave.QueueConsumer("127.0.0.1:1", "g", "t", reconnect_timeout_ms=0)
    record = stave.QueueRecord("t", 0, 0, 0, None, b"", [], 1, 0)
    try:
        with pytest.raises(ValueError):
            consumer.release(record, delay_ms=86_400_001)
        with pytest.raises(ValueError):
            stave.QueueConsumer("127.0.0.1:1", "g", "t", ordering="fifo")
    finally:
        consumer.close(timeout=1)

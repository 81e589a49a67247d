"""Python client of Stave, a distributed log broker.

- :class:`Producer` publishes records (``publish`` → Future, ``publish_batch``);
- :class:`Consumer` reads a consumer group's share of topics (``for record in consumer``);
- :class:`PartitionReader` reads partitions from an offset or a time, without a group;
- :class:`Admin` creates, describes, lists and deletes topics;
- :class:`StaveError` carries the server's :class:`ErrorCode`.
"""

from stave.admin import Admin
from stave.consumer import Consumer, PartitionReader
from stave.errors import ErrorCode, StaveError, StaveTransportError
from stave.producer import BatchPublishError, Producer, ProducerRecord
from stave.types import PartitionInfo, Record, RecordMetadata, TopicDescription, TopicPartition
from stave._uuid7 import uuid7

__all__ = [
    "Admin",
    "Consumer",
    "PartitionReader",
    "BatchPublishError",
    "ErrorCode",
    "PartitionInfo",
    "Producer",
    "ProducerRecord",
    "Record",
    "RecordMetadata",
    "StaveError",
    "StaveTransportError",
    "TopicDescription",
    "TopicPartition",
    "uuid7",
]

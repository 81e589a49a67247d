"""Python client of Stave, a distributed log broker.

- :class:`Producer` publishes records (``publish`` → Future, ``publish_batch``);
- :class:`Consumer` reads a consumer group's share of topics (``for record in consumer``);
- :class:`QueueConsumer` shares topics' records with a queue group's other members, record
  by record (``ack``, ``release``, ``reject``, ``extend`` each one);
- :class:`PartitionReader` reads partitions from an offset or a time, without a group;
- :class:`Admin` creates, describes, lists and deletes topics;
- :class:`StaveError` carries the server's :class:`ErrorCode`.
"""

from stave.admin import Admin
from stave.consumer import Consumer, PartitionReader
from stave.errors import ErrorCode, StaveError, StaveTransportError
from stave.queue_consumer import QueueConsumer
from stave.producer import BatchPublishError, Producer, ProducerRecord
from stave.types import (
    PartitionInfo,
    QueueRecord,
    Record,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
)
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
    "QueueConsumer",
    "QueueRecord",
    "Record",
    "RecordMetadata",
    "StaveError",
    "StaveTransportError",
    "TopicDescription",
    "TopicPartition",
    "uuid7",
]

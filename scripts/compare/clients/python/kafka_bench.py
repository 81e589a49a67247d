"""The Kafka side of scripts/compare/clients.sh for Python, with confluent-kafka (librdkafka).

Publishes --records records of --size bytes from one process to an existing topic, then reads
them back through a new consumer group from the beginning, and prints records/s for each
phase, timed the way ``python -m stave.bench`` times the Stave client:

- publish: from the first produce call until every record is acknowledged (``flush()``
  returned and every delivery report came back without error); with --warmup-topic the
  producer first publishes one record there, untimed, so that getting its idempotent producer
  id (slow on a broker that has just started) is not in the figure;
- consume: from the first record returned (the group join before it is left out, as in
  Stave's bench) until the --records'th; the time from subscribe() is printed too.

--form batch (the default) publishes with ``Producer.produce_batch`` of --batch records a
call (10,000, the batch of ``stave.bench``), the batch form like Stave's ``publish_batch``;
--form single calls ``produce()`` once per record, the form most programs use. Every record
has a delivery callback (``stave.bench`` also gets a result for every record).

Producer settings: acks=all, linger.ms (5), batch.size (1,000,000, librdkafka's default; the
Stave clients batch up to 1 MiB a request), enable.idempotence (on: a retry is written once,
like Stave's ids; librdkafka's default is off), no compression (librdkafka's default);
queue.buffering.max.messages 100,000 (librdkafka's default, and the Stave Python client's
buffer_records). The consumer keeps librdkafka's defaults (auto commit, prefetching).

librdkafka's consumer, with its defaults, waits fetch.queue.backoff.ms (1,000 ms) before it
fetches a partition again once its local queue is past queued.min.messages (100,000); on this
machine that held it to roughly a quarter of what it reads with the wait at 0 (its
documentation: "may need to be decreased if ... the application is experiencing long (~1s)
delays between messages"). --tuned-consume reads the topic a second time, through another new
group, with fetch.queue.backoff.ms=0 (phase 'consume_tuned').

--single-topic T adds a third phase: the same records published again to topic T with
``produce()`` per record (for reference beside the batch form).

Each phase prints one line ``RESULT {json}`` for the script, after a line for people.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer


def result(**fields) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def produce(args, form: str, topic: str, phase: str) -> None:
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": args.linger_ms,
        "batch.size": args.batch_bytes,
        "enable.idempotence": args.idempotence,
        "compression.type": "none",
        "queue.buffering.max.messages": args.queue_records,
    }
    producer = Producer(conf)
    # Connect and load the topic's metadata before the clock starts (the Stave bench dials
    # and creates its topic before it starts its clock).
    md = producer.list_topics(topic, timeout=30)
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None or not tmd.partitions:
        raise SystemExit(f"kafka_bench: topic {topic} not available: {tmd and tmd.error}")
    if args.warmup_topic:
        # One record to another topic first, so that the idempotent producer has its producer
        # id before the clock starts: on a broker that has just started, InitProducerId is
        # answered COORDINATOR_LOAD_IN_PROGRESS for a while, and librdkafka retries it.
        warm_err = []
        producer.produce(args.warmup_topic, b"warmup", on_delivery=lambda err, _m: warm_err.append(err))
        if producer.flush(60) or warm_err != [None]:
            raise SystemExit(f"kafka_bench: the warm-up record to {args.warmup_topic} failed: {warm_err}")
    value = os.urandom(args.size)
    acked = 0
    failed = 0
    first_error = None

    def on_delivery(err, _msg) -> None:
        nonlocal acked, failed, first_error
        if err is None:
            acked += 1
        else:
            failed += 1
            if first_error is None:
                first_error = err

    limit = args.queue_records
    started = time.perf_counter()
    left = args.records
    if form == "batch":
        message = {"value": value}
        while left > 0:
            n = min(args.batch, left)
            # Room for the whole batch in librdkafka's queue (queued + awaiting reports).
            while len(producer) + n > limit:
                producer.poll(0.001)
            queued = producer.produce_batch(topic, [message] * n, on_delivery=on_delivery)
            if queued != n:
                raise SystemExit(f"kafka_bench: produce_batch queued {queued} of {n} records")
            producer.poll(0)
            left -= n
    else:
        produce_one = producer.produce
        poll = producer.poll
        i = 0
        while i < args.records:
            try:
                produce_one(topic, value, on_delivery=on_delivery)
            except BufferError:
                poll(0.001)
                continue
            i += 1
            if i % 1000 == 0:
                poll(0)
    remaining = producer.flush(args.timeout)
    elapsed = time.perf_counter() - started
    if remaining:
        raise SystemExit(f"kafka_bench: {remaining} records not delivered after {args.timeout} s")
    if failed:
        raise SystemExit(f"kafka_bench: {failed} records failed, the first: {first_error}")
    if acked != args.records:
        raise SystemExit(f"kafka_bench: {acked} of {args.records} records acknowledged")
    rate = args.records / elapsed
    how = f"produce_batch of {args.batch}" if form == "batch" else "produce() per record"
    print(f"{phase}: {args.records:,} records in {elapsed:.2f} s: {rate:,.0f} records/s, "
          f"{args.records * args.size / elapsed / 1e6:.1f} MB/s ({how}, topic {topic})", flush=True)
    result(phase=phase, form=form, records=args.records, bytes=args.records * args.size,
           seconds=elapsed, records_per_s=rate)


def consume(args, phase: str, extra: dict) -> None:
    group = (args.group or "bench") + f"-{uuid.uuid4().hex}"
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        **extra,
    })
    want = args.records
    try:
        joined = time.perf_counter()
        consumer.subscribe([args.topic])
        deadline = time.monotonic() + 60
        first = None
        # The first record alone, then the clock starts (as stave.bench: from the first record).
        while first is None:
            if time.monotonic() > deadline:
                raise SystemExit("kafka_bench: no record within 60 s")
            msgs = consumer.consume(1, timeout=1.0)
            for m in msgs:
                check(m)
                first = m
        started = time.perf_counter()
        got, nbytes = 1, len(first.value())
        while got < want:
            # consume(n) returns once it has n records (or at the timeout): never ask for more
            # than are left.
            msgs = consumer.consume(min(10_000, want - got), timeout=30)
            if not msgs:
                raise SystemExit(f"kafka_bench: only {got} of {want} records within 30 s")
            for m in msgs:
                if m.error() is not None:
                    check(m)
                nbytes += len(m.value())
            got += len(msgs)
        end = time.perf_counter()
    finally:
        consumer.close()
    elapsed = end - started
    total = end - joined
    print(f"{phase}: {got:,} records in {elapsed:.2f} s from the first record: {got / elapsed:,.0f} "
          f"records/s, {nbytes / elapsed / 1e6:.1f} MB/s ({total:.2f} s and {got / total:,.0f} "
          f"records/s from subscribe)", flush=True)
    result(phase=phase, config=extra, records=got, bytes=nbytes, seconds=elapsed, records_per_s=got / elapsed,
           seconds_from_join=total, records_per_s_from_join=got / total)
    if got != want:
        raise SystemExit(f"kafka_bench: read {got} records, {want} were published")


def check(msg) -> None:
    err = msg.error()
    if err is not None and err.code() != KafkaError._PARTITION_EOF:
        raise KafkaException(err)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", nargs="?", choices=["produce", "consume", "all"], default="all")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="clients-py", help="an existing topic")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100, help="value bytes")
    parser.add_argument("--form", choices=["batch", "single"], default="batch")
    parser.add_argument("--batch", type=int, default=10_000, help="records per produce_batch call")
    parser.add_argument("--linger-ms", type=float, default=5)
    parser.add_argument("--batch-bytes", type=int, default=1_000_000, help="batch.size")
    parser.add_argument("--queue-records", type=int, default=100_000,
                        help="queue.buffering.max.messages")
    parser.add_argument("--idempotence", type=int, choices=[0, 1], default=1)
    parser.add_argument("--warmup-topic", default=None,
                        help="an existing topic to publish one record to before each publish phase's clock "
                             "starts (the producer id is fetched then, not in the timed part)")
    parser.add_argument("--group", default=None, help="prefix of the consumer groups (default: bench)")
    parser.add_argument("--tuned-consume", action="store_true",
                        help="after the consume phase, read the topic again through another new group "
                             "with fetch.queue.backoff.ms=0 (phase 'consume_tuned')")
    parser.add_argument("--single-topic", default=None,
                        help="after the consume phase, publish the records again to this (existing) "
                             "topic with produce() per record (phase 'publish_single'), for reference")
    parser.add_argument("--timeout", type=float, default=300, help="longest flush() may take (s)")
    args = parser.parse_args(argv)
    args.idempotence = bool(args.idempotence)
    if args.phase in ("produce", "all"):
        produce(args, args.form, args.topic, "publish")
    if args.phase in ("consume", "all"):
        consume(args, "consume", {})
        if args.tuned_consume:
            consume(args, "consume_tuned", {"fetch.queue.backoff.ms": 0})
    if args.single_topic:
        produce(args, "single", args.single_topic, "publish_single")
    return 0


if __name__ == "__main__":
    sys.exit(main())

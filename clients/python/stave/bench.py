"""Throughput of the Python client: ``python -m stave.bench [produce|consume|all]``.

Publishes ``--records`` records of ``--size`` bytes with ``publish_batch`` (ids generated
by the client; ``--form single``: ``publish`` per record) to a topic it creates if missing (``--partitions``, replication factor 1,
``flush=never``), then reads them back through a fresh consumer group from the beginning.
Prints records/s and MB/s of each phase.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid

import stave


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    with stave.Admin(bootstrap) as admin:
        try:
            admin.create_topic(topic, partitions=partitions, replication_factor=1,
                               configs={"flush": "never"})
        except stave.StaveError as err:
            if err.code != stave.ErrorCode.TOPIC_EXISTS:
                raise
            admin.wait_for_leaders(topic)


def produce(args) -> float:
    value = os.urandom(args.size)
    per_thread = args.records // args.threads
    errors: list[BaseException] = []
    with stave.Producer(args.bootstrap, batch_records=args.request_records,
                        max_in_flight=args.in_flight) as producer:
        def run() -> None:
            try:
                left = per_thread
                while left > 0:
                    n = min(args.batch, left)
                    if args.form == "batch":
                        producer.publish_batch([(args.topic, value)] * n)
                    else:
                        futures = [producer.publish(args.topic, value) for _ in range(n)]
                        futures[-1].result()
                        for f in futures:
                            f.result()
                    left -= n
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=run) for _ in range(args.threads)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    total = per_thread * args.threads
    report("produce", total, total * args.size, elapsed)
    return elapsed


def consume(args) -> float:
    group = f"bench-{uuid.uuid4().hex}"
    want = args.records
    got = 0
    nbytes = 0
    with stave.Consumer(args.bootstrap, group, [args.topic], from_beginning=True,
                        credit_records=args.credit) as consumer:
        first = consumer.poll(30)
        if first is None:
            raise SystemExit("bench: no record within 30 s")
        started = time.perf_counter()
        got, nbytes = 1, len(first.value)
        while got < want:
            records = consumer.poll_many(10_000, timeout=30)
            if not records:
                raise SystemExit(f"bench: only {got} of {want} records within 30 s")
            got += len(records)
            for r in records:
                nbytes += len(r.value)
        elapsed = time.perf_counter() - started
    report("consume", got, nbytes, elapsed)
    return elapsed


def report(what: str, records: int, nbytes: int, elapsed: float) -> None:
    print(f"{what}: {records:,} records in {elapsed:.2f} s: {records / elapsed:,.0f} records/s, "
          f"{nbytes / elapsed / 1e6:.1f} MB/s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stave.bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("phase", nargs="?", choices=["produce", "consume", "all"], default="all")
    parser.add_argument("--bootstrap", default="127.0.0.1:7070")
    parser.add_argument("--topic", default="bench-py")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100, help="value bytes")
    parser.add_argument("--batch", type=int, default=10_000, help="records per publish_batch call")
    parser.add_argument("--form", choices=["batch", "single"], default="batch",
                        help="publish_batch calls, or publish() per record (futures)")
    parser.add_argument("--threads", type=int, default=1, help="threads calling publish_batch")
    parser.add_argument("--request-records", type=int, default=5_000, help="records per Publish request")
    parser.add_argument("--in-flight", type=int, default=4, help="Publish requests outstanding")
    parser.add_argument("--credit", type=int, default=1_000, help="consumer credit window (records)")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for this run (GIL hand-over, default 5 ms)")
    args = parser.parse_args(argv)
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    ensure_topic(args.bootstrap, args.topic, args.partitions)
    if args.phase in ("produce", "all"):
        produce(args)
    if args.phase in ("consume", "all"):
        consume(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

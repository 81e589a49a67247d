"""Quickstart: ``python -m stave.quickstart --bootstrap HOST:PORT``.

Creates topic ``quickstart`` if missing, publishes 100 records with a key and a header,
reads them back through a fresh consumer group from the earliest record, and prints
``quickstart ok 100``. Exits non-zero with a message otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import stave

TOPIC = "quickstart"
COUNT = 100


def run(bootstrap: str, timeout_s: float = 30.0) -> int:
    with stave.Admin(bootstrap, timeout_ms=timeout_s * 1000) as admin:
        try:
            admin.create_topic(TOPIC, partitions=3)
        except stave.StaveError as err:
            if err.code != stave.ErrorCode.TOPIC_EXISTS:
                raise
            admin.wait_for_leaders(TOPIC)

    run_id = stave.uuid7()
    with stave.Producer(bootstrap) as producer:
        sent = producer.publish_batch(
            (TOPIC, f"hello {i}", f"key-{i}", {"run": run_id}) for i in range(COUNT)
        )
    expected = {m.id: i for i, m in enumerate(sent)}

    seen: set[str] = set()
    group = f"quickstart-{run_id}"
    deadline = time.monotonic() + timeout_s
    with stave.Consumer(bootstrap, group, [TOPIC], from_beginning=True) as consumer:
        while len(seen) < COUNT:
            left = deadline - time.monotonic()
            record = consumer.poll(left) if left > 0 else None
            if record is None:
                print(f"quickstart: read {len(seen)} of {COUNT} records within {timeout_s:g} s",
                      file=sys.stderr)
                return 1
            if record.header("run") != run_id.encode():
                continue  # records of earlier runs
            i = expected.get(record.id or "")
            if i is None or record.key != f"key-{i}".encode() or record.value != f"hello {i}".encode():
                print(f"quickstart: unexpected record {record!r}", file=sys.stderr)
                return 1
            seen.add(record.id)
        consumer.commit()
    print(f"quickstart ok {len(seen)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stave.quickstart", description=__doc__.split("\n\n")[1])
    parser.add_argument("--bootstrap", default="127.0.0.1:7070", help="HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the records")
    args = parser.parse_args(argv)
    try:
        return run(args.bootstrap, args.timeout)
    except stave.StaveError as err:
        print(f"quickstart: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

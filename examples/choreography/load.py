"""The choreography example's load: publishes --count v1.user.signup actions at about --rate
a second, each with an id of its own (a UUIDv7 in its `id` header), keyed by user.

Every acknowledged action's id is appended to --out ("<action-id> <user>" per line), and the
number acknowledged so far is written to --progress (run.sh times its kills by it). A
publish is retried with the same id across leader changes and a killed node, so each
action is written once; after the delivery timeout (60 s) the load fails (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import stave

ACTIONS = "v1.user.signup"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:7070")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="signups a second (about)")
    parser.add_argument("--out", required=True, help="file of acknowledged action ids")
    parser.add_argument("--progress", required=True, help="file holding the number acknowledged")
    args = parser.parse_args()

    batch = max(1, int(args.rate / 10))  # ten batches a second
    started = time.monotonic()
    done = 0
    with stave.Producer(args.bootstrap, delivery_timeout_ms=60_000) as producer, open(args.out, "a") as out:
        while done < args.count:
            chunk = range(done, min(args.count, done + batch))
            ids = [stave.uuid7() for _ in chunk]
            records = [
                stave.ProducerRecord(
                    ACTIONS,
                    json.dumps({"user": f"user-{i:06d}", "email": f"user-{i:06d}@example.com"}),
                    key=f"user-{i:06d}",
                    headers={"id": ids[j]},
                )
                for j, i in enumerate(chunk)
            ]
            try:
                results = producer.publish_batch(records)
            except stave.StaveError as err:
                print(f"load: publishing failed after {done} signups: {err}", file=sys.stderr)
                return 1
            for j, (i, meta) in enumerate(zip(chunk, results)):
                if meta.id != ids[j]:
                    print(f"load: signup {i} came back with id {meta.id}, not {ids[j]}", file=sys.stderr)
                    return 1
                out.write(f"{ids[j]} user-{i:06d}\n")
            out.flush()
            done += len(records)
            tmp = args.progress + ".tmp"
            with open(tmp, "w") as f:
                f.write(f"{done}\n")
            os.replace(tmp, args.progress)
            # Keep to the rate: sleep until this many signups are due.
            ahead = done / args.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.monotonic() - started
    print(f"load: {done} signups acknowledged in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

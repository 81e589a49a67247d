"""The choreography example's checks, run by run.sh against the work directory it made.

    python check.py wait  --work DIR --count N --bootstrap ... --stave BIN --timeout S
    python check.py check --work DIR --count N --bootstrap ... --stave BIN

`wait` returns (exit 0) once the run looks finished: the outbox names every signup, metrics
has seen N distinct events of each topic, and every group has committed everything (lag 0);
exit 1 if that did not happen within --timeout seconds. It judges nothing else.

`check` prints one PASS/FAIL line per check and exits 0 only if all pass. Files in the work
directory it reads: signups.txt (the load's acknowledged action ids), outbox.txt (the
emails), email-*.skipped (redeliveries the email instances absorbed), metrics.json (the
metrics service's counts); and the topics themselves and `stave group describe` output.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import time
import traceback

import stave

ACTIONS = "v1.user.signup"
EVENTS = "v1.user.signedup"
PARTITIONS = 6
# group -> topics it reads
GROUPS = {"users": [ACTIONS], "email": [EVENTS], "metrics": [ACTIONS, EVENTS]}


def group_offsets(stave_bin: str, bootstrap: str, group: str) -> dict[tuple[str, int], tuple[int, int, int]] | str:
    """(topic, partition) -> (committed, high watermark, lag) from `stave group describe`,
    or the error text."""
    proc = subprocess.run(
        [stave_bin, "--bootstrap", bootstrap, "--timeout", "10s", "group", "describe", group],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        return f"stave group describe {group} failed: {proc.stderr.strip()}"
    rows: dict[tuple[str, int], tuple[int, int, int]] = {}
    in_table = False
    for line in proc.stdout.splitlines():
        fields = line.split()
        if fields[:5] == ["TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "LAG"]:
            in_table = True
            continue
        if in_table and len(fields) == 5:
            try:
                rows[(fields[0], int(fields[1]))] = (int(fields[2]), int(fields[3]), int(fields[4]))
            except ValueError:
                return f"unexpected row in `group describe {group}`: {line!r}"
    return rows


def lag_problems(stave_bin: str, bootstrap: str, group: str) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """What keeps `group` from being caught up, and per topic the sums of committed offsets
    and of high watermarks. A partition the group never committed has no row, so a missing
    row counts as a problem (its records were not all consumed, or the topic is empty)."""
    rows = group_offsets(stave_bin, bootstrap, group)
    if isinstance(rows, str):
        return [rows], {}, {}
    problems = []
    committed: dict[str, int] = collections.Counter()
    high: dict[str, int] = collections.Counter()
    for topic in GROUPS[group]:
        for p in range(PARTITIONS):
            row = rows.get((topic, p))
            if row is None:
                problems.append(f"{topic}/{p}: no committed offset")
                continue
            c, h, lag = row
            committed[topic] += c
            high[topic] += h
            if lag != 0:
                problems.append(f"{topic}/{p}: lag {lag} (committed {c}, high watermark {h})")
    return problems, dict(committed), dict(high)


def read_lines(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def read_metrics(work: str) -> dict:
    try:
        with open(os.path.join(work, "metrics.json")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def metrics_events(metrics: dict, topic: str) -> int:
    return metrics.get("topics", {}).get(topic, {}).get("events", 0)


def wait(args) -> int:
    deadline = time.monotonic() + args.timeout
    signups = {fields[0] for fields in read_lines(os.path.join(args.work, "signups.txt"))}
    last = ""
    while True:
        outbox = read_lines(os.path.join(args.work, "outbox.txt"))
        emailed = {fields[1] for fields in outbox if len(fields) >= 2}
        metrics = read_metrics(args.work)
        missing_emails = len(signups - emailed)
        status = [
            f"emails for {len(signups) - missing_emails}/{len(signups)} signups",
            f"metrics {metrics_events(metrics, ACTIONS)}+{metrics_events(metrics, EVENTS)}/{2 * args.count}",
        ]
        done = missing_emails == 0 and len(signups) == args.count
        done = done and metrics_events(metrics, ACTIONS) >= args.count and metrics_events(metrics, EVENTS) >= args.count
        if done:
            lagging = []
            for group in GROUPS:
                problems, _, _ = lag_problems(args.stave, args.bootstrap, group)
                if problems:
                    lagging.append(f"{group} ({problems[0]}{', ...' if len(problems) > 1 else ''})")
            status.append("lag 0 in every group" if not lagging else "lagging: " + "; ".join(lagging))
            done = not lagging
        line = ", ".join(status)
        if line != last:
            print(f"  waiting: {line}", flush=True)
            last = line
        if done:
            return 0
        if time.monotonic() > deadline:
            print(f"  gave up waiting after {args.timeout:.0f} s", flush=True)
            return 1
        time.sleep(1)


def read_topic(bootstrap: str, topic: str, total: int, timeout_s: float = 60) -> list[stave.Record]:
    """Every record of `topic` (`total` of them, by the high watermarks).

    A PartitionReader does not move on to the next bootstrap address when its node fails (it
    raises from poll), and a new one starts at the first address again: so each attempt
    starts at the next address, from the beginning, until one reads everything."""
    addresses = bootstrap.split(",")
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        first = attempt % len(addresses)
        order = addresses[first:] + addresses[:first]
        records: list[stave.Record] = []
        try:
            with stave.PartitionReader(order, topic, offset="earliest") as reader:
                while len(records) < total and time.monotonic() < deadline:
                    records.extend(reader.poll_many(1000, timeout=1.0))
            return records
        except stave.StaveError as err:
            attempt += 1
            if time.monotonic() > deadline:
                raise
            print(f"      reading {topic} through {order[0]} failed ({str(err)[:120]}); "
                  f"trying {addresses[attempt % len(addresses)]}", flush=True)
            time.sleep(0.5)


def check(args) -> int:
    results: list[tuple[bool, str, str]] = []

    def report(ok: bool, name: str, detail: str) -> None:
        results.append((ok, name, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    # The load: N signups acknowledged, each with its own id.
    signup_lines = read_lines(os.path.join(args.work, "signups.txt"))
    signups = [fields[0] for fields in signup_lines]
    signup_set = set(signups)
    report(
        len(signups) == args.count and len(signup_set) == args.count,
        "load",
        f"{len(signups)} signups acknowledged, {len(signup_set)} distinct ids (want {args.count})",
    )

    # The topics: what the groups' committed offsets and high watermarks say, and the records.
    offsets = {group: lag_problems(args.stave, args.bootstrap, group) for group in GROUPS}
    high = offsets["metrics"][2]  # metrics reads both topics
    actions = read_topic(args.bootstrap, ACTIONS, high.get(ACTIONS, 0))
    action_ids = collections.Counter(r.id for r in actions)
    report(
        len(actions) == args.count and set(action_ids) == signup_set,
        f"{ACTIONS} holds each signup once",
        f"{len(actions)} records, {len(action_ids)} distinct ids, "
        f"{len(signup_set - set(action_ids))} acknowledged signups missing, "
        f"{sum(1 for n in action_ids.values() if n > 1)} ids written more than once",
    )

    events = read_topic(args.bootstrap, EVENTS, high.get(EVENTS, 0))
    event_ids = collections.Counter(r.id for r in events)
    cause_of = {}
    causes = collections.Counter()
    for r in events:
        cause = (r.header("causation-id") or b"").decode()
        cause_of[r.id] = cause
        causes[cause] += 1
    report(
        len(events) == args.count and len(event_ids) == args.count and set(causes) == signup_set
        and all(n == 1 for n in causes.values()),
        "users: every signup has exactly one v1.user.signedup event (causation-id)",
        f"{len(events)} events, {len(event_ids)} distinct event ids, "
        f"{len(signup_set - set(causes))} signups without an event, "
        f"{sum(1 for n in causes.values() if n > 1)} signups with several, "
        f"{len(set(causes) - signup_set)} events caused by no known signup",
    )

    # The outbox: one line per event id, every event emailed.
    outbox = read_lines(os.path.join(args.work, "outbox.txt"))
    per_event = collections.Counter(fields[0] for fields in outbox)
    duplicates = {e: n for e, n in per_event.items() if n > 1}
    not_emailed = set(event_ids) - set(per_event)
    unknown = set(per_event) - set(event_ids)
    emailed_signups = {cause_of.get(e) for e in per_event}
    report(
        not duplicates and not not_emailed and not unknown and len(outbox) == args.count
        and signup_set <= emailed_signups,
        "email: every signup got exactly one welcome email",
        f"{len(outbox)} outbox lines for {len(per_event)} event ids; "
        f"{len(duplicates)} event ids emailed more than once ({sum(duplicates.values()) - len(duplicates)} duplicate emails), "
        f"{len(not_emailed)} events not emailed, {len(unknown)} lines for unknown events",
    )
    if duplicates:
        sample = sorted(duplicates)[:3]
        for e in sample:
            lines = [" ".join(f) for f in outbox if f[0] == e]
            print(f"      e.g. {e}: " + " | ".join(lines))

    # Redeliveries the outbox check absorbed.
    skipped = {}
    for path in sorted(glob.glob(os.path.join(args.work, "email-*.skipped"))):
        skipped[os.path.basename(path)[: -len(".skipped")]] = len(read_lines(path))
    total_skipped = sum(skipped.values())
    # Of those, the events email-1 had emailed before its SIGKILL (run.sh notes the time):
    # records it handled but had not committed, read again by whoever took its partitions.
    killed_ms = None
    for fields in read_lines(os.path.join(args.work, "chaos.txt")):
        if fields[0] == "email-1-killed-ms":
            killed_ms = int(fields[1])
    first_line = {}
    for fields in outbox:
        first_line.setdefault(fields[0], fields)
    after_kill = 0
    for path in glob.glob(os.path.join(args.work, "email-*.skipped")):
        for fields in read_lines(path):
            sent = first_line.get(fields[0])
            if killed_ms is not None and sent and sent[2] == "email-1" and int(sent[3]) < killed_ms:
                after_kill += 1
    report(
        after_kill > 0,
        "email: redeliveries absorbed by the outbox check",
        f"{total_skipped} ({', '.join(f'{k} {v}' for k, v in skipped.items()) or 'none'}), "
        f"{after_kill} of them events email-1 had emailed before its SIGKILL"
        + ("" if killed_ms is not None else " (email-1 was not killed)")
        + "; 0 would mean the kill left nothing to redeliver",
    )

    # Both instances worked.
    per_instance = collections.Counter(fields[2] for fields in outbox if len(fields) >= 3)
    report(
        per_instance.get("email-1", 0) > 0 and per_instance.get("email-2", 0) > 0,
        "email: both instances sent part of the emails",
        ", ".join(f"{k} sent {v}" for k, v in sorted(per_instance.items())) or "no emails",
    )

    # Metrics.
    metrics = read_metrics(args.work)
    topics = metrics.get("topics", {})
    ok = metrics.get("final") is True and all(metrics_events(metrics, t) == args.count for t in (ACTIONS, EVENTS))
    report(
        ok,
        "metrics counted every event",
        "; ".join(f"{t}: {c.get('events')} events in {c.get('deliveries')} deliveries" for t, c in sorted(topics.items()))
        + ("" if metrics.get("final") else " (no final write at exit)")
        + f" (want {args.count} events per topic)",
    )

    # Lag.
    for group, (problems, committed, hw) in offsets.items():
        report(
            not problems,
            f"group {group} lag 0",
            "; ".join(f"{t}: committed {committed.get(t, 0)} of {hw.get(t, 0)}" for t in GROUPS[group])
            + (f"; {'; '.join(problems[:4])}" if problems else ""),
        )

    failed = [name for ok, name, _ in results if not ok]
    print()
    if failed:
        print(f"FAIL: {len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
        return 1
    print(f"PASS: all {len(results)} checks")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["wait", "check"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--stave", required=True)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    if args.mode == "wait":
        return wait(args)
    try:
        return check(args)
    except Exception:  # a check that cannot be made has failed; say why
        traceback.print_exc()
        print("\nFAIL: the checks could not be completed (see the error above)")
        return 1


if __name__ == "__main__":
    sys.exit(main())

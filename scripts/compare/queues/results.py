#!/usr/bin/env python3
"""Records and reports the runs of scripts/compare/queues.sh, W6 (Python 3 standard library only).

  results.py record RESULTS.jsonl --stdout F [fields...]   one run: `stave bench queue --json`
                                                           or queues-peer (the same keys)
  results.py fail   RESULTS.jsonl --error TEXT [fields...] a run that gave no figure
  results.py report DIR                                    markdown tables + summary.{md,json}

Each run becomes one JSON line in RESULTS.jsonl. A run whose tool failed, or whose output
cannot be read or does not add up (another record count, records left in the queue), is
recorded with "status": "failed" and no figures: the report shows it as FAILED and never fills
the gap with a number.
"""

import argparse
import json
import os
import statistics
import sys

FIELDS = ("system", "variant", "workload", "flush", "durability", "rep", "partitions", "records",
          "members", "credit", "work_ms", "cmd", "loadavg_before")
FIGURES = ("records_per_s", "ack_p50_us", "ack_p99_us", "elapsed_s")
PEER_EXTRAS = ("server_version", "ack_mode", "ack_latency", "clock", "deliver_to_ack_p50_us",
               "deliver_to_ack_p99_us", "work_mean_us", "ideal_records_per_s", "redelivered",
               "left_in_queue", "preload_s", "preload_records_per_s")
SYSTEMS = ("stave", "nats", "rabbitmq")
NAMES = {"stave": "Stave", "nats": "NATS JetStream", "rabbitmq": "RabbitMQ"}
W6A_TARGET_RATIO = 1.5   # Stave >= 1.5x the better peer (issue, W6a)
W6B_TARGET_SHARE = 0.8   # Stave >= 0.8 x the ideal members x 1000/work_ms (issue, W6b)


def add_common(p):
    p.add_argument("results")
    p.add_argument("--system", required=True, choices=SYSTEMS)
    p.add_argument("--variant", default="", help="a peer's client variant (NATS: the ack mode)")
    p.add_argument("--workload", required=True)
    p.add_argument("--flush", required=True, help="the Stave flush policy of this cell")
    p.add_argument("--durability", default="", help="what the system does about fsync here")
    p.add_argument("--rep", type=int, default=1)
    p.add_argument("--partitions", type=int, default=0, help="Stave's topic; 0 for a peer")
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--credit", type=int, required=True)
    p.add_argument("--work-ms", dest="work_ms", type=float, required=True)
    p.add_argument("--cmd", default="")
    p.add_argument("--raw", action="append", default=[], help="raw files kept for this run")
    p.add_argument("--loadavg-before", dest="loadavg_before", default="",
                   help="/proc/loadavg before the run: other work on the machine skews figures")


def base(a):
    rec = {k: getattr(a, k) for k in FIELDS}
    rec["raw"] = a.raw
    return rec


def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def fail(path, rec, error):
    keep = set(FIELDS) | {"raw"}
    rec = {k: v for k, v in rec.items() if k in keep}
    rec.update(status="failed", error=error)
    append(path, rec)
    part = f" {rec['partitions']}p" if rec.get("partitions") else ""
    print(f"  FAILED: {rec['system']}{part} {rec['workload']} flush={rec['flush']}: {error}",
          file=sys.stderr)
    sys.exit(1)


def last_json_line(path):
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("{")]
    if not lines:
        raise ValueError(f"no JSON line in {path}")
    return json.loads(lines[-1])


def record(a):
    rec = base(a)
    try:
        out = last_json_line(a.stdout)
    except (OSError, ValueError) as e:
        fail(a.results, rec, f"cannot read the tool's JSON: {e}")
    missing = [k for k in ("records", "records_per_s", "elapsed_s") if out.get(k) is None]
    if missing:
        fail(a.results, rec, f"the tool's JSON lacks {', '.join(missing)}")
    if int(out["records"]) != a.records:
        fail(a.results, rec, f"the tool reports {out['records']} records, not {a.records}")
    if out.get("left_in_queue"):
        fail(a.results, rec, f"{out['left_in_queue']} records left in the queue")
    rec.update({k: out.get(k) for k in FIGURES})
    rec.update({k: out[k] for k in PEER_EXTRAS if k in out})
    rec["status"] = "ok"
    append(a.results, rec)
    p99 = rec.get("ack_p99_us")
    print(f"  {a.system}: {rec['records_per_s']:,.0f} records/s, ack p99 "
          f"{'n/a' if p99 is None else f'{p99:,.0f} µs'}", file=sys.stderr)


# ---------------------------------------------------------------- report

def load(run_dir):
    runs = []
    with open(os.path.join(run_dir, "results.jsonl")) as f:
        for ln in f:
            if ln.strip():
                runs.append(json.loads(ln))
    env = {}
    env_path = os.path.join(run_dir, "env.json")
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = json.load(f)
    return runs, env


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt_rate(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:,.1f} ms" if v >= 10_000 else f"{v:,.0f} µs"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def row_key(r):
    """One table row: Stave per partition count, a peer per client variant."""
    if r["system"] == "stave":
        return ("stave", r.get("partitions") or 0, "")
    return (r["system"], 0, r.get("variant") or "")


def row_name(key):
    system, partitions, variant = key
    if system == "stave":
        return f"Stave, {partitions} partition{'s' if partitions != 1 else ''}"
    return NAMES[system] + (f" (ack: {variant})" if variant else "")


class Cell:
    """The runs of one workload under one flush policy, by table row."""

    def __init__(self, runs, workload, flush):
        self.workload, self.flush = workload, flush
        self.runs = [r for r in runs if r["workload"] == workload and r["flush"] == flush]

    def keys(self):
        order = {s: i for i, s in enumerate(SYSTEMS)}
        return sorted({row_key(r) for r in self.runs}, key=lambda k: (order[k[0]], k[1], k[2]))

    def of(self, key):
        return sorted((r for r in self.runs if row_key(r) == key), key=lambda r: r["rep"])

    def ok(self, key):
        return [r for r in self.of(key) if r.get("status") == "ok"]

    def rate(self, key):
        return median(r.get("records_per_s") for r in self.ok(key))

    def best_peer(self, rep):
        """The highest records/s of any peer row in one repeat: (row key, records/s)."""
        best = None
        for r in self.runs:
            if r["system"] != "stave" and r.get("status") == "ok" and r["rep"] == rep:
                if best is None or r["records_per_s"] > best[1]:
                    best = (row_key(r), r["records_per_s"])
        return best

    def ack_ratios(self, key):
        """Stave's ack p99 / the lowest peer ack p99 in the same repeat (lower is better)."""
        out = []
        for r in self.ok(key):
            peers = [p["ack_p99_us"] for p in self.runs if p["system"] != "stave"
                     and p.get("status") == "ok" and p["rep"] == r["rep"] and p.get("ack_p99_us")]
            if peers and r.get("ack_p99_us") is not None:
                out.append(r["ack_p99_us"] / min(peers))
        return out

    def ratios(self, key):
        """Stave / the best peer, one per repeat in which both were measured."""
        out = []
        for r in self.ok(key):
            best = self.best_peer(r["rep"])
            if best:
                out.append(r["records_per_s"] / best[1])
        return out


def rate_cell(cell, key):
    rs, ok = cell.of(key), cell.ok(key)
    if rs and not ok:
        return "FAILED"
    failed = len(rs) - len(ok)
    return fmt_rate(cell.rate(key)) + (f" ({failed} FAILED)" if failed else "")


def lat_cell(cell, key):
    rs = cell.ok(key)
    if not rs:
        return "FAILED" if cell.of(key) else "-"
    p50, p99 = median(r.get("ack_p50_us") for r in rs), median(r.get("ack_p99_us") for r in rs)
    if p50 is None and p99 is None:
        return "n/a"
    return f"{fmt_us(p50)} / {fmt_us(p99)}"


def spread(cell, key):
    return " ".join("FAILED" if r.get("status") != "ok" else fmt_rate(r["records_per_s"])
                    for r in cell.of(key)) or "-"


def ideal_text(cell, key, members, work_ms):
    """W6b: the share of the ideal members x 1000/work_ms, and of the ideal at the sleep the
    client measured (where it reports one)."""
    v = cell.rate(key)
    if v is None or not work_ms:
        return ""
    ideal = members * 1000.0 / work_ms
    text = f"{v / ideal:.0%} of {ideal:,.0f}"
    measured = median(r.get("ideal_records_per_s") for r in cell.ok(key))
    if measured:
        text += f"; {v / measured:.0%} of {measured:,.0f} at its measured sleep"
    return text


def target_text(cell, key, members, work_ms):
    if cell.workload == "W6a":
        m = median(cell.ratios(key))
        if m is None:
            return "-"
        return f"{'met' if m >= W6A_TARGET_RATIO else 'NOT met'} (≥ {W6A_TARGET_RATIO}x the best peer)"
    v = cell.rate(key)
    if v is None or not work_ms:
        return "-"
    ideal = members * 1000.0 / work_ms
    verdict = "met" if v >= W6B_TARGET_SHARE * ideal else "NOT met"
    return f"{verdict} (≥ {W6B_TARGET_SHARE:.0%} of {ideal:,.0f}); {ideal_text(cell, key, members, work_ms)}"


def report(a):
    runs, env = load(a.dir)
    workloads = [w for w in ("W6a", "W6b") if any(r["workload"] == w for r in runs)]
    flushes = [f for f in ("always", "never") if any(r["flush"] == f for r in runs)]
    flushes += sorted({r["flush"] for r in runs} - set(flushes))
    lines, summary = [], {"env": env, "cells": []}
    lines.append("# W6: queue groups, Stave vs NATS JetStream and RabbitMQ\n")
    if env:
        versions = []
        if env.get("nats_server_version"):
            versions.append(f"nats-server {env['nats_server_version']}")
        if env.get("rabbitmq_version"):
            versions.append(f"RabbitMQ {env['rabbitmq_version']} (Erlang/OTP {env.get('erlang_otp')})")
        lines.append(
            f"{env.get('members')} members acking every record, {env.get('size')} B records, "
            f"credit / prefetch {env.get('credit')}; medians over {env.get('repeat')} repeat(s); "
            + "".join(v + ", " for v in versions)
            + f"load average at the start {' '.join((env.get('loadavg_start') or '').split()[:3])}.\n")
    for w in workloads:
        for fl in flushes:
            cell = Cell(runs, w, fl)
            if cell.runs:
                lines += cell_table(cell, env, summary)
    status = 0 if all(r.get("status") == "ok" for r in runs) else 1
    if status:
        lines.append("Some runs FAILED (see results.jsonl for the error and raw/ for the output); "
                     "no figure was put in their place.\n")
    lines += NOTES
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.dir, "summary.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return status


def cell_table(cell, env, summary):
    w, fl = cell.workload, cell.flush
    members = env.get("members", 8)
    work_ms = env.get("work_ms_w6b", 1) if w == "W6b" else 0
    title = "raw (members do no work)" if w == "W6a" else f"scaling (each member sleeps {work_ms:g} ms per record)"
    durability = {}
    for r in sorted(cell.runs, key=lambda r: SYSTEMS.index(r["system"])):
        if r["system"] != "stave":
            durability.setdefault(NAMES[r["system"]], r.get("durability", ""))
    out = [f"## {w} {title}, Stave flush={fl}\n"]
    if durability:
        out.append("Peers: " + "; ".join(f"{k}, {v}" for k, v in durability.items()) + ".\n")
    out += ["| system | records/s | ack p50 / p99 | Stave / best peer | target or share of the ideal | every run (records/s) |",
            "|---|---|---|---|---|---|"]
    keys = cell.keys()
    if not any(k[0] == "stave" for k in keys):
        keys = [("stave", int(p), "") for p in str(env.get("partitions", "1 6")).split()] + keys
    entry = {"workload": w, "flush": fl, "work_ms": work_ms, "rows": {}}
    for key in keys:
        if key[0] == "stave":
            ratios, ack_ratios = cell.ratios(key), cell.ack_ratios(key)
            ratio, target = fmt_ratio(median(ratios)), target_text(cell, key, members, work_ms)
            if ack_ratios:
                ratio += f"; ack p99 {fmt_ratio(median(ack_ratios))}"
        else:
            ratios, ratio, target = None, "", ideal_text(cell, key, members, work_ms)
        out.append(f"| {row_name(key)} | {rate_cell(cell, key)} | {lat_cell(cell, key)} | {ratio} | "
                   f"{target} | {spread(cell, key)} |")
        entry["rows"][row_name(key)] = summarise(cell, key, ratios)
        if key[0] == "stave":
            entry["rows"][row_name(key)]["ack_p99_ratio_to_lowest_peer_median"] = median(cell.ack_ratios(key))
    out.append("")
    summary["cells"].append(entry)
    return out


def summarise(cell, key, ratios):
    ok = cell.ok(key)
    d = {k: median(r.get(k) for r in ok) for k in FIGURES}
    d.update(runs=len(cell.of(key)), failed=len(cell.of(key)) - len(ok),
             each_records_per_s=[r["records_per_s"] for r in ok])
    for k in ("deliver_to_ack_p99_us", "work_mean_us", "ideal_records_per_s", "preload_records_per_s"):
        if any(r.get(k) is not None for r in ok):
            d[k] = median(r.get(k) for r in ok)
    if ratios is not None:
        d.update(ratio_to_best_peer_median=median(ratios), ratio_to_best_peer_each=ratios)
    return d


NOTES = [
    "Reading the tables:",
    "- records/s = records / (first delivery -> last ack); higher is better. Stave / best peer = "
    "Stave's records/s over the best peer row's in the same repeat (median over repeats); "
    ">1: Stave faster. \"ack p99\" there: Stave's ack p99 over the lowest peer ack p99 of the "
    "repeat; <1: Stave lower.",
    "- ack p50 / p99: from sending an ack to its confirmation; lower is better. NATS: the server's "
    "reply to an ack sent with a reply subject, sent once the message is removed from the "
    "work-queue stream; \"confirm\" pipelines the acks (up to the credit in flight per member, so "
    "the wait behind other acks counts), \"sync\" is DoubleAck (one in flight per member). "
    "RabbitMQ: n/a, AMQP 0-9-1 does not confirm a basic.ack (results.jsonl has delivery -> ack "
    "sent as `deliver_to_ack_*`).",
    "- NATS and RabbitMQ have no partitions: one stream or queue each, measured once per cell "
    "and set against both Stave topics.",
    "- W6b: a 1 ms sleep lasts longer than 1 ms (timer slack, scheduling on 2 busy cores); "
    "\"at its measured sleep\" divides by members / the mean measured sleep instead of 8,000.",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    p = sub.add_parser("record")
    add_common(p)
    p.add_argument("--stdout", required=True)
    p = sub.add_parser("fail")
    add_common(p)
    p.add_argument("--error", required=True)
    p = sub.add_parser("report")
    p.add_argument("dir")
    a = ap.parse_args()
    if a.cmd_name == "record":
        record(a)
    elif a.cmd_name == "fail":
        fail(a.results, base(a), a.error)
    else:
        sys.exit(report(a))


if __name__ == "__main__":
    main()

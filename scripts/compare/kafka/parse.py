#!/usr/bin/env python3
"""Parser and reporter for scripts/compare/kafka.sh (Python 3 standard library only).

  parse.py record --kind KIND --workload W --side kafka|stave --round R --cmd CMD
                  --stdout FILE --stderr FILE --exit RC --out FILE.json
      Turns one tool's raw output into one run record (JSON). KIND is one of
      kafka-producer (ProducerPerformance), kafka-consumer (ConsumerPerformance),
      kafka-e2e (EndToEndLatency), kafka-e2e-us (E2eLatencyUs.java), stave (any
      `stave bench ... --json`: the last line of stdout is the JSON object).
      Exits 1 (after writing the record, with "error") when the output holds no figure.

  parse.py summary RUNDIR
      Reads RUNDIR/runs/*.json and RUNDIR/meta.json, writes RUNDIR/summary.json and
      RUNDIR/summary.md and prints the markdown.

Every figure comes from a tool's output; nothing is estimated or filled in. Kafka's
ProducerPerformance and EndToEndLatency print latency percentiles in whole milliseconds;
those are kept as such (resolution_us = 1000) and their ratios are shown as ranges.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

NUM = r"([0-9]+(?:\.[0-9]+)?)"

# ProducerPerformance (Kafka 4.x) final line:
# 1000000 records sent, 191681.0 records/sec (187.19 MB/sec), 150.11 ms avg latency,
# 420.00 ms max latency, 140 ms 50th, 290 ms 95th, 380 ms 99th, 410 ms 99.9th.
PRODUCER_TOTAL = re.compile(
    r"^(\d+) records sent, " + NUM + r" records/sec \(" + NUM + r" MB/sec\), "
    + NUM + r" ms avg latency, " + NUM + r" ms max latency, (\d+) ms 50th, (\d+) ms 95th, "
    r"(\d+) ms 99th, (\d+) ms 99\.9th\.\s*$"
)

# EndToEndLatency (Kafka 4.x):
# Avg latency: 1.2345 ms
# Percentiles: 50th = 1, 99th = 2, 99.9th = 5
E2E_AVG = re.compile(r"^Avg latency: " + NUM + r" ms\s*$")
E2E_PCT = re.compile(r"^Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)\s*$")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def parse_kafka_producer(out):
    for line in reversed(out.splitlines()):
        m = PRODUCER_TOTAL.match(line.strip())
        if m:
            g = m.groups()
            return {
                "records": int(g[0]),
                "records_per_s": float(g[1]),
                "mb_per_s": float(g[2]),  # MiB/s: ProducerPerformance divides by 1024 * 1024
                "mean_us": float(g[3]) * 1000,
                "max_us": float(g[4]) * 1000,
                "p50_us": int(g[5]) * 1000,
                "p95_us": int(g[6]) * 1000,
                "p99_us": int(g[7]) * 1000,
                "p999_us": int(g[8]) * 1000,
                "latency": "send to ack (producer callback), per record",
                "resolution_us": 1000,
            }
    raise ValueError("no ProducerPerformance total line ('N records sent, ... 99.9th.') in stdout")


def parse_kafka_consumer(out):
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time,"):
            header = [h.strip() for h in line.split(",")]
            for data in lines[i + 1:]:
                cells = [c.strip() for c in data.split(",")]
                if len(cells) != len(header):
                    continue
                row = dict(zip(header, cells))
                try:
                    rec = {
                        "records": int(float(row["data.consumed.in.nMsg"])),
                        "bytes_mib": float(row["data.consumed.in.MB"]),
                        # over the whole run, joining the group included
                        "records_per_s": float(row["nMsg.sec"]),
                        "mb_per_s": float(row["MB.sec"]),
                        "rebalance_ms": float(row["rebalance.time.ms"]),
                        "fetch_ms": float(row["fetch.time.ms"]),
                        # fetching only (the group join time left out)
                        "fetch_records_per_s": float(row["fetch.nMsg.sec"]),
                        "fetch_mb_per_s": float(row["fetch.MB.sec"]),
                    }
                except (KeyError, ValueError):
                    continue
                rec["elapsed_s"] = (rec["rebalance_ms"] + rec["fetch_ms"]) / 1000.0
                return rec
    raise ValueError("no ConsumerPerformance result line (header 'start.time, ...') in stdout")


def parse_kafka_e2e(out):
    avg = pct = None
    for line in out.splitlines():
        m = E2E_AVG.match(line.strip())
        if m:
            avg = float(m.group(1))
        m = E2E_PCT.match(line.strip())
        if m:
            pct = [int(x) for x in m.groups()]
    if avg is None or pct is None:
        raise ValueError("no 'Avg latency:' and 'Percentiles:' lines from EndToEndLatency in stdout")
    return {
        "mean_us": avg * 1000,
        "p50_us": pct[0] * 1000,
        "p99_us": pct[1] * 1000,
        "p999_us": pct[2] * 1000,
        "latency": "send, wait for the ack, poll until read (one record in flight)",
        "resolution_us": 1000,
        "truncated": "EndToEndLatency keeps whole milliseconds (floor): 1 means 1.0-1.99 ms",
    }


def last_json_line(out, what):
    for line in reversed(out.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict):
            return obj
        break
    raise ValueError(f"the last line of {what}'s stdout is not a JSON object")


def parse_kafka_e2e_us(out):
    rec = last_json_line(out, "E2eLatencyUs")
    rec["latency"] = "send, wait for the ack, poll until read (one record in flight)"
    rec["resolution_us"] = 0.001
    return rec


def parse_stave(out):
    rec = last_json_line(out, "stave bench --json")
    rec.setdefault("resolution_us", 1)
    return rec


PARSERS = {
    "kafka-producer": parse_kafka_producer,
    "kafka-consumer": parse_kafka_consumer,
    "kafka-e2e": parse_kafka_e2e,
    "kafka-e2e-us": parse_kafka_e2e_us,
    "stave": parse_stave,
}


def cmd_record(a):
    out = read(a.stdout)
    rec = {
        "workload": a.workload,
        "side": a.side,
        "round": a.round,
        "kind": a.kind,
        "command": a.cmd,
        "exit_code": a.exit,
        "stdout_file": os.path.basename(a.stdout),
        "stderr_file": os.path.basename(a.stderr),
    }
    err = None
    try:
        rec["result"] = PARSERS[a.kind](out)
    except ValueError as e:
        err = str(e)
    if a.exit != 0 and err is None:
        err = f"exited with {a.exit}"
    if err is not None:
        tail = read(a.stderr).strip().splitlines()[-5:]
        rec["error"] = err
        rec["stderr_tail"] = tail
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=2)
        f.write("\n")
    if err is not None:
        print(f"  FAILED ({err}); see {a.stdout} and {a.stderr}", file=sys.stderr)
        for l in rec["stderr_tail"]:
            print(f"    {l}", file=sys.stderr)
        return 1
    r = rec["result"]
    bits = []
    if r.get("records_per_s") is not None:
        bits.append(f"{r['records_per_s']:,.0f} records/s")
    if r.get("mb_per_s") is not None:
        bits.append(f"{r['mb_per_s']:.1f} MiB/s")
    for k in ("p50_us", "p99_us", "p999_us"):
        if r.get(k) is not None:
            bits.append(f"{k[:-3]} {fmt_us(r[k], r.get('resolution_us', 1))}")
    print("  " + ", ".join(bits))
    return 0


# ---------------------------------------------------------------------------- summary

def fmt_num(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_us(v, resolution_us=1):
    if v is None:
        return "—"
    if resolution_us >= 1000:
        ms = v / 1000
        # a median of two whole-ms figures may end in .5
        return f"{ms:.0f} ms (whole ms)" if ms == int(ms) else f"{ms:.1f} ms (whole ms)"
    if v >= 10000:
        return f"{v / 1000:.1f} ms"
    return f"{v / 1000:.3f} ms"


def compact(v, kind):
    if v is None:
        return "—"
    if kind == "lat":
        return f"{v / 1000:.3g}ms"
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def median(vals):
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    return statistics.median(vals)


# (workload, side, kind-or-None) -> list of results
def collect(rundir):
    runs = []
    for p in sorted(glob.glob(os.path.join(rundir, "runs", "*.json"))):
        with open(p) as f:
            runs.append(json.load(f))
    return runs


def pick(runs, workload, side, kind=None, stave_cmd=None):
    ok, failed = [], 0
    for r in runs:
        if r["workload"] != workload or r["side"] != side:
            continue
        if kind is not None and r["kind"] != kind:
            continue
        if stave_cmd is not None and f"bench {stave_cmd} " not in r["command"] + " ":
            continue
        if "error" in r:
            failed += 1
        else:
            ok.append(r["result"])
    return ok, failed


# Rows of the table: (workload id, label, stave selector, kafka selector, metrics)
# A metric: (field, label, kind) with kind "rate" (higher is better) or "lat" (lower is better).
THROUGHPUT = [("records_per_s", "records/s", "rate"), ("mb_per_s", "MiB/s", "rate")]
LATENCY = [("p50_us", "p50 latency", "lat"), ("p99_us", "p99 latency", "lat"),
           ("p999_us", "p99.9 latency", "lat"), ("mean_us", "mean latency", "lat")]

ROWS = [
    # key, workload id, what is compared, stave selector (bench subcommand), kafka selector, metrics
    ("W1 1KiB never", "w1-never",
     "produce 1 KiB records as fast as possible, acks=all: Stave `bench produce --flush never` vs "
     "Kafka ProducerPerformance, Kafka's default durability (no fsync per message)",
     "produce", ("kafka-producer",), THROUGHPUT),
    ("W1 1KiB always", "w1-always",
     "the same with Stave `--flush always` vs Kafka topic flush.messages=1 (fsync per append)",
     "produce", ("kafka-producer",), THROUGHPUT),
    ("W2 100B never", "w2-never",
     "produce 100 B records, acks=all: Stave `--flush never` vs Kafka's default durability",
     "produce", ("kafka-producer",), THROUGHPUT),
    ("W2 100B always", "w2-always",
     "the same with Stave `--flush always` vs Kafka flush.messages=1",
     "produce", ("kafka-producer",), THROUGHPUT),
    ("W3 consume", "w3",
     "consume W1-never's records from the beginning with one consumer group: Stave `bench consume "
     "--group` (clock from the first record) vs Kafka ConsumerPerformance --group, its fetch rate "
     "(fetch.nMsg.sec / fetch.MB.sec: the group join left out)",
     "consume", ("kafka-consumer", "fetch"), THROUGHPUT),
    ("W3 consume (Kafka incl. join)", "w3",
     "the same Stave figure vs ConsumerPerformance's overall rate (nMsg.sec / MB.sec), which also "
     "counts joining the group (and creating __consumer_offsets): not like with like, for reference",
     "consume", ("kafka-consumer",), THROUGHPUT),
    ("W4a e2e 1-in-flight", "w4-inflight1",
     "end-to-end latency, one 1 KiB record in flight (send, ack, read it back): Stave `bench e2e "
     "--in-flight 1` vs Kafka's EndToEndLatency tool, which keeps whole milliseconds",
     "e2e", ("kafka-e2e",), LATENCY),
    ("W4a e2e 1-in-flight (µs loop)", "w4-inflight1",
     "the same Stave figures vs EndToEndLatency's own loop timed in microseconds "
     "(scripts/compare/kafka/E2eLatencyUs.java, same settings, same broker run)",
     "e2e", ("kafka-e2e-us",), LATENCY),
    ("W4b 5000/s e2e vs ack", "w4-rate",
     "NOT like with like: Stave `bench e2e --rate 5000` end-to-end latency (produce to consume) vs "
     "Kafka ProducerPerformance --throughput 5000 latency (send to ack only)",
     "e2e", ("kafka-producer",), LATENCY),
    ("W4c 5000/s ack vs ack", "w4-rate",
     "like with like: Stave `bench produce --rate 5000` send-to-ack latency vs the same Kafka "
     "ProducerPerformance --throughput 5000 run (send to ack)",
     "produce", ("kafka-producer",), LATENCY),
]


def ratio_cell(s, k, kind, k_res):
    """Stave / Kafka. For whole-ms Kafka figures, the range over [k, k+1) ms."""
    if s is None or k is None:
        return "—"
    if kind == "lat" and k_res >= 1000:
        lo_k, hi_k = k, k + k_res
        if lo_k == 0:
            return f"{fmt_ratio(s / hi_k)}–∞"
        lo, hi = fmt_ratio(s / hi_k), fmt_ratio(s / lo_k)
        return lo if lo == hi else f"{lo}–{hi}"
    if k == 0:
        return "—"
    return fmt_ratio(s / k)


def fmt_ratio(x):
    if x < 0.1:
        return f"{x:.2g}"
    if x < 1:
        return f"{x:.2f}"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def cmd_summary(a):
    rundir = a.rundir
    runs = collect(rundir)
    meta = {}
    mp = os.path.join(rundir, "meta.json")
    if os.path.exists(mp):
        with open(mp) as f:
            meta = json.load(f)
    stave_present = any(r["side"] == "stave" for r in runs)

    table = []
    lines = []
    lines.append(f"## Stave vs Apache Kafka {meta.get('kafka_version', '?')} — single node, loopback, "
                 f"RF 1, 6 partitions ({meta.get('mode', 'full')} mode, {meta.get('rounds', '?')} round(s))")
    lines.append("")
    lines.append("Figures are medians over the rounds; each side ran on a fresh node, the two sides "
                 "alternating. Ratio = Stave / Kafka: for records/s and MiB/s higher is better for "
                 "Stave (>1 = Stave faster); for latency lower is better for Stave (<1 = Stave lower).")
    lines.append("")
    lines.append("| workload | metric | Stave | Kafka | Stave/Kafka | each run: Stave / Kafka |")
    lines.append("|---|---|---:|---:|---:|---:|")
    any_failed = False
    legend = []
    for key, wid, label, ssel, ksel, metrics in ROWS:
        s_runs, s_fail = pick(runs, wid, "stave", "stave", ssel)
        k_runs, k_fail = pick(runs, wid, "kafka", ksel[0])
        if not s_runs and not k_runs and not s_fail and not k_fail:
            continue
        any_failed = any_failed or s_fail > 0 or k_fail > 0
        legend.append(f"- **{key}**: {label}")
        fetch_only = len(ksel) > 1 and ksel[1] == "fetch"
        for field, mlabel, kind in metrics:
            kfield = field
            if fetch_only:
                kfield = {"records_per_s": "fetch_records_per_s", "mb_per_s": "fetch_mb_per_s"}[field]
            sv = median([r.get(field) for r in s_runs])
            kv = median([r.get(kfield) for r in k_runs])
            if sv is None and kv is None:
                continue
            # Whole-ms tools: their percentiles are whole ms, their means are not.
            k_res = 1
            if kind == "lat" and field != "mean_us":
                k_res = max([r.get("resolution_us", 1) for r in k_runs] or [1])
            if kind == "lat":
                scell, kcell = fmt_us(sv), fmt_us(kv, k_res)
            else:
                scell, kcell = fmt_num(sv), fmt_num(kv)
            if s_fail and sv is None:
                scell = "FAILED"
            if k_fail and kv is None:
                kcell = "FAILED"
            if not stave_present:
                scell = "not run"
            rc = ratio_cell(sv, kv, kind, k_res)
            def each(rs, f, failed):
                vals = [compact(r.get(f), kind) for r in rs]
                vals += ["FAILED"] * failed
                return ", ".join(vals) if vals else "—"
            lines.append(f"| {key} | {mlabel} | {scell} | {kcell} | {rc} | "
                         f"{each(s_runs, field, s_fail)} / {each(k_runs, kfield, k_fail)} |")
            table.append({"workload": wid, "row": key, "compares": label, "metric": mlabel, "field": field,
                          "kafka_field": kfield, "stave": sv, "kafka": kv,
                          "ratio": (sv / kv) if (sv is not None and kv) else None,
                          "stave_values": [r.get(field) for r in s_runs],
                          "kafka_values": [r.get(kfield) for r in k_runs],
                          "kafka_resolution_us": k_res, "stave_runs": len(s_runs),
                          "kafka_runs": len(k_runs), "stave_failed": s_fail, "kafka_failed": k_fail})
    lines.append("")
    lines.extend(legend)
    lines.append("")
    lines.append("Whole-ms Kafka latencies: EndToEndLatency keeps whole milliseconds (floor) and "
                 "ProducerPerformance times with a millisecond clock, so their percentiles are whole "
                 "ms and the ratio is the range Stave/(k+1 ms)–Stave/(k ms). W4a's second row repeats "
                 "EndToEndLatency's loop with a microsecond clock (scripts/compare/kafka/E2eLatencyUs.java).")
    lines.append("")
    dm = meta.get("durability_mapping")
    if dm:
        lines.append("Durability mapping:")
        for d in dm:
            lines.append(f"- {d}")
        lines.append("")
    notes = meta.get("notes") or []
    for n in notes:
        lines.append(f"- {n}")
    if notes:
        lines.append("")
    lines.append(f"Raw outputs and one JSON file per run: {rundir}")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(rundir, "summary.md"), "w") as f:
        f.write(md)
    with open(os.path.join(rundir, "summary.json"), "w") as f:
        json.dump({"meta": meta, "rows": table, "runs": runs}, f, indent=2)
        f.write("\n")
    print(md, end="")
    return 1 if any_failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    r = sub.add_parser("record")
    r.add_argument("--kind", required=True, choices=sorted(PARSERS))
    r.add_argument("--workload", required=True)
    r.add_argument("--side", required=True, choices=["kafka", "stave"])
    r.add_argument("--round", required=True, type=int)
    r.add_argument("--cmd", required=True)
    r.add_argument("--stdout", required=True)
    r.add_argument("--stderr", required=True)
    r.add_argument("--exit", required=True, type=int)
    r.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("rundir")
    a = ap.parse_args()
    if a.action == "record":
        return cmd_record(a)
    return cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())

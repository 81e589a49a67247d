"""Table of a scripts/compare/clients.sh run: ``python3 summary.py RUN_DIR``.

Reads RUN_DIR/env.json and RUN_DIR/runs.jsonl (one line per bench run) and the benches' raw
stdout, writes RUN_DIR/summary.json and RUN_DIR/summary.md, and prints the markdown. Standard
library only. Figures are medians over the rounds; ratio = Stave / Kafka (records/s: higher is
better, >1 means Stave is faster).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys

NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"

# Stave's benches print lines for people; the Kafka programs print "RESULT {json}" lines.
STAVE_PATTERNS = {
    # python -m stave.bench: "produce: 1,000,000 records in 6.17 s: 162,000 records/s, 16.2 MB/s"
    "python": {
        "publish": re.compile(r"^produce: " + NUM + r" records in " + NUM + r" s: " + NUM + r" records/s", re.M),
        "consume": re.compile(r"^consume: " + NUM + r" records in " + NUM + r" s: " + NUM + r" records/s", re.M),
    },
    # clients/go/cmd/bench: "publish: 2000000 records of 100 B in 6.98 s: 286655 records/s, ..."
    # "consume: N records through a group of 1 in X s from the first record: Y records/s
    #  (X s and Y records/s from joining)"
    "go": {
        "publish": re.compile(r"^publish: " + NUM + r" records of \d+ B in " + NUM + r" s: " + NUM + r" records/s", re.M),
        "consume": re.compile(r"^consume: " + NUM + r" records through a group of \d+ in " + NUM
                              + r" s from the first record: " + NUM + r" records/s \(" + NUM + r" s and "
                              + NUM + r" records/s from joining\)", re.M),
    },
}

TARGETS = {("python", "publish"): 50_000, ("python", "consume"): 100_000,
           ("go", "publish"): 200_000, ("go", "consume"): 300_000}

LANG_NAME = {"python": "Python", "go": "Go"}


def num(s: str) -> float:
    return float(s.replace(",", ""))


def parse(run_dir: str, rec: dict) -> dict:
    """Figures of one bench run: {'publish': r/s, 'consume': r/s, 'consume_join': r/s}."""
    try:
        with open(os.path.join(run_dir, rec["stdout"])) as f:
            out = f.read()
    except OSError:
        return {}
    fig: dict[str, float] = {}
    if rec["side"] == "kafka":
        for line in out.splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line[len("RESULT "):])
                fig[r["phase"]] = r["records_per_s"]
                if "records_per_s_from_join" in r:
                    fig[r["phase"] + "_join"] = r["records_per_s_from_join"]
    else:
        pats = STAVE_PATTERNS[rec["lang"]]
        m = pats["publish"].search(out)
        if m:
            fig["publish"] = num(m.group(3))
        m = pats["consume"].search(out)
        if m:
            fig["consume"] = num(m.group(3))
            if m.lastindex and m.lastindex >= 5:
                fig["consume_join"] = num(m.group(5))
    return fig


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def short(v: float | None) -> str:
    if v is None:
        return "FAILED"
    return f"{v / 1000:,.0f}k" if v >= 10_000 else f"{v:,.0f}"


def main(run_dir: str) -> int:
    with open(os.path.join(run_dir, "env.json")) as f:
        env = json.load(f)
    runs = []
    with open(os.path.join(run_dir, "runs.jsonl")) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    for r in runs:
        r["figures"] = parse(run_dir, r)

    rows = []
    missing = False
    figures = [("publish", "publish, records/s"), ("consume", "consume (group, from the first record), records/s"),
               ("consume_join", "consume from joining the group, records/s (reference)")]
    for lang in env["langs"]:
        lang_figures = list(figures)
        if lang == "python" and any(r["lang"] == "python" and r["side"] == "kafka" and "consume_tuned" in r["figures"]
                                    for r in runs):
            lang_figures.insert(2, ("consume_tuned", "consume, Kafka with fetch.queue.backoff.ms=0 "
                                                     "(Stave: the same runs as above), records/s"))
        for key, label in lang_figures:
            per_side = {}
            busy = {}
            for side in ("stave", "kafka"):
                vals = []
                loaded = busy[side] = []
                for r in sorted((r for r in runs if r["lang"] == lang and r["side"] == side),
                                key=lambda r: r["round"]):
                    # The tuned row sets Stave's one consume figure beside Kafka's second read.
                    v = r["figures"].get("consume" if key == "consume_tuned" and side == "stave" else key)
                    if v is None and key == "consume_join" and r["exit"] == 0 and r["figures"]:
                        vals.append("n/a")  # the bench does not print it (python -m stave.bench)
                    else:
                        vals.append(v)
                    loaded.append(r["load1_before"] >= env["load_max"])
                per_side[side] = vals
            measured = {s: [v for v in vals if isinstance(v, float)] for s, vals in per_side.items()}
            if key not in ("consume_join", "consume_tuned") and any(v is None for vals in per_side.values() for v in vals):
                missing = True
            med = {s: statistics.median(v) if v else None for s, v in measured.items()}
            ratio = med["stave"] / med["kafka"] if med["stave"] and med["kafka"] else None
            target = TARGETS.get((lang, key))
            rows.append({
                "lang": lang, "figure": key, "label": label, "target": target,
                "stave": med["stave"], "kafka": med["kafka"], "ratio": ratio,
                "stave_runs": per_side["stave"], "kafka_runs": per_side["kafka"],
                "stave_runs_above_load_max": busy["stave"], "kafka_runs_above_load_max": busy["kafka"],
                "stave_meets_target": None if target is None or med["stave"] is None else med["stave"] >= target,
            })

    loads = [r["load1_before"] for r in runs]
    lines = []
    lines.append(f"## Stave clients vs Kafka {env['kafka_version']} clients — {env['mode']}, "
                 f"{env['rounds']} round(s)")
    lines.append("")
    lines.append(f"Command: `{env['command']}` (Stave {env['stave_git_rev']}, binary built "
                 f"{env['stave_binary_built_utc']}); first run started {runs[0]['started_utc'] if runs else '?'}. "
                 f"Records of 100 B: Python {env['records']['python']:,}, Go {env['records']['go']:,} per run; "
                 f"6 partitions, RF 1, single node on loopback, a fresh node per run.")
    if loads:
        waited = sum(r["load_wait_s"] for r in runs)
        over = [r for r in runs if r["load1_before"] >= env["load_max"]]
        lines.append("")
        lines.append(f"1-minute load average just before each bench: {min(loads):.2f}–{max(loads):.2f} "
                     f"(wanted < {env['load_max']}; {waited} s spent waiting for it"
                     + (f"; {len(over)} run(s) started above it" if over else "") + f"); "
                     f"{env['load1_at_start']:.2f} when the script started. {env['cores']} cores ({env['cpu']}).")
    lines.append("")
    lines.append("| client | figure | issue target (Stave) | Stave | Kafka | Stave/Kafka | each run: Stave / Kafka |")
    lines.append("|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        tgt = "—" if row["target"] is None else (f"≥ {row['target']:,}" + (
            "" if row["stave_meets_target"] is None else (" ✓" if row["stave_meets_target"] else " ✗")))
        def cell(v, hot):
            return ("n/a" if v == "n/a" else short(v)) + ("*" if hot else "")
        each = (", ".join(cell(v, h) for v, h in zip(row["stave_runs"], row["stave_runs_above_load_max"]))
                + " / " + ", ".join(cell(v, h) for v, h in zip(row["kafka_runs"], row["kafka_runs_above_load_max"])))
        stave_cell = "n/a" if row["stave"] is None and "n/a" in row["stave_runs"] else fmt(row["stave"])
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {LANG_NAME[row['lang']]} | {row['label']} | {tgt} | {stave_cell} | "
                     f"{fmt(row['kafka'])} | {ratio} | {each} |")
    if any(r["load1_before"] >= env["load_max"] for r in runs):
        lines.append("")
        lines.append(f"\\* the run started with the 1-minute load average at or above {env['load_max']} "
                     f"(other work on the machine): read it with care.")
    singles = [r["figures"]["publish_single"] for r in runs
               if r["lang"] == "python" and r["side"] == "kafka" and "publish_single" in r["figures"]]
    if singles:
        lines.append("")
        lines.append(f"For reference, confluent-kafka publishing the same records with `produce()` once per record "
                     f"(the form most programs use) right after: median {statistics.median(singles):,.0f} records/s "
                     f"({', '.join(short(v) for v in singles)}); not run on the Stave side "
                     f"(`python -m stave.bench --form single`).")
    lines.append("")
    lines.append("Clients:")
    lines.append(f"- Python, Stave: `python -m stave.bench` (clients/python; `publish_batch` of 10,000 records "
                 f"a call from one thread, ids generated by the client; one group member, credit 1,000). "
                 f"Kafka: confluent-kafka ({env['python']}), scripts/compare/clients/python/kafka_bench.py, "
                 + ("`produce_batch` of 10,000 records a call" if env["kafka_python_form"] == "batch"
                    else "`produce()` per record") + ", a delivery callback per record; `consume(10000)`.")
    lines.append(f"- Go, Stave: clients/go/cmd/bench (`PublishBatch` of 1,000 from 8 goroutines, ids generated by "
                 f"the client; one group member). Kafka: franz-go {env['franz_go']}, scripts/compare/clients/go "
                 f"(`Produce` with a promise per record from one goroutine; `PollFetches`).")
    lines.append("- confluent-kafka's consumer with its defaults waits `fetch.queue.backoff.ms` (1,000 ms) before "
                 "fetching a partition again once its local queue passed `queued.min.messages`; that holds it "
                 "back here, hence the second Kafka row: the same topic read once more, right after, through "
                 "another new group with the wait at 0.")
    lines.append("- Kafka producers: acks=all, linger 5 ms, batches up to 1,000,000 bytes, idempotent (the producer id "
                 "fetched before the clock starts, with one record to a warm-up topic), no compression, 100,000 records buffered at most; broker with Kafka's default flush (no fsync per "
                 "message). Stave: topic `flush=never`, the clients' defaults (linger 5 ms, up to 1 MiB a request).")
    lines.append("- Both sides time publish from the first call until every record is acknowledged, and consume "
                 "from the first record returned until the last (the group join left out; the reference row "
                 "counts from joining where the bench reports it). Before their first record is returned the "
                 "Kafka clients may already hold one fetch (up to 1 MB a partition: ~6 MB, some 35,000 records "
                 "of 100 B), Stave's consumers their credit window (1,000 records); counted in, not timed. "
                 "On Kafka's side 'from joining' includes the broker creating `__consumer_offsets` "
                 "(50 partitions) for the first group on the fresh broker.")
    lines.append("")
    lines.append(f"Raw outputs: {run_dir}")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump({"env": env, "rows": rows, "runs": runs}, f, indent=2)
        f.write("\n")
    print(md, end="")
    return 1 if missing else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summary.py RUN_DIR")
    sys.exit(main(sys.argv[1]))

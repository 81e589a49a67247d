#!/usr/bin/env bash
# Runs the stave-log criterion benches and prints each figure as a ratio against the baseline
# measured in the same run (see benches/log.rs). Usage: scripts/bench-log.sh [--no-run-bench]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--no-run-bench" ]]; then
    cargo bench --bench log -- --noplot 2>&1 | tee target/bench-log.txt
fi

if ! command -v python3 >/dev/null; then
    echo "python3 is needed to compute the ratios from target/criterion/*/estimates.json" >&2
    exit 1
fi

python3 - <<'PY'
import json, os

root = "target/criterion"

def mean_ns(group, bench):
    path = os.path.join(root, group, *bench.split("/"), "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]

def ratio(label, group, subject, baseline, target, higher_time_is_better=False):
    try:
        s, b = mean_ns(group, subject), mean_ns(group, baseline)
    except FileNotFoundError as e:
        print(f"{label:58} missing ({e.filename})")
        return
    # Throughput ratio = baseline time / subject time (same bytes or records per iteration).
    r = b / s
    verdict = "met" if r >= target else "NOT met"
    print(f"{label:58} {r:5.2f}x  (target >= {target}x: {verdict})")

print("ratio of throughputs, subject / baseline, same run:")
for size in ("100", "1024"):
    ratio(f"batch encode size={size} / memcpy+crc", "batch_codec", f"encode/size={size}", f"baseline_memcpy_crc/size={size}", 0.0)
    ratio(f"batch decode size={size} / memcpy+crc", "batch_codec", f"decode/size={size}", f"baseline_memcpy_crc/size={size}", 0.0)
ratio("append 256 KiB, flush=never / pwrite", "segment_append", "never", "baseline_pwrite", 0.8)
ratio("append 256 KiB, flush=always / pwrite+fdatasync", "segment_append", "always", "baseline_pwrite_fdatasync", 0.8)
ratio("4 KiB appends, always: pipelined / wait for each", "group_commit", "pipelined", "wait_each", 4.0)
for size in ("100", "1024"):
    ratio(f"sequential read+decode size={size} / memcpy+crc", "sequential_read", f"read_decode/size={size}", f"baseline_memcpy_crc/size={size}", 0.8)
PY

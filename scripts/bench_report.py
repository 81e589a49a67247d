#!/usr/bin/env python3
"""Turns a scripts/bench.sh result directory into results.md (a table) and chart.svg.

Reads every `<setup>-<workload>.json` (the last line of `stave bench --json`) in the
directory given. Standard library only, so it runs on a fresh machine.
"""

import json
import pathlib
import sys

WORKLOADS = [
    ("W1-never", "W1: 1 KiB, flush=never"),
    ("W1-always", "W1: 1 KiB, flush=always"),
    ("W2", "W2: 100 B, flush=never"),
    ("W3", "W3: consume W1 (group)"),
    ("W4", "W4: 1 KiB at 5,000/s, e2e"),
    ("W6a", "W6a: queue, 8 members, 100 B"),
    ("W6b", "W6b: queue, 1 ms work each"),
]
SETUPS = [("single", "single node, RF 1"), ("cluster", "3 nodes, RF 3")]
COLORS = {"single": "#3b6ea8", "cluster": "#e08a2c"}


def load(directory):
    results = {}
    for path in sorted(directory.glob("*.json")):
        setup, _, workload = path.stem.partition("-")
        try:
            results[(setup, workload)] = json.loads(path.read_text().strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"skipping {path}: not a bench result", file=sys.stderr)
    return results


def ms(us):
    return "-" if us is None else f"{us / 1000:.2f}"


def table(results):
    lines = [
        "| setup | workload | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | flush |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for setup, setup_name in SETUPS:
        for key, name in WORKLOADS:
            r = results.get((setup, key))
            if r is None:
                continue
            lines.append(
                f"| {setup_name} | {name} | {r['records_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
                f"{ms(r.get('p50_us'))} | {ms(r.get('p99_us'))} | {ms(r.get('p999_us'))} | "
                f"{ms(r.get('max_us'))} | {r.get('flush', '?')} |"
            )
    ratio = []
    for key, name in WORKLOADS:
        single, cluster = results.get(("single", key)), results.get(("cluster", key))
        if single and cluster and key not in ("W4", "W6b") and single["records_per_s"] > 0:
            ratio.append(f"{name}: {cluster['records_per_s'] / single['records_per_s']:.2f}x")
    text = "\n".join(lines) + "\n"
    if ratio:
        text += "\n3-node cluster (RF 3) / single node (RF 1), records/s: " + "; ".join(ratio) + "\n"
    text += (
        "\nLatency: produce -> acknowledgement for W1/W2, produce -> consume for W4, counted "
        "from when each record was due (no coordinated omission); for W6 an ack's round trip "
        "(sent -> answered once the queue state holding it is replicated). MB/s = MiB/s.\n"
    )
    return text


def bars(x, y, width, height, title, groups, value_label, log=False):
    """One grouped bar chart as SVG elements: groups = [(label, [(setup, value)])]."""
    out = [f'<text x="{x + width / 2}" y="{y + 16}" text-anchor="middle" font-weight="bold">{title}</text>']
    top, bottom, left = y + 30, y + height - 60, x + 60
    values = [v for _, items in groups for _, v in items if v]
    if not values:
        return out
    import math

    peak = max(values)
    low = min(values)
    if log:
        lo, hi = math.floor(math.log10(max(low, 1e-3))), math.ceil(math.log10(peak))
        hi = max(hi, lo + 1)

        def scale(v):
            return (math.log10(max(v, 10**lo)) - lo) / (hi - lo)

        ticks = [10**e for e in range(lo, hi + 1)]
    else:
        step = 10 ** math.floor(math.log10(peak))
        hi_value = math.ceil(peak / step) * step

        def scale(v):
            return v / hi_value

        ticks = [hi_value * i / 4 for i in range(5)]
    for t in ticks:
        ty = bottom - scale(t) * (bottom - top)
        out.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{x + width - 10}" y2="{ty:.1f}" stroke="#ddd"/>')
        label = f"{t:,.0f}" if t >= 1 else f"{t:g}"
        out.append(f'<text x="{left - 5}" y="{ty + 4:.1f}" text-anchor="end" font-size="10">{label}</text>')
    out.append(
        f'<text x="{x + 12}" y="{(top + bottom) / 2}" font-size="11" '
        f'transform="rotate(-90 {x + 12} {(top + bottom) / 2})" text-anchor="middle">{value_label}</text>'
    )
    slot = (x + width - 10 - left) / max(len(groups), 1)
    for i, (label, items) in enumerate(groups):
        bar = slot * 0.8 / max(len(items), 1)
        for j, (setup, v) in enumerate(items):
            if not v:
                continue
            bx = left + i * slot + slot * 0.1 + j * bar
            by = bottom - scale(v) * (bottom - top)
            out.append(
                f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar - 2:.1f}" height="{bottom - by:.1f}" '
                f'fill="{COLORS.get(setup, "#888")}"><title>{label} {setup}: {v:,.2f}</title></rect>'
            )
            out.append(
                f'<text x="{bx + bar / 2:.1f}" y="{by - 3:.1f}" text-anchor="middle" font-size="9">'
                f"{v:,.0f}</text>" if v >= 10 else
                f'<text x="{bx + bar / 2:.1f}" y="{by - 3:.1f}" text-anchor="middle" font-size="9">{v:.2f}</text>'
            )
        # Two lines (split at the last space), so neighbouring labels do not overlap.
        first, _, second = label.rpartition(" ")
        lx = left + i * slot + slot / 2
        for line, text in enumerate([first, second] if first else [second]):
            out.append(
                f'<text x="{lx:.1f}" y="{bottom + 14 + line * 12}" text-anchor="middle" '
                f'font-size="10">{text}</text>'
            )
    return out


def chart(results):
    width, height = 1100, 420
    throughput = []
    for key, name in WORKLOADS:
        if key == "W4":
            continue
        throughput.append(
            (name.split(":")[0] + name.split(":")[1].split(",")[-1],
             [(s, results.get((s, key), {}).get("records_per_s")) for s, _ in SETUPS])
        )
    latency = []
    for key, label in [("W1-never", "W1 never"), ("W1-always", "W1 always"), ("W4", "W4 e2e")]:
        for q, qname in [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]:
            latency.append(
                (f"{label} {qname}",
                 [(s, (results.get((s, key), {}).get(q) or 0) / 1000 or None) for s, _ in SETUPS])
            )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    parts += bars(0, 0, 430, height, "Throughput (records/s)", throughput, "records/s")
    parts += bars(440, 0, 660, height, "Latency percentiles (ms, log scale)", latency, "ms", log=True)
    for i, (setup, name) in enumerate(SETUPS):
        lx = 20 + i * 200
        parts.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="12" fill="{COLORS[setup]}"/>')
        parts.append(f'<text x="{lx + 16}" y="{height - 12}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    if len(sys.argv) != 2:
        print("usage: bench_report.py RESULT_DIR", file=sys.stderr)
        sys.exit(2)
    directory = pathlib.Path(sys.argv[1])
    results = load(directory)
    if not results:
        print(f"no bench results in {directory}", file=sys.stderr)
        sys.exit(1)
    text = table(results)
    (directory / "results.md").write_text(text)
    (directory / "chart.svg").write_text(chart(results))
    print(text)


if __name__ == "__main__":
    main()

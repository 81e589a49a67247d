#!/usr/bin/env bash
# Checks a node's Prometheus exposition with `promtool check metrics` (Debian/Ubuntu:
# `apt-get install prometheus`): names, types, help and the text format as Prometheus
# reads it. Starts its own node with metrics on a free port, sends some traffic (a topic,
# produced and consumed records, a consumer group), scrapes /metrics and checks it. Skips,
# saying so, when promtool is not installed.
#
#   scripts/check-metrics.sh            uses target/release/stave (builds it if missing)
#   STAVE_BIN=path scripts/check-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-metrics: promtool not found (apt-get install prometheus); skipped"
    exit 0
fi
bin=${STAVE_BIN:-target/release/stave}
if [[ ! -x "$bin" ]]; then
    cargo build --release -q --bin stave
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d)
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
metrics_port=$(free_port)
bootstrap=127.0.0.1:$port
"$bin" server --data-dir "$work/data" --listen "$bootstrap" \
    --metrics-listen "127.0.0.1:$metrics_port" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
    if "$bin" --bootstrap "$bootstrap" --timeout 2s topic list >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done

"$bin" --bootstrap "$bootstrap" topic create checked --partitions 2 >/dev/null
seq 1 100 | "$bin" --bootstrap "$bootstrap" produce checked >/dev/null
"$bin" --bootstrap "$bootstrap" consume checked --group checker --from-beginning \
    --max-messages 100 >/dev/null 2>&1

curl --silent --show-error --fail "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt"
echo "check-metrics: $(grep -c '^# TYPE' "$work/metrics.txt") families scraped"
# promtool reads the Prometheus text format, not OpenMetrics: drop the `# EOF` line, and
# name each counter's HELP and TYPE after its samples (`x_total`), as Prometheus's own
# OpenMetrics parser does when it scrapes.
awk '/^# TYPE [a-z_]+ counter$/ { counter[$3] = 1 }
     { line[NR] = $0 }
     END {
         for (i = 1; i <= NR; i++) {
             split(line[i], field, " ")
             if ((field[2] == "HELP" || field[2] == "TYPE") && (field[3] in counter))
                 sub("^# " field[2] " " field[3] " ", "# " field[2] " " field[3] "_total ", line[i])
             if (line[i] != "# EOF") print line[i]
         }
     }' "$work/metrics.txt" | promtool check metrics
echo "check-metrics: promtool found no problems"

#!/usr/bin/env bash
# What TLS, auth and metrics cost, measured against plaintext in the same run (issue 20's
# targets). One node (RF 1, flush=never), a fresh data directory per run, modes alternated
# round by round so drift on this shared machine hits them alike:
#
#   plain    no TLS, auth off, metrics off (the baseline)
#   tls      --tls-cert/--tls-key/--tls-ca from `stave dev-certs` (server and client)
#   auth     --auth required, the bench as a user holding 1 of 100 ACL entries
#   metrics  metrics on, scraped every second while the bench runs
#
# Workloads: W1 (1 KiB records, produce as fast as acknowledged) and W3 (a group reads W1's
# data) for plain and tls; W2 (100 B records) for plain, auth and metrics. For each run: the
# bench's records/s and the server's CPU seconds (utime + stime from /proc/PID/stat, before
# and after the workload). The summary gives medians, ratios to plain, CPU seconds per GB
# (W1, W3) and per million records (W2).
#
# Usage: scripts/security-cost.sh [--rounds N] [--w1 RECORDS] [--w2 RECORDS] [--out DIR]
#   defaults: 5 rounds, W1 300,000 records, W2 1,000,000 records, out in a temporary dir.
# Needs: cargo (builds target/release/stave, unless STAVE names a binary), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 w1=300000 w2=1000000 out=""
while (($#)); do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --w1) w1=$2; shift 2 ;;
        --w2) w2=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

if [[ -n "${STAVE:-}" ]]; then
    bin=$STAVE
else
    cargo build --release -q --bin stave
    bin=target/release/stave
fi
work=$(mktemp -d)
out=${out:-$work/results}
mkdir -p "$out"
server_pid=""
scraper_pid=""
cleanup() {
    [[ -n "$scraper_pid" ]] && kill "$scraper_pid" 2>/dev/null || true
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work/data" "$work/certs"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

"$bin" dev-certs "$work/certs" >/dev/null
tls_flags=(--tls-ca "$work/certs/ca.pem" --tls-cert "$work/certs/node.pem" --tls-key "$work/certs/node-key.pem")
client_tls=(--tls-ca "$work/certs/ca.pem")

cpu_seconds() {
    python3 - "$1" <<'EOF'
import os, sys
fields = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
EOF
}

# start MODE: a fresh node in MODE; sets server_pid, addr, client (the CLI's flags).
start() {
    local mode=$1 port
    port=$(free_port)
    addr=127.0.0.1:$port
    rm -rf "$work/data"
    local args=(server --data-dir "$work/data" --listen "$addr")
    client=(--bootstrap "$addr" --timeout 30s)
    case $mode in
        tls) args=("${tls_flags[@]}" "${args[@]}"); client+=("${client_tls[@]}") ;;
        auth) args+=(--auth required) ;;
        metrics) metrics_port=$(free_port); args+=(--metrics-listen "127.0.0.1:$metrics_port") ;;
    esac
    [[ $mode == metrics ]] || args+=(--metrics-listen off)
    "$bin" "${args[@]}" >"$work/server.log" 2>&1 &
    server_pid=$!
    if [[ $mode == auth ]]; then
        local token=$work/data/bootstrap-admin.token
        for _ in $(seq 1 300); do [[ -s $token ]] && break; sleep 0.1; done
        client+=(--token-file "$token")
        "$bin" "${client[@]}" user create bench >"$work/bench.token"
        for i in $(seq 1 99); do
            "$bin" "${client[@]}" acl add --principal "svc-$i" --resource "topic:v1.svc$i.*" --operation produce
        done
        for op in produce create consume; do
            "$bin" "${client[@]}" acl add --principal bench --resource "topic:#" --operation "$op"
        done
        "$bin" "${client[@]}" acl add --principal bench --resource "group:#" --operation consume
        client=(--bootstrap "$addr" --timeout 30s --token-file "$work/bench.token")
    fi
    for _ in $(seq 1 300); do
        "$bin" "${client[@]}" topic list >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the $mode node did not serve within 30 s:" >&2
    tail -5 "$work/server.log" >&2
    exit 1
}

stop() {
    [[ -n "$scraper_pid" ]] && kill "$scraper_pid" 2>/dev/null || true
    scraper_pid=""
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# measure ROUND MODE NAME BENCH-ARGS...: one workload, its JSON line with the server's CPU.
measure() {
    local round=$1 mode=$2 name=$3 before after line
    shift 3
    before=$(cpu_seconds "$server_pid")
    line=$("$bin" "${client[@]}" bench "$@" --json | tail -n 1)
    after=$(cpu_seconds "$server_pid")
    python3 - "$round" "$mode" "$name" "$before" "$after" "$line" >>"$out/runs.jsonl" <<'EOF'
import json, sys
round_, mode, name, before, after, line = sys.argv[1:]
run = json.loads(line)
run.update(round=int(round_), mode=mode, name=name, server_cpu_s=float(after) - float(before))
print(json.dumps(run))
EOF
    echo "round $round $mode $name: $(tail -n 1 "$out/runs.jsonl" | cut -c1-160)" >&2
}

modes=(plain tls auth metrics)
for round in $(seq 1 "$rounds"); do
    # Rotate the order each round.
    shift_by=$(((round - 1) % ${#modes[@]}))
    order=("${modes[@]:shift_by}" "${modes[@]:0:shift_by}")
    for mode in "${order[@]}"; do
        start "$mode"
        if [[ $mode == metrics ]]; then
            (while sleep 1; do curl -s "http://127.0.0.1:$metrics_port/metrics" >/dev/null || true; done) &
            scraper_pid=$!
        fi
        if [[ $mode == plain || $mode == tls ]]; then
            measure "$round" "$mode" W1 produce --topic w1 --partitions 6 --size 1024 --messages "$w1" --flush never
            measure "$round" "$mode" W3 consume --topic w1
        fi
        if [[ $mode != tls ]]; then
            measure "$round" "$mode" W2 produce --topic w2 --partitions 6 --size 100 --messages "$w2" --flush never
        fi
        stop
    done
done

python3 - "$out/runs.jsonl" <<'EOF' | tee "$out/summary.txt"
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def med(mode, name, key):
    values = [r[key] for r in runs if r["mode"] == mode and r["name"] == name]
    return statistics.median(values) if values else None
print("| workload | mode | records/s (median) | vs plain | server CPU-s | per |")
print("|---|---|---|---|---|---|")
for name, modes in (("W1", ("plain", "tls")), ("W3", ("plain", "tls")), ("W2", ("plain", "auth", "metrics"))):
    base = med("plain", name, "records_per_s")
    for mode in modes:
        rate = med(mode, name, "records_per_s")
        cpu = [r for r in runs if r["mode"] == mode and r["name"] == name]
        if rate is None:
            continue
        if name == "W2":
            per = statistics.median(r["server_cpu_s"] / (r["records"] / 1e6) for r in cpu)
            unit = "per million records"
        else:
            per = statistics.median(r["server_cpu_s"] / (r["records"] * 1024 / 1e9) for r in cpu)
            unit = "per GB"
        print(f"| {name} | {mode} | {rate:,.0f} | {rate / base:.2f}x | {per:.2f} | {unit} |")
EOF
echo "runs: $out/runs.jsonl" >&2

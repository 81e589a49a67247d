#!/usr/bin/env bash
# The standard workloads with `stave bench`, against a fresh single node (replication factor
# 1) and a fresh local 3-node cluster (replication factor 3), on loopback ports of its own:
#
#   W1  1 topic, 6 partitions, 1 KiB records, as fast as acknowledged (acks = a Raft
#       majority), under flush=never and under flush=always
#   W2  the same with 100 B records (flush=never)
#   W3  a consumer group reads W1's flush=never data from the beginning
#   W4  1 KiB records at a fixed 5,000/s for 30 s: produce -> consume latency (flush=never)
#   W6a a queue group of 8 members drains preloaded 100 B records from 1 partition, acking
#       every record (flush=never): records/s and ack latency
#   W6b the same, each member working 1 ms per record before its ack (ideal: 8,000/s)
#
# Run in the order W1 flush=always, W1 flush=never, W3, W2, W4, W6a, W6b, after a warm-up run that is not
# measured; each topic is deleted once no later workload reads it (see drop below for why).
#
# Usage: scripts/bench.sh [single|cluster|all]     (default: all)
#   QUICK=1    small counts (a smoke run, not figures to quote)
#   PUBLISH=1  also copy the table and the chart to docs/bench/ (the README shows the chart;
#              docs/performance.md's copy of the table, its date and commit, go with it)
#
# Results: target/bench/<UTC time>/{single,cluster}-W*.json (the `--json` line of each run,
# plus the full output in .txt), results.md (a table) and chart.svg (throughput, latency
# percentiles). Every run says its flush policy. Stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
case "$which" in single|cluster|all) ;; *) echo "usage: $0 [single|cluster|all]" >&2; exit 2 ;; esac

if [[ -n "${QUICK:-}" ]]; then
    w1=100000; w2=300000; w4_secs=5; w6a=50000; w6b=5000
else
    w1=1000000; w2=3000000; w4_secs=30; w6a=500000; w6b=40000
fi

cargo build --release -q --bin stave
bin=target/release/stave
out=target/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
work=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nodes N: starts N fresh nodes, sets $bootstrap, waits until the cluster serves.
start_nodes() {
    local count=$1 ports=() peers="" id
    for id in $(seq 1 "$count"); do
        ports+=("$(free_port)")
    done
    if (( count > 1 )); then
        for id in $(seq 1 "$count"); do
            peers+="${peers:+,}$id=127.0.0.1:${ports[$((id - 1))]}"
        done
    fi
    bootstrap=""
    for id in $(seq 1 "$count"); do
        local port=${ports[$((id - 1))]} args=()
        # No metrics: several nodes on one host would all want the default port.
        args=(server --node-id "$id" --data-dir "$work/n$count-$id" --listen "127.0.0.1:$port"
            --metrics-listen off)
        if [[ -n "$peers" ]]; then
            [[ -s "$work/cluster.secret" ]] ||
                (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/cluster.secret")
            args+=(--peers "$peers" --cluster-secret-file "$work/cluster.secret")
        fi
        "$bin" "${args[@]}" >"$work/n$count-$id.log" 2>&1 &
        pids+=($!)
        bootstrap+="${bootstrap:+,}127.0.0.1:$port"
    done
    local status
    for _ in $(seq 1 150); do
        # Ready: a controller, and every node registered (a table row per node).
        if status=$("$bin" --bootstrap "$bootstrap" cluster status 2>/dev/null) &&
            grep -q "controller: node" <<<"$status" &&
            (( $(grep -cE '^[0-9]+ ' <<<"$status") >= count )); then
            return
        fi
        sleep 0.2
    done
    echo "the $count-node cluster did not come up; logs in $work" >&2
    exit 1
}

stop_nodes() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    # Their data goes too (see drop below).
    rm -rf "${work:?}"/n*
}

# run SETUP NAME ARGS...: one `stave bench` run; keeps its output and its JSON line.
run() {
    local setup=$1 name=$2
    shift 2
    echo "== $setup $name: stave bench $*" >&2
    "$bin" --bootstrap "$bootstrap" --timeout 30s bench "$@" --json | tee "$out/$setup-$name.txt" >&2
    tail -n 1 "$out/$setup-$name.txt" >"$out/$setup-$name.json"
}

# drop TOPIC: deletes a topic no later workload reads. Its files go, and with them their
# page-cache pages, which the next run's writes reuse. On a VM that hands idle guest memory
# back to its host (virtio balloon, free page reporting), writing into pages the guest has
# not touched lately runs at a fraction of the speed of reusing freed ones (here `dd` of
# 3 GB: 0.41-0.44 GB/s into untouched memory, 2.4-3.1 GB/s right after deleting 3 GB); without
# this, each run would pay for how much the runs before it kept, and the 3-node setup, which
# writes every byte three times, most of all.
drop() {
    "$bin" --bootstrap "$bootstrap" --timeout 30s topic delete "$1" >&2
    # The nodes remove the partitions' directories ({topic}-{incarnation}-{partition}) shortly
    # after the controller commits the deletion: the next run starts once they are gone.
    local _
    for _ in $(seq 1 150); do
        compgen -G "$work/n*/partitions/$1-*" >/dev/null || return 0
        sleep 0.2
    done
    echo "warning: the files of topic $1 were still there 30 s after its deletion" >&2
}

workloads() {
    local setup=$1 rf=$2
    # Not measured: writes and deletes as much as a W1 run, so that each setup's first
    # measured run finds memory in the state the later ones do (see drop above).
    echo "== $setup warm-up (not measured)" >&2
    "$bin" --bootstrap "$bootstrap" --timeout 30s bench produce --topic warm-up --partitions 6 \
        --replication-factor "$rf" --size 1024 --messages "$w1" --flush never >/dev/null
    drop warm-up
    run "$setup" W1-always produce --topic w1a --partitions 6 --replication-factor "$rf" \
        --size 1024 --messages "$w1" --flush always
    drop w1a
    run "$setup" W1-never produce --topic w1 --partitions 6 --replication-factor "$rf" \
        --size 1024 --messages "$w1" --flush never
    run "$setup" W3 consume --topic w1
    drop w1
    run "$setup" W2 produce --topic w2 --partitions 6 --replication-factor "$rf" \
        --size 100 --messages "$w2" --flush never
    drop w2
    run "$setup" W4 e2e --topic w4 --partitions 6 --replication-factor "$rf" \
        --size 1024 --rate 5000 --duration "${w4_secs}s" --linger-ms 0 --flush never
    drop w4
    run "$setup" W6a queue --topic w6a --partitions 1 --replication-factor "$rf" \
        --size 100 --records "$w6a" --members 8 --credit 64 --flush never
    drop w6a
    run "$setup" W6b queue --topic w6b --partitions 1 --replication-factor "$rf" \
        --size 100 --records "$w6b" --members 8 --credit 64 --work-ms 1 --flush never
    drop w6b
}

if [[ "$which" == single || "$which" == all ]]; then
    start_nodes 1
    workloads single 1
    stop_nodes
fi
if [[ "$which" == cluster || "$which" == all ]]; then
    start_nodes 3
    workloads cluster 3
    stop_nodes
fi

python3 scripts/bench_report.py "$out"
echo "results: $out (results.md, chart.svg)" >&2
if [[ -n "${PUBLISH:-}" ]]; then
    mkdir -p docs/bench
    cp "$out/results.md" "$out/chart.svg" docs/bench/
    echo "published to docs/bench/" >&2
fi

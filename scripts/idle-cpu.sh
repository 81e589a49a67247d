#!/usr/bin/env bash
# Idle CPU of Raft groups: one topic of N partitions (default 300), replication factor 3, on 3
# node processes (crates/stave-raft/examples/raft_node.rs: RaftNode, gRPC over loopback). Once every
# node sees a leader in every group, waits SETTLE seconds, then reads each process's
# utime+stime from /proc/PID/stat over WINDOW seconds (default 60) and prints the share of
# one core each node used.
#
#   scripts/idle-cpu.sh [GROUPS] [WINDOW]
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${1:-300}
window=${2:-60}
settle=${SETTLE:-10}
base_port=${BASE_PORT:-7101}

cargo build --release -q -p stave-raft --example raft_node
bin=target/release/examples/raft_node
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

peers=""
for i in 1 2 3; do peers+="${peers:+,}$i=127.0.0.1:$((base_port + i - 1))"; done
for i in 1 2 3; do
    "$bin" --id "$i" --listen "127.0.0.1:$((base_port + i - 1))" --peers "$peers" \
        --partitions "$groups" --data-dir "$work/n$i" >"$work/n$i.log" 2>&1 &
    pids+=("$!")
done

deadline=$((SECONDS + 180))
for i in 1 2 3; do
    until grep -q '^ready' "$work/n$i.log"; do
        if ((SECONDS > deadline)); then
            echo "node $i not ready after 180 s:" >&2
            tail -5 "$work/n$i.log" >&2
            exit 1
        fi
        if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
            echo "node $i died:" >&2
            tail -20 "$work/n$i.log" >&2
            exit 1
        fi
        sleep 1
    done
done
echo "all $groups groups have leaders on 3 nodes; settling ${settle}s, measuring ${window}s"
sleep "$settle"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
before=()
for pid in "${pids[@]}"; do before+=("$(ticks "$pid")"); done
sleep "$window"
for i in 0 1 2; do
    after=$(ticks "${pids[$i]}")
    awk -v a="$after" -v b="${before[$i]}" -v hz="$hz" -v w="$window" -v n="$((i + 1))" -v g="$groups" \
        'BEGIN { printf "node %d: %.1f%% of one core idle (%d groups, %d s window)\n", n, (a - b) / hz / w * 100, g, w }'
done

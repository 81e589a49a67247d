#!/usr/bin/env bash
# What exactly-once Publish costs, on a fresh single node (replication factor 1,
# flush=never): W1 through `stave bench produce --api records`, alternating, ROUNDS times
# (default 3), three ways: records the node gives ids (no table work), records with their own
# ids on a topic with dedupe off (`dedupe.window.ms=0`: the same bytes, no table), and the same
# with the default 2-minute window (every id checked against the partition's id table). The
# table's cost is "on/off"; "on/node" adds the ids' own cost (the client makes them, the node
# parses them). The server's resident memory before and after each run with the table; then how long a new leader takes to rebuild a table of N ids
# (default 1,000,000, one partition) from its log after a restart, from the server's log.
#
#   scripts/dedupe-cost.sh [ROUNDS]          (W1=1000000 N=1000000 to change the counts)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
w1=${W1:-1000000}
n=${N:-1000000}
cargo build --release --quiet
bin=target/release/stave
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bootstrap=127.0.0.1:$port
pid=
start_server() {
    RUST_LOG=stave_broker=debug "$bin" server --data-dir "$work/data" --listen "$bootstrap" \
        >>"$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        "$bin" --bootstrap "$bootstrap" cluster status >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "the server did not start: $(tail -5 "$work/server.log")" >&2
    exit 1
}
stop_server() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
trap 'stop_server; rm -rf "$work"' EXIT
start_server

rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
bench() {
    "$bin" --bootstrap "$bootstrap" --timeout 30s bench "$@" --json | tail -1 |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["records_per_s"]))'
}
drop() { "$bin" --bootstrap "$bootstrap" topic delete "$1" >/dev/null; }
w1_args=(--partitions 6 --replication-factor 1 --size 1024 --messages "$w1" --flush never)

echo "warm-up (not measured)" >&2
bench produce --api records --topic warm "${w1_args[@]}" >/dev/null
drop warm
printf '%-6s %10s %10s %10s %8s %8s %18s\n' round node-ids ids-off ids-on on/off on/node \
    "rss MB (on run)"
for round in $(seq "$rounds"); do
    plain=$(bench produce --api records --topic "r$round-plain" "${w1_args[@]}")
    drop "r$round-plain"
    "$bin" --bootstrap "$bootstrap" topic create "r$round-off" --partitions 6 \
        --replication-factor 1 --config flush=never --config dedupe.window.ms=0 >/dev/null
    off=$(bench produce --api records --message-ids --topic "r$round-off" "${w1_args[@]}")
    drop "r$round-off"
    before=$(rss_mb)
    on=$(bench produce --api records --message-ids --topic "r$round-on" "${w1_args[@]}")
    after=$(rss_mb)
    drop "r$round-on"
    read -r on_off on_node < <(python3 -c "print(f'{$on / $off:.2f}x {$on / $plain:.2f}x')")
    printf '%-6s %10s %10s %10s %8s %8s %18s\n' "$round" "$plain" "$off" "$on" "$on_off" \
        "$on_node" "$before -> $after"
done

echo "rebuild: $n records with ids on one partition, then a restart" >&2
bench produce --api records --message-ids --topic rebuild --partitions 1 --replication-factor 1 \
    --size 100 --messages "$n" --flush never >/dev/null
stop_server
start_server
# The first Publish after the restart rebuilds the table (retried until the partition has
# elected its leader).
for _ in $(seq 100); do
    bench produce --api records --message-ids --topic rebuild --messages 1 --size 100 \
        >/dev/null 2>&1 && break
    sleep 0.2
done
sed 's/\x1b\[[0-9;]*m//g' "$work/server.log" | grep 'id table rebuilt' | grep 'topic=rebuild' |
    tail -1

#!/usr/bin/env bash
# The record face against the batch face, same run, alternating: W1 (1 KiB), W2 (100 B) and
# W3 (a group reads W1's data) through `stave bench --api batch` and `--api records`, on a
# fresh single node (replication factor 1, flush=never), ROUNDS times (default 3). Prints
# each run's records/s and, per round, records/batch as a ratio. Then W4 (1 KiB at 5,000/s,
# linger 0, W4_SECS seconds, default 10): end-to-end latency with the group reading through
# the batch consumer and through Consume (the writes are the batch producer's in both), and per
# record the time from its ack reaching the producer to its arrival at the consumer.
#
#   scripts/records-vs-batch.sh [ROUNDS]      (W1=1000000 W2=3000000 W4_SECS=10 to change)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
w1=${W1:-1000000}
w2=${W2:-3000000}
w4_secs=${W4_SECS:-10}
cargo build --release --quiet
bin=target/release/stave
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bootstrap=127.0.0.1:$port
"$bin" server --data-dir "$work/data" --listen "$bootstrap" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    "$bin" --bootstrap "$bootstrap" cluster status >/dev/null 2>&1 && break
    sleep 0.1
done

# bench ARGS...: one run's records/s.
bench() {
    "$bin" --bootstrap "$bootstrap" --timeout 30s bench "$@" --json | tail -1 |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["records_per_s"]))'
}
drop() { "$bin" --bootstrap "$bootstrap" topic delete "$1" >/dev/null; }

echo "warm-up (not measured)" >&2
bench produce --topic warm --partitions 6 --replication-factor 1 --size 1024 --messages "$w1" \
    --flush never >/dev/null
drop warm
printf '%-6s %-8s %12s %12s %12s\n' round api W1 W2 W3
for round in $(seq "$rounds"); do
    declare -A rate=()
    for api in batch records; do
        t=r$round-$api
        rate[$api-w1]=$(bench produce --api "$api" --topic "$t-w1" --partitions 6 \
            --replication-factor 1 --size 1024 --messages "$w1" --flush never)
        rate[$api-w3]=$(bench consume --api "$api" --topic "$t-w1")
        drop "$t-w1"
        rate[$api-w2]=$(bench produce --api "$api" --topic "$t-w2" --partitions 6 \
            --replication-factor 1 --size 100 --messages "$w2" --flush never)
        drop "$t-w2"
        printf '%-6s %-8s %12s %12s %12s\n' "$round" "$api" "${rate[$api-w1]}" \
            "${rate[$api-w2]}" "${rate[$api-w3]}"
    done
    python3 - "${rate[batch-w1]}" "${rate[records-w1]}" "${rate[batch-w2]}" \
        "${rate[records-w2]}" "${rate[batch-w3]}" "${rate[records-w3]}" <<'EOF'
import sys
b1, r1, b2, r2, b3, r3 = map(float, sys.argv[1:])
print(f"       records/batch: W1 {r1 / b1:.2f}x  W2 {r2 / b2:.2f}x  W3 {r3 / b3:.2f}x")
EOF
done

# e2e: produce → consume per record; ack→consume: per record, from its ack reaching the
# producer to its arrival at the consumer (what the consume path adds; "early" records
# arrived before their ack and count as 0).
printf '%-6s %-8s %10s %10s %11s %15s %15s %7s\n' round api 'e2e p50' 'e2e p99' 'e2e p99.9' \
    'ack→consume p50' 'ack→consume p99' early
for round in $(seq "$rounds"); do
    for api in batch records; do
        t=r$round-$api-w4
        read -r p50 p99 p999 a50 a99 early < <("$bin" --bootstrap "$bootstrap" --timeout 30s \
            bench e2e --api "$api" --topic "$t" --partitions 6 --replication-factor 1 \
            --size 1024 --rate 5000 --duration "${w4_secs}s" --linger-ms 0 --flush never \
            --json | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["p50_us"], r["p99_us"], r["p999_us"], r["after_ack_p50_us"], r["after_ack_p99_us"], r["consumed_before_ack"])')
        printf '%-6s %-8s %10s %10s %11s %15s %15s %7s\n' "$round" "$api" "$p50" "$p99" "$p999" \
            "$a50" "$a99" "$early"
        drop "$t"
    done
done
echo "(latencies in µs)"

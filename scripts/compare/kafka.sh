#!/usr/bin/env bash
# Stave vs Apache Kafka 4.x on this machine: single node each, loopback, replication factor 1,
# 6 partitions, the same four workloads, Kafka driven by its own perf tools, the two sides
# interleaved; prints the Stave/Kafka ratio of every figure. See scripts/compare/README.md.
#
#   scripts/compare/kafka.sh            full run (about 15-20 minutes with ROUNDS=2)
#   QUICK=1 scripts/compare/kafka.sh    small counts, one round: checks that everything works
#
# Environment (all optional):
#   QUICK=1            small counts, 1 round (figures are not meaningful)
#   ROUNDS=N           rounds of every workload (default 2; 1 with QUICK); each round runs
#                      both sides, the order alternating between rounds and workloads
#   WORKLOADS="..."    subset of: w1 w2 w3 w4 (default all; w3 consumes the data of W1 flush=never)
#   KAFKA_ONLY=1       run the Kafka side only (no Stave build, no ratios)
#   STAVE_BIN=PATH     use this stave binary instead of building target/release/stave
#   KAFKA_VERSIONS     versions to try from Maven Central, in order (default "4.1.0 4.0.0")
#   W1_MESSAGES W1_ALWAYS_MESSAGES W2_MESSAGES W2_ALWAYS_MESSAGES
#                      record counts (the same on both sides)
#   W4_RATE W4_SECONDS W4_INFLIGHT_MESSAGES    W4's rate (records/s), duration, one-in-flight count
#   KAFKA_BATCH_SIZE   ProducerPerformance's batch.size (default 262144, the batch_bytes default
#                      of Stave's producer; Kafka's own default is 16384); linger.ms is 5 on both
#   KAFKA_PRODUCER_PROPS  extra producer properties for ProducerPerformance ("k=v k=v")
#   TOOL_TIMEOUT=S     longest a single tool run may take (default 900)
#
# Exit status: 0 when every run produced its figures; 1 when a run failed (its cell says FAILED);
# 2 when something needed cannot be installed or started (Java, Maven, Python, cargo);
# 3 when Kafka cannot be fetched from Maven Central or does not start.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/scripts/compare/kafka
cd "$ROOT"

die() { # code message...
    local code=$1
    shift
    echo "kafka.sh: $*" >&2
    exit "$code"
}
say() { echo "== $*" >&2; }

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-1}
    W1_MESSAGES=${W1_MESSAGES:-100000}
    W1_ALWAYS_MESSAGES=${W1_ALWAYS_MESSAGES:-20000}
    W2_MESSAGES=${W2_MESSAGES:-200000}
    W2_ALWAYS_MESSAGES=${W2_ALWAYS_MESSAGES:-20000}
    W4_RATE=${W4_RATE:-5000}
    W4_SECONDS=${W4_SECONDS:-5}
    W4_INFLIGHT_MESSAGES=${W4_INFLIGHT_MESSAGES:-1000}
else
    ROUNDS=${ROUNDS:-2}
    # Sized so that each Kafka run takes about 10-30 s on a 2-core machine. Kafka 4.1 measured
    # here (2026-11, batch.size 262144, a shared and noisy machine): 1 KiB records 95-180k/s
    # without fsync and 30-85k/s with flush.messages=1; 100 B records 280-590k/s and
    # 50-350k/s; one record in flight ~1-2 ms. Stave runs the same counts.
    W1_MESSAGES=${W1_MESSAGES:-2000000}
    W1_ALWAYS_MESSAGES=${W1_ALWAYS_MESSAGES:-1000000}
    W2_MESSAGES=${W2_MESSAGES:-5000000}
    W2_ALWAYS_MESSAGES=${W2_ALWAYS_MESSAGES:-3000000}
    W4_RATE=${W4_RATE:-5000}
    W4_SECONDS=${W4_SECONDS:-30}
    W4_INFLIGHT_MESSAGES=${W4_INFLIGHT_MESSAGES:-10000}
fi
WORKLOADS=${WORKLOADS:-"w1 w2 w3 w4"}
KAFKA_ONLY=${KAFKA_ONLY:-0}
KAFKA_VERSIONS=${KAFKA_VERSIONS:-"4.1.0 4.0.0"}
KAFKA_PRODUCER_PROPS=${KAFKA_PRODUCER_PROPS:-}
KAFKA_BATCH_SIZE=${KAFKA_BATCH_SIZE:-262144}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-900}
PARTITIONS=6
W4_RATE_MESSAGES=$((W4_RATE * W4_SECONDS))

want() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# ------------------------------------------------------------------ processes we started
# Only these PIDs are ever signalled; data dirs are ours (mktemp) and removed on exit.
PIDS=()
TMPDIRS=()
stop_pid() { # pid [seconds to wait before SIGKILL]
    local pid=$1 wait_s=${2:-30} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid d
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid" 20; done
    for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
forget_pid() {
    local p keep=()
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}
forget_dir() {
    local d keep=()
    for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do [[ $d == "$1" ]] || keep+=("$d"); done
    TMPDIRS=("${keep[@]+"${keep[@]}"}")
}

# ------------------------------------------------------------------ what we need
apt_install() { # packages...
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing $* with apt-get"
        if [[ -z ${APT_UPDATED:-} ]]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
            APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    else
        return 1
    fi
}

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -1
}
if ! command -v java >/dev/null || [[ $(java_major) -lt 17 ]]; then
    apt_install openjdk-17-jre-headless ||
        die 2 "Kafka 4.x needs Java 17 or newer and it could not be installed (apt-get install openjdk-17-jre-headless)"
fi
[[ $(java_major) -ge 17 ]] || die 2 "java is $(java_major); Kafka 4.x brokers need Java 17 or newer"
if ! command -v mvn >/dev/null; then
    apt_install maven || die 2 "Maven (mvn) is needed to fetch Kafka's jars from Maven Central and could not be installed"
fi
if ! command -v python3 >/dev/null; then
    apt_install python3 || die 2 "python3 is needed to parse the tools' outputs and could not be installed"
fi
command -v timeout >/dev/null || die 2 "coreutils' timeout is needed"

# ------------------------------------------------------------------ Kafka's jars from Maven Central
# One cached directory per version: target/compare/kafka-libs/<version>/ (kept between runs;
# a .complete marker, holding the checksum of kafka/pom.xml, is written only after Maven copied
# everything).
KAFKA_VERSION=
KLIBS=
fetch_kafka() {
    local v dir log pom_sum
    pom_sum=$(cksum <"$HERE/pom.xml")
    mkdir -p "$ROOT/target/compare"
    for v in $KAFKA_VERSIONS; do
        dir=$ROOT/target/compare/kafka-libs/$v
        if [[ -f $dir/.complete && $(cat "$dir/.complete") == "$pom_sum" &&
            -f $dir/kafka_2.13-$v.jar && -f $dir/kafka-tools-$v.jar ]]; then
            KAFKA_VERSION=$v KLIBS=$dir
            return 0
        fi
        say "fetching Apache Kafka $v (org.apache.kafka:kafka_2.13, kafka-tools and their dependencies) from Maven Central"
        log=$ROOT/target/compare/kafka-libs-$v.mvn.log
        rm -rf "$dir"
        if (cd "$HERE" && mvn -B -q -f "$HERE/pom.xml" -Dkafka.version="$v" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir") >"$log" 2>&1 &&
            [[ -f $dir/kafka_2.13-$v.jar && -f $dir/kafka-tools-$v.jar ]]; then
            echo "$pom_sum" >"$dir/.complete"
            KAFKA_VERSION=$v KLIBS=$dir
            return 0
        fi
        echo "kafka.sh: Maven could not fetch Kafka $v; it said ($log):" >&2
        sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m3 -E 'ERROR\] +[^ ]' | cut -c1-400 | sed 's/^/    /' >&2
        rm -rf "$dir"
    done
    die 3 "cannot fetch Apache Kafka ($KAFKA_VERSIONS) from Maven Central: is Maven Central reachable from this machine? No figure was measured."
}
fetch_kafka
KCP="$KLIBS/*"
say "Kafka $KAFKA_VERSION jars in $KLIBS"

# ------------------------------------------------------------------ run directory
STAMP=$(date +%Y%m%d-%H%M%S)
RUN=$ROOT/target/compare/kafka-$STAMP
mkdir -p "$RUN/runs" "$RUN/raw"
SEQ=0
FAILED=0

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command with a time limit, stdout and stderr into the run directory, then turns the
# output into a run record. Usage: measure KIND WORKLOAD SIDE ROUND -- command...
measure() {
    local kind=$1 wid=$2 side=$3 round=$4
    shift 5
    SEQ=$((SEQ + 1))
    local base
    base=$(printf '%02d-%s-%s-r%s-%s' "$SEQ" "$wid" "$side" "$round" "$kind")
    local out=$RUN/raw/$base.out err=$RUN/raw/$base.err rc=0
    local shown
    shown=$(printf '%q ' "$@")
    shown=${shown//"$(printf '%q' "$KCP")"/"'${KCP#"$ROOT"/}'"}
    shown=${shown//"$ROOT/"/}
    say "[$wid r$round $side] $shown"
    # In the background and waited for, so that a signal to this script is handled at once
    # (the EXIT trap then stops the tool too: timeout passes the TERM on to it).
    timeout --signal=TERM --kill-after=10 "$TOOL_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null &
    local tpid=$!
    PIDS+=("$tpid")
    wait "$tpid" || rc=$?
    forget_pid "$tpid"
    python3 "$HERE/parse.py" record --kind "$kind" --workload "$wid" --side "$side" --round "$round" \
        --cmd "$shown" --stdout "$out" --stderr "$err" --exit "$rc" --out "$RUN/runs/$base.json" ||
        FAILED=$((FAILED + 1))
}

# ------------------------------------------------------------------ Kafka side
KJAVA_TOOL=(java -Xmx512M -Duser.language=en -Duser.country=US
    -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" -cp "$KCP")
KPID= KDATA= KPORT=
kafka_start() { # label
    KDATA=$(mktemp -d -t stave-compare-kafka.XXXXXX)
    TMPDIRS+=("$KDATA")
    KPORT=$(free_port)
    local cport
    cport=$(free_port)
    while [[ $cport == "$KPORT" ]]; do cport=$(free_port); done
    local props=$KDATA/server.properties logs=$RUN/raw/kafka-broker-$1
    mkdir -p "$logs"
    # Kafka's defaults everywhere except what a single node on loopback needs; in particular
    # log.flush.interval.messages is left at its default (Long.MAX_VALUE: no fsync per message);
    # the fsync-per-append runs set the topic's flush.messages=1 instead.
    cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$KPORT,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$KPORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KDATA/data
num.partitions=$PARTITIONS
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cp "$props" "$logs/server.properties"
    local cluster_id
    cluster_id=$("${KJAVA_TOOL[@]}" kafka.tools.StorageTool random-uuid 2>>"$logs/format.log") ||
        die 3 "Kafka's StorageTool did not run (see $logs/format.log)"
    "${KJAVA_TOOL[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --standalone \
        >>"$logs/format.log" 2>&1 || die 3 "Kafka's StorageTool could not format $KDATA (see $logs/format.log)"
    # JVM options of kafka-server-start.sh / kafka-run-class.sh
    java -Xmx1G -Xms1G -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dkafka.logs.dir="$logs" -Dlog4j2.configurationFile="$HERE/log4j2-broker.properties" \
        -cp "$KCP" kafka.Kafka "$props" >"$logs/stdout.log" 2>&1 </dev/null &
    KPID=$!
    PIDS+=("$KPID")
    local i
    for ((i = 0; i < 1200; i++)); do
        if grep -q 'Kafka Server started' "$logs/server.log" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$KPID" 2>/dev/null; then
            tail -20 "$logs/stdout.log" "$logs/server.log" >&2 2>/dev/null || true
            die 3 "the Kafka broker exited while starting (logs in $logs)"
        fi
        sleep 0.1
    done
    grep -q 'Kafka Server started' "$logs/server.log" 2>/dev/null ||
        die 3 "the Kafka broker did not start within 120 s (logs in $logs)"
}
kafka_stop() {
    [[ -n $KPID ]] || return 0
    stop_pid "$KPID" 60
    forget_pid "$KPID"
    rm -rf "$KDATA"
    forget_dir "$KDATA"
    KPID= KDATA=
}
kafka_topic() { # name [config...]
    local name=$1 c args=()
    shift
    for c in "$@"; do args+=(--config "$c"); done
    "${KJAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KPORT" --create \
        --topic "$name" --partitions "$PARTITIONS" --replication-factor 1 "${args[@]+"${args[@]}"}" \
        >>"$RUN/raw/kafka-topics.log" 2>&1 || die 3 "could not create Kafka topic $name (see $RUN/raw/kafka-topics.log)"
}
kafka_producer_perf() { # wid round topic messages size throughput
    local props=(bootstrap.servers="127.0.0.1:$KPORT" acks=all batch.size="$KAFKA_BATCH_SIZE" linger.ms=5)
    # shellcheck disable=SC2206
    [[ -n $KAFKA_PRODUCER_PROPS ]] && props+=($KAFKA_PRODUCER_PROPS)
    measure kafka-producer "$1" kafka "$2" -- "${KJAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance \
        --topic "$3" --num-records "$4" --record-size "$5" --throughput "$6" --producer-props "${props[@]}"
}

kafka_run() { # wid round
    local wid=$1 round=$2
    case $wid in
    w1-never | w1-always | w2-never | w2-always)
        local size=1024 n=$W1_MESSAGES cfg=()
        [[ $wid == w2-* ]] && size=100 n=$W2_MESSAGES
        if [[ $wid == *-always ]]; then
            cfg=(flush.messages=1)
            n=$W1_ALWAYS_MESSAGES
            [[ $wid == w2-* ]] && n=$W2_ALWAYS_MESSAGES
        fi
        kafka_start "$wid-r$round"
        kafka_topic "${wid%%-*}" "${cfg[@]+"${cfg[@]}"}"
        kafka_producer_perf "$wid" "$round" "${wid%%-*}" "$n" "$size" -1
        if [[ $wid == w1-never ]] && want w3; then
            measure kafka-consumer w3 kafka "$round" -- "${KJAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance \
                --bootstrap-server "127.0.0.1:$KPORT" --topic w1 --group "compare-w3-r$round" \
                --messages "$n" --timeout 30000
        fi
        kafka_stop
        ;;
    w4-inflight1)
        kafka_start "$wid-r$round"
        kafka_topic w4
        measure kafka-e2e "$wid" kafka "$round" -- "${KJAVA_TOOL[@]}" org.apache.kafka.tools.EndToEndLatency \
            "127.0.0.1:$KPORT" w4 "$W4_INFLIGHT_MESSAGES" all 1024
        measure kafka-e2e-us "$wid" kafka "$round" -- "${KJAVA_TOOL[@]}" "$HERE/E2eLatencyUs.java" \
            "127.0.0.1:$KPORT" w4 "$W4_INFLIGHT_MESSAGES" all 1024
        kafka_stop
        ;;
    w4-rate)
        kafka_start "$wid-r$round"
        kafka_topic w4r
        kafka_producer_perf "$wid" "$round" w4r "$W4_RATE_MESSAGES" 1024 "$W4_RATE"
        kafka_stop
        ;;
    esac
}

# ------------------------------------------------------------------ Stave side
STAVE=${STAVE_BIN:-$ROOT/target/release/stave}
SPID= SDATA= SPORT=
stave_start() { # label
    SDATA=$(mktemp -d -t stave-compare-stave.XXXXXX)
    TMPDIRS+=("$SDATA")
    SPORT=$(free_port)
    local logs=$RUN/raw/stave-node-$1
    mkdir -p "$logs"
    "$STAVE" server --data-dir "$SDATA/data" --listen "127.0.0.1:$SPORT" >"$logs/stdout.log" 2>"$logs/stderr.log" </dev/null &
    SPID=$!
    PIDS+=("$SPID")
    local i
    for ((i = 0; i < 600; i++)); do
        if "$STAVE" --bootstrap "127.0.0.1:$SPORT" --timeout 2s topic list >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$SPID" 2>/dev/null; then
            tail -20 "$logs/stderr.log" >&2 || true
            die 2 "the Stave node exited while starting (logs in $logs)"
        fi
        sleep 0.1
    done
    die 2 "the Stave node did not answer 'topic list' within 60 s (logs in $logs)"
}
stave_stop() {
    [[ -n $SPID ]] || return 0
    stop_pid "$SPID" 30
    forget_pid "$SPID"
    rm -rf "$SDATA"
    forget_dir "$SDATA"
    SPID= SDATA=
}
stave_bench() { # kind wid round bench-args...
    local wid=$1 round=$2
    shift 2
    measure stave "$wid" stave "$round" -- "$STAVE" --bootstrap "127.0.0.1:$SPORT" bench "$@" --json
}
stave_run() { # wid round
    local wid=$1 round=$2
    case $wid in
    w1-never | w1-always | w2-never | w2-always)
        local size=1024 n=$W1_MESSAGES flush=never topic=${wid%%-*}
        [[ $wid == w2-* ]] && size=100 n=$W2_MESSAGES
        if [[ $wid == *-always ]]; then
            flush=always
            n=$W1_ALWAYS_MESSAGES
            [[ $wid == w2-* ]] && n=$W2_ALWAYS_MESSAGES
        fi
        stave_start "$wid-r$round"
        stave_bench "$wid" "$round" produce --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1 \
            --messages "$n" --size "$size" --flush "$flush"
        if [[ $wid == w1-never ]] && want w3; then
            stave_bench w3 "$round" consume --topic w1 --group "compare-w3-r$round" --messages "$n"
        fi
        stave_stop
        ;;
    w4-inflight1)
        stave_start "$wid-r$round"
        stave_bench "$wid" "$round" e2e --topic w4 --partitions "$PARTITIONS" --replication-factor 1 \
            --messages "$W4_INFLIGHT_MESSAGES" --size 1024 --in-flight 1 --flush never
        stave_stop
        ;;
    w4-rate)
        stave_start "$wid-r$round"
        stave_bench "$wid" "$round" e2e --topic w4r --partitions "$PARTITIONS" --replication-factor 1 \
            --rate "$W4_RATE" --duration "$W4_SECONDS" --size 1024 --flush never
        stave_bench "$wid" "$round" produce --topic w4p --partitions "$PARTITIONS" --replication-factor 1 \
            --rate "$W4_RATE" --messages "$W4_RATE_MESSAGES" --size 1024 --flush never
        stave_stop
        ;;
    esac
}

if [[ $KAFKA_ONLY != 1 ]]; then
    if [[ -z ${STAVE_BIN:-} ]]; then
        command -v cargo >/dev/null || die 2 "cargo is needed to build Stave (or set STAVE_BIN, or KAFKA_ONLY=1)"
        say "cargo build --release --bin stave"
        cargo build --release --bin stave >&2 || die 2 "cargo build --release --bin stave failed"
    fi
    [[ -x $STAVE ]] || die 2 "no stave binary at $STAVE"
    "$STAVE" bench --help >/dev/null 2>&1 ||
        die 2 "$STAVE has no 'bench' subcommand yet (run with KAFKA_ONLY=1 for the Kafka side alone)"
fi

# ------------------------------------------------------------------ meta
RUNLIST=()
want w1 && RUNLIST+=(w1-never w1-always)
want w3 && ! want w1 && RUNLIST+=(w1-never)
want w2 && RUNLIST+=(w2-never w2-always)
want w4 && RUNLIST+=(w4-inflight1 w4-rate)
[[ ${#RUNLIST[@]} -gt 0 ]] || die 2 "WORKLOADS='$WORKLOADS' selects nothing (use w1 w2 w3 w4)"

export META_KAFKA_VERSION=$KAFKA_VERSION META_ROUNDS=$ROUNDS META_QUICK=$QUICK META_RUN="$RUN" \
    META_W1=$W1_MESSAGES META_W1A=$W1_ALWAYS_MESSAGES META_W2=$W2_MESSAGES META_W2A=$W2_ALWAYS_MESSAGES \
    META_W4_RATE=$W4_RATE META_W4_SECONDS=$W4_SECONDS META_W4_INFLIGHT=$W4_INFLIGHT_MESSAGES \
    META_KAFKA_ONLY=$KAFKA_ONLY META_PROPS=$KAFKA_PRODUCER_PROPS META_BATCH=$KAFKA_BATCH_SIZE META_WORKLOADS="${RUNLIST[*]}"
META_JAVA=$(java -version 2>&1 | head -1) META_STAVE_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) \
    META_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') \
    python3 - <<'PY'
import json, os
e = os.environ
meta = {
    "kafka_version": e["META_KAFKA_VERSION"],
    "java": e["META_JAVA"],
    "stave_git_rev": e["META_STAVE_REV"],
    "cpu": e["META_CPU"], "cores": os.cpu_count(),
    "mode": "QUICK (small counts; not meaningful figures)" if e["META_QUICK"] == "1" else "full",
    "rounds": int(e["META_ROUNDS"]),
    "runs": e["META_WORKLOADS"].split(),
    "kafka_only": e["META_KAFKA_ONLY"] == "1",
    "messages": {"w1": int(e["META_W1"]), "w1_always": int(e["META_W1A"]),
                 "w2": int(e["META_W2"]), "w2_always": int(e["META_W2A"]),
                 "w4_rate": int(e["META_W4_RATE"]), "w4_seconds": int(e["META_W4_SECONDS"]),
                 "w4_inflight": int(e["META_W4_INFLIGHT"])},
    "durability_mapping": [
        "Stave flush=never  <->  Kafka's default: log.flush.interval.messages = Long.MAX_VALUE and "
        "no flush.ms, so an acknowledged record is in the page cache of the (single) replica, "
        "not necessarily on disk; the OS writes it back later.",
        "Stave flush=always  <->  Kafka topic config flush.messages=1 (the topic-level name of "
        "log.flush.interval.messages=1): the log is fsynced after every append (every producer "
        "batch of a partition), on the request path, before the produce response is sent.",
        "Both sides: acks=all with replication factor 1, so 'all' is the one replica; single node, "
        "loopback, 6 partitions, records without keys, no compression.",
    ],
    "notes": [
        f"Producers: Kafka ProducerPerformance with acks=all, batch.size={e['META_BATCH']}, "
        "linger.ms=5 and the client's defaults otherwise (no compression, idempotence on)"
        + (f", plus {e['META_PROPS']}" if e["META_PROPS"] else "")
        + "; Stave `stave bench` with its defaults (--batch-bytes 262144, --linger-ms 5, one producer)."
        + (" Kafka's batch.size default is 16384; 262144 matches Stave's batch size."
           if e["META_BATCH"] == "262144" else ""),
        "Latency clocks: Stave's bench times each record from when it was due (its --rate schedule, "
        "no coordinated omission); ProducerPerformance from its send() call; EndToEndLatency from "
        "just before send().",
        "Kafka broker: KRaft combined broker+controller, -Xmx1G -Xms1G G1 (the options of "
        "kafka-server-start.sh); tools run with -Xmx512M.",
        "W3: Stave's consume bench starts its clock at the first record; Kafka's "
        "ConsumerPerformance fetch rate starts once the group has assigned the partitions (so it "
        "still holds the first fetch); its overall rate, also shown, includes the group join.",
        "Kafka's tools run in a fresh JVM each time and have no warm-up option in 4.1, so JIT "
        "warm-up is in their figures (mostly in the first seconds: W4's 5,000/s tail latencies).",
        "W4b compares different things on purpose (the brief asked for it): Stave's end-to-end "
        "latency (produce to consume) against Kafka's producer send-to-ack latency; W4c is the "
        "like-with-like send-to-ack comparison at the same rate.",
    ],
}
with open(os.path.join(e["META_RUN"], "meta.json"), "w") as f:
    json.dump(meta, f, indent=2)
    f.write("\n")
PY

# ------------------------------------------------------------------ the runs, interleaved
say "results in $RUN"
for ((round = 1; round <= ROUNDS; round++)); do
    i=0
    for wid in "${RUNLIST[@]}"; do
        i=$((i + 1))
        if [[ $KAFKA_ONLY == 1 ]]; then
            kafka_run "$wid" "$round"
        elif (((round + i) % 2 == 0)); then
            kafka_run "$wid" "$round"
            stave_run "$wid" "$round"
        else
            stave_run "$wid" "$round"
            kafka_run "$wid" "$round"
        fi
    done
done

echo
rc=0
python3 "$HERE/parse.py" summary "$RUN" || rc=1
if ((FAILED > 0)); then
    echo "kafka.sh: $FAILED run(s) failed; their cells say FAILED (raw outputs in $RUN/raw)" >&2
    rc=1
fi
exit "$rc"

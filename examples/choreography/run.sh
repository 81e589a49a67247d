#!/usr/bin/env bash
# The choreography example, end to end: a 3-node Stave cluster, three services in three
# languages reacting to each other's records, a load of signups, a SIGKILLed email instance
# and a SIGKILLed broker node on the way, then checks. See README.md beside this file.
#
#   examples/choreography/run.sh            # from any directory; exit 0 only if every check passes
#
# Environment:
#   SIGNUPS=2000        signups the load publishes
#   RATE=100            signups a second the load aims at
#   WAIT_TIMEOUT=180    seconds to wait, after the load, for everything to be handled
#   KILL_NODE=1         the broker node SIGKILLed mid-way (1, 2 or 3). Every client is given all
#                       three addresses and starts on the first, so killing node 1 breaks every
#                       client's connection: they must fail over to nodes 2 and 3
#   RESTART_NODE=1      restart that node 15 s later (0: leave it dead; the cluster runs on two)
#   BREAK=dedupe        the email service skips its outbox check: the run must FAIL
#   KEEP_WORK=1         keep the work directory after a passing run (a failing run keeps it)
#   STAVE_BIN           the stave binary (default: target/release/stave, built if missing)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
COUNT=${SIGNUPS:-2000}
RATE=${RATE:-100}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-180}
KILL_NODE=${KILL_NODE:-1}
RESTART_NODE=${RESTART_NODE:-1}
BREAK=${BREAK:-}
STAVE_BIN=${STAVE_BIN:-$REPO/target/release/stave}
EMAIL_DOWN_S=8   # email-1 is started again this long after its SIGKILL
NODE_DOWN_S=15   # the killed node is started again this long after its SIGKILL
export BREAK

T0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/choreography.XXXXXX")
mkdir -p "$WORK/logs"

# Every process this script starts, by name (the latest of that name) and all of them by PID.
declare -A PID=()
ALL_PIDS=()
track() {
    PID[$1]=$2
    ALL_PIDS+=("$2")
}
alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

passed=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${ALL_PIDS[@]}"; do
        # Only our own children still running (a PID reaped earlier is not signalled).
        if [[ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$$" ]]; then
            { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
        fi
    done
    if ((passed)) && [[ -z ${KEEP_WORK:-} ]]; then
        rm -rf "$WORK"
    else
        echo "work directory kept: $WORK (logs in $WORK/logs)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ setup (cached)

setup_started=$SECONDS
say "setup: stave binary, Python venv, email (Go), metrics (TypeScript)"
if [[ ! -x $STAVE_BIN ]]; then
    say "building stave (cargo build --release)"
    (cd "$REPO" && cargo build --release --bin stave)
fi

VENV=$HERE/.venv
PY=$VENV/bin/python
stamp=$VENV/.stave-client-installed
if [[ ! -x $PY ]]; then
    python3 -m venv "$VENV"
fi
if [[ ! -f $stamp ]] || [[ -n $(find "$REPO/clients/python/stave" "$REPO/clients/python/pyproject.toml" \
    \( -name '*.py' -o -name '*.pyi' -o -name 'pyproject.toml' \) -newer "$stamp" -print -quit) ]]; then
    say "installing clients/python into $VENV"
    PIP_CACHE_DIR=$HERE/.cache/pip "$VENV/bin/pip" install --quiet --disable-pip-version-check "$REPO/clients/python"
    touch "$stamp"
fi

(cd "$HERE/email" && go build -buildvcs=false -o "$HERE/.build/email" .)

TS_CLIENT=$REPO/clients/typescript
if [[ ! -f $TS_CLIENT/dist/index.js || ! -d $TS_CLIENT/node_modules/typescript ]]; then
    say "building clients/typescript (npm ci && npm run build)"
    (cd "$TS_CLIENT" && npm ci --no-audit --no-fund && npm run build)
fi
if [[ ! -f $HERE/metrics/metrics.js || $HERE/metrics/metrics.ts -nt $HERE/metrics/metrics.js ||
    $TS_CLIENT/dist/index.d.ts -nt $HERE/metrics/metrics.js ]]; then
    node "$TS_CLIENT/node_modules/typescript/bin/tsc" -p "$HERE/metrics"
fi
setup_s=$((SECONDS - setup_started))

# ------------------------------------------------------------------ the cluster

cluster_started=$SECONDS
# Three free loopback ports, below the kernel's ephemeral range when there is room (a port
# picked inside it can be taken by any outgoing connection before the node binds it).
pick_ports() {
    python3 -c '
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    low = 32768
ports = []
while len(ports) < 3:
    port = random.randint(10000, low - 1) if low > 11000 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        chosen = s.getsockname()[1]
        s.close()
    if chosen not in ports:
        ports.append(chosen)
print(" ".join(map(str, ports)))'
}
stave() { "$STAVE_BIN" --bootstrap "$BS" "$@"; }

start_node() {
    local id=$1
    [[ -s "$WORK/cluster.secret" ]] ||
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/cluster.secret")
    "$STAVE_BIN" server --node-id "$id" --data-dir "$WORK/node-$id" --listen "127.0.0.1:${PORTS[$((id - 1))]}" \
        --peers "$PEERS" --cluster-secret-file "$WORK/cluster.secret" >>"$WORK/logs/node-$id.log" 2>&1 &
    track "node-$id" $!
}

# Starts the three nodes; returns 1 if one of them exited (its port taken, say), 2 if the
# cluster did not serve requests within 60 s.
start_cluster() {
    read -r -a PORTS < <(pick_ports)
    PEERS="1=127.0.0.1:${PORTS[0]},2=127.0.0.1:${PORTS[1]},3=127.0.0.1:${PORTS[2]}"
    BS="127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
    local id
    for id in 1 2 3; do start_node "$id"; done
    say "3 nodes starting on $BS (work directory $WORK)"
    local deadline=$((SECONDS + 60)) ready_since=-1
    while true; do
        for id in 1 2 3; do
            if ! alive "node-$id"; then
                say "node $id exited:"
                tail -5 "$WORK/logs/node-$id.log"
                return 1
            fi
        done
        # Ready: the cluster answers, and all three nodes are still up a second later.
        if ((ready_since >= 0)); then
            ((SECONDS - ready_since >= 1)) && return 0
        elif stave --timeout 2s topic list >/dev/null 2>&1; then
            ready_since=$SECONDS
        fi
        if ((SECONDS > deadline)); then
            say "the cluster did not serve requests within 60 s"
            return 2
        fi
        sleep 0.2
    done
}
stop_cluster() {
    local id pid
    for id in 1 2 3; do
        pid=${PID[node-$id]:-}
        [[ -n $pid ]] && { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
        rm -rf "$WORK/node-$id"
        mv "$WORK/logs/node-$id.log" "$WORK/logs/node-$id.failed-start.log" 2>/dev/null || true
    done
}
for attempt in 1 2 3; do
    started=0
    start_cluster || started=$?
    ((started == 0)) && break
    stop_cluster
    ((attempt < 3)) || exit 1
    say "starting the cluster again on other ports"
done
for topic in v1.user.signup v1.user.signedup; do
    deadline=$((SECONDS + 60))
    until out=$(stave topic create "$topic" --partitions 6 --replication-factor 3 2>&1) || [[ $out == *exists* ]]; do
        if ((SECONDS > deadline)); then
            say "could not create $topic: $out"
            exit 1
        fi
        sleep 0.5
    done
done
say "topics v1.user.signup and v1.user.signedup: 6 partitions, replication factor 3"
cluster_s=$((SECONDS - cluster_started))

# ------------------------------------------------------------------ the services

start_users() {
    PYTHONUNBUFFERED=1 "$PY" "$HERE/users/users.py" --bootstrap "$BS" >>"$WORK/logs/users.log" 2>&1 &
    track users $!
}
start_email() {
    "$HERE/.build/email" -instance "$1" -bootstrap "$BS" -outbox "$WORK/outbox.txt" \
        -skipped "$WORK/$1.skipped" >>"$WORK/logs/$1.log" 2>&1 &
    track "$1" $!
}
start_metrics() {
    node "$HERE/metrics/metrics.js" --bootstrap "$BS" --out "$WORK/metrics.json" >>"$WORK/logs/metrics.log" 2>&1 &
    track metrics $!
}
SERVICES=(users email-1 email-2 metrics)
start_users
start_email email-1
start_email email-2
start_metrics
[[ $BREAK == dedupe ]] && say "BREAK=dedupe: the email service skips its outbox check (this run must FAIL)"

deadline=$((SECONDS + 60))
for name in "${SERVICES[@]}"; do
    until grep -q "assigned:" "$WORK/logs/$name.log" 2>/dev/null; do
        if ! alive "$name"; then
            say "$name exited:"
            tail -20 "$WORK/logs/$name.log"
            exit 1
        fi
        if ((SECONDS > deadline)); then
            say "$name got no partitions within 60 s"
            exit 1
        fi
        sleep 0.2
    done
done
say "services up: users (python), email-1 and email-2 (go), metrics (typescript); each holds partitions"
cat <<EOF
         watch it:  tail -f $WORK/outbox.txt
                    $STAVE_BIN --bootstrap $BS group describe email
                    cat $WORK/metrics.json
                    tail -f $WORK/logs/email-1.log
EOF

# ------------------------------------------------------------------ the load, and the kills

load_started=$SECONDS
PYTHONUNBUFFERED=1 "$PY" "$HERE/load.py" --bootstrap "$BS" --count "$COUNT" --rate "$RATE" \
    --out "$WORK/signups.txt" --progress "$WORK/load.progress" >>"$WORK/logs/load.log" 2>&1 &
track load $!
say "load: $COUNT signups at about $RATE/s"

progress() { cat "$WORK/load.progress" 2>/dev/null || echo 0; }
# Emails email-1 sent after its last commit: records it would leave to be redelivered.
uncommitted_email1() {
    local since
    since=$(grep -o 'committed [0-9]* records at unix-ms [0-9]*' "$WORK/logs/email-1.log" | tail -1 | awk '{print $6}' || true)
    awk -v since="${since:-0}" '$3 == "email-1" && $4 >= since { n++ } END { print n + 0 }' "$WORK/outbox.txt" 2>/dev/null || echo 0
}
sent_by() {
    local n
    n=$(grep -c " $1 " "$WORK/outbox.txt" 2>/dev/null || true)
    echo "${n:-0}"
}

email_killed=0 email_restarted=0 node_killed=0 node_restarted=0
((RESTART_NODE)) || node_restarted=-1
load_rc=
unexpected=()
load_deadline=$((SECONDS + COUNT / RATE + 180))
while [[ -z $load_rc ]] || ((email_restarted == 0 || node_killed == 0 || node_restarted == 0)); do
    now=$SECONDS
    done_count=$(progress)
    # Kill email-1 once the load is 30% through, at a moment it holds at least 20 records it
    # handled (emailed) but has not committed yet: those will be redelivered.
    if ((email_killed == 0 && done_count * 10 >= COUNT * 3)) && (($(uncommitted_email1) >= 20)); then
        { kill -KILL "${PID[email-1]}" && wait "${PID[email-1]}"; } 2>/dev/null || true
        echo "email-1-killed-ms $(date +%s%3N)" >>"$WORK/chaos.txt"
        email_killed=$now
        say "SIGKILL email-1 at $done_count signups: it had sent $(sent_by email-1) emails, $(uncommitted_email1) of them since its last commit"
    fi
    if ((email_killed && node_killed == 0 && done_count * 2 >= COUNT && now - email_killed >= 2)); then
        stave --timeout 3s group list >"$WORK/logs/groups-before-node-kill.txt" 2>&1 || true
        coordinated=$(awk -v n="$KILL_NODE" 'NR > 1 && $2 == n { printf "%s%s", sep, $1; sep = ", " }' \
            "$WORK/logs/groups-before-node-kill.txt")
        { kill -KILL "${PID[node-$KILL_NODE]}" && wait "${PID[node-$KILL_NODE]}"; } 2>/dev/null || true
        node_killed=$now
        say "SIGKILL broker node $KILL_NODE at $done_count signups (it coordinated groups: ${coordinated:-none})"
    fi
    if ((email_killed && email_restarted == 0 && now - email_killed >= EMAIL_DOWN_S)); then
        start_email email-1
        email_restarted=$now
        say "email-1 started again"
    fi
    if ((node_killed && node_restarted == 0 && now - node_killed >= NODE_DOWN_S)); then
        start_node "$KILL_NODE"
        node_restarted=$now
        say "broker node $KILL_NODE started again (same data directory)"
    fi
    if [[ -z $load_rc ]] && ! alive load; then
        load_rc=0
        wait "${PID[load]}" || load_rc=$?
        load_s=$((SECONDS - load_started))
        say "load finished (exit $load_rc) after ${load_s}s: $(tail -1 "$WORK/logs/load.log")"
        if ((load_rc != 0)); then break; fi
    fi
    for name in "${SERVICES[@]}"; do
        if [[ $name == email-1 ]] && ((email_killed && !email_restarted)); then continue; fi
        if ! alive "$name" && [[ " ${unexpected[*]} " != *" $name "* ]]; then
            unexpected+=("$name")
            say "$name exited unexpectedly; its log ends:"
            tail -5 "$WORK/logs/$name.log"
        fi
    done
    if ((SECONDS > load_deadline)); then
        say "the load and the kills did not finish in time"
        break
    fi
    sleep 0.2
done
load_s=${load_s:-$((SECONDS - load_started))}

# ------------------------------------------------------------------ wait, stop, check

drain_started=$SECONDS
say "waiting (at most ${WAIT_TIMEOUT}s) for every signup to be emailed and counted, and every group's lag to be 0"
CHECK=("$PY" "$HERE/check.py" --work "$WORK" --count "$COUNT" --bootstrap "$BS" --stave "$STAVE_BIN")
waited=0
"${CHECK[@]}" wait --timeout "$WAIT_TIMEOUT" || waited=$?
drain_s=$((SECONDS - drain_started))

say "stopping the services (SIGTERM: each commits and leaves its group)"
for name in "${SERVICES[@]}"; do
    alive "$name" && kill -TERM "${PID[$name]}"
done
stopped_badly=()
for name in "${SERVICES[@]}"; do
    pid=${PID[$name]}
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        stopped_badly+=("$name(killed after 20s)")
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    ((rc == 0)) || stopped_badly+=("$name(exit $rc)")
done
stave cluster status >"$WORK/logs/cluster-status.txt" 2>&1 || true

echo
echo "== checks (signups: $COUNT) =="
failures=0
if [[ $load_rc == 0 ]]; then
    echo "PASS  load finished: $COUNT signups published in ${load_s}s"
else
    echo "FAIL  load finished: exit ${load_rc:-none} (see $WORK/logs/load.log)"
    failures=$((failures + 1))
fi
if ((email_killed && email_restarted > 0 && node_killed)); then
    echo "PASS  chaos: SIGKILL email-1 at +$((email_killed - load_started))s (restarted +$((email_restarted - load_started))s)," \
        "SIGKILL node $KILL_NODE at +$((node_killed - load_started))s ($( ((node_restarted > 0)) && echo "restarted +$((node_restarted - load_started))s" || echo "not restarted"))"
else
    echo "FAIL  chaos: the kills did not all happen (email-1 killed: $email_killed, restarted: $email_restarted, node killed: $node_killed)"
    failures=$((failures + 1))
fi
if ((${#unexpected[@]} == 0 && ${#stopped_badly[@]} == 0)); then
    echo "PASS  services: none exited unexpectedly; all stopped cleanly on SIGTERM"
else
    echo "FAIL  services: exited unexpectedly: ${unexpected[*]:-none}; stopped badly: ${stopped_badly[*]:-none}"
    failures=$((failures + 1))
fi
if ((waited != 0)); then
    echo "FAIL  done within ${WAIT_TIMEOUT}s after the load: not all signups emailed and counted with lag 0"
    failures=$((failures + 1))
fi
check_rc=0
"${CHECK[@]}" check || check_rc=$?

echo
say "times: setup ${setup_s}s, cluster ${cluster_s}s, load ${load_s}s, drain ${drain_s}s, total $((SECONDS - T0))s"
if ((failures == 0 && check_rc == 0)); then
    passed=1
    say "RESULT: PASS"
    exit 0
fi
say "RESULT: FAIL"
exit 1

#!/usr/bin/env bash
# A local 3-node Stave cluster on 127.0.0.1:7070, 7071 and 7072 (the CLI's default
# bootstrap reaches it), data under a temporary directory. Each node serves Prometheus
# metrics on its own port: http://127.0.0.1:9644/metrics, 9645 and 9646 (nodes 1, 2, 3).
#
#   scripts/cluster.sh start    builds `stave` (release) if needed, starts the three nodes,
#                               returns once the cluster serves requests
#   scripts/cluster.sh status   the PIDs, and `stave cluster status`
#   scripts/cluster.sh stop     ends exactly the processes `start` started, removes the data
#
# STAVE_CLUSTER_DIR (default: $TMPDIR/stave-cluster or /tmp/stave-cluster) holds the PIDs,
# the logs, the data and the cluster secret every node is given (cluster.secret, made on the
# first start). STAVE_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${STAVE_CLUSTER_DIR:-${TMPDIR:-/tmp}/stave-cluster}
ports=(7070 7071 7072)
metrics_ports=(9644 9645 9646)
peers="1=127.0.0.1:7070,2=127.0.0.1:7071,3=127.0.0.1:7072"

binary() {
    if [[ -n "${STAVE_BIN:-}" ]]; then
        echo "$STAVE_BIN"
        return
    fi
    cargo build --release -q --bin stave
    echo "target/release/stave"
}

alive() {
    [[ -f "$state/node-$1.pid" ]] && kill -0 "$(cat "$state/node-$1.pid")" 2>/dev/null
}

start() {
    for id in 1 2 3; do
        if alive "$id"; then
            echo "node $id is already running (pid $(cat "$state/node-$id.pid")); stop it first" >&2
            exit 1
        fi
    done
    local bin
    bin=$(binary)
    mkdir -p "$state"
    if [[ ! -s "$state/cluster.secret" ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$state/cluster.secret")
    fi
    for id in 1 2 3; do
        local port=${ports[$((id - 1))]} metrics_port=${metrics_ports[$((id - 1))]}
        "$bin" server --node-id "$id" --listen "127.0.0.1:$port" --peers "$peers" \
            --cluster-secret-file "$state/cluster.secret" \
            --metrics-listen "127.0.0.1:$metrics_port" \
            --data-dir "$state/data-$id" >"$state/node-$id.log" 2>&1 &
        echo $! >"$state/node-$id.pid"
    done
    local deadline=$((SECONDS + 60))
    until "$bin" --bootstrap 127.0.0.1:7070 --timeout 2s topic list >/dev/null 2>&1; do
        for id in 1 2 3; do
            if ! alive "$id"; then
                echo "node $id exited:" >&2
                tail -20 "$state/node-$id.log" >&2
                exit 1
            fi
        done
        if ((SECONDS > deadline)); then
            echo "the cluster did not serve requests within 60 s; logs in $state" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "3 nodes on 127.0.0.1:7070-7072 (data and logs in $state)"
}

status() {
    for id in 1 2 3; do
        if alive "$id"; then
            echo "node $id: running, pid $(cat "$state/node-$id.pid"), 127.0.0.1:${ports[$((id - 1))]}"
        else
            echo "node $id: not running"
        fi
    done
    "$(binary)" --bootstrap 127.0.0.1:7070,127.0.0.1:7071,127.0.0.1:7072 cluster status || true
}

stop() {
    for id in 1 2 3; do
        local file="$state/node-$id.pid"
        [[ -f "$file" ]] || continue
        local pid
        pid=$(cat "$file")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$file"
    done
    rm -rf "$state"
    echo "stopped"
}

case "${1:-}" in
start) start ;;
status) status ;;
stop) stop ;;
*)
    echo "usage: $0 start|status|stop" >&2
    exit 2
    ;;
esac

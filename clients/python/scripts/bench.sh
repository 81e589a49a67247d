#!/usr/bin/env bash
# Runs `python -m stave.bench` against a fresh single `stave server` ($STAVE_BIN, default
# <repo>/target/release/stave) on a free loopback port, --rounds times (a new node each
# round). Other arguments go to the bench (e.g. --records 1000000, --form single).
# Uses clients/python/.venv (made by test.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
stave_bin="${STAVE_BIN:-$repo/target/release/stave}"
python="$here/.venv/bin/python"
rounds=1
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

pid=""
data=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -n "$data" ]]; then rm -rf "$data"; fi
}
trap cleanup EXIT

for round in $(seq "$rounds"); do
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  data="$(mktemp -d)"
  "$stave_bin" server --listen "127.0.0.1:$port" --data-dir "$data" >"$data.log" 2>&1 &
  pid=$!
  "$python" - "$port" <<'PY'
import sys, time, grpc
from stave._proto.stave.v1 import stave_pb2, stave_pb2_grpc
stub = stave_pb2_grpc.StaveStub(grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}"))
deadline = time.monotonic() + 30
while True:
    try:
        stub.Metadata(stave_pb2.MetadataRequest(), timeout=1)
        break
    except grpc.RpcError:
        if time.monotonic() > deadline:
            sys.exit("bench.sh: the node did not answer within 30 s")
        time.sleep(0.05)
PY
  echo "round $round (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$python" -m stave.bench --bootstrap "127.0.0.1:$port" "${args[@]}"
  cleanup
  rm -f "$data.log"
  pid=""
  data=""
done

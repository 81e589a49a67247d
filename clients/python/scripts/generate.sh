#!/usr/bin/env bash
# Regenerates the gRPC stubs of proto/stave/v1/stave.proto into stave/_proto/stave/v1/.
#
#   clients/python/scripts/generate.sh            # into the package (commit the result)
#   clients/python/scripts/generate.sh --out DIR  # into DIR instead (the freshness test)
#
# Uses $PYTHON (default: clients/python/.venv/bin/python, else python3), which must have
# grpcio-tools at the version pinned in pyproject.toml (the `test` extra): its protoc decides
# the generated code and the protobuf runtime it needs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$here/stave/_proto/stave/v1"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; else python=python3; fi
fi
want="$(sed -n 's/.*"grpcio-tools==\([0-9.]*\)".*/\1/p' "$here/pyproject.toml")"
have="$("$python" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))')"
if [[ "$have" != "$want" ]]; then
  echo "generate.sh: grpcio-tools $have found, pyproject.toml pins $want" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m grpc_tools.protoc --proto_path="$repo/proto" \
  --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
  "$repo/proto/stave/v1/stave.proto"
# protoc writes imports for a top-level `stave.v1` package; ours lives in stave._proto.
sed -i 's/^from stave\.v1 import /from stave._proto.stave.v1 import /' "$tmp/stave/v1/stave_pb2_grpc.py"
if grep -q '^from stave\.v1\|^import stave\.v1' "$tmp"/stave/v1/*.py*; then
  echo "generate.sh: an import of stave.v1 was left unfixed" >&2
  exit 1
fi
mkdir -p "$out"
cp "$tmp"/stave/v1/stave_pb2.py "$tmp"/stave/v1/stave_pb2.pyi "$tmp"/stave/v1/stave_pb2_grpc.py "$out"/

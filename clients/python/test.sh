#!/usr/bin/env bash
# Installs the Python client and its test dependencies from PyPI into clients/python/.venv,
# then runs its pytest suite against a `stave server` it starts ($STAVE_BIN, default
# <repo>/target/release/stave; this script does not build it). Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export STAVE_BIN="${STAVE_BIN:-$repo/target/release/stave}"
if [[ ! -x "$STAVE_BIN" ]]; then
  echo "test.sh: no stave binary at $STAVE_BIN (build it with cargo build --release, or set STAVE_BIN)" >&2
  exit 1
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --editable "$here[test]"

cd "$here"
"$venv/bin/python" -m pytest "$@"

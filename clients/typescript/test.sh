#!/usr/bin/env bash
# Installs the TypeScript client's dependencies from the npm registry (into node_modules/,
# exactly as package-lock.json pins them), builds it (dist/, dist-test/) and runs its tests
# against a real `stave server` (STAVE_BIN, default <repo>/target/release/stave; this script
# does not build Rust).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export STAVE_BIN="${STAVE_BIN:-$repo/target/release/stave}"
if [[ ! -x "$STAVE_BIN" ]]; then
  echo "test.sh: stave binary not found at $STAVE_BIN (build it with cargo build --release, or set STAVE_BIN)" >&2
  exit 1
fi

cd "$here"
npm ci --no-audit --no-fund
npm run build
npm test

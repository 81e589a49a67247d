#!/usr/bin/env bash
# The Go client's checks: downloads its modules from the Go module proxy into the module
# cache, then go vet and the suite (which starts its own `stave server`s on free loopback
# ports). Runs from any directory; needs Go (1.26+) and the stave binary: $STAVE_BIN, by
# default <repo>/target/release/stave (this script does not build it).
set -euo pipefail

client_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$client_dir/../.." && pwd)
cd "$client_dir"

export STAVE_BIN=${STAVE_BIN:-$repo_dir/target/release/stave}
if [[ ! -x $STAVE_BIN ]]; then
    echo "test.sh: no stave binary at $STAVE_BIN: build it (cargo build --release) or set STAVE_BIN" >&2
    exit 1
fi
if ! command -v go >/dev/null; then
    echo "test.sh: go is not installed" >&2
    exit 1
fi
export GOFLAGS="${GOFLAGS:-} -mod=mod"

echo "--- go mod download"
go mod download
echo "--- go vet ./..."
go vet ./...
echo "--- go test ./..."
go test -count=1 -timeout 300s ./...

#!/usr/bin/env bash
# Every test of the project, as a fresh machine runs them (the README's test command, and
# what .ci/run runs after its format and lint checks):
#   1. cargo test --workspace: the Rust crates, the CLI and the end-to-end tests;
#   2. cargo build --release: the `stave` binary the clients' suites start;
#   3. the Python, Go and TypeScript clients' suites (clients/*/test.sh), each installing its
#      dependencies from its registry (PyPI, the Go module proxy, npm) first.
# Prints one closing line: the Rust tests passed and failed, and each client suite's outcome.
# Runs from any directory. CLIENTS="python go" runs a subset of the clients (none: CLIENTS=).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "--- cargo test --workspace"
cargo test --workspace 2>&1 | tee "$log"
rust=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "rust: %d passed, %d failed", p, f }' "$log")

echo "--- cargo build --release --bin stave"
cargo build --release --bin stave
export STAVE_BIN=$PWD/target/release/stave

summary=$rust
failed=0
for client in ${CLIENTS-python go typescript}; do
    echo "--- clients/$client/test.sh"
    if "clients/$client/test.sh"; then
        summary+="; $client: passed"
    else
        summary+="; $client: FAILED"
        failed=1
    fi
done
echo "$summary"
exit "$failed"

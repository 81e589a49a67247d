#!/usr/bin/env bash
# Certificates for trying TLS on this machine: a local CA, a node certificate (localhost,
# 127.0.0.1, ::1, and each --host) and a client certificate (--client-name, default admin),
# written as PEM into DIR (keys mode 0600), then the flags that use them.
#
#   scripts/dev-certs.sh DIR [--host NAME|IP ...] [--client-name NAME] [--force]
#
# It runs `stave dev-certs`, building `stave` (release) first; STAVE_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${STAVE_BIN:-}" ]]; then
    bin=$STAVE_BIN
else
    cargo build --release -q --bin stave
    bin=target/release/stave
fi
exec "$bin" dev-certs "$@"

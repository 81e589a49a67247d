#!/usr/bin/env bash
# Regenerates the Go code for proto/stave/v1/stave.proto into internal/pb/.
#
#   clients/go/scripts/generate.sh            # writes clients/go/internal/pb/*.pb.go
#   clients/go/scripts/generate.sh --out DIR  # writes DIR/internal/pb/*.pb.go instead
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler) and Go; the two plugins are
# installed with `go install` at the versions pinned below, into a temporary directory.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
MODULE=github.com/stave-broker/stave/clients/go

client_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_dir=$(cd "$client_dir/../.." && pwd)
out_dir=$client_dir
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out_dir=$2; shift 2 ;;
        *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
    esac
done

if ! command -v protoc >/dev/null; then
    echo "protoc is missing: apt-get install -y protobuf-compiler" >&2
    exit 1
fi

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
GOBIN=$tools go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN=$tools go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

mkdir -p "$out_dir/internal/pb"
mapping="Mstave/v1/stave.proto=$MODULE/internal/pb;pb"
PATH="$tools:$PATH" protoc \
    --proto_path="$repo_dir/proto" \
    --go_out="$out_dir" --go_opt="module=$MODULE" --go_opt="$mapping" \
    --go-grpc_out="$out_dir" --go-grpc_opt="module=$MODULE" --go-grpc_opt="$mapping" \
    stave/v1/stave.proto

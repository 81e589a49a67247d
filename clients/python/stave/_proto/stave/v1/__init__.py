"""Generated gRPC stubs of proto/stave/v1/stave.proto (scripts/generate.sh)."""

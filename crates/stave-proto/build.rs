//! Compiles `proto/stave/**` with protox (pure Rust) and generates prost messages and tonic
//! services from the descriptors: no `protoc` on the machine. Every `bytes` field is
//! generated as `bytes::Bytes`, so decoding a payload does not copy it.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "stave/v1/stave.proto",
        "stave/internal/raft.proto",
        "stave/internal/controller.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .bytes(".")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}

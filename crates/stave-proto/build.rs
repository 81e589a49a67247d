//! Compiles `proto/stave/**` with protox (pure Rust) and generates prost messages and tonic
//! services from the descriptors: no `protoc` on the machine. The descriptors are also kept
//! (encoded) for gRPC server reflection. Every `bytes` field is
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
    // The encoded descriptors, for gRPC server reflection.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("stave_descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .bytes(".")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}

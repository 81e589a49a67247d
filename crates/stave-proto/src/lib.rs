//! Generated code only: prost messages and tonic services for Stave's protos
//! (`proto/stave/`). `bytes` fields are `bytes::Bytes`.

#![allow(clippy::all, clippy::too_many_lines)]

/// Every proto file's descriptor (an encoded `google.protobuf.FileDescriptorSet`), for gRPC
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/stave_descriptors.bin"));

/// The public API: produce, fetch, offsets, metadata, topics.
pub mod v1 {
    tonic::include_proto!("stave.v1");
}

/// Internal traffic between nodes: Raft transport and controller commands.
pub mod internal {
    /// The Raft transport: a control service (votes, coalesced heartbeats, snapshots, leader
    /// transfer) and a data service (appends for every group, on one stream per node pair).
    pub mod raft {
        tonic::include_proto!("stave.internal.raft");
    }
    /// The controller group's commands and snapshot: cluster metadata.
    pub mod controller {
        tonic::include_proto!("stave.internal.controller");
    }
}

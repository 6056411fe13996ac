//! The churn.v1 wire contract: generated protobuf messages, tonic clients and servers,
//! and the encoded file descriptor set that server reflection publishes.

/// `package churn.v1`, generated from `proto/churn/v1/*.proto`.
pub mod v1 {
    tonic::include_proto!("churn.v1");
}

/// The encoded `FileDescriptorSet` of every churn.v1 file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("churn_v1_descriptor");

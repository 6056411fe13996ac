//! The churn.v1 wire contract: generated protobuf messages, tonic clients and servers,
//! and the encoded file descriptor set that server reflection publishes.

/// `package churn.v1`, generated from `proto/churn/v1/*.proto`.
pub mod v1 {
    tonic::include_proto!("churn.v1");
}

/// `package inference`: the KServe V2 / Open Inference Protocol, generated from
/// `proto/inference/grpc_predict_v2.proto`.
pub mod inference {
    tonic::include_proto!("inference");
}

/// The encoded `FileDescriptorSet` of every served proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("churn_v1_descriptor");

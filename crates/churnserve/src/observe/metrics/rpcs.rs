//! The table of served gRPC methods, read once from the compiled descriptor sets: the only
//! values the request metrics' method labels can take, so a caller inventing paths cannot
//! add series.

use std::collections::HashMap;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prost::Message;

/// The method labels of one served RPC, or of every path that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RpcLabels {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`, as go-grpc-prometheus
    /// names them.
    pub grpc_type: &'static str,
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
}

/// What every path outside the table is counted as.
pub const UNKNOWN: RpcLabels = RpcLabels {
    grpc_type: "unknown",
    grpc_service: "unknown",
    grpc_method: "unknown",
};

/// The labels of the RPC at `path` (`/package.Service/Method`), or [`UNKNOWN`].
pub fn labels(path: &str) -> RpcLabels {
    table().get(path).copied().unwrap_or(UNKNOWN)
}

/// Every served RPC: the metrics create their series up front from it.
pub fn served() -> impl Iterator<Item = RpcLabels> {
    table().values().copied()
}

/// Built once per process from constants compiled into the binary; the strings live as
/// long as the process, like the descriptor sets they come from.
fn table() -> &'static HashMap<String, RpcLabels> {
    static TABLE: OnceLock<HashMap<String, RpcLabels>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for encoded in [
            churn_api::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let set = prost_types::FileDescriptorSet::decode(encoded)
                .expect("descriptor sets compiled into the binary decode");
            for file in set.file {
                for service in &file.service {
                    let service_name: &'static str = leak(match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    });
                    for method in &service.method {
                        let grpc_type = match (method.client_streaming(), method.server_streaming())
                        {
                            (false, false) => "unary",
                            (true, false) => "client_stream",
                            (false, true) => "server_stream",
                            (true, true) => "bidi_stream",
                        };
                        let method_name: &'static str = leak(method.name().to_owned());
                        table.insert(
                            format!("/{service_name}/{method_name}"),
                            RpcLabels {
                                grpc_type,
                                grpc_service: service_name,
                                grpc_method: method_name,
                            },
                        );
                    }
                }
            }
        }
        table
    })
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_paths_have_their_labels_and_anything_else_is_unknown() {
        assert_eq!(
            labels("/churn.v1.ScoringService/ScoreStream"),
            RpcLabels {
                grpc_type: "bidi_stream",
                grpc_service: "churn.v1.ScoringService",
                grpc_method: "ScoreStream",
            }
        );
        assert_eq!(
            labels("/churn.v1.RegistryService/RegisterModel").grpc_type,
            "client_stream"
        );
        assert_eq!(
            labels("/inference.GRPCInferenceService/ModelInfer").grpc_type,
            "unary"
        );
        assert_eq!(
            labels("/grpc.health.v1.Health/Watch").grpc_type,
            "server_stream"
        );
        for hostile in [
            "/churn.v1.ScoringService/Nope",
            "/a\"b/c\\d",
            "",
            "/churn.v1.ScoringService/Score/",
        ] {
            assert_eq!(labels(hostile), UNKNOWN, "{hostile:?}");
        }
    }
}

//! churnserve: the gRPC server. The only crate that knows the wire format; it turns
//! protobuf into engine calls and back.

mod catalog;
mod config;
mod error;
mod from_proto;
mod scoring;
mod service;
mod status;
mod to_proto;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use churn_api::v1::registry_service_server::{RegistryService, RegistryServiceServer};
use churn_api::v1::scoring_service_server::ScoringServiceServer;
use churn_engine::{EngineError, OnnxRuntime};
use http::HeaderValue;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub use catalog::CatalogError;
pub use config::{Config, ConfigError};

/// HTTP/2 receive windows. The 64 KiB default makes a multi-megabyte batch wait for a
/// window update every 64 KiB; these let a 10,000-row batch arrive in a few round trips.
const HTTP2_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] EngineError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("the transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("start-up task failed: {0}")]
    Startup(String),
}

/// The registry RPCs, answering UNIMPLEMENTED until the registry lands.
#[derive(Debug)]
struct RegistryApi;

impl RegistryService for RegistryApi {}

/// Serves every churn.v1 service on `listener` until `shutdown` completes, then drains
/// in-flight requests. The caller binds, so tests can pass a listener on port 0.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let loading_config = config.clone();
    let catalog = tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
        let runtime = OnnxRuntime::load(loading_config.onnxruntime.as_deref())?;
        Ok(catalog::Catalog::bundled(
            runtime,
            &loading_config.default_model,
            &loading_config.model_options(),
        )?)
    })
    .await
    .map_err(|e| ServerError::Startup(e.to_string()))??;

    let scoring = service::ScoringApi {
        scoring: Arc::new(scoring::Scoring::new(catalog, config.max_batch_rows)),
    };
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(churn_api::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    // grpcurl and many other clients still ask the v1alpha reflection service.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let address = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!(data_dir = %config.data_dir.display(), "listening on {address}");
    tonic::transport::Server::builder()
        // Large batches are megabytes; the default 64 KiB HTTP/2 windows stall them.
        .initial_stream_window_size(Some(HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(HTTP2_CONNECTION_WINDOW))
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted,
        ))
        .add_service(
            ScoringServiceServer::new(scoring)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(
            RegistryServiceServer::new(RegistryApi)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // serve_with_incoming ignores the builder's TCP_NODELAY; without it Nagle's algorithm
        // holds back small responses.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// tonic answers a request over the size limit with OUT_OF_RANGE, which no handler of
/// ours returns; the contract says RESOURCE_EXHAUSTED for any configured limit.
fn oversized_is_resource_exhausted(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    const OUT_OF_RANGE: &str = "11";
    const RESOURCE_EXHAUSTED: &str = "8";
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|status| status == OUT_OF_RANGE)
    {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    response
}

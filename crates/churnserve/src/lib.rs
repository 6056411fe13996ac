//! churnserve: the gRPC server. The only crate that knows the wire format. `api` adapts
//! tonic and HTTP to `domain`, which does the work through the engine and the registry;
//! `observe` is told what happened. `serve` starts the services (`services.rs`), then the
//! ports in front of them (`ports.rs`), and stops them in the reverse order.

mod api;
mod config;
mod domain;
mod error;
mod observe;
mod ports;
mod services;
mod sync;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use api::access::Token;
pub use config::{Config, ConfigError, RegistryArgs, SecretUrl, Switch};
pub use domain::monitoring::export::{ExportProgress, ExportRequest, ExportSummary};
pub use domain::serving::seed::BUNDLED_MODEL;
pub use error::ServerError;
pub use observe::telemetry::{LogFormat, Telemetry, TelemetryError};
pub use ports::LIVENESS_SERVICE;
use services::Services;

/// Writes the prediction log of a range as Parquet (`churnserve export-predictions`).
pub async fn export_predictions(
    registry: &RegistryArgs,
    request: &ExportRequest,
    progress: &dyn ExportProgress,
) -> Result<ExportSummary, String> {
    let location = registry.location().map_err(|e| e.to_string())?;
    let opened = churn_registry::Registry::connect(&location)
        .await
        .map_err(|e| format!("registry {location}: {e}"))?;
    let exported = domain::monitoring::export::export_predictions(&opened, request, progress)
        .await
        .map_err(|e| e.to_string());
    opened.close().await;
    exported
}

/// Serves every churn.v1 service on `listener` until `shutdown` completes, then drains
/// in-flight requests. The caller binds, so tests can pass a listener on port 0.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    install_crypto_provider();
    let services = Services::start(&config).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let draining = watch::Sender::new(false);
    // Turns true once the gRPC server has stopped: the HTTP port closes with it.
    let stopped = watch::Sender::new(false);
    let adapters = ports::Adapters::new(&config, &services, draining.subscribe());
    let admission = ports::admission(&config);
    let http = ports::start_http(
        &config,
        &services,
        &adapters,
        admission.clone(),
        Arc::clone(&ready),
        stopped.subscribe(),
    )
    .await?;
    let (health, health_service) = ports::Health::start(&config, &services.catalog, &ready).await;
    let address = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!(data_dir = %config.registry.data_dir.display(), "listening on {address}");
    let until = drain_on(shutdown, &health, &ready, &draining);
    let served = ports::serve_grpc(
        &config,
        &services,
        adapters,
        admission,
        health_service,
        listener,
        until,
    );
    let served = within_grace(served, &draining, config.shutdown_grace_ms).await;
    stopped.send_replace(true);
    if let Some(http) = http {
        let _ = http.await;
    }
    health.stop();
    services.stop().await;
    served?;
    tracing::info!("server stopped");
    Ok(())
}

/// The object store's HTTP client brings rustls with aws-lc-rs beside tonic's ring, and
/// with two providers compiled in rustls no longer picks one by itself: TLS on the gRPC
/// port uses ring, as before. Installing fails harmlessly when a provider is set already.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Completes when `shutdown` does, after starting to drain: probes see NOT_SERVING, open
/// streams are told to resume elsewhere, and in-flight requests finish.
async fn drain_on(
    shutdown: impl Future<Output = ()>,
    health: &ports::Health,
    ready: &AtomicBool,
    draining: &watch::Sender<bool>,
) {
    shutdown.await;
    health.drain(ready).await;
    draining.send_replace(true);
}

/// `served`, or done anyway `grace_ms` after draining began.
async fn within_grace(
    served: impl Future<Output = Result<(), ServerError>>,
    draining: &watch::Sender<bool>,
    grace_ms: u64,
) -> Result<(), ServerError> {
    let mut drained = draining.subscribe();
    tokio::select! {
        served = served => served,
        () = async {
            sync::raised(&mut drained).await;
            tokio::time::sleep(Duration::from_millis(grace_ms)).await;
        } => {
            tracing::warn!(grace_ms, "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// The customers of a KServe `ModelInferRequest` for a model of `schema`, or the message a
/// client would get: what `ModelInfer` decodes, exposed for the fuzz target of the
/// typed and raw tensor contents (`fuzz/`).
pub fn kserve_customers(
    schema: &churn_engine::Schema,
    request: &churn_api::inference::ModelInferRequest,
) -> Result<Vec<churn_engine::Customer>, String> {
    api::kserve::customers(schema, request).map_err(|e| e.to_string())
}

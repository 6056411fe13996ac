//! churnserve: the gRPC server. The only crate that knows the wire format. `api` adapts
//! tonic and HTTP to `domain`, which does the work through the engine and the registry;
//! `observe` is told what happened. This file only wires them together and serves.

mod api;
mod config;
mod domain;
mod observe;
mod sync;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use churn_api::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use churn_api::v1::monitoring_service_server::MonitoringServiceServer;
use churn_api::v1::registry_service_server::RegistryServiceServer;
use churn_api::v1::scoring_service_server::ScoringServiceServer;
use churn_engine::{EngineError, OnnxRuntime};
use churn_registry::{Location, Registry, RegistryError};
use http::HeaderValue;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub use api::auth::Token;
use api::kserve::KServeApi;
use api::monitoring::MonitoringApi;
use api::registry::RegistryApi;
use api::scoring::ScoringApi;
pub use config::{Config, ConfigError, RegistryArgs, SecretUrl, Switch};
use domain::catalog::{Catalog, CatalogOptions};
use domain::error::ServiceError;
pub use domain::seed::BUNDLED_MODEL;
pub use observe::telemetry::{LogFormat, Telemetry, TelemetryError};

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
    #[error("cannot open the registry {location}: {cause}")]
    Registry {
        location: Location,
        cause: RegistryError,
    },
    #[error("cannot prepare the models: {0}")]
    Models(String),
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("the transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("start-up task failed: {0}")]
    Startup(String),
}

/// Marks the whole server and each of its services SERVING or NOT_SERVING.
async fn set_health(health: &tonic_health::server::HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for service in [
        "",
        <ScoringServiceServer<ScoringApi> as tonic::server::NamedService>::NAME,
        <RegistryServiceServer<RegistryApi> as tonic::server::NamedService>::NAME,
        <GrpcInferenceServiceServer<KServeApi> as tonic::server::NamedService>::NAME,
        <MonitoringServiceServer<MonitoringApi> as tonic::server::NamedService>::NAME,
    ] {
        health.set_service_status(service, status).await;
    }
}

/// The health service name a liveness probe asks for: SERVING from the moment the server
/// accepts requests until it exits, draining included, so that a probe restarts a process
/// that stopped answering, never one that is only not ready.
pub const LIVENESS_SERVICE: &str = "churnserve.liveness";

async fn set_liveness(health: &tonic_health::server::HealthReporter) {
    health
        .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
}

/// Serves every churn.v1 service on `listener` until `shutdown` completes, then drains
/// in-flight requests. The caller binds, so tests can pass a listener on port 0.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    // The object store's HTTP client brings rustls with aws-lc-rs beside tonic's ring, and
    // with two providers compiled in rustls no longer picks one by itself: TLS on the gRPC
    // port uses ring, as before. Installing fails harmlessly when a provider is set already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let onnxruntime = config.onnxruntime.clone();
    let runtime = tokio::task::spawn_blocking(move || OnnxRuntime::load(onnxruntime.as_deref()))
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))??;
    let location = config.registry.location()?;
    let registry = Registry::connect(&location)
        .await
        .map_err(|cause| ServerError::Registry { location, cause })?;
    let options = CatalogOptions {
        default_model: config.default_model.clone(),
        load: config.model_options(),
        cache_size: config.model_cache_size,
        eager_aliases: !config.lazy_aliases,
    };
    let models = |e: ServiceError| ServerError::Models(e.to_string());
    let catalog = Arc::new(
        Catalog::open(registry, runtime, options)
            .await
            .map_err(models)?,
    );
    if !config.no_seed {
        domain::seed::seed_if_empty(&catalog)
            .await
            .map_err(models)?;
    }

    let auth = api::auth::Auth {
        write_token: config.write_token.clone(),
        read_token: config.read_token.clone(),
    };
    let shadowing =
        domain::shadows::Shadowing::start(Arc::clone(&catalog), config.shadow_queue_batches)
            .await
            .map_err(models)?;
    let (drift, reference_requests) = observe::drift::Drift::new(config.drift_window);
    let drift = Arc::new(drift);
    let drift_references = tokio::spawn(domain::monitoring::serve_drift_references(
        Arc::clone(&catalog),
        Arc::clone(&drift),
        config.drift_reference_rows,
        reference_requests,
    ));
    let metrics = Arc::new(observe::metrics::Metrics::new(
        Arc::clone(&drift),
        Arc::new(domain::monitoring::ServingView {
            catalog: Arc::clone(&catalog),
            shadows: Arc::clone(&shadowing),
        }),
    ));
    let ready = Arc::new(AtomicBool::new(false));
    let draining = tokio::sync::watch::Sender::new(false);
    // Turns true once the gRPC server has stopped: the HTTP port closes with it.
    let stopped = tokio::sync::watch::Sender::new(false);
    let http_listener = match config.http_listen.0 {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(ServerError::Listener)?,
        ),
        None => None,
    };
    let prediction_log = config.prediction_log().map(|settings| {
        domain::prediction_log::PredictionLog::start(
            Arc::clone(&catalog),
            settings,
            Arc::clone(&metrics),
        )
    });
    let performance = Arc::new(domain::performance::Performance::new(
        Arc::clone(&catalog),
        config.max_batch_rows,
    ));
    let performance_signal = tokio::spawn(domain::performance::watch_performance(
        Arc::clone(&performance),
        Arc::clone(&metrics),
        Duration::from_secs(config.performance_check_minutes * 60),
        config.performance_alert_margin,
    ));
    let monitoring = MonitoringApi {
        performance: Arc::clone(&performance),
        auth: auth.clone(),
    };
    let evaluating = Arc::new(domain::evaluating::Evaluating::new(
        Arc::clone(&catalog),
        config.max_batch_rows,
    ));
    let explaining = Arc::new(domain::explaining::Explaining::new(
        Arc::clone(&catalog),
        config.explain_settings(),
    ));
    let scoring = Arc::new(domain::scoring::Scoring::new(
        Arc::clone(&catalog),
        Arc::clone(&explaining),
        Arc::clone(&shadowing),
        domain::Predictor::new(Arc::clone(&metrics), prediction_log.clone()),
        config.micro_batching(),
        config.max_batch_rows,
    ));
    let views = Arc::new(domain::views::Views::new(
        Arc::clone(&catalog),
        Arc::clone(&evaluating),
        Arc::clone(&explaining),
        Arc::clone(&shadowing),
        Arc::clone(&drift),
        Arc::clone(&performance),
    ));
    let scoring_api = ScoringApi {
        draining: draining.subscribe(),
        scoring: Arc::clone(&scoring),
        explaining,
        evaluating: Arc::clone(&evaluating),
        shadowing: Arc::clone(&shadowing),
        auth: auth.clone(),
    };
    let kserve = KServeApi {
        catalog: Arc::clone(&catalog),
        scoring,
        auth: auth.clone(),
    };
    let admission = api::admission::AdmissionLayer::new(api::admission::AdmissionLimits {
        max_concurrent: config.max_concurrent_requests,
        max_queued: config.max_queued_requests,
        queue_timeout: Duration::from_millis(config.queue_timeout_ms),
    });
    let http_server = match http_listener {
        Some(listener) => {
            let bound = listener.local_addr().map_err(ServerError::Listener)?;
            tracing::info!(
                "console, KServe V2 REST, metrics, /healthz and /readyz on http://{bound}"
            );
            let timeout = Duration::from_millis(config.http_timeout_ms);
            let state = api::http::HttpState {
                metrics: Arc::clone(&metrics),
                ready: Arc::clone(&ready),
                catalog: Arc::clone(&catalog),
            };
            let v2 = api::kserve::rest::routes(
                api::kserve::rest::RestState {
                    api: kserve.clone(),
                    admission: admission.clone(),
                },
                config.max_message_bytes,
            );
            let console = api::console::routes(api::console::ConsoleState {
                views,
                auth: auth.clone(),
            });
            Some(tokio::spawn(api::http::serve(
                listener,
                api::http::router(state, v2.merge(console), timeout),
                timeout,
                stopped.subscribe(),
            )))
        }
        None => None,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    // Ready means every aliased version is loaded (the catalog loaded them while opening).
    let all_loaded = catalog.aliases_behind().is_empty();
    set_health(&health, all_loaded).await;
    set_liveness(&health).await;
    ready.store(true, Ordering::Relaxed);
    let poller = tokio::spawn(follow_registry(
        Arc::clone(&catalog),
        Duration::from_millis(config.registry_poll_ms),
        health.clone(),
        Arc::clone(&ready),
    ));
    let registry = RegistryApi {
        evaluating,
        shadowing,
        catalog: Arc::clone(&catalog),
        auth,
        max_model_bytes: config.max_model_bytes,
        max_dataset_bytes: config.max_dataset_bytes,
    };
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(churn_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    // grpcurl and many other clients still ask the v1alpha reflection service.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let address = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!(data_dir = %config.registry.data_dir.display(), "listening on {address}");
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = config.tls()? {
        builder = builder
            .tls_config(tls)
            .map_err(|e| ServerError::Startup(format!("TLS: {e}")))?;
        tracing::info!(
            client_certificates = config.tls_client_ca.is_some(),
            "serving gRPC over TLS"
        );
    }
    let served = builder
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .initial_stream_window_size(Some(HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(HTTP2_CONNECTION_WINDOW))
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted,
        ))
        .layer(metrics.request_layer())
        .layer(observe::request_id::RequestIdLayer)
        .layer(admission)
        .add_service(
            ScoringServiceServer::new(scoring_api)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(
            RegistryServiceServer::new(registry)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(
            GrpcInferenceServiceServer::new(kserve)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(
            MonitoringServiceServer::new(monitoring)
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(config.max_message_bytes),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // serve_with_incoming ignores the builder's TCP_NODELAY; without it Nagle's algorithm
        // holds back small responses.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), {
            let ready = Arc::clone(&ready);
            let draining = draining.clone();
            async move {
                shutdown.await;
                // Draining: probes see NOT_SERVING, open streams are told to resume
                // elsewhere, in-flight requests finish.
                set_health(&health, false).await;
                ready.store(false, Ordering::Relaxed);
                draining.send_replace(true);
            }
        });
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let mut drained = draining.subscribe();
    let served = tokio::select! {
        served = served => served,
        () = async {
            sync::raised(&mut drained).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = config.shutdown_grace_ms, "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    };
    stopped.send_replace(true);
    if let Some(http_server) = http_server {
        let _ = http_server.await;
    }
    if let Some(prediction_log) = &prediction_log {
        prediction_log.close().await;
    }
    catalog.close().await;
    poller.abort();
    drift_references.abort();
    performance_signal.abort();
    served?;
    tracing::info!("server stopped");
    Ok(())
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

/// Follows registry changes made through other processes (other replicas, an offline
/// tool): at each announcement PostgreSQL sends, and at every `interval` whatever the
/// backend, since announcements sent while the listening connection is down are lost.
/// While an alias stays on an older version here, the health service says NOT_SERVING.
async fn follow_registry(
    catalog: Arc<Catalog>,
    interval: Duration,
    health: tonic_health::server::HealthReporter,
    accepting: Arc<AtomicBool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut notifications = None;
    let mut was_behind = !catalog.aliases_behind().is_empty();
    let mut listen_failed = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if notifications.is_none() {
                    match catalog.change_notifications().await {
                        Ok(listener) => (notifications, listen_failed) = (listener, false),
                        // Said once per outage, not at every tick of it.
                        Err(error) if !listen_failed => {
                            tracing::warn!(%error, "cannot listen for registry changes; polling");
                            listen_failed = true;
                        }
                        Err(_) => {}
                    }
                }
            }
            announced = next_change(&mut notifications) => {
                if let Err(error) = announced {
                    tracing::warn!(%error, "lost the registry change announcements; polling until they are back");
                    notifications = None;
                }
            }
        }
        if let Err(error) = catalog.refresh().await {
            tracing::warn!(%error, "cannot refresh the alias table from the registry");
        }
        let behind = catalog.aliases_behind();
        let is_behind = !behind.is_empty();
        if is_behind != was_behind {
            for lag in &behind {
                tracing::error!(%lag, "not ready");
            }
            was_behind = is_behind;
            if accepting.load(Ordering::Relaxed) {
                set_health(&health, !is_behind).await;
            }
        }
    }
}

/// The next announcement, or never when there is no listener.
async fn next_change(
    notifications: &mut Option<churn_registry::ChangeNotifications>,
) -> Result<(), RegistryError> {
    match notifications {
        Some(listener) => listener.next().await,
        None => std::future::pending().await,
    }
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

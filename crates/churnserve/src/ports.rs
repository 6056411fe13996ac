//! The two ports and what stands in front of the adapters: the gRPC server with its
//! layers (metrics, request ids, access, admission) and services, the HTTP port's router,
//! and the health service that follows the registry.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use churn_api::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use churn_api::v1::monitoring_service_server::MonitoringServiceServer;
use churn_api::v1::registry_service_server::RegistryServiceServer;
use churn_api::v1::scoring_service_server::ScoringServiceServer;
use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthReporter;

use crate::api;
use crate::api::access::Tokens;
use crate::api::admission::{AdmissionLayer, AdmissionLimits};
use crate::api::kserve::KServeApi;
use crate::api::monitoring::MonitoringApi;
use crate::api::registry::RegistryApi;
use crate::api::scoring::ScoringApi;
use crate::config::Config;
use crate::domain::serving::catalog::Catalog;
use crate::error::ServerError;
use crate::observe;
use crate::services::Services;

/// HTTP/2 receive windows. The 64 KiB default makes a multi-megabyte batch wait for a
/// window update every 64 KiB; these let a 10,000-row batch arrive in a few round trips.
const HTTP2_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The health service name a liveness probe asks for: SERVING from the moment the server
/// accepts requests until it exits, draining included, so that a probe restarts a process
/// that stopped answering, never one that is only not ready.
pub const LIVENESS_SERVICE: &str = "churnserve.liveness";

/// The tonic adapters over the services, shared by the gRPC port and the V2 REST routes.
#[derive(Debug)]
pub struct Adapters {
    scoring: ScoringApi,
    registry: RegistryApi,
    kserve: KServeApi,
    monitoring: MonitoringApi,
}

impl Adapters {
    pub fn new(config: &Config, services: &Services, draining: watch::Receiver<bool>) -> Self {
        Adapters {
            scoring: ScoringApi {
                draining,
                scoring: Arc::clone(&services.scoring),
                explaining: Arc::clone(&services.explaining),
                evaluating: Arc::clone(&services.evaluating),
                shadowing: Arc::clone(&services.shadowing),
            },
            registry: RegistryApi {
                evaluating: Arc::clone(&services.evaluating),
                shadowing: Arc::clone(&services.shadowing),
                catalog: Arc::clone(&services.catalog),
                versions: services.versions.clone(),
                datasets: services.datasets.clone(),
                max_model_bytes: config.max_model_bytes,
                max_dataset_bytes: config.max_dataset_bytes,
            },
            kserve: KServeApi {
                catalog: Arc::clone(&services.catalog),
                versions: services.versions.clone(),
                scoring: Arc::clone(&services.scoring),
            },
            monitoring: MonitoringApi {
                performance: Arc::clone(&services.performance),
                experiments: Arc::clone(&services.experiments),
                drift: Arc::clone(&services.fleet_drift),
            },
        }
    }
}

pub fn tokens(config: &Config) -> Tokens {
    Tokens {
        write_token: config.write_token.clone(),
        read_token: config.read_token.clone(),
    }
}

pub fn admission(config: &Config) -> AdmissionLayer {
    AdmissionLayer::new(AdmissionLimits {
        max_concurrent: config.max_concurrent_requests,
        max_queued: config.max_queued_requests,
        queue_timeout: Duration::from_millis(config.queue_timeout_ms),
    })
}

/// Binds the HTTP port (unless it is off) and serves the probes, `/metrics`, V2 REST and
/// the console on it until `stopped` turns true.
pub async fn start_http(
    config: &Config,
    services: &Services,
    adapters: &Adapters,
    admission: AdmissionLayer,
    ready: Arc<AtomicBool>,
    stopped: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ServerError> {
    let Some(address) = config.http_listen.0 else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(ServerError::Listener)?;
    let bound = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!("console, KServe V2 REST, metrics, /healthz and /readyz on http://{bound}");
    let timeout = Duration::from_millis(config.http_timeout_ms);
    let metrics = Arc::clone(&services.metrics);
    let state = api::http::HttpState {
        scrape: Arc::new(move || metrics.render()),
        ready,
        catalog: Arc::clone(&services.catalog),
    };
    let tokens = tokens(config);
    let v2 = api::kserve::rest::routes(
        api::kserve::rest::RestState {
            api: adapters.kserve.clone(),
            admission,
        },
        config.max_message_bytes,
    )
    .layer(tokens.layer(api::kserve::rest::refusal));
    let console = api::console::routes(api::console::ConsoleState {
        views: Arc::clone(&services.views),
        tokens: tokens.clone(),
    })
    .layer(tokens.layer(api::console::refusal));
    let router = api::http::router(state, v2.merge(console), timeout);
    Ok(Some(tokio::spawn(api::http::serve(
        listener, router, timeout, stopped,
    ))))
}

/// Serves every gRPC service on `listener` until `until` completes, then lets in-flight
/// requests finish: the transport settings, the layers (outermost first), the services,
/// `health` and reflection.
pub async fn serve_grpc(
    config: &Config,
    services: &Services,
    adapters: Adapters,
    admission: AdmissionLayer,
    health: HealthServer<impl tonic_health::pb::health_server::Health>,
    listener: TcpListener,
    until: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
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
    let limit = config.max_message_bytes;
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
    builder
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .initial_stream_window_size(Some(HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(HTTP2_CONNECTION_WINDOW))
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted,
        ))
        .layer(services.metrics.request_layer())
        .layer(observe::request_id::RequestIdLayer)
        .layer(tokens(config).layer(api::access::grpc_refusal))
        .layer(admission)
        .add_service(
            ScoringServiceServer::new(adapters.scoring)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            RegistryServiceServer::new(adapters.registry)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            GrpcInferenceServiceServer::new(adapters.kserve)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            MonitoringServiceServer::new(adapters.monitoring)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // serve_with_incoming ignores the builder's TCP_NODELAY; without it Nagle's algorithm
        // holds back small responses.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), until)
        .await
        .map_err(ServerError::Transport)
}

/// The health service's reporter, and the task that keeps it true to the registry.
#[derive(Debug)]
pub struct Health {
    pub reporter: HealthReporter,
    follower: JoinHandle<()>,
}

impl Health {
    /// Ready means every aliased version is loaded (the catalog loaded them while
    /// opening); from then on the registry is followed.
    pub async fn start(
        config: &Config,
        catalog: &Arc<Catalog>,
        ready: &Arc<AtomicBool>,
    ) -> (
        Health,
        HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        set_health(&reporter, catalog.aliases_behind().is_empty()).await;
        reporter
            .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        ready.store(true, Ordering::Relaxed);
        let follower = tokio::spawn(follow_registry(
            Arc::clone(catalog),
            Duration::from_millis(config.registry_poll_ms),
            reporter.clone(),
            Arc::clone(ready),
        ));
        (Health { reporter, follower }, service)
    }

    /// Draining: probes see NOT_SERVING from now on.
    pub async fn drain(&self, ready: &AtomicBool) {
        set_health(&self.reporter, false).await;
        ready.store(false, Ordering::Relaxed);
    }

    pub fn stop(self) {
        self.follower.abort();
    }
}

/// Marks the whole server and each of its services SERVING or NOT_SERVING.
async fn set_health(health: &HealthReporter, serving: bool) {
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

/// Follows registry changes made through other processes (other replicas, an offline
/// tool): at each announcement PostgreSQL sends, and at every `interval` whatever the
/// backend, since announcements sent while the listening connection is down are lost.
/// While an alias stays on an older version here, the health service says NOT_SERVING.
async fn follow_registry(
    catalog: Arc<Catalog>,
    interval: Duration,
    health: HealthReporter,
    accepting: Arc<AtomicBool>,
) {
    let announced = Notify::new();
    tokio::join!(relay_announcements(&catalog, interval, &announced), async {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_behind = !catalog.aliases_behind().is_empty();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = announced.notified() => {}
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
    });
}

/// Wakes the follower at each announcement. It runs beside the poll rather than racing its
/// ticks: after an outage, sqlx reconnects with a backoff that grows to seconds, and a
/// reconnect cancelled at every tick might never finish. Returns at once on SQLite.
async fn relay_announcements(catalog: &Catalog, interval: Duration, announced: &Notify) {
    let mut listen_failed = false;
    loop {
        match catalog.change_notifications().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                listen_failed = false;
                // What was announced before this connection listened is read now.
                announced.notify_one();
                let error = loop {
                    match listener.next().await {
                        Ok(()) => announced.notify_one(),
                        Err(error) => break error,
                    }
                };
                tracing::warn!(%error, "lost the registry change announcements; polling until they are back");
            }
            // Said once per outage, not at every attempt.
            Err(error) if !listen_failed => {
                tracing::warn!(%error, "cannot listen for registry changes; polling");
                listen_failed = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(interval).await;
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

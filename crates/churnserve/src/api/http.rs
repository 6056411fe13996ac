//! The HTTP port: an axum router (`/metrics`, `/healthz`, `/readyz`, and the routes other
//! adapters hand it: the KServe V2 REST API and the web console) served over HTTP/1.1 with
//! keep-alive, answers compressed when the client accepts it.
//! A client gets `timeout` to send each request's headers — the clock starts when the
//! connection opens and again when it goes idle, so idle and byte-at-a-time connections
//! are closed — and a request gets `timeout` to be answered, its body included. Accept
//! errors (out of file descriptors) back off instead of spinning. The port closes when the
//! gRPC server stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::domain::serving::catalog::Catalog;
use crate::sync::raised;

/// How long the accept loop waits after an accept error before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The OpenMetrics text format, which Prometheus scrapes.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders every metric as OpenMetrics text at scrape time.
pub type Scrape = Arc<dyn Fn() -> String + Send + Sync>;

/// What the probes and the scrape read.
#[derive(Clone)]
pub struct HttpState {
    pub scrape: Scrape,
    /// Started and not draining.
    pub ready: Arc<AtomicBool>,
    /// Whether every alias serves the version the registry names.
    pub catalog: Arc<Catalog>,
}

/// The routes of the HTTP port: the probes and the scrape, then `adapters`.
pub fn router(state: HttpState, adapters: Router, timeout: Duration) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(state)
        .merge(adapters)
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "try / (the console), /v2, /metrics, /healthz or /readyz\n",
            )
        })
        .layer(RequestBodyTimeoutLayer::new(timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // gzip or br by the request's Accept-Encoding, on every answer over 32 bytes:
        // console pages (a compare page is ~650 KB of HTML and SVG), V2 JSON, scrapes.
        // Brotli at quality 4, nginx's on-the-fly default, not the crate's costly 11.
        .layer(CompressionLayer::new())
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").finish_non_exhaustive()
    }
}

async fn scrape(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        (state.scrape)(),
    )
}

async fn readiness(State(state): State<HttpState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned());
    }
    let behind = state.catalog.aliases_behind();
    if behind.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let reasons: Vec<String> = behind.iter().map(ToString::to_string).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

/// Serves `router` on `listener` until `stop` turns true, then closes every connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(true);
    loop {
        tokio::select! {
            () = raised(&mut stop) => break,
            // Reap finished connections so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = http.serve_connection(
                        TokioIo::new(stream),
                        TowerToHyperService::new(router.clone()),
                    );
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            log_connection_error(peer, &error);
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "the HTTP port cannot accept a connection; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    connections.shutdown().await;
}

fn log_connection_error(peer: SocketAddr, error: &hyper::Error) {
    if error.is_timeout() {
        tracing::debug!(%peer, "HTTP connection closed: too slow to send a request");
    } else {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

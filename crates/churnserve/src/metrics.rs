//! Prometheus metrics in the text exposition format, served with `/healthz` and `/readyz`
//! on their own HTTP port: request counts and latency by RPC and status, requests in
//! flight, rows scored, batch sizes, predict time and score distributions by version, and
//! drift (population stability index of each feature and of the score against the
//! version's reference dataset, over a sliding window of recent rows).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use churn_engine::CustomerBatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::drift::{DriftTracker, load_reference};
use crate::shadow::{ShadowStats, Shadowing};
use crate::store::{ModelStore, ServedModel};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
const ROW_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];
const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Per model version.
#[derive(Debug)]
struct VersionMetrics {
    rows: u64,
    predict_seconds: Histogram,
    scores: Histogram,
}

impl Default for VersionMetrics {
    fn default() -> Self {
        VersionMetrics {
            rows: 0,
            predict_seconds: Histogram::new(LATENCY_BUCKETS),
            scores: Histogram::new(SCORE_BUCKETS),
        }
    }
}

/// How drift is measured.
#[derive(Debug, Clone, Copy)]
pub struct DriftSettings {
    /// Recent rows per version the index is computed over.
    pub window: usize,
    /// Reference rows: the first ones of the version's reference dataset.
    pub reference_rows: usize,
}

/// Everything the server counts.
#[derive(Debug)]
pub struct Metrics {
    store: Arc<ModelStore>,
    shadowing: Arc<Shadowing>,
    drift_settings: DriftSettings,
    ready: AtomicBool,
    in_flight: AtomicI64,
    requests: Mutex<Nested<&'static str, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    batch_rows: Mutex<Histogram>,
    versions: Mutex<Nested<u32, VersionMetrics>>,
    drift: Mutex<Nested<u32, SharedTracker>>,
}

/// Values by name, then by a second key: lookups borrow the name, so a request allocates
/// nothing once its name has been seen.
type Nested<K, V> = BTreeMap<String, BTreeMap<K, V>>;
type SharedTracker = Arc<Mutex<DriftTracker>>;

/// The entry under `name` and `key`, created empty the first time.
fn nested<'m, K: Ord, V: Default>(map: &'m mut Nested<K, V>, name: &str, key: K) -> &'m mut V {
    if !map.contains_key(name) {
        map.insert(name.to_owned(), BTreeMap::new());
    }
    map.get_mut(name)
        .expect("inserted above")
        .entry(key)
        .or_default()
}

/// Every (name, key, value) of a nested map, in order.
fn flat<K: Copy, V>(map: &Nested<K, V>) -> impl Iterator<Item = (&str, K, &V)> {
    map.iter()
        .flat_map(|(name, inner)| inner.iter().map(move |(k, v)| (name.as_str(), *k, v)))
}

impl Metrics {
    pub fn new(
        store: Arc<ModelStore>,
        shadowing: Arc<Shadowing>,
        drift_settings: DriftSettings,
    ) -> Self {
        Metrics {
            store,
            shadowing,
            drift_settings,
            ready: AtomicBool::new(false),
            in_flight: AtomicI64::new(0),
            requests: Mutex::default(),
            latency: Mutex::default(),
            batch_rows: Mutex::new(Histogram::new(ROW_BUCKETS)),
            versions: Mutex::default(),
            drift: Mutex::default(),
        }
    }

    /// What `/readyz` answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn record_request(&self, rpc: &str, code: &'static str, elapsed: Duration) {
        *nested(&mut lock(&self.requests), rpc, code) += 1;
        let mut latency = lock(&self.latency);
        if !latency.contains_key(rpc) {
            latency.insert(rpc.to_owned(), Histogram::new(LATENCY_BUCKETS));
        }
        latency
            .get_mut(rpc)
            .expect("inserted above")
            .observe(elapsed.as_secs_f64());
    }

    /// Records one engine call: its rows, its time, and the scored rows' probabilities
    /// and features for drift.
    pub fn record_predictions(
        &self,
        served: &Arc<ServedModel>,
        customers: &CustomerBatch,
        scores: &[Option<f64>],
        elapsed: Duration,
    ) {
        lock(&self.batch_rows).observe(customers.len() as f64);
        {
            let mut versions = lock(&self.versions);
            let entry = nested(&mut versions, &served.name, served.version);
            entry.rows += scores.iter().flatten().count() as u64;
            entry.predict_seconds.observe(elapsed.as_secs_f64());
            scores
                .iter()
                .flatten()
                .for_each(|&s| entry.scores.observe(s));
        }
        let tracker = self.tracker(served);
        let mut tracker = lock(&tracker);
        let schema = served.model.schema();
        let keep = self.drift_settings.window;
        let scored: Vec<(usize, f64)> = scores
            .iter()
            .enumerate()
            .filter_map(|(row, s)| s.map(|s| (row, s)))
            .collect();
        for &(row, score) in scored.iter().rev().take(keep).rev() {
            tracker.observe(customers, schema, row, score, keep);
        }
    }

    /// The version's drift tracker; the first call starts loading its reference.
    fn tracker(&self, served: &Arc<ServedModel>) -> SharedTracker {
        let mut trackers = lock(&self.drift);
        if let Some(tracker) = trackers
            .get(&served.name)
            .and_then(|v| v.get(&served.version))
        {
            return Arc::clone(tracker);
        }
        let tracker = Arc::clone(nested(&mut trackers, &served.name, served.version));
        let (store, served, rows) = (
            Arc::clone(&self.store),
            Arc::clone(served),
            self.drift_settings.reference_rows,
        );
        let loading = Arc::clone(&tracker);
        tokio::spawn(async move {
            match load_reference(&store, &served, rows).await {
                Ok(reference) => lock(&loading).set_reference(reference),
                Err(reason) => {
                    tracing::info!(model = %served.name, version = served.version, %reason, "no drift reference");
                    lock(&loading).set_unavailable(reason);
                }
            }
        });
        tracker
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "churn_requests_total",
            "counter",
            "gRPC requests by method and status code.",
        );
        for (rpc, code, count) in flat(&lock(&self.requests)) {
            let _ = writeln!(
                out,
                "churn_requests_total{{rpc=\"{rpc}\",code=\"{code}\"}} {count}"
            );
        }
        family(
            &mut out,
            "churn_request_duration_seconds",
            "histogram",
            "Time to the response headers, by method.",
        );
        for (rpc, histogram) in lock(&self.latency).iter() {
            histogram.render(
                &mut out,
                "churn_request_duration_seconds",
                &format!("rpc=\"{rpc}\""),
            );
        }
        family(
            &mut out,
            "churn_requests_in_flight",
            "gauge",
            "gRPC requests being served.",
        );
        let _ = writeln!(
            out,
            "churn_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "churn_batch_rows",
            "histogram",
            "Rows per engine call.",
        );
        lock(&self.batch_rows).render(&mut out, "churn_batch_rows", "");
        let versions = lock(&self.versions);
        family(
            &mut out,
            "churn_rows_scored_total",
            "counter",
            "Rows scored, by model version.",
        );
        for (model, version, v) in flat(&versions) {
            let _ = writeln!(
                out,
                "churn_rows_scored_total{{model=\"{model}\",version=\"{version}\"}} {}",
                v.rows
            );
        }
        family(
            &mut out,
            "churn_predict_duration_seconds",
            "histogram",
            "Validation and ONNX Runtime time per engine call, by model version.",
        );
        for (model, version, v) in flat(&versions) {
            v.predict_seconds.render(
                &mut out,
                "churn_predict_duration_seconds",
                &format!("model=\"{model}\",version=\"{version}\""),
            );
        }
        family(
            &mut out,
            "churn_score",
            "histogram",
            "Churn probabilities served, by model version.",
        );
        for (model, version, v) in flat(&versions) {
            v.scores.render(
                &mut out,
                "churn_score",
                &format!("model=\"{model}\",version=\"{version}\""),
            );
        }
        drop(versions);
        let loaded = self.store.loaded();
        family(
            &mut out,
            "churn_inference_seconds_total",
            "counter",
            "ONNX Runtime time alone (no validation or encoding), by model version in memory.",
        );
        for served in &loaded {
            let (_, time) = served.model.inference_time();
            let labels = format!("model=\"{}\",version=\"{}\"", served.name, served.version);
            let _ = writeln!(
                out,
                "churn_inference_seconds_total{{{labels}}} {}",
                time.as_secs_f64()
            );
        }
        family(
            &mut out,
            "churn_inference_runs_total",
            "counter",
            "ONNX Runtime calls, by model version in memory.",
        );
        for served in &loaded {
            let (runs, _) = served.model.inference_time();
            let labels = format!("model=\"{}\",version=\"{}\"", served.name, served.version);
            let _ = writeln!(out, "churn_inference_runs_total{{{labels}}} {runs}");
        }
        let (loads, unloads) = self.store.cache_events();
        family(
            &mut out,
            "churn_model_loads_total",
            "counter",
            "Model versions loaded into the session cache.",
        );
        let _ = writeln!(out, "churn_model_loads_total {loads}");
        family(
            &mut out,
            "churn_model_unloads_total",
            "counter",
            "Model versions evicted or unloaded from the session cache.",
        );
        let _ = writeln!(out, "churn_model_unloads_total {unloads}");
        family(
            &mut out,
            "churn_models_loaded",
            "gauge",
            "Model versions in memory.",
        );
        let _ = writeln!(out, "churn_models_loaded {}", loaded.len());
        family(
            &mut out,
            "churn_feature_psi",
            "gauge",
            "Population stability index of each raw feature over the recent window against the reference dataset.",
        );
        let trackers: Vec<(String, u32, SharedTracker)> = flat(&lock(&self.drift))
            .map(|(model, version, tracker)| (model.to_owned(), version, Arc::clone(tracker)))
            .collect();
        let mut score_lines = String::new();
        let mut window_lines = String::new();
        for (model, version, tracker) in trackers {
            let tracker = lock(&tracker);
            let labels = format!("model=\"{model}\",version=\"{version}\"");
            let _ = writeln!(
                window_lines,
                "churn_drift_window_rows{{{labels}}} {}",
                tracker.window_len()
            );
            let Some(report) = tracker.report() else {
                continue;
            };
            for (feature, psi) in report.features {
                let _ = writeln!(
                    out,
                    "churn_feature_psi{{{labels},feature=\"{feature}\"}} {psi}"
                );
            }
            let _ = writeln!(score_lines, "churn_score_psi{{{labels}}} {}", report.score);
        }
        family(
            &mut out,
            "churn_score_psi",
            "gauge",
            "Population stability index of the churn probability over the recent window against the reference dataset.",
        );
        out.push_str(&score_lines);
        family(
            &mut out,
            "churn_drift_window_rows",
            "gauge",
            "Rows in the drift window.",
        );
        out.push_str(&window_lines);
        self.render_shadows(&mut out);
        out
    }

    fn render_shadows(&self, out: &mut String) {
        let shadows = self.shadowing.all_stats();
        type Read = fn(&ShadowStats) -> f64;
        let families: [(&str, &str, &str, Read); 7] = [
            (
                "churn_shadow_compared_total",
                "counter",
                "Customers scored by both an alias's version and its shadow.",
                |s| s.compared as f64,
            ),
            (
                "churn_shadow_dropped_total",
                "counter",
                "Customers not shadowed because the shadow queue was full.",
                |s| s.dropped as f64,
            ),
            (
                "churn_shadow_failed_total",
                "counter",
                "Customers the shadow version could not score.",
                |s| s.failed as f64,
            ),
            (
                "churn_shadow_mean_abs_difference",
                "gauge",
                "Mean |shadow score - served score|.",
                ShadowStats::mean_abs_difference,
            ),
            (
                "churn_shadow_p99_abs_difference",
                "gauge",
                "99th percentile of |shadow score - served score| (bucket bound).",
                |s| s.abs_difference_quantile(0.99),
            ),
            (
                "churn_shadow_label_agreement",
                "gauge",
                "Share of customers both versions label alike at their thresholds.",
                ShadowStats::label_agreement,
            ),
            (
                "churn_shadow_rank_correlation",
                "gauge",
                "Spearman rank correlation of the two scores over the recent pairs.",
                ShadowStats::rank_correlation,
            ),
        ];
        for (name, kind, help, read) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (config, stats) in &shadows {
                let _ = writeln!(
                    out,
                    "{name}{{model=\"{}\",alias=\"{}\",shadow_version=\"{}\"}} {}",
                    config.name,
                    config.alias,
                    config.shadow_version,
                    read(stats)
                );
            }
        }
    }
}

/// A poisoned lock still guards consistent counters: a panic elsewhere must not stop them.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `/metrics`, `/healthz` and `/readyz` over plain HTTP/1.1 until the task is
/// aborted; one request per connection.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(1024);
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let request_line = String::from_utf8_lossy(&head);
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let (status, content_type, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_owned()),
                "/readyz" if metrics.ready.load(Ordering::Relaxed) => {
                    ("200 OK", "text/plain", "ready\n".to_owned())
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "not ready\n".to_owned(),
                ),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "try /metrics, /healthz or /readyz\n".to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// A tower layer counting every gRPC request by method and status code.
#[derive(Debug, Clone)]
pub struct RequestMetricsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let metrics = Arc::clone(&self.metrics);
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or("OK", code_name),
                Err(_) => "UNKNOWN",
            };
            metrics.record_request(&rpc, code, start.elapsed());
            result
        })
    }
}

fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

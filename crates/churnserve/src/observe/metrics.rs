//! Prometheus metrics on `prometheus-client`: the standard gRPC server series (started,
//! handled by code, handling time) with labels from the table of served methods, requests
//! in flight, rows scored, batch sizes, predict time and scores by version, process and
//! build series, and the scrape-time families (loaded versions, drift, shadows). The
//! recorder is told what happened; at scrape time it reads a [`ServingSnapshot`] that
//! the wiring hands it, so it never calls into the domain.

mod drift;
mod encoding;
mod layer;
mod process;
mod rpcs;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use churn_engine::{CustomerBatch, Schema};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::observe::drift::Drift;
use encoding::{encode_family, encode_one};
pub use layer::RequestMetricsLayer;
use rpcs::RpcLabels;

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
const ROW_BUCKETS: [f64; 6] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];
const SCORE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// A label value from outside the binary (a model, alias or feature name), escaped as
/// the text format requires: the encoder writes values as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Escaped(pub String);

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct VersionLabels {
    model: Escaped,
    version: u32,
}

impl VersionLabels {
    pub(crate) fn new(model: &str, version: u32) -> VersionLabels {
        VersionLabels {
            model: Escaped(model.to_owned()),
            version,
        }
    }
}

/// One arm of a traffic split: bounded, since arms are registry versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ArmLabels {
    model: Escaped,
    alias: Escaped,
    version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LogLabels {
    /// `written` or `dropped`.
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HandledLabels {
    #[prometheus(flatten)]
    rpc: RpcLabels,
    grpc_code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ShadowLabels {
    model: Escaped,
    alias: Escaped,
    shadow_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// One loaded version as the scrape sees it.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    pub name: String,
    pub version: u32,
    pub inference_runs: u64,
    pub inference_time: Duration,
}

/// One shadow in force and its agreement so far.
#[derive(Debug, Clone)]
pub struct ShadowSample {
    pub name: String,
    pub alias: String,
    pub shadow_version: u32,
    pub compared: u64,
    pub dropped: u64,
    pub failed: u64,
    pub mean_abs_difference: f64,
    pub p99_abs_difference: f64,
    pub label_agreement: f64,
    pub rank_correlation: f64,
}

/// The serving state read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct ServingSample {
    pub loaded: Vec<LoadedVersion>,
    pub loads: u64,
    pub unloads: u64,
    pub shadows: Vec<ShadowSample>,
    /// The registry change marker the served aliases reflect.
    pub registry_generation: i64,
    /// Aliases served with an older version because the registry's cannot load here.
    pub aliases_behind: usize,
    /// Aliased versions that failed to load, since start.
    pub alias_load_failures: u64,
}

/// Whoever can describe the serving state; the wiring passes the domain's view in.
pub trait ServingSnapshot: std::fmt::Debug + Send + Sync + 'static {
    fn sample(&self) -> ServingSample;
}

/// The request series, cloned into the tower layer.
#[derive(Debug, Clone)]
struct GrpcSeries {
    started: Family<RpcLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: Family<RpcLabels, Histogram>,
    in_flight: Gauge,
}

/// Everything the server counts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    grpc: GrpcSeries,
    batch_rows: Histogram,
    rows_scored: Family<VersionLabels, Counter>,
    predict_seconds: Family<VersionLabels, Histogram>,
    scores: Family<VersionLabels, Histogram>,
    prediction_log: Family<LogLabels, Counter>,
    split_rows: Family<ArmLabels, Counter>,
    realized_roc_auc: Family<VersionLabels, Gauge<f64, AtomicU64>>,
    estimated_roc_auc: Family<VersionLabels, Gauge<f64, AtomicU64>>,
    drift: Arc<Drift>,
}

impl Metrics {
    pub fn new(drift: Arc<Drift>, serving: Arc<dyn ServingSnapshot>) -> Metrics {
        let mut registry = Registry::default();
        let latency = || Histogram::new(LATENCY_BUCKETS);
        let grpc = GrpcSeries {
            started: Family::default(),
            handled: Family::default(),
            handling: Family::new_with_constructor(latency),
            in_flight: Gauge::default(),
        };
        // Every served method's started series exists from the start, so a dashboard shows
        // zero instead of nothing; the histograms appear with a method's first call.
        for rpc in rpcs::served() {
            let _ = grpc.started.get_or_create(&rpc);
        }
        registry.register(
            "grpc_server_started",
            "RPCs started on the server, by method",
            grpc.started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by method and gRPC status code (from headers or trailers)",
            grpc.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from the request to the status (the end of a stream), by method",
            grpc.handling.clone(),
        );
        registry.register(
            "churn_requests_in_flight",
            "gRPC requests being served",
            grpc.in_flight.clone(),
        );
        let batch_rows = Histogram::new(ROW_BUCKETS);
        registry.register(
            "churn_batch_rows",
            "Rows per engine call",
            batch_rows.clone(),
        );
        let rows_scored = Family::<VersionLabels, Counter>::default();
        registry.register(
            "churn_rows_scored",
            "Rows scored, by model version",
            rows_scored.clone(),
        );
        let predict_seconds =
            Family::<VersionLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "churn_predict_duration_seconds",
            "Validation and ONNX Runtime time per engine call, by model version",
            predict_seconds.clone(),
        );
        let scores = Family::<VersionLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(SCORE_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "churn_score",
            "Churn probabilities served, by model version",
            scores.clone(),
        );
        let prediction_log = Family::<LogLabels, Counter>::default();
        registry.register(
            "churn_prediction_log_rows",
            "Answers for the prediction log: written to the registry, or dropped (queue full, or the write failed)",
            prediction_log.clone(),
        );
        let split_rows = Family::<ArmLabels, Counter>::default();
        registry.register(
            "churn_split_rows",
            "Rows routed through a traffic split, by model, alias and the version of their arm",
            split_rows.clone(),
        );
        let realized_roc_auc = Family::<VersionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "churn_realized_roc_auc",
            "ROC AUC of the latest weekly cohort with labelled outcomes, by model version",
            realized_roc_auc.clone(),
        );
        let estimated_roc_auc = Family::<VersionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "churn_estimated_roc_auc",
            "ROC AUC the served probabilities expect for the latest weekly cohort, without labels, by model version",
            estimated_roc_auc.clone(),
        );
        registry.register(
            "churnserve_build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        registry.register_collector(Box::new(ServingCollector(serving)));
        registry.register_collector(Box::new(Arc::clone(&drift)));
        Metrics {
            registry,
            grpc,
            batch_rows,
            rows_scored,
            predict_seconds,
            scores,
            prediction_log,
            split_rows,
            realized_roc_auc,
            estimated_roc_auc,
            drift,
        }
    }

    /// Rows the prediction log wrote to the registry, and rows it had to drop.
    pub fn record_prediction_log(&self, written: u64, dropped: u64) {
        for (outcome, rows) in [("written", written), ("dropped", dropped)] {
            self.prediction_log
                .get_or_create(&LogLabels { outcome })
                .inc_by(rows);
        }
    }

    /// Rows a traffic split routed to one arm.
    pub fn record_split_rows(&self, model: &str, alias: &str, version: u32, rows: u64) {
        self.split_rows
            .get_or_create(&ArmLabels {
                model: Escaped(model.to_owned()),
                alias: Escaped(alias.to_owned()),
                version,
            })
            .inc_by(rows);
    }

    /// The latest cohort's realized (when labelled) and estimated ROC AUC of a version.
    pub fn set_cohort_roc_auc(
        &self,
        model: &str,
        version: u32,
        realized: Option<f64>,
        estimated: f64,
    ) {
        let labels = VersionLabels::new(model, version);
        if let Some(realized) = realized {
            self.realized_roc_auc.get_or_create(&labels).set(realized);
        }
        self.estimated_roc_auc.get_or_create(&labels).set(estimated);
    }

    /// Records one engine call: its rows, its time, and the scored rows' probabilities
    /// and features for drift.
    pub fn record_predictions(
        &self,
        model: &str,
        version: u32,
        schema: &Schema,
        customers: &CustomerBatch,
        scores: &[Option<f64>],
        elapsed: Duration,
    ) {
        self.batch_rows.observe(customers.len() as f64);
        let labels = VersionLabels::new(model, version);
        self.rows_scored
            .get_or_create(&labels)
            .inc_by(scores.iter().flatten().count() as u64);
        self.predict_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let histogram = self.scores.get_or_create(&labels);
        scores.iter().flatten().for_each(|&s| histogram.observe(s));
        self.drift
            .observe(model, version, schema, customers, scores);
    }

    /// The tower layer counting every gRPC request by method and status.
    pub fn request_layer(&self) -> RequestMetricsLayer {
        RequestMetricsLayer::new(self.grpc.clone())
    }

    /// The exposition of every metric, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[derive(Debug)]
struct ServingCollector(Arc<dyn ServingSnapshot>);

impl Collector for ServingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = self.0.sample();
        let by_version = |v: &LoadedVersion| VersionLabels::new(&v.name, v.version);
        encode_family(
            &mut encoder,
            "churn_inference_seconds",
            "ONNX Runtime time alone (no validation or encoding), by model version in memory.",
            sample.loaded.iter().map(|v| {
                (
                    by_version(v),
                    ConstCounter::new(v.inference_time.as_secs_f64()),
                )
            }),
        )?;
        encode_family(
            &mut encoder,
            "churn_inference_runs",
            "ONNX Runtime calls, by model version in memory.",
            sample
                .loaded
                .iter()
                .map(|v| (by_version(v), ConstCounter::new(v.inference_runs))),
        )?;
        encode_one(
            &mut encoder,
            "churn_model_loads",
            "Model versions loaded into the session cache.",
            ConstCounter::new(sample.loads),
        )?;
        encode_one(
            &mut encoder,
            "churn_model_unloads",
            "Model versions evicted or unloaded from the session cache.",
            ConstCounter::new(sample.unloads),
        )?;
        encode_one(
            &mut encoder,
            "churn_models_loaded",
            "Model versions in memory.",
            ConstGauge::new(sample.loaded.len() as i64),
        )?;
        encode_one(
            &mut encoder,
            "churn_registry_generation",
            "The registry change (audit log id) this replica's aliases reflect.",
            ConstGauge::new(sample.registry_generation),
        )?;
        encode_one(
            &mut encoder,
            "churn_aliases_behind",
            "Aliases still served by their previous version because the new one cannot load here.",
            ConstGauge::new(sample.aliases_behind as i64),
        )?;
        encode_one(
            &mut encoder,
            "churn_alias_load_failures",
            "Aliased versions that failed to load when the registry changed.",
            ConstCounter::new(sample.alias_load_failures),
        )?;
        encode_shadows(&mut encoder, &sample.shadows)
    }
}

fn encode_shadows(
    encoder: &mut DescriptorEncoder,
    shadows: &[ShadowSample],
) -> Result<(), std::fmt::Error> {
    let labels = |s: &ShadowSample| ShadowLabels {
        model: Escaped(s.name.clone()),
        alias: Escaped(s.alias.clone()),
        shadow_version: s.shadow_version,
    };
    type Read = fn(&ShadowSample) -> f64;
    let families: [(&str, &str, bool, Read); 7] = [
        (
            "churn_shadow_compared",
            "Customers scored by both an alias's version and its shadow.",
            true,
            |s| s.compared as f64,
        ),
        (
            "churn_shadow_dropped",
            "Customers not shadowed because the shadow queue was full.",
            true,
            |s| s.dropped as f64,
        ),
        (
            "churn_shadow_failed",
            "Customers the shadow version could not score.",
            true,
            |s| s.failed as f64,
        ),
        (
            "churn_shadow_mean_abs_difference",
            "Mean |shadow score - served score|.",
            false,
            |s| s.mean_abs_difference,
        ),
        (
            "churn_shadow_p99_abs_difference",
            "99th percentile of |shadow score - served score| (bucket bound).",
            false,
            |s| s.p99_abs_difference,
        ),
        (
            "churn_shadow_label_agreement",
            "Share of customers both versions label alike at their thresholds.",
            false,
            |s| s.label_agreement,
        ),
        (
            "churn_shadow_rank_correlation",
            "Spearman rank correlation of the two scores over the recent pairs.",
            false,
            |s| s.rank_correlation,
        ),
    ];
    for (name, help, counter, read) in families {
        let samples = shadows.iter().map(|s| (labels(s), read(s)));
        if counter {
            encode_family(
                encoder,
                name,
                help,
                samples.map(|(l, v)| (l, ConstCounter::new(v))),
            )?;
        } else {
            encode_family(
                encoder,
                name,
                help,
                samples.map(|(l, v)| (l, ConstGauge::new(v))),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_label_values_are_escaped() {
        let mut out = String::new();
        let mut registry = Registry::default();
        let family = Family::<VersionLabels, Counter>::default();
        registry.register("x", "help", family.clone());
        family
            .get_or_create(&VersionLabels::new("a\"b\\c\nd", 1))
            .inc();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
        assert!(
            out.contains(r#"x_total{model="a\"b\\c\nd",version="1"} 1"#),
            "{out}"
        );
    }
}

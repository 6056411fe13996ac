//! The server's configuration: one struct, built from embedded defaults, then a TOML file
//! (`--config`, keys named as the flags with underscores), then `CHURNSERVE_*`
//! environment variables, then command-line flags, validated once at start-up and passed
//! explicitly. `--print-config` shows the result as TOML, tokens redacted.

use std::net::SocketAddr;
use std::path::PathBuf;

use churn_engine::ModelOptions;
use churn_registry::{DEFAULT_ARTIFACT_CACHE_BYTES, Location};

use churn_explain::ExplainOptions;

use crate::api::access::Token;
use crate::domain::analysis::explaining::ExplainSettings;
use crate::domain::monitoring::prediction_log::PredictionLogSettings;
use crate::domain::serving::batching::MicroBatchSettings;
use crate::observe::telemetry::LogFormat;

/// Shuffles per feature in PERMUTATION importance: enough for a standard deviation.
const PERMUTATION_REPEATS: usize = 5;

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

/// Everything `serve` needs to know.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CHURNSERVE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    #[command(flatten)]
    #[serde(flatten)]
    pub registry: RegistryArgs,
    /// The ONNX Runtime shared library (libonnxruntime.so.1.31.1); default: ORT_DYLIB_PATH,
    /// then beside the executable, then where scripts/setup-onnxruntime.sh placed it.
    #[arg(long, env = "CHURNSERVE_ONNXRUNTIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<PathBuf>,
    /// Model answering requests that name none.
    #[arg(long, env = "CHURNSERVE_DEFAULT_MODEL", default_value = "telco-churn")]
    pub default_model: String,
    /// Do not seed an empty registry with the bundled Telco models.
    #[arg(long, env = "CHURNSERVE_NO_SEED")]
    pub no_seed: bool,
    /// Largest ONNX file RegisterModel accepts, in bytes.
    #[arg(long, env = "CHURNSERVE_MAX_MODEL_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_model_bytes: u64,
    /// Largest CSV file UploadDataset accepts, in bytes.
    #[arg(long, env = "CHURNSERVE_MAX_DATASET_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_dataset_bytes: u64,
    /// Loaded model versions kept in memory besides the aliased ones (least recently used evicted).
    #[arg(long, env = "CHURNSERVE_MODEL_CACHE_SIZE", default_value_t = 8)]
    pub model_cache_size: usize,
    /// Load aliased versions when first asked for, instead of as soon as an alias points at them.
    #[arg(long, env = "CHURNSERVE_LAZY_ALIASES")]
    pub lazy_aliases: bool,
    /// How often to look for registry changes made by other processes (other replicas),
    /// in milliseconds; on PostgreSQL, notifications usually come sooner.
    #[arg(long, env = "CHURNSERVE_REGISTRY_POLL_MS", default_value_t = 500)]
    pub registry_poll_ms: u64,
    /// Bearer token required for registry writes; unset: writes are open.
    #[arg(long, env = "CHURNSERVE_WRITE_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_token: Option<Token>,
    /// Bearer token required for scoring and registry reads (the write token also works); unset: open.
    #[arg(long, env = "CHURNSERVE_READ_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<Token>,
    /// Most customers accepted in one ScoreBatch request or stream message.
    #[arg(long, env = "CHURNSERVE_MAX_BATCH_ROWS", default_value_t = 10_000)]
    pub max_batch_rows: usize,
    /// Score each single-customer call (Score, one-row ModelInfer) alone instead of fusing
    /// concurrent calls for the same version into one ONNX Runtime run.
    #[arg(long, env = "CHURNSERVE_NO_MICRO_BATCHING")]
    pub no_micro_batching: bool,
    /// Longest a forming micro-batch keeps collecting calls, in microseconds. It closes
    /// sooner when no call joined since its last turn, so a lone call never waits.
    #[arg(
        long,
        env = "CHURNSERVE_MICRO_BATCH_WINDOW_US",
        default_value_t = 1_000
    )]
    pub micro_batch_window_us: u64,
    /// Most single-customer calls fused into one ONNX Runtime run.
    #[arg(long, env = "CHURNSERVE_MICRO_BATCH_MAX_ROWS", default_value_t = 64)]
    pub micro_batch_max_rows: usize,
    /// Batches waiting for their shadow version; beyond, shadow work is dropped and counted.
    #[arg(long, env = "CHURNSERVE_SHADOW_QUEUE_BATCHES", default_value_t = 64)]
    pub shadow_queue_batches: usize,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "CHURNSERVE_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// ONNX Runtime sessions per model, for concurrent requests; default: one per core.
    #[arg(long, env = "CHURNSERVE_SESSIONS_PER_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_per_model: Option<usize>,
    /// ONNX Runtime intra-op threads per session.
    #[arg(long, env = "CHURNSERVE_INTRA_OP_THREADS", default_value_t = 1)]
    pub intra_op_threads: usize,
    /// Background rows for explanations: the first rows of the version's reference dataset.
    #[arg(
        long,
        env = "CHURNSERVE_EXPLAIN_BACKGROUND_ROWS",
        default_value_t = 100
    )]
    pub explain_background_rows: usize,
    /// Most model evaluations (rows through ONNX Runtime) one sampled explanation may use.
    #[arg(
        long,
        env = "CHURNSERVE_EXPLAIN_MAX_EVALUATIONS",
        default_value_t = 100_000
    )]
    pub explain_max_evaluations: usize,
    /// Most labelled rows PERMUTATION importance uses (a dataset's first rows).
    #[arg(long, env = "CHURNSERVE_IMPORTANCE_ROWS", default_value_t = 2_000)]
    pub importance_rows: usize,
    /// Address of the HTTP port serving /metrics (Prometheus), /healthz and /readyz;
    /// `off` disables it. `--http-listen` is its former name.
    #[arg(
        long,
        alias = "metrics-listen",
        env = "CHURNSERVE_HTTP_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    pub http_listen: HttpListen,
    /// Longest an HTTP client may take to send a request's headers (an idle connection
    /// is closed after it too) and a request may take to be answered, in milliseconds.
    #[arg(long, env = "CHURNSERVE_HTTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_timeout_ms: u64,
    /// gRPC requests served at once; more wait in a bounded queue (health checks are exempt).
    #[arg(
        long,
        env = "CHURNSERVE_MAX_CONCURRENT_REQUESTS",
        default_value_t = 128
    )]
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot; beyond them, RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "CHURNSERVE_MAX_QUEUED_REQUESTS", default_value_t = 512)]
    pub max_queued_requests: usize,
    /// How long a request may wait for a slot before RESOURCE_EXHAUSTED, in milliseconds.
    #[arg(long, env = "CHURNSERVE_QUEUE_TIMEOUT_MS", default_value_t = 1_000)]
    pub queue_timeout_ms: u64,
    /// Longest a request may run, in milliseconds; a shorter `grpc-timeout` from the client wins.
    #[arg(long, env = "CHURNSERVE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// PEM certificate chain of the server; with `tls_key`, gRPC is served over TLS.
    #[arg(long, env = "CHURNSERVE_TLS_CERT", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server certificate.
    #[arg(long, env = "CHURNSERVE_TLS_KEY", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate authority that client certificates must chain to; set: mutual TLS.
    #[arg(long, env = "CHURNSERVE_TLS_CLIENT_CA", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// After SIGTERM, how long in-flight requests may finish before the server stops anyway.
    #[arg(long, env = "CHURNSERVE_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Log lines as human-readable text or one JSON object each.
    #[arg(
        long,
        env = "CHURNSERVE_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
    /// Count every scored row into its version's drift bins, for DriftReport: `on` or
    /// `off` (this replica's rows are then missing from every report).
    #[arg(
        long,
        env = "CHURNSERVE_DRIFT_COUNTING",
        value_enum,
        default_value = "on"
    )]
    pub drift_counting: Switch,
    /// The recent window, in minutes, of the drift gauges and the console's drift: the
    /// rows every replica scored in it.
    #[arg(long, env = "CHURNSERVE_DRIFT_WINDOW_MINUTES", default_value_t = 60)]
    pub drift_window_minutes: u64,
    /// How often this replica writes its drift counts to the registry, in seconds: a
    /// replica killed without warning loses at most this much of them.
    #[arg(long, env = "CHURNSERVE_DRIFT_FLUSH_SECONDS", default_value_t = 5)]
    pub drift_flush_seconds: u64,
    /// Keep every answer with a customer id in the registry, for outcomes and realized
    /// performance: `on` or `off`.
    #[arg(
        long,
        env = "CHURNSERVE_PREDICTION_LOG",
        value_enum,
        default_value = "on"
    )]
    pub prediction_log: Switch,
    /// The share of customers whose answers are logged, chosen by a hash of the customer id
    /// (a customer is always in or always out), in [0, 1].
    #[arg(long, env = "CHURNSERVE_PREDICTION_LOG_SAMPLE", default_value_t = 1.0)]
    pub prediction_log_sample: f64,
    /// Logged predictions are deleted this many days after they were made.
    #[arg(long, env = "CHURNSERVE_PREDICTION_LOG_DAYS", default_value_t = 400)]
    pub prediction_log_days: u32,
    /// Warn when the latest cohort's realized or estimated ROC AUC is more than this below
    /// the version's latest stored evaluation.
    #[arg(
        long,
        env = "CHURNSERVE_PERFORMANCE_ALERT_MARGIN",
        default_value_t = 0.05
    )]
    pub performance_alert_margin: f64,
    /// Minutes between two checks of the aliased versions' realized performance.
    #[arg(
        long,
        env = "CHURNSERVE_PERFORMANCE_CHECK_MINUTES",
        default_value_t = 60
    )]
    pub performance_check_minutes: u64,
    /// Most rows MEAN_ABS_SHAP importance explains (a dataset's first rows).
    #[arg(long, env = "CHURNSERVE_SHAP_IMPORTANCE_ROWS", default_value_t = 200)]
    pub shap_importance_rows: usize,
}

/// Where the HTTP port listens, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpListen(pub Option<SocketAddr>);

impl serde::Serialize for HttpListen {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(address) => serializer.collect_str(&address),
            None => serializer.serialize_str("off"),
        }
    }
}

impl std::str::FromStr for HttpListen {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(HttpListen(None));
        }
        text.parse()
            .map(|address| HttpListen(Some(address)))
            .map_err(|e| format!("{text:?}: {e}; expected HOST:PORT or `off`"))
    }
}

/// Where the registry is; `serve`, `check` and `migrate` take the same flags.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct RegistryArgs {
    /// Directory holding the registry and its artifacts; created if missing. With
    /// --registry-url and --artifact-store elsewhere, node-local state only.
    #[arg(long, env = "CHURNSERVE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The registry database: sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
    /// (libpq URL syntax; replicas share one); default: registry.db in --data-dir.
    #[arg(long, env = "CHURNSERVE_REGISTRY_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<SecretUrl>,
    /// Where model and dataset files are: a directory, or s3://BUCKET[/PREFIX] (the AWS_*
    /// variables; AWS_ENDPOINT_URL and AWS_ALLOW_HTTP for S3-compatible servers), gs://,
    /// az://; default: artifacts/ in --data-dir.
    #[arg(long, env = "CHURNSERVE_ARTIFACT_STORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<String>,
    /// The bound, in bytes, of the node-local copies (in --data-dir) of an object store's
    /// artifacts; least recently used copies are removed first.
    #[arg(long, env = "CHURNSERVE_ARTIFACT_CACHE_BYTES", default_value_t = DEFAULT_ARTIFACT_CACHE_BYTES)]
    pub artifact_cache_bytes: u64,
}

impl RegistryArgs {
    /// The embedded registry in `data_dir`.
    pub fn embedded(data_dir: PathBuf) -> RegistryArgs {
        RegistryArgs {
            data_dir,
            registry_url: None,
            artifact_store: None,
            artifact_cache_bytes: DEFAULT_ARTIFACT_CACHE_BYTES,
        }
    }

    /// Where the registry is: the URL checked, node-local state in `data_dir`.
    pub fn location(&self) -> Result<Location, ConfigError> {
        let url = self.registry_url.as_ref().map(|url| url.0.as_str());
        let mut location = Location::new(&self.data_dir, url, self.artifact_store.as_deref())
            .map_err(|e| ConfigError(e.to_string()))?;
        location.artifact_cache_bytes = self.artifact_cache_bytes;
        Ok(location)
    }
}

/// A URL that may carry a password: shown (in `--print-config`, logs, `Debug`) without it.
#[derive(Clone)]
pub struct SecretUrl(pub String);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&churn_registry::redact(&self.0))
    }
}

impl serde::Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&churn_registry::redact(&self.0))
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(SecretUrl(text.to_owned()))
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults for everything but the addresses and directories a caller must choose.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            registry: RegistryArgs::embedded(data_dir),
            onnxruntime: None,
            default_model: "telco-churn".to_owned(),
            no_seed: false,
            max_model_bytes: 256 * 1024 * 1024,
            max_dataset_bytes: 1024 * 1024 * 1024,
            model_cache_size: 8,
            lazy_aliases: false,
            registry_poll_ms: 500,
            write_token: None,
            read_token: None,
            max_batch_rows: 10_000,
            no_micro_batching: false,
            micro_batch_window_us: 1_000,
            micro_batch_max_rows: 64,
            shadow_queue_batches: 64,
            max_message_bytes: 64 * 1024 * 1024,
            sessions_per_model: None,
            intra_op_threads: 1,
            explain_background_rows: 100,
            explain_max_evaluations: 100_000,
            importance_rows: 2_000,
            shap_importance_rows: 200,
            http_listen: HttpListen(None),
            http_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_concurrent_requests: 128,
            max_queued_requests: 512,
            queue_timeout_ms: 1_000,
            request_timeout_ms: 30_000,
            log_format: LogFormat::Human,
            drift_counting: Switch::On,
            drift_window_minutes: 60,
            drift_flush_seconds: 5,
            prediction_log: Switch::On,
            prediction_log_sample: 1.0,
            prediction_log_days: 400,
            performance_alert_margin: 0.05,
            performance_check_minutes: 60,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.registry.location()?;
        if self.max_batch_rows == 0 {
            return Err(ConfigError("max_batch_rows must be at least 1".to_owned()));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError(format!(
                "max_message_bytes is {}; it must be at least 1024",
                self.max_message_bytes
            )));
        }
        if self.registry_poll_ms == 0 || self.model_cache_size == 0 || self.http_timeout_ms == 0 {
            return Err(ConfigError(
                "registry_poll_ms, model_cache_size and http_timeout_ms must be at least 1"
                    .to_owned(),
            ));
        }
        if [&self.write_token, &self.read_token]
            .into_iter()
            .flatten()
            .any(|t| t.expose().trim().is_empty())
        {
            return Err(ConfigError(
                "write_token and read_token must not be empty when set".to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&self.prediction_log_sample) {
            return Err(ConfigError(format!(
                "prediction_log_sample {} must be within [0, 1]",
                self.prediction_log_sample
            )));
        }
        if self.prediction_log_days == 0 || self.performance_check_minutes == 0 {
            return Err(ConfigError(
                "prediction_log_days and performance_check_minutes must be at least 1".to_owned(),
            ));
        }
        if self.sessions_per_model == Some(0) || self.intra_op_threads == 0 {
            return Err(ConfigError(
                "sessions_per_model and intra_op_threads must be at least 1".to_owned(),
            ));
        }
        if [
            self.explain_background_rows,
            self.explain_max_evaluations,
            self.importance_rows,
            self.shap_importance_rows,
            self.drift_window_minutes as usize,
            self.drift_flush_seconds as usize,
            self.max_concurrent_requests,
            self.request_timeout_ms as usize,
        ]
        .contains(&0)
        {
            return Err(ConfigError(
                "explain_background_rows, explain_max_evaluations, importance_rows, shap_importance_rows, drift_window_minutes, drift_flush_seconds, max_concurrent_requests and request_timeout_ms must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The TLS settings, when a certificate and key are configured.
    pub fn tls(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, ConfigError> {
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))
        };
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (read(cert)?, read(key)?),
            (None, None) if self.tls_client_ca.is_none() => return Ok(None),
            _ => {
                return Err(ConfigError(
                    "tls_cert and tls_key go together, and tls_client_ca needs them".to_owned(),
                ));
            }
        };
        let mut tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key));
        if let Some(ca) = &self.tls_client_ca {
            tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        Ok(Some(tls))
    }

    /// How explanations and importance are bounded.
    pub fn explain_settings(&self) -> ExplainSettings {
        ExplainSettings {
            background_rows: self.explain_background_rows,
            options: ExplainOptions {
                max_evaluations: self.explain_max_evaluations,
                ..ExplainOptions::default()
            },
            importance_rows: self.importance_rows,
            shap_importance_rows: self.shap_importance_rows,
            permutation_repeats: PERMUTATION_REPEATS,
        }
    }

    /// What the prediction log keeps; `None` when it is off.
    pub fn prediction_log(&self) -> Option<PredictionLogSettings> {
        (self.prediction_log == Switch::On).then_some(PredictionLogSettings {
            sample_rate: self.prediction_log_sample,
            retention_days: self.prediction_log_days,
        })
    }

    /// How drift counts are written and read.
    pub fn drift(&self) -> crate::domain::monitoring::drift::DriftSettings {
        crate::domain::monitoring::drift::DriftSettings {
            flush_every: std::time::Duration::from_secs(self.drift_flush_seconds),
            window: std::time::Duration::from_secs(self.drift_window_minutes * 60),
            retention_days: self.prediction_log_days,
        }
    }

    /// How concurrent Score calls are fused; `None` when micro-batching is off.
    pub fn micro_batching(&self) -> Option<MicroBatchSettings> {
        (!self.no_micro_batching && self.micro_batch_max_rows > 1).then(|| MicroBatchSettings {
            window: std::time::Duration::from_micros(self.micro_batch_window_us),
            max_rows: self.micro_batch_max_rows,
        })
    }

    /// How every model is loaded.
    pub fn model_options(&self) -> ModelOptions {
        let defaults = ModelOptions::default();
        ModelOptions {
            sessions: self.sessions_per_model.unwrap_or(defaults.sessions),
            intra_op_threads: self.intra_op_threads,
            ..defaults
        }
    }
}

//! The server's error type: what a request can fail with before or around the engine and
//! the registry. `api/status.rs` maps it to gRPC codes.

use churn_engine::{EngineError, RowError};
use churn_explain::ExplainError;
use churn_metrics::MetricsError;
use churn_registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error(
        "model {name:?} version {version} has no reference dataset (explanations and drift compare with it); upload one with `churnctl datasets upload` and name it with `churnctl set-reference {name} {version} DATASET` (or reference_dataset at registration)"
    )]
    NoReferenceDataset { name: String, version: u32 },
    #[error("reference dataset {dataset:?} cannot serve as this model's background: {reason}")]
    UnusableReference { dataset: String, reason: String },
    #[error(
        "dataset {dataset:?} has no column for feature(s) {} of model {model:?} version {version}",
        missing.join(", ")
    )]
    DatasetMismatch {
        dataset: String,
        model: String,
        version: u32,
        missing: Vec<String>,
    },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{0}")]
    GateFailed(String),
    /// Uploaded bytes that are not a model the engine can serve.
    #[error("the uploaded model cannot be served: {0}")]
    InvalidUpload(EngineError),
    /// A registered version that fails to load now.
    #[error("model {name:?} version {version} cannot serve: {reason}")]
    CannotServe {
        name: String,
        version: u32,
        reason: String,
    },
    /// The request itself is malformed (not one customer's features).
    #[error("{0}")]
    InvalidRequest(String),
    /// The single customer of a Score request cannot be scored.
    #[error("customer {:?}: {error}", churn_engine::abbreviated(customer_id))]
    InvalidCustomer {
        customer_id: String,
        error: RowError,
    },
    #[error("the batch has {rows} customers; the limit is {limit} (max_batch_rows)")]
    BatchTooLarge { rows: usize, limit: usize },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("a server task failed: {0}")]
    TaskFailed(String),
    /// The server is draining; the caller resumes elsewhere from `resume_from`.
    #[error(
        "the server is shutting down; rows before {resume_from} were answered: resume from row {resume_from} on another server"
    )]
    ShuttingDown { resume_from: u64 },
}

impl ServiceError {
    /// The same failure for each of the callers one engine call served: engine errors
    /// keep their kind (and so their status code) for every caller.
    pub fn for_each_caller(&self) -> ServiceError {
        match self {
            ServiceError::Engine(error) => ServiceError::Engine(error.clone()),
            other => ServiceError::TaskFailed(other.to_string()),
        }
    }
}

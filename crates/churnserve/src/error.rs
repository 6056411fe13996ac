//! The server's error type: what a request can fail with before or around the engine and
//! the registry. `status.rs` maps it to gRPC codes.

use churn_engine::{EngineError, RowError};
use churn_registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    #[error("customer {customer_id:?}: {error}")]
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
    #[error("{0} is not available yet")]
    NotImplemented(&'static str),
    #[error("a server task failed: {0}")]
    TaskFailed(String),
}

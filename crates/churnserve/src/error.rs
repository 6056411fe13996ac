//! The server's error type: what a request can fail with before or around the engine.
//! `status.rs` maps it to gRPC codes.

use churn_engine::{EngineError, RowError};

use crate::catalog::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    #[error("{0} is not available yet")]
    NotImplemented(&'static str),
    #[error("a scoring task failed: {0}")]
    TaskFailed(String),
}

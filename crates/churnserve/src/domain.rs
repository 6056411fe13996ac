//! What the service does, in domain types: the catalog (the only door to the registry),
//! scoring with its micro-batching and stream pipeline, explanations, evaluations,
//! shadows, and what the domain hands to observation. It knows neither tonic nor HTTP.

mod batching;
pub mod catalog;
pub mod error;
pub mod evaluating;
pub mod explaining;
pub mod monitoring;
pub mod performance;
mod predict;
pub mod prediction_log;
pub mod scoring;
pub mod seed;
pub mod served;
pub mod shadows;
pub mod streams;
pub mod views;

pub use batching::MicroBatchSettings;
/// The registry's records and names, as the domain speaks them to its adapters.
pub use churn_registry::{
    Actor, ArtifactKind, DatasetRecord, ModelSummary, NewDataset, OutcomeRecord, RegistryError,
    ShadowConfig, Staged, VersionRecord,
};
pub use predict::Predictor;

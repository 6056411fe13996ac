//! What the service does, in domain types, in three folders: `serving` (the catalog of
//! loaded versions, scoring with its micro-batching and stream pipeline, seeding),
//! `analysis` (explanations, evaluations, shadows) and `monitoring` (the prediction log,
//! realized performance, what the domain hands to observation). It knows neither tonic
//! nor HTTP.

pub mod analysis;
pub mod error;
pub mod monitoring;
pub mod records;
pub mod serving;
pub mod views;

/// The registry's records and names, as the domain speaks them to its adapters.
pub use churn_registry::{
    Actor, ArtifactKind, DatasetRecord, ModelSummary, NewDataset, NewTrafficSplit, OutcomeRecord,
    RegistryError, ShadowConfig, Staged, TrafficArm, TrafficSplit, VersionRecord,
};

/// The engine's, the explainer's and the metrics' value types, which the adapters convert
/// to and from the wire: the domain speaks them, so the adapters import them from here.
pub use churn_engine::{
    ColumnValues, Customer, CustomerBatch, CustomerColumns, EngineError, FeatureKind, FeatureValue,
    Prediction, RiskBand, RowError, Schema, TensorType,
};
pub use churn_explain::{Attribution, ExplainError, Explanation, FeatureImportance};
pub use churn_metrics::{
    AucComparison, CurvePoint, Metrics, MetricsError, Objective, ProfitMetrics, ProfitParameters,
    ThresholdChoice,
};
/// Milliseconds since the Unix epoch, the registry's clock.
pub use churn_registry::now_millis;

//! The churn inference engine: loads ONNX churn models into ONNX Runtime, derives each
//! model's raw input schema from its graph, validates customers against it and scores
//! them. No gRPC, no storage: callers hand in bytes and plain values.

mod batch;
mod columns;
mod error;
mod graph;
mod model;
mod onnx_proto;
mod runtime;
mod schema;
mod trees;

pub use batch::{
    ColumnValues, Customer, CustomerBatch, CustomerColumns, FeatureProblem, FeatureValue,
    MAX_ID_BYTES, MAX_TEXT_BYTES, RowError, ValueRef, abbreviated,
};
pub use columns::ColumnMapping;
pub use error::EngineError;
pub use graph::UnknownCategory;
pub use model::{
    Inspection, Model, ModelOptions, Prediction, RISK_BAND_CUTS_KEY, RiskBand, THRESHOLD_KEY,
};
pub use runtime::{ONNXRUNTIME_VERSION, OnnxRuntime};
pub use schema::{
    CATEGORIES_KEY, Categories, FEATURE_NAMES_KEY, Feature, FeatureKind, Schema, TensorType,
};
pub use trees::{SplitRule, Tree, TreeEnsemble, TreeNode};

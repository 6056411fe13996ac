//! Plain domain records the registry stores and returns; nothing here knows SQL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A version by number or by alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionRef {
    Number(u32),
    Alias(String),
}

/// One raw input feature of a version, as derived from its graph at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub name: String,
    /// `number`, `text` or `bool`.
    pub kind: String,
    pub allowed_values: Vec<String>,
}

/// What a version is, beyond its identity: the caller's description and what validation
/// derived from the graph. Shared by a registration and the stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionMetadata {
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Column names of a dense input given at registration (empty when the model carries them).
    pub feature_names: Vec<String>,
    pub features: Vec<FeatureRecord>,
    pub class_labels: Vec<String>,
    pub positive_class: String,
    pub threshold: f64,
    pub risk_band_cuts: [f64; 2],
    pub reference_dataset: String,
    pub producer: String,
}

/// Everything the registry knows about one version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub size_bytes: u64,
    pub created_at_millis: i64,
    pub aliases: Vec<String>,
    pub archived: bool,
    pub metadata: VersionMetadata,
}

/// A version to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub name: String,
    pub metadata: VersionMetadata,
    /// Aliases to point at the new version in the same transaction.
    pub aliases: Vec<String>,
}

/// One model and where its aliases point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    pub name: String,
    pub latest_version: u32,
    pub aliases: BTreeMap<String, u32>,
}

/// Where one alias points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    pub name: String,
    pub alias: String,
    pub version: u32,
}

/// Metadata of a dataset upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDataset {
    pub name: String,
    pub label_column: String,
    pub positive_label: String,
    pub description: String,
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    pub name: String,
    pub label_column: String,
    pub positive_label: String,
    pub description: String,
    pub rows: u64,
    pub positives: u64,
    pub columns: Vec<String>,
    pub sha256: String,
    pub created_at_millis: i64,
}

/// An evaluation to store: the metrics are the caller's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvaluation {
    pub name: String,
    pub version: u32,
    /// Empty for inline rows.
    pub dataset: String,
    pub dataset_sha256: String,
    pub threshold: f64,
    /// The headline, kept beside the JSON so that listings need not read it.
    pub roc_auc: f64,
    pub metrics_json: String,
}

/// A stored evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRecord {
    pub evaluation_id: String,
    pub name: String,
    pub version: u32,
    pub model_sha256: String,
    pub dataset: String,
    pub dataset_sha256: String,
    pub threshold: f64,
    pub metrics_json: String,
    pub created_at_millis: i64,
}

/// Rows read back from a dataset: text fields by column, and whether each row churned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub churned: Vec<bool>,
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

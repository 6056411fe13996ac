//! Rows as the database stores them, and their conversion into records: JSON columns are
//! decoded here, so a record never sees sqlx.

use crate::RegistryError;
use crate::records::{AliasRecord, DatasetRecord, VersionMetadata, VersionRecord};

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, RegistryError> {
    serde_json::from_str(text)
        .map_err(|e| RegistryError::Storage(format!("column {column} holds unreadable JSON: {e}")))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    name: String,
    version: i64,
    sha256: String,
    size_bytes: i64,
    created_at: i64,
    description: String,
    tags: String,
    feature_names: String,
    features: String,
    class_labels: String,
    positive_class: String,
    threshold: f64,
    risk_band_cuts: String,
    reference_dataset: String,
    producer: String,
    archived: i64,
}

impl VersionRow {
    pub(crate) fn into_record(
        self,
        aliases: &[AliasRecord],
    ) -> Result<VersionRecord, RegistryError> {
        let version = self.version as u32;
        Ok(VersionRecord {
            aliases: aliases
                .iter()
                .filter(|a| a.version == version)
                .map(|a| a.alias.clone())
                .collect(),
            metadata: VersionMetadata {
                tags: from_json("tags", &self.tags)?,
                feature_names: from_json("feature_names", &self.feature_names)?,
                features: from_json("features", &self.features)?,
                class_labels: from_json("class_labels", &self.class_labels)?,
                risk_band_cuts: from_json("risk_band_cuts", &self.risk_band_cuts)?,
                description: self.description,
                positive_class: self.positive_class,
                threshold: self.threshold,
                reference_dataset: self.reference_dataset,
                producer: self.producer,
            },
            name: self.name,
            version,
            sha256: self.sha256,
            size_bytes: self.size_bytes as u64,
            created_at_millis: self.created_at,
            archived: self.archived != 0,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DatasetRow {
    name: String,
    label_column: String,
    positive_label: String,
    description: String,
    rows: i64,
    positives: i64,
    columns: String,
    sha256: String,
    created_at: i64,
}

impl DatasetRow {
    pub(crate) fn into_record(self) -> Result<DatasetRecord, RegistryError> {
        Ok(DatasetRecord {
            columns: from_json("columns", &self.columns)?,
            name: self.name,
            label_column: self.label_column,
            positive_label: self.positive_label,
            description: self.description,
            rows: self.rows as u64,
            positives: self.positives as u64,
            sha256: self.sha256,
            created_at_millis: self.created_at,
        })
    }
}

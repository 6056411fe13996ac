//! Domain results to protobuf responses.

use churn_api::v1 as pb;
use churn_engine::{Customer, Prediction, RiskBand, RowError};
use churn_registry::{DatasetRecord, ModelSummary, VersionRecord};

use crate::store::ServedModel;

pub fn served_by(served: &ServedModel) -> pb::ServedBy {
    pb::ServedBy {
        name: served.name.clone(),
        version: served.version,
        sha256: served.sha256.clone(),
    }
}

pub fn prediction(customer_id: String, prediction: &Prediction) -> pb::Prediction {
    let risk_band = match prediction.risk_band {
        RiskBand::Low => pb::RiskBand::Low,
        RiskBand::Medium => pb::RiskBand::Medium,
        RiskBand::High => pb::RiskBand::High,
    };
    pb::Prediction {
        customer_id,
        churn_probability: prediction.churn_probability,
        will_churn: prediction.will_churn,
        risk_band: risk_band.into(),
        top_reasons: Vec::new(),
    }
}

/// One response for a batch whose first row is `first_row` in the request or stream.
pub fn score_batch_response(
    served: &ServedModel,
    first_row: u32,
    customers: Vec<Customer>,
    outcomes: Vec<Result<Prediction, RowError>>,
) -> pb::ScoreBatchResponse {
    let results = customers
        .into_iter()
        .zip(outcomes)
        .zip(first_row..)
        .map(|((customer, outcome), row)| pb::RowResult {
            row,
            outcome: Some(match outcome {
                Ok(scored) => pb::row_result::Outcome::Prediction(prediction(customer.id, &scored)),
                Err(error) => pb::row_result::Outcome::Error(row_error(row, &error)),
            }),
        })
        .collect();
    pb::ScoreBatchResponse {
        results,
        served_by: Some(served_by(served)),
    }
}

fn row_error(row: u32, error: &RowError) -> pb::RowError {
    pb::RowError {
        feature: error
            .problems
            .first()
            .map(|p| p.feature.clone())
            .unwrap_or_default(),
        message: format!("row {row}: {error}"),
    }
}

pub fn model_version(record: VersionRecord) -> pb::ModelVersion {
    let metadata = record.metadata;
    pb::ModelVersion {
        name: record.name,
        version: record.version,
        sha256: record.sha256,
        size_bytes: record.size_bytes,
        created_at: Some(timestamp(record.created_at_millis)),
        description: metadata.description,
        tags: metadata.tags.into_iter().collect(),
        aliases: record.aliases,
        features: metadata
            .features
            .into_iter()
            .map(|feature| pb::FeatureSpec {
                kind: match feature.kind.as_str() {
                    "number" => pb::FeatureKind::Number,
                    "text" => pb::FeatureKind::Text,
                    "bool" => pb::FeatureKind::Bool,
                    _ => pb::FeatureKind::Unspecified,
                }
                .into(),
                name: feature.name,
                allowed_values: feature.allowed_values,
            })
            .collect(),
        positive_class: metadata.positive_class,
        class_labels: metadata.class_labels,
        threshold: metadata.threshold,
        risk_band_cuts: metadata.risk_band_cuts.to_vec(),
        reference_dataset: metadata.reference_dataset,
        archived: record.archived,
        producer: metadata.producer,
    }
}

pub fn model_summary(summary: ModelSummary) -> pb::ModelSummary {
    pb::ModelSummary {
        name: summary.name,
        latest_version: summary.latest_version,
        aliases: summary.aliases.into_iter().collect(),
    }
}

pub fn dataset(record: DatasetRecord) -> pb::Dataset {
    pb::Dataset {
        name: record.name,
        rows: record.rows,
        positives: record.positives,
        columns: record.columns,
        sha256: record.sha256,
        created_at: Some(timestamp(record.created_at_millis)),
    }
}

fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

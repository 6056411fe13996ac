//! Domain results to protobuf responses.

use churn_api::v1 as pb;
use churn_engine::{Customer, Prediction, RiskBand, RowError};

use crate::catalog::ServedModel;

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

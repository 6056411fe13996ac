//! One engine call for a batch of one version's customers: on the calling worker for a
//! handful of rows, else on the blocking pool, so ONNX Runtime never stalls a tokio
//! worker for long; its rows, time and scores are told to the metrics, and its answers
//! handed to the prediction log.

use std::sync::Arc;
use std::time::Instant;

use churn_engine::{CustomerBatch, Prediction, RowError};

use crate::domain::error::ServiceError;
use crate::domain::monitoring::prediction_log::PredictionLog;
use crate::domain::serving::served::ServedModel;
use crate::observe::metrics::Metrics;
use crate::observe::request_id;

/// Batches this small run on the calling worker: ONNX Runtime takes microseconds for
/// them, less than handing them to the blocking pool and back.
const INLINE_ROWS: usize = 16;

/// Per-row outcomes, in request order.
pub type Outcomes = Vec<Result<Prediction, RowError>>;

#[derive(Debug, Clone)]
pub struct Predictor {
    metrics: Arc<Metrics>,
    log: Option<Arc<PredictionLog>>,
}

impl Predictor {
    /// `log`: where answers are logged, when the prediction log is on.
    pub fn new(metrics: Arc<Metrics>, log: Option<Arc<PredictionLog>>) -> Predictor {
        Predictor { metrics, log }
    }

    /// Scores `customers` with `served`; each row gets its prediction or its own
    /// validation error. The batch comes back with the outcomes.
    pub async fn predict(
        &self,
        served: Arc<ServedModel>,
        customers: CustomerBatch,
    ) -> Result<(CustomerBatch, Outcomes), ServiceError> {
        if customers.is_empty() {
            return Ok((customers, Vec::new()));
        }
        request_id::record_model(&served.name, served.version, customers.len());
        let rows = customers.len();
        let metrics = Arc::clone(&self.metrics);
        let log = self.log.clone();
        let run = move || {
            let start = Instant::now();
            let outcomes = served.model.predict_batch(&customers)?;
            let scores: Vec<Option<f64>> = outcomes
                .iter()
                .map(|o| o.as_ref().ok().map(|p| p.churn_probability))
                .collect();
            metrics.record_predictions(
                &served.name,
                served.version,
                served.model.schema(),
                &customers,
                &scores,
                start.elapsed(),
            );
            if let Some(log) = log {
                log.offer(&served.name, served.version, &customers, &outcomes);
            }
            Ok((customers, outcomes))
        };
        if rows <= INLINE_ROWS {
            return run();
        }
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ServiceError::TaskFailed(e.to_string()))?
    }
}

//! One engine call for a batch of one version's customers: on the calling worker for a
//! handful of rows, else on the blocking pool, so ONNX Runtime never stalls a tokio
//! worker for long, and in one part per core for a large batch; its rows, time and
//! scores are told to the metrics, and its answers handed to the prediction log.

use std::ops::Range;
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
/// Batches this large are cut into one part per core, each scored on the blocking pool:
/// below it, handing parts out costs more than the second core gains.
const SPLIT_ROWS: usize = 2_048;

/// Per-row outcomes, in request order.
pub type Outcomes = Vec<Result<Prediction, RowError>>;

#[derive(Debug, Clone)]
pub struct Predictor {
    metrics: Arc<Metrics>,
    log: Option<Arc<PredictionLog>>,
    cores: usize,
}

impl Predictor {
    /// `log`: where answers are logged, when the prediction log is on.
    pub fn new(metrics: Arc<Metrics>, log: Option<Arc<PredictionLog>>) -> Predictor {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Predictor {
            metrics,
            log,
            cores,
        }
    }

    /// Scores `customers` with `served`; each row gets its prediction or its own
    /// validation error. The batch comes back with the outcomes. `alias` is what the
    /// request came through (empty when it named the version), for the prediction log.
    pub async fn predict(
        &self,
        served: Arc<ServedModel>,
        alias: &Arc<str>,
        customers: CustomerBatch,
    ) -> Result<(CustomerBatch, Outcomes), ServiceError> {
        if customers.is_empty() {
            return Ok((customers, Vec::new()));
        }
        request_id::record_model(&served.name, served.version, customers.len());
        let rows = customers.len();
        if rows <= INLINE_ROWS {
            let start = Instant::now();
            let outcomes = served.model.predict_batch(&customers)?;
            self.tell(&served, alias, &customers, &outcomes, start);
            return Ok((customers, outcomes));
        }
        let start = Instant::now();
        let parts = self.parts(rows);
        if parts == 1 {
            let (predictor, alias) = (self.clone(), Arc::clone(alias));
            return tokio::task::spawn_blocking(move || {
                let outcomes = served.model.predict_batch(&customers)?;
                predictor.tell(&served, &alias, &customers, &outcomes, start);
                Ok((customers, outcomes))
            })
            .await
            .map_err(|e| ServiceError::TaskFailed(e.to_string()))?;
        }
        let customers = Arc::new(customers);
        let parts: Vec<_> = split(rows, parts)
            .map(|range| {
                let (served, customers) = (Arc::clone(&served), Arc::clone(&customers));
                tokio::task::spawn_blocking(move || served.model.predict_rows(&customers, range))
            })
            .collect();
        let mut outcomes = Vec::with_capacity(rows);
        for part in parts {
            outcomes.extend(
                part.await
                    .map_err(|e| ServiceError::TaskFailed(e.to_string()))??,
            );
        }
        let customers = Arc::unwrap_or_clone(customers);
        let (predictor, alias) = (self.clone(), Arc::clone(alias));
        tokio::task::spawn_blocking(move || {
            predictor.tell(&served, &alias, &customers, &outcomes, start);
            (customers, outcomes)
        })
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))
    }

    /// Tells the metrics that a traffic split routed `rows` rows to `served`.
    pub fn count_split_rows(&self, served: &ServedModel, alias: &str, rows: usize) {
        self.metrics
            .record_split_rows(&served.name, alias, served.version, rows as u64);
    }

    /// How many parts a batch of `rows` is scored in: one per core for large batches, so
    /// that a lone `ScoreBatch` uses the machine rather than one core of it.
    fn parts(&self, rows: usize) -> usize {
        if rows < SPLIT_ROWS {
            1
        } else {
            self.cores.min(rows / (SPLIT_ROWS / 2))
        }
    }

    /// Tells the metrics the batch's rows, time and scores, and hands its answers to the
    /// prediction log.
    fn tell(
        &self,
        served: &ServedModel,
        alias: &str,
        customers: &CustomerBatch,
        outcomes: &Outcomes,
        start: Instant,
    ) {
        let scores: Vec<Option<f64>> = outcomes
            .iter()
            .map(|o| o.as_ref().ok().map(|p| p.churn_probability))
            .collect();
        self.metrics.record_predictions(
            &served.name,
            served.version,
            served.model.schema(),
            customers,
            &scores,
            start.elapsed(),
        );
        if let Some(log) = &self.log {
            log.offer(&served.name, served.version, alias, customers, outcomes);
        }
    }
}

/// `0..rows` cut into `parts` consecutive ranges of nearly equal length.
fn split(rows: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
    let parts = parts.max(1);
    (0..parts).map(move |part| rows * part / parts..rows * (part + 1) / parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_row_once_in_order() {
        for (rows, parts) in [(2_048, 2), (10_000, 2), (10_001, 3), (5, 1), (7, 7)] {
            let ranges: Vec<Range<usize>> = split(rows, parts).collect();
            assert_eq!(ranges.len(), parts);
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[parts - 1].end, rows);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
            assert!(ranges.iter().all(|r| r.len() >= rows / parts));
        }
    }
}

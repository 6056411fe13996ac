//! Scoring requests: model resolution through the store, the batch limit, and the engine
//! call on the blocking pool so ONNX Runtime never stalls a tokio worker.

use std::sync::Arc;

use churn_engine::{Customer, CustomerBatch, Prediction, RowError};

use std::time::Instant;

use crate::batching::{MicroBatchSettings, MicroBatcher};
use crate::error::ServiceError;
use crate::metrics::Metrics;
use crate::request_id;
use crate::store::{ModelSelector, ModelStore, ServedModel};

/// Batches this small run on the calling worker: ONNX Runtime takes microseconds for
/// them, less than handing them to the blocking pool and back.
const INLINE_ROWS: usize = 16;

/// Per-row outcomes, in request order.
pub type Outcomes = Vec<Result<Prediction, RowError>>;

#[derive(Debug)]
pub struct Scoring {
    store: Arc<ModelStore>,
    max_batch_rows: usize,
    metrics: Arc<Metrics>,
    /// Fuses concurrent single-customer calls; `None` when turned off.
    batcher: Option<MicroBatcher>,
}

impl Scoring {
    pub fn new(
        store: Arc<ModelStore>,
        max_batch_rows: usize,
        metrics: Arc<Metrics>,
        micro_batching: Option<MicroBatchSettings>,
    ) -> Scoring {
        Scoring {
            store,
            max_batch_rows,
            batcher: micro_batching
                .map(|settings| MicroBatcher::new(settings, Arc::clone(&metrics))),
            metrics,
        }
    }

    pub fn default_model(&self) -> &str {
        self.store.default_model()
    }

    pub async fn resolve(
        &self,
        selector: &ModelSelector,
    ) -> Result<Arc<ServedModel>, ServiceError> {
        self.store.resolve(selector).await
    }

    /// Scores one customer; an invalid customer is an error naming every offending feature.
    pub async fn score(
        &self,
        served: Arc<ServedModel>,
        customer: Customer,
    ) -> Result<(String, Prediction), ServiceError> {
        let id = customer.id.clone();
        self.score_one(served, customer)
            .await?
            .map(|prediction| (id.clone(), prediction))
            .map_err(|error| ServiceError::InvalidCustomer {
                customer_id: id,
                error,
            })
    }

    /// One customer's outcome, through the micro-batcher when it is on.
    pub async fn score_one(
        &self,
        served: Arc<ServedModel>,
        customer: Customer,
    ) -> Result<Result<Prediction, RowError>, ServiceError> {
        match &self.batcher {
            Some(batcher) => {
                request_id::record_model(&served.name, served.version, 1);
                batcher.score(served, customer).await
            }
            None => {
                let rows = CustomerBatch::Rows(vec![customer]);
                let (_, mut outcomes) = predict(served, rows, Arc::clone(&self.metrics)).await?;
                Ok(outcomes.remove(0))
            }
        }
    }

    /// Scores a batch with one version; bad rows get their own error.
    pub async fn score_batch(
        &self,
        served: Arc<ServedModel>,
        customers: CustomerBatch,
    ) -> Result<(CustomerBatch, Outcomes), ServiceError> {
        if customers.len() > self.max_batch_rows {
            return Err(ServiceError::BatchTooLarge {
                rows: customers.len(),
                limit: self.max_batch_rows,
            });
        }
        predict(served, customers, Arc::clone(&self.metrics)).await
    }
}

pub(crate) async fn predict(
    served: Arc<ServedModel>,
    customers: CustomerBatch,
    metrics: Arc<Metrics>,
) -> Result<(CustomerBatch, Outcomes), ServiceError> {
    if customers.is_empty() {
        return Ok((customers, Vec::new()));
    }
    request_id::record_model(&served.name, served.version, customers.len());
    let customers_len = customers.len();
    let run = move || {
        let start = Instant::now();
        let outcomes = served.model.predict_batch(&customers)?;
        let scores: Vec<Option<f64>> = outcomes
            .iter()
            .map(|o| o.as_ref().ok().map(|p| p.churn_probability))
            .collect();
        metrics.record_predictions(&served, &customers, &scores, start.elapsed());
        Ok((customers, outcomes))
    };
    if customers_len <= INLINE_ROWS {
        return run();
    }
    tokio::task::spawn_blocking(run)
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))?
}

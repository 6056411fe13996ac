//! Scoring, one path for every request: resolve the version through the catalog, check
//! the batch limit, fetch the explanation background when reasons are asked for (failing
//! before anything is scored when the version cannot be explained), score (a single
//! customer through the micro-batcher when it is on), attach each valid row's top
//! reasons, and hand the answered customers to the alias's shadow. `Score` is a batch of
//! one through it.

use std::sync::Arc;

use churn_engine::{Customer, CustomerBatch, Prediction, Schema};
use churn_explain::{Attribution, Background};
use churn_registry::ShadowConfig;

use crate::domain::analysis::explaining::Explaining;
use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::serving::batching::{MicroBatchSettings, MicroBatcher};
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::predict::{Outcomes, Predictor};
use crate::domain::serving::served::{ModelSelector, ServedModel};

/// One customer to score in real time.
#[derive(Debug)]
pub struct ScoreRequest {
    pub model: ModelSelector,
    pub customer: Customer,
    /// Reasons to attach; 0 for none.
    pub top_reasons: usize,
}

/// One customer's answer.
#[derive(Debug)]
pub struct Scored {
    pub served: Arc<ServedModel>,
    pub customer_id: String,
    pub prediction: Prediction,
    pub reasons: Vec<Attribution>,
}

/// Customers scored together by one version.
#[derive(Debug)]
pub struct BatchRequest {
    pub model: ModelSelector,
    pub customers: CustomerBatch,
    pub top_reasons: usize,
}

/// A batch's answers: one outcome per row, in order, numbered from `first_row`.
#[derive(Debug)]
pub struct ScoredBatch {
    pub served: Arc<ServedModel>,
    pub first_row: u32,
    pub customer_ids: Vec<String>,
    pub outcomes: Outcomes,
    /// Each row's top reasons; empty for rejected rows or when none were asked for.
    pub reasons: Vec<Vec<Attribution>>,
}

/// Probabilities of customers decoded against the version's schema (KServe `ModelInfer`).
#[derive(Debug)]
pub struct Inferred {
    pub served: Arc<ServedModel>,
    pub probabilities: Vec<f64>,
}

#[derive(Debug)]
pub struct Scoring {
    catalog: Arc<Catalog>,
    explaining: Arc<Explaining>,
    shadows: Arc<Shadowing>,
    predictor: Predictor,
    /// Fuses concurrent single-customer calls; `None` when turned off.
    batcher: Option<MicroBatcher>,
    max_batch_rows: usize,
}

/// What a request needs to attach reasons: the background and how many.
#[derive(Debug, Clone)]
struct ReasonRequest {
    background: Arc<Background>,
    k: usize,
}

impl Scoring {
    pub fn new(
        catalog: Arc<Catalog>,
        explaining: Arc<Explaining>,
        shadows: Arc<Shadowing>,
        predictor: Predictor,
        micro_batching: Option<MicroBatchSettings>,
        max_batch_rows: usize,
    ) -> Scoring {
        Scoring {
            catalog,
            explaining,
            shadows,
            batcher: micro_batching.map(|settings| MicroBatcher::new(settings, predictor.clone())),
            predictor,
            max_batch_rows,
        }
    }

    /// The version a request names, now.
    pub async fn resolve(
        &self,
        selector: &ModelSelector,
    ) -> Result<Arc<ServedModel>, ServiceError> {
        self.catalog.resolve(selector).await
    }

    /// Scores one customer: a batch of one through the same path as `score_batch`; an
    /// invalid customer is an error naming every offending feature.
    pub async fn score(&self, request: ScoreRequest) -> Result<Scored, ServiceError> {
        let batch = self
            .score_batch(BatchRequest {
                model: request.model,
                customers: CustomerBatch::Rows(vec![request.customer]),
                top_reasons: request.top_reasons,
            })
            .await?;
        let ScoredBatch {
            served,
            customer_ids,
            outcomes,
            reasons,
            ..
        } = batch;
        let customer_id = customer_ids.into_iter().next().unwrap_or_default();
        let outcome = outcomes.into_iter().next();
        let prediction = match outcome {
            Some(Ok(prediction)) => prediction,
            Some(Err(error)) => {
                return Err(ServiceError::InvalidCustomer { customer_id, error });
            }
            None => {
                return Err(ServiceError::TaskFailed(
                    "a batch of one lost its row".into(),
                ));
            }
        };
        Ok(Scored {
            served,
            customer_id,
            prediction,
            reasons: reasons.into_iter().next().unwrap_or_default(),
        })
    }

    /// Scores a batch with one version; bad rows get their own error.
    pub async fn score_batch(&self, request: BatchRequest) -> Result<ScoredBatch, ServiceError> {
        let served = self.catalog.resolve(&request.model).await?;
        let shadow = self.shadows.shadow_for(&request.model, &served);
        self.score_rows(served, 0, request.customers, request.top_reasons, shadow)
            .await
    }

    /// Scores customers decoded against the version's schema, as KServe `ModelInfer`
    /// sends them; any invalid row fails the call, naming the row.
    pub async fn infer(
        &self,
        selector: &ModelSelector,
        decode: impl FnOnce(&Schema) -> Result<Vec<Customer>, ServiceError>,
    ) -> Result<Inferred, ServiceError> {
        let served = self.catalog.resolve(selector).await?;
        let customers = decode(served.model.schema())?;
        self.check_batch_size(customers.len())?;
        let (_, outcomes) = self
            .predict(&served, CustomerBatch::Rows(customers), false)
            .await?;
        let probabilities = outcomes
            .into_iter()
            .enumerate()
            .map(|(row, outcome)| {
                outcome
                    .map(|p| p.churn_probability)
                    .map_err(|error| ServiceError::InvalidRequest(format!("row {row}: {error}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Inferred {
            served,
            probabilities,
        })
    }

    /// Scores rows `first_row..` of a batch with `served`, adds each valid row's reasons
    /// when asked, and hands the batch to `shadow` when there is one: the one scoring
    /// path of `Score`, `ScoreBatch` and `ScoreStream`.
    pub(crate) async fn score_rows(
        &self,
        served: Arc<ServedModel>,
        first_row: u32,
        customers: CustomerBatch,
        top_reasons: usize,
        shadow: Option<ShadowConfig>,
    ) -> Result<ScoredBatch, ServiceError> {
        self.check_batch_size(customers.len())?;
        let reasons = self.reasons(&served, top_reasons).await?;
        let keep_features = reasons.is_some() || shadow.is_some();
        let (customers, outcomes) = self.predict(&served, customers, keep_features).await?;
        let mut top = vec![Vec::new(); customers.len()];
        if let Some(ReasonRequest { background, k }) = reasons {
            let valid: Vec<usize> = (0..customers.len())
                .filter(|&i| outcomes[i].is_ok())
                .collect();
            let explained = valid.iter().map(|&i| customers.customer(i)).collect();
            let found = self
                .explaining
                .top_reasons(&served, background, explained, k)
                .await?;
            for (row, reasons) in valid.into_iter().zip(found) {
                top[row] = reasons;
            }
        }
        let customer_ids = match shadow {
            Some(config) => {
                let ids = (0..customers.len())
                    .map(|row| customers.id(row).to_owned())
                    .collect();
                let scores = outcomes
                    .iter()
                    .map(|o| o.as_ref().ok().map(|p| (p.churn_probability, p.will_churn)))
                    .collect();
                self.shadows
                    .offer(config, served.version, customers, scores);
                ids
            }
            None => customers.into_ids(),
        };
        Ok(ScoredBatch {
            served,
            first_row,
            customer_ids,
            outcomes,
            reasons: top,
        })
    }

    /// Each row's outcome, the batch handed back: one customer goes through the
    /// micro-batcher when it is on, so that concurrent single-customer calls share an
    /// engine call. Unless `keep_features` (for reasons or a shadow), that customer is
    /// handed over rather than copied, and only its id comes back.
    async fn predict(
        &self,
        served: &Arc<ServedModel>,
        customers: CustomerBatch,
        keep_features: bool,
    ) -> Result<(CustomerBatch, Outcomes), ServiceError> {
        let Some(batcher) = self.batcher.as_ref().filter(|_| customers.len() == 1) else {
            return self.predictor.predict(Arc::clone(served), customers).await;
        };
        crate::observe::request_id::record_model(&served.name, served.version, 1);
        let (customer, kept) = match customers {
            CustomerBatch::Rows(mut rows) if !keep_features => {
                let customer = rows.pop().unwrap_or_default();
                let id_only = Customer {
                    id: customer.id.clone(),
                    features: Vec::new(),
                };
                (customer, CustomerBatch::Rows(vec![id_only]))
            }
            customers => (customers.customer(0), customers),
        };
        let outcome = batcher.score(Arc::clone(served), customer).await?;
        Ok((kept, vec![outcome]))
    }

    fn check_batch_size(&self, rows: usize) -> Result<(), ServiceError> {
        if rows > self.max_batch_rows {
            return Err(ServiceError::BatchTooLarge {
                rows,
                limit: self.max_batch_rows,
            });
        }
        Ok(())
    }

    /// The background when reasons are asked for; fails before anything is scored when
    /// the version cannot be explained.
    async fn reasons(
        &self,
        served: &Arc<ServedModel>,
        top_reasons: usize,
    ) -> Result<Option<ReasonRequest>, ServiceError> {
        if top_reasons == 0 {
            return Ok(None);
        }
        Ok(Some(ReasonRequest {
            background: self.explaining.background(served).await?,
            k: top_reasons,
        }))
    }
}

//! Scoring, one call per request: resolve the version through the catalog, check the
//! batch limit, fetch the explanation background when reasons are asked for (failing
//! before anything is scored when the version cannot be explained), score (single
//! customers through the micro-batcher when it is on), attach each valid row's top
//! reasons, and hand the answered customers to the alias's shadow.

use std::sync::Arc;

use churn_engine::{Customer, CustomerBatch, Prediction, Schema};
use churn_explain::{Attribution, Background};
use churn_registry::ShadowConfig;

use crate::domain::batching::{MicroBatchSettings, MicroBatcher};
use crate::domain::catalog::Catalog;
use crate::domain::error::ServiceError;
use crate::domain::explaining::Explaining;
use crate::domain::predict::{Outcomes, Predictor};
use crate::domain::served::{ModelSelector, ServedModel};
use crate::domain::shadows::Shadowing;

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

    /// Scores one customer; an invalid customer is an error naming every offending
    /// feature.
    pub async fn score(&self, request: ScoreRequest) -> Result<Scored, ServiceError> {
        let served = self.catalog.resolve(&request.model).await?;
        let reasons = self.reasons(&served, request.top_reasons).await?;
        let customer = request.customer;
        let explained = reasons.as_ref().map(|_| customer.clone());
        let shadow = self
            .shadows
            .shadow_for(&request.model, &served)
            .map(|config| (config, customer.clone()));
        let customer_id = customer.id.clone();
        let prediction = self
            .score_one(Arc::clone(&served), customer)
            .await?
            .map_err(|error| ServiceError::InvalidCustomer {
                customer_id: customer_id.clone(),
                error,
            })?;
        if let Some((config, customer)) = shadow {
            self.shadows.offer(
                config,
                served.version,
                CustomerBatch::Rows(vec![customer]),
                vec![Some((prediction.churn_probability, prediction.will_churn))],
            );
        }
        let reasons = match (reasons, explained) {
            (Some(ReasonRequest { background, k }), Some(customer)) => self
                .explaining
                .top_reasons(&served, background, vec![customer], k)
                .await?
                .pop()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Scored {
            served,
            customer_id,
            prediction,
            reasons,
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
        let mut customers = decode(served.model.schema())?;
        // One row is a single-customer call, which the micro-batcher may fuse with others.
        let outcomes = if customers.len() == 1 {
            vec![
                self.score_one(Arc::clone(&served), customers.remove(0))
                    .await?,
            ]
        } else {
            self.check_batch_size(customers.len())?;
            self.predictor
                .predict(Arc::clone(&served), CustomerBatch::Rows(customers))
                .await?
                .1
        };
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
    /// when asked, and hands the batch to `shadow` when there is one.
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
        let (customers, outcomes) = self
            .predictor
            .predict(Arc::clone(&served), customers)
            .await?;
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

    /// One customer's outcome, through the micro-batcher when it is on.
    async fn score_one(
        &self,
        served: Arc<ServedModel>,
        customer: Customer,
    ) -> Result<Result<Prediction, churn_engine::RowError>, ServiceError> {
        match &self.batcher {
            Some(batcher) => {
                crate::observe::request_id::record_model(&served.name, served.version, 1);
                batcher.score(served, customer).await
            }
            None => {
                let rows = CustomerBatch::Rows(vec![customer]);
                let (_, mut outcomes) = self.predictor.predict(served, rows).await?;
                Ok(outcomes.remove(0))
            }
        }
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

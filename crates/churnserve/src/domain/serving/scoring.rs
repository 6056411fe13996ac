//! Scoring, one path for every request: route it through the catalog (one version, or a
//! traffic split that deals the rows to their arms and merges the answers), check
//! the batch limit, fetch the explanation background when reasons are asked for (failing
//! before anything is scored when the version cannot be explained), score (a single
//! customer through the micro-batcher when it is on), attach each valid row's top
//! reasons, and hand the answered customers to the alias's shadow. `Score` is a batch of
//! one through it.

use std::sync::Arc;

use churn_engine::{Customer, CustomerBatch, FeatureProblem, Prediction, RowError, Schema};
use churn_explain::{Attribution, Background};
use churn_registry::ShadowConfig;

use crate::domain::analysis::explaining::Explaining;
use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::serving::batching::{MicroBatchSettings, MicroBatcher};
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::predict::{Outcomes, Predictor};
use crate::domain::serving::served::{ModelSelector, ServedModel};
use crate::domain::serving::splits::{Route, RouteTarget, ServedSplit};

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
    /// The version that scored the batch; through a split, its first arm.
    pub served: Arc<ServedModel>,
    /// Through a split: the version that answered each row (`None` for a row that had no
    /// customer id, so no arm).
    pub row_served: Option<Vec<Option<Arc<ServedModel>>>>,
    pub first_row: u32,
    pub customer_ids: Vec<String>,
    pub outcomes: Outcomes,
    /// Each row's top reasons; empty for rejected rows or when none were asked for.
    pub reasons: Vec<Vec<Attribution>>,
}

/// Probabilities of customers decoded against the version's schema (KServe `ModelInfer`).
#[derive(Debug)]
pub struct Inferred {
    /// The version that answered; through a split, its first arm.
    pub served: Arc<ServedModel>,
    /// Through a split: the version that answered each row.
    pub row_versions: Option<Vec<u32>>,
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

    /// What answers a request, now: a version, or a traffic split.
    pub async fn route(&self, selector: &ModelSelector) -> Result<Route, ServiceError> {
        self.catalog.route(selector).await
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
            row_served,
            customer_ids,
            outcomes,
            reasons,
            ..
        } = batch;
        // Through a split, the customer's arm answered.
        let served = row_served
            .and_then(|row_served| row_served.into_iter().next().flatten())
            .unwrap_or(served);
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

    /// Scores a batch with one version, or each row with its arm of a split; bad rows get
    /// their own error.
    pub async fn score_batch(&self, request: BatchRequest) -> Result<ScoredBatch, ServiceError> {
        let route = self.catalog.route(&request.model).await?;
        self.score_routed(
            &route,
            Some(&request.model),
            0,
            request.customers,
            request.top_reasons,
        )
        .await
    }

    /// Scores rows `first_row..` by `route`; `selector`, when given, is what the rows'
    /// alias shadow is looked up by (streams are not shadowed).
    pub(crate) async fn score_routed(
        &self,
        route: &Route,
        selector: Option<&ModelSelector>,
        first_row: u32,
        customers: CustomerBatch,
        top_reasons: usize,
    ) -> Result<ScoredBatch, ServiceError> {
        match &route.target {
            RouteTarget::Version(served) => {
                let shadow =
                    selector.and_then(|selector| self.shadows.shadow_for(selector, served));
                self.score_rows(
                    Arc::clone(served),
                    &route.alias,
                    first_row,
                    customers,
                    top_reasons,
                    shadow,
                )
                .await
            }
            RouteTarget::Split(split) => {
                self.score_split(
                    split,
                    &route.alias,
                    selector,
                    first_row,
                    customers,
                    top_reasons,
                )
                .await
            }
        }
    }

    /// Deals the rows to their arms, scores each arm's rows with its version (a row
    /// without a customer id has no arm and gets an error naming `customer_id`), and puts
    /// the answers back in row order, each with the version that gave it.
    async fn score_split(
        &self,
        split: &ServedSplit,
        alias: &Arc<str>,
        selector: Option<&ModelSelector>,
        first_row: u32,
        customers: CustomerBatch,
        top_reasons: usize,
    ) -> Result<ScoredBatch, ServiceError> {
        self.check_batch_size(customers.len())?;
        // One customer with an id, as every `Score` sends: straight to their arm, without
        // dealing and merging.
        if customers.len() == 1 && !customers.id(0).is_empty() {
            let served = &split.arms[split.arm_of(customers.id(0))];
            self.predictor.count_split_rows(served, alias, 1);
            let shadow = selector.and_then(|selector| self.shadows.shadow_for(selector, served));
            let mut scored = self
                .score_rows(
                    Arc::clone(served),
                    alias,
                    first_row,
                    customers,
                    top_reasons,
                    shadow,
                )
                .await?;
            scored.row_served = Some(vec![Some(Arc::clone(served))]);
            return Ok(scored);
        }
        let arm_of_row: Vec<Option<usize>> = (0..customers.len())
            .map(|row| {
                let id = customers.id(row);
                (!id.is_empty()).then(|| split.arm_of(id))
            })
            .collect();
        let parts = customers.partition(&arm_of_row, split.arms.len());
        // The arms' parts are scored side by side: each large part runs on the blocking
        // pool, so two arms use two cores.
        let scoring = split
            .arms
            .iter()
            .zip(parts)
            .map(|(served, part)| async move {
                if part.is_empty() {
                    return Ok(None);
                }
                self.predictor.count_split_rows(served, alias, part.len());
                let shadow =
                    selector.and_then(|selector| self.shadows.shadow_for(selector, served));
                let scored = self
                    .score_rows(
                        Arc::clone(served),
                        alias,
                        first_row,
                        part,
                        top_reasons,
                        shadow,
                    )
                    .await?;
                Ok::<_, ServiceError>(Some(scored.into_rows()))
            });
        let mut scored = futures_util::future::try_join_all(scoring).await?;
        let rows = arm_of_row.len();
        let mut row_served = Vec::with_capacity(rows);
        let mut merged = ScoredBatch {
            served: Arc::clone(split.baseline()),
            row_served: None,
            first_row,
            customer_ids: Vec::with_capacity(rows),
            outcomes: Vec::with_capacity(rows),
            reasons: Vec::with_capacity(rows),
        };
        for arm in arm_of_row {
            let answered = arm.and_then(|arm| Some((arm, scored[arm].as_mut()?.next()?)));
            let (served, customer_id, outcome, reasons) = match answered {
                Some((arm, (customer_id, outcome, reasons))) => (
                    Some(Arc::clone(&split.arms[arm])),
                    customer_id,
                    outcome,
                    reasons,
                ),
                None => (None, String::new(), Err(no_customer_id()), Vec::new()),
            };
            row_served.push(served);
            merged.customer_ids.push(customer_id);
            merged.outcomes.push(outcome);
            merged.reasons.push(reasons);
        }
        merged.row_served = Some(row_served);
        Ok(merged)
    }

    /// Scores customers decoded against the version's schema (a split's first arm's), as
    /// KServe `ModelInfer` sends them; any invalid row fails the call, naming the row.
    /// Through a split every row needs a customer id.
    pub async fn infer(
        &self,
        selector: &ModelSelector,
        decode: impl FnOnce(&Schema) -> Result<Vec<Customer>, ServiceError>,
    ) -> Result<Inferred, ServiceError> {
        let route = self.catalog.route(selector).await?;
        let customers = decode(route.baseline().model.schema())?;
        self.check_batch_size(customers.len())?;
        if let RouteTarget::Split(_) = &route.target
            && let Some(row) = customers.iter().position(|c| c.id.is_empty())
        {
            return Err(ServiceError::InvalidRequest(format!(
                "input `customer_id`: row {row} has none; alias {:?} is split between versions and each customer is answered by their arm, so every row needs a customer id",
                &*route.alias
            )));
        }
        let scored = self
            .score_routed(&route, None, 0, CustomerBatch::Rows(customers), 0)
            .await?;
        let probabilities = scored
            .outcomes
            .into_iter()
            .enumerate()
            .map(|(row, outcome)| {
                outcome
                    .map(|p| p.churn_probability)
                    .map_err(|error| ServiceError::InvalidRequest(format!("row {row}: {error}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Inferred {
            served: scored.served,
            row_versions: scored.row_served.map(|row_served| {
                row_served
                    .iter()
                    .map(|served| served.as_ref().map_or(0, |served| served.version))
                    .collect()
            }),
            probabilities,
        })
    }

    /// Scores rows `first_row..` of a batch with `served`, adds each valid row's reasons
    /// when asked, and hands the batch to `shadow` when there is one: the one scoring
    /// path of `Score`, `ScoreBatch` and `ScoreStream`.
    async fn score_rows(
        &self,
        served: Arc<ServedModel>,
        alias: &Arc<str>,
        first_row: u32,
        customers: CustomerBatch,
        top_reasons: usize,
        shadow: Option<ShadowConfig>,
    ) -> Result<ScoredBatch, ServiceError> {
        self.check_batch_size(customers.len())?;
        let reasons = self.reasons(&served, top_reasons).await?;
        let keep_features = reasons.is_some() || shadow.is_some();
        let (customers, outcomes) = self
            .predict(&served, alias, customers, keep_features)
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
            row_served: None,
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
        alias: &Arc<str>,
        customers: CustomerBatch,
        keep_features: bool,
    ) -> Result<(CustomerBatch, Outcomes), ServiceError> {
        let Some(batcher) = self.batcher.as_ref().filter(|_| customers.len() == 1) else {
            return self
                .predictor
                .predict(Arc::clone(served), alias, customers)
                .await;
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
        let outcome = batcher.score(Arc::clone(served), alias, customer).await?;
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

impl ScoredBatch {
    /// Each row's customer id, outcome and reasons, in order.
    fn into_rows(
        self,
    ) -> impl Iterator<Item = (String, Result<Prediction, RowError>, Vec<Attribution>)> {
        self.customer_ids
            .into_iter()
            .zip(self.outcomes)
            .zip(self.reasons)
            .map(|((id, outcome), reasons)| (id, outcome, reasons))
    }
}

/// The error of a row sent through a split without a customer id.
fn no_customer_id() -> RowError {
    RowError {
        problems: vec![FeatureProblem {
            feature: "customer_id".to_owned(),
            message: "expected a customer id: the alias is split between versions, and each customer is answered by their arm".to_owned(),
        }],
    }
}

//! Experiments: what each arm of a traffic split did for the customers it answered. A
//! customer belongs to the arm of their first prediction through the split, is labelled
//! as realized performance labels (their first outcome at or after that prediction, within
//! the horizon), and every later arm is compared with the first.

use std::sync::Arc;

use churn_metrics::{Metrics, ProfitParameters, Proportion, RateComparison};
use churn_registry::{
    PredictionSource, PredictionWindow, Registry, TrafficSplit, VersionRef, now_millis,
};

use crate::domain::error::ServiceError;
use crate::domain::monitoring::performance::{DAY_MILLIS, DEFAULT_HORIZON_DAYS, fold_all, utc};
use crate::domain::serving::served::alias_or_production;

/// Which experiment, over which customers.
#[derive(Debug, Clone)]
pub struct ExperimentRequest {
    pub name: String,
    /// Empty: `production`.
    pub alias: String,
    /// `None`: from the split's start; `until` `None`: until now (or its end).
    pub since_millis: Option<i64>,
    pub until_millis: Option<i64>,
    /// 0: the default horizon.
    pub horizon_days: u32,
}

/// One arm's customers and how they turned out.
#[derive(Debug, Clone)]
pub struct ArmOutcome {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub weight: u32,
    pub customers: u64,
    pub rate: Proportion,
    /// The churn rate's 95% Wilson interval.
    pub rate_interval: (f64, f64),
    /// `None` without labels of both classes.
    pub realized: Option<Metrics>,
    /// DeLong's variance of `realized.roc_auc`; 0 without it.
    pub roc_auc_variance: f64,
}

/// One arm against the first.
#[derive(Debug, Clone)]
pub struct ArmContrast {
    pub baseline_version: u32,
    pub version: u32,
    pub rates: RateComparison,
    /// Labelled customers needed, both arms together; 0 when it cannot be said.
    pub labelled_needed: u64,
    /// The ROC AUC difference, its p-value and its 95% interval; `None` unless both arms
    /// have realized metrics.
    pub roc_auc: Option<(f64, f64, f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct ExperimentReport {
    pub split: TrafficSplit,
    pub arms: Vec<ArmOutcome>,
    pub contrasts: Vec<ArmContrast>,
}

/// Each arm's first predictions through the split: how many, and the labelled ones'
/// probabilities and labels.
#[derive(Debug, Default)]
struct ArmRows {
    customers: u64,
    labelled: Vec<(f64, bool)>,
}

#[derive(Debug)]
pub struct Experiments {
    registry: Arc<Registry>,
}

impl Experiments {
    pub fn new(registry: Arc<Registry>) -> Experiments {
        Experiments { registry }
    }

    /// The latest split of each alias of a model, running or ended.
    pub async fn list(&self, name: &str) -> Result<Vec<TrafficSplit>, ServiceError> {
        Ok(self.registry.experiments(name).await?)
    }

    /// The report of the alias's latest split, running or ended.
    pub async fn report(
        &self,
        request: ExperimentRequest,
    ) -> Result<ExperimentReport, ServiceError> {
        let alias = alias_or_production(&request.alias);
        let split = self
            .registry
            .latest_traffic_split(&request.name, alias)
            .await?;
        let since = request
            .since_millis
            .unwrap_or(split.started_at_millis)
            .max(split.started_at_millis);
        let mut until = request.until_millis.unwrap_or_else(|| now_millis() + 1);
        if let Some(ended) = split.ended_at_millis {
            until = until.min(ended);
        }
        if let (Some(since), Some(until)) = (request.since_millis, request.until_millis)
            && until < since
        {
            return Err(ServiceError::InvalidRequest(format!(
                "until: {} is before since {}; expected until at or after since",
                utc(until),
                utc(since)
            )));
        }
        let horizon_days = match request.horizon_days {
            0 => DEFAULT_HORIZON_DAYS,
            days => days,
        };
        // A running split's whole report comes from the sums; anything narrower, an
        // ended split and other horizons from the log.
        let whole = split.ended_at_millis.is_none()
            && request
                .since_millis
                .is_none_or(|s| s <= split.started_at_millis)
            && request.until_millis.is_none()
            && horizon_days == DEFAULT_HORIZON_DAYS;
        let summed = if whole {
            self.summed_arms(&split).await?
        } else {
            None
        };
        let arms = match summed {
            Some(arms) => arms,
            None => {
                let window = PredictionWindow {
                    name: split.name.clone(),
                    source: PredictionSource::Alias(split.alias.clone()),
                    since_millis: since,
                    until_millis: until.max(since),
                    horizon_millis: i64::from(horizon_days) * DAY_MILLIS,
                };
                self.joined_arms(&split, &window).await?
            }
        };
        let mut versions = Vec::with_capacity(split.arms.len());
        for arm in &split.arms {
            versions.push(
                self.registry
                    .version(&split.name, &VersionRef::Number(arm.version))
                    .await?,
            );
        }
        tokio::task::spawn_blocking(move || {
            let mut outcomes = Vec::with_capacity(arms.len());
            for ((rows, arm), record) in arms.into_iter().zip(&split.arms).zip(versions) {
                outcomes.push(arm_outcome(rows, arm.weight, record)?);
            }
            let contrasts = outcomes
                .iter()
                .skip(1)
                .map(|arm| contrast(&outcomes[0], arm))
                .collect();
            Ok(ExperimentReport {
                split,
                arms: outcomes,
                contrasts,
            })
        })
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))?
    }

    /// Each arm's rows from the sums, when the retention has left the split whole.
    async fn summed_arms(
        &self,
        split: &TrafficSplit,
    ) -> Result<Option<Vec<ArmRows>>, ServiceError> {
        fold_all(&self.registry).await?;
        let (kept_from, counts) = self
            .registry
            .experiment_sums(&split.name, &split.alias, split.started_at_millis)
            .await?;
        if kept_from > split.started_at_millis {
            return Ok(None);
        }
        let mut arms: Vec<ArmRows> = split.arms.iter().map(|_| ArmRows::default()).collect();
        for count in counts {
            let Some(arm) = split
                .arms
                .iter()
                .position(|arm| arm.version == count.version)
            else {
                continue;
            };
            let rows = &mut arms[arm];
            rows.customers += count.customers;
            if let Some(churned) = count.churned {
                rows.labelled.extend(std::iter::repeat_n(
                    (count.probability, churned),
                    count.customers as usize,
                ));
            }
        }
        Ok(Some(arms))
    }

    /// Each arm's rows, joined from the log.
    async fn joined_arms(
        &self,
        split: &TrafficSplit,
        window: &PredictionWindow,
    ) -> Result<Vec<ArmRows>, ServiceError> {
        let mut arms: Vec<ArmRows> = split.arms.iter().map(|_| ArmRows::default()).collect();
        // By customer, then time: a customer's first prediction by an arm's version is the
        // one that counts (one logged by another version, in flight as the split started,
        // does not).
        let mut counted: Option<String> = None;
        self.registry
            .scan_labelled_predictions(window, |prediction| {
                if counted.as_deref() == Some(prediction.customer_id.as_str()) {
                    return;
                }
                let Some(arm) = split
                    .arms
                    .iter()
                    .position(|arm| arm.version == prediction.version)
                else {
                    return;
                };
                let rows = &mut arms[arm];
                rows.customers += 1;
                if let Some(churned) = prediction.churned {
                    rows.labelled.push((prediction.probability, churned));
                }
                counted = Some(prediction.customer_id);
            })
            .await?;
        Ok(arms)
    }
}

fn arm_outcome(
    mut rows: ArmRows,
    weight: u32,
    record: churn_registry::VersionRecord,
) -> Result<ArmOutcome, ServiceError> {
    // One order whichever way the rows were read, so that the sums and the join give the
    // same numbers to the last bit.
    rows.labelled
        .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (probabilities, labels): (Vec<f64>, Vec<bool>) = rows.labelled.into_iter().unzip();
    let churned = labels.iter().filter(|&&c| c).count() as u64;
    let rate = Proportion {
        churned,
        labelled: labels.len() as u64,
    };
    let both_classes = churned > 0 && churned < rate.labelled;
    let (realized, roc_auc_variance) = if both_classes {
        let metrics = churn_metrics::evaluate(
            &probabilities,
            &labels,
            record.metadata.threshold,
            Some(ProfitParameters::default()),
        )?;
        let (_, variance) = churn_metrics::roc_auc_variance(&probabilities, &labels)?;
        (Some(metrics), variance)
    } else {
        (None, 0.0)
    };
    Ok(ArmOutcome {
        name: record.name,
        version: record.version,
        sha256: record.sha256,
        weight,
        customers: rows.customers,
        rate,
        rate_interval: rate.wilson_interval(),
        realized,
        roc_auc_variance,
    })
}

fn contrast(baseline: &ArmOutcome, arm: &ArmOutcome) -> ArmContrast {
    let rates = churn_metrics::compare_rates(baseline.rate, arm.rate);
    let labelled_needed = rates.baseline_needed.map_or(0, |needed| {
        let ratio = arm.rate.labelled as f64 / baseline.rate.labelled as f64;
        (needed.ceil() + (needed * ratio).ceil()) as u64
    });
    let roc_auc = match (&baseline.realized, &arm.realized) {
        (Some(b), Some(a)) => Some(churn_metrics::compare_independent_aucs(
            (b.roc_auc, baseline.roc_auc_variance),
            (a.roc_auc, arm.roc_auc_variance),
        )),
        _ => None,
    };
    ArmContrast {
        baseline_version: baseline.version,
        version: arm.version,
        rates,
        labelled_needed,
        roc_auc,
    }
}

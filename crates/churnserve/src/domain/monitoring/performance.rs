//! Did the model work: outcomes recorded as they become known, joined to the prediction
//! log, and each cohort's realized metrics (as `Evaluate` computes them) beside the
//! estimate the served probabilities make without labels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate};
use churn_metrics::{EstimatedMetrics, Metrics, ProfitParameters};
use churn_registry::{
    LabelledPrediction, PredictionSource, PredictionWindow, Registry, now_millis,
};

use crate::domain::OutcomeRecord;
use crate::domain::error::ServiceError;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel};
use crate::observe::metrics::Metrics as ServerMetrics;

pub const DAY_MILLIS: i64 = 86_400_000;
/// How long after a prediction an outcome labels it, unless a request says otherwise.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;

/// Calendar periods of cohorts, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CohortPeriod {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl CohortPeriod {
    /// The first instant of the period holding `millis`.
    pub fn start(self, millis: i64) -> i64 {
        let day = millis.div_euclid(DAY_MILLIS);
        match self {
            CohortPeriod::Day => day * DAY_MILLIS,
            // 1970-01-01 was a Thursday, three days after a Monday.
            CohortPeriod::Week => (day - (day + 3).rem_euclid(7)) * DAY_MILLIS,
            CohortPeriod::Month => {
                let date = DateTime::from_timestamp_millis(millis)
                    .map(|t| t.date_naive())
                    .unwrap_or_default();
                NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
                    .and_then(|first| first.and_hms_opt(0, 0, 0))
                    .map_or(day * DAY_MILLIS, |first| first.and_utc().timestamp_millis())
            }
        }
    }
}

/// Which predictions of which version, cut how.
#[derive(Debug, Clone)]
pub struct PerformanceRequest {
    pub selector: ModelSelector,
    pub since_millis: i64,
    pub until_millis: i64,
    pub period: CohortPeriod,
    pub horizon_days: u32,
}

/// One cohort's numbers.
#[derive(Debug, Clone)]
pub struct CohortPerformance {
    pub start_millis: i64,
    pub scored: u64,
    pub labelled: u64,
    pub churned: u64,
    /// `None` without labels of both classes.
    pub realized: Option<Metrics>,
    pub estimated: EstimatedMetrics,
}

/// Each customer's last prediction in a cohort, and its label.
#[derive(Debug, Default)]
struct CohortRows {
    probabilities: Vec<f64>,
    will_churn: Vec<bool>,
    labelled_probabilities: Vec<f64>,
    labels: Vec<bool>,
}

impl CohortRows {
    fn add(&mut self, prediction: &LabelledPrediction) {
        self.probabilities.push(prediction.probability);
        self.will_churn.push(prediction.will_churn);
        if let Some(churned) = prediction.churned {
            self.labelled_probabilities.push(prediction.probability);
            self.labels.push(churned);
        }
    }

    fn performance(
        &self,
        start_millis: i64,
        threshold: f64,
    ) -> Result<CohortPerformance, ServiceError> {
        let churned = self.labels.iter().filter(|&&c| c).count();
        let both_classes = churned > 0 && churned < self.labels.len();
        let realized = if both_classes {
            Some(churn_metrics::evaluate(
                &self.labelled_probabilities,
                &self.labels,
                threshold,
                Some(ProfitParameters::default()),
            )?)
        } else {
            None
        };
        Ok(CohortPerformance {
            start_millis,
            scored: self.probabilities.len() as u64,
            labelled: self.labels.len() as u64,
            churned: churned as u64,
            realized,
            estimated: churn_metrics::estimate(&self.probabilities, &self.will_churn)?,
        })
    }
}

#[derive(Debug)]
pub struct Performance {
    catalog: Arc<Catalog>,
    registry: Arc<Registry>,
    max_outcomes: usize,
}

impl Performance {
    /// `max_outcomes`: the most outcomes one request may record.
    pub fn new(catalog: Arc<Catalog>, registry: Arc<Registry>, max_outcomes: usize) -> Performance {
        Performance {
            catalog,
            registry,
            max_outcomes,
        }
    }

    /// Records the outcomes (each once, however often sent); how many were sent, and how
    /// many label a logged prediction within the default horizon.
    pub async fn record_outcomes(
        &self,
        mut outcomes: Vec<OutcomeRecord>,
    ) -> Result<(u64, u64), ServiceError> {
        if outcomes.len() > self.max_outcomes {
            return Err(ServiceError::BatchTooLarge {
                rows: outcomes.len(),
                limit: self.max_outcomes,
            });
        }
        let sent = outcomes.len() as u64;
        outcomes.sort_by(|a, b| {
            (&a.customer_id, a.observed_at_millis, a.churned).cmp(&(
                &b.customer_id,
                b.observed_at_millis,
                b.churned,
            ))
        });
        outcomes.dedup();
        let matched = self
            .registry
            .record_outcomes(&outcomes, i64::from(DEFAULT_HORIZON_DAYS) * DAY_MILLIS)
            .await?;
        Ok((sent, matched))
    }

    /// The version's cohorts, oldest first.
    pub async fn realized(
        &self,
        request: PerformanceRequest,
    ) -> Result<(Arc<ServedModel>, Vec<CohortPerformance>), ServiceError> {
        if request.until_millis < request.since_millis {
            return Err(ServiceError::InvalidRequest(format!(
                "until: {} is before since {}; expected until at or after since",
                utc(request.until_millis),
                utc(request.since_millis)
            )));
        }
        let served = self.catalog.resolve(&request.selector).await?;
        let horizon_days = match request.horizon_days {
            0 => DEFAULT_HORIZON_DAYS,
            days => days,
        };
        let window = PredictionWindow {
            name: served.name.clone(),
            source: PredictionSource::Version(served.version),
            since_millis: request.since_millis,
            until_millis: request.until_millis,
            horizon_millis: i64::from(horizon_days) * DAY_MILLIS,
        };
        let mut cohorts: BTreeMap<i64, CohortRows> = BTreeMap::new();
        // The rows come by customer, then time: a customer's last prediction in each
        // cohort is known when the next customer starts.
        let mut customer: Option<String> = None;
        let mut last_in_cohort: BTreeMap<i64, LabelledPrediction> = BTreeMap::new();
        let mut flush = |last: &mut BTreeMap<i64, LabelledPrediction>| {
            for (start, prediction) in std::mem::take(last) {
                cohorts.entry(start).or_default().add(&prediction);
            }
        };
        self.registry
            .scan_labelled_predictions(&window, |prediction| {
                if customer.as_deref() != Some(prediction.customer_id.as_str()) {
                    flush(&mut last_in_cohort);
                    customer = Some(prediction.customer_id.clone());
                }
                last_in_cohort.insert(
                    request.period.start(prediction.scored_at_millis),
                    prediction,
                );
            })
            .await?;
        flush(&mut last_in_cohort);
        let threshold = served.model.threshold();
        let performance = tokio::task::spawn_blocking(move || {
            cohorts
                .iter()
                .map(|(&start, rows)| rows.performance(start, threshold))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))??;
        Ok((served, performance))
    }
}

/// How far back the retraining signal looks: the default horizon, so the cohorts it
/// reads can all have their labels.
const SIGNAL_WINDOW_DAYS: i64 = DEFAULT_HORIZON_DAYS as i64 + 7;

/// The retraining signal, every `interval` until the server stops: for each aliased
/// version, the latest weekly cohort's realized (when labelled) and estimated ROC AUC on
/// the metrics, and a warning when either is more than `margin` below the version's latest
/// stored evaluation.
pub async fn watch_performance(
    performance: Arc<Performance>,
    metrics: Arc<ServerMetrics>,
    interval: Duration,
    margin: f64,
) {
    let mut every = tokio::time::interval(interval);
    loop {
        every.tick().await;
        if let Err(error) = check_performance(&performance, &metrics, margin).await {
            tracing::warn!(%error, "the realized performance could not be checked");
        }
    }
}

async fn check_performance(
    performance: &Performance,
    metrics: &ServerMetrics,
    margin: f64,
) -> Result<(), ServiceError> {
    let now = now_millis();
    for model in performance.registry.list_models().await? {
        let evaluated = performance.registry.latest_roc_auc(&model.name).await?;
        let versions: std::collections::BTreeSet<u32> = model.aliases.values().copied().collect();
        for version in versions {
            let (_, cohorts) = performance
                .realized(PerformanceRequest {
                    selector: ModelSelector::by_number(model.name.clone(), version),
                    since_millis: now - SIGNAL_WINDOW_DAYS * DAY_MILLIS,
                    until_millis: now,
                    period: CohortPeriod::Week,
                    horizon_days: DEFAULT_HORIZON_DAYS,
                })
                .await?;
            let Some(latest) = cohorts.last() else {
                continue;
            };
            let realized = cohorts
                .iter()
                .rev()
                .find_map(|c| c.realized.as_ref().map(|m| m.roc_auc));
            metrics.set_cohort_roc_auc(&model.name, version, realized, latest.estimated.roc_auc);
            let Some(&baseline) = evaluated.get(&version) else {
                continue;
            };
            for (kind, auc) in [
                ("realized", realized),
                ("estimated", Some(latest.estimated.roc_auc)),
            ] {
                if let Some(auc) = auc.filter(|auc| *auc < baseline - margin) {
                    tracing::warn!(
                        model = %model.name,
                        version,
                        roc_auc = auc,
                        evaluated = baseline,
                        margin,
                        "the latest cohort's {kind} ROC AUC is more than the margin below the version's latest evaluation: time to retrain?"
                    );
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn utc(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis)
        .map_or_else(|| format!("{millis} ms"), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp_millis()
    }

    #[test]
    fn cohorts_start_at_utc_day_iso_week_and_month_edges() {
        for (at, period, start) in [
            (
                "2026-03-01T00:00:00Z",
                CohortPeriod::Day,
                "2026-03-01T00:00:00Z",
            ),
            (
                "2026-02-28T23:59:59.999Z",
                CohortPeriod::Day,
                "2026-02-28T00:00:00Z",
            ),
            (
                "2026-02-23T00:00:00Z",
                CohortPeriod::Week,
                "2026-02-23T00:00:00Z",
            ),
            (
                "2026-02-22T23:59:59.999Z",
                CohortPeriod::Week,
                "2026-02-16T00:00:00Z",
            ),
            (
                "2026-03-01T00:00:00Z",
                CohortPeriod::Month,
                "2026-03-01T00:00:00Z",
            ),
            (
                "2026-02-28T23:59:59.999Z",
                CohortPeriod::Month,
                "2026-02-01T00:00:00Z",
            ),
            (
                "1969-12-31T23:59:59.999Z",
                CohortPeriod::Week,
                "1969-12-29T00:00:00Z",
            ),
            (
                "2028-02-29T12:00:00Z",
                CohortPeriod::Month,
                "2028-02-01T00:00:00Z",
            ),
        ] {
            assert_eq!(period.start(millis(at)), millis(start), "{at} {period:?}");
        }
    }
}

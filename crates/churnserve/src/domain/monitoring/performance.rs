//! Did the model work: outcomes recorded as they become known, joined to the prediction
//! log, and each cohort's realized metrics (as `Evaluate` computes them) beside the
//! estimate the served probabilities make without labels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use churn_metrics::{EstimatedMetrics, Metrics, ProfitParameters};
pub use churn_registry::{CohortPeriod, DAY_MILLIS, DEFAULT_HORIZON_DAYS};
use churn_registry::{
    CohortSums, LabelledPrediction, PredictionSource, PredictionWindow, Registry, now_millis,
};

use crate::domain::OutcomeRecord;
use crate::domain::error::ServiceError;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel};
use crate::observe::metrics::Metrics as ServerMetrics;

/// Waiting predictions (and outcomes) one fold takes into the sums: a few hundred
/// milliseconds of the registry's write lock on SQLite.
const FOLD_BATCH: usize = 10_000;

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

/// Each customer's last prediction in a cohort (probability, decision and label), as the
/// join read them or as the sums count them; counts become rows only when their metrics
/// are computed, a cohort or two at a time.
#[derive(Debug)]
enum CohortRows {
    Joined(Vec<(f64, bool, Option<bool>)>),
    Summed(CohortSums),
}

impl Default for CohortRows {
    fn default() -> CohortRows {
        CohortRows::Joined(Vec::new())
    }
}

impl CohortRows {
    /// Adds a joined prediction (a cohort comes whole from the sums or wholly from the join).
    fn add(&mut self, prediction: &LabelledPrediction) {
        if let CohortRows::Joined(rows) = self {
            rows.push((
                prediction.probability,
                prediction.will_churn,
                prediction.churned,
            ));
        }
    }

    fn into_rows(self) -> Vec<(f64, bool, Option<bool>)> {
        match self {
            CohortRows::Joined(rows) => rows,
            CohortRows::Summed(sums) => sums
                .counts
                .iter()
                .flat_map(|count| {
                    std::iter::repeat_n(
                        (count.probability, count.will_churn, count.churned),
                        count.customers as usize,
                    )
                })
                .collect(),
        }
    }

    /// The metrics, over the rows in one order whichever way they were read, so that the
    /// sums and the join give the same numbers to the last bit.
    fn performance(
        self,
        start_millis: i64,
        threshold: f64,
    ) -> Result<CohortPerformance, ServiceError> {
        let mut rows = self.into_rows();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let probabilities: Vec<f64> = rows.iter().map(|row| row.0).collect();
        let will_churn: Vec<bool> = rows.iter().map(|row| row.1).collect();
        let (labelled_probabilities, labels): (Vec<f64>, Vec<bool>) = rows
            .iter()
            .filter_map(|&(probability, _, churned)| churned.map(|c| (probability, c)))
            .unzip();
        let churned = labels.iter().filter(|&&c| c).count();
        let both_classes = churned > 0 && churned < labels.len();
        let realized = if both_classes {
            Some(churn_metrics::evaluate(
                &labelled_probabilities,
                &labels,
                threshold,
                Some(ProfitParameters::default()),
            )?)
        } else {
            None
        };
        Ok(CohortPerformance {
            start_millis,
            scored: probabilities.len() as u64,
            labelled: labels.len() as u64,
            churned: churned as u64,
            realized,
            estimated: churn_metrics::estimate(&probabilities, &will_churn)?,
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
        let version = (served.name.as_str(), served.version);
        let cohorts = if horizon_days == DEFAULT_HORIZON_DAYS {
            self.fold().await?;
            summed(&self.registry, version, &request).await?
        } else {
            let mut cohorts = BTreeMap::new();
            join(
                &self.registry,
                version,
                &request,
                horizon_days,
                &mut cohorts,
            )
            .await?;
            cohorts
        };
        let threshold = served.model.threshold();
        let performance = tokio::task::spawn_blocking(move || cohort_metrics(cohorts, threshold))
            .await
            .map_err(|e| ServiceError::TaskFailed(e.to_string()))??;
        Ok((served, performance))
    }

    /// Folds every waiting prediction and outcome into the sums.
    pub async fn fold(&self) -> Result<(), ServiceError> {
        fold_all(&self.registry).await
    }
}

/// The cohorts of the default horizon: whole cohorts from the sums; from the log, the
/// cohorts the request cuts (predictions of the version on both sides of `since` or
/// `until`) and those the retention cut.
async fn summed(
    registry: &Registry,
    (name, version): (&str, u32),
    request: &PerformanceRequest,
) -> Result<BTreeMap<i64, CohortRows>, ServiceError> {
    let period = request.period;
    let (since, until) = (request.since_millis, request.until_millis);
    let sums = registry
        .performance_sums(name, version, period, period.start(since), until)
        .await?;
    let mut cohorts = BTreeMap::new();
    // The cohorts starting before the retention's cut-off, all from the log: they end by
    // `retained_from`, where the first cohort the retention left whole starts.
    let retained_from = match sums.kept_from_millis {
        i64::MIN => i64::MIN,
        kept_from => period.end(period.start(kept_from - 1)),
    };
    // The parts of the window the log answers: the retention's cohorts, then cut ones.
    let mut logged = Vec::new();
    if since < until.min(retained_from) {
        logged.push((since, until.min(retained_from)));
    }
    for cohort in sums.cohorts {
        let (start, end) = (cohort.start_millis, period.end(cohort.start_millis));
        if start < retained_from {
            continue;
        }
        let whole = (start >= since || cohort.first_scored_at_millis >= since)
            && (end <= until || cohort.last_scored_at_millis < until);
        if whole {
            cohorts.insert(start, CohortRows::Summed(cohort));
        } else {
            logged.push((since.max(start), until.min(end)));
        }
    }
    for (since_millis, until_millis) in logged {
        let part = PerformanceRequest {
            since_millis,
            until_millis,
            ..request.clone()
        };
        join(
            registry,
            (name, version),
            &part,
            DEFAULT_HORIZON_DAYS,
            &mut cohorts,
        )
        .await?;
    }
    Ok(cohorts)
}

/// Adds the cohorts of the request's window, joined from the log: each customer's last
/// prediction in each cohort, labelled by `horizon_days`.
async fn join(
    registry: &Registry,
    (name, version): (&str, u32),
    request: &PerformanceRequest,
    horizon_days: u32,
    cohorts: &mut BTreeMap<i64, CohortRows>,
) -> Result<(), ServiceError> {
    let window = PredictionWindow {
        name: name.to_owned(),
        source: PredictionSource::Version(version),
        since_millis: request.since_millis,
        until_millis: request.until_millis,
        horizon_millis: i64::from(horizon_days) * DAY_MILLIS,
    };
    // The rows come by customer, then time: a customer's last prediction in each
    // cohort is known when the next customer starts.
    let mut customer: Option<String> = None;
    let mut last_in_cohort: BTreeMap<i64, LabelledPrediction> = BTreeMap::new();
    let mut flush = |last: &mut BTreeMap<i64, LabelledPrediction>| {
        for (start, prediction) in std::mem::take(last) {
            cohorts.entry(start).or_default().add(&prediction);
        }
    };
    registry
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
    Ok(())
}

/// Folds every waiting prediction and outcome into the realized-performance and experiment
/// sums.
pub(crate) async fn fold_all(registry: &Registry) -> Result<(), ServiceError> {
    while registry.fold_performance(FOLD_BATCH).await? > 0 {}
    Ok(())
}

/// Each cohort's metrics, oldest first, the cohorts shared among the cores: a cohort of a
/// million customers takes a tenth of a second.
fn cohort_metrics(
    cohorts: BTreeMap<i64, CohortRows>,
    threshold: f64,
) -> Result<Vec<CohortPerformance>, ServiceError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cohorts: Vec<(i64, CohortRows)> = cohorts.into_iter().collect();
    let per_thread = cohorts.len().div_ceil(cores).max(1);
    let mut parts: Vec<Vec<(i64, CohortRows)>> = Vec::new();
    let mut rest = cohorts.into_iter().peekable();
    while rest.peek().is_some() {
        parts.push(rest.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.into_iter()
                        .map(|(start, rows)| rows.performance(start, threshold))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            let part = thread
                .join()
                .map_err(|_| ServiceError::TaskFailed("a cohort's metrics panicked".to_owned()))?;
            all.extend(part?);
        }
        Ok(all)
    })
}

/// How often each replica folds what was logged into the sums, so that a request finds
/// little left to fold.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the prediction log into the sums every `interval` until the server stops. A
/// backlog (after a bulk job) is folded in batches with a pause as long as each batch took,
/// so that folding never takes more than half a core from scoring; a request folds what is
/// left at full speed.
pub async fn fold_continually(performance: Arc<Performance>, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    loop {
        every.tick().await;
        loop {
            let started = tokio::time::Instant::now();
            match performance.registry.fold_performance(FOLD_BATCH).await {
                Ok(0) => break,
                Ok(_) => tokio::time::sleep(started.elapsed()).await,
                Err(error) => {
                    tracing::warn!(%error, "the prediction log could not be folded into the realized-performance sums; retrying");
                    break;
                }
            }
        }
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
                    // Whole weeks, so that every cohort comes from the sums.
                    since_millis: CohortPeriod::Week.start(now - SIGNAL_WINDOW_DAYS * DAY_MILLIS),
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
mod tests;

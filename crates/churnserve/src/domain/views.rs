//! What the console shows, each page gathered in one call: the registry's records, the
//! stored evaluations, importance and two versions' contrast (both computed once per
//! version and kept, since versions and datasets never change), drift and shadows.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use churn_explain::FeatureImportance;
use churn_registry::now_millis;

use crate::domain::analysis::evaluating::{Contrast, Evaluating, StoredEvaluation};
use crate::domain::analysis::explaining::{Explaining, ImportanceMethod};
use crate::domain::analysis::shadows::{ShadowStats, Shadowing};
use crate::domain::error::ServiceError;
use crate::domain::monitoring::drift::{DriftReport, FleetDrift};
use crate::domain::monitoring::experiments::{ExperimentReport, ExperimentRequest, Experiments};
use crate::domain::monitoring::performance::{
    CohortPerformance, CohortPeriod, DAY_MILLIS, DEFAULT_HORIZON_DAYS, Performance,
    PerformanceRequest,
};
use crate::domain::records::datasets::Datasets;
use crate::domain::records::versions::{AuditPage, Versions};
use crate::domain::serving::served::ModelSelector;
use crate::domain::{
    ModelSummary, ProfitParameters, RegistryError, ShadowConfig, TrafficSplit, VersionRecord,
};
use crate::sync::lock;

/// Audit entries a model page shows at once.
const AUDIT_PAGE_ENTRIES: u32 = 50;
/// How long a page waits for what it computes before it says it is being computed.
const PAGE_PATIENCE: Duration = Duration::from_secs(2);
/// How long a version page shows the same realized performance.
const PERFORMANCE_FRESHNESS_MILLIS: i64 = 10 * 60 * 1000;
/// How far back a version page's cohorts go.
const PERFORMANCE_WEEKS: i64 = 26;
/// Computed importances and contrasts kept; past it the memo starts again.
const MEMO_ENTRIES: usize = 256;

/// The models and where their aliases point.
#[derive(Debug)]
pub struct ModelsView {
    pub models: Vec<ModelSummary>,
}

/// One model: its versions, newest first, with their latest evaluation's ROC AUC, and
/// its audit history.
#[derive(Debug)]
pub struct ModelView {
    pub summary: ModelSummary,
    pub versions: Vec<VersionRecord>,
    pub latest_roc_auc: BTreeMap<u32, f64>,
    pub audit: AuditPage,
    /// The latest traffic split of each alias, running or ended.
    pub experiments: Vec<TrafficSplit>,
}

/// One version: its record, its evaluations newest first, and its feature importance by
/// each method that applies.
#[derive(Debug)]
pub struct VersionView {
    pub record: VersionRecord,
    pub evaluations: Vec<StoredEvaluation>,
    /// Mean |SHAP| can take seconds: it is computed in the background.
    pub importance: Vec<(ImportanceMethod, Computed<Arc<Vec<FeatureImportance>>>)>,
    /// Weekly cohorts of its logged predictions over the last half year, oldest first.
    pub performance: Computed<Arc<Vec<CohortPerformance>>>,
}

/// Something a page computes once and keeps.
#[derive(Debug, Clone)]
pub enum Computed<T> {
    Ready(T),
    Failed(String),
    /// Still going on in the background.
    Computing,
}

/// Two versions of a model side by side.
#[derive(Debug)]
pub struct CompareView {
    pub champion: VersionRecord,
    pub challenger: VersionRecord,
    /// Datasets both versions were evaluated on, most recent first.
    pub datasets: Vec<String>,
    /// The dataset compared on, when there is one.
    pub dataset: Option<String>,
    /// Each version's latest evaluation on `dataset` (or at all, without one).
    pub champion_evaluation: Option<StoredEvaluation>,
    pub challenger_evaluation: Option<StoredEvaluation>,
    /// `None` without a dataset.
    pub contrast: Option<Computed<Arc<Contrast>>>,
    /// The campaign the contrast prices.
    pub campaign: ProfitParameters,
}

/// What serving has seen of one model since start.
#[derive(Debug)]
pub struct MonitoringView {
    pub summary: ModelSummary,
    /// Each version the fleet scored in the recent window, with its drift over it.
    pub drift: Vec<DriftReport>,
    /// The recent window, in minutes.
    pub drift_window_minutes: u64,
    pub shadows: Vec<(ShadowConfig, ShadowStats)>,
}

/// Which two versions a compare page shows, and on what.
#[derive(Debug, Default, Clone)]
pub struct CompareRequest {
    pub champion: Option<u32>,
    pub challenger: Option<u32>,
    pub dataset: Option<String>,
    /// The retention campaign the profit curves price.
    pub campaign: ProfitParameters,
}

/// Model, version, reference dataset, and whether it is mean |SHAP| (else native).
type ImportanceKey = (String, u32, String, bool);
/// Model, champion, challenger, dataset, and the campaign's parameters as bits.
type ContrastKey = (String, u32, u32, String, [u64; 5]);
/// Model, version, and the period of `PERFORMANCE_FRESHNESS` it was computed in: the log
/// grows, so a page recomputes it that often.
type PerformanceKey = (String, u32, i64);

/// The domain's services the pages read.
#[derive(Debug)]
pub struct ViewSources {
    pub versions: Versions,
    pub datasets: Datasets,
    pub evaluating: Arc<Evaluating>,
    pub explaining: Arc<Explaining>,
    pub shadowing: Arc<Shadowing>,
    pub drift: Arc<FleetDrift>,
    pub performance: Arc<Performance>,
    pub experiments: Arc<Experiments>,
}

#[derive(Debug)]
pub struct Views {
    sources: ViewSources,
    importance: Arc<Memo<ImportanceKey, Arc<Vec<FeatureImportance>>>>,
    contrasts: Arc<Memo<ContrastKey, Arc<Contrast>>>,
    cohorts: Arc<Memo<PerformanceKey, Arc<Vec<CohortPerformance>>>>,
}

impl Views {
    pub fn new(sources: ViewSources) -> Views {
        Views {
            sources,
            importance: Arc::default(),
            contrasts: Arc::default(),
            cohorts: Arc::default(),
        }
    }

    pub async fn models(&self) -> Result<ModelsView, ServiceError> {
        Ok(ModelsView {
            models: self.sources.versions.list_models().await?,
        })
    }

    /// `before_audit`: show the audit entries older than this id.
    pub async fn model(
        &self,
        name: &str,
        before_audit: Option<i64>,
    ) -> Result<ModelView, ServiceError> {
        let summary = self.summary(name).await?;
        let mut versions = self.sources.versions.list_versions(name, true).await?;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        let latest_roc_auc = self.sources.versions.latest_roc_auc(name).await?;
        let audit = self
            .sources
            .versions
            .audit_page(name, before_audit, AUDIT_PAGE_ENTRIES)
            .await?;
        let experiments = self.sources.experiments.list(&summary.name).await?;
        Ok(ModelView {
            summary,
            versions,
            latest_roc_auc,
            audit,
            experiments,
        })
    }

    /// The experiment of an alias's latest split, over everything it served.
    pub async fn experiment(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ExperimentReport, ServiceError> {
        self.sources
            .experiments
            .report(ExperimentRequest {
                name: name.to_owned(),
                alias: alias.to_owned(),
                since_millis: None,
                until_millis: None,
                horizon_days: 0,
            })
            .await
    }

    pub async fn version(&self, name: &str, version: u32) -> Result<VersionView, ServiceError> {
        let selector = ModelSelector::by_number(name, version);
        let record = self.sources.versions.version_record(&selector).await?;
        let evaluations = self
            .sources
            .evaluating
            .evaluations(name, Some(version))
            .await?;
        let mut methods = vec![ImportanceMethod::ModelNative];
        if !record.metadata.reference_dataset.is_empty() {
            methods.push(ImportanceMethod::MeanAbsShap);
        }
        let mut importance = Vec::new();
        for method in methods {
            let key = (
                name.to_owned(),
                version,
                record.metadata.reference_dataset.clone(),
                method == ImportanceMethod::MeanAbsShap,
            );
            let (explaining, selector) = (Arc::clone(&self.sources.explaining), selector.clone());
            let compute = async move {
                let (_, _, features) = explaining.importance(&selector, Some(method), None).await?;
                Ok(Arc::new(features))
            };
            let patience = match method {
                ImportanceMethod::MeanAbsShap => Duration::ZERO,
                _ => PAGE_PATIENCE,
            };
            let outcome = self.importance.get_within(key, patience, compute).await;
            importance.push((method, outcome));
        }
        let now = now_millis();
        let key = (name.to_owned(), version, now / PERFORMANCE_FRESHNESS_MILLIS);
        let (performance, request) = (
            Arc::clone(&self.sources.performance),
            PerformanceRequest {
                selector,
                // Whole weeks, so that every cohort comes from the sums.
                since_millis: CohortPeriod::Week.start(now - PERFORMANCE_WEEKS * 7 * DAY_MILLIS),
                until_millis: now,
                period: CohortPeriod::Week,
                horizon_days: DEFAULT_HORIZON_DAYS,
            },
        );
        let compute = async move {
            let (_, cohorts) = performance.realized(request).await?;
            Ok(Arc::new(cohorts))
        };
        let performance = self.cohorts.get_within(key, PAGE_PATIENCE, compute).await;
        Ok(VersionView {
            record,
            evaluations,
            importance,
            performance,
        })
    }

    /// The champion defaults to the `production` version, the challenger to the
    /// `challenger` version or else the latest other one; the dataset to the one both
    /// were last evaluated on.
    pub async fn compare(
        &self,
        name: &str,
        request: CompareRequest,
    ) -> Result<CompareView, ServiceError> {
        let summary = self.summary(name).await?;
        let champion_number = request
            .champion
            .or_else(|| summary.aliases.get("production").copied())
            .unwrap_or(summary.latest_version);
        let challenger_number = request
            .challenger
            .or_else(|| {
                summary
                    .aliases
                    .get("challenger")
                    .copied()
                    .filter(|&v| v != champion_number)
            })
            .unwrap_or(if summary.latest_version == champion_number {
                champion_number.saturating_sub(1).max(1)
            } else {
                summary.latest_version
            });
        let champion = self
            .sources
            .versions
            .version_record(&ModelSelector::by_number(name, champion_number))
            .await?;
        let challenger = self
            .sources
            .versions
            .version_record(&ModelSelector::by_number(name, challenger_number))
            .await?;
        let champion_evaluations = self
            .sources
            .evaluating
            .evaluations(name, Some(champion.version))
            .await?;
        let challenger_evaluations = self
            .sources
            .evaluating
            .evaluations(name, Some(challenger.version))
            .await?;
        let mut datasets: Vec<String> = Vec::new();
        for evaluation in &champion_evaluations {
            let dataset = &evaluation.record.dataset;
            let shared = challenger_evaluations
                .iter()
                .any(|e| &e.record.dataset == dataset);
            if !dataset.is_empty() && shared && !datasets.contains(dataset) {
                datasets.push(dataset.clone());
            }
        }
        let dataset = match request.dataset {
            Some(dataset) if dataset.is_empty() => None,
            Some(dataset) => Some(self.sources.datasets.dataset(&dataset).await?.name),
            None => datasets.first().cloned(),
        };
        let latest_on = |evaluations: Vec<StoredEvaluation>| {
            evaluations.into_iter().find(|e| {
                dataset
                    .as_ref()
                    .is_none_or(|dataset| &e.record.dataset == dataset)
            })
        };
        let contrast = match &dataset {
            None => None,
            Some(dataset) => {
                let campaign = request.campaign;
                let key = (
                    name.to_owned(),
                    champion.version,
                    challenger.version,
                    dataset.clone(),
                    [
                        campaign.clv,
                        campaign.incentive_cost,
                        campaign.contact_cost,
                        campaign.acceptance_alpha,
                        campaign.acceptance_beta,
                    ]
                    .map(f64::to_bits),
                );
                let evaluating = Arc::clone(&self.sources.evaluating);
                let champion = ModelSelector::by_number(name, champion.version);
                let challenger = ModelSelector::by_number(name, challenger.version);
                let dataset = dataset.clone();
                let compute = async move {
                    let contrast = evaluating
                        .contrast(&champion, &challenger, &dataset, campaign)
                        .await?;
                    Ok(Arc::new(contrast))
                };
                Some(self.contrasts.get_within(key, PAGE_PATIENCE, compute).await)
            }
        };
        Ok(CompareView {
            champion_evaluation: latest_on(champion_evaluations),
            challenger_evaluation: latest_on(challenger_evaluations),
            champion,
            challenger,
            datasets,
            dataset,
            contrast,
            campaign: request.campaign,
        })
    }

    pub async fn monitoring(&self, name: &str) -> Result<MonitoringView, ServiceError> {
        let summary = self.summary(name).await?;
        let drift = self.sources.drift.recent(Some(&summary.name)).await;
        let drift_window_minutes = self.sources.drift.settings().window.as_secs() / 60;
        let shadows = self
            .sources
            .shadowing
            .all_stats()
            .into_iter()
            .filter(|(config, _)| config.name == summary.name)
            .collect();
        Ok(MonitoringView {
            summary,
            drift,
            drift_window_minutes,
            shadows,
        })
    }

    async fn summary(&self, name: &str) -> Result<ModelSummary, ServiceError> {
        self.sources
            .versions
            .list_models()
            .await?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| RegistryError::ModelNotFound(name.to_owned()).into())
    }
}

impl<T> From<Result<T, String>> for Computed<T> {
    fn from(result: Result<T, String>) -> Computed<T> {
        match result {
            Ok(value) => Computed::Ready(value),
            Err(why) => Computed::Failed(why),
        }
    }
}

/// Results computed once per key and kept, failures included (the keys name immutable
/// versions and datasets, so a result never goes stale); at `MEMO_ENTRIES` it forgets
/// the finished ones, which bounds it without bookkeeping.
#[derive(Debug)]
struct Memo<K, V> {
    entries: Mutex<HashMap<K, Slot<V>>>,
}

#[derive(Debug, Clone)]
enum Slot<V> {
    Computing,
    Done(Result<V, String>),
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Send + 'static, V: Clone + Send + 'static> Memo<K, V> {
    fn keep(&self, key: K, result: Result<V, ServiceError>) -> Result<V, String> {
        let result = result.map_err(|e| e.to_string());
        let mut entries = lock(&self.entries);
        if entries.len() >= MEMO_ENTRIES {
            entries.retain(|_, slot| matches!(slot, Slot::Computing));
        }
        entries.insert(key, Slot::Done(result.clone()));
        result
    }

    /// The result when it is known, or once computed within `patience`; otherwise
    /// `Computing` while the computation (started once) goes on in the background, so
    /// that a slow one never holds a page past the HTTP timeout.
    async fn get_within(
        self: &Arc<Self>,
        key: K,
        patience: Duration,
        compute: impl Future<Output = Result<V, ServiceError>> + Send + 'static,
    ) -> Computed<V>
    where
        K: Clone,
    {
        {
            let mut entries = lock(&self.entries);
            match entries.get(&key) {
                Some(Slot::Done(result)) => return Computed::from(result.clone()),
                Some(Slot::Computing) => return Computed::Computing,
                None => entries.insert(key.clone(), Slot::Computing),
            };
        }
        let memo = Arc::clone(self);
        let computing = tokio::spawn(async move {
            let result = compute.await;
            memo.keep(key, result)
        });
        match tokio::time::timeout(patience, computing).await {
            Ok(Ok(result)) => Computed::from(result),
            Ok(Err(panicked)) => Computed::Failed(panicked.to_string()),
            Err(_) => Computed::Computing,
        }
    }
}

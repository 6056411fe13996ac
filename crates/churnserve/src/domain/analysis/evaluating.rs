//! Evaluations on labelled data through the serving path: inline rows or a registered
//! dataset read in chunks, scored by one or two versions with the same validation as
//! `Score`, rows that fail validation counted and reported, metrics stored in the
//! registry. Also the champion/challenger comparison, the promotion gate and threshold
//! suggestions, which are evaluations with a decision at the end.

use std::sync::Arc;

use churn_engine::{Customer, RowError};
use churn_metrics::{
    AucComparison, Metrics, MetricsError, Objective, ProfitMetrics, ProfitParameters,
    ThresholdChoice,
};
use churn_registry::{Actor, EvaluationRecord, NewEvaluation, VersionRecord};
use serde::{Deserialize, Serialize};

use crate::domain::error::ServiceError;
use crate::domain::records::datasets::Datasets;
use crate::domain::records::versions::Versions;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel};

/// Dataset rows scored per engine call: memory stays at one chunk per version.
const CHUNK_ROWS: usize = 10_000;
/// Rejected rows whose errors an answer lists.
const REPORTED_REJECTIONS: usize = 20;

/// Labelled customers to evaluate on.
#[derive(Debug)]
pub enum LabelledData {
    Inline(Vec<(Customer, bool)>),
    Dataset(String),
}

/// A promotion gate on `SetAlias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub dataset: String,
    pub min_roc_auc: Option<f64>,
    pub max_roc_auc_drop: Option<f64>,
    pub max_empc_drop: Option<f64>,
    /// The retention campaign whose EMPC `max_empc_drop` bounds.
    pub campaign: ProfitParameters,
}

/// How an evaluation decides and what campaign it prices.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Terms {
    /// `None`: each version's own threshold.
    pub threshold: Option<f64>,
    pub campaign: ProfitParameters,
}

/// What one version scored: per data row its probability, or nothing when it was
/// rejected, and the first rejections.
#[derive(Debug, Default)]
struct Scored {
    scores: Vec<Option<f64>>,
    rejected: u64,
    rejections: Vec<(usize, RowError)>,
}

impl Scored {
    fn push(&mut self, row: usize, outcome: Result<f64, RowError>) {
        match outcome {
            Ok(probability) => self.scores.push(Some(probability)),
            Err(error) => {
                self.scores.push(None);
                self.rejected += 1;
                if self.rejections.len() < REPORTED_REJECTIONS {
                    self.rejections.push((row, error));
                }
            }
        }
    }

    /// The scored rows' probabilities and labels.
    fn valid(&self, churned: &[bool]) -> (Vec<f64>, Vec<bool>) {
        self.scores
            .iter()
            .zip(churned)
            .filter_map(|(score, &c)| score.map(|s| (s, c)))
            .unzip()
    }
}

/// The precision floor of the recall objective a contrast reports.
const CONTRAST_RECALL_AT_PRECISION: Objective = Objective::RecallAtPrecision(0.6);

/// Two versions on the same rows, unstored.
#[derive(Debug, Clone)]
pub struct Contrast {
    pub comparison: AucComparison,
    pub paired_rows: u64,
    /// Per objective, the threshold the champion and the challenger would choose (`None`
    /// when the objective cannot be met).
    pub thresholds: Vec<(Objective, Option<ThresholdChoice>, Option<ThresholdChoice>)>,
    /// The campaign's profit with the champion's and the challenger's scores.
    pub profits: (ProfitMetrics, ProfitMetrics),
}

/// What a stored evaluation's JSON holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMetrics {
    #[serde(flatten)]
    pub metrics: Metrics,
    pub rejected_rows: u64,
}

/// An evaluation read back from the registry.
#[derive(Debug)]
pub struct StoredEvaluation {
    pub record: EvaluationRecord,
    pub stored: StoredMetrics,
}

/// One version's stored evaluation.
#[derive(Debug)]
pub struct Evaluated {
    pub served: Arc<ServedModel>,
    pub record: EvaluationRecord,
    pub metrics: Metrics,
    pub rejected: u64,
    pub rejections: Vec<(usize, RowError)>,
}

impl Evaluated {
    /// The campaign's expected maximum profit per customer (0 without one).
    pub fn empc(&self) -> f64 {
        self.metrics.profit.as_ref().map_or(0.0, |p| p.empc)
    }
}

/// Where labelled rows came from, for the stored record.
#[derive(Debug, Clone, Default)]
struct Source {
    dataset: String,
    sha256: String,
}

#[derive(Debug)]
pub struct Evaluating {
    catalog: Arc<Catalog>,
    versions: Versions,
    datasets: Datasets,
    max_inline_rows: usize,
}

impl Evaluating {
    pub fn new(
        catalog: Arc<Catalog>,
        versions: Versions,
        datasets: Datasets,
        max_inline_rows: usize,
    ) -> Evaluating {
        Evaluating {
            catalog,
            versions,
            datasets,
            max_inline_rows,
        }
    }

    /// Evaluates one version and stores the result.
    pub async fn evaluate(
        &self,
        selector: &ModelSelector,
        data: LabelledData,
        terms: Terms,
        actor: &Actor,
    ) -> Result<Evaluated, ServiceError> {
        let served = self.catalog.resolve(selector).await?;
        let (source, churned, mut scored) = self.score(vec![Arc::clone(&served)], data).await?;
        let scored = scored.pop().expect("one version, one result");
        self.record(served, &source, &churned, scored, terms, actor)
            .await
    }

    /// Evaluates both versions on the same rows, stores both, and tests the challenger's
    /// ROC AUC against the champion's over the rows both scored.
    pub async fn compare(
        &self,
        champion: &ModelSelector,
        challenger: &ModelSelector,
        data: LabelledData,
        terms: Terms,
        actor: &Actor,
    ) -> Result<(Evaluated, Evaluated, AucComparison, u64), ServiceError> {
        let champion = self.catalog.resolve(champion).await?;
        let challenger = self.catalog.resolve(challenger).await?;
        let (source, churned, mut scored) = self
            .score(vec![Arc::clone(&champion), Arc::clone(&challenger)], data)
            .await?;
        let challenger_scored = scored.pop().expect("two versions");
        let champion_scored = scored.pop().expect("two versions");
        let (a, b, labels) = paired(&champion_scored, &challenger_scored, &churned);
        let comparison = churn_metrics::compare_roc_auc(&a, &b, &labels)?;
        let champion = self
            .record(champion, &source, &churned, champion_scored, terms, actor)
            .await?;
        let challenger = self
            .record(
                challenger,
                &source,
                &churned,
                challenger_scored,
                terms,
                actor,
            )
            .await?;
        Ok((champion, challenger, comparison, labels.len() as u64))
    }

    /// What two versions' scores of a registered dataset say, storing nothing: DeLong's
    /// test of their ROC AUCs over the rows both scored, the threshold each would choose
    /// for every objective, and the profit of `campaign` built on each.
    pub async fn contrast(
        &self,
        champion: &ModelSelector,
        challenger: &ModelSelector,
        dataset: &str,
        campaign: ProfitParameters,
    ) -> Result<Contrast, ServiceError> {
        let champion = self.catalog.resolve(champion).await?;
        let challenger = self.catalog.resolve(challenger).await?;
        let (_, churned, scored) = self
            .score(
                vec![champion, challenger],
                LabelledData::Dataset(dataset.to_owned()),
            )
            .await?;
        let (a, b, labels) = paired(&scored[0], &scored[1], &churned);
        let comparison = churn_metrics::compare_roc_auc(&a, &b, &labels)?;
        let top_tenth = Objective::TopK((labels.len() / 10).max(1));
        let objectives = [
            Objective::F1,
            CONTRAST_RECALL_AT_PRECISION,
            top_tenth,
            Objective::MaxProfit(campaign),
        ];
        let thresholds = objectives
            .into_iter()
            .map(|objective| {
                let choose = |scores: &[f64]| {
                    churn_metrics::suggest_threshold(scores, &labels, objective).ok()
                };
                (objective, choose(&a), choose(&b))
            })
            .collect();
        Ok(Contrast {
            comparison,
            paired_rows: labels.len() as u64,
            thresholds,
            profits: (
                churn_metrics::profit(&a, &labels, campaign)?,
                churn_metrics::profit(&b, &labels, campaign)?,
            ),
        })
    }

    /// Points `alias` at `version` once the promotion gate, when there is one, is met.
    pub async fn promote(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        gate: Option<Gate>,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        if let Some(gate) = gate {
            self.check_gate(name, alias, version, gate, actor).await?;
        }
        self.catalog.set_alias(name, alias, version, actor).await
    }

    /// The stored evaluations of `name` (of one version when given), newest first, with
    /// their metrics read back.
    pub async fn evaluations(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Vec<StoredEvaluation>, ServiceError> {
        self.versions
            .evaluations(name, version)
            .await?
            .into_iter()
            .map(|record| {
                let stored = serde_json::from_str(&record.metrics_json).map_err(|e| {
                    ServiceError::TaskFailed(format!("a stored evaluation cannot be read: {e}"))
                })?;
                Ok(StoredEvaluation { record, stored })
            })
            .collect()
    }

    /// Evaluates `version` (and the version holding `alias`, when the gate compares with
    /// it) on the gate's dataset; an unmet condition is FAILED_PRECONDITION with the
    /// numbers.
    async fn check_gate(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        gate: Gate,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        if gate.dataset.is_empty() {
            return Err(ServiceError::InvalidRequest(
                "gate.dataset: a gate needs a registered labelled dataset".to_owned(),
            ));
        }
        let candidate = ModelSelector::by_number(name, version);
        let holder = self
            .versions
            .alias_holder(name, alias)
            .await
            .filter(|held| {
                held.version != version
                    && (gate.max_roc_auc_drop.is_some() || gate.max_empc_drop.is_some())
            });
        let dataset = LabelledData::Dataset(gate.dataset.clone());
        let terms = Terms {
            threshold: None,
            campaign: gate.campaign,
        };
        let mut failures = Vec::new();
        let auc = match &holder {
            Some(held) => {
                let current = ModelSelector::by_number(name, held.version);
                let (current, candidate, _, _) = self
                    .compare(&current, &candidate, dataset, terms, actor)
                    .await?;
                let drop = current.metrics.roc_auc - candidate.metrics.roc_auc;
                if let Some(allowed) = gate.max_roc_auc_drop
                    && drop > allowed
                {
                    failures.push(format!(
                        "ROC AUC {:.4} is {drop:.4} below version {}'s {:.4} (the gate allows a drop of {allowed})",
                        candidate.metrics.roc_auc, held.version, current.metrics.roc_auc
                    ));
                }
                let empc_drop = current.empc() - candidate.empc();
                if let Some(allowed) = gate.max_empc_drop
                    && empc_drop > allowed
                {
                    failures.push(format!(
                        "EMPC {:.4} is {empc_drop:.4} below version {}'s {:.4} per customer (the gate allows a drop of {allowed})",
                        candidate.empc(),
                        held.version,
                        current.empc()
                    ));
                }
                candidate.metrics.roc_auc
            }
            None => {
                self.evaluate(&candidate, dataset, terms, actor)
                    .await?
                    .metrics
                    .roc_auc
            }
        };
        if let Some(minimum) = gate.min_roc_auc
            && auc < minimum
        {
            failures.push(format!(
                "ROC AUC {auc:.4} is below the gate's minimum {minimum}"
            ));
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(ServiceError::GateFailed(format!(
            "promotion gate on dataset {:?} failed for {name:?} version {version}: {}; alias {alias:?} was not moved",
            gate.dataset,
            failures.join("; ")
        )))
    }

    /// The threshold best meeting `objective` on the version's scores of `data`.
    pub async fn suggest_threshold(
        &self,
        selector: &ModelSelector,
        data: LabelledData,
        objective: Objective,
    ) -> Result<(Arc<ServedModel>, ThresholdChoice, u64), ServiceError> {
        let served = self.catalog.resolve(selector).await?;
        let (_, churned, mut scored) = self.score(vec![Arc::clone(&served)], data).await?;
        let (scores, labels) = scored.pop().expect("one version").valid(&churned);
        let choice = churn_metrics::suggest_threshold(&scores, &labels, objective)?;
        Ok((served, choice, scores.len() as u64))
    }

    async fn record(
        &self,
        served: Arc<ServedModel>,
        source: &Source,
        churned: &[bool],
        scored: Scored,
        terms: Terms,
        actor: &Actor,
    ) -> Result<Evaluated, ServiceError> {
        let threshold = terms.threshold.unwrap_or_else(|| served.model.threshold());
        let (scores, labels) = scored.valid(churned);
        let metrics = churn_metrics::evaluate(&scores, &labels, threshold, Some(terms.campaign))
            .map_err(|error| match (error, scored.rejections.first()) {
                (MetricsError::Empty, Some((row, rejection))) => {
                    ServiceError::InvalidRequest(format!(
                        "no row could be scored ({} rejected); row {row}: {rejection}",
                        scored.rejected
                    ))
                }
                (error, _) => error.into(),
            })?;
        let stored = StoredMetrics {
            metrics: metrics.clone(),
            rejected_rows: scored.rejected,
        };
        let record = self
            .versions
            .record_evaluation(
                NewEvaluation {
                    name: served.name.clone(),
                    version: served.version,
                    dataset: source.dataset.clone(),
                    dataset_sha256: source.sha256.clone(),
                    threshold,
                    roc_auc: metrics.roc_auc,
                    metrics_json: serde_json::to_string(&stored)
                        .map_err(|e| ServiceError::TaskFailed(e.to_string()))?,
                },
                actor,
            )
            .await?;
        Ok(Evaluated {
            served,
            record,
            metrics,
            rejected: scored.rejected,
            rejections: scored.rejections,
        })
    }

    /// Scores the labelled rows with each version.
    async fn score(
        &self,
        versions: Vec<Arc<ServedModel>>,
        data: LabelledData,
    ) -> Result<(Source, Vec<bool>, Vec<Scored>), ServiceError> {
        match data {
            LabelledData::Inline(rows) => {
                if rows.len() > self.max_inline_rows {
                    return Err(ServiceError::BatchTooLarge {
                        rows: rows.len(),
                        limit: self.max_inline_rows,
                    });
                }
                let (customers, churned): (Vec<Customer>, Vec<bool>) = rows.into_iter().unzip();
                let scored = tokio::task::spawn_blocking(move || {
                    versions
                        .iter()
                        .map(|served| {
                            let mut scored = Scored::default();
                            score_chunk(served, &customers, 0, &mut scored)?;
                            Ok(scored)
                        })
                        .collect::<Result<Vec<_>, ServiceError>>()
                })
                .await
                .map_err(|e| ServiceError::TaskFailed(e.to_string()))??;
                Ok((Source::default(), churned, scored))
            }
            LabelledData::Dataset(name) => {
                let dataset = self.datasets.dataset(&name).await?;
                let mut scan = self
                    .datasets
                    .scan_dataset(&versions, &dataset, CHUNK_ROWS)
                    .await?;
                let mut churned = Vec::new();
                let mut scored: Vec<Scored> = versions.iter().map(|_| Scored::default()).collect();
                while let Some(chunk) = scan.next().await {
                    let chunk = chunk?;
                    let first_row = churned.len();
                    churned.extend_from_slice(chunk.labels());
                    let versions = versions.clone();
                    scored = tokio::task::spawn_blocking(move || {
                        for ((served, customers), scored) in versions
                            .iter()
                            .zip(chunk.customers())
                            .zip(scored.iter_mut())
                        {
                            score_chunk(served, &customers, first_row, scored)?;
                        }
                        Ok::<_, ServiceError>(scored)
                    })
                    .await
                    .map_err(|e| ServiceError::TaskFailed(e.to_string()))??;
                }
                let source = Source {
                    dataset: name,
                    sha256: dataset.sha256,
                };
                Ok((source, churned, scored))
            }
        }
    }
}

/// The rows both versions scored: their two probabilities and the label.
fn paired(
    champion: &Scored,
    challenger: &Scored,
    churned: &[bool],
) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let ((a, b), labels): ((Vec<f64>, Vec<f64>), Vec<bool>) = champion
        .scores
        .iter()
        .zip(&challenger.scores)
        .zip(churned)
        .filter_map(|((a, b), &c)| Some(((a.as_ref().copied()?, b.as_ref().copied()?), c)))
        .unzip();
    (a, b, labels)
}

/// Scores one chunk whose first row is `first_row` of the data, on the calling thread.
fn score_chunk(
    served: &ServedModel,
    customers: &[Customer],
    first_row: usize,
    scored: &mut Scored,
) -> Result<(), ServiceError> {
    for (offset, outcome) in served.model.predict(customers)?.into_iter().enumerate() {
        scored.push(first_row + offset, outcome.map(|p| p.churn_probability));
    }
    Ok(())
}

//! Shadow scoring: while an alias has a shadow, every `Score` and `ScoreBatch` it serves
//! is handed, after its answer is built, to a bounded queue; one background task scores
//! it with the shadow version and keeps agreement statistics (and, when asked, the score
//! pairs in the registry). A full queue drops the work and counts it: the caller never
//! waits for, or fails because of, the shadow.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use churn_engine::CustomerBatch;
use churn_registry::{Actor, Registry, RegistryError, ShadowConfig, ShadowScore, VersionRef};
use tokio::sync::mpsc;

use crate::domain::error::ServiceError;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel, alias_or_production};
use crate::sync::lock;

/// Upper bounds of the |shadow − served| buckets the quantiles are read from.
const DIFFERENCE_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
];
/// Pairs the rank correlation is computed over.
pub const RANK_WINDOW: usize = 10_000;

type Key = (String, String);

/// What the served version answered for one customer: probability and label.
pub type ServedScore = Option<(f64, bool)>;

struct ShadowJob {
    config: ShadowConfig,
    served_version: u32,
    customers: CustomerBatch,
    served: Vec<ServedScore>,
}

/// Agreement so far between one alias and its shadow.
#[derive(Debug, Clone, Default)]
pub struct ShadowStats {
    pub compared: u64,
    pub dropped: u64,
    pub failed: u64,
    pub recorded: u64,
    sum_difference: f64,
    sum_abs_difference: f64,
    pub max_abs_difference: f64,
    buckets: [u64; DIFFERENCE_BUCKETS.len()],
    /// (served, shadow) labels: both churn, served only, shadow only, neither.
    pub labels: [u64; 4],
    recent: VecDeque<(f64, f64)>,
}

impl ShadowStats {
    fn add(&mut self, served: (f64, bool), shadow: (f64, bool)) {
        let difference = shadow.0 - served.0;
        self.compared += 1;
        self.sum_difference += difference;
        self.sum_abs_difference += difference.abs();
        self.max_abs_difference = self.max_abs_difference.max(difference.abs());
        let bucket = DIFFERENCE_BUCKETS
            .iter()
            .position(|&bound| difference.abs() <= bound)
            .unwrap_or(DIFFERENCE_BUCKETS.len() - 1);
        self.buckets[bucket] += 1;
        let label = match (served.1, shadow.1) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        self.labels[label] += 1;
        if self.recent.len() == RANK_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back((served.0, shadow.0));
    }

    pub fn mean_difference(&self) -> f64 {
        self.sum_difference / self.compared.max(1) as f64
    }

    pub fn mean_abs_difference(&self) -> f64 {
        self.sum_abs_difference / self.compared.max(1) as f64
    }

    /// The upper bound of the bucket holding the `q` quantile of |shadow − served|, or
    /// the largest difference seen when that is smaller.
    pub fn abs_difference_quantile(&self, q: f64) -> f64 {
        let wanted = (q * self.compared as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, count) in DIFFERENCE_BUCKETS.iter().zip(self.buckets) {
            seen += count;
            if seen >= wanted {
                return bound.min(self.max_abs_difference);
            }
        }
        0.0
    }

    pub fn label_agreement(&self) -> f64 {
        (self.labels[0] + self.labels[3]) as f64 / self.compared.max(1) as f64
    }

    /// Spearman's rank correlation over the recent pairs (average ranks for ties).
    pub fn rank_correlation(&self) -> f64 {
        let (served, shadow): (Vec<f64>, Vec<f64>) = self.recent.iter().copied().unzip();
        churn_metrics::spearman(&served, &shadow)
    }

    pub fn rank_window(&self) -> usize {
        self.recent.len()
    }
}

/// The shadows in force and their statistics.
#[derive(Debug)]
pub struct Shadowing {
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
    /// Model name, then alias: a request looks its shadow up by borrowed names.
    configs: ArcSwap<HashMap<String, HashMap<String, ShadowConfig>>>,
    stats: Mutex<HashMap<Key, ShadowStats>>,
    queue: mpsc::Sender<ShadowJob>,
}

impl std::fmt::Debug for ShadowJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowJob")
            .field("config", &self.config)
            .field("rows", &self.customers.len())
            .finish()
    }
}

impl Shadowing {
    /// Loads the shadows from the registry and starts the task that scores them.
    pub async fn start(
        catalog: Arc<Catalog>,
        registry: Arc<Registry>,
        queue_batches: usize,
    ) -> Result<Arc<Shadowing>, ServiceError> {
        let (queue, jobs) = mpsc::channel(queue_batches.max(1));
        let shadowing = Arc::new(Shadowing {
            catalog,
            registry,
            configs: ArcSwap::default(),
            stats: Mutex::default(),
            queue,
        });
        shadowing.reload().await?;
        tokio::spawn(run(Arc::downgrade(&shadowing), jobs));
        Ok(shadowing)
    }

    async fn reload(&self) -> Result<(), ServiceError> {
        let configs = self.registry.shadows().await?;
        let mut by_model: HashMap<String, HashMap<String, ShadowConfig>> = HashMap::new();
        for config in configs {
            by_model
                .entry(config.name.clone())
                .or_default()
                .insert(config.alias.clone(), config);
        }
        self.configs.store(Arc::new(by_model));
        Ok(())
    }

    /// The shadow of the alias a request was served by, unless it is the served version.
    pub fn shadow_for(
        &self,
        selector: &ModelSelector,
        served: &ServedModel,
    ) -> Option<ShadowConfig> {
        let VersionRef::Alias(alias) = &selector.version else {
            return None;
        };
        self.configs
            .load()
            .get(&served.name)?
            .get(alias)
            .filter(|config| config.shadow_version != served.version)
            .cloned()
    }

    /// Queues served customers for the shadow; never waits.
    pub fn offer(
        &self,
        config: ShadowConfig,
        served_version: u32,
        customers: CustomerBatch,
        served: Vec<ServedScore>,
    ) {
        let key = (config.name.clone(), config.alias.clone());
        let rows = customers.len() as u64;
        let job = ShadowJob {
            config,
            served_version,
            customers,
            served,
        };
        if self.queue.try_send(job).is_err() {
            self.with_stats(key, |stats| stats.dropped += rows);
        }
    }

    pub async fn set(
        &self,
        config: ShadowConfig,
        actor: &Actor,
    ) -> Result<ShadowConfig, ServiceError> {
        let config = self.registry.set_shadow(&config, actor).await?;
        lock(&self.stats).remove(&(config.name.clone(), config.alias.clone()));
        self.reload().await?;
        Ok(config)
    }

    pub async fn delete(&self, name: &str, alias: &str, actor: &Actor) -> Result<(), ServiceError> {
        self.registry.delete_shadow(name, alias, actor).await?;
        self.reload().await
    }

    /// The shadow of `alias` (empty: `production`) of model `name` (empty: the default
    /// model) and its statistics since it was set.
    pub fn stats(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<(ShadowConfig, ShadowStats), ServiceError> {
        let (name, alias) = (self.catalog.model_name(name), alias_or_production(alias));
        let config = self
            .configs
            .load()
            .get(name)
            .and_then(|aliases| aliases.get(alias))
            .cloned()
            .ok_or_else(|| RegistryError::ShadowNotFound {
                name: name.to_owned(),
                alias: alias.to_owned(),
            })?;
        let key = (name.to_owned(), alias.to_owned());
        let stats = lock(&self.stats).get(&key).cloned().unwrap_or_default();
        Ok((config, stats))
    }

    /// Every shadow in force with its statistics, for the metrics page.
    pub fn all_stats(&self) -> Vec<(ShadowConfig, ShadowStats)> {
        let stats = lock(&self.stats);
        self.configs
            .load()
            .values()
            .flat_map(HashMap::values)
            .map(|config| {
                let key = (config.name.clone(), config.alias.clone());
                (config.clone(), stats.get(&key).cloned().unwrap_or_default())
            })
            .collect()
    }

    fn with_stats(&self, key: Key, change: impl FnOnce(&mut ShadowStats)) {
        change(lock(&self.stats).entry(key).or_default());
    }

    async fn score(&self, job: ShadowJob) {
        let key = (job.config.name.clone(), job.config.alias.clone());
        let rows = job.customers.len() as u64;
        let shadow = match self
            .catalog
            .resolve(&ModelSelector::by_number(
                job.config.name.clone(),
                job.config.shadow_version,
            ))
            .await
        {
            Ok(shadow) => shadow,
            Err(error) => {
                tracing::warn!(%error, shadow = ?job.config, "the shadow version cannot be loaded");
                self.with_stats(key, |stats| stats.failed += rows);
                return;
            }
        };
        let customers = job.customers;
        let scored = tokio::task::spawn_blocking(move || {
            let outcomes = shadow.model.predict_batch(&customers);
            (customers, outcomes)
        })
        .await;
        let (customers, outcomes) = match scored {
            Ok((customers, Ok(outcomes))) => (customers, outcomes),
            Ok((_, Err(error))) => {
                tracing::warn!(%error, "the shadow version failed to score a batch");
                self.with_stats(key, |stats| stats.failed += rows);
                return;
            }
            Err(error) => {
                tracing::error!(%error, "the shadow scoring task failed");
                self.with_stats(key, |stats| stats.failed += rows);
                return;
            }
        };
        let mut pairs = Vec::new();
        self.with_stats(key.clone(), |stats| {
            for ((served, outcome), id) in
                job.served.iter().zip(&outcomes).zip(customers.into_ids())
            {
                match (served, outcome) {
                    (Some(served), Ok(shadow)) => {
                        stats.add(*served, (shadow.churn_probability, shadow.will_churn));
                        pairs.push(ShadowScore {
                            customer_id: id,
                            served_version: job.served_version,
                            served_score: served.0,
                            shadow_score: shadow.churn_probability,
                        });
                    }
                    (Some(_), Err(_)) => stats.failed += 1,
                    (None, _) => {}
                }
            }
        });
        if job.config.record && !pairs.is_empty() {
            match self
                .registry
                .record_shadow_scores(&job.config, &pairs)
                .await
            {
                Ok(()) => self.with_stats(key, |stats| stats.recorded += pairs.len() as u64),
                Err(error) => tracing::warn!(%error, "cannot record shadow scores"),
            }
        }
    }
}

/// Scores queued work until the server (the last `Shadowing`) goes away.
async fn run(shadowing: std::sync::Weak<Shadowing>, mut jobs: mpsc::Receiver<ShadowJob>) {
    while let Some(job) = jobs.recv().await {
        let Some(shadowing) = shadowing.upgrade() else {
            return;
        };
        shadowing.score(job).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_read_the_bucket_bounds() {
        let mut stats = ShadowStats::default();
        for difference in [0.0, 0.003, 0.003, 0.03, 0.3] {
            stats.add((0.5, true), (0.5 + difference, true));
        }
        assert_eq!(stats.abs_difference_quantile(0.5), 0.005);
        assert!(
            (stats.abs_difference_quantile(0.99) - 0.3).abs() < 1e-12,
            "capped at the largest"
        );
        assert_eq!(stats.label_agreement(), 1.0);
        assert!((stats.mean_difference() - 0.0672).abs() < 1e-12);
    }
}

//! What the domain hands to observation, so that `observe` never calls into it: the
//! serving state read at each scrape. (Drift's bins come from `monitoring::drift`.)

use std::sync::Arc;

use crate::domain::analysis::shadows::Shadowing;
use crate::domain::serving::catalog::Catalog;
use crate::observe::metrics::{LoadedVersion, ServingSample, ServingSnapshot, ShadowSample};

/// The catalog and the shadows, as the metrics scrape sees them.
#[derive(Debug)]
pub struct ServingView {
    pub catalog: Arc<Catalog>,
    pub shadows: Arc<Shadowing>,
}

impl ServingSnapshot for ServingView {
    fn sample(&self) -> ServingSample {
        let (loads, unloads) = self.catalog.cache_events();
        ServingSample {
            loaded: self
                .catalog
                .loaded()
                .iter()
                .map(|served| {
                    let (inference_runs, inference_time) = served.model.inference_time();
                    LoadedVersion {
                        name: served.name.clone(),
                        version: served.version,
                        inference_runs,
                        inference_time,
                    }
                })
                .collect(),
            loads,
            unloads,
            registry_generation: self.catalog.generation(),
            aliases_behind: self.catalog.aliases_behind().len(),
            alias_load_failures: self.catalog.alias_load_failures(),
            shadows: self
                .shadows
                .all_stats()
                .into_iter()
                .map(|(config, stats)| ShadowSample {
                    mean_abs_difference: stats.mean_abs_difference(),
                    p99_abs_difference: stats.abs_difference_quantile(0.99),
                    label_agreement: stats.label_agreement(),
                    rank_correlation: stats.rank_correlation(),
                    compared: stats.compared,
                    dropped: stats.dropped,
                    failed: stats.failed,
                    name: config.name,
                    alias: config.alias,
                    shadow_version: config.shadow_version,
                })
                .collect(),
        }
    }
}

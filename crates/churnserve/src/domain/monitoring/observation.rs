//! What the domain hands to observation, so that `observe` never calls into it: the
//! serving state read at each scrape, and the drift references, read from each version's
//! reference dataset and scored when the drift trackers ask for them.

use std::sync::Arc;

use churn_engine::FeatureValue;
use tokio::sync::mpsc;

use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::records::datasets::Datasets;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel};
use crate::observe::drift::{Drift, Reference, ReferenceRequest};
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

/// Answers the drift trackers' reference requests until the server stops: the first
/// `rows` rows of each version's reference dataset, scored by the version.
pub async fn serve_drift_references(
    catalog: Arc<Catalog>,
    datasets: Datasets,
    drift: Arc<Drift>,
    rows: usize,
    mut requests: mpsc::UnboundedReceiver<ReferenceRequest>,
) {
    while let Some(request) = requests.recv().await {
        let (catalog, datasets, drift) =
            (Arc::clone(&catalog), datasets.clone(), Arc::clone(&drift));
        tokio::spawn(async move {
            let ReferenceRequest { model, version } = request;
            match reference(&catalog, &datasets, &model, version, rows).await {
                Ok(reference) => drift.set_reference(&model, version, reference),
                Err(error) => {
                    tracing::info!(%model, version, reason = %error, "no drift reference");
                    drift.set_unavailable(&model, version, error.to_string());
                }
            }
        });
    }
}

async fn reference(
    catalog: &Catalog,
    datasets: &Datasets,
    model: &str,
    version: u32,
    rows: usize,
) -> Result<Reference, ServiceError> {
    let served = catalog
        .resolve(&ModelSelector::by_number(model, version))
        .await?;
    let dataset = datasets.reference_dataset(&served).await?;
    let (customers, _) = datasets.dataset_customers(&served, &dataset, rows).await?;
    tokio::task::spawn_blocking(move || score_reference(&served, customers))
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))?
}

fn score_reference(
    served: &ServedModel,
    customers: Vec<churn_engine::Customer>,
) -> Result<Reference, ServiceError> {
    let predictions = served.model.predict(&customers)?;
    let mut kept_rows: Vec<Vec<FeatureValue>> = Vec::new();
    let mut scores = Vec::new();
    for (customer, prediction) in customers.into_iter().zip(predictions) {
        if let Ok(prediction) = prediction {
            kept_rows.push(customer.features.into_iter().map(|(_, v)| v).collect());
            scores.push(prediction.churn_probability);
        }
    }
    Ok(Reference::new(served.model.schema(), &kept_rows, &scores))
}

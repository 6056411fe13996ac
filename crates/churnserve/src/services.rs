//! The domain's services, started in order from the configuration and stopped in the
//! reverse order: the catalog over the registry and ONNX Runtime, then everything that
//! works through it (scoring, explanations, evaluations, shadows, the prediction log,
//! performance, drift) and the metrics that observe them.

use std::sync::Arc;
use std::time::Duration;

use churn_engine::OnnxRuntime;
use churn_registry::Registry;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::domain;
use crate::domain::analysis::evaluating::Evaluating;
use crate::domain::analysis::explaining::Explaining;
use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::monitoring::drift::FleetDrift;
use crate::domain::monitoring::experiments::Experiments;
use crate::domain::monitoring::performance::Performance;
use crate::domain::monitoring::prediction_log::PredictionLog;
use crate::domain::records::datasets::Datasets;
use crate::domain::records::versions::Versions;
use crate::domain::serving::catalog::{Catalog, CatalogOptions};
use crate::domain::serving::scoring::Scoring;
use crate::domain::views::{ViewSources, Views};
use crate::error::ServerError;
use crate::observe::drift::Drift;
use crate::observe::metrics::Metrics;

/// Every domain service of a running server, and the background tasks they need.
#[derive(Debug)]
pub struct Services {
    pub catalog: Arc<Catalog>,
    pub versions: Versions,
    pub datasets: Datasets,
    pub shadowing: Arc<Shadowing>,
    pub metrics: Arc<Metrics>,
    pub performance: Arc<Performance>,
    pub experiments: Arc<Experiments>,
    pub fleet_drift: Arc<FleetDrift>,
    pub evaluating: Arc<Evaluating>,
    pub explaining: Arc<Explaining>,
    pub scoring: Arc<Scoring>,
    pub views: Arc<Views>,
    prediction_log: Option<Arc<PredictionLog>>,
    tasks: Vec<JoinHandle<()>>,
}

fn models(error: ServiceError) -> ServerError {
    ServerError::Models(error.to_string())
}

impl Services {
    /// Opens the registry and the catalog, seeds an empty registry unless told not to,
    /// and starts every service on top.
    pub async fn start(config: &Config) -> Result<Services, ServerError> {
        let registry = open_registry(config).await?;
        let datasets = Datasets::new(Arc::clone(&registry));
        let catalog = open_catalog(config, &registry, &datasets).await?;
        let versions = Versions::new(Arc::clone(&registry), Arc::clone(&catalog));
        let shadowing = Shadowing::start(
            Arc::clone(&catalog),
            Arc::clone(&registry),
            config.shadow_queue_batches,
        )
        .await
        .map_err(models)?;
        let (drift, bins_requests) = Drift::new(config.drift_counting == crate::config::Switch::On);
        let drift = Arc::new(drift);
        let metrics = Arc::new(Metrics::new(
            Arc::clone(&drift),
            Arc::new(domain::monitoring::observation::ServingView {
                catalog: Arc::clone(&catalog),
                shadows: Arc::clone(&shadowing),
            }),
        ));
        let prediction_log = config.prediction_log().map(|settings| {
            PredictionLog::start(Arc::clone(&registry), settings, Arc::clone(&metrics))
        });
        let (performance, performance_signal, performance_fold) =
            start_performance(config, &catalog, &registry, &metrics);
        let experiments = Arc::new(Experiments::new(Arc::clone(&registry)));
        let fleet_drift = Arc::new(FleetDrift::new(
            Arc::clone(&catalog),
            datasets.clone(),
            Arc::clone(&registry),
            drift,
            config.drift(),
        ));
        let drift_task = tokio::spawn(domain::monitoring::drift::run(
            Arc::clone(&fleet_drift),
            bins_requests,
        ));
        let evaluating = Arc::new(Evaluating::new(
            Arc::clone(&catalog),
            versions.clone(),
            datasets.clone(),
            config.max_batch_rows,
        ));
        let explaining = Arc::new(Explaining::new(
            Arc::clone(&catalog),
            datasets.clone(),
            config.explain_settings(),
        ));
        let scoring = Arc::new(Scoring::new(
            Arc::clone(&catalog),
            Arc::clone(&explaining),
            Arc::clone(&shadowing),
            domain::serving::predict::Predictor::new(Arc::clone(&metrics), prediction_log.clone()),
            config.micro_batching(),
            config.max_batch_rows,
        ));
        let views = Arc::new(Views::new(ViewSources {
            versions: versions.clone(),
            datasets: datasets.clone(),
            evaluating: Arc::clone(&evaluating),
            explaining: Arc::clone(&explaining),
            shadowing: Arc::clone(&shadowing),
            drift: Arc::clone(&fleet_drift),
            performance: Arc::clone(&performance),
            experiments: Arc::clone(&experiments),
        }));
        Ok(Services {
            catalog,
            versions,
            datasets,
            shadowing,
            metrics,
            performance,
            experiments,
            fleet_drift,
            evaluating,
            explaining,
            scoring,
            views,
            prediction_log,
            tasks: vec![drift_task, performance_signal, performance_fold],
        })
    }

    /// Writes what the prediction log and the drift counts still hold, closes the
    /// registry's connections and stops the background tasks.
    pub async fn stop(self) {
        if let Some(prediction_log) = &self.prediction_log {
            prediction_log.close().await;
        }
        self.fleet_drift.close().await;
        self.catalog.close().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

/// The registry the configuration names, its migrations applied.
async fn open_registry(config: &Config) -> Result<Arc<Registry>, ServerError> {
    let location = config.registry.location()?;
    let registry = Registry::connect(&location)
        .await
        .map_err(|cause| ServerError::Registry { location, cause })?;
    Ok(Arc::new(registry))
}

/// ONNX Runtime and the catalog over it and the registry; the bundled models seeded into
/// an empty registry.
async fn open_catalog(
    config: &Config,
    registry: &Arc<Registry>,
    datasets: &Datasets,
) -> Result<Arc<Catalog>, ServerError> {
    let onnxruntime = config.onnxruntime.clone();
    let runtime = tokio::task::spawn_blocking(move || OnnxRuntime::load(onnxruntime.as_deref()))
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))??;
    let options = CatalogOptions {
        default_model: config.default_model.clone(),
        load: config.model_options(),
        cache_size: config.model_cache_size,
        eager_aliases: !config.lazy_aliases,
    };
    let catalog = Arc::new(
        Catalog::open(Arc::clone(registry), runtime, options)
            .await
            .map_err(models)?,
    );
    if !config.no_seed {
        domain::serving::seed::seed_if_empty(&catalog, registry, datasets)
            .await
            .map_err(models)?;
    }
    Ok(catalog)
}

/// Realized performance, the task that checks it for the retraining signal, and the one
/// that folds the log into its sums.
fn start_performance(
    config: &Config,
    catalog: &Arc<Catalog>,
    registry: &Arc<Registry>,
    metrics: &Arc<Metrics>,
) -> (Arc<Performance>, JoinHandle<()>, JoinHandle<()>) {
    let performance = Arc::new(Performance::new(
        Arc::clone(catalog),
        Arc::clone(registry),
        config.max_batch_rows,
    ));
    let signal = tokio::spawn(domain::monitoring::performance::watch_performance(
        Arc::clone(&performance),
        Arc::clone(metrics),
        Duration::from_secs(config.performance_check_minutes * 60),
        config.performance_alert_margin,
    ));
    let fold = tokio::spawn(domain::monitoring::performance::fold_continually(
        Arc::clone(&performance),
        domain::monitoring::performance::FOLD_INTERVAL,
    ));
    (performance, signal, fold)
}

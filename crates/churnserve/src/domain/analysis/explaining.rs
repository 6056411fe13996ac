//! Explanations and feature importance: the version's reference dataset read from the
//! registry and scored once into a background, then the attribution crate on the blocking
//! pool.

use std::sync::Arc;

use churn_engine::Customer;
use churn_explain::{
    Attribution, Background, ExplainError, ExplainOptions, Explanation, FeatureImportance,
};

use crate::domain::analysis::evaluating::LabelledData;
use crate::domain::error::ServiceError;
use crate::domain::records::datasets::Datasets;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{CachedBackground, ModelSelector, ServedModel};
use crate::sync::lock;

/// How much data and work explanations and importance may use.
#[derive(Debug, Clone, Copy)]
pub struct ExplainSettings {
    /// Background rows: the first ones of the reference dataset.
    pub background_rows: usize,
    pub options: ExplainOptions,
    /// Labelled rows used by PERMUTATION importance: inline rows above it are refused,
    /// a dataset's first rows are taken.
    pub importance_rows: usize,
    /// Rows explained for MEAN_ABS_SHAP importance, under the same rule.
    pub shap_importance_rows: usize,
    /// Shuffles per feature for PERMUTATION importance.
    pub permutation_repeats: usize,
}

/// The importance methods, as the domain knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportanceMethod {
    ModelNative,
    Permutation,
    MeanAbsShap,
}

#[derive(Debug)]
pub struct Explaining {
    catalog: Arc<Catalog>,
    datasets: Datasets,
    settings: ExplainSettings,
}

impl Explaining {
    pub fn new(catalog: Arc<Catalog>, datasets: Datasets, settings: ExplainSettings) -> Explaining {
        Explaining {
            catalog,
            datasets,
            settings,
        }
    }

    /// Explains one customer, by the version that scores them: through a traffic split,
    /// their arm's when they have a customer id.
    pub async fn explain(
        &self,
        selector: &ModelSelector,
        customer: Customer,
    ) -> Result<(Arc<ServedModel>, Explanation), ServiceError> {
        let served = self.catalog.resolve_for(selector, &customer.id).await?;
        let background = self.background(&served).await?;
        let options = self.settings.options;
        let model = Arc::clone(&served);
        let explanation = blocking(move || {
            churn_explain::explain(&model.model, &background, &customer, &options).map_err(
                |error| match error {
                    ExplainError::InvalidCustomer(error) => ServiceError::InvalidCustomer {
                        customer_id: customer.id.clone(),
                        error,
                    },
                    other => other.into(),
                },
            )
        })
        .await?;
        Ok((served, explanation))
    }

    /// The background this version's explanations use; fails fast (before any scoring)
    /// when the version has no usable reference dataset. Cached with the version and
    /// trusted without a registry read while the registry has not changed.
    pub async fn background(
        &self,
        served: &Arc<ServedModel>,
    ) -> Result<Arc<Background>, ServiceError> {
        let generation = self.catalog.generation();
        if let Some(cached) = &*lock(&served.background)
            && cached.generation == generation
        {
            return Ok(Arc::clone(&cached.background));
        }
        let dataset = self.datasets.reference_dataset(served).await?;
        if let Some(cached) = &mut *lock(&served.background)
            && cached.dataset_sha256 == dataset.sha256
        {
            cached.generation = generation;
            return Ok(Arc::clone(&cached.background));
        }
        let (customers, _) = self
            .datasets
            .dataset_customers(served, &dataset, self.settings.background_rows)
            .await?;
        let dataset_name = dataset.name.clone();
        let model = Arc::clone(served);
        let background = blocking(move || {
            Background::new(&model.model, &customers).map_err(|error| {
                ServiceError::UnusableReference {
                    dataset: dataset_name,
                    reason: error.to_string(),
                }
            })
        })
        .await?;
        let background = Arc::new(background);
        *lock(&served.background) = Some(CachedBackground {
            generation,
            dataset_sha256: dataset.sha256,
            background: Arc::clone(&background),
        });
        Ok(background)
    }

    /// The `k` largest attributions of each customer, all of which must be valid.
    pub async fn top_reasons(
        &self,
        served: &Arc<ServedModel>,
        background: Arc<Background>,
        customers: Vec<Customer>,
        k: usize,
    ) -> Result<Vec<Vec<Attribution>>, ServiceError> {
        let options = self.settings.options;
        let model = Arc::clone(served);
        blocking(move || {
            customers
                .iter()
                .map(|customer| {
                    churn_explain::explain(&model.model, &background, customer, &options)
                        .map(|explanation| explanation.top(k))
                        .map_err(ServiceError::from)
                })
                .collect()
        })
        .await
    }

    /// Global importance of each raw feature; UNSPECIFIED picks the trees' split counts
    /// for a tree ensemble, else PERMUTATION.
    pub async fn importance(
        &self,
        selector: &ModelSelector,
        method: Option<ImportanceMethod>,
        data: Option<LabelledData>,
    ) -> Result<(Arc<ServedModel>, ImportanceMethod, Vec<FeatureImportance>), ServiceError> {
        let served = self.catalog.resolve(selector).await?;
        let method = method.unwrap_or(if served.model.tree_ensemble().is_ok() {
            ImportanceMethod::ModelNative
        } else {
            ImportanceMethod::Permutation
        });
        let settings = self.settings;
        let scores = match method {
            ImportanceMethod::ModelNative => {
                // Trees carry their measure; a linear model's needs the rows' spread.
                let needs_rows = served.model.tree_ensemble().is_err()
                    && served.model.linear_margin_reason().is_ok();
                let customers = if needs_rows {
                    self.rows(&served, data, settings.importance_rows).await?.0
                } else {
                    Vec::new()
                };
                let model = Arc::clone(&served);
                blocking(move || Ok(churn_explain::native_importance(&model.model, &customers)?))
                    .await?
            }
            ImportanceMethod::Permutation => {
                let (customers, churned) =
                    self.rows(&served, data, settings.importance_rows).await?;
                let model = Arc::clone(&served);
                blocking(move || {
                    Ok(churn_explain::permutation_importance(
                        &model.model,
                        &customers,
                        &churned,
                        settings.permutation_repeats,
                        settings.options.seed,
                    )?)
                })
                .await?
            }
            ImportanceMethod::MeanAbsShap => {
                let background = self.background(&served).await?;
                let (customers, _) = self
                    .rows(&served, data, settings.shap_importance_rows)
                    .await?;
                let model = Arc::clone(&served);
                blocking(move || {
                    Ok(churn_explain::mean_abs_shap(
                        &model.model,
                        &background,
                        &customers,
                        &settings.options,
                    )?)
                })
                .await?
            }
        };
        Ok((served, method, scores))
    }

    /// Labelled customers for importance, at most `limit`; no data: the version's
    /// reference dataset.
    async fn rows(
        &self,
        served: &Arc<ServedModel>,
        data: Option<LabelledData>,
        limit: usize,
    ) -> Result<(Vec<Customer>, Vec<bool>), ServiceError> {
        let dataset = match data {
            Some(LabelledData::Inline(rows)) if rows.len() > limit => {
                return Err(ServiceError::BatchTooLarge {
                    rows: rows.len(),
                    limit,
                });
            }
            Some(LabelledData::Inline(rows)) => return Ok(rows.into_iter().unzip()),
            Some(LabelledData::Dataset(name)) => self.datasets.dataset(&name).await?,
            None => match self.datasets.reference_dataset(served).await {
                Err(ServiceError::NoReferenceDataset { .. }) => {
                    return Err(ServiceError::InvalidRequest(
                        "rows or dataset: importance needs data, and this version has no reference dataset to fall back on".to_owned(),
                    ));
                }
                found => found?,
            },
        };
        if dataset.rows as usize > limit {
            tracing::info!(dataset = %dataset.name, limit, total = dataset.rows, "importance uses the first rows of the dataset");
        }
        self.datasets
            .dataset_customers(served, &dataset, limit)
            .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))?
}

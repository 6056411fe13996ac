//! The catalog: the only door to the registry. It owns the default-model rule, the
//! served models (registry versions loaded into the engine on demand, a bounded
//! least-recently-used cache of them, and a lock-free alias table that an atomic swap
//! replaces whenever the registry changes), every registry read and write the service
//! makes, and the mapping of stored datasets onto a model's raw features. A request takes
//! an `Arc` of its version, so a swap never disturbs a request in flight: it finishes on
//! the version it started with.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use churn_engine::{ColumnMapping, Customer, FeatureKind, Model, ModelOptions, OnnxRuntime};
use churn_registry::{
    Actor, ArtifactKind, AuditEntry, DatasetRecord, DatasetRows, EvaluationRecord, FeatureRecord,
    LabelledPrediction, LoggedPrediction, ModelSummary, NewDataset, NewEvaluation, NewVersion,
    OutcomeRecord, PredictionWindow, Registry, RegistryError, ShadowConfig, ShadowScore, Staged,
    Staging, VersionMetadata, VersionRecord, VersionRef,
};
use tokio::sync::mpsc;

use crate::domain::error::ServiceError;
use crate::domain::served::{ModelCache, ModelSelector, ServedModel};
use crate::sync::lock;

/// A page of the audit log, newest first, and where the next (older) page starts.
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before_id: Option<i64>,
}

/// Rows read ahead of the one being scored while a dataset is scanned.
const SCAN_AHEAD_CHUNKS: usize = 1;

/// What the caller asked for at registration, beyond the bytes.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub name: String,
    pub description: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub feature_names: Vec<String>,
    pub positive_class: Option<String>,
    pub threshold: Option<f64>,
    pub risk_band_cuts: Option<[f64; 2]>,
    pub reference_dataset: String,
    pub aliases: Vec<String>,
}

/// Where an alias points, as of the last refresh.
#[derive(Debug, Clone)]
enum AliasTarget {
    Loaded(Arc<ServedModel>),
    /// Lazy loading, or a version that failed to load (the reason is kept for the caller).
    Version {
        version: u32,
        failure: Option<String>,
    },
}

type AliasTable = HashMap<String, HashMap<String, AliasTarget>>;

/// An alias whose registry target cannot load here (yet): it keeps serving the version it
/// served before, if any; retried at every refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasBehind {
    pub name: String,
    pub alias: String,
    pub serving: Option<u32>,
    pub wanted: u32,
    pub reason: String,
}

impl std::fmt::Display for AliasBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, alias, wanted) = (&self.name, &self.alias, self.wanted);
        match self.serving {
            Some(serving) => write!(
                f,
                "model {name:?} alias {alias:?} is still served by version {serving} here: version {wanted} cannot load ({})",
                self.reason
            ),
            None => write!(
                f,
                "model {name:?} alias {alias:?} cannot serve here: version {wanted} cannot load ({})",
                self.reason
            ),
        }
    }
}

/// How the store loads and keeps models.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    pub default_model: String,
    pub load: ModelOptions,
    pub cache_size: usize,
    pub eager_aliases: bool,
}

#[derive(Debug)]
pub struct Catalog {
    registry: Registry,
    runtime: &'static OnnxRuntime,
    options: CatalogOptions,
    cache: Mutex<ModelCache>,
    aliases: ArcSwap<AliasTable>,
    /// The registry change marker the alias table reflects; also serializes refreshes.
    seen: tokio::sync::Mutex<i64>,
    /// The same marker, readable without waiting: what a cache derived from registry
    /// rows (such as an explanation background) checks to know it is still current.
    generation: AtomicI64,
    /// Aliases kept on their previous version by the last refresh.
    behind: Mutex<Vec<AliasBehind>>,
    /// Aliased versions that failed to load at a refresh, since start.
    alias_load_failures: AtomicU64,
}

impl Catalog {
    pub async fn open(
        registry: Registry,
        runtime: &'static OnnxRuntime,
        options: CatalogOptions,
    ) -> Result<Catalog, ServiceError> {
        let store = Catalog {
            registry,
            runtime,
            options,
            cache: Mutex::new(ModelCache::default()),
            aliases: ArcSwap::from_pointee(AliasTable::new()),
            seen: tokio::sync::Mutex::new(-1),
            generation: AtomicI64::new(-1),
            behind: Mutex::new(Vec::new()),
            alias_load_failures: AtomicU64::new(0),
        };
        store.refresh().await?;
        Ok(store)
    }

    /// The model a request means: the one it names, or the default model.
    pub fn model_name<'a>(&'a self, name: &'a str) -> &'a str {
        if name.is_empty() {
            &self.options.default_model
        } else {
            name
        }
    }

    /// The version a request is answered by.
    pub async fn resolve(
        &self,
        selector: &ModelSelector,
    ) -> Result<Arc<ServedModel>, ServiceError> {
        let name = self.model_name(&selector.name);
        match &selector.version {
            VersionRef::Number(version) => self.load(name, *version).await,
            VersionRef::Alias(alias) => {
                let target = self
                    .aliases
                    .load()
                    .get(name)
                    .and_then(|aliases| aliases.get(alias))
                    .cloned();
                match target {
                    Some(AliasTarget::Loaded(served)) => Ok(served),
                    Some(AliasTarget::Version {
                        version,
                        failure: None,
                    }) => self.load(name, version).await,
                    Some(AliasTarget::Version {
                        version,
                        failure: Some(reason),
                    }) => Err(ServiceError::CannotServe {
                        name: name.to_owned(),
                        version,
                        reason,
                    }),
                    // Not in the table yet: another process may have just created it.
                    None => {
                        let record = self.registry.version(name, &selector.version).await?;
                        self.load(name, record.version).await
                    }
                }
            }
        }
    }

    /// A version from the cache, or loaded from its verified artifact.
    async fn load(&self, name: &str, version: u32) -> Result<Arc<ServedModel>, ServiceError> {
        if let Some(served) = self.cached(name, version) {
            return Ok(served);
        }
        let record = self
            .registry
            .version(name, &VersionRef::Number(version))
            .await?;
        let bytes = self.registry.model_bytes(&record).await?;
        let stored = &record.metadata;
        let options = ModelOptions {
            feature_names: (!stored.feature_names.is_empty()).then(|| stored.feature_names.clone()),
            positive_class: Some(stored.positive_class.clone()),
            threshold: Some(stored.threshold),
            risk_band_cuts: Some(stored.risk_band_cuts),
            ..self.options.load.clone()
        };
        let model = load_model(self.runtime, bytes, options)
            .await?
            .map_err(|error| ServiceError::CannotServe {
                name: name.to_owned(),
                version,
                reason: error.to_string(),
            })?;
        Ok(self.remember(ServedModel::new(record.name, version, record.sha256, model)))
    }

    fn cached(&self, name: &str, version: u32) -> Option<Arc<ServedModel>> {
        lock(&self.cache).get(name, version)
    }

    fn remember(&self, served: ServedModel) -> Arc<ServedModel> {
        let served = Arc::new(served);
        lock(&self.cache).insert(Arc::clone(&served), self.options.cache_size);
        served
    }

    /// Validates the upload by loading it and scoring a synthetic row, then registers it;
    /// the loaded model goes straight into the cache.
    pub async fn register(
        &self,
        registration: Registration,
        staged: Staged,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        if !registration.reference_dataset.is_empty() {
            self.registry
                .dataset(&registration.reference_dataset)
                .await?;
        }
        let bytes = tokio::fs::read(staged.path())
            .await
            .map_err(|e| ServiceError::TaskFailed(format!("cannot read the staged upload: {e}")))?;
        let options = ModelOptions {
            feature_names: (!registration.feature_names.is_empty())
                .then(|| registration.feature_names.clone()),
            positive_class: registration.positive_class.clone(),
            threshold: registration.threshold,
            risk_band_cuts: registration.risk_band_cuts,
            ..self.options.load.clone()
        };
        let model = load_model(self.runtime, bytes, options)
            .await?
            .map_err(ServiceError::InvalidUpload)?;
        let new = NewVersion {
            name: registration.name,
            metadata: VersionMetadata {
                features: model
                    .schema()
                    .features
                    .iter()
                    .map(|f| FeatureRecord {
                        name: f.name.clone(),
                        kind: match f.kind {
                            FeatureKind::Number => "number",
                            FeatureKind::Text => "text",
                            FeatureKind::Bool => "bool",
                        }
                        .to_owned(),
                        allowed_values: f
                            .categories
                            .as_ref()
                            .map(|c| c.values.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
                class_labels: model.class_labels().to_vec(),
                positive_class: model.positive_class().to_owned(),
                threshold: model.threshold(),
                risk_band_cuts: model.risk_band_cuts(),
                producer: model.producer().to_owned(),
                description: registration.description,
                tags: registration.tags,
                feature_names: registration.feature_names,
                reference_dataset: registration.reference_dataset,
            },
            aliases: registration.aliases,
        };
        let record = self.registry.register(new, staged, actor).await?;
        self.remember(ServedModel::new(
            record.name.clone(),
            record.version,
            record.sha256.clone(),
            model,
        ));
        if !record.aliases.is_empty() {
            self.refresh().await?;
        }
        Ok(record)
    }

    /// Moves an alias only after its new target has loaded and scored a synthetic row.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        self.load(name, version).await?;
        let record = self.registry.set_alias(name, alias, version, actor).await?;
        self.refresh().await?;
        Ok(record)
    }

    pub async fn delete_alias(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        self.registry.delete_alias(name, alias, actor).await?;
        self.refresh().await
    }

    /// Rebuilds the alias table if the registry changed since the last look. Each new
    /// target is loaded (and smoke-tested) before the table is swapped, so a request never
    /// waits for a load; a target that cannot load leaves its alias on the version it
    /// served, and the next refresh tries again.
    pub async fn refresh(&self) -> Result<(), ServiceError> {
        let mut seen = self.seen.lock().await;
        let marker = self.registry.change_marker().await?;
        if marker == *seen {
            return Ok(());
        }
        let previous = self.aliases.load_full();
        let mut table = AliasTable::new();
        let mut behind = Vec::new();
        for record in self.registry.aliases().await? {
            let target = if self.options.eager_aliases {
                match self.load(&record.name, record.version).await {
                    Ok(served) => AliasTarget::Loaded(served),
                    Err(error) => {
                        self.alias_load_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(model = %record.name, alias = %record.alias, version = record.version, %error, "aliased version cannot serve");
                        let serving = match previous
                            .get(&record.name)
                            .and_then(|aliases| aliases.get(&record.alias))
                        {
                            Some(AliasTarget::Loaded(served)) => Some(Arc::clone(served)),
                            _ => None,
                        };
                        behind.push(AliasBehind {
                            name: record.name.clone(),
                            alias: record.alias.clone(),
                            serving: serving.as_ref().map(|served| served.version),
                            wanted: record.version,
                            reason: error.to_string(),
                        });
                        match serving {
                            Some(served) => AliasTarget::Loaded(served),
                            None => AliasTarget::Version {
                                version: record.version,
                                failure: Some(error.to_string()),
                            },
                        }
                    }
                }
            } else {
                AliasTarget::Version {
                    version: record.version,
                    failure: None,
                }
            };
            table
                .entry(record.name)
                .or_default()
                .insert(record.alias, target);
        }
        let caught_up = behind.is_empty();
        self.aliases.store(Arc::new(table));
        *lock(&self.behind) = behind;
        self.follow_thresholds().await?;
        if caught_up {
            *seen = marker;
        }
        self.generation.store(marker, Ordering::Release);
        Ok(())
    }

    /// Announcements of registry changes made anywhere, where the database makes them.
    pub async fn change_notifications(
        &self,
    ) -> Result<Option<churn_registry::ChangeNotifications>, ServiceError> {
        Ok(self.registry.change_notifications().await?)
    }

    /// Aliases whose registry target is not loaded here: what makes a replica not ready.
    pub fn aliases_behind(&self) -> Vec<AliasBehind> {
        lock(&self.behind).clone()
    }

    /// Aliased versions that failed to load at a refresh, since start.
    pub fn alias_load_failures(&self) -> u64 {
        self.alias_load_failures.load(Ordering::Relaxed)
    }

    /// Applies each loaded version's registry threshold, which `SetThreshold` (here or in
    /// another process) may have changed since it loaded.
    async fn follow_thresholds(&self) -> Result<(), ServiceError> {
        let loaded = self.loaded();
        for served in loaded {
            let record = self
                .registry
                .version(&served.name, &VersionRef::Number(served.version))
                .await?;
            let threshold = record.metadata.threshold;
            if threshold != served.model.threshold() {
                served.model.set_threshold(threshold)?;
                tracing::info!(model = %served.name, version = served.version, threshold, "decision threshold changed");
            }
        }
        Ok(())
    }

    /// Changes a version's decision threshold; loaded copies follow at once.
    pub async fn set_threshold(
        &self,
        name: &str,
        version: u32,
        threshold: f64,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        let record = self
            .registry
            .set_threshold(name, version, threshold, actor)
            .await?;
        self.refresh().await?;
        Ok(record)
    }

    /// Versions loaded into and dropped from the cache since start.
    pub fn cache_events(&self) -> (u64, u64) {
        lock(&self.cache).events()
    }

    /// Every version in memory, cached or held by an alias, once each.
    pub fn loaded(&self) -> Vec<Arc<ServedModel>> {
        let mut loaded = lock(&self.cache).all();
        loaded.extend(self.aliases.load().values().flat_map(|aliases| {
            aliases.values().filter_map(|target| match target {
                AliasTarget::Loaded(served) => Some(Arc::clone(served)),
                AliasTarget::Version { .. } => None,
            })
        }));
        loaded.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
        loaded.dedup_by(|a, b| Arc::ptr_eq(a, b));
        loaded
    }

    /// Versions of `name` in memory: cached, or held by an alias.
    pub fn loaded_versions(&self, name: &str) -> Vec<u32> {
        let mut versions = lock(&self.cache).versions_of(name);
        if let Some(aliases) = self.aliases.load().get(name) {
            versions.extend(aliases.values().filter_map(|target| match target {
                AliasTarget::Loaded(served) => Some(served.version),
                AliasTarget::Version { .. } => None,
            }));
        }
        versions.sort_unstable();
        versions.dedup();
        versions
    }

    /// Drops the cached versions of `name`; versions an alias serves stay loaded, since
    /// requests by alias must not fail. Returns the versions dropped.
    pub fn unload(&self, name: &str) -> Vec<u32> {
        lock(&self.cache).remove_model(name)
    }

    /// The registry change marker as of the last refresh.
    pub fn generation(&self) -> i64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Names a version's reference dataset and makes the change visible at once.
    pub async fn set_reference_dataset(
        &self,
        name: &str,
        version: u32,
        dataset: &str,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        let record = self
            .registry
            .set_reference_dataset(name, version, dataset, actor)
            .await?;
        self.refresh().await?;
        Ok(record)
    }

    /// The registry record of the version a request names.
    pub async fn version_record(
        &self,
        selector: &ModelSelector,
    ) -> Result<VersionRecord, ServiceError> {
        let name = self.model_name(&selector.name);
        Ok(self.registry.version(name, &selector.version).await?)
    }

    /// The version a request names, and the numbers of its model's unarchived versions.
    pub async fn resolve_listed(
        &self,
        selector: &ModelSelector,
    ) -> Result<(Arc<ServedModel>, Vec<u32>), ServiceError> {
        let served = self.resolve(selector).await?;
        let versions = self
            .registry
            .list_versions(&served.name, false)
            .await?
            .iter()
            .map(|v| v.version)
            .collect();
        Ok((served, versions))
    }

    /// Every unarchived version of every model, and whether it is in memory.
    pub async fn version_index(&self) -> Result<Vec<IndexedVersion>, ServiceError> {
        let mut index = Vec::new();
        for model in self.registry.list_models().await? {
            let loaded = self.loaded_versions(&model.name);
            for record in self.registry.list_versions(&model.name, false).await? {
                index.push(IndexedVersion {
                    loaded: loaded.contains(&record.version),
                    name: model.name.clone(),
                    version: record.version,
                });
            }
        }
        Ok(index)
    }

    /// The record of the version `alias` points at, if it points anywhere.
    pub async fn alias_holder(&self, name: &str, alias: &str) -> Option<VersionRecord> {
        self.registry
            .version(name, &VersionRef::Alias(alias.to_owned()))
            .await
            .ok()
    }

    pub async fn list_models(&self) -> Result<Vec<ModelSummary>, ServiceError> {
        Ok(self.registry.list_models().await?)
    }

    pub async fn list_versions(
        &self,
        name: &str,
        include_archived: bool,
    ) -> Result<Vec<VersionRecord>, ServiceError> {
        Ok(self.registry.list_versions(name, include_archived).await?)
    }

    pub async fn archive(
        &self,
        name: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<VersionRecord, ServiceError> {
        Ok(self.registry.archive(name, version, actor).await?)
    }

    /// A place for an upload's bytes until its registration commits them.
    pub async fn stage(&self, kind: ArtifactKind, limit: u64) -> Result<Staging, ServiceError> {
        Ok(self.registry.stage(kind, limit).await?)
    }

    pub async fn upload_dataset(
        &self,
        dataset: NewDataset,
        staged: Staged,
        actor: &Actor,
    ) -> Result<DatasetRecord, ServiceError> {
        Ok(self.registry.upload_dataset(dataset, staged, actor).await?)
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, ServiceError> {
        Ok(self.registry.list_datasets().await?)
    }

    pub async fn dataset(&self, name: &str) -> Result<DatasetRecord, ServiceError> {
        Ok(self.registry.dataset(name).await?)
    }

    /// A page of the audit log, newest first: at most `limit` entries (default 100, at
    /// most 1000) older than `before_id`, of `name` when it is not empty.
    pub async fn audit_page(
        &self,
        name: &str,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<AuditPage, ServiceError> {
        let limit = match limit {
            0 => 100,
            n => n.min(1000),
        };
        let name = (!name.is_empty()).then_some(name);
        // One entry more than asked tells whether an older page exists.
        let mut entries = self.registry.audit_page(name, before_id, limit + 1).await?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_before_id = more.then(|| entries.last().map(|e| e.id)).flatten();
        Ok(AuditPage {
            entries,
            next_before_id,
        })
    }

    /// The evaluations of `name` (of one version when given), newest first.
    pub async fn evaluations(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Vec<EvaluationRecord>, ServiceError> {
        Ok(self.registry.evaluations(name, version).await?)
    }

    pub async fn log_predictions(&self, rows: &[LoggedPrediction]) -> Result<(), ServiceError> {
        Ok(self.registry.log_predictions(rows).await?)
    }

    pub async fn delete_predictions_before(&self, millis: i64) -> Result<u64, ServiceError> {
        Ok(self.registry.delete_predictions_before(millis).await?)
    }

    /// Records outcomes once each; how many label a prediction logged at most
    /// `horizon_millis` before them.
    pub async fn record_outcomes(
        &self,
        outcomes: &[OutcomeRecord],
        horizon_millis: i64,
    ) -> Result<u64, ServiceError> {
        Ok(self
            .registry
            .record_outcomes(outcomes, horizon_millis)
            .await?)
    }

    /// Visits a version's logged predictions by customer and time, each with its label.
    pub async fn scan_labelled_predictions(
        &self,
        window: &PredictionWindow,
        visit: impl FnMut(LabelledPrediction),
    ) -> Result<(), ServiceError> {
        Ok(self
            .registry
            .scan_labelled_predictions(window, visit)
            .await?)
    }

    /// The ROC AUC of each evaluated version's latest evaluation.
    pub async fn latest_roc_auc(&self, name: &str) -> Result<BTreeMap<u32, f64>, ServiceError> {
        Ok(self.registry.latest_roc_auc(name).await?)
    }

    pub async fn record_evaluation(
        &self,
        evaluation: NewEvaluation,
        actor: &Actor,
    ) -> Result<EvaluationRecord, ServiceError> {
        Ok(self.registry.record_evaluation(evaluation, actor).await?)
    }

    pub async fn shadows(&self) -> Result<Vec<ShadowConfig>, ServiceError> {
        Ok(self.registry.shadows().await?)
    }

    pub async fn set_shadow(
        &self,
        config: &ShadowConfig,
        actor: &Actor,
    ) -> Result<ShadowConfig, ServiceError> {
        Ok(self.registry.set_shadow(config, actor).await?)
    }

    pub async fn delete_shadow(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<(), ServiceError> {
        Ok(self.registry.delete_shadow(name, alias, actor).await?)
    }

    pub async fn record_shadow_scores(
        &self,
        config: &ShadowConfig,
        pairs: &[ShadowScore],
    ) -> Result<(), ServiceError> {
        Ok(self.registry.record_shadow_scores(config, pairs).await?)
    }

    /// Whether this process seeds the registry: true once, for the first replica to ask
    /// of a registry where nothing was ever registered.
    pub async fn claim_seeding(&self, actor: &Actor) -> Result<bool, ServiceError> {
        Ok(self.registry.claim_seeding(actor).await?)
    }

    /// Closes the registry's connections.
    pub async fn close(&self) {
        self.registry.close().await;
    }

    /// The reference dataset a version names, or why it has none.
    pub async fn reference_dataset(
        &self,
        served: &ServedModel,
    ) -> Result<DatasetRecord, ServiceError> {
        let record = self
            .registry
            .version(&served.name, &VersionRef::Number(served.version))
            .await?;
        let name = record.metadata.reference_dataset;
        if name.is_empty() {
            return Err(ServiceError::NoReferenceDataset {
                name: served.name.clone(),
                version: served.version,
            });
        }
        Ok(self.registry.dataset(&name).await?)
    }

    /// The first `limit` rows of a dataset as customers of this version, by its raw
    /// feature names, with their labels.
    pub async fn dataset_customers(
        &self,
        served: &ServedModel,
        dataset: &DatasetRecord,
        limit: usize,
    ) -> Result<(Vec<Customer>, Vec<bool>), ServiceError> {
        let mapping = column_mapping(served, dataset)?;
        let rows = self.registry.dataset_rows(dataset, limit).await?;
        Ok((customers(&mapping, &rows), rows.churned))
    }

    /// A dataset's rows in chunks of `chunk_rows`, read ahead of the caller on the
    /// blocking pool, to become customers of each of `versions`: every version is checked
    /// against the dataset's columns before the first row is read.
    pub async fn scan_dataset(
        &self,
        versions: &[Arc<ServedModel>],
        dataset: &DatasetRecord,
        chunk_rows: usize,
    ) -> Result<DatasetScan, ServiceError> {
        let mappings = versions
            .iter()
            .map(|served| column_mapping(served, dataset))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DatasetScan {
            mappings: Arc::new(mappings),
            rows: self
                .registry
                .dataset_chunks(dataset, chunk_rows, SCAN_AHEAD_CHUNKS)
                .await?,
        })
    }
}

/// A dataset being read chunk by chunk for several versions.
#[derive(Debug)]
pub struct DatasetScan {
    mappings: Arc<Vec<ColumnMapping>>,
    rows: mpsc::Receiver<Result<DatasetRows, RegistryError>>,
}

impl DatasetScan {
    /// The next chunk, or `None` after the last.
    pub async fn next(&mut self) -> Option<Result<DatasetChunk, ServiceError>> {
        let read = self.rows.recv().await?;
        Some(read.map_err(ServiceError::from).map(|rows| DatasetChunk {
            rows,
            mappings: Arc::clone(&self.mappings),
        }))
    }
}

/// One chunk of a scan, as read: turning it into customers is CPU work for the blocking
/// pool.
#[derive(Debug)]
pub struct DatasetChunk {
    rows: DatasetRows,
    mappings: Arc<Vec<ColumnMapping>>,
}

impl DatasetChunk {
    pub fn labels(&self) -> &[bool] {
        &self.rows.churned
    }

    /// The chunk's rows as customers of each version, in the order the versions were
    /// given.
    pub fn customers(&self) -> Vec<Vec<Customer>> {
        self.mappings
            .iter()
            .map(|mapping| customers(mapping, &self.rows))
            .collect()
    }
}

/// One registered version and whether it is in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedVersion {
    pub name: String,
    pub version: u32,
    pub loaded: bool,
}

/// How a dataset's columns feed a version's raw features; the missing features when
/// they do not.
fn column_mapping(
    served: &ServedModel,
    dataset: &DatasetRecord,
) -> Result<ColumnMapping, ServiceError> {
    ColumnMapping::new(served.model.schema(), &dataset.columns, None).map_err(|missing| {
        ServiceError::DatasetMismatch {
            dataset: dataset.name.clone(),
            model: served.name.clone(),
            version: served.version,
            missing,
        }
    })
}

fn customers(mapping: &ColumnMapping, rows: &DatasetRows) -> Vec<Customer> {
    rows.rows
        .iter()
        .map(|fields| mapping.customer(fields))
        .collect()
}

async fn load_model(
    runtime: &'static OnnxRuntime,
    bytes: Vec<u8>,
    options: ModelOptions,
) -> Result<Result<Model, churn_engine::EngineError>, ServiceError> {
    tokio::task::spawn_blocking(move || Model::load(runtime, &bytes, &options))
        .await
        .map_err(|e| ServiceError::TaskFailed(e.to_string()))
}

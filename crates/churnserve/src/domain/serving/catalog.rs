//! The catalog: the model lifecycle, load, resolve and swap. It owns the default-model
//! rule and the served models (registry versions loaded into the engine on demand, a
//! bounded least-recently-used cache of them, and a lock-free alias table that an atomic
//! swap replaces whenever the registry changes), and the writes that change what is
//! served (registration, aliases, thresholds, reference datasets). Every other concern
//! reaches the registry through its own module (`records`, the prediction log,
//! performance, shadows). A request takes an `Arc` of its version, so a swap never
//! disturbs a request in flight: it finishes on the version it started with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use churn_engine::{FeatureKind, Model, ModelOptions, OnnxRuntime};
use churn_registry::{
    Actor, FeatureRecord, NewVersion, Registry, Staged, TrafficSplit, VersionMetadata,
    VersionRecord, VersionRef,
};

use crate::domain::error::ServiceError;
use crate::domain::serving::served::{ModelCache, ModelSelector, ServedModel};
use crate::sync::lock;

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

/// One alias as served: its target (a split's first arm) and its split, if any.
#[derive(Debug, Clone)]
struct AliasEntry {
    /// The alias's name, shared by every request through it for the prediction log.
    alias: Arc<str>,
    target: AliasTarget,
    split: Option<SplitTarget>,
}

type AliasTable = HashMap<String, HashMap<String, AliasEntry>>;

mod splits;
use splits::SplitTarget;

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
    registry: Arc<Registry>,
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
    /// The empty alias of a request that names a version.
    by_number: Arc<str>,
}

impl Catalog {
    pub async fn open(
        registry: Arc<Registry>,
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
            by_number: Arc::from(""),
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

    /// The version a request is answered by; through a split, its first arm.
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
                    .map(|entry| entry.target.clone());
                self.alias_target(name, selector, target).await
            }
        }
    }

    async fn alias_target(
        &self,
        name: &str,
        selector: &ModelSelector,
        target: Option<AliasTarget>,
    ) -> Result<Arc<ServedModel>, ServiceError> {
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
        let mut splits: HashMap<(String, String), TrafficSplit> = self
            .registry
            .traffic_splits(None)
            .await?
            .into_iter()
            .map(|split| ((split.name.clone(), split.alias.clone()), split))
            .collect();
        let mut table = AliasTable::new();
        let mut behind = Vec::new();
        for record in self.registry.aliases().await? {
            let before = previous
                .get(&record.name)
                .and_then(|aliases| aliases.get(&record.alias));
            let target = if self.options.eager_aliases {
                match self.load(&record.name, record.version).await {
                    Ok(served) => AliasTarget::Loaded(served),
                    Err(error) => {
                        let serving = match before.map(|entry| &entry.target) {
                            Some(AliasTarget::Loaded(served)) => Some(Arc::clone(served)),
                            _ => None,
                        };
                        behind.push(self.behind(
                            &record.name,
                            &record.alias,
                            serving.as_ref(),
                            record.version,
                            &error,
                        ));
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
            let split = match splits.remove(&(record.name.clone(), record.alias.clone())) {
                Some(split) => Some(self.split_target(split, before, &mut behind).await),
                None => None,
            };
            let entry = AliasEntry {
                alias: Arc::from(record.alias.as_str()),
                target,
                split,
            };
            table
                .entry(record.name)
                .or_default()
                .insert(record.alias, entry);
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
        loaded.extend(
            self.aliases
                .load()
                .values()
                .flat_map(|aliases| aliases.values().flat_map(AliasEntry::loaded)),
        );
        loaded.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
        loaded.dedup_by(|a, b| Arc::ptr_eq(a, b));
        loaded
    }

    /// Versions of `name` in memory: cached, or held by an alias.
    pub fn loaded_versions(&self, name: &str) -> Vec<u32> {
        let mut versions = lock(&self.cache).versions_of(name);
        if let Some(aliases) = self.aliases.load().get(name) {
            versions.extend(
                aliases
                    .values()
                    .flat_map(AliasEntry::loaded)
                    .map(|served| served.version),
            );
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

    /// Closes the registry's connections.
    pub async fn close(&self) {
        self.registry.close().await;
    }
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

//! A loaded model version, the names a request picks one by, and the bounded cache of
//! versions loaded besides the aliased ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use churn_engine::Model;
use churn_explain::Background;
use churn_registry::VersionRef;

/// The alias a reference with neither version nor alias means.
const PRODUCTION_ALIAS: &str = "production";

/// The alias a request means: the one it names, or `production`.
pub fn alias_or_production(alias: &str) -> &str {
    if alias.is_empty() {
        PRODUCTION_ALIAS
    } else {
        alias
    }
}

/// One loaded model version and the identity it answers with.
#[derive(Debug)]
pub struct ServedModel {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub model: Model,
    /// The scored background of its reference dataset, once an explanation needed it.
    pub background: Mutex<Option<CachedBackground>>,
}

/// A background and what it was built from.
#[derive(Debug, Clone)]
pub struct CachedBackground {
    /// The registry generation at which the version's reference was last read.
    pub generation: i64,
    pub dataset_sha256: String,
    pub background: Arc<Background>,
}

impl ServedModel {
    pub(super) fn new(name: String, version: u32, sha256: String, model: Model) -> ServedModel {
        ServedModel {
            name,
            version,
            sha256,
            model,
            background: Mutex::new(None),
        }
    }
}

/// Which model a request asks for, already checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelector {
    /// Empty: the default model.
    pub name: String,
    pub version: VersionRef,
}

impl ModelSelector {
    /// The version holding `alias` of model `name`; an empty alias means `production`,
    /// an empty name the default model.
    pub fn by_alias(name: impl Into<String>, alias: &str) -> ModelSelector {
        ModelSelector {
            name: name.into(),
            version: VersionRef::Alias(alias_or_production(alias).to_owned()),
        }
    }

    /// Version `version` of model `name`; an empty name means the default model.
    pub fn by_number(name: impl Into<String>, version: u32) -> ModelSelector {
        ModelSelector {
            name: name.into(),
            version: VersionRef::Number(version),
        }
    }
}

#[derive(Debug, Default)]
/// The versions loaded besides the aliased ones, least recently used first out.
pub(super) struct ModelCache {
    /// Name, then version, to the model and when it was last used. Nested so that a
    /// lookup borrows the request's name instead of allocating a key.
    entries: HashMap<String, HashMap<u32, (Arc<ServedModel>, u64)>>,
    len: usize,
    clock: u64,
    /// Versions put in and dropped since start, for the metrics.
    loads: u64,
    unloads: u64,
}

impl ModelCache {
    pub(super) fn get(&mut self, name: &str, version: u32) -> Option<Arc<ServedModel>> {
        self.clock += 1;
        let (served, last_used) = self.entries.get_mut(name)?.get_mut(&version)?;
        *last_used = self.clock;
        Some(Arc::clone(served))
    }

    /// Keeps `served`, evicting the least recently used versions beyond `capacity`.
    pub(super) fn insert(&mut self, served: Arc<ServedModel>, capacity: usize) {
        self.clock += 1;
        let versions = self.entries.entry(served.name.clone()).or_default();
        if versions
            .insert(served.version, (served, self.clock))
            .is_none()
        {
            self.len += 1;
            self.loads += 1;
        }
        while self.len > capacity {
            let oldest = self
                .entries
                .iter()
                .flat_map(|(name, versions)| {
                    versions
                        .iter()
                        .map(move |(version, (_, used))| (*used, name, *version))
                })
                .min()
                .map(|(_, name, version)| (name.clone(), version));
            let Some((name, version)) = oldest else { break };
            tracing::info!(model = %name, version, "model evicted from the session cache");
            if let Some(versions) = self.entries.get_mut(&name) {
                versions.remove(&version);
                if versions.is_empty() {
                    self.entries.remove(&name);
                }
            }
            self.len -= 1;
            self.unloads += 1;
        }
    }

    /// Versions put in and dropped since start.
    pub(super) fn events(&self) -> (u64, u64) {
        (self.loads, self.unloads)
    }

    /// Every cached version.
    pub(super) fn all(&self) -> Vec<Arc<ServedModel>> {
        self.entries
            .values()
            .flat_map(|versions| versions.values().map(|(served, _)| Arc::clone(served)))
            .collect()
    }

    /// The cached versions of `name`.
    pub(super) fn versions_of(&self, name: &str) -> Vec<u32> {
        self.entries
            .get(name)
            .map(|versions| versions.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Drops the cached versions of `name` and returns them.
    pub(super) fn remove_model(&mut self, name: &str) -> Vec<u32> {
        let dropped: Vec<u32> = self
            .entries
            .remove(name)
            .map(|versions| versions.into_keys().collect())
            .unwrap_or_default();
        self.len -= dropped.len();
        self.unloads += dropped.len() as u64;
        dropped
    }
}

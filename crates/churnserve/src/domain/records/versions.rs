//! The registry's records of models and versions, as the adapters and views read and
//! change them: listings, a version's record, archival, the audit log and the stored
//! evaluations. Serving state (what is loaded) comes from the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use churn_registry::{
    Actor, AuditEntry, EvaluationRecord, ModelSummary, NewEvaluation, Registry, VersionRecord,
    VersionRef,
};

use crate::domain::error::ServiceError;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::served::{ModelSelector, ServedModel};

/// A page of the audit log, newest first, and where the next (older) page starts.
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before_id: Option<i64>,
}

/// One registered version and whether it is in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedVersion {
    pub name: String,
    pub version: u32,
    pub loaded: bool,
}

#[derive(Debug, Clone)]
pub struct Versions {
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
}

impl Versions {
    pub fn new(registry: Arc<Registry>, catalog: Arc<Catalog>) -> Versions {
        Versions { registry, catalog }
    }

    /// The registry record of the version a request names.
    pub async fn version_record(
        &self,
        selector: &ModelSelector,
    ) -> Result<VersionRecord, ServiceError> {
        let name = self.catalog.model_name(&selector.name);
        Ok(self.registry.version(name, &selector.version).await?)
    }

    /// The version a request names, and the numbers of its model's unarchived versions.
    pub async fn resolve_listed(
        &self,
        selector: &ModelSelector,
    ) -> Result<(Arc<ServedModel>, Vec<u32>), ServiceError> {
        let served = self.catalog.resolve(selector).await?;
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
            let loaded = self.catalog.loaded_versions(&model.name);
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
}

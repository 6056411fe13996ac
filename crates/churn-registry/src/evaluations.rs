//! Stored evaluations and the decision threshold: what a version scored on which data, and
//! the threshold it decides churn at, both changed only with an audit entry.

use std::collections::BTreeMap;

use serde_json::json;

use crate::records::{Actor, EvaluationRecord, NewEvaluation, VersionRecord, VersionRef};
use crate::{Registry, RegistryError, now_millis};

#[derive(sqlx::FromRow)]
struct EvaluationRow {
    evaluation_id: String,
    name: String,
    version: i64,
    model_sha256: String,
    dataset: String,
    dataset_sha256: String,
    threshold: f64,
    metrics: String,
    created_at: i64,
}

impl Registry {
    /// Stores an evaluation of an existing version.
    pub async fn record_evaluation(
        &self,
        new: NewEvaluation,
        actor: &Actor,
    ) -> Result<EvaluationRecord, RegistryError> {
        self.version(&new.name, &VersionRef::Number(new.version))
            .await?;
        let evaluation_id = uuid::Uuid::new_v4().to_string();
        self.change(actor, async |change| {
            sqlx::query(
                "INSERT INTO evaluations (evaluation_id, name, version, dataset, dataset_sha256, threshold, metrics, created_at, roc_auc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&evaluation_id)
            .bind(&new.name)
            .bind(i64::from(new.version))
            .bind(&new.dataset)
            .bind(&new.dataset_sha256)
            .bind(new.threshold)
            .bind(&new.metrics_json)
            .bind(now_millis())
            .bind(new.roc_auc)
            .execute(change.db())
            .await?;
            change
                .audit(
                    "record_evaluation",
                    &new.name,
                    json!({"evaluation_id": evaluation_id, "version": new.version, "dataset": new.dataset}),
                )
                .await
        })
        .await?;
        let mut found = self.evaluations(&new.name, Some(new.version)).await?;
        found.retain(|e| e.evaluation_id == evaluation_id);
        found
            .pop()
            .ok_or_else(|| RegistryError::Storage("the stored evaluation vanished".to_owned()))
    }

    /// Evaluations of a model (every model when `name` is empty), or of one version,
    /// newest first.
    pub async fn evaluations(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Vec<EvaluationRecord>, RegistryError> {
        if !name.is_empty() {
            self.require_model(name).await?;
        }
        let rows: Vec<EvaluationRow> = sqlx::query_as(
            "SELECT e.evaluation_id, e.name, e.version, v.sha256 AS model_sha256, e.dataset, e.dataset_sha256, \
                    e.threshold, e.metrics, e.created_at \
             FROM evaluations e JOIN model_versions v ON v.name = e.name AND v.version = e.version \
             WHERE ($1 = '' OR e.name = $2) AND ($3 IS NULL OR e.version = $4) \
             ORDER BY e.created_at DESC, e.rowid DESC",
        )
        .bind(name)
        .bind(name)
        .bind(version.map(i64::from))
        .bind(version.map(i64::from))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| EvaluationRecord {
                evaluation_id: row.evaluation_id,
                name: row.name,
                version: row.version as u32,
                model_sha256: row.model_sha256,
                dataset: row.dataset,
                dataset_sha256: row.dataset_sha256,
                threshold: row.threshold,
                metrics_json: row.metrics,
                created_at_millis: row.created_at,
            })
            .collect())
    }

    /// The ROC AUC of each evaluated version's latest evaluation, read without the metrics.
    pub async fn latest_roc_auc(&self, name: &str) -> Result<BTreeMap<u32, f64>, RegistryError> {
        self.require_model(name).await?;
        let rows: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT version, roc_auc FROM evaluations WHERE name = $1 \
             ORDER BY created_at DESC, rowid DESC",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut latest = BTreeMap::new();
        for (version, roc_auc) in rows {
            latest.entry(version as u32).or_insert(roc_auc);
        }
        Ok(latest)
    }

    /// Changes the probability at or above which a version predicts churn.
    pub async fn set_threshold(
        &self,
        name: &str,
        version: u32,
        threshold: f64,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(RegistryError::Invalid(format!(
                "threshold {threshold} must be within (0, 1)"
            )));
        }
        let before = self.version(name, &VersionRef::Number(version)).await?;
        let update = sqlx::query(
            "UPDATE model_versions SET threshold = $1 WHERE name = $2 AND version = $3",
        )
        .bind(threshold)
        .bind(name)
        .bind(i64::from(version));
        let detail =
            json!({"version": version, "from": before.metadata.threshold, "to": threshold});
        self.update_version(name, version, update, "set_threshold", detail, actor)
            .await
    }
}

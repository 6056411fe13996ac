//! Model versions: registration under the next number of a name, reads, listings,
//! archival, the reference dataset, and the verified bytes of a version.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use sqlx::Any;

use crate::aliases::move_alias;
use crate::artifacts::{ArtifactKind, Staged, sha256_hex};
use crate::records::{Actor, ModelSummary, NewVersion, VersionRecord, VersionRef};
use crate::rows::{VersionRow, to_json};
use crate::{Registry, RegistryError, now_millis, validate_name};

impl Registry {
    /// Registers a validated version under the next version number of its name, moving
    /// the requested aliases in the same transaction. On failure nothing remains.
    pub async fn register(
        &self,
        new: NewVersion,
        staged: Staged,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        validate_name("model name", &new.name)?;
        for alias in &new.aliases {
            validate_name("alias", alias)?;
        }
        let mut staged = staged;
        self.artifacts.upload(&mut staged).await?;
        let inserted = self.insert_version(&new, &mut staged, actor).await;
        if inserted.is_err() {
            self.remove_unreferenced(ArtifactKind::Model, staged.sha256())
                .await?;
        }
        self.artifacts.discard(staged).await;
        let version = inserted?;
        self.version(&new.name, &VersionRef::Number(version)).await
    }

    /// Inserts the rows and moves the artifact into place while holding the database's
    /// write lock, so that no other process's garbage collection runs between the two.
    async fn insert_version(
        &self,
        new: &NewVersion,
        staged: &mut Staged,
        actor: &Actor,
    ) -> Result<u32, RegistryError> {
        let (sha256, size) = (staged.sha256().to_owned(), staged.size());
        self.change(actor, async |change| {
            let now = now_millis();
            sqlx::query(
                "INSERT INTO models (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&new.name)
            .bind(now)
            .execute(change.db())
            .await?;
            let version: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = $1",
            )
            .bind(&new.name)
            .fetch_one(change.db())
            .await?;
            sqlx::query(
                "INSERT INTO model_versions (name, version, sha256, size_bytes, created_at, description, tags, feature_names, \
                 features, class_labels, positive_class, threshold, risk_band_cuts, reference_dataset, producer) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&new.name)
            .bind(version)
            .bind(&sha256)
            .bind(size as i64)
            .bind(now)
            .bind(&new.metadata.description)
            .bind(to_json(&new.metadata.tags))
            .bind(to_json(&new.metadata.feature_names))
            .bind(to_json(&new.metadata.features))
            .bind(to_json(&new.metadata.class_labels))
            .bind(&new.metadata.positive_class)
            .bind(new.metadata.threshold)
            .bind(to_json(&new.metadata.risk_band_cuts))
            .bind(&new.metadata.reference_dataset)
            .bind(&new.metadata.producer)
            .execute(change.db())
            .await?;
            change
                .audit(
                    "register_model",
                    &new.name,
                    json!({"version": version, "sha256": sha256, "size_bytes": size}),
                )
                .await?;
            for alias in &new.aliases {
                move_alias(change, &new.name, alias, version).await?;
            }
            self.artifacts.persist(staged).await?;
            Ok(version as u32)
        })
        .await
    }

    /// One version by number or alias.
    pub async fn version(
        &self,
        name: &str,
        reference: &VersionRef,
    ) -> Result<VersionRecord, RegistryError> {
        let number = match reference {
            VersionRef::Number(number) => *number,
            VersionRef::Alias(alias) => self.alias_target(name, alias).await?,
        };
        let row: Option<VersionRow> =
            sqlx::query_as("SELECT * FROM model_versions WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(i64::from(number))
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            self.require_model(name).await?;
            return Err(RegistryError::VersionNotFound {
                name: name.to_owned(),
                version: number,
            });
        };
        let aliases = self.aliases_of(name).await?;
        row.into_record(&aliases)
    }

    pub(crate) async fn require_model(&self, name: &str) -> Result<(), RegistryError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM models WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        exists
            .map(|_| ())
            .ok_or_else(|| RegistryError::ModelNotFound(name.to_owned()))
    }

    pub async fn list_models(&self) -> Result<Vec<ModelSummary>, RegistryError> {
        let latest: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, MAX(version) FROM model_versions GROUP BY name ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut aliases: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
        for record in self.aliases().await? {
            aliases
                .entry(record.name)
                .or_default()
                .insert(record.alias, record.version);
        }
        Ok(latest
            .into_iter()
            .map(|(name, latest)| ModelSummary {
                aliases: aliases.remove(&name).unwrap_or_default(),
                name,
                latest_version: latest as u32,
            })
            .collect())
    }

    /// The versions of `name`, oldest first.
    pub async fn list_versions(
        &self,
        name: &str,
        include_archived: bool,
    ) -> Result<Vec<VersionRecord>, RegistryError> {
        self.require_model(name).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT * FROM model_versions WHERE name = $1 AND (archived = 0 OR $2) ORDER BY version",
        )
        .bind(name)
        .bind(include_archived)
        .fetch_all(&self.pool)
        .await?;
        let aliases = self.aliases_of(name).await?;
        rows.into_iter()
            .map(|row| row.into_record(&aliases))
            .collect()
    }

    /// Archives a version; refused while an alias points at it.
    pub async fn archive(
        &self,
        name: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        let record = self.version(name, &VersionRef::Number(version)).await?;
        if !record.aliases.is_empty() {
            return Err(RegistryError::Conflict(format!(
                "model {name:?} version {version} is still the target of alias(es) {}; move or delete them first",
                record.aliases.join(", ")
            )));
        }
        if record.archived {
            return Ok(record);
        }
        self.change(actor, async |change| {
            if let Some(alias) = crate::splits::split_taking(change, name, version).await? {
                return Err(RegistryError::Conflict(format!(
                    "model {name:?} version {version} is an arm of the traffic split of alias {alias:?}; end the split (SetAlias on that alias) first"
                )));
            }
            // Re-checked inside the transaction: an alias may have moved here since the read.
            let pointing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM aliases WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(i64::from(version))
                    .fetch_one(change.db())
                    .await?;
            if pointing > 0 {
                return Err(RegistryError::Conflict(format!(
                    "model {name:?} version {version} just became the target of an alias; move it first"
                )));
            }
            sqlx::query("UPDATE model_versions SET archived = 1 WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(i64::from(version))
                .execute(change.db())
                .await?;
            change
                .audit("archive_version", name, json!({"version": version}))
                .await
        })
        .await?;
        self.version(name, &VersionRef::Number(version)).await
    }

    /// Names the dataset a version's explanations are measured against; empty clears it.
    pub async fn set_reference_dataset(
        &self,
        name: &str,
        version: u32,
        dataset: &str,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        self.version(name, &VersionRef::Number(version)).await?;
        let sha256 = if dataset.is_empty() {
            String::new()
        } else {
            self.dataset(dataset).await?.sha256
        };
        let update = sqlx::query(
            "UPDATE model_versions SET reference_dataset = $1 WHERE name = $2 AND version = $3",
        )
        .bind(dataset)
        .bind(name)
        .bind(i64::from(version));
        let detail = json!({"version": version, "dataset": dataset, "sha256": sha256});
        self.update_version(
            name,
            version,
            update,
            "set_reference_dataset",
            detail,
            actor,
        )
        .await
    }

    /// Runs `update` (an UPDATE of one version's row) in a write transaction with its
    /// audit entry, then reads the version back.
    pub(crate) async fn update_version<'q>(
        &self,
        name: &str,
        version: u32,
        update: sqlx::query::Query<'q, Any, <Any as sqlx::Database>::Arguments>,
        action: &str,
        detail: serde_json::Value,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        self.change(actor, async |change| {
            update.execute(change.db()).await?;
            change.audit(action, name, detail).await
        })
        .await?;
        self.version(name, &VersionRef::Number(version)).await
    }

    /// The ONNX bytes of a version, checked against the hash it was registered with.
    pub async fn model_bytes(&self, record: &VersionRecord) -> Result<Vec<u8>, RegistryError> {
        let corrupt = |problem: String| RegistryError::Corrupt {
            name: record.name.clone(),
            version: record.version,
            sha256: record.sha256.clone(),
            problem,
        };
        let path = match self
            .artifacts
            .local_file(ArtifactKind::Model, &record.sha256)
            .await
        {
            Ok(path) => path,
            Err(RegistryError::Storage(problem)) => return Err(corrupt(problem)),
            Err(other) => return Err(other),
        };
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| corrupt(format!("cannot be read ({e})")))?;
        let actual = sha256_hex(&bytes);
        if actual != record.sha256 {
            self.artifacts
                .forget_cached(ArtifactKind::Model, &record.sha256)
                .await;
            return Err(corrupt(format!(
                "has changed on disk (its SHA-256 is now {actual})"
            )));
        }
        Ok(bytes)
    }
}

//! The churn model registry: models, versions, aliases, datasets and evaluations in a
//! SQLite file (WAL, busy timeout, foreign keys, embedded forward-only migrations), with
//! an append-only audit log of every change, and the artifacts themselves stored by
//! SHA-256 beside the database. No gRPC here: plain records in, plain records out.

mod artifacts;
mod check;
mod datasets;
mod error;
mod evaluations;
mod records;
mod shadows;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

pub use artifacts::{ArtifactKind, Staged, Staging, sha256_hex};
pub use check::{Finding, Severity, check};
pub use datasets::{CsvSummary, summarize_csv};
pub use error::RegistryError;
pub use records::{
    Actor, AliasRecord, DatasetRecord, DatasetRows, EvaluationRecord, FeatureRecord, ModelSummary,
    NewDataset, NewEvaluation, NewVersion, VersionMetadata, VersionRecord, VersionRef,
};
pub use shadows::{ShadowConfig, ShadowScore};

use artifacts::ArtifactStore;

const DATABASE_FILE: &str = "registry.db";
const ARTIFACT_DIR: &str = "artifacts";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_millis: i64,
    pub actor: String,
    pub action: String,
    pub name: String,
    pub detail: String,
}

/// The registry in a data directory.
#[derive(Debug)]
pub struct Registry {
    pool: SqlitePool,
    artifacts: ArtifactStore,
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Registry {
    /// Opens (creating if needed) the registry in `data_dir`, runs the migrations, and
    /// removes uploads a crash left unfinished and artifacts no row refers to.
    pub async fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        tokio::fs::create_dir_all(data_dir).await?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        prove_writable(&pool).await?;
        let registry = Registry {
            pool,
            artifacts: ArtifactStore::open(data_dir.join(ARTIFACT_DIR)).await?,
        };
        registry.collect_garbage().await?;
        Ok(registry)
    }

    /// Starts an upload of at most `limit` bytes.
    pub async fn stage(&self, kind: ArtifactKind, limit: u64) -> Result<Staging, RegistryError> {
        self.artifacts.stage(kind, limit).await
    }

    /// Whether no model has ever been registered.
    pub async fn is_empty(&self) -> Result<bool, RegistryError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM models")
            .fetch_one(&self.pool)
            .await?;
        Ok(count == 0)
    }

    /// Changes whenever the registry changes, in this process or another: every change
    /// appends to the audit log.
    pub async fn change_marker(&self) -> Result<i64, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_log")
                .fetch_one(&self.pool)
                .await?,
        )
    }

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
        let sha256 = staged.sha256().to_owned();
        let inserted = self.insert_version(&new, staged, actor).await;
        if inserted.is_err() {
            self.remove_unreferenced(ArtifactKind::Model, &sha256)
                .await?;
        }
        let version = inserted?;
        self.version(&new.name, &VersionRef::Number(version)).await
    }

    /// Inserts the rows and moves the artifact into place while holding the database's
    /// write lock, so that no other process's garbage collection runs between the two.
    async fn insert_version(
        &self,
        new: &NewVersion,
        staged: Staged,
        actor: &Actor,
    ) -> Result<u32, RegistryError> {
        let (sha256, size) = (staged.sha256().to_owned(), staged.size());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?",
        )
        .bind(&new.name)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO model_versions (name, version, sha256, size_bytes, created_at, description, tags, feature_names, \
             features, class_labels, positive_class, threshold, risk_band_cuts, reference_dataset, producer) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "register_model",
            &new.name,
            json!({"version": version, "sha256": sha256, "size_bytes": size}),
        )
        .await?;
        for alias in &new.aliases {
            move_alias(&mut tx, actor, &new.name, alias, version).await?;
        }
        self.artifacts.persist(staged).await?;
        tx.commit().await?;
        Ok(version as u32)
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
            sqlx::query_as("SELECT * FROM model_versions WHERE name = ? AND version = ?")
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

    async fn alias_target(&self, name: &str, alias: &str) -> Result<u32, RegistryError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM aliases WHERE name = ? AND alias = ?")
                .bind(name)
                .bind(alias)
                .fetch_optional(&self.pool)
                .await?;
        match version {
            Some(version) => Ok(version as u32),
            None => {
                self.require_model(name).await?;
                Err(RegistryError::AliasNotFound {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                })
            }
        }
    }

    async fn require_model(&self, name: &str) -> Result<(), RegistryError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM models WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        exists
            .map(|_| ())
            .ok_or_else(|| RegistryError::ModelNotFound(name.to_owned()))
    }

    async fn aliases_of(&self, name: &str) -> Result<Vec<AliasRecord>, RegistryError> {
        self.query_aliases(Some(name)).await
    }

    /// Every alias of every model.
    pub async fn aliases(&self) -> Result<Vec<AliasRecord>, RegistryError> {
        self.query_aliases(None).await
    }

    async fn query_aliases(&self, name: Option<&str>) -> Result<Vec<AliasRecord>, RegistryError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, alias, version FROM aliases WHERE ?1 IS NULL OR name = ?1 ORDER BY name, alias",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, alias, version)| AliasRecord {
                name,
                alias,
                version: version as u32,
            })
            .collect())
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
            "SELECT * FROM model_versions WHERE name = ? AND (archived = 0 OR ?) ORDER BY version",
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

    /// Points `alias` at `version`; archived versions cannot take an alias.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        validate_name("alias", alias)?;
        let target = self.version(name, &VersionRef::Number(version)).await?;
        if target.archived {
            return Err(RegistryError::Conflict(format!(
                "model {name:?} version {version} is archived; an archived version cannot take an alias"
            )));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Re-checked under the write lock: the version may have been archived since the read.
        let archived: bool = sqlx::query_scalar(
            "SELECT archived != 0 FROM model_versions WHERE name = ? AND version = ?",
        )
        .bind(name)
        .bind(i64::from(version))
        .fetch_one(&mut *tx)
        .await?;
        if archived {
            return Err(RegistryError::Conflict(format!(
                "model {name:?} version {version} was just archived; an archived version cannot take an alias"
            )));
        }
        move_alias(&mut tx, actor, name, alias, i64::from(version)).await?;
        tx.commit().await?;
        self.version(name, &VersionRef::Number(version)).await
    }

    pub async fn delete_alias(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let previous: Option<i64> = sqlx::query_scalar(
            "DELETE FROM aliases WHERE name = ? AND alias = ? RETURNING version",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(previous) = previous else {
            drop(tx);
            self.require_model(name).await?;
            return Err(RegistryError::AliasNotFound {
                name: name.to_owned(),
                alias: alias.to_owned(),
            });
        };
        audit(
            &mut tx,
            actor,
            "delete_alias",
            name,
            json!({"alias": alias, "version": previous}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Re-checked inside the transaction: an alias may have moved here since the read.
        let pointing: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM aliases WHERE name = ? AND version = ?")
                .bind(name)
                .bind(i64::from(version))
                .fetch_one(&mut *tx)
                .await?;
        if pointing > 0 {
            return Err(RegistryError::Conflict(format!(
                "model {name:?} version {version} just became the target of an alias; move it first"
            )));
        }
        sqlx::query("UPDATE model_versions SET archived = 1 WHERE name = ? AND version = ?")
            .bind(name)
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "archive_version",
            name,
            json!({"version": version}),
        )
        .await?;
        tx.commit().await?;
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
            "UPDATE model_versions SET reference_dataset = ? WHERE name = ? AND version = ?",
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
    async fn update_version<'q>(
        &self,
        name: &str,
        version: u32,
        update: sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>,
        action: &str,
        detail: serde_json::Value,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        update.execute(&mut *tx).await?;
        audit(&mut tx, actor, action, name, detail).await?;
        tx.commit().await?;
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
        let bytes = tokio::fs::read(self.artifacts.path(ArtifactKind::Model, &record.sha256))
            .await
            .map_err(|e| corrupt(format!("cannot be read ({e})")))?;
        let actual = sha256_hex(&bytes);
        if actual != record.sha256 {
            return Err(corrupt(format!(
                "has changed on disk (its SHA-256 is now {actual})"
            )));
        }
        Ok(bytes)
    }

    /// Registers a CSV dataset; names are unique.
    pub async fn upload_dataset(
        &self,
        new: NewDataset,
        staged: Staged,
        actor: &Actor,
    ) -> Result<DatasetRecord, RegistryError> {
        validate_name("dataset name", &new.name)?;
        if self.dataset(&new.name).await.is_ok() {
            return Err(RegistryError::DatasetExists(new.name));
        }
        let summary = datasets::summarize(
            staged.path().to_path_buf(),
            &new.label_column,
            &new.positive_label,
        )
        .await?;
        let sha256 = staged.sha256().to_owned();
        let inserted = self.insert_dataset(&new, &summary, staged, actor).await;
        if inserted.is_err() {
            self.remove_unreferenced(ArtifactKind::Dataset, &sha256)
                .await?;
        }
        inserted?;
        self.dataset(&new.name).await
    }

    async fn insert_dataset(
        &self,
        new: &NewDataset,
        summary: &CsvSummary,
        staged: Staged,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let (sha256, now) = (staged.sha256().to_owned(), now_millis());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO datasets (name, label_column, positive_label, description, rows, positives, columns, sha256, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.label_column)
        .bind(&new.positive_label)
        .bind(&new.description)
        .bind(summary.rows as i64)
        .bind(summary.positives as i64)
        .bind(to_json(&summary.columns))
        .bind(&sha256)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_unique_violation() => RegistryError::DatasetExists(new.name.clone()),
            _ => e.into(),
        })?;
        audit(
            &mut tx,
            actor,
            "upload_dataset",
            &new.name,
            json!({"sha256": sha256, "rows": summary.rows}),
        )
        .await?;
        self.artifacts.persist(staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn dataset(&self, name: &str) -> Result<DatasetRecord, RegistryError> {
        let row: Option<DatasetRow> = sqlx::query_as("SELECT * FROM datasets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| RegistryError::DatasetNotFound(name.to_owned()))?
            .into_record()
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, RegistryError> {
        let rows: Vec<DatasetRow> = sqlx::query_as("SELECT * FROM datasets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(DatasetRow::into_record).collect()
    }

    /// The header and the first `limit` records of a dataset, with each record's outcome.
    pub async fn dataset_rows(
        &self,
        record: &DatasetRecord,
        limit: usize,
    ) -> Result<DatasetRows, RegistryError> {
        datasets::read_rows(self.dataset_path(record), record.clone(), limit).await
    }

    /// Reads a dataset in chunks of `chunk_rows` records, on the blocking pool, handing
    /// each to `consume` with `state` until the file ends or `consume` answers `false`;
    /// memory stays at one chunk whatever the file's size.
    pub async fn scan_dataset<S, F, E>(
        &self,
        record: &DatasetRecord,
        chunk_rows: usize,
        state: S,
        consume: F,
    ) -> Result<S, E>
    where
        S: Send + 'static,
        F: FnMut(&mut S, DatasetRows) -> Result<bool, E> + Send + 'static,
        E: From<RegistryError> + Send + 'static,
    {
        datasets::scan(
            self.dataset_path(record),
            record.clone(),
            chunk_rows,
            state,
            consume,
        )
        .await
    }

    /// Closes the database connections, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where a dataset's CSV file is.
    pub fn dataset_path(&self, record: &DatasetRecord) -> PathBuf {
        self.artifacts.path(ArtifactKind::Dataset, &record.sha256)
    }

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>, RegistryError> {
        let rows: Vec<(i64, i64, String, String, String, String)> =
            sqlx::query_as("SELECT id, at, actor, action, name, detail FROM audit_log ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at_millis, actor, action, name, detail)| AuditEntry {
                id,
                at_millis,
                actor,
                action,
                name,
                detail,
            })
            .collect())
    }

    /// Deletes an artifact no row refers to. Under the write lock: a writer in another
    /// process moves its file into place only while it holds that lock, until it commits.
    async fn remove_unreferenced(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let references: i64 = sqlx::query_scalar(kind.references_query())
            .bind(sha256)
            .fetch_one(&mut *tx)
            .await?;
        if references == 0 {
            self.artifacts.remove(kind, sha256).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes artifacts no row refers to: what a crash between storing a file and
    /// committing its row leaves behind.
    async fn collect_garbage(&self) -> Result<(), RegistryError> {
        for kind in [ArtifactKind::Model, ArtifactKind::Dataset] {
            for sha256 in self.artifacts.stored(kind).await? {
                self.remove_unreferenced(kind, &sha256).await?;
            }
        }
        Ok(())
    }
}

async fn move_alias(
    tx: &mut Transaction<'static, Sqlite>,
    actor: &Actor,
    name: &str,
    alias: &str,
    version: i64,
) -> Result<(), RegistryError> {
    let previous: Option<i64> =
        sqlx::query_scalar("SELECT version FROM aliases WHERE name = ? AND alias = ?")
            .bind(name)
            .bind(alias)
            .fetch_optional(&mut **tx)
            .await?;
    sqlx::query(
        "INSERT INTO aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(alias)
    .bind(version)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    audit(
        tx,
        actor,
        "set_alias",
        name,
        json!({"alias": alias, "from": previous, "to": version}),
    )
    .await
}

async fn audit(
    tx: &mut Transaction<'static, Sqlite>,
    actor: &Actor,
    action: &str,
    name: &str,
    detail: serde_json::Value,
) -> Result<(), RegistryError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, name, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(now_millis())
        .bind(&actor.0)
        .bind(action)
        .bind(name)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Names of models, aliases and datasets: a letter or digit, then letters, digits, `.`,
/// `_` or `-`, at most 128 characters, so they are safe in paths, URLs and shells.
fn validate_name(what: &str, name: &str) -> Result<(), RegistryError> {
    let mut chars = name.chars();
    let valid = name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} {name:?} is not valid; expected a letter or digit, then letters, digits, '.', '_' or '-' (at most 128)"
        )))
    }
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, RegistryError> {
    serde_json::from_str(text)
        .map_err(|e| RegistryError::Storage(format!("column {column} holds unreadable JSON: {e}")))
}

#[derive(Debug, sqlx::FromRow)]
struct VersionRow {
    name: String,
    version: i64,
    sha256: String,
    size_bytes: i64,
    created_at: i64,
    description: String,
    tags: String,
    feature_names: String,
    features: String,
    class_labels: String,
    positive_class: String,
    threshold: f64,
    risk_band_cuts: String,
    reference_dataset: String,
    producer: String,
    archived: bool,
}

impl VersionRow {
    fn into_record(self, aliases: &[AliasRecord]) -> Result<VersionRecord, RegistryError> {
        let version = self.version as u32;
        Ok(VersionRecord {
            aliases: aliases
                .iter()
                .filter(|a| a.version == version)
                .map(|a| a.alias.clone())
                .collect(),
            metadata: VersionMetadata {
                tags: from_json("tags", &self.tags)?,
                feature_names: from_json("feature_names", &self.feature_names)?,
                features: from_json("features", &self.features)?,
                class_labels: from_json("class_labels", &self.class_labels)?,
                risk_band_cuts: from_json("risk_band_cuts", &self.risk_band_cuts)?,
                description: self.description,
                positive_class: self.positive_class,
                threshold: self.threshold,
                reference_dataset: self.reference_dataset,
                producer: self.producer,
            },
            name: self.name,
            version,
            sha256: self.sha256,
            size_bytes: self.size_bytes as u64,
            created_at_millis: self.created_at,
            archived: self.archived,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct DatasetRow {
    name: String,
    label_column: String,
    positive_label: String,
    description: String,
    rows: i64,
    positives: i64,
    columns: String,
    sha256: String,
    created_at: i64,
}

impl DatasetRow {
    fn into_record(self) -> Result<DatasetRecord, RegistryError> {
        Ok(DatasetRecord {
            columns: from_json("columns", &self.columns)?,
            name: self.name,
            label_column: self.label_column,
            positive_label: self.positive_label,
            description: self.description,
            rows: self.rows as u64,
            positives: self.positives as u64,
            sha256: self.sha256,
            created_at_millis: self.created_at,
        })
    }
}

/// SQLite opens a database it cannot write read-only and answers reads, and a migrated,
/// seeded registry writes nothing at start, so a read-only registry would start and fail
/// its first change. Rewriting the header's (unused) user_version is the smallest write.
async fn prove_writable(pool: &SqlitePool) -> Result<(), RegistryError> {
    let user_version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {user_version}"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn actor() -> Actor {
        Actor("test".to_owned())
    }

    fn new_version(name: &str, aliases: &[&str]) -> NewVersion {
        NewVersion {
            name: name.to_owned(),
            metadata: VersionMetadata {
                description: "a test model".to_owned(),
                tags: BTreeMap::from([("team".to_owned(), "retention".to_owned())]),
                feature_names: Vec::new(),
                features: vec![FeatureRecord {
                    name: "tenure".to_owned(),
                    kind: "number".to_owned(),
                    allowed_values: Vec::new(),
                }],
                class_labels: vec!["0".to_owned(), "1".to_owned()],
                positive_class: "1".to_owned(),
                threshold: 0.5,
                risk_band_cuts: [0.3, 0.6],
                reference_dataset: String::new(),
                producer: "test".to_owned(),
            },
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    async fn staged(registry: &Registry, kind: ArtifactKind, bytes: &[u8]) -> Staged {
        let mut staging = registry.stage(kind, 1 << 20).await.expect("stage");
        staging.write(bytes).await.expect("write");
        staging.finish().await.expect("finish")
    }

    async fn register(
        registry: &Registry,
        name: &str,
        bytes: &[u8],
        aliases: &[&str],
    ) -> Result<VersionRecord, RegistryError> {
        let upload = staged(registry, ArtifactKind::Model, bytes).await;
        registry
            .register(new_version(name, aliases), upload, &actor())
            .await
    }

    /// A registry in a temporary directory with "churn" versions 1 (aliased `production`)
    /// and 2.
    async fn two_versions() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(dir.path()).await.expect("open");
        register(&registry, "churn", b"model one", &["production"])
            .await
            .expect("v1");
        register(&registry, "churn", b"model two", &[])
            .await
            .expect("v2");
        (dir, registry)
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[derive(Debug, Clone)]
    enum Write {
        Register(usize),
        SetAlias(usize, usize, u32),
        Archive(usize, u32),
    }

    const NAMES: [&str; 2] = ["churn", "upsell"];
    const ALIASES: [&str; 2] = ["production", "staging"];

    fn write() -> impl proptest::strategy::Strategy<Value = Write> {
        use proptest::prelude::*;
        prop_oneof![
            (0..2usize).prop_map(Write::Register),
            (0..2usize, 0..2usize, 1..5u32).prop_map(|(n, a, v)| Write::SetAlias(n, a, v)),
            (0..2usize, 1..5u32).prop_map(|(n, v)| Write::Archive(n, v)),
        ]
    }

    /// Runs one lane of writes in order; returns how many versions it registered per name.
    /// Refusals (unknown version, archived target, aliased version) are expected; a storage
    /// error is not.
    async fn run_lane(registry: Arc<Registry>, lane: usize, writes: Vec<Write>) -> [u32; 2] {
        let mut registered = [0; 2];
        for (i, write) in writes.into_iter().enumerate() {
            let outcome = match write {
                Write::Register(n) => {
                    let bytes = format!("lane {lane} write {i}");
                    registered[n] += 1;
                    register(&registry, NAMES[n], bytes.as_bytes(), &[])
                        .await
                        .map(drop)
                }
                Write::SetAlias(n, a, v) => registry
                    .set_alias(NAMES[n], ALIASES[a], v, &actor())
                    .await
                    .map(drop),
                Write::Archive(n, v) => registry.archive(NAMES[n], v, &actor()).await.map(drop),
            };
            match outcome {
                Ok(())
                | Err(
                    RegistryError::ModelNotFound(_)
                    | RegistryError::VersionNotFound { .. }
                    | RegistryError::Conflict(_),
                ) => {}
                Err(other) => panic!("lane {lane} write {i}: {other}"),
            }
        }
        registered
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn concurrent_writes_keep_numbering_gap_free_and_aliases_valid(
            lanes in proptest::collection::vec(proptest::collection::vec(write(), 1..12), 2..4)
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let dir = tempfile::tempdir().expect("tempdir");
                let registry = Arc::new(Registry::open(dir.path()).await.expect("open"));
                let lanes: Vec<_> = lanes
                    .into_iter()
                    .enumerate()
                    .map(|(lane, writes)| tokio::spawn(run_lane(Arc::clone(&registry), lane, writes)))
                    .collect();
                let mut registered = [0u32; 2];
                for lane in lanes {
                    let counts = lane.await.expect("lane");
                    registered[0] += counts[0];
                    registered[1] += counts[1];
                }
                for (name, count) in NAMES.iter().zip(registered) {
                    let numbers: Vec<u32> = match registry.list_versions(name, true).await {
                        Ok(versions) => versions.iter().map(|v| v.version).collect(),
                        Err(RegistryError::ModelNotFound(_)) => Vec::new(),
                        Err(other) => panic!("{other}"),
                    };
                    assert_eq!(numbers, (1..=count).collect::<Vec<_>>(), "{name}: gap-free");
                }
                for alias in registry.aliases().await.expect("aliases") {
                    let target = registry
                        .version(&alias.name, &VersionRef::Number(alias.version))
                        .await
                        .expect("an alias points at a version");
                    assert!(!target.archived, "{alias:?} points at an archived version");
                }
                assert_eq!(check(dir.path()).await.expect("check"), Vec::new());
            });
        }
    }

    #[tokio::test]
    async fn the_offline_check_finds_writes_that_bypassed_the_registry() {
        let (dir, registry) = two_versions().await;
        assert_eq!(check(dir.path()).await.expect("check"), Vec::new());

        // A version inserted and an alias moved by hand, with no audit entry.
        sqlx::query(
            "INSERT INTO model_versions SELECT name, 3, sha256, size_bytes, created_at, description, tags, \
             feature_names, features, class_labels, positive_class, threshold, risk_band_cuts, \
             reference_dataset, producer, archived FROM model_versions WHERE version = 2",
        )
        .execute(&registry.pool)
        .await
        .expect("insert");
        sqlx::query("UPDATE aliases SET version = 2")
            .execute(&registry.pool)
            .await
            .expect("move");
        sqlx::query("UPDATE model_versions SET archived = 1 WHERE version = 2")
            .execute(&registry.pool)
            .await
            .expect("archive");
        std::fs::write(dir.path().join("artifacts/models/stray.onnx"), b"x").expect("stray");
        let findings = check(dir.path()).await.expect("check");
        let problems: Vec<(Severity, &str)> = findings
            .iter()
            .map(|f| (f.severity, f.problem.as_str()))
            .collect();
        assert_eq!(
            problems,
            [
                (
                    Severity::Damage,
                    "alias \"production\" of model \"churn\" points at archived version 2"
                ),
                (
                    Severity::Damage,
                    "model \"churn\" version 3 has no registration in the audit log"
                ),
                (
                    Severity::Damage,
                    "alias \"production\" of model \"churn\" points at version 2 but the audit log's last move of it says version 1"
                ),
                (
                    Severity::Leftover,
                    &*format!(
                        "{} belongs to no version or dataset",
                        dir.path().join("artifacts/models/stray.onnx").display()
                    )
                ),
            ]
        );
    }

    #[tokio::test]
    async fn versions_are_numbered_per_model_and_aliases_move_in_the_same_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(dir.path()).await.expect("open");
        assert!(registry.is_empty().await.expect("empty"));
        let first = register(&registry, "churn", b"model one", &["production"])
            .await
            .expect("v1");
        let second = register(&registry, "churn", b"model two", &[])
            .await
            .expect("v2");
        let other = register(&registry, "other", b"model one", &[])
            .await
            .expect("other v1");
        assert_eq!((first.version, second.version, other.version), (1, 2, 1));
        assert_eq!(first.aliases, ["production"]);
        assert_eq!(first.sha256, sha256_hex(b"model one"));
        assert_eq!(first.metadata.tags["team"], "retention");
        let production = registry
            .version("churn", &VersionRef::Alias("production".to_owned()))
            .await
            .expect("alias");
        assert_eq!(production.version, 1);
        assert_eq!(
            registry.model_bytes(&second).await.expect("bytes"),
            b"model two"
        );
        // The same bytes under two names are stored once.
        assert_eq!(files(&dir.path().join("artifacts/models")).len(), 2);

        let models = registry.list_models().await.expect("models");
        assert_eq!(
            models
                .iter()
                .map(|m| (m.name.as_str(), m.latest_version))
                .collect::<Vec<_>>(),
            [("churn", 2), ("other", 1)]
        );
        assert_eq!(
            models[0].aliases,
            BTreeMap::from([("production".to_owned(), 1)])
        );
        let actions: Vec<String> = registry
            .audit_log()
            .await
            .expect("audit")
            .into_iter()
            .map(|e| format!("{} {}", e.action, e.name))
            .collect();
        assert_eq!(
            actions,
            [
                "register_model churn",
                "set_alias churn",
                "register_model churn",
                "register_model other"
            ]
        );
    }

    #[tokio::test]
    async fn concurrent_registrations_get_distinct_gap_free_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = std::sync::Arc::new(Registry::open(dir.path()).await.expect("open"));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let registry = std::sync::Arc::clone(&registry);
                tokio::spawn(async move {
                    register(&registry, "churn", format!("model {i}").as_bytes(), &[])
                        .await
                        .expect("register")
                        .version
                })
            })
            .collect();
        let mut versions = Vec::new();
        for task in tasks {
            versions.push(task.await.expect("task"));
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn a_refused_registration_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(dir.path()).await.expect("open");
        let error = register(&registry, "bad name!", b"bytes", &[])
            .await
            .expect_err("invalid name");
        assert!(matches!(error, RegistryError::Invalid(_)), "{error}");
        let error = register(&registry, "churn", b"bytes", &["not an alias"])
            .await
            .expect_err("invalid alias");
        assert!(matches!(error, RegistryError::Invalid(_)), "{error}");
        assert!(registry.is_empty().await.expect("empty"));
        assert!(files(&dir.path().join("artifacts/models")).is_empty());
        assert!(files(&dir.path().join("artifacts/tmp")).is_empty());

        let mut staging = registry.stage(ArtifactKind::Model, 4).await.expect("stage");
        assert!(matches!(
            staging.write(b"too long").await,
            Err(RegistryError::TooLarge { limit: 4 })
        ));
        drop(staging);
        assert!(
            files(&dir.path().join("artifacts/tmp")).is_empty(),
            "an abandoned upload is removed"
        );
        assert_eq!(
            register(&registry, "churn", b"good", &[])
                .await
                .expect("next")
                .version,
            1,
            "no number consumed"
        );
    }

    #[tokio::test]
    async fn shadows_are_audited_replaced_deleted_and_their_scores_kept() {
        let (_dir, registry) = two_versions().await;
        let shadow = |version, record| ShadowConfig {
            name: "churn".to_owned(),
            alias: "production".to_owned(),
            shadow_version: version,
            record,
        };
        assert!(matches!(
            registry.set_shadow(&shadow(9, false), &actor()).await,
            Err(RegistryError::VersionNotFound { version: 9, .. })
        ));
        registry
            .set_shadow(&shadow(2, false), &actor())
            .await
            .expect("set");
        registry
            .set_shadow(&shadow(2, true), &actor())
            .await
            .expect("replace");
        assert_eq!(
            registry.shadows().await.expect("shadows"),
            vec![shadow(2, true)]
        );
        let pair = ShadowScore {
            customer_id: "7590-VHVEG".to_owned(),
            served_version: 1,
            served_score: 0.25,
            shadow_score: 0.5,
        };
        registry
            .record_shadow_scores(&shadow(2, true), std::slice::from_ref(&pair))
            .await
            .expect("record");
        assert_eq!(
            registry
                .shadow_scores("churn", "production")
                .await
                .expect("scores"),
            vec![pair]
        );
        registry
            .delete_shadow("churn", "production", &actor())
            .await
            .expect("delete");
        assert!(registry.shadows().await.expect("shadows").is_empty());
        assert!(matches!(
            registry
                .delete_shadow("churn", "production", &actor())
                .await,
            Err(RegistryError::ShadowNotFound { .. })
        ));
        let actions: Vec<String> = registry
            .audit_log()
            .await
            .expect("audit")
            .into_iter()
            .map(|entry| entry.action)
            .filter(|action| action.contains("shadow"))
            .collect();
        assert_eq!(actions, ["set_shadow", "set_shadow", "delete_shadow"]);
    }

    #[tokio::test]
    async fn alias_and_archive_rules() {
        let (_dir, registry) = two_versions().await;
        let error = registry
            .archive("churn", 1, &actor())
            .await
            .expect_err("aliased");
        assert!(
            error
                .to_string()
                .contains("still the target of alias(es) production"),
            "{error}"
        );
        assert!(
            registry
                .archive("churn", 2, &actor())
                .await
                .expect("archive")
                .archived
        );
        let error = registry
            .set_alias("churn", "production", 2, &actor())
            .await
            .expect_err("archived");
        assert!(matches!(error, RegistryError::Conflict(_)), "{error}");
        assert_eq!(
            registry
                .list_versions("churn", false)
                .await
                .expect("list")
                .len(),
            1
        );
        assert_eq!(
            registry
                .list_versions("churn", true)
                .await
                .expect("list")
                .len(),
            2
        );
        assert!(matches!(
            registry.set_alias("churn", "production", 9, &actor()).await,
            Err(RegistryError::VersionNotFound { version: 9, .. })
        ));
        assert!(matches!(
            registry.set_alias("nope", "production", 1, &actor()).await,
            Err(RegistryError::ModelNotFound(_))
        ));
        registry
            .delete_alias("churn", "production", &actor())
            .await
            .expect("delete");
        assert!(matches!(
            registry.delete_alias("churn", "production", &actor()).await,
            Err(RegistryError::AliasNotFound { .. })
        ));
        assert!(matches!(
            registry
                .version("churn", &VersionRef::Alias("production".to_owned()))
                .await,
            Err(RegistryError::AliasNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_removes_what_a_crash_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = {
            let registry = Registry::open(dir.path()).await.expect("open");
            register(&registry, "churn", b"one", &["production"])
                .await
                .expect("v1")
        };
        std::fs::write(
            dir.path().join("artifacts/tmp/models-1-2-3.part"),
            b"half an upload",
        )
        .expect("write");
        std::fs::write(
            dir.path()
                .join("artifacts/models")
                .join(format!("{}.onnx", sha256_hex(b"orphan"))),
            b"orphan",
        )
        .expect("write");
        let registry = Registry::open(dir.path()).await.expect("reopen");
        assert_eq!(
            registry
                .version("churn", &VersionRef::Alias("production".to_owned()))
                .await
                .expect("v1"),
            before
        );
        assert_eq!(
            files(&dir.path().join("artifacts/models")),
            [format!("{}.onnx", before.sha256)]
        );
        assert!(files(&dir.path().join("artifacts/tmp")).is_empty());

        std::fs::write(
            dir.path()
                .join("artifacts/models")
                .join(format!("{}.onnx", before.sha256)),
            b"tampered",
        )
        .expect("write");
        let error = registry.model_bytes(&before).await.expect_err("corrupt");
        assert!(error.to_string().contains("has changed on disk"), "{error}");
    }

    #[tokio::test]
    async fn datasets_are_counted_unique_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(dir.path()).await.expect("open");
        let dataset = |name: &str| NewDataset {
            name: name.to_owned(),
            label_column: "churn".to_owned(),
            positive_label: "Yes".to_owned(),
            description: String::new(),
        };
        let csv = b"customerid,tenure,churn\na,1,Yes\nb,2,No\nc,3,Yes\n";
        let upload = staged(&registry, ArtifactKind::Dataset, csv).await;
        let record = registry
            .upload_dataset(dataset("holdout"), upload, &actor())
            .await
            .expect("upload");
        assert_eq!(
            (record.rows, record.positives, record.columns.len()),
            (3, 2, 3)
        );
        assert_eq!(
            std::fs::read(registry.dataset_path(&record)).expect("stored"),
            csv
        );
        let upload = staged(&registry, ArtifactKind::Dataset, csv).await;
        assert!(matches!(
            registry
                .upload_dataset(dataset("holdout"), upload, &actor())
                .await,
            Err(RegistryError::DatasetExists(_))
        ));

        let cases: [(&[u8], &str); 2] = [
            (
                b"customerid,tenure\na,1\n",
                "label_column \"churn\" is not a column of the header",
            ),
            (b"customerid,tenure,churn\na,1,Yes\nb,2\n", "csv line 3"),
        ];
        for (bytes, fragment) in cases {
            let upload = staged(&registry, ArtifactKind::Dataset, bytes).await;
            let error = registry
                .upload_dataset(dataset("broken"), upload, &actor())
                .await
                .expect_err("invalid csv");
            assert!(error.to_string().contains(fragment), "{error}");
        }
        assert_eq!(registry.list_datasets().await.expect("list").len(), 1);
        assert_eq!(files(&dir.path().join("artifacts/datasets")).len(), 1);
    }
}

//! The churn model registry: models, versions, aliases, datasets and evaluations in a
//! SQLite file (WAL, busy timeout, foreign keys, embedded forward-only migrations), with
//! an append-only audit log of every change, and the artifacts themselves stored by
//! SHA-256 beside the database. No gRPC here: plain records in, plain records out.

mod aliases;
mod artifacts;
mod audit;
mod check;
mod cleanup;
mod csv_files;
mod datasets;
mod error;
mod evaluations;
mod records;
mod rows;
mod shadows;
#[cfg(test)]
mod tests;
mod versions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use artifacts::{ArtifactKind, Staged, Staging, sha256_hex};
pub use audit::AuditEntry;
pub use check::{Finding, Severity, check};
pub use csv_files::{CsvSummary, summarize_csv};
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

    /// Closes the database connections, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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

//! The churn model registry: models, versions, aliases, datasets and evaluations in a
//! database (an embedded SQLite file by default, PostgreSQL when replicas share one), with
//! an append-only audit log of every change, and the artifacts themselves stored by
//! SHA-256. No gRPC here: plain records in, plain records out.

mod aliases;
mod artifacts;
mod audit;
mod check;
mod cleanup;
mod cohorts;
mod csv_files;
mod database;
mod datasets;
mod drift;
mod error;
mod evaluations;
mod export;
mod predictions;
mod records;
mod rows;
mod shadows;
mod splits;
#[cfg(test)]
mod tests;
mod versions;

use std::path::{Path, PathBuf};

use sqlx::AnyPool;

pub use artifacts::{ArtifactKind, ArtifactUrl, Staged, Staging, sha256_hex};
pub use audit::AuditEntry;
pub use check::{Finding, Severity, check};
pub use cohorts::{
    ArmCount, CohortPeriod, CohortSums, CustomerCount, DAY_MILLIS, DEFAULT_HORIZON_DAYS,
    PerformanceSums,
};
pub use csv_files::{CsvSummary, summarize_csv};
pub use database::{Backend, ChangeNotifications, DatabaseUrl, redact};
pub use drift::{DriftBinsRecord, DriftBucket, DriftTotals};
pub use error::RegistryError;
pub use export::{ExportTarget, ExportedPrediction};
pub use predictions::{
    LabelledPrediction, LoggedPrediction, OutcomeRecord, PredictionSource, PredictionWindow,
};
pub use records::{
    Actor, AliasRecord, DatasetRecord, DatasetRows, EvaluationRecord, FeatureRecord, ModelSummary,
    NewDataset, NewEvaluation, NewVersion, VersionMetadata, VersionRecord, VersionRef,
};
pub use shadows::{ShadowConfig, ShadowScore};
pub use splits::{NewTrafficSplit, TrafficArm, TrafficSplit};

use artifacts::ArtifactStore;

const DATABASE_FILE: &str = "registry.db";
const ARTIFACT_DIR: &str = "artifacts";

/// The default bound of the node-local cache of an object store's artifacts.
pub const DEFAULT_ARTIFACT_CACHE_BYTES: u64 = 2 << 30;

/// Where a registry keeps its rows and its artifacts.
#[derive(Debug, Clone)]
pub struct Location {
    /// Node-local state; with the defaults, the whole registry.
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub artifacts: ArtifactUrl,
    /// The bound of the node-local cache of an object store's artifacts, in bytes.
    pub artifact_cache_bytes: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.database.backend(), &self.artifacts) {
            (Backend::Sqlite, ArtifactUrl::Directory(_)) => {
                write!(f, "in {}", self.data_dir.display())
            }
            (_, artifacts) => write!(
                f,
                "at {} with artifacts in {artifacts}",
                self.database.redacted()
            ),
        }
    }
}

impl Location {
    /// The embedded default: `registry.db` and `artifacts/` in `data_dir`.
    pub fn embedded(data_dir: &Path) -> Location {
        Location {
            data_dir: data_dir.to_path_buf(),
            database: DatabaseUrl::sqlite_file(&data_dir.join(DATABASE_FILE)),
            artifacts: ArtifactUrl::Directory(data_dir.join(ARTIFACT_DIR)),
            artifact_cache_bytes: DEFAULT_ARTIFACT_CACHE_BYTES,
        }
    }

    /// `registry_url` and `artifact_store` (else the embedded defaults), with node-local
    /// state in `data_dir`.
    pub fn new(
        data_dir: &Path,
        registry_url: Option<&str>,
        artifact_store: Option<&str>,
    ) -> Result<Location, RegistryError> {
        let mut location = Location::embedded(data_dir);
        if let Some(url) = registry_url {
            location.database = DatabaseUrl::parse(url)?;
        }
        if let Some(url) = artifact_store {
            location.artifacts = ArtifactUrl::parse(url)?;
        }
        Ok(location)
    }
}

/// The registry: its database and its artifacts.
#[derive(Debug)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
    location: Location,
    artifacts: ArtifactStore,
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Registry {
    /// Opens (creating if needed) the embedded registry in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        Registry::connect(&Location::embedded(data_dir)).await
    }

    /// Opens the registry at `location`, runs the migrations, and removes uploads a crash
    /// left unfinished and artifacts no row refers to.
    pub async fn connect(location: &Location) -> Result<Registry, RegistryError> {
        tokio::fs::create_dir_all(&location.data_dir).await?;
        let backend = location.database.backend();
        // SQLite takes one writer at a time anyway. On PostgreSQL the log's writer, the
        // fold, the drift flush, the follower and long dataset scans can each hold one at
        // once, and requests must still find one.
        let connections = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let pool = database::connect(&location.database, connections, false).await?;
        database::migrate(&pool, backend).await?;
        database::prove_writable(&pool, backend).await?;
        let registry = Registry {
            pool,
            backend,
            location: location.clone(),
            artifacts: ArtifactStore::open(
                &location.artifacts,
                &location.data_dir,
                location.artifact_cache_bytes,
            )
            .await?,
        };
        registry.collect_garbage().await?;
        Ok(registry)
    }

    /// Applies pending migrations and returns; for `churnserve migrate` before a rollout.
    pub async fn migrate(location: &Location) -> Result<(), RegistryError> {
        tokio::fs::create_dir_all(&location.data_dir).await?;
        let pool = database::connect(&location.database, 1, false).await?;
        database::migrate(&pool, location.database.backend()).await?;
        pool.close().await;
        Ok(())
    }

    /// Which database the rows are in.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Announcements of changes committed by any replica, when the database makes them
    /// (PostgreSQL); `None` when only polling [`Registry::change_marker`] can tell.
    pub async fn change_notifications(&self) -> Result<Option<ChangeNotifications>, RegistryError> {
        database::listen(&self.location.database).await
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

    /// Whether the caller may seed the registry: true for the first caller, across every
    /// process sharing the registry, while no model was ever registered; the claim is
    /// audited, so replicas starting together seed it once. A claim whose seeding never
    /// registered anything (the process died) lapses after a while.
    pub async fn claim_seeding(&self, actor: &Actor) -> Result<bool, RegistryError> {
        const CLAIMED: &str = "the registry is seeded or being seeded";
        const CLAIM_LAPSES: std::time::Duration = std::time::Duration::from_secs(600);
        let claimed = self
            .change(actor, async |change| {
                let earlier: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM models) \
                     + (SELECT COUNT(*) FROM audit_log WHERE action = 'claim_seeding' AND at > $1)",
                )
                .bind(now_millis() - CLAIM_LAPSES.as_millis() as i64)
                .fetch_one(change.db())
                .await?;
                if earlier > 0 {
                    return Err(RegistryError::Conflict(CLAIMED.to_owned()));
                }
                change
                    .audit("claim_seeding", "", serde_json::json!({}))
                    .await
            })
            .await;
        match claimed {
            Ok(()) => Ok(true),
            Err(RegistryError::Conflict(reason)) if reason == CLAIMED => Ok(false),
            Err(other) => Err(other),
        }
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

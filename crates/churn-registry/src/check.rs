//! An offline check of a registry, for `churnserve check`: the database is only read and
//! nothing is changed, so it can run beside live servers or on a backup.

use std::str::FromStr;

use sqlx::AnyPool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::Location;
use crate::artifacts::{ArtifactKind, ArtifactStore};
use crate::database::{self, Backend};
use crate::error::RegistryError;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something a server would serve wrongly or refuse: needs a person.
    Damage,
    /// What an interrupted write leaves behind; the next start removes it.
    Leftover,
}

/// One thing wrong with a registry, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    fn damage(problem: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Damage,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn leftover(problem: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Leftover,
            problem: problem.into(),
            fix: "none needed: the next `churnserve serve` on this directory removes it".into(),
        }
    }
}

/// Checks the registry at `location`: the database's integrity and schema version, every
/// version's and dataset's artifact (present, same size, same SHA-256), aliases, the audit
/// log against the rows it explains, and files no row refers to. An error means the check
/// itself could not run (no database, not readable).
pub async fn check(location: &Location) -> Result<Vec<Finding>, RegistryError> {
    let backend = location.database.backend();
    if backend == Backend::Sqlite {
        let url = location.database.as_str();
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename();
        if !file.is_file() {
            return Err(RegistryError::Storage(format!(
                "{} does not exist; is {} a registry directory?",
                file.display(),
                location.data_dir.display()
            )));
        }
    }
    let pool = database::connect(&location.database, 1, true).await?;
    let mut findings = match backend {
        Backend::Sqlite => sqlite_integrity(&pool).await?,
        // The server enforces foreign keys and checksums its own pages.
        Backend::Postgres => Vec::new(),
    };
    if !findings.is_empty() {
        return Ok(findings);
    }
    findings.extend(schema_version(&pool, backend).await?);
    if findings.is_empty() {
        let artifacts = ArtifactStore::at(
            &location.artifacts,
            &location.data_dir,
            location.artifact_cache_bytes,
        )
        .await?;
        findings.extend(artifact_files(&pool, &artifacts).await?);
        findings.extend(aliases(&pool).await?);
        findings.extend(audit_trail(&pool, backend).await?);
        findings.extend(leftovers(&pool, &artifacts).await?);
    }
    pool.close().await;
    Ok(findings)
}

async fn sqlite_integrity(pool: &AnyPool) -> Result<Vec<Finding>, RegistryError> {
    let restore = "restore registry.db from a backup; artifacts are content-addressed, so \
                   versions can also be registered again from their ONNX files";
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await?;
    if verdict != ["ok"] {
        return Ok(vec![Finding::damage(
            format!("the database is damaged: {}", verdict.join("; ")),
            restore,
        )]);
    }
    let dangling: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")
            .fetch_all(pool)
            .await?;
    Ok(dangling
        .into_iter()
        .map(|(table, row, parent)| {
            Finding::damage(
                format!("row {row} of table {table} refers to a missing row of {parent}"),
                restore,
            )
        })
        .collect())
}

async fn schema_version(pool: &AnyPool, backend: Backend) -> Result<Vec<Finding>, RegistryError> {
    let migrator = backend.migrator();
    let applied: Vec<(i64, i64, Vec<u8>)> = match sqlx::query_as(
        "SELECT version, CASE WHEN success THEN 1 ELSE 0 END, checksum FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    {
        Ok(applied) => applied,
        Err(_) => {
            return Ok(vec![Finding::damage(
                "the database has no migration table: it is not a churnserve registry",
                "point --data-dir at the directory `churnserve serve` uses",
            )]);
        }
    };
    let mut findings = Vec::new();
    for migration in migrator.iter() {
        match applied.iter().find(|(v, _, _)| *v == migration.version) {
            None => findings.push(Finding::damage(
                format!(
                    "schema migration {} ({}) is not applied",
                    migration.version, migration.description
                ),
                "start `churnserve serve` once on this directory: it applies pending migrations",
            )),
            Some((_, 0, _)) => findings.push(Finding::damage(
                format!("schema migration {} failed part-way", migration.version),
                "restore registry.db from a backup taken before the upgrade",
            )),
            Some((_, _, checksum)) if *checksum != *migration.checksum => {
                findings.push(Finding::damage(
                    format!(
                        "schema migration {} was applied from a different file than this churnserve's",
                        migration.version
                    ),
                    "run the churnserve release that created this registry",
                ));
            }
            Some(_) => {}
        }
    }
    for (version, _, _) in &applied {
        if !migrator.iter().any(|m| m.version == *version) {
            findings.push(Finding::damage(
                format!("schema migration {version} is newer than this churnserve"),
                "check it with the churnserve release that wrote it",
            ));
        }
    }
    Ok(findings)
}

async fn artifact_files(
    pool: &AnyPool,
    artifacts: &ArtifactStore,
) -> Result<Vec<Finding>, RegistryError> {
    let versions: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT name, version, sha256, size_bytes FROM model_versions ORDER BY name, version",
    )
    .fetch_all(pool)
    .await?;
    let datasets: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sha256 FROM datasets ORDER BY name")
            .fetch_all(pool)
            .await?;
    let mut findings = Vec::new();
    for (name, version, sha256, size) in versions {
        let owner = format!("model {name:?} version {version}");
        let fix = format!(
            "restore {} from a backup, or archive version {version} and register its ONNX \
             file again; until then it refuses to serve",
            artifacts.describe(ArtifactKind::Model, &sha256)
        );
        if let Some(problem) = verify(artifacts, ArtifactKind::Model, &sha256, Some(size)).await {
            findings.push(Finding::damage(format!("{owner}: {problem}"), fix));
        }
    }
    for (name, sha256) in datasets {
        let fix = format!(
            "restore {} from a backup, or upload the CSV again under a new name",
            artifacts.describe(ArtifactKind::Dataset, &sha256)
        );
        if let Some(problem) = verify(artifacts, ArtifactKind::Dataset, &sha256, None).await {
            findings.push(Finding::damage(format!("dataset {name:?}: {problem}"), fix));
        }
    }
    Ok(findings)
}

/// What is wrong with one artifact, if anything.
async fn verify(
    artifacts: &ArtifactStore,
    kind: ArtifactKind,
    sha256: &str,
    size: Option<i64>,
) -> Option<String> {
    let name = artifacts.describe(kind, sha256);
    let (actual_size, actual) = match artifacts.measure(kind, sha256).await {
        Ok(measured) => measured,
        Err(problem) => return Some(format!("artifact {name} {problem}")),
    };
    if let Some(size) = size.filter(|size| *size != actual_size as i64) {
        return Some(format!(
            "artifact {name} has {actual_size} bytes; {size} were registered"
        ));
    }
    (actual != sha256).then(|| format!("artifact {name} has SHA-256 {actual}"))
}

async fn aliases(pool: &AnyPool) -> Result<Vec<Finding>, RegistryError> {
    let archived: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT a.name, a.alias, a.version FROM aliases a JOIN model_versions v \
         ON v.name = a.name AND v.version = a.version WHERE v.archived != 0",
    )
    .fetch_all(pool)
    .await?;
    Ok(archived
        .into_iter()
        .map(|(name, alias, version)| {
            Finding::damage(
                format!("alias {alias:?} of model {name:?} points at archived version {version}"),
                format!("move it: churnctl alias set {name} {alias} VERSION"),
            )
        })
        .collect())
}

/// Every version has its registration in the audit log, and every alias's last audited
/// move is where it points now: the log explains the state.
async fn audit_trail(pool: &AnyPool, backend: Backend) -> Result<Vec<Finding>, RegistryError> {
    let fix = "the audit log is append-only and cannot be repaired; the database was written \
               outside churnserve or restored inconsistently: restore a consistent backup";
    let detail = |key| backend.json_integer("l.detail", key);
    let unregistered: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT v.name, v.version FROM model_versions v WHERE NOT EXISTS ( \
           SELECT 1 FROM audit_log l WHERE l.action = 'register_model' AND l.name = v.name \
           AND {} = v.version) ORDER BY v.name, v.version",
        detail("version")
    )))
    .fetch_all(pool)
    .await?;
    let alias_of_entry = backend.json_text("l.detail", "alias");
    let unexplained: Vec<(String, String, i64, Option<i64>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT a.name, a.alias, a.version, ( \
           SELECT CASE l.action WHEN 'set_alias' THEN {} END \
           FROM audit_log l WHERE l.name = a.name AND l.action IN ('set_alias', 'delete_alias') \
           AND {alias_of_entry} = a.alias ORDER BY l.id DESC LIMIT 1) \
         FROM aliases a ORDER BY a.name, a.alias",
            detail("to")
        )))
        .fetch_all(pool)
        .await?;
    let mut findings: Vec<Finding> = unregistered
        .into_iter()
        .map(|(name, version)| {
            Finding::damage(
                format!("model {name:?} version {version} has no registration in the audit log"),
                fix,
            )
        })
        .collect();
    for (name, alias, version, audited) in unexplained {
        if audited != Some(version) {
            findings.push(Finding::damage(
                format!(
                    "alias {alias:?} of model {name:?} points at version {version} but the audit log's last move of it says {}",
                    audited.map_or("nothing".to_owned(), |v| format!("version {v}"))
                ),
                fix,
            ));
        }
    }
    Ok(findings)
}

async fn leftovers(
    pool: &AnyPool,
    artifacts: &ArtifactStore,
) -> Result<Vec<Finding>, RegistryError> {
    let mut findings: Vec<Finding> = artifacts
        .unfinished_uploads()
        .await?
        .into_iter()
        .map(|(upload, _)| Finding::leftover(format!("unfinished upload {upload}")))
        .collect();
    for kind in [ArtifactKind::Model, ArtifactKind::Dataset] {
        for sha256 in artifacts.stored(kind).await? {
            let references: i64 = sqlx::query_scalar(kind.references_query())
                .bind(&sha256)
                .fetch_one(pool)
                .await?;
            if references == 0 {
                findings.push(Finding::leftover(format!(
                    "{} belongs to no version or dataset",
                    artifacts.describe(kind, &sha256)
                )));
            }
        }
    }
    Ok(findings)
}

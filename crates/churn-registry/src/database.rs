//! The database behind the registry: the embedded SQLite file or a PostgreSQL server that
//! replicas share. One set of statements serves both (sqlx's `Any` driver, `$N`
//! parameters, the same tables and columns); what differs is here: how to connect, the
//! migrations, and how a write transaction excludes other writers.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Transaction};

use crate::RegistryError;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The PostgreSQL channel every committed change is announced on.
pub const CHANGE_CHANNEL: &str = "churnserve_registry";

/// Any key will do as long as every replica takes the same one: all registry writes are
/// serialized, as SQLite's `BEGIN IMMEDIATE` serializes them, so version numbers are
/// gap-free and audit ids grow in commit order (the change marker relies on it).
const WRITE_LOCK_KEY: i64 = 0x6368_7572_6e73_7276;
/// Folds of the prediction log into realized-performance sums take turns on their own
/// key, so that a fold never holds up a registry write on PostgreSQL.
pub(crate) const FOLD_LOCK_KEY: i64 = 0x6368_7572_6e66_6f6c;

const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a database connection before the registry answers that it
/// is unavailable: writes during an outage fail in seconds, not after sqlx's 30 s default.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// `(…), (…)`: `rows` tuples of `width` parameters, bound in order: PostgreSQL's `$N`;
    /// SQLite's bare `?`, because it looks every named or numbered parameter up by a linear
    /// scan, which made a 3,000-parameter insert ten times slower.
    pub(crate) fn parameter_tuples(self, rows: usize, width: usize) -> String {
        (0..rows)
            .map(|row| {
                let values: Vec<String> = (1..=width)
                    .map(|k| self.parameter(row * width + k))
                    .collect();
                format!("({})", values.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `index`th (1-based) parameter, for statements whose parameters appear in order.
    pub(crate) fn parameter(self, index: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${index}"),
        }
    }

    /// The JSON member `key` of text column `column`, in this backend's SQL.
    pub(crate) fn json_text(self, column: &str, key: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_extract({column}, '$.{key}')"),
            Backend::Postgres => format!("({column}::jsonb ->> '{key}')"),
        }
    }

    /// The same member as an integer (SQLite's `json_extract` already gives one).
    pub(crate) fn json_integer(self, column: &str, key: &str) -> String {
        match self {
            Backend::Sqlite => self.json_text(column, key),
            Backend::Postgres => format!("{}::bigint", self.json_text(column, key)),
        }
    }
}

/// A registry database URL, checked: `sqlite://PATH` or `postgres://...`.
#[derive(Clone)]
pub struct DatabaseUrl {
    backend: Backend,
    url: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// The embedded default: `registry.db` in the data directory.
    pub fn sqlite_file(path: &Path) -> DatabaseUrl {
        DatabaseUrl {
            backend: Backend::Sqlite,
            url: SqliteConnectOptions::new()
                .filename(path)
                .to_url_lossy()
                .to_string(),
        }
    }

    pub fn parse(url: &str) -> Result<DatabaseUrl, RegistryError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        let backend = match scheme {
            Some("sqlite") => Backend::Sqlite,
            Some("postgres" | "postgresql") => Backend::Postgres,
            _ => {
                return Err(RegistryError::Invalid(format!(
                    "--registry-url {:?} is not a registry URL; expected sqlite://PATH or \
                     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
                    redact(url)
                )));
            }
        };
        let parsed = match backend {
            Backend::Sqlite => SqliteConnectOptions::from_str(url).map(|_| ()),
            Backend::Postgres => sqlx::postgres::PgConnectOptions::from_str(url).map(|_| ()),
        };
        parsed.map_err(|e| {
            RegistryError::Invalid(format!(
                "--registry-url {:?} is malformed: {e}",
                redact(url)
            ))
        })?;
        Ok(DatabaseUrl {
            backend,
            url: url.to_owned(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    /// The URL itself, for a connection of another kind (PostgreSQL's listener).
    pub(crate) fn as_str(&self) -> &str {
        &self.url
    }

    fn connect_options(&self, read_only: bool) -> Result<AnyConnectOptions, RegistryError> {
        let url = match self.backend {
            Backend::Sqlite => SqliteConnectOptions::from_str(&self.url)?
                .create_if_missing(!read_only)
                .read_only(read_only)
                .to_url_lossy(),
            Backend::Postgres => self
                .url
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("--registry-url: {e}")))?,
        };
        Ok(AnyConnectOptions::from_url(&url)?)
    }
}

/// `url` with its password, if any, replaced by `****`, for messages, logs and settings.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A statement of `rows` tuples out of chunks of `chunk` rows, kept prepared by its
/// connection only at the full chunk: every other row count is a statement of its own,
/// and a connection caches up to a hundred statements, so variable-length writes
/// filled the pool with compiled programs of thousands of parameters (21 MiB of the
/// memory soak's 76 MiB of live heap).
pub(crate) fn rows_statement<'q>(
    sql: String,
    rows: usize,
    chunk: usize,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows == chunk)
}

/// Opens a pool on `url`; SQLite connections get the WAL journal, full sync and a busy
/// timeout.
pub(crate) async fn connect(
    url: &DatabaseUrl,
    max_connections: u32,
    read_only: bool,
) -> Result<AnyPool, RegistryError> {
    sqlx::any::install_default_drivers();
    if url.backend == Backend::Sqlite && !read_only {
        // As for --data-dir: the file's directory is created if missing.
        let file = SqliteConnectOptions::from_str(&url.url)?
            .get_filename()
            .to_owned();
        if let Some(directory) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(directory).await?;
        }
    }
    let options = url.connect_options(read_only)?;
    let backend = url.backend;
    // One connection first: a pool retries until its timeout and then reports only that
    // it timed out, where this reports why (refused, wrong password, no such database).
    let probe = options.connect().await.map_err(connect_error)?;
    probe.close().await.map_err(connect_error)?;
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite && !read_only {
                    connection
                        .execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
                            SQLITE_BUSY_TIMEOUT.as_millis()
                        )))
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(connect_error)
}

fn connect_error(error: sqlx::Error) -> RegistryError {
    match RegistryError::from(error) {
        RegistryError::Unavailable(message) | RegistryError::Storage(message) => {
            RegistryError::Connect(message)
        }
        precise => precise,
    }
}

/// Starts a write transaction that excludes every other writer, in this process or another,
/// until it commits.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, Any>, RegistryError> {
    begin_exclusive(pool, backend, WRITE_LOCK_KEY).await
}

/// Starts a transaction that excludes every other holder of `lock_key` (on SQLite, every
/// other writer) until it commits.
pub(crate) async fn begin_exclusive(
    pool: &AnyPool,
    backend: Backend,
    lock_key: i64,
) -> Result<Transaction<'static, Any>, RegistryError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key)
                .execute(&mut *tx)
                .await?;
            tx
        }
    })
}

/// Runs the backend's migrations; several replicas starting at once take turns (sqlx
/// holds an advisory lock on PostgreSQL while it migrates).
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), RegistryError> {
    backend.migrator().run(pool).await?;
    Ok(())
}

/// Announcements of changes committed by any replica (PostgreSQL's `LISTEN`).
#[derive(Debug)]
pub struct ChangeNotifications(sqlx::postgres::PgListener);

impl ChangeNotifications {
    /// Waits for the next announced change. An error means the connection dropped:
    /// announcements made until it is back are lost, so the caller must poll
    /// [`crate::Registry::change_marker`] too; the next call reconnects.
    pub async fn next(&mut self) -> Result<(), RegistryError> {
        self.0.recv().await?;
        Ok(())
    }
}

/// Listens for committed changes on PostgreSQL; `None` for SQLite, whose replicas (other
/// processes on the same file) are followed by polling alone.
pub(crate) async fn listen(
    url: &DatabaseUrl,
) -> Result<Option<ChangeNotifications>, RegistryError> {
    if url.backend != Backend::Postgres {
        return Ok(None);
    }
    let mut listener = sqlx::postgres::PgListener::connect(url.as_str()).await?;
    listener.listen(CHANGE_CHANNEL).await?;
    Ok(Some(ChangeNotifications(listener)))
}

/// Announces the transaction's change to every listening replica when it commits.
pub(crate) async fn notify(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<(), RegistryError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANGE_CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// SQLite opens a database it cannot write read-only and answers reads, and a migrated,
/// seeded registry writes nothing at start, so a read-only registry would start and fail
/// its first change. Rewriting the header's (unused) user_version is the smallest write.
pub(crate) async fn prove_writable(pool: &AnyPool, backend: Backend) -> Result<(), RegistryError> {
    if backend != Backend::Sqlite {
        return Ok(());
    }
    let mut connection = pool.acquire().await?;
    let user_version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *connection)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {user_version}"
    )))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

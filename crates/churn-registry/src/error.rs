//! The registry's error type. sqlx and file-system errors never leave this crate as
//! such: they become `Storage`, or a precise variant where the cause is known.

/// Everything a registry operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("model {0:?} not found")]
    ModelNotFound(String),
    #[error("model {name:?} has no version {version}")]
    VersionNotFound { name: String, version: u32 },
    #[error("model {name:?} has no alias {alias:?}")]
    AliasNotFound { name: String, alias: String },
    #[error("dataset {0:?} not found")]
    DatasetNotFound(String),
    #[error("model {name:?} alias {alias:?} has no shadow")]
    ShadowNotFound { name: String, alias: String },
    #[error("model {name:?} alias {alias:?} has no traffic split")]
    TrafficSplitNotFound { name: String, alias: String },
    #[error("dataset {0:?} already exists; dataset names are unique")]
    DatasetExists(String),
    /// The request's content is wrong: a name, a CSV file, a metadata field.
    #[error("{0}")]
    Invalid(String),
    /// The registry's current state forbids the operation.
    #[error("{0}")]
    Conflict(String),
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// A stored artifact is missing or no longer has the hash it was registered with.
    #[error(
        "artifact {sha256} of model {name:?} version {version} {problem}; this version refuses to serve"
    )]
    Corrupt {
        name: String,
        version: u32,
        sha256: String,
        problem: String,
    },
    /// The disk (or the process's file-size limit) has no room for the write; nothing of
    /// it remains.
    #[error("the registry's storage is full ({0}); free space, then retry")]
    StorageFull(String),
    /// The data directory or one of its files refuses this process's writes (read-only
    /// file system, permissions).
    #[error(
        "the registry's storage is not writable ({0}); give the server's user read and write \
         access to the data directory and every file in it"
    )]
    NotWritable(String),
    /// The registry's database cannot be reached (a PostgreSQL server down or restarting):
    /// nothing was written; the same request succeeds once it is back.
    #[error(
        "the registry database is unavailable ({0}); nothing was changed, retry once it is back"
    )]
    Unavailable(String),
    /// The object store holding the artifacts cannot be reached or refuses the request.
    #[error("{0}")]
    ArtifactStore(String),
    /// The registry's database refused the first connection (wrong password, unknown
    /// database, no server listening).
    #[error(
        "cannot connect to the registry database: {0}; check --registry-url (and, for PostgreSQL, that the server is running and reachable)"
    )]
    Connect(String),
    #[error("registry storage failed: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        /// Primary result codes (the low byte of SQLite's extended codes).
        const SQLITE_READONLY: i64 = 8;
        const SQLITE_FULL: i64 = 13;
        match error {
            sqlx::Error::Io(io) => match RegistryError::from(io) {
                RegistryError::Storage(message) => RegistryError::Unavailable(message),
                precise => precise,
            },
            sqlx::Error::Database(database) => {
                let code = database.code().unwrap_or_default().into_owned();
                let sqlite_primary = code.parse::<i64>().ok().map(|code| code & 0xff);
                let message = database.message().to_owned();
                match sqlite_primary {
                    Some(SQLITE_FULL) => RegistryError::StorageFull(message),
                    Some(SQLITE_READONLY) => RegistryError::NotWritable(message),
                    _ if postgres_unavailable(&code) => RegistryError::Unavailable(message),
                    _ => RegistryError::Storage(message),
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => RegistryError::Unavailable(error.to_string()),
            other => RegistryError::Storage(other.to_string()),
        }
    }
}

/// PostgreSQL's SQLSTATEs for a server that cannot take the request now: connection
/// exceptions (class 08), too many connections, and a server shutting down or starting.
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "53300" | "57P01" | "57P02" | "57P03" | "28P01" | "28000" | "3D000"
        )
}

impl From<sqlx::migrate::MigrateError> for RegistryError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        match error {
            MigrateError::Execute(database) | MigrateError::ExecuteMigration(database, _) => {
                match RegistryError::from(database) {
                    RegistryError::Storage(message) => {
                        RegistryError::Storage(format!("migration: {message}"))
                    }
                    precise => precise,
                }
            }
            other => RegistryError::Storage(format!("migration: {other}")),
        }
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(error: std::io::Error) -> Self {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded => {
                RegistryError::StorageFull(error.to_string())
            }
            ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => {
                RegistryError::NotWritable(error.to_string())
            }
            _ => RegistryError::Storage(error.to_string()),
        }
    }
}

//! The prediction log leaving the database: its rows in time order, and the place an
//! export writes files to (a local directory, or an object store through the same library
//! and variables as the artifacts).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::artifacts::object_store_for;
use crate::{Registry, RegistryError};

/// One logged prediction, as an export writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedPrediction {
    pub id: i64,
    pub customer_id: String,
    pub name: String,
    pub version: u32,
    pub alias: String,
    pub probability: f64,
    pub will_churn: bool,
    pub scored_at_millis: i64,
}

impl Registry {
    /// How many predictions were scored in `[since, until)`.
    pub async fn count_predictions(&self, since: i64, until: i64) -> Result<u64, RegistryError> {
        let (count,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM predictions WHERE scored_at >= $1 AND scored_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }

    /// The predictions scored in `[since, until)`, oldest first (the database sorts them;
    /// the caller holds one row at a time).
    pub fn predictions_between(
        &self,
        since: i64,
        until: i64,
    ) -> BoxStream<'_, Result<ExportedPrediction, RegistryError>> {
        type Row = (i64, String, String, i64, String, f64, i64, i64);
        sqlx::query_as::<_, Row>(
            "SELECT id, customer_id, name, version, alias, probability, will_churn, scored_at \
             FROM predictions WHERE scored_at >= $1 AND scored_at < $2 ORDER BY scored_at, id",
        )
        .bind(since)
        .bind(until)
        .fetch(&self.pool)
        .map_err(RegistryError::from)
        .map_ok(
            |(id, customer_id, name, version, alias, probability, will_churn, scored_at)| {
                ExportedPrediction {
                    id,
                    customer_id,
                    name,
                    version: version as u32,
                    alias,
                    probability,
                    will_churn: will_churn != 0,
                    scored_at_millis: scored_at,
                }
            },
        )
        .boxed()
    }
}

/// Where an export writes: files by path relative to a directory or a key prefix.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    Directory(PathBuf),
    Objects {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

impl std::fmt::Display for ExportTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportTarget::Directory(path) => write!(f, "{}", path.display()),
            ExportTarget::Objects { url, .. } => f.write_str(url),
        }
    }
}

fn unwritable(target: &str, error: impl std::fmt::Display) -> RegistryError {
    RegistryError::Invalid(format!("--to {target}: {error}"))
}

impl ExportTarget {
    /// A local directory (created if missing), `file://`, or `s3://`, `gs://`, `az://`
    /// configured by the standard variables of its cloud.
    pub fn open(url: &str) -> Result<ExportTarget, RegistryError> {
        match url.split_once("://") {
            None => Ok(ExportTarget::Directory(PathBuf::from(url))),
            Some(("file", path)) => Ok(ExportTarget::Directory(PathBuf::from(path))),
            Some(("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss", _)) => {
                let parsed = url::Url::parse(url).map_err(|e| unwritable(url, e))?;
                let (store, prefix) = object_store_for(&parsed)
                    .map_err(|e| unwritable(url, e.to_string().replace("--artifact-store ", "")))?;
                Ok(ExportTarget::Objects {
                    url: url.to_owned(),
                    store,
                    prefix,
                })
            }
            Some((scheme, _)) => Err(unwritable(
                url,
                format!(
                    "unsupported scheme {scheme:?}; expected a directory, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX]"
                ),
            )),
        }
    }

    /// Writes `bytes` at `path`, whole or not at all: a local file is written beside
    /// its place and renamed into it.
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), RegistryError> {
        match self {
            ExportTarget::Directory(root) => {
                let file = root.join(path);
                let parent = file.parent().unwrap_or(root);
                let writing = parent.join(format!(
                    ".{}.writing",
                    file.file_name().unwrap_or_default().to_string_lossy()
                ));
                let result = async {
                    tokio::fs::create_dir_all(parent).await?;
                    tokio::fs::write(&writing, bytes).await?;
                    tokio::fs::rename(&writing, &file).await
                }
                .await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&writing).await;
                }
                result.map_err(|e| unwritable(&file.display().to_string(), e))
            }
            ExportTarget::Objects { store, prefix, .. } => {
                let key = object_key(prefix, path);
                store
                    .put(&key, bytes.into())
                    .await
                    .map(|_| ())
                    .map_err(|e| unwritable(&self.to_string(), e))
            }
        }
    }

    /// Deletes the file at `path`.
    pub async fn delete(&self, path: &str) -> Result<(), RegistryError> {
        match self {
            ExportTarget::Directory(root) => tokio::fs::remove_file(root.join(path))
                .await
                .map_err(|e| unwritable(&self.to_string(), e)),
            ExportTarget::Objects { store, prefix, .. } => store
                .delete(&object_key(prefix, path))
                .await
                .map_err(|e| unwritable(&self.to_string(), e)),
        }
    }

    /// The files directly in folder `folder`, by name; none when it does not exist.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, RegistryError> {
        match self {
            ExportTarget::Directory(root) => list_directory(&root.join(folder))
                .await
                .map_err(|e| unwritable(&self.to_string(), e)),
            ExportTarget::Objects { store, prefix, .. } => {
                let folder_key = object_key(prefix, folder);
                let listed = store
                    .list_with_delimiter(Some(&folder_key))
                    .await
                    .map_err(|e| unwritable(&self.to_string(), e))?;
                Ok(listed
                    .objects
                    .into_iter()
                    .filter_map(|object| object.location.filename().map(str::to_owned))
                    .collect())
            }
        }
    }
}

fn object_key(prefix: &ObjectPath, path: &str) -> ObjectPath {
    path.split('/')
        .filter(|part| !part.is_empty())
        .fold(prefix.clone(), |key, part| key.join(part))
}

async fn list_directory(directory: &Path) -> std::io::Result<Vec<String>> {
    let mut entries = match tokio::fs::read_dir(directory).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

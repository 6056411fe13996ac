//! Artifacts by content: `models/<sha256>.onnx` and `datasets/<sha256>.csv`, in a directory
//! of this node (the default) or in an object store that replicas share (`s3://`, `gs://`,
//! `az://`).
//!
//! An upload is written to a node-local staging file while it is hashed (and validated by
//! the caller). For an object store it is then copied to a temporary key (`tmp/…`) before
//! the registry's write lock is taken, and moved to its content address inside the write
//! transaction that adds its row; clean-up runs under the same lock, so it never deletes
//! what another replica is committing, and temporary keys are only removed once they are
//! older than any upload can take. Objects are read through a bounded node-local cache
//! and re-hashed at every load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::RegistryError;

/// A temporary key older than this belongs to an upload that will never commit.
const ABANDONED_UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// How long one request to the object store may take, retries included: a store that is
/// down fails a registration in seconds instead of holding it for minutes.
const OBJECT_STORE_TIMEOUT: Duration = Duration::from_secs(20);

/// What an artifact is, which decides its directory and extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Model,
    Dataset,
}

impl ArtifactKind {
    fn directory(self) -> &'static str {
        match self {
            ArtifactKind::Model => "models",
            ArtifactKind::Dataset => "datasets",
        }
    }

    /// Counts the rows that refer to an artifact of this kind by its hash.
    pub(crate) fn references_query(self) -> &'static str {
        match self {
            ArtifactKind::Model => "SELECT COUNT(*) FROM model_versions WHERE sha256 = $1",
            ArtifactKind::Dataset => "SELECT COUNT(*) FROM datasets WHERE sha256 = $1",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Model => "onnx",
            ArtifactKind::Dataset => "csv",
        }
    }

    pub(crate) fn file_name(self, sha256: &str) -> String {
        format!("{sha256}.{}", self.extension())
    }
}

/// Where the artifacts are, as `--artifact-store` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactUrl {
    /// A directory of this node.
    Directory(PathBuf),
    /// An object store URL (`s3://BUCKET/PREFIX`, ...), configured by the standard
    /// environment variables of its cloud.
    Objects(String),
}

impl ArtifactUrl {
    pub fn parse(text: &str) -> Result<ArtifactUrl, RegistryError> {
        let invalid = |why: String| {
            RegistryError::Invalid(format!(
                "--artifact-store {text:?} {why}; expected a directory, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX]"
            ))
        };
        match text.split_once("://") {
            None => Ok(ArtifactUrl::Directory(PathBuf::from(text))),
            Some(("file", path)) => Ok(ArtifactUrl::Directory(PathBuf::from(path))),
            Some(("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss", rest)) => {
                let bucket = rest.split('/').next().unwrap_or_default();
                if bucket.is_empty() {
                    return Err(invalid("names no bucket".to_owned()));
                }
                url::Url::parse(text).map_err(|e| invalid(format!("is malformed ({e})")))?;
                Ok(ArtifactUrl::Objects(text.to_owned()))
            }
            Some((scheme, _)) => Err(invalid(format!("has an unsupported scheme {scheme:?}"))),
        }
    }
}

impl std::fmt::Display for ArtifactUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtifactUrl::Directory(path) => write!(f, "{}", path.display()),
            ArtifactUrl::Objects(url) => f.write_str(url),
        }
    }
}

/// The artifact store and the node-local directories it needs.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactStore {
    place: Place,
    /// Node-local: uploads being received.
    staging: PathBuf,
}

#[derive(Debug, Clone)]
enum Place {
    Directory(PathBuf),
    Objects(Arc<Objects>),
}

/// A bucket (or container) under a prefix, and this node's cache of it.
#[derive(Debug)]
struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    cache: PathBuf,
    cache_bytes: u64,
}

impl Objects {
    fn key(&self, kind: ArtifactKind, sha256: &str) -> ObjectPath {
        self.prefix
            .clone()
            .join(kind.directory())
            .join(kind.file_name(sha256))
    }

    fn tmp(&self) -> ObjectPath {
        self.prefix.clone().join("tmp")
    }

    fn fail(&self, doing: &str, error: object_store::Error) -> RegistryError {
        match error {
            object_store::Error::NotFound { .. } => {
                RegistryError::Storage(format!("is missing from the artifact store {}", self.url))
            }
            other => RegistryError::ArtifactStore(format!(
                "the artifact store {} failed while {doing} ({other}); nothing was changed, \
                 retry once it is reachable",
                self.url
            )),
        }
    }
}

impl ArtifactStore {
    /// The store as it is: nothing created or removed (for offline checks).
    pub(crate) async fn at(
        url: &ArtifactUrl,
        data_dir: &Path,
        cache_bytes: u64,
    ) -> Result<ArtifactStore, RegistryError> {
        let place = match url {
            ArtifactUrl::Directory(root) => Place::Directory(root.clone()),
            ArtifactUrl::Objects(text) => {
                let parsed = url::Url::parse(text)
                    .map_err(|e| RegistryError::Invalid(format!("--artifact-store: {e}")))?;
                let (store, prefix) = object_store_for(&parsed)?;
                Place::Objects(Arc::new(Objects {
                    store,
                    prefix,
                    url: text.clone(),
                    cache: data_dir.join("artifact-cache"),
                    cache_bytes,
                }))
            }
        };
        let staging = match &place {
            Place::Directory(root) => root.join("tmp"),
            Place::Objects(_) => data_dir.join("staging"),
        };
        Ok(ArtifactStore { place, staging })
    }

    /// Opens the store for serving: the local directories created, what a crash left in
    /// staging removed, and the store proven writable (an unknown bucket or wrong
    /// credentials stop the start, not the first registration).
    pub(crate) async fn open(
        url: &ArtifactUrl,
        data_dir: &Path,
        cache_bytes: u64,
    ) -> Result<ArtifactStore, RegistryError> {
        let store = ArtifactStore::at(url, data_dir, cache_bytes).await?;
        // Whatever is in staging belongs to an upload that never finished.
        let _ = tokio::fs::remove_dir_all(&store.staging).await;
        tokio::fs::create_dir_all(&store.staging).await?;
        let probe = store
            .staging
            .join(format!("write-probe-{}", unique_suffix()));
        tokio::fs::write(&probe, b"").await?;
        tokio::fs::remove_file(&probe).await?;
        match &store.place {
            Place::Directory(root) => {
                for kind in [ArtifactKind::Model, ArtifactKind::Dataset] {
                    tokio::fs::create_dir_all(root.join(kind.directory())).await?;
                }
            }
            Place::Objects(objects) => {
                tokio::fs::create_dir_all(&objects.cache).await?;
                // Listing is what an unknown bucket refuses on every S3-compatible server.
                objects
                    .store
                    .list_with_delimiter(Some(&objects.prefix))
                    .await
                    .map_err(|e| {
                        RegistryError::ArtifactStore(format!(
                            "the artifact store {} cannot be listed ({e}); check that the \
                             bucket exists, --artifact-store and the credentials in the environment",
                            objects.url
                        ))
                    })?;
                let key = objects
                    .tmp()
                    .join(format!("write-probe-{}", unique_suffix()));
                objects
                    .store
                    .put(&key, bytes::Bytes::new().into())
                    .await
                    .map_err(|e| objects.fail("writing a probe object", e))?;
                objects
                    .store
                    .delete(&key)
                    .await
                    .map_err(|e| objects.fail("deleting a probe object", e))?;
            }
        }
        Ok(store)
    }

    /// Where an artifact is, for messages.
    pub(crate) fn describe(&self, kind: ArtifactKind, sha256: &str) -> String {
        match &self.place {
            Place::Directory(root) => root
                .join(kind.directory())
                .join(kind.file_name(sha256))
                .display()
                .to_string(),
            Place::Objects(objects) => format!(
                "{}/{}/{}",
                objects.url.trim_end_matches('/'),
                kind.directory(),
                kind.file_name(sha256)
            ),
        }
    }

    pub(crate) async fn stage(
        &self,
        kind: ArtifactKind,
        limit: u64,
    ) -> Result<Staging, RegistryError> {
        let path = self
            .staging
            .join(format!("{}-{}.part", kind.directory(), unique_suffix()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Staging {
            kind,
            file,
            staged: Staged {
                path,
                sha256: String::new(),
                size: 0,
                kind,
                uploaded: None,
            },
            hasher: Sha256::new(),
            limit,
        })
    }

    /// Copies a complete upload into the store under a temporary key, before the write
    /// lock is taken (a directory store needs nothing: the staged file is renamed).
    pub(crate) async fn upload(&self, staged: &mut Staged) -> Result<(), RegistryError> {
        let Place::Objects(objects) = &self.place else {
            return Ok(());
        };
        let key = objects.tmp().join(format!(
            "{}-{}.part",
            staged.kind.directory(),
            unique_suffix()
        ));
        let mut file = tokio::fs::File::open(&staged.path).await?;
        let mut writer =
            object_store::buffered::BufWriter::new(Arc::clone(&objects.store), key.clone());
        let uploaded = match tokio::io::copy(&mut file, &mut writer).await {
            Ok(_) => writer.shutdown().await,
            Err(error) => {
                writer.abort().await.ok();
                Err(error)
            }
        };
        uploaded.map_err(|e| {
            RegistryError::ArtifactStore(format!(
                "the artifact store {} failed while uploading ({e}); nothing was changed, \
                 retry once it is reachable",
                objects.url
            ))
        })?;
        staged.uploaded = Some(key);
        Ok(())
    }

    /// Moves an upload to its content address; the same content twice is one artifact.
    /// Called inside the write transaction that adds the artifact's row.
    pub(crate) async fn persist(&self, staged: &mut Staged) -> Result<(), RegistryError> {
        match &self.place {
            Place::Directory(root) => {
                let target = root
                    .join(staged.kind.directory())
                    .join(staged.kind.file_name(&staged.sha256));
                tokio::fs::rename(&staged.path, &target).await?;
                staged.path = PathBuf::new();
            }
            Place::Objects(objects) => {
                let from = staged.uploaded.as_ref().ok_or_else(|| {
                    RegistryError::Storage("an upload was committed before it was copied".into())
                })?;
                let to = objects.key(staged.kind, &staged.sha256);
                objects
                    .store
                    .copy(from, &to)
                    .await
                    .map_err(|e| objects.fail("committing an upload", e))?;
            }
        }
        Ok(())
    }

    /// Removes what is left of an upload, committed or not: the staged file and the
    /// temporary key.
    pub(crate) async fn discard(&self, mut staged: Staged) {
        if let (Place::Objects(objects), Some(key)) = (&self.place, staged.uploaded.take())
            && let Err(error) = objects.store.delete(&key).await
        {
            tracing::warn!(%error, %key, "cannot delete a temporary upload; clean-up will");
        }
    }

    /// A local file with the artifact's content: the file itself in a directory store, a
    /// cached copy (fetched and checked against its hash when missing) otherwise.
    pub(crate) async fn local_file(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<PathBuf, RegistryError> {
        let objects = match &self.place {
            Place::Directory(root) => {
                return Ok(root.join(kind.directory()).join(kind.file_name(sha256)));
            }
            Place::Objects(objects) => objects,
        };
        let cached = objects.cache.join(kind.file_name(sha256));
        if let Ok(file) = std::fs::File::options().write(true).open(&cached) {
            // Recently used copies are the last ones evicted.
            let _ = file.set_modified(SystemTime::now());
            return Ok(cached);
        }
        let partial = objects.cache.join(format!(
            "{}.part-{}",
            kind.file_name(sha256),
            unique_suffix()
        ));
        let fetched = fetch(objects, &objects.key(kind, sha256), &partial).await;
        let (_, actual) = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error);
            }
        };
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(RegistryError::Storage(format!(
                "has changed in the artifact store (its SHA-256 is now {actual})"
            )));
        }
        tokio::fs::rename(&partial, &cached).await?;
        evict(&objects.cache, objects.cache_bytes, &cached).await;
        Ok(cached)
    }

    /// Drops a cached copy that no longer matches its hash, so that the next load fetches
    /// it again; a directory store's file is the artifact itself and stays.
    pub(crate) async fn forget_cached(&self, kind: ArtifactKind, sha256: &str) {
        if let Place::Objects(objects) = &self.place {
            let _ = tokio::fs::remove_file(objects.cache.join(kind.file_name(sha256))).await;
        }
    }

    /// The size and SHA-256 of a stored artifact, read in full from the store itself.
    pub(crate) async fn measure(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<(u64, String), String> {
        match &self.place {
            Place::Directory(_) => {
                let path = self
                    .local_file(kind, sha256)
                    .await
                    .map_err(|e| e.to_string())?;
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("cannot be read ({e})"))?;
                Ok((bytes.len() as u64, sha256_hex(&bytes)))
            }
            Place::Objects(objects) => {
                let mut stream = objects
                    .store
                    .get(&objects.key(kind, sha256))
                    .await
                    .map_err(|e| format!("cannot be read ({e})"))?
                    .into_stream();
                let (mut size, mut hasher) = (0, Sha256::new());
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| format!("cannot be read ({e})"))?;
                    size += chunk.len() as u64;
                    hasher.update(&chunk);
                }
                Ok((size, hex(&hasher.finalize())))
            }
        }
    }

    /// The stored artifacts of one kind, as their hashes.
    pub(crate) async fn stored(&self, kind: ArtifactKind) -> Result<Vec<String>, RegistryError> {
        let names = match &self.place {
            Place::Directory(root) => files_in(&root.join(kind.directory()))
                .await?
                .into_iter()
                .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
                .collect(),
            Place::Objects(objects) => {
                let directory = objects.prefix.clone().join(kind.directory());
                let mut names = Vec::new();
                let mut listing = objects.store.list(Some(&directory));
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| objects.fail("listing artifacts", e))?;
                    if let Some(name) = meta.location.filename() {
                        names.push(name.to_owned());
                    }
                }
                names
            }
        };
        Ok(names
            .into_iter()
            .filter_map(|name| {
                name.strip_suffix(&format!(".{}", kind.extension()))
                    .map(str::to_owned)
            })
            .collect())
    }

    /// Uploads an interrupted process left behind: staging files on this node, and, in an
    /// object store, temporary keys (with whether they are old enough to be abandoned).
    pub(crate) async fn unfinished_uploads(&self) -> Result<Vec<(String, bool)>, RegistryError> {
        let mut found: Vec<(String, bool)> = files_in(&self.staging)
            .await?
            .into_iter()
            .map(|path| (path.display().to_string(), true))
            .collect();
        if let Place::Objects(objects) = &self.place {
            let cutoff = abandoned_before();
            let mut listing = objects.store.list(Some(&objects.tmp()));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| objects.fail("listing uploads", e))?;
                let abandoned = meta.last_modified.timestamp_millis() < cutoff;
                found.push((
                    format!("{}/{}", objects.url.trim_end_matches('/'), meta.location),
                    abandoned,
                ));
            }
        }
        Ok(found)
    }

    /// Deletes the temporary keys of uploads that can no longer commit.
    pub(crate) async fn remove_abandoned_uploads(&self) -> Result<(), RegistryError> {
        let Place::Objects(objects) = &self.place else {
            return Ok(());
        };
        let cutoff = abandoned_before();
        let mut listing = objects.store.list(Some(&objects.tmp()));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| objects.fail("listing uploads", e))?;
            if meta.last_modified.timestamp_millis() < cutoff {
                let _ = objects.store.delete(&meta.location).await;
            }
        }
        Ok(())
    }

    pub(crate) async fn remove(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<(), RegistryError> {
        match &self.place {
            Place::Directory(root) => {
                let path = root.join(kind.directory()).join(kind.file_name(sha256));
                match tokio::fs::remove_file(path).await {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
                    _ => Ok(()),
                }
            }
            Place::Objects(objects) => match objects.store.delete(&objects.key(kind, sha256)).await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(objects.fail("deleting an artifact", error)),
            },
        }
    }
}

#[cfg(test)]
impl ArtifactStore {
    /// Writes an artifact's file or object directly, as a person or a bug would.
    pub(crate) async fn put_behind_registry(&self, kind: ArtifactKind, sha256: &str, bytes: &[u8]) {
        match &self.place {
            Place::Directory(root) => {
                let path = root.join(kind.directory()).join(kind.file_name(sha256));
                tokio::fs::write(path, bytes).await.expect("write");
            }
            Place::Objects(objects) => {
                objects
                    .store
                    .put(&objects.key(kind, sha256), bytes.to_vec().into())
                    .await
                    .expect("put");
            }
        }
    }

    pub(crate) fn staging_dir(&self) -> &Path {
        &self.staging
    }
}

/// The store an object-store URL names, configured by the standard variables of its cloud
/// (`AWS_*` with `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers,
/// `GOOGLE_*`, `AZURE_*`), and the URL's path as the key prefix.
pub(crate) fn object_store_for(
    url: &url::Url,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), RegistryError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    use object_store::{ClientConfigKey, RetryConfig};
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: OBJECT_STORE_TIMEOUT,
        ..RetryConfig::default()
    };
    // Set key by key: `with_client_options` would drop what the environment set
    // (`AWS_ALLOW_HTTP` among them).
    let timeouts = [
        (ClientConfigKey::ConnectTimeout, "5s".to_owned()),
        (
            ClientConfigKey::Timeout,
            format!("{}s", OBJECT_STORE_TIMEOUT.as_secs()),
        ),
    ];
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match url.scheme() {
        "s3" | "s3a" => timeouts
            .into_iter()
            .fold(AmazonS3Builder::from_env(), |builder, (key, value)| {
                builder.with_config(AmazonS3ConfigKey::Client(key), value)
            })
            .with_url(url.as_str())
            .with_retry(retry)
            .build()
            .map(|store| Arc::new(store) as Arc<dyn ObjectStore>),
        "gs" => timeouts
            .into_iter()
            .fold(
                GoogleCloudStorageBuilder::from_env(),
                |builder, (key, value)| builder.with_config(GoogleConfigKey::Client(key), value),
            )
            .with_url(url.as_str())
            .with_retry(retry)
            .build()
            .map(|store| Arc::new(store) as Arc<dyn ObjectStore>),
        _ => timeouts
            .into_iter()
            .fold(
                MicrosoftAzureBuilder::from_env(),
                |builder, (key, value)| builder.with_config(AzureConfigKey::Client(key), value),
            )
            .with_url(url.as_str())
            .with_retry(retry)
            .build()
            .map(|store| Arc::new(store) as Arc<dyn ObjectStore>),
    };
    let store =
        built.map_err(|e| RegistryError::Invalid(format!("--artifact-store {url}: {e}")))?;
    let prefix = ObjectPath::from_url_path(url.path())
        .map_err(|e| RegistryError::Invalid(format!("--artifact-store {url}: {e}")))?;
    Ok((store, prefix))
}

/// Streams an object into a local file, hashing it; returns its size and SHA-256.
async fn fetch(
    objects: &Objects,
    key: &ObjectPath,
    into: &Path,
) -> Result<(u64, String), RegistryError> {
    let mut stream = objects
        .store
        .get(key)
        .await
        .map_err(|e| objects.fail("fetching an artifact", e))?
        .into_stream();
    let mut file = tokio::fs::File::create(into).await?;
    let (mut size, mut hasher) = (0, Sha256::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| objects.fail("fetching an artifact", e))?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok((size, hex(&hasher.finalize())))
}

/// Removes the least recently used cached copies until the cache fits in `limit` bytes;
/// `keep` (the copy just fetched) stays whatever its size.
async fn evict(cache: &Path, limit: u64, keep: &Path) {
    let Ok(files) = files_in(cache).await else {
        return;
    };
    let mut copies: Vec<(SystemTime, u64, PathBuf)> = files
        .into_iter()
        // Copies being fetched (`….part-…`) belong to their fetch, not to the cache yet.
        .filter(|path| path != keep && !path.to_string_lossy().contains(".part-"))
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    let kept = std::fs::metadata(keep).map_or(0, |meta| meta.len());
    let mut total = kept + copies.iter().map(|(_, size, _)| size).sum::<u64>();
    copies.sort();
    for (_, size, path) in copies {
        if total <= limit {
            break;
        }
        if tokio::fs::remove_file(&path).await.is_ok() {
            total -= size;
        }
    }
}

/// Milliseconds since the epoch before which a temporary key is abandoned.
fn abandoned_before() -> i64 {
    crate::now_millis() - ABANDONED_UPLOAD_AGE.as_millis() as i64
}

/// The files of a directory; none when it does not exist.
async fn files_in(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        files.push(entry.path());
    }
    Ok(files)
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        crate::now_millis(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An upload being written and hashed.
#[derive(Debug)]
pub struct Staging {
    kind: ArtifactKind,
    file: tokio::fs::File,
    staged: Staged,
    hasher: Sha256,
    limit: u64,
}

impl Staging {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), RegistryError> {
        self.staged.size += chunk.len() as u64;
        if self.staged.size > self.limit {
            return Err(RegistryError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Staged, RegistryError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let mut staged = std::mem::replace(
            &mut self.staged,
            Staged {
                path: PathBuf::new(),
                sha256: String::new(),
                size: 0,
                kind: self.kind,
                uploaded: None,
            },
        );
        staged.sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        Ok(staged)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.staged.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.staged.path);
        }
    }
}

/// A complete upload, not yet in the registry; its staging file is removed when dropped
/// unless it was moved into a directory store.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    sha256: String,
    size: u64,
    kind: ArtifactKind,
    /// Its temporary key in an object store, once copied there.
    uploaded: Option<ObjectPath>,
}

impl Staged {
    /// The staging file, for validation before registration.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

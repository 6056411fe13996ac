//! Content-addressed files beside the database: `artifacts/models/<sha256>.onnx` and
//! `artifacts/datasets/<sha256>.csv`. Uploads are written to `artifacts/tmp/` while
//! they are hashed and only renamed into place once complete, so a crash leaves at most
//! a temporary file, which the next start removes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::RegistryError;

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
}

/// The artifact directory layout.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// The store at `root` as it is: nothing created or removed (for offline checks).
    pub(crate) fn at(root: PathBuf) -> ArtifactStore {
        ArtifactStore { root }
    }

    pub(crate) async fn open(root: PathBuf) -> Result<ArtifactStore, RegistryError> {
        let store = ArtifactStore::at(root);
        // Whatever is in tmp/ belongs to an upload that never finished.
        let _ = tokio::fs::remove_dir_all(store.tmp_dir()).await;
        for dir in [
            store.tmp_dir(),
            store.kind_dir(ArtifactKind::Model),
            store.kind_dir(ArtifactKind::Dataset),
        ] {
            tokio::fs::create_dir_all(&dir).await?;
        }
        // Every upload starts as a file in tmp/: a directory that refuses it should stop
        // the start, not the first registration.
        let probe = store
            .tmp_dir()
            .join(format!("write-probe-{}", unique_suffix()));
        tokio::fs::write(&probe, b"").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(store)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn kind_dir(&self, kind: ArtifactKind) -> PathBuf {
        self.root.join(kind.directory())
    }

    pub(crate) fn path(&self, kind: ArtifactKind, sha256: &str) -> PathBuf {
        self.kind_dir(kind)
            .join(format!("{sha256}.{}", kind.extension()))
    }

    pub(crate) async fn stage(
        &self,
        kind: ArtifactKind,
        limit: u64,
    ) -> Result<Staging, RegistryError> {
        let path = self
            .tmp_dir()
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
            },
            hasher: Sha256::new(),
            limit,
        })
    }

    /// Moves a complete upload to its content address; the same content twice is one file.
    pub(crate) async fn persist(&self, mut staged: Staged) -> Result<PathBuf, RegistryError> {
        let target = self.path(staged.kind, &staged.sha256);
        tokio::fs::rename(&staged.path, &target).await?;
        staged.path = PathBuf::new();
        Ok(target)
    }

    /// Names of the stored artifacts of one kind, as their hashes.
    pub(crate) async fn stored(&self, kind: ArtifactKind) -> Result<Vec<String>, RegistryError> {
        Ok(files_in(&self.kind_dir(kind))
            .await?
            .iter()
            .filter_map(|path| path.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
            .collect())
    }

    /// Files an interrupted upload left in `tmp/`.
    pub(crate) async fn unfinished_uploads(&self) -> Result<Vec<PathBuf>, RegistryError> {
        files_in(&self.tmp_dir()).await
    }

    pub(crate) async fn remove(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<(), RegistryError> {
        match tokio::fs::remove_file(self.path(kind, sha256)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }
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

/// A complete upload, not yet in the registry; removed when dropped unless persisted.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    sha256: String,
    size: u64,
    kind: ArtifactKind,
}

impl Staged {
    /// The temporary file, for validation before registration.
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

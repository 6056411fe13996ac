//! Clean-up of artifacts no row refers to: what a failed registration or a crash between
//! storing a file and committing its row leaves behind. Only under the database's write
//! lock, because a writer in another process moves its file into place only while it
//! holds that lock, until it commits: clean-up never deletes what another replica is
//! committing.

use crate::artifacts::ArtifactKind;
use crate::database;
use crate::{Registry, RegistryError};

impl Registry {
    /// Deletes an artifact no row refers to. Under the write lock: a writer in another
    /// process moves its file into place only while it holds that lock, until it commits.
    pub(crate) async fn remove_unreferenced(
        &self,
        kind: ArtifactKind,
        sha256: &str,
    ) -> Result<(), RegistryError> {
        let mut tx = database::begin_write(&self.pool, self.backend).await?;
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

    /// Removes artifacts no row refers to (what a crash between storing a file and
    /// committing its row leaves behind), and uploads abandoned in an object store.
    pub(crate) async fn collect_garbage(&self) -> Result<(), RegistryError> {
        self.artifacts.remove_abandoned_uploads().await?;
        for kind in [ArtifactKind::Model, ArtifactKind::Dataset] {
            for sha256 in self.artifacts.stored(kind).await? {
                self.remove_unreferenced(kind, &sha256).await?;
            }
        }
        Ok(())
    }
}

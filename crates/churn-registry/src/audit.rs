//! The append-only audit log, and the one way to change the registry:
//! [`Registry::change`] runs the writes and their audit entries in one transaction that
//! excludes every other writer, so a change and its entry are committed together or not at
//! all (the triggers of the migrations refuse updates and deletes of the log), and
//! announces it to the other replicas when it commits.

use serde_json::Value;
use sqlx::{Any, AnyConnection, Transaction};

use crate::database;
use crate::records::Actor;
use crate::{Registry, RegistryError, now_millis};

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

/// A change in progress: a write transaction under the registry's write lock, and who
/// makes it.
pub(crate) struct Change {
    tx: Transaction<'static, Any>,
    actor: Actor,
    entries: usize,
}

impl Change {
    /// The transaction's connection, for the change's statements.
    pub(crate) fn db(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Appends an entry of `action` on model or dataset `name` to the audit log.
    pub(crate) async fn audit(
        &mut self,
        action: &str,
        name: &str,
        detail: Value,
    ) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, name, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now_millis())
        .bind(&self.actor.0)
        .bind(action)
        .bind(name)
        .bind(detail.to_string())
        .execute(&mut *self.tx)
        .await?;
        self.entries += 1;
        Ok(())
    }
}

impl Registry {
    /// Runs `write` in one write transaction and commits it with the audit entries it
    /// appended; an error rolls everything back.
    pub(crate) async fn change<T>(
        &self,
        actor: &Actor,
        write: impl AsyncFnOnce(&mut Change) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut change = Change {
            tx: database::begin_write(&self.pool, self.backend).await?,
            actor: actor.clone(),
            entries: 0,
        };
        let value = write(&mut change).await?;
        debug_assert!(change.entries > 0, "every registry change is audited");
        database::notify(&mut change.tx, self.backend).await?;
        change.tx.commit().await?;
        Ok(value)
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

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>, RegistryError> {
        let rows =
            sqlx::query_as("SELECT id, at, actor, action, name, detail FROM audit_log ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(AuditEntry::from_row).collect())
    }

    /// Up to `limit` entries older than `before_id` (all when `None`), of `name` only when
    /// given, newest first.
    pub async fn audit_page(
        &self,
        name: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, RegistryError> {
        let rows = sqlx::query_as(
            "SELECT id, at, actor, action, name, detail FROM audit_log \
             WHERE ($1 = '' OR name = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(name.unwrap_or_default())
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEntry::from_row).collect())
    }
}

type AuditRow = (i64, i64, String, String, String, String);

impl AuditEntry {
    fn from_row((id, at_millis, actor, action, name, detail): AuditRow) -> AuditEntry {
        AuditEntry {
            id,
            at_millis,
            actor,
            action,
            name,
            detail,
        }
    }
}

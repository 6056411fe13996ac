//! Aliases: the names (`production`, `challenger`, ...) that point at one version of a
//! model, moved atomically and audited. Moving or deleting an alias ends its traffic split.

use serde_json::json;

use crate::audit::Change;
use crate::records::{Actor, AliasRecord, VersionRecord, VersionRef};
use crate::{Registry, RegistryError, now_millis, validate_name};

impl Registry {
    pub(crate) async fn alias_target(&self, name: &str, alias: &str) -> Result<u32, RegistryError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .fetch_optional(&self.pool)
                .await?;
        match version {
            Some(version) => Ok(version as u32),
            None => {
                self.require_model(name).await?;
                Err(RegistryError::AliasNotFound {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                })
            }
        }
    }

    pub(crate) async fn aliases_of(&self, name: &str) -> Result<Vec<AliasRecord>, RegistryError> {
        self.query_aliases(Some(name)).await
    }

    /// Every alias of every model.
    pub async fn aliases(&self) -> Result<Vec<AliasRecord>, RegistryError> {
        self.query_aliases(None).await
    }

    async fn query_aliases(&self, name: Option<&str>) -> Result<Vec<AliasRecord>, RegistryError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, alias, version FROM aliases WHERE $1 IS NULL OR name = $1 ORDER BY name, alias",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, alias, version)| AliasRecord {
                name,
                alias,
                version: version as u32,
            })
            .collect())
    }

    /// Points `alias` at `version`; archived versions cannot take an alias.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
        actor: &Actor,
    ) -> Result<VersionRecord, RegistryError> {
        validate_name("alias", alias)?;
        let target = self.version(name, &VersionRef::Number(version)).await?;
        if target.archived {
            return Err(RegistryError::Conflict(format!(
                "model {name:?} version {version} is archived; an archived version cannot take an alias"
            )));
        }
        self.change(actor, async |change| {
            // Re-checked under the write lock: the version may have been archived since the read.
            let archived: i64 = sqlx::query_scalar(
                "SELECT archived FROM model_versions WHERE name = $1 AND version = $2",
            )
            .bind(name)
            .bind(i64::from(version))
            .fetch_one(change.db())
            .await?;
            if archived != 0 {
                return Err(RegistryError::Conflict(format!(
                    "model {name:?} version {version} was just archived; an archived version cannot take an alias"
                )));
            }
            move_alias(change, name, alias, i64::from(version)).await
        })
        .await?;
        self.version(name, &VersionRef::Number(version)).await
    }

    pub async fn delete_alias(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let deleted = self
            .change(actor, async |change| {
                let previous: Option<i64> = sqlx::query_scalar(
                    "DELETE FROM aliases WHERE name = $1 AND alias = $2 RETURNING version",
                )
                .bind(name)
                .bind(alias)
                .fetch_optional(change.db())
                .await?;
                let Some(previous) = previous else {
                    return Err(RegistryError::AliasNotFound {
                        name: name.to_owned(),
                        alias: alias.to_owned(),
                    });
                };
                end_split(change, name, alias, now_millis()).await?;
                change
                    .audit(
                        "delete_alias",
                        name,
                        json!({"alias": alias, "version": previous}),
                    )
                    .await
            })
            .await;
        if let Err(RegistryError::AliasNotFound { .. }) = &deleted {
            // An unknown model is the better answer than an unknown alias of it.
            self.require_model(name).await?;
        }
        deleted
    }
}

/// Points `alias` of `name` at `version` within `change`, with its audit entry.
pub(crate) async fn move_alias(
    change: &mut Change,
    name: &str,
    alias: &str,
    version: i64,
) -> Result<(), RegistryError> {
    let previous: Option<i64> =
        sqlx::query_scalar("SELECT version FROM aliases WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .fetch_optional(change.db())
            .await?;
    sqlx::query(
        "INSERT INTO aliases (name, alias, version, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(alias)
    .bind(version)
    .bind(now_millis())
    .execute(change.db())
    .await?;
    end_split(change, name, alias, now_millis()).await?;
    change
        .audit(
            "set_alias",
            name,
            json!({"alias": alias, "from": previous, "to": version}),
        )
        .await
}

/// Ends the running traffic split of `alias` of `name`, if any, with its audit entry; its
/// row stays, so that its report can still be read.
pub(crate) async fn end_split(
    change: &mut Change,
    name: &str,
    alias: &str,
    at_millis: i64,
) -> Result<(), RegistryError> {
    let ended = sqlx::query(
        "UPDATE traffic_splits SET ended_at = $1 WHERE name = $2 AND alias = $3 AND ended_at IS NULL",
    )
    .bind(at_millis)
    .bind(name)
    .bind(alias)
    .execute(change.db())
    .await?;
    if ended.rows_affected() > 0 {
        change
            .audit("end_traffic_split", name, json!({"alias": alias}))
            .await?;
    }
    Ok(())
}

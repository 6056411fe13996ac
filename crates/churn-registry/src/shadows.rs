//! Shadow configurations (audited, like every change) and the score pairs recorded while
//! a shadow runs.

use serde_json::json;

use crate::records::{Actor, VersionRef};
use crate::{Registry, RegistryError, now_millis, validate_name};

/// Traffic served by `alias` of `name` is also scored by `shadow_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowConfig {
    pub name: String,
    pub alias: String,
    pub shadow_version: u32,
    /// Keep each (customer id, served score, shadow score).
    pub record: bool,
}

/// One customer scored by both versions.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowScore {
    pub customer_id: String,
    pub served_version: u32,
    pub served_score: f64,
    pub shadow_score: f64,
}

impl Registry {
    /// Sets (or replaces) the shadow of an alias; the version must exist, not be archived.
    pub async fn set_shadow(
        &self,
        config: &ShadowConfig,
        actor: &Actor,
    ) -> Result<ShadowConfig, RegistryError> {
        validate_name("alias", &config.alias)?;
        let shadow = self
            .version(&config.name, &VersionRef::Number(config.shadow_version))
            .await?;
        if shadow.archived {
            return Err(RegistryError::Conflict(format!(
                "model {:?} version {} is archived; an archived version cannot shadow traffic",
                config.name, config.shadow_version
            )));
        }
        self.change(actor, async |change| {
            sqlx::query(
                "INSERT INTO shadows (name, alias, shadow_version, record, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name, alias) DO UPDATE SET shadow_version = excluded.shadow_version, \
                 record = excluded.record, updated_at = excluded.updated_at",
            )
            .bind(&config.name)
            .bind(&config.alias)
            .bind(i64::from(config.shadow_version))
            .bind(i64::from(config.record))
            .bind(now_millis())
            .execute(change.db())
            .await?;
            change
                .audit(
                    "set_shadow",
                    &config.name,
                    json!({"alias": config.alias, "shadow_version": config.shadow_version, "record": config.record}),
                )
                .await
        })
        .await?;
        Ok(config.clone())
    }

    /// Removes the shadow of an alias; `NotFound` when it has none.
    pub async fn delete_shadow(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        self.change(actor, async |change| {
            let removed: Option<i64> = sqlx::query_scalar(
                "DELETE FROM shadows WHERE name = $1 AND alias = $2 RETURNING shadow_version",
            )
            .bind(name)
            .bind(alias)
            .fetch_optional(change.db())
            .await?;
            let Some(version) = removed else {
                return Err(RegistryError::ShadowNotFound {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                });
            };
            change
                .audit(
                    "delete_shadow",
                    name,
                    json!({"alias": alias, "shadow_version": version}),
                )
                .await
        })
        .await
    }

    pub async fn shadows(&self) -> Result<Vec<ShadowConfig>, RegistryError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, alias, shadow_version, record FROM shadows ORDER BY name, alias",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, alias, version, record)| ShadowConfig {
                name,
                alias,
                shadow_version: version as u32,
                record: record != 0,
            })
            .collect())
    }

    /// Appends score pairs of one shadow in one transaction.
    pub async fn record_shadow_scores(
        &self,
        config: &ShadowConfig,
        scores: &[ShadowScore],
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        let now = now_millis();
        for score in scores {
            sqlx::query(
                "INSERT INTO shadow_scores (name, alias, served_version, shadow_version, customer_id, served_score, shadow_score, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&config.name)
            .bind(&config.alias)
            .bind(i64::from(score.served_version))
            .bind(i64::from(config.shadow_version))
            .bind(&score.customer_id)
            .bind(score.served_score)
            .bind(score.shadow_score)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The recorded pairs of a shadow, oldest first.
    pub async fn shadow_scores(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Vec<ShadowScore>, RegistryError> {
        let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
            "SELECT customer_id, served_version, served_score, shadow_score FROM shadow_scores \
             WHERE name = $1 AND alias = $2 ORDER BY id",
        )
        .bind(name)
        .bind(alias)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(customer_id, served_version, served_score, shadow_score)| ShadowScore {
                    customer_id,
                    served_version: served_version as u32,
                    served_score,
                    shadow_score,
                },
            )
            .collect())
    }
}

//! Traffic splits: an alias answered by several versions at once, audited like every
//! change. The alias row itself points at the first arm, so everything that reads an alias
//! as one version (listings, explanations, evaluations) sees the split's baseline.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::aliases::end_split;
use crate::audit::Change;
use crate::database::{Backend, FOLD_LOCK_KEY};
use crate::records::{Actor, VersionRef};
use crate::{Registry, RegistryError, now_millis, validate_name};

/// One version of a split and its share of the customers, `weight` over the weights' sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficArm {
    pub version: u32,
    pub weight: u32,
}

/// An alias split between versions: running while `ended_at_millis` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSplit {
    pub name: String,
    pub alias: String,
    /// In the caller's order; the first is the baseline the others are compared with.
    pub arms: Vec<TrafficArm>,
    pub salt: String,
    pub started_at_millis: i64,
    pub ended_at_millis: Option<i64>,
}

/// A split to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrafficSplit {
    pub name: String,
    pub alias: String,
    pub arms: Vec<TrafficArm>,
    /// Empty: the running split's salt when only the weights change, else a new one.
    pub salt: String,
}

type SplitRow = (String, String, String, String, i64, Option<i64>);

impl Registry {
    /// Sets the split of an alias. The same versions in the same order, with the same salt
    /// (or none given), keep the running experiment and only change its weights; anything
    /// else ends it and starts another. The alias moves to the first arm in the same
    /// transaction.
    pub async fn set_traffic_split(
        &self,
        split: &NewTrafficSplit,
        actor: &Actor,
    ) -> Result<TrafficSplit, RegistryError> {
        self.check_traffic_split(split).await?;
        let name = split.name.as_str();
        let arms = serde_json::to_string(&split.arms)
            .map_err(|e| RegistryError::Storage(format!("cannot encode the arms: {e}")))?;
        let backend = self.backend;
        self.change(actor, async |change| {
            // A new split starts after every fold so far: none has counted a prediction
            // of its time in another split (SQLite's writers take turns anyway).
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(FOLD_LOCK_KEY)
                    .execute(change.db())
                    .await?;
            }
            // Re-checked under the write lock: a version may have been archived since the read.
            for arm in &split.arms {
                let archived: i64 = sqlx::query_scalar(
                    "SELECT archived FROM model_versions WHERE name = $1 AND version = $2",
                )
                .bind(name)
                .bind(i64::from(arm.version))
                .fetch_one(change.db())
                .await?;
                if archived != 0 {
                    return Err(RegistryError::Conflict(format!(
                        "arms: model {name:?} version {} was just archived; an archived version cannot take traffic",
                        arm.version
                    )));
                }
            }
            let running = running_split(change, name, &split.alias).await?;
            let now = now_millis();
            let kept = running.filter(|running| {
                same_versions(&running.arms, &split.arms)
                    && (split.salt.is_empty() || split.salt == running.salt)
            });
            let (salt, started_at) = match &kept {
                Some(running) => {
                    sqlx::query(
                        "UPDATE traffic_splits SET arms = $1 WHERE name = $2 AND alias = $3 AND ended_at IS NULL",
                    )
                    .bind(&arms)
                    .bind(name)
                    .bind(&split.alias)
                    .execute(change.db())
                    .await?;
                    (running.salt.clone(), running.started_at_millis)
                }
                None => {
                    end_split(change, name, &split.alias, now).await?;
                    let salt = if split.salt.is_empty() {
                        uuid::Uuid::new_v4().simple().to_string()
                    } else {
                        split.salt.clone()
                    };
                    sqlx::query(
                        "INSERT INTO traffic_splits (name, alias, salt, arms, started_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(name)
                    .bind(&split.alias)
                    .bind(&salt)
                    .bind(&arms)
                    .bind(now)
                    .execute(change.db())
                    .await?;
                    (salt, now)
                }
            };
            sqlx::query(
                "INSERT INTO aliases (name, alias, version, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(&split.alias)
            .bind(i64::from(split.arms[0].version))
            .bind(now)
            .execute(change.db())
            .await?;
            change
                .audit(
                    "set_traffic_split",
                    name,
                    json!({"alias": split.alias, "arms": split.arms, "salt": salt, "new_experiment": kept.is_none()}),
                )
                .await?;
            Ok(TrafficSplit {
                name: name.to_owned(),
                alias: split.alias.clone(),
                arms: split.arms.clone(),
                salt,
                started_at_millis: started_at,
                ended_at_millis: None,
            })
        })
        .await
    }

    /// Whether `split` can be set: its alias and arms well formed, every version there and
    /// not archived.
    pub async fn check_traffic_split(&self, split: &NewTrafficSplit) -> Result<(), RegistryError> {
        validate_name("alias", &split.alias)?;
        validate_arms(&split.arms)?;
        for arm in &split.arms {
            let record = self
                .version(&split.name, &VersionRef::Number(arm.version))
                .await?;
            if record.archived {
                return Err(RegistryError::Conflict(format!(
                    "arms: model {:?} version {} is archived; an archived version cannot take traffic",
                    split.name, arm.version
                )));
            }
        }
        Ok(())
    }

    /// The running split of an alias; `TrafficSplitNotFound` when it has none.
    pub async fn traffic_split(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<TrafficSplit, RegistryError> {
        let row: Option<SplitRow> = sqlx::query_as(
            "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits \
             WHERE name = $1 AND alias = $2 AND ended_at IS NULL",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(&self.pool)
        .await?;
        self.found_split(name, alias, row).await
    }

    /// The latest split of an alias, running or ended: the experiment a report is about.
    pub async fn latest_traffic_split(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<TrafficSplit, RegistryError> {
        let row: Option<SplitRow> = sqlx::query_as(
            "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits \
             WHERE name = $1 AND alias = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(&self.pool)
        .await?;
        self.found_split(name, alias, row).await
    }

    /// The latest split of each alias of `name`, running or ended: its experiments.
    pub async fn experiments(&self, name: &str) -> Result<Vec<TrafficSplit>, RegistryError> {
        let rows: Vec<SplitRow> = sqlx::query_as(
            "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits t \
             WHERE name = $1 AND id = (SELECT MAX(id) FROM traffic_splits l \
             WHERE l.name = t.name AND l.alias = t.alias) ORDER BY alias",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(split_from_row).collect()
    }

    /// Every running split; `name` only when given.
    pub async fn traffic_splits(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<TrafficSplit>, RegistryError> {
        let rows: Vec<SplitRow> = sqlx::query_as(
            "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits \
             WHERE ended_at IS NULL AND ($1 IS NULL OR name = $1) ORDER BY name, alias",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(split_from_row).collect()
    }

    async fn found_split(
        &self,
        name: &str,
        alias: &str,
        row: Option<SplitRow>,
    ) -> Result<TrafficSplit, RegistryError> {
        match row {
            Some(row) => split_from_row(row),
            None => {
                self.require_model(name).await?;
                Err(RegistryError::TrafficSplitNotFound {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                })
            }
        }
    }
}

/// The arms the contract allows: at least one, each version once, whole weights of which
/// at least one is positive.
fn validate_arms(arms: &[TrafficArm]) -> Result<(), RegistryError> {
    if arms.is_empty() {
        return Err(RegistryError::Invalid(
            "arms: expected at least one arm (a version and its weight)".to_owned(),
        ));
    }
    for (i, arm) in arms.iter().enumerate() {
        if arm.version == 0 {
            return Err(RegistryError::Invalid(format!(
                "arms[{i}].version: expected a version number (1 or more), got 0"
            )));
        }
        if let Some(first) = arms[..i].iter().position(|a| a.version == arm.version) {
            return Err(RegistryError::Invalid(format!(
                "arms[{i}].version: version {} is listed twice (arms[{first}] and arms[{i}]); each version takes one arm",
                arm.version
            )));
        }
    }
    if arms.iter().all(|arm| arm.weight == 0) {
        return Err(RegistryError::Invalid(
            "arms.weight: every weight is 0; expected at least one positive weight".to_owned(),
        ));
    }
    Ok(())
}

fn same_versions(a: &[TrafficArm], b: &[TrafficArm]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.version == b.version)
}

async fn running_split(
    change: &mut Change,
    name: &str,
    alias: &str,
) -> Result<Option<TrafficSplit>, RegistryError> {
    let row: Option<SplitRow> = sqlx::query_as(
        "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits \
         WHERE name = $1 AND alias = $2 AND ended_at IS NULL",
    )
    .bind(name)
    .bind(alias)
    .fetch_optional(change.db())
    .await?;
    row.map(split_from_row).transpose()
}

/// The alias whose running split has an arm on `version` of `name`, if any.
pub(crate) async fn split_taking(
    change: &mut Change,
    name: &str,
    version: u32,
) -> Result<Option<String>, RegistryError> {
    let rows: Vec<SplitRow> = sqlx::query_as(
        "SELECT name, alias, salt, arms, started_at, ended_at FROM traffic_splits \
         WHERE name = $1 AND ended_at IS NULL",
    )
    .bind(name)
    .fetch_all(change.db())
    .await?;
    for row in rows {
        let split = split_from_row(row)?;
        if split.arms.iter().any(|arm| arm.version == version) {
            return Ok(Some(split.alias));
        }
    }
    Ok(None)
}

fn split_from_row(
    (name, alias, salt, arms, started_at, ended_at): SplitRow,
) -> Result<TrafficSplit, RegistryError> {
    let arms = serde_json::from_str(&arms).map_err(|e| {
        RegistryError::Storage(format!(
            "the split of model {name:?} alias {alias:?} has unreadable arms: {e}"
        ))
    })?;
    Ok(TrafficSplit {
        name,
        alias,
        arms,
        salt,
        started_at_millis: started_at,
        ended_at_millis: ended_at,
    })
}

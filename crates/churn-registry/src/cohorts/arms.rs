//! Experiments' sums, folded with the cohorts': per running traffic split and arm, how many
//! customers' first prediction through the split (by an arm's version) had each
//! probability and label by the default horizon. They are kept while a split runs; a
//! split's start takes the folds' lock, so every prediction folded before it was scored
//! before it.

use std::collections::HashMap;

use futures_util::TryStreamExt;

use super::rows::{FoldPrediction, SUMS_HORIZON_MILLIS, add_customers, label, label_code};
use crate::{Registry, RegistryError, TrafficArm};

/// A running split as a fold sees it.
#[derive(Debug)]
pub(super) struct FoldSplit {
    name: String,
    alias: String,
    pub(super) started_at: i64,
    versions: Vec<i64>,
}

impl FoldSplit {
    /// Whether the prediction came through the split and by one of its arms.
    pub(super) fn takes(&self, prediction: &FoldPrediction) -> bool {
        prediction.name == self.name
            && prediction.alias == self.alias
            && prediction.scored_at >= self.started_at
            && self.versions.contains(&prediction.version)
    }
}

/// One cell of an experiment's sums: split (its index in the fold's list), arm,
/// probability (its bits), label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ArmKey {
    split: usize,
    version: i64,
    probability_bits: u64,
    label: i64,
}

/// How many customers of an arm had one probability and label.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmCount {
    pub version: u32,
    pub probability: f64,
    pub churned: Option<bool>,
    pub customers: u64,
}

pub(super) async fn running_splits(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<Vec<FoldSplit>, RegistryError> {
    let rows = sqlx::query_as::<_, (String, String, String, i64)>(
        "SELECT name, alias, arms, started_at FROM traffic_splits WHERE ended_at IS NULL",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(name, alias, arms, started_at)| {
            let arms: Vec<TrafficArm> = serde_json::from_str(&arms).map_err(|e| {
                RegistryError::Storage(format!(
                    "the split of model {name:?} alias {alias:?} has unreadable arms: {e}"
                ))
            })?;
            Ok(FoldSplit {
                name,
                alias,
                started_at,
                versions: arms.iter().map(|arm| i64::from(arm.version)).collect(),
            })
        })
        .collect()
}

/// Adds `sign` for the arm of each split in `splits_of_customer` that one customer's first
/// prediction through it (by time, then id) went to, labelled by `outcomes`.
pub(super) fn tally_arms(
    predictions: &[FoldPrediction],
    outcomes: &[(i64, bool)],
    splits: &[FoldSplit],
    splits_of_customer: &[usize],
    sign: i64,
    deltas: &mut HashMap<ArmKey, i64>,
) {
    for &split in splits_of_customer {
        let first = predictions
            .iter()
            .filter(|p| splits[split].takes(p))
            .min_by_key(|p| (p.scored_at, p.id));
        if let Some(first) = first {
            let label = label(outcomes, first.scored_at, SUMS_HORIZON_MILLIS);
            *deltas
                .entry(ArmKey {
                    split,
                    version: first.version,
                    probability_bits: first.probability.to_bits(),
                    label: label_code(label),
                })
                .or_default() += sign;
        }
    }
}

impl Registry {
    pub(super) async fn add_to_arm_sums(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        splits: &[FoldSplit],
        deltas: &[(ArmKey, i64)],
    ) -> Result<(), RegistryError> {
        let columns = [
            "name",
            "alias",
            "started_at",
            "version",
            "probability",
            "label",
        ];
        add_customers(
            self.backend,
            tx,
            "experiment_sums",
            &columns,
            deltas,
            |query, key| {
                let split = &splits[key.split];
                query
                    .bind(split.name.clone())
                    .bind(split.alias.clone())
                    .bind(split.started_at)
                    .bind(key.version)
                    .bind(f64::from_bits(key.probability_bits))
                    .bind(key.label)
            },
        )
        .await
    }

    /// The sums of the split of `alias` of `name` started at `started_at`, by arm, then
    /// probability, then label (none, stayed, churned); and the retention's cut-off (a
    /// split started before it lost predictions the sums count).
    pub async fn experiment_sums(
        &self,
        name: &str,
        alias: &str,
        started_at: i64,
    ) -> Result<(i64, Vec<ArmCount>), RegistryError> {
        let mut tx = self.pool.begin().await?;
        let (kept_from,) =
            sqlx::query_as::<_, (i64,)>("SELECT kept_from FROM performance_fold WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let mut counts = Vec::new();
        let mut rows = sqlx::query_as::<_, (i64, f64, i64, i64)>(
            "SELECT version, probability, label, customers FROM experiment_sums \
             WHERE name = $1 AND alias = $2 AND started_at = $3 AND customers > 0 \
             ORDER BY version, probability, label",
        )
        .bind(name)
        .bind(alias)
        .bind(started_at)
        .fetch(&mut *tx);
        while let Some((version, probability, label, customers)) = rows.try_next().await? {
            counts.push(ArmCount {
                version: version as u32,
                probability,
                churned: match label {
                    0 => None,
                    code => Some(code == 2),
                },
                customers: customers as u64,
            });
        }
        drop(rows);
        tx.commit().await?;
        Ok((kept_from, counts))
    }
}

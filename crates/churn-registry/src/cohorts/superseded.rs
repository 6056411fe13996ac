//! Which folded predictions no later fold needs. A cohort's sums count each customer's
//! last prediction in it, and every cohort (day, ISO week, month) is a union of UTC days:
//! the last of each (model, version, alias, UTC day) holds every cohort's last. A running
//! split counts each customer's first prediction it took. The rest are marked superseded
//! (`folded = 2`) and left out of the index folds read.

use std::collections::{HashMap, HashSet};

use super::arms::FoldSplit;
use super::calendar::CohortPeriod;
use super::rows::{FoldPrediction, ROWS_PER_STATEMENT};
use crate::RegistryError;
use crate::database::{Backend, rows_statement};

/// Of one customer's predictions within its hull (folded and new), those no later fold
/// needs. A superseded prediction stays superseded: later ones of its day only add to it.
pub(super) fn superseded<'a>(
    predictions: &'a [FoldPrediction],
    splits: &[FoldSplit],
) -> Vec<&'a FoldPrediction> {
    let mut last_of_day: HashMap<(&str, i64, &str, i64), &FoldPrediction> = HashMap::new();
    for p in predictions {
        let day = CohortPeriod::Day.start(p.scored_at);
        last_of_day
            .entry((p.name.as_str(), p.version, p.alias.as_str(), day))
            .and_modify(|last| {
                if (p.scored_at, p.id) > (last.scored_at, last.id) {
                    *last = p;
                }
            })
            .or_insert(p);
    }
    let mut needed: HashSet<i64> = last_of_day.values().map(|p| p.id).collect();
    for split in splits {
        let first = predictions
            .iter()
            .filter(|p| split.takes(p))
            .min_by_key(|p| (p.scored_at, p.id));
        needed.extend(first.map(|p| p.id));
    }
    predictions
        .iter()
        .filter(|p| !needed.contains(&p.id))
        .collect()
}

/// Marks waiting predictions (`folded = 0`) as folded or superseded. `folded = 0` lets
/// PostgreSQL find the ids in their partial index: the identity column has no index of its
/// own.
pub(super) async fn mark_waiting(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    predictions: &[&FoldPrediction],
    to: i64,
) -> Result<(), RegistryError> {
    for chunk in predictions.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE predictions SET folded = {to} WHERE folded = 0 AND id IN ({})",
            (1..=chunk.len())
                .map(|k| backend.parameter(k))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
        for p in chunk {
            query = query.bind(p.id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Marks folded predictions superseded, found by customer and time through the index of
/// folded ones (a join on the key: a row-value IN list would scan the table on SQLite).
pub(super) async fn mark_superseded(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    predictions: &[&FoldPrediction],
) -> Result<(), RegistryError> {
    for chunk in predictions.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH superseded (customer_id, scored_at, id) AS (VALUES {}) \
             UPDATE predictions SET folded = 2 FROM superseded WHERE predictions.folded = 1 \
             AND predictions.customer_id = superseded.customer_id \
             AND predictions.scored_at = superseded.scored_at AND predictions.id = superseded.id",
            backend.parameter_tuples(chunk.len(), 3)
        );
        let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
        for p in chunk {
            query = query
                .bind(p.customer_id.clone())
                .bind(p.scored_at)
                .bind(p.id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

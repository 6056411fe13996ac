//! Realized performance kept as sums, so that a request reads a few rows per cohort instead
//! of joining the whole prediction log again. Per version, cohort period and cohort, the
//! sums count the customers whose last prediction in the cohort had each probability,
//! decision and label (by the default horizon). A fold adds the predictions and outcomes
//! logged since the last fold: it recomputes, for the customers they concern, every cohort
//! they can change, from the rows already folded and then from those rows with the new
//! ones, and adds the difference. Folds take turns on a lock of their own, and each is one
//! transaction, so the sums always count exactly the rows marked folded. Folded rows no
//! later fold needs are marked superseded (`superseded.rs`), so that what a fold reads of a
//! customer stays a few rows a day however often it is scored.

mod arms;
mod calendar;
mod rows;
mod superseded;

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::TryStreamExt;

use crate::database::{Backend, FOLD_LOCK_KEY, begin_exclusive, rows_statement};
use crate::{Registry, RegistryError};
pub use arms::ArmCount;
pub use calendar::{CohortPeriod, DAY_MILLIS};
pub use rows::DEFAULT_HORIZON_DAYS;
pub(crate) use rows::label;
use rows::{
    FOLD_PREDICTION_COLUMNS, FoldPrediction, ROWS_PER_STATEMENT, SUMS_HORIZON_MILLIS,
    add_customers, label_code,
};

/// Customers whose rows one statement reads: 300 rows of 4 values.
const CUSTOMERS_PER_READ: usize = 300;

/// How many customers of a cohort had one probability, decision and label.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerCount {
    pub probability: f64,
    pub will_churn: bool,
    pub churned: Option<bool>,
    pub customers: u64,
}

/// One cohort's sums, by probability, then decision, then label (none, stayed, churned).
#[derive(Debug, Clone, PartialEq)]
pub struct CohortSums {
    pub start_millis: i64,
    /// The cohort's first and last folded prediction.
    pub first_scored_at_millis: i64,
    pub last_scored_at_millis: i64,
    pub counts: Vec<CustomerCount>,
}

/// A version's cohorts of one period, as the sums hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceSums {
    /// The retention's cut-off: cohorts starting before it lost predictions that the sums
    /// still count, so only the log can answer for them.
    pub kept_from_millis: i64,
    pub cohorts: Vec<CohortSums>,
}

/// One cell of the sums: version, period, cohort, probability (its bits), decision, label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SumKey {
    name: String,
    version: i64,
    period: CohortPeriod,
    cohort_start: i64,
    probability_bits: u64,
    will_churn: i64,
    label: i64,
}

type CohortKey = (String, i64, CohortPeriod, i64);

/// Widens `hull` to every cohort, of any period, holding an instant of `[from, to]`.
fn widen(hull: &mut (i64, i64), from: i64, to: i64) {
    for period in CohortPeriod::ALL {
        hull.0 = hull.0.min(period.start(from));
        hull.1 = hull.1.max(period.end(period.start(to)));
    }
}

/// Notes that a customer's rows can change `split`'s sums, and widens their hull to read
/// them from the split's start on.
fn concern<'a>(
    splits_of: &mut HashMap<&'a str, Vec<usize>>,
    customer_id: &'a str,
    split: usize,
    splits: &[arms::FoldSplit],
    hull: &mut (i64, i64),
) {
    let theirs = splits_of.entry(customer_id).or_default();
    if !theirs.contains(&split) {
        theirs.push(split);
    }
    *hull = (hull.0.min(splits[split].started_at), i64::MAX);
}

/// Adds `sign` for each cohort inside `hull` that one customer's predictions (sorted by
/// version, time and id) fall in: their last prediction there, labelled by `outcomes`.
fn tally(
    predictions: &[FoldPrediction],
    outcomes: &[(i64, bool)],
    hull: (i64, i64),
    sign: i64,
    deltas: &mut HashMap<SumKey, i64>,
) {
    for version in predictions.chunk_by(|a, b| a.name == b.name && a.version == b.version) {
        for period in CohortPeriod::ALL {
            for cohort in
                version.chunk_by(|a, b| period.start(a.scored_at) == period.start(b.scored_at))
            {
                let last = &cohort[cohort.len() - 1];
                let start = period.start(last.scored_at);
                if start < hull.0 || period.end(start) > hull.1 {
                    continue;
                }
                let label = label(outcomes, last.scored_at, SUMS_HORIZON_MILLIS);
                *deltas
                    .entry(SumKey {
                        name: last.name.clone(),
                        version: last.version,
                        period,
                        cohort_start: start,
                        probability_bits: last.probability.to_bits(),
                        will_churn: last.will_churn,
                        label: label_code(label),
                    })
                    .or_default() += sign;
            }
        }
    }
}

fn sort_predictions(predictions: &mut [FoldPrediction]) {
    predictions.sort_by(|a, b| {
        (&a.name, a.version, a.scored_at, a.id).cmp(&(&b.name, b.version, b.scored_at, b.id))
    });
}

impl Registry {
    /// Folds up to `limit` waiting predictions and up to `limit` waiting outcomes into the
    /// sums, in one transaction; how many it folded (0: nothing was waiting).
    pub async fn fold_performance(&self, limit: usize) -> Result<usize, RegistryError> {
        let mut tx = begin_exclusive(&self.pool, self.backend, FOLD_LOCK_KEY).await?;
        let new_predictions = rows::waiting_predictions(self.backend, &mut tx, limit).await?;
        let new_outcomes = sqlx::query_as::<_, (String, i64, i64)>(
            // By the partial index alone: ordering by the whole key would walk the folded
            // outcomes too.
            "SELECT customer_id, observed_at, churned FROM outcomes WHERE folded = 0 \
             ORDER BY customer_id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        if new_predictions.is_empty() && new_outcomes.is_empty() {
            return Ok(0);
        }
        let splits = arms::running_splits(&mut tx).await?;
        // Each customer's cohorts that the new rows can change: those of a new prediction,
        // and those of every prediction a new outcome can label; and the running splits
        // whose first predictions they can change, read from each split's start.
        let mut hulls: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut splits_of: HashMap<&str, Vec<usize>> = HashMap::new();
        let empty = (i64::MAX, i64::MIN);
        for p in &new_predictions {
            let hull = hulls.entry(p.customer_id.as_str()).or_insert(empty);
            widen(hull, p.scored_at, p.scored_at);
            for split in (0..splits.len()).filter(|&k| splits[k].takes(p)) {
                concern(&mut splits_of, &p.customer_id, split, &splits, hull);
            }
        }
        for (customer_id, observed_at, _) in &new_outcomes {
            let hull = hulls.entry(customer_id.as_str()).or_insert(empty);
            widen(
                hull,
                observed_at.saturating_sub(SUMS_HORIZON_MILLIS),
                *observed_at,
            );
            for split in (0..splits.len()).filter(|&k| splits[k].started_at <= *observed_at) {
                concern(&mut splits_of, customer_id, split, &splits, hull);
            }
        }
        let mut added: HashMap<&str, Vec<&FoldPrediction>> = HashMap::new();
        for p in &new_predictions {
            added.entry(p.customer_id.as_str()).or_default().push(p);
        }
        let mut observed: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
        for (customer_id, observed_at, churned) in &new_outcomes {
            observed
                .entry(customer_id.as_str())
                .or_default()
                .push((*observed_at, *churned != 0));
        }
        let hulls: Vec<(&str, (i64, i64))> = hulls.into_iter().collect();
        let mut deltas: HashMap<SumKey, i64> = HashMap::new();
        let mut arm_deltas = HashMap::new();
        let waiting_ids: HashSet<i64> = new_predictions.iter().map(|p| p.id).collect();
        let mut superseded_ids = HashSet::new();
        let mut superseded_folded = Vec::new();
        for chunk in hulls.chunks(CUSTOMERS_PER_READ) {
            let (mut known, mut outcomes) = self.folded_rows(&mut tx, chunk).await?;
            for &(customer_id, hull) in chunk {
                let mut before = known.remove(customer_id).unwrap_or_default();
                sort_predictions(&mut before);
                let before_outcomes = outcomes.remove(customer_id).unwrap_or_default();
                tally(&before, &before_outcomes, hull, -1, &mut deltas);
                let their_splits = splits_of.get(customer_id).map_or(&[][..], Vec::as_slice);
                arms::tally_arms(
                    &before,
                    &before_outcomes,
                    &splits,
                    their_splits,
                    -1,
                    &mut arm_deltas,
                );
                let mut after = before;
                after.extend(
                    added
                        .get(customer_id)
                        .into_iter()
                        .flatten()
                        .map(|p| (*p).clone()),
                );
                sort_predictions(&mut after);
                for p in superseded::superseded(&after, &splits) {
                    if waiting_ids.contains(&p.id) {
                        superseded_ids.insert(p.id);
                    } else {
                        superseded_folded.push(p.clone());
                    }
                }
                let mut after_outcomes = before_outcomes;
                after_outcomes.extend(observed.get(customer_id).into_iter().flatten());
                after_outcomes.sort_unstable();
                tally(&after, &after_outcomes, hull, 1, &mut deltas);
                arms::tally_arms(
                    &after,
                    &after_outcomes,
                    &splits,
                    their_splits,
                    1,
                    &mut arm_deltas,
                );
            }
        }
        deltas.retain(|_, delta| *delta != 0);
        let deltas: Vec<(SumKey, i64)> = deltas.into_iter().collect();
        self.add_to_sums(&mut tx, &deltas).await?;
        arm_deltas.retain(|_, delta| *delta != 0);
        let arm_deltas: Vec<_> = arm_deltas.into_iter().collect();
        self.add_to_arm_sums(&mut tx, &splits, &arm_deltas).await?;
        self.widen_cohort_bounds(&mut tx, &new_predictions).await?;
        let (superseded_new, folded_new): (Vec<&FoldPrediction>, Vec<&FoldPrediction>) =
            new_predictions
                .iter()
                .partition(|p| superseded_ids.contains(&p.id));
        superseded::mark_waiting(self.backend, &mut tx, &folded_new, 1).await?;
        superseded::mark_waiting(self.backend, &mut tx, &superseded_new, 2).await?;
        let superseded_folded: Vec<&FoldPrediction> = superseded_folded.iter().collect();
        superseded::mark_superseded(self.backend, &mut tx, &superseded_folded).await?;
        self.mark_outcomes_folded(&mut tx, &new_outcomes).await?;
        tx.commit().await?;
        Ok(new_predictions.len() + new_outcomes.len())
    }

    /// The folded predictions (not superseded) and outcomes of some customers within their
    /// hulls, by customer;
    /// the outcomes reach a horizon past each hull, as labels need.
    async fn folded_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customers: &[(&str, (i64, i64))],
    ) -> Result<
        (
            HashMap<String, Vec<FoldPrediction>>,
            HashMap<String, Vec<(i64, bool)>>,
        ),
        RegistryError,
    > {
        let hulls = self.backend.parameter_tuples(customers.len(), 4);
        let bind = |sql: String| {
            // As many tuples as the fold touched customers: never the same statement twice.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for &(customer_id, (lo, hi)) in customers {
                query = query
                    .bind(customer_id.to_owned())
                    .bind(lo)
                    .bind(hi)
                    .bind(hi.saturating_add(SUMS_HORIZON_MILLIS));
            }
            query
        };
        let mut predictions: HashMap<String, Vec<FoldPrediction>> = HashMap::new();
        let mut rows = bind(format!(
            "WITH hull (customer_id, lo, hi, labels_until) AS (VALUES {hulls}) \
             SELECT {FOLD_PREDICTION_COLUMNS} FROM hull JOIN predictions p \
             ON p.customer_id = hull.customer_id AND p.scored_at >= hull.lo AND p.scored_at < hull.hi \
             WHERE p.folded = 1"
        ))
        .fetch(&mut **tx);
        while let Some(row) = rows.try_next().await? {
            let prediction = <FoldPrediction as sqlx::FromRow<_>>::from_row(&row)?;
            predictions
                .entry(prediction.customer_id.clone())
                .or_default()
                .push(prediction);
        }
        drop(rows);
        let mut outcomes: HashMap<String, Vec<(i64, bool)>> = HashMap::new();
        let mut rows = bind(format!(
            "WITH hull (customer_id, lo, hi, labels_until) AS (VALUES {hulls}) \
             SELECT o.customer_id, o.observed_at, o.churned FROM hull JOIN outcomes o \
             ON o.customer_id = hull.customer_id AND o.observed_at >= hull.lo \
             AND o.observed_at <= hull.labels_until WHERE o.folded = 1"
        ))
        .fetch(&mut **tx);
        while let Some(row) = rows.try_next().await? {
            let (customer_id, observed_at, churned) =
                <(String, i64, i64) as sqlx::FromRow<_>>::from_row(&row)?;
            outcomes
                .entry(customer_id)
                .or_default()
                .push((observed_at, churned != 0));
        }
        for theirs in outcomes.values_mut() {
            theirs.sort_unstable();
        }
        Ok((predictions, outcomes))
    }

    async fn add_to_sums(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        deltas: &[(SumKey, i64)],
    ) -> Result<(), RegistryError> {
        let columns = [
            "name",
            "version",
            "period",
            "cohort_start",
            "probability",
            "will_churn",
            "label",
        ];
        add_customers(
            self.backend,
            tx,
            "performance_sums",
            &columns,
            deltas,
            |query, key| {
                query
                    .bind(key.name.clone())
                    .bind(key.version)
                    .bind(key.period.code())
                    .bind(key.cohort_start)
                    .bind(f64::from_bits(key.probability_bits))
                    .bind(key.will_churn)
                    .bind(key.label)
            },
        )
        .await
    }

    async fn widen_cohort_bounds(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        predictions: &[FoldPrediction],
    ) -> Result<(), RegistryError> {
        let mut bounds: HashMap<CohortKey, (i64, i64)> = HashMap::new();
        for p in predictions {
            for period in CohortPeriod::ALL {
                let key = (p.name.clone(), p.version, period, period.start(p.scored_at));
                let (first, last) = bounds.entry(key).or_insert((p.scored_at, p.scored_at));
                (*first, *last) = ((*first).min(p.scored_at), (*last).max(p.scored_at));
            }
        }
        let (least, greatest) = match self.backend {
            Backend::Sqlite => ("min", "max"),
            Backend::Postgres => ("LEAST", "GREATEST"),
        };
        let bounds: Vec<(CohortKey, (i64, i64))> = bounds.into_iter().collect();
        for chunk in bounds.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO performance_cohorts (name, version, period, cohort_start, first_scored_at, last_scored_at) \
                 VALUES {} ON CONFLICT (name, version, period, cohort_start) DO UPDATE SET \
                 first_scored_at = {least}(performance_cohorts.first_scored_at, excluded.first_scored_at), \
                 last_scored_at = {greatest}(performance_cohorts.last_scored_at, excluded.last_scored_at)",
                self.backend.parameter_tuples(chunk.len(), 6)
            );
            let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
            for ((name, version, period, start), (first, last)) in chunk {
                query = query
                    .bind(name.clone())
                    .bind(*version)
                    .bind(period.code())
                    .bind(*start)
                    .bind(*first)
                    .bind(*last);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn mark_outcomes_folded(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        outcomes: &[(String, i64, i64)],
    ) -> Result<(), RegistryError> {
        for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
            // A join on the key, which both databases answer from the primary key (a
            // row-value IN list would scan the table on SQLite).
            let sql = format!(
                "WITH folding (customer_id, observed_at, churned) AS (VALUES {}) \
                 UPDATE outcomes SET folded = 1 FROM folding WHERE outcomes.customer_id = folding.customer_id \
                 AND outcomes.observed_at = folding.observed_at AND outcomes.churned = folding.churned",
                self.backend.parameter_tuples(chunk.len(), 3)
            );
            let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
            for (customer_id, observed_at, churned) in chunk {
                query = query
                    .bind(customer_id.clone())
                    .bind(*observed_at)
                    .bind(*churned);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// A version's cohorts of `period` starting in `[from, until)`, as the sums hold them,
    /// read in one snapshot.
    pub async fn performance_sums(
        &self,
        name: &str,
        version: u32,
        period: CohortPeriod,
        from: i64,
        until: i64,
    ) -> Result<PerformanceSums, RegistryError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let (kept_from_millis,) =
            sqlx::query_as::<_, (i64,)>("SELECT kept_from FROM performance_fold WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let cohorts = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT cohort_start, first_scored_at, last_scored_at FROM performance_cohorts \
             WHERE name = $1 AND version = $2 AND period = $3 AND cohort_start >= $4 AND cohort_start < $5 \
             ORDER BY cohort_start",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(period.code())
        .bind(from)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        let mut cohorts: Vec<CohortSums> = cohorts
            .into_iter()
            .map(|(start_millis, first, last)| CohortSums {
                start_millis,
                first_scored_at_millis: first,
                last_scored_at_millis: last,
                counts: Vec::new(),
            })
            .collect();
        let mut rows = sqlx::query_as::<_, (i64, f64, i64, i64, i64)>(
            "SELECT cohort_start, probability, will_churn, label, customers FROM performance_sums \
             WHERE name = $1 AND version = $2 AND period = $3 AND cohort_start >= $4 AND cohort_start < $5 \
             AND customers > 0 ORDER BY cohort_start, probability, will_churn, label",
        )
        .bind(name)
        .bind(i64::from(version))
        .bind(period.code())
        .bind(from)
        .bind(until)
        .fetch(&mut *tx);
        let mut cohort = cohorts.iter_mut().peekable();
        while let Some((start, probability, will_churn, label, customers)) = rows.try_next().await?
        {
            while cohort.next_if(|c| c.start_millis < start).is_some() {}
            let Some(sums) = cohort.peek_mut().filter(|c| c.start_millis == start) else {
                return Err(RegistryError::Storage(format!(
                    "performance sums of {name} version {version} hold cohort {start}, which has no bounds"
                )));
            };
            sums.counts.push(CustomerCount {
                probability,
                will_churn: will_churn != 0,
                churned: match label {
                    0 => None,
                    code => Some(code == 2),
                },
                customers: customers as u64,
            });
        }
        drop(rows);
        tx.commit().await?;
        Ok(PerformanceSums {
            kept_from_millis,
            cohorts,
        })
    }

    /// Deletes the predictions scored before `millis`, the sums of the cohorts they were
    /// all of, and the sums' empty cells; how many predictions. Cohorts cut by `millis` are read from the log.
    pub async fn delete_predictions_before(&self, millis: i64) -> Result<u64, RegistryError> {
        let mut tx = begin_exclusive(&self.pool, self.backend, FOLD_LOCK_KEY).await?;
        sqlx::query("UPDATE performance_fold SET kept_from = $1 WHERE id = 1 AND kept_from < $1")
            .bind(millis)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM predictions WHERE scored_at < $1")
            .bind(millis)
            .execute(&mut *tx)
            .await?;
        // Cells that no customer is in any more (their customers' last prediction moved
        // or got another label) are read as absent, and go here.
        sqlx::query("DELETE FROM performance_sums WHERE customers = 0")
            .execute(&mut *tx)
            .await?;
        for period in CohortPeriod::ALL {
            for table in ["performance_sums", "performance_cohorts"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE period = $1 AND cohort_start < $2"
                )))
                .bind(period.code())
                .bind(period.start(millis))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}

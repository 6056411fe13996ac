//! The prediction log and the outcomes that label it. High-volume, unaudited rows: they
//! are written in multi-row statements outside the registry's write lock (SQLite still
//! serializes them with its own lock), and read back joined, one version at a time.

use futures_util::TryStreamExt;

use crate::cohorts::label;
use crate::database::rows_statement;
use crate::{Registry, RegistryError, now_millis};

/// Rows per INSERT statement: 500 rows of 7 values stay far below both databases' limit
/// on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// One answer the server gave.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedPrediction {
    pub name: String,
    pub version: u32,
    /// The alias the request came through; empty when it named the version.
    pub alias: String,
    pub customer_id: String,
    pub probability: f64,
    pub will_churn: bool,
    pub scored_at_millis: i64,
}

/// What became of a customer, and when it was observed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutcomeRecord {
    pub customer_id: String,
    pub churned: bool,
    pub observed_at_millis: i64,
}

/// A logged prediction of one version, with the label its customer's outcomes give it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPrediction {
    pub customer_id: String,
    pub version: u32,
    pub probability: f64,
    pub will_churn: bool,
    pub scored_at_millis: i64,
    /// The first outcome observed at or after the prediction and within the horizon.
    pub churned: Option<bool>,
}

/// Which logged predictions a join reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionWindow {
    pub name: String,
    pub source: PredictionSource,
    /// Scored at or after this, and before `until_millis`.
    pub since_millis: i64,
    pub until_millis: i64,
    pub horizon_millis: i64,
}

/// The predictions of a model a join reads: one version's, or every answer that came
/// through one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredictionSource {
    Version(u32),
    Alias(String),
}

impl Registry {
    /// Appends logged predictions, in one transaction.
    pub async fn log_predictions(&self, rows: &[LoggedPrediction]) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO predictions (name, version, alias, customer_id, probability, will_churn, scored_at) VALUES {}",
                self.backend.parameter_tuples(chunk.len(), 7)
            );
            let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
            for row in chunk {
                query = query
                    .bind(row.name.as_str())
                    .bind(i64::from(row.version))
                    .bind(row.alias.as_str())
                    .bind(row.customer_id.as_str())
                    .bind(row.probability)
                    .bind(i64::from(row.will_churn))
                    .bind(row.scored_at_millis);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records outcomes, each once however often it is sent, in one transaction; how many
    /// of them label a logged prediction of their customer scored at most `horizon_millis`
    /// before them.
    pub async fn record_outcomes(
        &self,
        outcomes: &[OutcomeRecord],
        horizon_millis: i64,
    ) -> Result<u64, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let now = now_millis();
        let mut matched = 0;
        for chunk in outcomes.chunks(ROWS_PER_STATEMENT) {
            let insert = format!(
                "INSERT INTO outcomes (customer_id, observed_at, churned, recorded_at) VALUES {} \
                 ON CONFLICT (customer_id, observed_at, churned) DO NOTHING",
                self.backend.parameter_tuples(chunk.len(), 4)
            );
            let mut query = rows_statement(insert, chunk.len(), ROWS_PER_STATEMENT);
            for outcome in chunk {
                query = query
                    .bind(outcome.customer_id.clone())
                    .bind(outcome.observed_at_millis)
                    .bind(i64::from(outcome.churned))
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
            let count = format!(
                "WITH sent (customer_id, observed_at) AS (VALUES {}) \
                 SELECT COUNT(*) FROM sent WHERE EXISTS (SELECT 1 FROM predictions p \
                 WHERE p.customer_id = sent.customer_id AND p.scored_at <= sent.observed_at \
                 AND p.scored_at >= sent.observed_at - {})",
                self.backend.parameter_tuples(chunk.len(), 2),
                self.backend.parameter(chunk.len() * 2 + 1)
            );
            let mut query = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count))
                .persistent(chunk.len() == ROWS_PER_STATEMENT);
            for outcome in chunk {
                query = query
                    .bind(outcome.customer_id.clone())
                    .bind(outcome.observed_at_millis);
            }
            matched += query.bind(horizon_millis).fetch_one(&mut *tx).await?.0 as u64;
        }
        tx.commit().await?;
        Ok(matched)
    }

    /// Visits every prediction of `window`, by customer and then time, each with its label:
    /// the customer's first outcome observed at or after it and within the horizon (among
    /// outcomes at the same instant, a stay before a churn). The predictions and the
    /// outcomes that can label them are read as two streams ordered by customer id (byte
    /// order on both databases: PostgreSQL's columns use the "C" collation) and merged, so
    /// the time grows with the rows, without a lookup per prediction.
    pub async fn scan_labelled_predictions(
        &self,
        window: &PredictionWindow,
        mut visit: impl FnMut(LabelledPrediction),
    ) -> Result<(), RegistryError> {
        let read = |filter: &str| {
            format!(
                "SELECT customer_id, version, probability, will_churn, scored_at FROM predictions \
                 WHERE name = $1 AND {filter} = $2 AND scored_at >= $3 AND scored_at < $4 \
                 ORDER BY customer_id, scored_at, id"
            )
        };
        type Row = (String, i64, f64, i64, i64);
        let mut predictions = match &window.source {
            PredictionSource::Version(version) => {
                sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(read("version")))
                    .bind(&window.name)
                    .bind(i64::from(*version))
                    .bind(window.since_millis)
                    .bind(window.until_millis)
                    .fetch(&self.pool)
            }
            PredictionSource::Alias(alias) => {
                sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(read("alias")))
                    .bind(&window.name)
                    .bind(alias.as_str())
                    .bind(window.since_millis)
                    .bind(window.until_millis)
                    .fetch(&self.pool)
            }
        };
        let mut outcomes = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT customer_id, observed_at, churned FROM outcomes \
             WHERE observed_at >= $1 AND observed_at <= $2 \
             ORDER BY customer_id, observed_at, churned",
        )
        .bind(window.since_millis)
        .bind(window.until_millis.saturating_add(window.horizon_millis))
        .fetch(&self.pool);
        // The outcomes of the customer being visited, oldest first, and the next one's first.
        let mut theirs: Vec<(i64, bool)> = Vec::new();
        let mut pending: Option<(String, i64, i64)> = outcomes.try_next().await?;
        let mut current: Option<String> = None;
        while let Some((customer_id, version, probability, will_churn, scored_at)) =
            predictions.try_next().await?
        {
            if current.as_deref() != Some(customer_id.as_str()) {
                theirs.clear();
                while let Some(outcome) = pending.take() {
                    if outcome.0 > customer_id {
                        pending = Some(outcome);
                        break;
                    }
                    if outcome.0 == customer_id {
                        theirs.push((outcome.1, outcome.2 != 0));
                    }
                    pending = outcomes.try_next().await?;
                }
                current = Some(customer_id.clone());
            }
            let churned = label(&theirs, scored_at, window.horizon_millis);
            visit(LabelledPrediction {
                customer_id,
                version: version as u32,
                probability,
                will_churn: will_churn != 0,
                scored_at_millis: scored_at,
                churned,
            });
        }
        Ok(())
    }
}

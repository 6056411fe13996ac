//! What the cohorts' and the experiments' sums share: a logged prediction as a fold reads
//! it, and how an outcome labels it.

use super::calendar::DAY_MILLIS;
use crate::RegistryError;
use crate::database::{Backend, rows_statement};

pub(super) type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// How long after a prediction an outcome labels it, unless a request says otherwise; the
/// sums are kept for this horizon.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
pub(super) const SUMS_HORIZON_MILLIS: i64 = DEFAULT_HORIZON_DAYS as i64 * DAY_MILLIS;

/// Rows per INSERT, UPDATE or DELETE statement, within both databases' parameter limits.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// The label a customer's outcomes (by time, a stay before a churn at one instant) give a
/// prediction scored at `scored_at`: the first outcome at or after it, within the horizon.
pub(crate) fn label(outcomes: &[(i64, bool)], scored_at: i64, horizon_millis: i64) -> Option<bool> {
    let first = outcomes.partition_point(|(observed_at, _)| *observed_at < scored_at);
    outcomes
        .get(first)
        .filter(|(observed_at, _)| *observed_at - scored_at <= horizon_millis)
        .map(|(_, churned)| *churned)
}

/// A logged prediction as a fold reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct FoldPrediction {
    pub(super) id: i64,
    pub(super) customer_id: String,
    pub(super) name: String,
    pub(super) version: i64,
    pub(super) alias: String,
    pub(super) probability: f64,
    pub(super) will_churn: i64,
    pub(super) scored_at: i64,
}

pub(super) const FOLD_PREDICTION_COLUMNS: &str =
    "p.id, p.customer_id, p.name, p.version, p.alias, p.probability, p.will_churn, p.scored_at";

/// A label as the sums store it.
pub(super) fn label_code(label: Option<bool>) -> i64 {
    match label {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

/// Adds each delta to the `customers` of its cell of `table`, creating the cells it names;
/// `bind_key` binds a cell's `key_columns`.
pub(super) async fn add_customers<K>(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
    key_columns: &[&str],
    deltas: &[(K, i64)],
    bind_key: impl Fn(AnyQuery, &K) -> AnyQuery,
) -> Result<(), RegistryError> {
    let columns = key_columns.join(", ");
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({columns}, customers) VALUES {} \
             ON CONFLICT ({columns}) DO UPDATE SET customers = {table}.customers + excluded.customers",
            backend.parameter_tuples(chunk.len(), key_columns.len() + 1)
        );
        let mut query = rows_statement(sql, chunk.len(), ROWS_PER_STATEMENT);
        for (key, delta) in chunk {
            query = bind_key(query, key).bind(*delta);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The oldest `limit` predictions waiting to be folded. SQLite's answer is one JSON array
/// of them: sqlx runs each SQLite connection on a thread of its own and hands every row
/// over a bounded channel, a wake-up and a context switch per row, which was most of a
/// fold's time (docs/performance.md); the array crosses once. A probability travels as
/// `%!.20e` text, 21 significant digits, which reads back as the same double.
pub(super) async fn waiting_predictions(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    limit: usize,
) -> Result<Vec<FoldPrediction>, RegistryError> {
    let waiting = format!(
        "SELECT {FOLD_PREDICTION_COLUMNS} FROM predictions p WHERE p.folded = 0 \
         ORDER BY p.id LIMIT $1"
    );
    if backend == Backend::Postgres {
        return Ok(
            sqlx::query_as::<_, FoldPrediction>(sqlx::AssertSqlSafe(waiting))
                .bind(limit as i64)
                .fetch_all(&mut **tx)
                .await?,
        );
    }
    let (array,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT json_group_array(json_array(p.id, p.customer_id, p.name, p.version, p.alias, \
         printf('%!.20e', p.probability), p.will_churn, p.scored_at)) FROM ({waiting}) p"
    )))
    .bind(limit as i64)
    .fetch_one(&mut **tx)
    .await?;
    type Row = (i64, String, String, i64, String, String, i64, i64);
    let malformed = |e: String| RegistryError::Storage(format!("waiting predictions: {e}"));
    let rows: Vec<Row> = serde_json::from_str(&array).map_err(|e| malformed(e.to_string()))?;
    rows.into_iter()
        .map(
            |(id, customer_id, name, version, alias, probability, will_churn, scored_at)| {
                Ok(FoldPrediction {
                    probability: probability
                        .parse()
                        .map_err(|_| malformed(format!("probability {probability:?}")))?,
                    id,
                    customer_id,
                    name,
                    version,
                    alias,
                    will_churn,
                    scored_at,
                })
            },
        )
        .collect()
}

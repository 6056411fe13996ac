//! The reader thread's side: input rows parsed into batches ready to send, each row's
//! slot (sent to the server, or failed locally), and the rows as compact columns.

use churn_api::v1 as pb;
use tokio::sync::mpsc;

use super::input::{self, ColumnPlan, InputRow, LocalError};

pub(super) enum RowSlot {
    Sent {
        row: u64,
        customer_id: String,
        value: Option<String>,
    },
    Local {
        row: u64,
        error: LocalError,
    },
}

/// One batch ready to send: where each input row went, and the rows for the server.
pub(super) struct PreparedBatch {
    pub(super) slots: Vec<RowSlot>,
    /// `None` when every row of the batch failed locally.
    pub(super) columns: Option<pb::CustomerColumns>,
}

impl PreparedBatch {
    fn new(rows: Vec<InputRow>, feature_names: &[String]) -> PreparedBatch {
        let mut read = Vec::with_capacity(rows.len());
        let slots = rows
            .into_iter()
            .map(|InputRow { row, outcome }| match outcome {
                Ok(row_read) => {
                    let slot = RowSlot::Sent {
                        row,
                        customer_id: row_read.customer_id.clone(),
                        value: row_read.value.clone(),
                    };
                    read.push(row_read);
                    slot
                }
                Err(error) => RowSlot::Local { row, error },
            })
            .collect();
        PreparedBatch {
            slots,
            columns: (!read.is_empty()).then(|| columns(feature_names, read)),
        }
    }
}

/// Parses the input into batches ready to send, after skipping the rows a previous run
/// finished. Runs on its own thread, beside the stream.
pub(super) fn read_batches(
    input: &mut dyn input::Input,
    plan: &ColumnPlan,
    skip: u64,
    batch_rows: usize,
    batches: &mpsc::Sender<anyhow::Result<PreparedBatch>>,
) {
    let feature_names: Vec<String> = plan.feature_names().map(str::to_owned).collect();
    for skipped in 0..skip {
        match input.next(plan) {
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                let _ = batches.blocking_send(Err(error));
                return;
            }
            None => {
                let _ = batches.blocking_send(Err(anyhow::anyhow!(
                    "the input ends after {skipped} rows but the journal has {skip}: it is not the file the job started with"
                )));
                return;
            }
        }
    }
    let mut batch = Vec::with_capacity(batch_rows);
    let send = |batch: Vec<InputRow>| {
        batches
            .blocking_send(Ok(PreparedBatch::new(batch, &feature_names)))
            .is_ok()
    };
    while let Some(row) = input.next(plan) {
        match row {
            Ok(row) => batch.push(row),
            Err(error) => {
                let _ = batches.blocking_send(Err(error));
                return;
            }
        }
        if batch.len() == batch_rows
            && !send(std::mem::replace(
                &mut batch,
                Vec::with_capacity(batch_rows),
            ))
        {
            return;
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
}

/// The rows as columns, each in the most compact form its values allow in this batch.
fn columns(names: &[String], rows: Vec<input::ReadRow>) -> pb::CustomerColumns {
    use pb::feature_column::Values;
    use pb::feature_value::Kind;
    let mut customer_ids = Vec::with_capacity(rows.len());
    let mut cells: Vec<Vec<pb::FeatureValue>> = vec![Vec::with_capacity(rows.len()); names.len()];
    for row in rows {
        customer_ids.push(row.customer_id);
        for (column, value) in cells.iter_mut().zip(row.features) {
            column.push(value);
        }
    }
    let features = names
        .iter()
        .zip(cells)
        .map(|(name, values)| {
            let numbers: Option<Vec<f64>> = values
                .iter()
                .map(|v| match v.kind {
                    Some(Kind::Number(number)) => Some(number),
                    None => Some(f64::NAN),
                    _ => None,
                })
                .collect();
            let values = if let Some(values) = numbers {
                Values::Numbers(pb::NumberColumn { values })
            } else if values.iter().all(|v| matches!(v.kind, Some(Kind::Text(_)))) {
                Values::Texts(pb::TextColumn {
                    values: values
                        .into_iter()
                        .filter_map(|v| match v.kind {
                            Some(Kind::Text(text)) => Some(text),
                            _ => None,
                        })
                        .collect(),
                })
            } else {
                Values::Mixed(pb::ValueColumn { values })
            };
            pb::FeatureColumn {
                name: name.clone(),
                values: Some(values),
            }
        })
        .collect();
    pb::CustomerColumns {
        customer_ids,
        features,
    }
}

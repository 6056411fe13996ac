//! `ScoreArrow`'s wire form: an Arrow IPC stream of customers in, one of scores out. The
//! customers become the same `CustomerColumns` that a columnar `ScoreBatchRequest` does,
//! so rows, versions and errors are those of `ScoreStream`; only the encoding differs,
//! and no message is built per customer on either side.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field};
use churn_api::v1 as pb;

use crate::api::from_proto::model_selector;
use crate::api::to_proto::{risk_band, row_error, served_by};
use crate::domain::error::ServiceError;
use crate::domain::serving::scoring::ScoredBatch;
use crate::domain::serving::served::ModelSelector;
use crate::domain::serving::streams::StreamMessage;
use crate::domain::{
    ColumnValues, CustomerBatch, CustomerColumns, FeatureKind, FeatureValue, Schema,
};

/// The column that names customers, as in the Python client's tables.
const CUSTOMER_ID: &str = "customer_id";

/// One `ScoreArrowRequest`, its IPC stream decoded (record batches share the message's
/// buffer; cells are converted later, on the task that scores them).
#[derive(Debug)]
pub struct ArrowMessage {
    model: Option<pb::ModelRef>,
    first_row: u32,
    batches: Vec<RecordBatch>,
}

impl ArrowMessage {
    pub fn decode(request: pb::ScoreArrowRequest) -> Result<ArrowMessage, ServiceError> {
        let invalid = |error: arrow_schema::ArrowError| {
            ServiceError::InvalidRequest(format!("arrow_ipc: not an Arrow IPC stream: {error}"))
        };
        let batches = if request.arrow_ipc.is_empty() {
            Vec::new()
        } else {
            StreamReader::try_new(std::io::Cursor::new(request.arrow_ipc), None)
                .map_err(invalid)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?
        };
        Ok(ArrowMessage {
            model: request.model,
            first_row: request.first_row,
            batches,
        })
    }
}

impl StreamMessage for ArrowMessage {
    fn model(&self) -> Result<ModelSelector, ServiceError> {
        model_selector(self.model.clone())
    }

    fn first_row(&self) -> u32 {
        self.first_row
    }

    fn rows(&self) -> u64 {
        self.batches.iter().map(|b| b.num_rows() as u64).sum()
    }

    fn top_reasons(&self) -> usize {
        0
    }

    fn into_customers(self, schema: &Schema) -> Result<CustomerBatch, ServiceError> {
        let mut ids = Vec::with_capacity(self.rows() as usize);
        let Some(first) = self.batches.first() else {
            return Ok(CustomerBatch::Columns(CustomerColumns::default()));
        };
        let arrow_schema = first.schema();
        match arrow_schema.column_with_name(CUSTOMER_ID) {
            Some((index, field)) => {
                for batch in &self.batches {
                    push_ids(&mut ids, field, batch.column(index))?;
                }
            }
            None => ids.resize(self.rows() as usize, String::new()),
        }
        let mut columns = Vec::new();
        for feature in &schema.features {
            let Some((index, field)) = arrow_schema.column_with_name(&feature.name) else {
                continue;
            };
            let arrays: Vec<&ArrayRef> = self.batches.iter().map(|b| b.column(index)).collect();
            columns.push((feature.name.clone(), column(field, feature.kind, &arrays)?));
        }
        Ok(CustomerBatch::Columns(CustomerColumns { ids, columns }))
    }
}

fn unsupported(field: &Field, expected: &str) -> ServiceError {
    ServiceError::InvalidRequest(format!(
        "arrow_ipc: column `{}` is Arrow {}; expected {expected}",
        field.name(),
        field.data_type()
    ))
}

fn push_ids(ids: &mut Vec<String>, field: &Field, array: &ArrayRef) -> Result<(), ServiceError> {
    let texts = |ids: &mut Vec<String>, cell: Option<&str>| ids.push(cell.unwrap_or("").to_owned());
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(|c| texts(ids, c)),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(|c| texts(ids, c)),
        DataType::Utf8View => array.as_string_view().iter().for_each(|c| texts(ids, c)),
        DataType::Null => ids.resize(ids.len() + array.len(), String::new()),
        DataType::Int8 => integer_ids::<Int8Type>(ids, array),
        DataType::Int16 => integer_ids::<Int16Type>(ids, array),
        DataType::Int32 => integer_ids::<Int32Type>(ids, array),
        DataType::Int64 => integer_ids::<Int64Type>(ids, array),
        DataType::UInt8 => integer_ids::<UInt8Type>(ids, array),
        DataType::UInt16 => integer_ids::<UInt16Type>(ids, array),
        DataType::UInt32 => integer_ids::<UInt32Type>(ids, array),
        DataType::UInt64 => integer_ids::<UInt64Type>(ids, array),
        _ => return Err(unsupported(field, "text or integers")),
    }
    Ok(())
}

/// Integer ids written out exactly (through f64, 64-bit ids past 2^53 would change).
fn integer_ids<T: arrow_array::ArrowPrimitiveType>(ids: &mut Vec<String>, array: &ArrayRef)
where
    T::Native: std::fmt::Display,
{
    ids.extend(
        array
            .as_primitive::<T>()
            .iter()
            .map(|id| id.map_or_else(String::new, |id| id.to_string())),
    );
}

/// One feature's cells from every batch, in the form `ScoreBatch`'s columns take.
fn column(
    field: &Field,
    kind: FeatureKind,
    arrays: &[&ArrayRef],
) -> Result<ColumnValues, ServiceError> {
    let data_type = field.data_type();
    let any_null = arrays.iter().any(|a| a.logical_null_count() > 0);
    if data_type.is_numeric() && !matches!(data_type, DataType::Decimal256(..)) {
        let mut values = Vec::new();
        for array in arrays {
            let mut numbers = numbers(array).ok_or_else(|| unsupported(field, "numbers"))?;
            if let Some(nulls) = array.logical_nulls() {
                nulls.iter().zip(numbers.iter_mut()).for_each(|(valid, n)| {
                    if !valid {
                        *n = f64::NAN;
                    }
                });
            }
            values.extend(numbers);
        }
        // A categorical feature's numeric cells are read as a CSV would hold them.
        return Ok(match kind {
            FeatureKind::Text => ColumnValues::Values(
                values
                    .into_iter()
                    .map(|n| match n.is_nan() {
                        true => FeatureValue::Missing,
                        false => FeatureValue::Text(n.to_string()),
                    })
                    .collect(),
            ),
            FeatureKind::Number | FeatureKind::Bool => ColumnValues::Numbers(values),
        });
    }
    match data_type {
        DataType::Boolean if !any_null => Ok(ColumnValues::Flags(
            arrays
                .iter()
                .flat_map(|a| a.as_boolean().values().iter())
                .collect(),
        )),
        DataType::Boolean => Ok(ColumnValues::Values(
            arrays
                .iter()
                .flat_map(|a| a.as_boolean().iter())
                .map(|cell| cell.map_or(FeatureValue::Missing, FeatureValue::Flag))
                .collect(),
        )),
        DataType::Null => Ok(ColumnValues::Values(vec![
            FeatureValue::Missing;
            arrays
                .iter()
                .map(|a| a.len())
                .sum()
        ])),
        _ => {
            let mut cells = Vec::new();
            for array in arrays {
                push_texts(&mut cells, field, array)?;
            }
            Ok(match kind {
                FeatureKind::Text if !any_null => {
                    ColumnValues::Texts(cells.into_iter().map(|c| c.unwrap_or_default()).collect())
                }
                _ => ColumnValues::Values(
                    cells
                        .into_iter()
                        .map(|cell| {
                            cell.map_or(FeatureValue::Missing, |text| {
                                FeatureValue::from_field(kind, &text)
                            })
                        })
                        .collect(),
                ),
            })
        }
    }
}

/// A text column's cells, plain, large, view or dictionary-encoded; `None` is null.
fn push_texts(
    cells: &mut Vec<Option<String>>,
    field: &Field,
    array: &ArrayRef,
) -> Result<(), ServiceError> {
    let owned = |cell: Option<&str>| cell.map(str::to_owned);
    match array.data_type() {
        DataType::Utf8 => cells.extend(array.as_string::<i32>().iter().map(owned)),
        DataType::LargeUtf8 => cells.extend(array.as_string::<i64>().iter().map(owned)),
        DataType::Utf8View => cells.extend(array.as_string_view().iter().map(owned)),
        DataType::Dictionary(_, _) => {
            let dictionary = array
                .as_any_dictionary_opt()
                .ok_or_else(|| unsupported(field, "numbers, booleans or text"))?;
            let mut words = Vec::new();
            push_texts(&mut words, field, dictionary.values())?;
            let keys = dictionary.normalized_keys();
            let nulls = array.logical_nulls();
            cells.extend(keys.into_iter().enumerate().map(|(row, key)| {
                match nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    true => None,
                    false => words.get(key).cloned().flatten(),
                }
            }));
        }
        _ => return Err(unsupported(field, "numbers, booleans or text")),
    }
    Ok(())
}

/// A numeric array's values as f64 (nulls hold whatever the buffer holds).
fn numbers(array: &ArrayRef) -> Option<Vec<f64>> {
    fn each<T: arrow_array::ArrowPrimitiveType>(
        array: &ArrayRef,
        to_f64: impl Fn(T::Native) -> f64,
    ) -> Vec<f64> {
        array
            .as_primitive::<T>()
            .values()
            .iter()
            .map(|v| to_f64(*v))
            .collect()
    }
    Some(match array.data_type() {
        DataType::Float64 => array.as_primitive::<Float64Type>().values().to_vec(),
        DataType::Float32 => each::<Float32Type>(array, f64::from),
        DataType::Float16 => each::<Float16Type>(array, |v| v.to_f64()),
        DataType::Int8 => each::<Int8Type>(array, f64::from),
        DataType::Int16 => each::<Int16Type>(array, f64::from),
        DataType::Int32 => each::<Int32Type>(array, f64::from),
        DataType::Int64 => each::<Int64Type>(array, |v| v as f64),
        DataType::UInt8 => each::<UInt8Type>(array, f64::from),
        DataType::UInt16 => each::<UInt16Type>(array, f64::from),
        DataType::UInt32 => each::<UInt32Type>(array, f64::from),
        DataType::UInt64 => each::<UInt64Type>(array, |v| v as f64),
        DataType::Decimal128(_, scale) => {
            let divisor = 10f64.powi(i32::from(*scale));
            array
                .as_primitive::<arrow_array::types::Decimal128Type>()
                .values()
                .iter()
                .map(|v| *v as f64 / divisor)
                .collect()
        }
        _ => return None,
    })
}

/// The scores of one message as an IPC stream of one record batch.
pub fn encode(batch: ScoredBatch) -> Result<pb::ScoreArrowResponse, ServiceError> {
    let rows = batch.outcomes.len();
    let mut probability = Vec::with_capacity(rows);
    let mut will_churn = Vec::with_capacity(rows);
    let mut band = Vec::with_capacity(rows);
    let mut error_feature = Vec::with_capacity(rows);
    let mut error = Vec::with_capacity(rows);
    for (outcome, row) in batch.outcomes.iter().zip(batch.first_row..) {
        match outcome {
            Ok(scored) => {
                probability.push(Some(scored.churn_probability));
                will_churn.push(Some(scored.will_churn));
                // The enum's names, as the Python client and churnctl write bands.
                band.push(Some(risk_band(scored.risk_band).as_str_name()));
                error_feature.push(None);
                error.push(None);
            }
            Err(rejected) => {
                let rejected = row_error(row, rejected);
                probability.push(None);
                will_churn.push(None);
                band.push(None);
                error_feature.push(Some(rejected.feature));
                error.push(Some(rejected.message));
            }
        }
    }
    let first_row = batch.first_row;
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "row",
            Arc::new(UInt32Array::from_iter_values(
                (0..rows as u32).map(|i| first_row + i),
            )),
        ),
        (
            CUSTOMER_ID,
            Arc::new(StringArray::from_iter_values(&batch.customer_ids)),
        ),
        (
            "churn_probability",
            Arc::new(Float64Array::from(probability)),
        ),
        ("will_churn", Arc::new(BooleanArray::from(will_churn))),
        ("risk_band", Arc::new(StringArray::from(band))),
        ("error_feature", Arc::new(StringArray::from(error_feature))),
        ("error", Arc::new(StringArray::from(error))),
    ];
    if let Some(row_served) = &batch.row_served {
        let versions = row_served
            .iter()
            .map(|served| served.as_ref().map(|served| served.version));
        columns.push(("version", Arc::new(UInt32Array::from_iter(versions))));
    }
    let failed = |error: arrow_schema::ArrowError| {
        ServiceError::TaskFailed(format!("encoding the scores as Arrow: {error}"))
    };
    let record = RecordBatch::try_from_iter(columns).map_err(failed)?;
    let mut writer = StreamWriter::try_new(Vec::new(), &record.schema()).map_err(failed)?;
    writer.write(&record).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(pb::ScoreArrowResponse {
        arrow_ipc: writer.into_inner().map_err(failed)?,
        served_by: batch.row_served.is_none().then(|| served_by(&batch.served)),
    })
}

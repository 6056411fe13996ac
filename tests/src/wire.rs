//! Requests in other wire forms: customers as columns, as Arrow IPC, and KServe V2 inputs.

use churn_api::inference as kserve;
use churn_api::v1 as pb;

use crate::*;

/// The customers as columns, each in the form its values allow.
pub fn customer_columns(customers: &[pb::Customer]) -> pb::CustomerColumns {
    use pb::feature_column::Values;
    use pb::feature_value::Kind;
    let names: Vec<String> = customers[0].features.keys().cloned().collect();
    let features = names
        .iter()
        .map(|name| {
            let values: Vec<pb::FeatureValue> = customers
                .iter()
                .map(|c| c.features.get(name).cloned().unwrap_or_default())
                .collect();
            let numbers: Option<Vec<f64>> = values
                .iter()
                .map(|v| match v.kind {
                    Some(Kind::Number(n)) => Some(n),
                    None => Some(f64::NAN),
                    _ => None,
                })
                .collect();
            let texts: Option<Vec<String>> = values
                .iter()
                .map(|v| match &v.kind {
                    Some(Kind::Text(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            let values = match (numbers, texts) {
                (Some(values), _) => Values::Numbers(pb::NumberColumn { values }),
                (_, Some(values)) => Values::Texts(pb::TextColumn { values }),
                _ => Values::Mixed(pb::ValueColumn { values }),
            };
            pb::FeatureColumn {
                name: name.clone(),
                values: Some(values),
            }
        })
        .collect();
    pb::CustomerColumns {
        customer_ids: customers.iter().map(|c| c.customer_id.clone()).collect(),
        features,
    }
}

/// KServe `ModelInfer` inputs for `rows`: one typed `[rows, 1]` tensor per input the
/// model's metadata lists, in its order and with its datatypes.
pub fn kserve_inputs(
    metadata: &kserve::ModelMetadataResponse,
    rows: &[FixtureCustomer],
) -> Vec<kserve::model_infer_request::InferInputTensor> {
    metadata
        .inputs
        .iter()
        .map(|tensor| {
            let mut contents = kserve::InferTensorContents::default();
            for customer in rows {
                let value = &customer
                    .features
                    .iter()
                    .find(|(name, _)| *name == tensor.name)
                    .expect("every input is a feature")
                    .1;
                match (value, tensor.datatype.as_str()) {
                    (FixtureValue::Text(text), _) => {
                        contents.bytes_contents.push(text.clone().into_bytes())
                    }
                    (FixtureValue::Number(v), "INT64") => contents.int64_contents.push(*v as i64),
                    (FixtureValue::Number(v), _) => contents.fp32_contents.push(*v as f32),
                    (FixtureValue::Missing, _) => contents.fp32_contents.push(f32::NAN),
                }
            }
            kserve::model_infer_request::InferInputTensor {
                name: tensor.name.clone(),
                datatype: tensor.datatype.clone(),
                shape: vec![rows.len() as i64, 1],
                parameters: Default::default(),
                contents: Some(contents),
            }
        })
        .collect()
}

/// The customers of `columns` as an Arrow IPC stream, as `ScoreArrow` takes them: numbers
/// as float64 (NaN as null), texts as utf8, flags as booleans, and a mixed column as the
/// utf8 a CSV would hold (numbers written out, missing as null).
pub fn arrow_ipc(columns: &pb::CustomerColumns) -> Vec<u8> {
    use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
    use pb::feature_column::Values;
    use pb::feature_value::Kind;
    use std::sync::Arc;
    let mut arrays: Vec<(String, ArrayRef)> = vec![(
        "customer_id".to_owned(),
        Arc::new(StringArray::from_iter_values(&columns.customer_ids)),
    )];
    for column in &columns.features {
        let array: ArrayRef = match &column.values {
            Some(Values::Numbers(numbers)) => Arc::new(Float64Array::from_iter(
                numbers.values.iter().map(|n| (!n.is_nan()).then_some(*n)),
            )),
            Some(Values::Texts(texts)) => Arc::new(StringArray::from_iter_values(&texts.values)),
            Some(Values::Flags(flags)) => Arc::new(BooleanArray::from(flags.values.clone())),
            Some(Values::Mixed(mixed)) => Arc::new(StringArray::from_iter(
                mixed.values.iter().map(|value| match &value.kind {
                    Some(Kind::Number(n)) => Some(n.to_string()),
                    Some(Kind::Text(text)) => Some(text.clone()),
                    Some(Kind::Flag(flag)) => Some(flag.to_string()),
                    None => None,
                }),
            )),
            None => continue,
        };
        arrays.push((column.name.clone(), array));
    }
    arrow_ipc_of(&RecordBatch::try_from_iter(arrays).expect("a record batch"))
}

/// One record batch as an Arrow IPC stream.
pub fn arrow_ipc_of(batch: &arrow_array::RecordBatch) -> Vec<u8> {
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())
        .expect("an IPC writer");
    writer.write(batch).expect("an IPC batch");
    writer.finish().expect("an IPC stream");
    writer.into_inner().expect("the IPC bytes")
}

/// `ScoreArrow`'s answer as the `RowResult`s `ScoreBatch` gives for the same rows.
pub fn arrow_results(response: &pb::ScoreArrowResponse) -> Vec<pb::RowResult> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt32Type};
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(&response.arrow_ipc), None)
            .expect("an IPC stream");
    let mut results = Vec::new();
    for batch in reader {
        let batch = batch.expect("a record batch");
        let column = |name: &str| batch.column_by_name(name).expect(name).clone();
        let rows = column("row");
        let ids = column("customer_id");
        let probability = column("churn_probability");
        let will_churn = column("will_churn");
        let band = column("risk_band");
        let feature = column("error_feature");
        let error = column("error");
        // Only through a traffic split: the version that answered each row.
        let versions = batch.column_by_name("version").cloned();
        for i in 0..batch.num_rows() {
            use arrow_array::Array;
            let outcome = if error.is_null(i) {
                let band = match band.as_string::<i32>().value(i) {
                    "LOW" => pb::RiskBand::Low,
                    "MEDIUM" => pb::RiskBand::Medium,
                    "HIGH" => pb::RiskBand::High,
                    other => panic!("risk band {other}"),
                };
                pb::row_result::Outcome::Prediction(pb::Prediction {
                    customer_id: ids.as_string::<i32>().value(i).to_owned(),
                    churn_probability: probability.as_primitive::<Float64Type>().value(i),
                    will_churn: will_churn.as_boolean().value(i),
                    risk_band: band.into(),
                    top_reasons: Vec::new(),
                })
            } else {
                assert!(probability.is_null(i) && will_churn.is_null(i) && band.is_null(i));
                pb::row_result::Outcome::Error(pb::RowError {
                    feature: feature.as_string::<i32>().value(i).to_owned(),
                    message: error.as_string::<i32>().value(i).to_owned(),
                })
            };
            let served_by = versions
                .as_ref()
                .filter(|v| v.is_valid(i))
                .map(|v| pb::ServedBy {
                    version: v.as_primitive::<UInt32Type>().value(i),
                    ..Default::default()
                });
            results.push(pb::RowResult {
                row: rows.as_primitive::<UInt32Type>().value(i),
                outcome: Some(outcome),
                served_by,
            });
        }
    }
    results
}

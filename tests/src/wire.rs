//! Requests in other wire forms: customers as columns, and KServe V2 inputs.

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

#![no_main]
//! Arbitrary customers against each bundled model, through validation, encoding and ONNX
//! Runtime, as rows and as columns: whatever arrives, every row gets exactly one outcome,
//! nothing panics, and every probability is a number in [0, 1]. Names and categories are
//! drawn from the schema as often as not, so the fuzzer reaches the deep checks.

use arbitrary::Arbitrary;
use churn_engine::{
    ColumnValues, Customer, CustomerBatch, CustomerColumns, FeatureValue, Model, Prediction,
    RowError,
};
use libfuzzer_sys::fuzz_target;

mod bundled;
use bundled::models;

const MOST_ROWS: usize = 64;

#[derive(Arbitrary, Debug)]
enum Name {
    /// The schema's feature at this position (modulo its length).
    Feature(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Number(f64),
    /// A category the feature knows (modulo their count), or the empty string.
    Category(u8),
    Text(String),
    Flag(bool),
    Missing,
}

#[derive(Arbitrary, Debug)]
struct Input {
    second_model: bool,
    rows: Vec<(String, Vec<(Name, Value)>)>,
}

fn customers(model: &Model, input: Input) -> Vec<Customer> {
    let features = &model.schema().features;
    input
        .rows
        .into_iter()
        .take(MOST_ROWS)
        .map(|(id, values)| Customer {
            id,
            features: values
                .into_iter()
                .map(|(name, value)| {
                    let (name, feature) = match name {
                        Name::Feature(i) => {
                            let feature = &features[usize::from(i) % features.len()];
                            (feature.name.clone(), Some(feature))
                        }
                        Name::Other(name) => (name, None),
                    };
                    let value = match value {
                        Value::Number(v) => FeatureValue::Number(v),
                        Value::Category(i) => FeatureValue::Text(
                            feature
                                .and_then(|f| f.categories.as_ref())
                                .and_then(|c| c.values.get(usize::from(i) % c.values.len().max(1)))
                                .cloned()
                                .unwrap_or_default(),
                        ),
                        Value::Text(text) => FeatureValue::Text(text),
                        Value::Flag(flag) => FeatureValue::Flag(flag),
                        Value::Missing => FeatureValue::Missing,
                    };
                    (name, value)
                })
                .collect(),
        })
        .collect()
}

/// The same customers as columns: one column per name any row uses, absent values missing.
fn as_columns(rows: &[Customer]) -> CustomerColumns {
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|c| c.features.iter().map(|(name, _)| name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    CustomerColumns {
        ids: rows.iter().map(|c| c.id.clone()).collect(),
        columns: names
            .into_iter()
            .map(|name| {
                let values = rows
                    .iter()
                    .map(|c| {
                        c.features
                            .iter()
                            .find(|(n, _)| n == name)
                            .map_or(FeatureValue::Missing, |(_, v)| v.clone())
                    })
                    .collect();
                (name.to_owned(), ColumnValues::Values(values))
            })
            .collect(),
    }
}

fn check(rows: usize, outcomes: Vec<Result<Prediction, RowError>>) {
    assert_eq!(outcomes.len(), rows, "one outcome per row");
    for prediction in outcomes.into_iter().flatten() {
        assert!(
            (0.0..=1.0).contains(&prediction.churn_probability),
            "{prediction:?}"
        );
    }
}

fuzz_target!(|input: Input| {
    let model = &models()[usize::from(input.second_model)];
    let rows = customers(model, input);
    check(rows.len(), model.predict(&rows).expect("the engine runs"));
    let columns = CustomerBatch::Columns(as_columns(&rows));
    check(
        rows.len(),
        model.predict_batch(&columns).expect("the engine runs"),
    );
});

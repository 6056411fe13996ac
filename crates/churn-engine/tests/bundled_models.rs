//! The bundled models through the real ONNX Runtime: schemas as the graphs define them,
//! and probabilities equal to Python onnxruntime's (fixtures written by models/train.py).

use std::collections::HashMap;
use std::path::PathBuf;

use churn_engine::{Customer, FeatureKind, FeatureValue, Model, ModelOptions, OnnxRuntime, UnknownCategory};
use serde_json::Value;

const TOLERANCE: f64 = 1e-5;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn load(name: &str) -> Model {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let bytes = std::fs::read(models_dir().join(format!("{name}.onnx"))).expect("bundled model");
    Model::load(runtime, &bytes, &ModelOptions::default()).expect("bundled model loads")
}

fn fixture(name: &str) -> Vec<(Customer, f64)> {
    let text = std::fs::read_to_string(models_dir().join(format!("fixtures/{name}.json"))).expect("fixture");
    let json: Value = serde_json::from_str(&text).expect("fixture json");
    json["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|c| {
            let features = c["features"]
                .as_object()
                .expect("features")
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::Null => FeatureValue::Missing,
                        Value::Object(kind) if kind.contains_key("text") => {
                            FeatureValue::Text(kind["text"].as_str().expect("text").to_owned())
                        }
                        Value::Object(kind) => FeatureValue::Number(kind["number"].as_f64().expect("number")),
                        other => panic!("unexpected fixture value {other}"),
                    };
                    (name.clone(), value)
                })
                .collect::<HashMap<_, _>>();
            let customer = Customer { id: c["customer_id"].as_str().expect("id").to_owned(), features };
            (customer, c["churn_probability"].as_f64().expect("probability"))
        })
        .collect()
}

fn check_against_fixture(name: &str) {
    let model = load(name);
    let rows = fixture(name);
    assert!(rows.iter().any(|(c, _)| c.features.values().any(|v| *v == FeatureValue::Missing)));
    let customers: Vec<Customer> = rows.iter().map(|(c, _)| c.clone()).collect();
    let predictions = model.predict(&customers).expect("inference");
    assert_eq!(predictions.len(), rows.len());
    for ((customer, expected), prediction) in rows.iter().zip(&predictions) {
        let prediction = prediction.as_ref().unwrap_or_else(|e| panic!("{}: {e}", customer.id));
        let delta = (prediction.churn_probability - expected).abs();
        assert!(delta <= TOLERANCE, "{name} {}: {} vs python {expected}", customer.id, prediction.churn_probability);
        assert_eq!(prediction.will_churn, prediction.churn_probability >= model.threshold());
    }
    // One row at a time gives the batch's numbers, up to float32 summation order.
    for ((customer, _), batch) in rows.iter().zip(&predictions).take(20) {
        let single = model.predict(std::slice::from_ref(customer)).expect("inference");
        let single = single[0].as_ref().expect("valid row").churn_probability;
        let batch = batch.as_ref().expect("valid row").churn_probability;
        assert!((single - batch).abs() <= 1e-6, "{}: single {single} vs batch {batch}", customer.id);
    }
}

#[test]
fn logistic_regression_pipeline_matches_python_onnxruntime() {
    check_against_fixture("telco-logreg");
}

#[test]
fn lightgbm_dense_model_matches_python_onnxruntime() {
    check_against_fixture("telco-lgbm");
}

#[test]
fn per_feature_schema_comes_from_the_graph() {
    let model = load("telco-logreg");
    let schema = model.schema();
    assert_eq!(schema.features.len(), 19);
    let contract = schema.feature("contract").expect("contract");
    assert_eq!(contract.kind, FeatureKind::Text);
    let categories = contract.categories.as_ref().expect("categories from the OneHotEncoder");
    assert_eq!(categories.values, ["Month-to-month", "One year", "Two year"]);
    assert_eq!(categories.unknown, UnknownCategory::Score, "handle_unknown='ignore' exports zeros=1");
    let tenure = schema.feature("tenure").expect("tenure");
    assert_eq!((tenure.kind, tenure.missing_allowed), (FeatureKind::Number, false));
    let total = schema.feature("totalcharges").expect("totalcharges");
    assert!(total.missing_allowed, "totalcharges goes through an Imputer");
    assert_eq!(model.class_labels(), ["0", "1"]);
    assert_eq!(model.positive_class(), "1");
    assert_eq!(model.producer(), "skl2onnx");
}

#[test]
fn dense_schema_comes_from_the_metadata() {
    let model = load("telco-lgbm");
    let schema = model.schema();
    let names: Vec<&str> = schema.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names[..3], ["gender", "seniorcitizen", "partner"]);
    let payment = schema.feature("paymentmethod").expect("paymentmethod");
    assert_eq!(payment.kind, FeatureKind::Text);
    assert_eq!(payment.categories.as_ref().expect("coded").unknown, UnknownCategory::Reject);
    assert!(schema.features.iter().all(|f| f.missing_allowed), "trees route NaN");
    assert_eq!(model.producer(), "OnnxMLTools");
}

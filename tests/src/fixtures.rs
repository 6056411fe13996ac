//! The repository's files and the fixtures models/train.py writes: customers, explanations,
//! the bundled models, and the tolerances of the comparisons.

use std::path::{Path, PathBuf};

use churn_api::v1 as pb;
use serde_json::Value;

/// The bytes of a repository file.
pub fn repo_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(repo_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if let Ok(relative) = path.strip_prefix(root) {
                found.push(relative.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

/// A path in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// One raw value as a fixture stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum FixtureValue {
    Number(f64),
    Text(String),
    Missing,
}

/// One customer of a fixture, with the probability Python onnxruntime computed.
#[derive(Debug, Clone)]
pub struct FixtureCustomer {
    pub id: String,
    pub features: Vec<(String, FixtureValue)>,
    pub churn_probability: f64,
}

/// Reads `key` ("customers" or "unseen_category_customers") of a fixture file.
pub fn fixture(relative: &str, key: &str) -> Vec<FixtureCustomer> {
    fixture_json(relative)[key]
        .as_array()
        .unwrap_or_else(|| panic!("{relative} has no {key}"))
        .iter()
        .map(|customer| FixtureCustomer {
            churn_probability: customer["churn_probability"]
                .as_f64()
                .expect("churn_probability"),
            ..fixture_customer(customer)
        })
        .collect()
}

/// Reads `key` of a fixture file whose customers carry no probability.
pub fn fixture_customers(relative: &str, key: &str) -> Vec<FixtureCustomer> {
    fixture_json(relative)[key]
        .as_array()
        .unwrap_or_else(|| panic!("{relative} has no {key}"))
        .iter()
        .map(fixture_customer)
        .collect()
}

/// A fixture file's JSON.
pub fn fixture_json(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(relative)).expect("fixture file");
    serde_json::from_str(&text).expect("fixture json")
}

/// A customer's id and features, with no probability.
fn fixture_customer(customer: &Value) -> FixtureCustomer {
    FixtureCustomer {
        id: customer["customer_id"]
            .as_str()
            .expect("customer_id")
            .to_owned(),
        features: customer["features"]
            .as_object()
            .expect("features")
            .iter()
            .map(|(name, value)| (name.clone(), fixture_value(value)))
            .collect(),
        churn_probability: f64::NAN,
    }
}

/// Python shap's attributions for hold-out customers, against the first rows of a CSV.
#[derive(Debug, Clone)]
pub struct ExplanationFixture {
    pub background_csv: String,
    pub background_rows: usize,
    pub base_value: f64,
    pub customers: Vec<ExplainedCustomer>,
    /// For a linear model: each feature's spread of its margin term over the background.
    pub native_importance: Option<Vec<(String, f64)>>,
}

/// One customer with shap's output value and attributions by raw feature name.
#[derive(Debug, Clone)]
pub struct ExplainedCustomer {
    pub customer: FixtureCustomer,
    pub output_value: f64,
    pub attributions: Vec<(String, f64)>,
}

/// Reads an `explain-*.json` fixture written by `models/train.py`.
pub fn explanation_fixture(relative: &str) -> ExplanationFixture {
    let json = fixture_json(relative);
    let number = |v: &Value| v.as_f64().expect("number");
    ExplanationFixture {
        background_csv: json["background"]["csv"]
            .as_str()
            .expect("background csv")
            .to_owned(),
        background_rows: json["background"]["first_rows"]
            .as_u64()
            .expect("background rows") as usize,
        base_value: number(&json["base_value"]),
        native_importance: json["native_importance"].as_object().map(|scores| {
            scores
                .iter()
                .map(|(name, v)| (name.clone(), number(v)))
                .collect()
        }),
        customers: json["customers"]
            .as_array()
            .expect("customers")
            .iter()
            .map(|c| ExplainedCustomer {
                customer: fixture_customer(c),
                output_value: number(&c["output_value"]),
                attributions: c["attributions"]
                    .as_object()
                    .expect("attributions")
                    .iter()
                    .map(|(name, v)| (name.clone(), number(v)))
                    .collect(),
            })
            .collect(),
    }
}

/// The first `rows` customers of a repository CSV, by the model's feature names.
pub fn csv_customers(
    schema: &churn_engine::Schema,
    relative: &str,
    rows: usize,
) -> Vec<churn_engine::Customer> {
    let mut reader = csv::Reader::from_path(repo_path(relative)).expect("csv file");
    let header: Vec<String> = reader
        .headers()
        .expect("csv header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mapping = churn_engine::ColumnMapping::new(schema, &header, Some("customerid"))
        .unwrap_or_else(|missing| panic!("{relative} lacks {missing:?}"));
    reader
        .records()
        .take(rows)
        .map(|record| {
            let record = record.expect("csv record");
            mapping.customer(&record.iter().collect::<Vec<_>>())
        })
        .collect()
}

fn fixture_value(value: &Value) -> FixtureValue {
    match value {
        Value::Null => FixtureValue::Missing,
        Value::Object(kind) => match (kind.get("text"), kind.get("number")) {
            (Some(text), _) => FixtureValue::Text(text.as_str().expect("text").to_owned()),
            (_, Some(number)) => FixtureValue::Number(number.as_f64().expect("number")),
            _ => panic!("fixture value {value} has neither text nor number"),
        },
        other => panic!("unexpected fixture value {other}"),
    }
}

impl FixtureCustomer {
    pub fn to_proto(&self) -> pb::Customer {
        pb::Customer {
            customer_id: self.id.clone(),
            features: self
                .features
                .iter()
                .map(|(name, value)| {
                    let kind = match value {
                        FixtureValue::Number(v) => Some(pb::feature_value::Kind::Number(*v)),
                        FixtureValue::Text(t) => Some(pb::feature_value::Kind::Text(t.clone())),
                        FixtureValue::Missing => None,
                    };
                    (name.clone(), pb::FeatureValue { kind })
                })
                .collect(),
        }
    }

    pub fn to_engine(&self) -> churn_engine::Customer {
        churn_engine::Customer {
            id: self.id.clone(),
            features: self
                .features
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        FixtureValue::Number(v) => churn_engine::FeatureValue::Number(*v),
                        FixtureValue::Text(t) => churn_engine::FeatureValue::Text(t.clone()),
                        FixtureValue::Missing => churn_engine::FeatureValue::Missing,
                    };
                    (name.clone(), value)
                })
                .collect(),
        }
    }
}

/// Lowercase hex SHA-256 of a repository file.
pub fn file_sha256(relative: &str) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(repo_path(relative)).expect("file");
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One bundled model: its file and fixture stem, and what the seeded registry makes of it.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    pub file: &'static str,
    pub version: u32,
    pub alias: &'static str,
}

/// The name the server seeds the bundled models under.
pub const BUNDLED_MODEL: &str = "telco-churn";

/// The bundled models, as the seeded registry serves them.
pub const BUNDLED: &[Bundled] = &[
    Bundled {
        file: "telco-logreg",
        version: 1,
        alias: "production",
    },
    Bundled {
        file: "telco-lgbm",
        version: 2,
        alias: "challenger",
    },
];

/// The bundled LightGBM model (version 2, alias `challenger`).
pub const LGBM: Bundled = BUNDLED[1];

/// Agreement required between churnserve and Python onnxruntime.
pub const PYTHON_TOLERANCE: f64 = 1e-5;

/// Agreement required with scikit-learn's metrics of the same predictions.
pub const SCIKIT_LEARN_AGREEMENT: f64 = 1e-9;

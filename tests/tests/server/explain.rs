//! Attributions on the real ONNX Runtime against Python shap: exact TreeSHAP on the
//! LightGBM and XGBoost ONNX trees, Shapley sampling on the logistic pipeline within its
//! reported error, and additivity for every model family.

use churn_engine::{Customer, FeatureValue, Model, ModelOptions, OnnxRuntime};
use churn_explain::{
    Background, ExplainError, ExplainOptions, Explanation, Method, explain, native_importance,
    permutation_importance,
};
use tests::{ExplanationFixture, csv_customers, explanation_fixture, repo_path};

const TREE_TOLERANCE: f64 = 1e-5;
const ADDITIVITY: f64 = 1e-6;
const FAMILIES: &[&str] = &[
    "models/telco-logreg.onnx",
    "models/telco-lgbm.onnx",
    "tests/models/telco-xgb.onnx",
    "tests/models/telco-xgb-opset5.onnx",
    "tests/models/telco-forest.onnx",
    "tests/models/telco-mlp.onnx",
    "tests/models/telco-svm.onnx",
    "tests/models/telco-naive-bayes.onnx",
];

fn load(path: &str) -> Model {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let bytes = std::fs::read(repo_path(path)).expect("model file");
    Model::load(runtime, &bytes, &ModelOptions::default()).expect("model loads")
}

fn background(model: &Model, fixture: &ExplanationFixture) -> Background {
    let rows = csv_customers(
        model.schema(),
        &fixture.background_csv,
        fixture.background_rows,
    );
    assert_eq!(rows.len(), fixture.background_rows);
    Background::new(model, &rows).expect("background scores")
}

fn assert_additive(explanation: &Explanation, context: &str) {
    let sum: f64 = explanation
        .attributions
        .iter()
        .map(|a| a.contribution)
        .sum();
    let gap = (explanation.base_value + sum - explanation.output_value).abs();
    assert!(
        gap <= ADDITIVITY,
        "{context}: base + sum misses the output by {gap:e}"
    );
}

fn attribution(explanation: &Explanation, feature: &str) -> f64 {
    explanation
        .attributions
        .iter()
        .find(|a| a.feature == feature)
        .unwrap_or_else(|| panic!("no attribution for {feature}"))
        .contribution
}

#[test]
fn tree_shap_on_the_onnx_trees_matches_python_shap() {
    for (model_path, fixture_path) in [
        (
            "models/telco-lgbm.onnx",
            "models/fixtures/explain-telco-lgbm.json",
        ),
        (
            "tests/models/telco-xgb.onnx",
            "tests/models/explain-telco-xgb.json",
        ),
    ] {
        let model = load(model_path);
        let fixture = explanation_fixture(fixture_path);
        let background = background(&model, &fixture);
        background.tree_path().expect("the tree path applies");
        assert!(fixture.customers.len() >= 50);
        for expected in &fixture.customers {
            let context = format!("{model_path} {}", expected.customer.id);
            let explanation = explain(
                &model,
                &background,
                &expected.customer.to_engine(),
                &ExplainOptions::default(),
            )
            .expect(&context);
            assert_eq!(explanation.method, Method::TreeShap, "{context}");
            assert_eq!(explanation.max_abs_error, 0.0);
            assert_additive(&explanation, &context);
            assert!((explanation.base_value - fixture.base_value).abs() <= TREE_TOLERANCE);
            assert!(
                (explanation.output_value - expected.output_value).abs() <= TREE_TOLERANCE,
                "{context}: output {} vs shap {}",
                explanation.output_value,
                expected.output_value
            );
            for (feature, shap_value) in &expected.attributions {
                let ours = attribution(&explanation, feature);
                assert!(
                    (ours - shap_value).abs() <= TREE_TOLERANCE,
                    "{context} {feature}: {ours} vs shap {shap_value}"
                );
            }
        }
    }
}

#[test]
fn sampled_shapley_on_the_logistic_pipeline_is_within_its_reported_error_of_shap() {
    let model = load("models/telco-logreg.onnx");
    let fixture = explanation_fixture("models/fixtures/explain-telco-logreg.json");
    let background = background(&model, &fixture);
    assert!(background.tree_path().is_err());
    assert!(fixture.customers.len() >= 50);
    let mut worst_ratio = 0.0f64;
    for expected in &fixture.customers {
        let context = format!("logreg {}", expected.customer.id);
        let explanation = explain(
            &model,
            &background,
            &expected.customer.to_engine(),
            &ExplainOptions::default(),
        )
        .expect(&context);
        assert_eq!(explanation.method, Method::PermutationShapley);
        assert_additive(&explanation, &context);
        assert!(
            explanation.max_abs_error > 0.0 && explanation.max_abs_error < 1e-3,
            "{context}: a useless bound {}",
            explanation.max_abs_error
        );
        assert!(
            (explanation.base_value - fixture.base_value).abs() <= explanation.max_abs_error,
            "{context}: base {} vs shap {}",
            explanation.base_value,
            fixture.base_value
        );
        for (feature, shap_value) in &expected.attributions {
            let gap = (attribution(&explanation, feature) - shap_value).abs();
            worst_ratio = worst_ratio.max(gap / explanation.max_abs_error);
            assert!(
                gap <= explanation.max_abs_error,
                "{context} {feature}: off shap by {gap:e}, reported bound {:e}",
                explanation.max_abs_error
            );
        }
    }
    eprintln!("logreg: worst |ours - shap| / reported bound = {worst_ratio:.3}");
}

#[test]
fn every_model_family_gets_an_additive_explanation_of_its_own_score() {
    let fixture = explanation_fixture("models/fixtures/explain-telco-logreg.json");
    for path in FAMILIES {
        let model = load(path);
        let background = background(&model, &fixture);
        for expected in fixture.customers.iter().take(3) {
            let customer = expected.customer.to_engine();
            let explanation = explain(&model, &background, &customer, &ExplainOptions::default())
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let context = format!("{path} {} ({:?})", customer.id, explanation.method);
            assert_additive(&explanation, &context);
            assert_eq!(
                explanation.attributions.len(),
                model.schema().features.len()
            );
            let probability = model
                .predict(std::slice::from_ref(&customer))
                .expect("scores")[0]
                .as_ref()
                .expect("valid")
                .churn_probability;
            let logit = (probability / (1.0 - probability)).ln();
            // The tree path's float64 margin and ONNX Runtime's float32 probability differ
            // only by output rounding; the other methods start from that probability.
            let allowed = explanation.max_abs_error.max(1e-4);
            assert!(
                (explanation.output_value - logit).abs() <= allowed || !logit.is_finite(),
                "{context}: output {} vs logit(p) {logit}",
                explanation.output_value
            );
            let expected_method = if path.contains("lgbm") || path.contains("xgb") {
                Method::TreeShap
            } else {
                Method::PermutationShapley
            };
            assert_eq!(explanation.method, expected_method, "{context}");
        }
    }
}

#[test]
fn a_small_schema_is_enumerated_exactly() {
    let model = load("tests/models/strict-onehot.onnx");
    let rows = csv_customers(model.schema(), "models/data/test.csv", 30);
    let background = Background::new(&model, &rows).expect("background");
    let customer = &csv_customers(model.schema(), "models/data/test.csv", 31)[30];
    let explanation =
        explain(&model, &background, customer, &ExplainOptions::default()).expect("explains");
    assert_eq!(explanation.method, Method::ExactShapley);
    assert_additive(&explanation, "strict-onehot");
    // Two players: φ_a = ½[v(a) − v(∅)] + ½[v(ab) − v(b)], recomputed from the model.
    let mean_margin = |customers: &[Customer]| {
        let predictions = model.predict(customers).expect("scores");
        predictions
            .iter()
            .map(|p| {
                let p = p.as_ref().expect("valid").churn_probability;
                (p / (1.0 - p)).ln()
            })
            .sum::<f64>()
            / customers.len() as f64
    };
    let with = |feature: &str| -> Vec<Customer> {
        rows.iter()
            .map(|row| {
                let mut hybrid = row.clone();
                for (name, value) in &mut hybrid.features {
                    if name == feature {
                        *value = customer
                            .features
                            .iter()
                            .find(|(n, _)| n == feature)
                            .expect("feature")
                            .1
                            .clone();
                    }
                }
                hybrid
            })
            .collect()
    };
    let none = mean_margin(&rows);
    let all = explanation.output_value;
    let contract_first = mean_margin(&with("contract")) - none;
    let contract_last = all - mean_margin(&with("tenure"));
    let expected = (contract_first + contract_last) / 2.0;
    let ours = attribution(&explanation, "contract");
    assert!((ours - expected).abs() < 1e-9, "{ours} vs {expected}");
}

#[test]
fn a_background_row_the_model_refuses_is_named() {
    let model = load("models/telco-lgbm.onnx");
    let mut rows = csv_customers(model.schema(), "models/data/test.csv", 5);
    for (name, value) in &mut rows[3].features {
        if name == "contract" {
            *value = FeatureValue::Text("Weekly".to_owned());
        }
    }
    match Background::new(&model, &rows) {
        Err(ExplainError::InvalidBackground { row: 3, error }) => {
            assert!(error.to_string().contains("contract"), "{error}");
        }
        other => panic!("expected row 3 refused, got {other:?}"),
    }
    assert!(matches!(
        Background::new(&model, &[]),
        Err(ExplainError::EmptyBackground)
    ));
}

#[test]
fn importance_by_raw_feature_name() {
    let lgbm = load("models/telco-lgbm.onnx");
    let native = native_importance(&lgbm, &[]).expect("trees have split counts");
    assert_eq!(native.len(), 19);
    let splits: f64 = native.iter().map(|f| f.importance).sum();
    let ensemble = lgbm.tree_ensemble().expect("trees");
    let split_nodes = ensemble
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| matches!(n, churn_engine::TreeNode::Split { .. }))
        .count();
    assert_eq!(splits as usize, split_nodes);
    assert!(
        native
            .windows(2)
            .all(|w| w[0].importance >= w[1].importance)
    );

    // The logistic pipeline's coefficients, read from the graph, against scikit-learn's.
    let logreg = load("models/telco-logreg.onnx");
    let fixture = explanation_fixture("models/fixtures/explain-telco-logreg.json");
    let background = csv_customers(
        logreg.schema(),
        &fixture.background_csv,
        fixture.background_rows,
    );
    let linear = native_importance(&logreg, &background).expect("linear spread");
    assert!(
        linear
            .windows(2)
            .all(|w| w[0].importance >= w[1].importance)
    );
    let expected = fixture
        .native_importance
        .expect("the logistic fixture has native importance");
    assert_eq!(linear.len(), expected.len());
    for score in &linear {
        let python = expected
            .iter()
            .find(|(feature, _)| *feature == score.feature)
            .expect("feature")
            .1;
        assert!(
            (score.importance - python).abs() <= 1e-5,
            "{}: {} vs scikit-learn {python}",
            score.feature,
            score.importance
        );
    }
    assert!(matches!(
        native_importance(&logreg, &[]),
        Err(ExplainError::Unavailable(_))
    ));

    let mlp = load("tests/models/telco-mlp.onnx");
    let refusal = native_importance(&mlp, &background).expect_err("neither trees nor linear");
    assert!(
        refusal
            .to_string()
            .contains("use PERMUTATION or MEAN_ABS_SHAP"),
        "{refusal}"
    );

    let customers = csv_customers(logreg.schema(), "models/data/test.csv", 400);
    let churned = churned_labels(400);
    let permutation =
        permutation_importance(&logreg, &customers, &churned, 4, 7).expect("both classes");
    assert_eq!(permutation.len(), 19);
    assert!(
        permutation
            .windows(2)
            .all(|w| w[0].importance >= w[1].importance)
    );
    assert!(
        permutation[0].importance > 0.01 && permutation[0].stddev > 0.0,
        "{permutation:?}"
    );
    let one_class = vec![true; 400];
    assert!(matches!(
        permutation_importance(&logreg, &customers, &one_class, 2, 7),
        Err(ExplainError::Unavailable(_))
    ));
}

fn churned_labels(rows: usize) -> Vec<bool> {
    let mut reader = csv::Reader::from_path(repo_path("models/data/test.csv")).expect("csv");
    let column = reader
        .headers()
        .expect("header")
        .iter()
        .position(|h| h == "churn")
        .expect("churn column");
    reader
        .records()
        .take(rows)
        .map(|r| &r.expect("record")[column] == "Yes")
        .collect()
}

/// A customer valid for `model`, every value drawn by `pick` from what the schema accepts:
/// one of its categories, or a number in a plausible range (whole for integer inputs).
fn random_customer(model: &Model, pick: &[u32]) -> Customer {
    use churn_engine::{FeatureKind, TensorType};
    let features = model
        .schema()
        .features
        .iter()
        .zip(pick.iter().cycle())
        .map(|(feature, &draw)| {
            let value = match (&feature.kind, &feature.categories) {
                (FeatureKind::Text, Some(categories)) => FeatureValue::Text(
                    categories.values[draw as usize % categories.values.len()].clone(),
                ),
                (FeatureKind::Number, _) if feature.tensor_type == TensorType::I64 => {
                    FeatureValue::Number(f64::from(draw % 73))
                }
                (FeatureKind::Number, _) => FeatureValue::Number(f64::from(draw % 900_000) / 100.0),
                (FeatureKind::Bool, _) => FeatureValue::Flag(draw % 2 == 1),
                (FeatureKind::Text, None) => FeatureValue::Text(format!("value {draw}")),
            };
            (feature.name.clone(), value)
        })
        .collect();
    Customer {
        id: "random".to_owned(),
        features,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    /// Attributions add up to the explained score for any valid customer, exact TreeSHAP
    /// (LightGBM) and sampled Shapley (the logistic pipeline) alike.
    #[test]
    fn attributions_add_up_for_any_valid_customer(
        pick in proptest::collection::vec(proptest::prelude::any::<u32>(), 19),
    ) {
        use std::sync::OnceLock;
        static MODELS: OnceLock<Vec<(Model, Background)>> = OnceLock::new();
        let models = MODELS.get_or_init(|| {
            ["telco-lgbm", "telco-logreg"]
                .iter()
                .map(|name| {
                    let model = load(&format!("models/{name}.onnx"));
                    let fixture = explanation_fixture(&format!("models/fixtures/explain-{name}.json"));
                    let background = background(&model, &fixture);
                    (model, background)
                })
                .collect()
        });
        for (model, background) in models {
            let customer = random_customer(model, &pick);
            let explanation = explain(model, background, &customer, &ExplainOptions::default())
                .expect("a valid customer is explained");
            assert_additive(&explanation, &format!("{customer:?}"));
        }
    }
}

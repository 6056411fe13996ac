//! The engine on the real ONNX Runtime: schemas derived from the graphs, validation of
//! every kind of bad value, and probabilities equal to Python onnxruntime's.

use churn_engine::{
    Customer, EngineError, FeatureKind, FeatureValue, Model, ModelOptions, OnnxRuntime,
    UnknownCategory,
};
use tests::{BUNDLED, PYTHON_TOLERANCE, fixture, repo_path};

fn load_with(path: &str, options: &ModelOptions) -> Result<Model, EngineError> {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let bytes = std::fs::read(repo_path(path)).expect("model file");
    Model::load(runtime, &bytes, options)
}

fn bundled(name: &str) -> Model {
    load_with(&format!("models/{name}.onnx"), &ModelOptions::default())
        .expect("bundled model loads")
}

fn strict() -> Model {
    load_with("tests/models/strict-onehot.onnx", &ModelOptions::default())
        .expect("test model loads")
}

fn assert_matches_python(model: &Model, fixture_file: &str, key: &str) {
    let rows = fixture(fixture_file, key);
    let customers: Vec<Customer> = rows.iter().map(|r| r.to_engine()).collect();
    let predictions = model.predict(&customers).expect("inference");
    assert_eq!(predictions.len(), rows.len());
    for (row, prediction) in rows.iter().zip(&predictions) {
        let prediction = prediction
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", row.id));
        let delta = (prediction.churn_probability - row.churn_probability).abs();
        assert!(
            delta <= PYTHON_TOLERANCE,
            "{fixture_file} {}: {} vs python {}",
            row.id,
            prediction.churn_probability,
            row.churn_probability
        );
    }
}

#[test]
fn bundled_models_match_python_onnxruntime() {
    for name in BUNDLED.iter().map(|b| b.file) {
        let rows = fixture(&format!("models/fixtures/{name}.json"), "customers");
        assert!(
            rows.iter().any(|r| r
                .features
                .iter()
                .any(|(_, v)| *v == tests::FixtureValue::Missing)),
            "{name}: fixture covers missing values"
        );
        assert_matches_python(
            &bundled(name),
            &format!("models/fixtures/{name}.json"),
            "customers",
        );
    }
}

#[test]
fn unseen_categories_score_as_the_graph_does_when_the_encoder_ignores_them() {
    let model = bundled("telco-logreg");
    assert_matches_python(
        &model,
        "models/fixtures/telco-logreg.json",
        "unseen_category_customers",
    );
    assert!(
        model.unknown_categories_scored() >= 5,
        "each unseen category is counted"
    );
}

#[test]
fn zipmap_with_string_classes_matches_python() {
    let model = strict();
    assert_eq!(model.class_labels(), ["No", "Yes"]);
    assert_eq!(
        model.positive_class(),
        "Yes",
        "the last class label by default"
    );
    assert_matches_python(&model, "tests/models/strict-onehot.json", "customers");
}

#[test]
fn single_rows_score_like_the_batch() {
    let model = bundled("telco-lgbm");
    let rows = fixture("models/fixtures/telco-lgbm.json", "customers");
    let customers: Vec<Customer> = rows.iter().take(30).map(|r| r.to_engine()).collect();
    let batch = model.predict(&customers).expect("inference");
    for (customer, in_batch) in customers.iter().zip(batch) {
        let alone = model
            .predict(std::slice::from_ref(customer))
            .expect("inference")
            .remove(0)
            .expect("valid row");
        let in_batch = in_batch.expect("valid row");
        assert!(
            (alone.churn_probability - in_batch.churn_probability).abs() <= 1e-6,
            "{}",
            customer.id
        );
    }
}

#[test]
fn per_feature_schema_comes_from_the_graph() {
    let model = bundled("telco-logreg");
    let schema = model.schema();
    assert_eq!(schema.features.len(), 19);
    let contract = schema.feature("contract").expect("contract");
    assert_eq!(contract.kind, FeatureKind::Text);
    let categories = contract
        .categories
        .as_ref()
        .expect("categories from the OneHotEncoder");
    assert_eq!(
        categories.values,
        ["Month-to-month", "One year", "Two year"]
    );
    assert_eq!(
        categories.unknown,
        UnknownCategory::Score,
        "handle_unknown='ignore' exports zeros=1"
    );
    let tenure = schema.feature("tenure").expect("tenure");
    assert_eq!(
        (tenure.kind, tenure.missing_allowed),
        (FeatureKind::Number, false)
    );
    assert!(
        schema
            .feature("totalcharges")
            .expect("totalcharges")
            .missing_allowed,
        "goes through an Imputer"
    );
    assert_eq!(model.class_labels(), ["0", "1"]);
    assert_eq!(model.positive_class(), "1");
    assert_eq!(model.producer(), "skl2onnx");
    assert_eq!(
        (model.threshold(), model.risk_band_cuts()),
        (0.5, [0.3, 0.6])
    );
}

#[test]
fn dense_schema_comes_from_the_metadata() {
    let model = bundled("telco-lgbm");
    let schema = model.schema();
    let names: Vec<&str> = schema.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), 19);
    assert_eq!(names[..3], ["gender", "seniorcitizen", "partner"]);
    let payment = schema.feature("paymentmethod").expect("paymentmethod");
    assert_eq!(payment.kind, FeatureKind::Text);
    assert_eq!(
        payment
            .categories
            .as_ref()
            .expect("coded categories")
            .unknown,
        UnknownCategory::Reject
    );
    assert!(
        schema.features.iter().all(|f| f.missing_allowed),
        "the trees route NaN"
    );
    assert_eq!(model.producer(), "OnnxMLTools");
}

#[test]
fn strict_encoder_categories_are_rejected_up_front() {
    let model = strict();
    let contract = model.schema().feature("contract").expect("contract");
    assert_eq!(
        contract.categories.as_ref().expect("categories").unknown,
        UnknownCategory::Reject
    );
}

/// A valid customer of `model` with `changes` applied (`None` removes the feature), and
/// the `(feature, message fragment)` problems its validation must report, in order.
fn check(model: &Model, changes: &[(&str, Option<FeatureValue>)], expected: &[(&str, &str)]) {
    let mut customer = fixture_customer(model);
    for (name, value) in changes {
        customer.features.retain(|(existing, _)| existing != name);
        if let Some(value) = value {
            customer.features.push(((*name).to_owned(), value.clone()));
        }
    }
    let outcome = model
        .predict(std::slice::from_ref(&customer))
        .expect("inference")
        .remove(0);
    if expected.is_empty() {
        let prediction = outcome.unwrap_or_else(|e| panic!("{changes:?} should score: {e}"));
        assert!((0.0..=1.0).contains(&prediction.churn_probability));
        return;
    }
    let error = outcome.expect_err("the row must be rejected");
    let found: Vec<(&str, &str)> = error
        .problems
        .iter()
        .map(|p| (p.feature.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for ((feature, message), (want_feature, fragment)) in found.iter().zip(expected) {
        assert_eq!(feature, want_feature);
        assert!(
            message.contains(fragment),
            "{feature}: {message:?} should contain {fragment:?}"
        );
    }
}

fn fixture_customer(model: &Model) -> Customer {
    let file = if model.schema().features.len() == 2 {
        "tests/models/strict-onehot.json"
    } else {
        "models/fixtures/telco-logreg.json"
    };
    fixture(file, "customers")[0].to_engine()
}

fn text(value: &str) -> Option<FeatureValue> {
    Some(FeatureValue::Text(value.to_owned()))
}

fn number(value: f64) -> Option<FeatureValue> {
    Some(FeatureValue::Number(value))
}

#[test]
fn validation_names_each_feature_and_what_was_expected() {
    let logreg = bundled("telco-logreg");
    let lgbm = bundled("telco-lgbm");
    check(&logreg, &[], &[]);
    check(
        &logreg,
        &[("tenure", text("twelve"))],
        &[("tenure", "expected a whole number, got the text \"twelve\"")],
    );
    check(
        &logreg,
        &[("tenure", number(1.5))],
        &[("tenure", "expected a whole number, got 1.5")],
    );
    check(
        &logreg,
        &[("tenure", Some(FeatureValue::Missing))],
        &[("tenure", "is missing")],
    );
    check(
        &logreg,
        &[("tenure", number(f64::NAN))],
        &[("tenure", "is missing")],
    );
    check(
        &logreg,
        &[("totalcharges", Some(FeatureValue::Missing))],
        &[],
    );
    check(
        &logreg,
        &[("monthlycharges", number(f64::INFINITY))],
        &[("monthlycharges", "expected a finite number, got inf")],
    );
    check(
        &logreg,
        &[("contract", Some(FeatureValue::Flag(true)))],
        &[("contract", "expected text, one of \"Month-to-month\"")],
    );
    check(
        &logreg,
        &[("contract", Some(FeatureValue::Missing))],
        &[("contract", "has no value")],
    );
    check(
        &logreg,
        &[("contract", text("a\0b"))],
        &[("contract", "NUL")],
    );
    check(
        &logreg,
        &[("gender", None)],
        &[("gender", "is required but absent")],
    );
    check(
        &logreg,
        &[("shoe_size", number(9.0)), ("age", number(40.0))],
        &[
            ("age", "is not an input of this model"),
            ("shoe_size", "is not an input of this model"),
        ],
    );
    check(
        &logreg,
        &[
            ("gender", None),
            ("tenure", text("x")),
            ("zzz", number(1.0)),
        ],
        &[
            ("gender", "absent"),
            ("tenure", "expected a whole number"),
            ("zzz", "not an input"),
        ],
    );
    check(
        &lgbm,
        &[("contract", text("Weekly"))],
        &[(
            "contract",
            "unknown category \"Weekly\"; expected one of \"Month-to-month\", \"One year\", \"Two year\"",
        )],
    );
    check(&lgbm, &[("tenure", Some(FeatureValue::Missing))], &[]);
    check(
        &strict(),
        &[("contract", text("Weekly"))],
        &[("contract", "unknown category \"Weekly\"")],
    );

    let mut twice = fixture_customer(&logreg);
    twice
        .features
        .push(("tenure".to_owned(), FeatureValue::Number(3.0)));
    let error = logreg
        .predict(&[twice])
        .expect("inference")
        .remove(0)
        .expect_err("duplicate");
    let problems: Vec<(&str, &str)> = error
        .problems
        .iter()
        .map(|p| (p.feature.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(problems, [("tenure", "is given more than once")]);
}

#[test]
fn load_options_override_the_metadata() {
    let reversed = load_with(
        "tests/models/strict-onehot.onnx",
        &ModelOptions {
            positive_class: Some("No".to_owned()),
            threshold: Some(0.9),
            ..ModelOptions::default()
        },
    )
    .expect("loads");
    let customers: Vec<Customer> = fixture("tests/models/strict-onehot.json", "customers")
        .iter()
        .map(|r| r.to_engine())
        .collect();
    let yes = strict().predict(&customers).expect("inference");
    let no = reversed.predict(&customers).expect("inference");
    for (yes, no) in yes.iter().zip(&no) {
        let (yes, no) = (yes.as_ref().expect("valid"), no.as_ref().expect("valid"));
        assert!((yes.churn_probability + no.churn_probability - 1.0).abs() <= 1e-6);
        assert_eq!(no.will_churn, no.churn_probability >= 0.9);
    }
}

/// A case name, the model (inline bytes, or a repository path), load options, and a
/// fragment of the expected error.
type RefusalCase = (
    &'static str,
    Result<Vec<u8>, &'static str>,
    ModelOptions,
    &'static str,
);

#[test]
fn models_that_cannot_be_served_are_refused_at_load() {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime");
    let cases: &[RefusalCase] = &[
        (
            "garbage bytes",
            Ok(b"not a model at all".to_vec()),
            ModelOptions::default(),
            "not an ONNX model",
        ),
        (
            "wrong number of dense feature names",
            Err("models/telco-lgbm.onnx"),
            ModelOptions {
                feature_names: Some(vec!["a".to_owned(), "b".to_owned()]),
                ..ModelOptions::default()
            },
            "has 19 columns but 2 feature names were given",
        ),
        (
            "unknown positive class",
            Err("tests/models/strict-onehot.onnx"),
            ModelOptions {
                positive_class: Some("Maybe".to_owned()),
                ..ModelOptions::default()
            },
            "positive class \"Maybe\" is not a class",
        ),
        (
            "threshold outside (0, 1)",
            Err("models/telco-logreg.onnx"),
            ModelOptions {
                threshold: Some(1.5),
                ..ModelOptions::default()
            },
            "threshold 1.5 must be within (0, 1)",
        ),
        (
            "descending band cuts",
            Err("models/telco-logreg.onnx"),
            ModelOptions {
                risk_band_cuts: Some([0.7, 0.2]),
                ..ModelOptions::default()
            },
            "risk band cuts [0.7, 0.2] must be ascending",
        ),
    ];
    for (case, bytes, options, fragment) in cases {
        let bytes = match bytes {
            Ok(bytes) => bytes.clone(),
            Err(path) => std::fs::read(repo_path(path)).expect("model file"),
        };
        let error = Model::load(runtime, &bytes, options).expect_err(case);
        assert!(
            matches!(error, EngineError::InvalidModel(_)),
            "{case}: {error}"
        );
        assert!(error.to_string().contains(fragment), "{case}: {error}");
    }
}

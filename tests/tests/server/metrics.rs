//! The metrics crate against scikit-learn on fixtures written by `models/train.py`: the
//! bundled models' hold-out probabilities, tied scores and saturated scores; and the
//! DeLong comparison against its pairwise definition in numpy; the label-free estimate
//! against the contract's formulas in numpy.

use churn_metrics::{ProfitParameters, compare_roc_auc, estimate, evaluate};
use serde_json::Value;
use tests::{assert_close, assert_metrics_match, metrics_fixture};

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

fn flags(value: &Value) -> Vec<bool> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_bool().expect("bool"))
        .collect()
}

#[test]
fn metrics_match_scikit_learn_on_every_case() {
    let fixture = metrics_fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let metrics = evaluate(
            &numbers(&case["scores"]),
            &flags(&case["churned"]),
            case["threshold"].as_f64().expect("threshold"),
            Some(ProfitParameters::default()),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_metrics_match(name, &metrics, &case["expected"]);
    }
}

#[test]
fn delong_matches_its_pairwise_definition() {
    let fixture = metrics_fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    let (logreg, lgbm) = (&cases[0], &cases[1]);
    let compared = compare_roc_auc(
        &numbers(&logreg["scores"]),
        &numbers(&lgbm["scores"]),
        &flags(&logreg["churned"]),
    )
    .expect("both classes");
    let expected = &fixture["comparison"];
    assert_close("auc a", compared.roc_auc_a, &expected["roc_auc_a"]);
    assert_close("auc b", compared.roc_auc_b, &expected["roc_auc_b"]);
    assert_close("difference", compared.difference, &expected["difference"]);
    assert_close(
        "standard error",
        compared.standard_error,
        &expected["standard_error"],
    );
    assert_close("p value", compared.p_value, &expected["p_value"]);
}

#[test]
fn estimates_match_the_contracts_formulas_in_numpy() {
    let fixture = tests::outcomes_fixture();
    let cases = fixture["estimates"].as_array().expect("estimates");
    assert!(cases.len() >= 2);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let estimated = estimate(
            &numbers(&case["probabilities"]),
            &flags(&case["will_churn"]),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        tests::assert_estimate_matches(name, &estimated, &case["expected"]);
    }
}

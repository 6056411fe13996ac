//! The metrics crate against scikit-learn on fixtures written by `models/train.py`: the
//! bundled models' hold-out probabilities, tied scores and saturated scores; and the
//! DeLong comparison against its pairwise definition in numpy.

use churn_metrics::{Metrics, compare_roc_auc, evaluate};
use serde_json::Value;
use tests::repo_path;

const AGREEMENT: f64 = 1e-9;

fn fixture() -> Value {
    let text = std::fs::read_to_string(repo_path("models/fixtures/metrics.json")).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

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

fn close(context: &str, ours: f64, python: &Value) {
    let python = python
        .as_f64()
        .unwrap_or_else(|| panic!("{context}: not a number"));
    assert!(
        (ours - python).abs() <= AGREEMENT,
        "{context}: {ours} vs scikit-learn {python}"
    );
}

/// Every field against the fixture's, numbers within 1e-9 and counts exactly.
pub fn assert_matches_scikit_learn(context: &str, ours: &Metrics, expected: &Value) {
    assert_eq!(
        ours.rows,
        expected["rows"].as_u64().expect("rows"),
        "{context}"
    );
    assert_eq!(
        ours.positives,
        expected["positives"].as_u64().expect("positives"),
        "{context}"
    );
    for (name, value) in [
        ("roc_auc", ours.roc_auc),
        ("pr_auc", ours.pr_auc),
        ("log_loss", ours.log_loss),
        ("brier", ours.brier),
        ("accuracy", ours.accuracy),
        ("precision", ours.precision),
        ("recall", ours.recall),
        ("f1", ours.f1),
    ] {
        close(&format!("{context} {name}"), value, &expected[name]);
    }
    let confusion = &expected["confusion"];
    assert_eq!(
        [
            ours.confusion.tp,
            ours.confusion.fp,
            ours.confusion.tn,
            ours.confusion.fn_
        ],
        ["tp", "fp", "tn", "fn"].map(|k| confusion[k].as_u64().expect("count")),
        "{context} confusion"
    );
    let bins = expected["calibration"].as_array().expect("calibration");
    assert_eq!(ours.calibration.len(), bins.len());
    for (bin, python) in ours.calibration.iter().zip(bins) {
        assert_eq!(
            bin.count,
            python["count"].as_u64().expect("count"),
            "{context} bin {}",
            bin.lower
        );
        for (name, value) in [
            ("lower", bin.lower),
            ("upper", bin.upper),
            ("mean_predicted", bin.mean_predicted),
            ("observed_rate", bin.observed_rate),
        ] {
            close(
                &format!("{context} calibration {} {name}", bin.lower),
                value,
                &python[name],
            );
        }
    }
    let deciles = expected["lift"].as_array().expect("lift");
    assert_eq!(ours.lift.len(), deciles.len());
    for (decile, python) in ours.lift.iter().zip(deciles) {
        assert_eq!(
            u64::from(decile.decile),
            python["decile"].as_u64().expect("decile")
        );
        for (name, value) in [
            ("churn_rate", decile.churn_rate),
            ("lift", decile.lift),
            ("cumulative_capture", decile.cumulative_capture),
        ] {
            close(
                &format!("{context} decile {} {name}", decile.decile),
                value,
                &python[name],
            );
        }
    }
}

#[test]
fn metrics_match_scikit_learn_on_every_case() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let metrics = evaluate(
            &numbers(&case["scores"]),
            &flags(&case["churned"]),
            case["threshold"].as_f64().expect("threshold"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_matches_scikit_learn(name, &metrics, &case["expected"]);
    }
}

#[test]
fn delong_matches_its_pairwise_definition() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    let (logreg, lgbm) = (&cases[0], &cases[1]);
    let compared = compare_roc_auc(
        &numbers(&logreg["scores"]),
        &numbers(&lgbm["scores"]),
        &flags(&logreg["churned"]),
    )
    .expect("both classes");
    let expected = &fixture["comparison"];
    close("auc a", compared.roc_auc_a, &expected["roc_auc_a"]);
    close("auc b", compared.roc_auc_b, &expected["roc_auc_b"]);
    close("difference", compared.difference, &expected["difference"]);
    close(
        "standard error",
        compared.standard_error,
        &expected["standard_error"],
    );
    close("p value", compared.p_value, &expected["p_value"]);
}

//! Comparisons of our metrics and estimates with the Python-computed fixtures.

use churn_api::v1 as pb;
use serde_json::Value;

use crate::*;

/// `models/fixtures/metrics.json`: scikit-learn's metrics of known scores.
pub fn metrics_fixture() -> Value {
    fixture_json("models/fixtures/metrics.json")
}

/// `ours` within `SCIKIT_LEARN_AGREEMENT` of the fixture's number.
pub fn assert_close(context: &str, ours: f64, python: &Value) {
    let python = python
        .as_f64()
        .unwrap_or_else(|| panic!("{context}: not a number"));
    assert!(
        (ours - python).abs() <= SCIKIT_LEARN_AGREEMENT,
        "{context}: {ours} vs scikit-learn {python}"
    );
}

/// `models/fixtures/outcomes.json`: a prediction log, outcomes, and what each cohort's
/// realized metrics (scikit-learn) and estimate (numpy) must be.
pub fn outcomes_fixture() -> Value {
    fixture_json("models/fixtures/outcomes.json")
}

/// The label-free estimate against numpy's, within 1e-9.
pub fn assert_estimate_matches(
    context: &str,
    ours: &churn_metrics::EstimatedMetrics,
    expected: &Value,
) {
    for (name, value) in [
        ("roc_auc", ours.roc_auc),
        ("accuracy", ours.accuracy),
        ("precision", ours.precision),
        ("recall", ours.recall),
        ("f1", ours.f1),
    ] {
        assert_close(
            &format!("{context} estimated {name}"),
            value,
            &expected[name],
        );
    }
}

/// Every field against the fixture's, numbers within 1e-9 and counts exactly.
pub fn assert_metrics_match(context: &str, ours: &churn_metrics::Metrics, expected: &Value) {
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
        assert_close(&format!("{context} {name}"), value, &expected[name]);
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
            assert_close(
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
            assert_close(
                &format!("{context} decile {} {name}", decile.decile),
                value,
                &python[name],
            );
        }
    }
    for (name, curve) in [("roc_curve", &ours.roc_curve), ("pr_curve", &ours.pr_curve)] {
        assert_curve_matches(&format!("{context} {name}"), curve, &expected[name]);
    }
}

/// A curve against scikit-learn's points; `null` is the threshold `+∞`.
fn assert_curve_matches(context: &str, ours: &[churn_metrics::CurvePoint], expected: &Value) {
    let points = expected.as_array().expect("curve points");
    assert_eq!(ours.len(), points.len(), "{context}: number of points");
    for (k, (point, python)) in ours.iter().zip(points).enumerate() {
        assert_close(&format!("{context}[{k}].x"), point.x, &python["x"]);
        assert_close(&format!("{context}[{k}].y"), point.y, &python["y"]);
        if python["threshold"].is_null() {
            assert_eq!(point.threshold, f64::INFINITY, "{context}[{k}].threshold");
        } else {
            assert_close(
                &format!("{context}[{k}].threshold"),
                point.threshold,
                &python["threshold"],
            );
        }
    }
}

fn curve_from_proto(points: &[pb::CurvePoint]) -> Vec<churn_metrics::CurvePoint> {
    points
        .iter()
        .map(|p| churn_metrics::CurvePoint {
            x: p.x,
            y: p.y,
            threshold: p.threshold,
        })
        .collect()
}

/// The metrics a server answered, as the metrics crate holds them.
pub fn metrics_from_proto(metrics: &pb::Metrics) -> churn_metrics::Metrics {
    let confusion = metrics.confusion.unwrap_or_default();
    churn_metrics::Metrics {
        rows: metrics.rows,
        positives: metrics.positives,
        roc_auc: metrics.roc_auc,
        pr_auc: metrics.pr_auc,
        log_loss: metrics.log_loss,
        brier: metrics.brier,
        accuracy: metrics.accuracy,
        precision: metrics.precision,
        recall: metrics.recall,
        f1: metrics.f1,
        confusion: churn_metrics::Confusion {
            tp: confusion.tp,
            fp: confusion.fp,
            tn: confusion.tn,
            fn_: confusion.r#fn,
        },
        calibration: metrics
            .calibration
            .iter()
            .map(|b| churn_metrics::CalibrationBin {
                lower: b.lower,
                upper: b.upper,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
                count: b.count,
            })
            .collect(),
        lift: metrics
            .lift
            .iter()
            .map(|b| churn_metrics::LiftBin {
                decile: b.decile,
                churn_rate: b.churn_rate,
                lift: b.lift,
                cumulative_capture: b.cumulative_capture,
            })
            .collect(),
        roc_curve: curve_from_proto(&metrics.roc_curve),
        pr_curve: curve_from_proto(&metrics.pr_curve),
        profit: metrics.profit.as_ref().map(|p| {
            let parameters = p.parameters.unwrap_or_default();
            churn_metrics::ProfitMetrics {
                empc: p.empc,
                empc_fraction: p.empc_fraction,
                mpc: p.mpc,
                mpc_fraction: p.mpc_fraction,
                profit_curve: curve_from_proto(&p.profit_curve),
                parameters: churn_metrics::ProfitParameters {
                    clv: parameters.clv,
                    incentive_cost: parameters.incentive_cost,
                    contact_cost: parameters.contact_cost,
                    acceptance_alpha: parameters.acceptance_alpha,
                    acceptance_beta: parameters.acceptance_beta,
                },
            }
        }),
    }
}

/// `models/fixtures/profit.json`: campaign profits by EMP-PY and empulse.
pub fn profit_fixture() -> Value {
    fixture_json("models/fixtures/profit.json")
}

/// The fixture's campaign `name` as a request carries it.
pub fn profit_campaign(fixture: &Value, name: &str) -> pb::ProfitParameters {
    let c = &fixture["campaigns"][name];
    let number = |field: &str| c[field].as_f64().expect("a campaign parameter");
    pb::ProfitParameters {
        clv: number("clv"),
        incentive_cost: number("incentive_cost"),
        contact_cost: number("contact_cost"),
        acceptance_alpha: number("acceptance_alpha"),
        acceptance_beta: number("acceptance_beta"),
    }
}

/// A server's profit against the fixture case named `case`: EMP-PY's four numbers and
/// empulse's EMPC within 1e-9, and the campaign echoed.
pub fn assert_profit_matches(profit: &pb::ProfitMetrics, fixture: &Value, case: &str) {
    let case = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == case)
        .unwrap_or_else(|| panic!("no profit case {case:?}"));
    let expected = &case["expected"];
    for (field, ours, reference) in [
        ("empc", profit.empc, "empc"),
        ("empc_fraction", profit.empc_fraction, "empc_fraction"),
        ("mpc", profit.mpc, "mpc"),
        ("mpc_fraction", profit.mpc_fraction, "mpc_fraction"),
        ("empc (empulse)", profit.empc, "empulse_empc"),
    ] {
        let reference = expected[reference].as_f64().expect("a number");
        assert!(
            (ours - reference).abs() <= 1e-9,
            "{}: {field} {ours} vs {reference}",
            case["name"]
        );
    }
    let campaign = profit_campaign(fixture, case["campaign"].as_str().expect("campaign"));
    assert_eq!(profit.parameters, Some(campaign), "{}", case["name"]);
}

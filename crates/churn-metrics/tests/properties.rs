//! Properties that hold for any scores and labels: ROC AUC is the pairwise probability
//! that a churner outscores a non-churner (ties half), reversing the scores gives 1 − AUC,
//! and no metric depends on the order of the rows.

use churn_metrics::{ProfitParameters, evaluate, roc_auc};
use proptest::prelude::*;

/// Rows with both classes; scores drawn from a few values half of the time, so ties are
/// common, else from anywhere in [0, 1].
fn rows() -> impl Strategy<Value = Vec<(f64, bool)>> {
    let score = prop_oneof![
        prop::sample::select(vec![0.0, 0.25, 0.5, 0.75, 1.0]),
        0.0..=1.0f64
    ];
    prop::collection::vec((score, any::<bool>()), 2..300).prop_filter("both classes", |rows| {
        rows.iter().any(|r| r.1) && rows.iter().any(|r| !r.1)
    })
}

fn split(rows: &[(f64, bool)]) -> (Vec<f64>, Vec<bool>) {
    rows.iter().copied().unzip()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #[test]
    fn roc_auc_is_the_pairwise_probability(rows in rows()) {
        let (scores, churned) = split(&rows);
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (p, _) in rows.iter().filter(|r| r.1) {
            for (n, _) in rows.iter().filter(|r| !r.1) {
                pairs += 1.0;
                wins += if p > n { 1.0 } else if p == n { 0.5 } else { 0.0 };
            }
        }
        let auc = roc_auc(&scores, &churned).expect("both classes");
        prop_assert!(close(auc, wins / pairs), "{auc} vs {}", wins / pairs);
    }

    #[test]
    fn reversed_scores_give_one_minus_the_roc_auc(rows in rows()) {
        let (scores, churned) = split(&rows);
        let reversed: Vec<f64> = scores.iter().map(|s| 1.0 - s).collect();
        let auc = roc_auc(&scores, &churned).expect("both classes");
        let flipped = roc_auc(&reversed, &churned).expect("both classes");
        prop_assert!(close(auc + flipped, 1.0), "{auc} + {flipped}");
    }

    #[test]
    fn metrics_do_not_depend_on_row_order(
        (rows, shuffled) in rows().prop_flat_map(|rows| (Just(rows.clone()), Just(rows).prop_shuffle())),
        threshold in 0.0..=1.0f64,
    ) {
        let (scores, churned) = split(&rows);
        let (other_scores, other_churned) = split(&shuffled);
        let a = evaluate(&scores, &churned, threshold, Some(ProfitParameters::default())).expect("metrics");
        let b = evaluate(&other_scores, &other_churned, threshold, Some(ProfitParameters::default())).expect("metrics");
        prop_assert_eq!(a.confusion, b.confusion);
        prop_assert_eq!((a.rows, a.positives), (b.rows, b.positives));
        for (name, x, y) in [
            ("roc_auc", a.roc_auc, b.roc_auc),
            ("pr_auc", a.pr_auc, b.pr_auc),
            ("log_loss", a.log_loss, b.log_loss),
            ("brier", a.brier, b.brier),
            ("f1", a.f1, b.f1),
        ] {
            prop_assert!(close(x, y), "{}: {} vs {}", name, x, y);
        }
        prop_assert_eq!(a.calibration.len(), b.calibration.len());
        for (x, y) in a.calibration.iter().zip(&b.calibration) {
            prop_assert_eq!(x.count, y.count);
            prop_assert!(close(x.observed_rate, y.observed_rate));
        }
    }
}

//! Performance estimated before the labels arrive: confidence-based performance estimation
//! (as NannyML calls it), taking each served probability as calibrated, so a prediction of
//! p is expected to be a churner p of the time.

use serde::{Deserialize, Serialize};

use crate::MetricsError;

/// What the served probabilities say the metrics will be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimatedMetrics {
    /// NaN when every probability is 0, or every one is 1: one class is expected.
    pub roc_auc: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The expected metrics of `probabilities` decided as `will_churn`: expected TP = Σ p
/// over the rows flagged, FP = Σ (1 − p) over them, FN = Σ p and TN = Σ (1 − p) over the
/// others; ROC AUC is the trapezoid area under expected TPR(t) = Σ_{p≥t} p / Σ p against
/// expected FPR(t) = Σ_{p≥t} (1 − p) / Σ (1 − p) over every distinct probability t, from
/// (0, 0) to (1, 1).
pub fn estimate(
    probabilities: &[f64],
    will_churn: &[bool],
) -> Result<EstimatedMetrics, MetricsError> {
    assert_eq!(
        probabilities.len(),
        will_churn.len(),
        "one decision per probability"
    );
    if probabilities.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some((row, &score)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(MetricsError::NotProbability { row, score });
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &flagged) in probabilities.iter().zip(will_churn) {
        if flagged {
            tp += p;
            fp += 1.0 - p;
        } else {
            fn_ += p;
            tn += 1.0 - p;
        }
    }
    let ratio = |num: f64, den: f64| if den == 0.0 { 0.0 } else { num / den };
    Ok(EstimatedMetrics {
        roc_auc: expected_roc_auc(probabilities),
        accuracy: (tp + tn) / probabilities.len() as f64,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
    })
}

fn expected_roc_auc(probabilities: &[f64]) -> f64 {
    let mut sorted = probabilities.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let churners: f64 = sorted.iter().sum();
    let stayers: f64 = sorted.iter().map(|p| 1.0 - p).sum();
    if churners == 0.0 || stayers == 0.0 {
        return f64::NAN;
    }
    let (mut expected_tp, mut expected_fp) = (0.0, 0.0);
    let (mut previous_tpr, mut previous_fpr, mut area) = (0.0, 0.0, 0.0);
    for (k, &p) in sorted.iter().enumerate() {
        expected_tp += p;
        expected_fp += 1.0 - p;
        let last_of_tie = sorted.get(k + 1).is_none_or(|&next| next != p);
        if last_of_tie {
            let (tpr, fpr) = (expected_tp / churners, expected_fp / stayers);
            area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
            (previous_tpr, previous_fpr) = (tpr, fpr);
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confident_model_expects_its_own_decisions() {
        // Two rows at 1 flagged, two at 0 not: everything is expected right.
        let estimated =
            estimate(&[1.0, 1.0, 0.0, 0.0], &[true, true, false, false]).expect("estimates");
        assert_eq!(
            (
                estimated.roc_auc,
                estimated.accuracy,
                estimated.precision,
                estimated.recall,
                estimated.f1
            ),
            (1.0, 1.0, 1.0, 1.0, 1.0)
        );
        // Every row at 0.5: half of each decision is expected wrong, and the ranking is chance.
        let coin = estimate(&[0.5; 4], &[true, true, false, false]).expect("estimates");
        assert_eq!(
            (coin.roc_auc, coin.accuracy, coin.precision, coin.recall),
            (0.5, 0.5, 0.5, 0.5)
        );
        assert!(
            estimate(&[0.0, 0.0], &[false, false])
                .expect("estimates")
                .roc_auc
                .is_nan()
        );
        assert_eq!(estimate(&[], &[]), Err(MetricsError::Empty));
    }
}

//! Metrics of churn scores against known outcomes, as scikit-learn defines them, and the
//! DeLong test comparing two models' ROC AUC on the same rows. Pure functions over plain
//! slices: an evaluation holds only the scores and the labels, whatever its size.

mod curves;
mod delong;
mod drift;
mod estimate;
mod experiment;
mod profit;
mod threshold;

pub use curves::{CurvePoint, MAX_CURVE_POINTS, precision_recall_curve, roc_curve};
pub use delong::{AucComparison, compare_roc_auc};
pub use drift::{PSI_FLOOR, decile_edges, numeric_bin, numpy_quantile, psi};
pub use estimate::{EstimatedMetrics, estimate};
pub use experiment::{
    POWER, Proportion, RateComparison, Z_975, compare_independent_aucs, compare_rates,
    roc_auc_variance, two_sided_p,
};
pub use profit::{ProfitMetrics, ProfitParameters, profit, regularized_incomplete_beta};
pub use threshold::{Objective, ThresholdChoice, suggest_threshold};

use serde::{Deserialize, Serialize};

/// Calibration bins, equal width over [0, 1].
pub const CALIBRATION_BINS: usize = 10;
/// Lift table groups, riskiest first.
pub const DECILES: usize = 10;

/// Why metrics cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("there are no rows to evaluate")]
    Empty,
    #[error(
        "all {rows} rows are {}; ROC AUC, the lift table and the campaign profit need churned and retained customers",
        if *positives == 0 { "retained" } else { "churned" }
    )]
    OneClass { rows: u64, positives: u64 },
    #[error("row {row}: score {score} is not a probability in [0, 1]")]
    NotProbability { row: usize, score: f64 },
    #[error("{0}")]
    Unreachable(String),
    #[error("profit.{field}: expected {expected}")]
    InvalidProfit {
        field: &'static str,
        expected: String,
    },
}

/// Counts at the decision threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// One equal-width bin of predicted probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    /// 0 when the bin is empty.
    pub mean_predicted: f64,
    /// 0 when the bin is empty.
    pub observed_rate: f64,
    pub count: u64,
}

/// One tenth of the rows by descending score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiftBin {
    /// 1 = riskiest tenth.
    pub decile: u32,
    pub churn_rate: f64,
    pub lift: f64,
    pub cumulative_capture: f64,
}

/// Everything an evaluation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: u64,
    pub positives: u64,
    pub roc_auc: f64,
    /// Average precision, as `average_precision_score`.
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion: Confusion,
    pub calibration: Vec<CalibrationBin>,
    pub lift: Vec<LiftBin>,
    /// Empty in evaluations stored before curves were.
    #[serde(default)]
    pub roc_curve: Vec<CurvePoint>,
    #[serde(default)]
    pub pr_curve: Vec<CurvePoint>,
    /// Absent in evaluations stored before profit was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profit: Option<ProfitMetrics>,
}

/// All metrics of `scores` (churn probabilities) against `churned`, deciding churn at
/// `score >= threshold`, and the profit of `campaign` (`None` only where a benchmark
/// measures what the profit costs).
pub fn evaluate(
    scores: &[f64],
    churned: &[bool],
    threshold: f64,
    campaign: Option<ProfitParameters>,
) -> Result<Metrics, MetricsError> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    if let Some(campaign) = campaign {
        campaign.validate()?;
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some((row, &score)) = scores
        .iter()
        .enumerate()
        .find(|(_, s)| !(0.0..=1.0).contains(*s))
    {
        return Err(MetricsError::NotProbability { row, score });
    }
    let rows = scores.len() as u64;
    let positives = churned.iter().filter(|&&c| c).count() as u64;
    let roc_auc = roc_auc(scores, churned).ok_or(MetricsError::OneClass { rows, positives })?;
    let confusion = confusion(scores, churned, threshold);
    let Confusion { tp, fp, tn, fn_ } = confusion;
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let n = rows as f64;
    // One sort of the scores serves both curves, average precision and the profit.
    let counts = curves::cumulative(scores, churned);
    Ok(Metrics {
        rows,
        positives,
        roc_auc,
        pr_auc: average_precision_of(&counts, positives as f64),
        log_loss: log_loss(scores, churned),
        brier: scores
            .iter()
            .zip(churned)
            .map(|(p, &c)| (p - f64::from(u8::from(c))).powi(2))
            .sum::<f64>()
            / n,
        accuracy: ratio(tp + tn, rows),
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
        confusion,
        calibration: calibration(scores, churned),
        lift: lift(scores, churned, positives),
        roc_curve: curves::roc_curve_of(&counts),
        pr_curve: curves::precision_recall_curve_of(&counts),
        profit: campaign.map(|campaign| profit::profit_of(&counts, campaign).0),
    })
}

/// Area under the ROC curve; tied scores count half, as scikit-learn's `roc_auc_score`
/// does. `None` when the labels hold only one class.
pub fn roc_auc(scores: &[f64], churned: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    let positives = churned.iter().filter(|&&c| c).count();
    let negatives = churned.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let ranks = midranks(scores);
    // Mann-Whitney: the rank sum of the positives, with tied scores sharing their mean rank.
    let positive_rank_sum: f64 = ranks
        .iter()
        .zip(churned)
        .filter(|(_, c)| **c)
        .map(|(r, _)| r)
        .sum();
    let (p, n) = (positives as f64, negatives as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// 1-based ranks of `scores` ascending, ties sharing their mean rank.
pub(crate) fn midranks(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| ranks[i] = mean_rank);
        start = end;
    }
    ranks
}

/// Spearman's rank correlation of paired values (ties share their mean rank), as
/// `scipy.stats.spearmanr`; NaN for fewer than two pairs or a constant side.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "paired values");
    if x.len() < 2 {
        return f64::NAN;
    }
    let (x, y) = (midranks(x), midranks(y));
    let n = x.len() as f64;
    let (mean_x, mean_y) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut covariance, mut var_x, mut var_y) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        covariance += (a - mean_x) * (b - mean_y);
        var_x += (a - mean_x).powi(2);
        var_y += (b - mean_y).powi(2);
    }
    covariance / (var_x * var_y).sqrt()
}

/// `average_precision_score`: Σ (recall_k − recall_{k−1}) · precision_k over the distinct
/// scores, highest first.
pub fn average_precision(scores: &[f64], churned: &[bool]) -> f64 {
    let positives = churned.iter().filter(|&&c| c).count() as f64;
    average_precision_of(&curves::cumulative(scores, churned), positives)
}

fn average_precision_of(counts: &curves::Cumulative, positives: f64) -> f64 {
    if positives == 0.0 {
        return 0.0;
    }
    let (mut previous_recall, mut total) = (0.0, 0.0);
    for (&tp, &fp) in counts.true_positives.iter().zip(&counts.false_positives) {
        let recall = tp / positives;
        total += (recall - previous_recall) * tp / (tp + fp);
        previous_recall = recall;
    }
    total
}

/// Mean cross-entropy with probabilities clipped to `[ε, 1 − ε]`, ε the float64 machine
/// epsilon, as scikit-learn's `log_loss` clips float64 input.
pub fn log_loss(scores: &[f64], churned: &[bool]) -> f64 {
    let clipped = |p: f64| p.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
    scores
        .iter()
        .zip(churned)
        .map(|(&p, &c)| {
            if c {
                -clipped(p).ln()
            } else {
                -(1.0 - clipped(p)).ln()
            }
        })
        .sum::<f64>()
        / scores.len() as f64
}

fn confusion(scores: &[f64], churned: &[bool], threshold: f64) -> Confusion {
    let mut counts = Confusion::default();
    for (&p, &c) in scores.iter().zip(churned) {
        match (p >= threshold, c) {
            (true, true) => counts.tp += 1,
            (true, false) => counts.fp += 1,
            (false, false) => counts.tn += 1,
            (false, true) => counts.fn_ += 1,
        }
    }
    counts
}

/// Ten equal-width bins; a score on an inner edge falls in the lower bin, as in
/// scikit-learn's `calibration_curve`.
fn calibration(scores: &[f64], churned: &[bool]) -> Vec<CalibrationBin> {
    // The edges numpy's linspace(0, 1, 11) produces, so that edge cases bin the same way.
    let step = 1.0 / CALIBRATION_BINS as f64;
    let edge = |b: usize| {
        if b == CALIBRATION_BINS {
            1.0
        } else {
            step * b as f64
        }
    };
    let mut sums = [(0.0, 0.0, 0u64); CALIBRATION_BINS];
    for (&p, &c) in scores.iter().zip(churned) {
        let bin = (1..CALIBRATION_BINS).filter(|&b| edge(b) < p).count();
        let (predicted, observed, count) = &mut sums[bin];
        *predicted += p;
        *observed += f64::from(u8::from(c));
        *count += 1;
    }
    sums.iter()
        .enumerate()
        .map(|(b, &(predicted, observed, count))| {
            let mean = |sum: f64| if count == 0 { 0.0 } else { sum / count as f64 };
            CalibrationBin {
                lower: edge(b),
                upper: edge(b + 1),
                mean_predicted: mean(predicted),
                observed_rate: mean(observed),
                count,
            }
        })
        .collect()
}

/// Rows by descending score (ties in input order) split into ten groups, the first
/// `rows % 10` one row larger, as numpy's `array_split`.
fn lift(scores: &[f64], churned: &[bool], positives: u64) -> Vec<LiftBin> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let overall = positives as f64 / scores.len() as f64;
    let (base, larger) = (order.len() / DECILES, order.len() % DECILES);
    let mut start = 0;
    let mut captured = 0u64;
    (0..DECILES)
        .map(|d| {
            let size = base + usize::from(d < larger);
            let group = &order[start..start + size];
            start += size;
            let churners = group.iter().filter(|&&i| churned[i]).count() as u64;
            captured += churners;
            let churn_rate = if size == 0 {
                0.0
            } else {
                churners as f64 / size as f64
            };
            LiftBin {
                decile: d as u32 + 1,
                churn_rate,
                lift: churn_rate / overall,
                cumulative_capture: captured as f64 / positives as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_hand_computed_ranks() {
        // Ranks (1, 2, 3, 4, 5) against (2, 1, 4, 3, 5): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/120.
        let x = [0.1, 0.2, 0.3, 0.4, 0.5];
        let y = [0.25, 0.15, 0.45, 0.35, 0.55];
        assert!((spearman(&x, &y) - 0.8).abs() < 1e-12);
        assert_eq!(midranks(&[0.3, 0.1, 0.3]), vec![2.5, 1.0, 2.5]);
        assert!(spearman(&[0.5], &[0.5]).is_nan());
    }

    #[test]
    fn roc_auc_matches_hand_counted_pairs() {
        // Pairs (positive, negative): 0.8>0.1, 0.8>0.4, 0.35<0.4, 0.35>0.1 -> 3 of 4.
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert_eq!(auc, Some(0.75));
        // A tie between a positive and a negative counts half: (1 + 0.5) / 2.
        let tied = roc_auc(&[0.5, 0.5, 0.9], &[false, true, true]);
        assert_eq!(tied, Some(0.75));
        assert_eq!(roc_auc(&[0.2, 0.3], &[true, true]), None);
    }

    #[test]
    fn reversing_the_scores_mirrors_the_auc() {
        let scores = [0.3, 0.1, 0.7, 0.7, 0.2, 0.9, 0.4];
        let churned = [false, false, true, false, true, true, false];
        let reversed: Vec<f64> = scores.iter().map(|s| 1.0 - s).collect();
        let auc = roc_auc(&scores, &churned).expect("both classes");
        let mirrored = roc_auc(&reversed, &churned).expect("both classes");
        assert!((auc + mirrored - 1.0).abs() < 1e-12, "{auc} + {mirrored}");
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(
            evaluate(&[], &[], 0.5, Some(ProfitParameters::default())),
            Err(MetricsError::Empty)
        );
        let one_class = evaluate(
            &[0.2, 0.9],
            &[true, true],
            0.5,
            Some(ProfitParameters::default()),
        )
        .expect_err("one class");
        assert_eq!(
            one_class.to_string(),
            "all 2 rows are churned; ROC AUC, the lift table and the campaign profit need churned and retained customers"
        );
        assert!(matches!(
            evaluate(
                &[0.2, f64::NAN],
                &[true, false],
                0.5,
                Some(ProfitParameters::default())
            ),
            Err(MetricsError::NotProbability { row: 1, .. })
        ));
    }
}

//! What an experiment between versions needs to be stopped honestly: each arm's churn
//! rate with its interval, the two-proportion z-test and its interval, the variance of an
//! arm's ROC AUC by DeLong et al. (1988), and the labelled customers needed to detect the
//! observed difference. Each equals its statsmodels counterpart (named on each function).

use crate::MetricsError;
use crate::delong::{components, covariance, erfc};

/// The standard normal's 97.5% quantile (`scipy.stats.norm.isf(0.025)`): two-sided 5%.
pub const Z_975: f64 = 1.959_963_984_540_054;
/// The power the sample size is computed for.
pub const POWER: f64 = 0.8;

/// A churn rate: `churned` of `labelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proportion {
    pub churned: u64,
    pub labelled: u64,
}

impl Proportion {
    /// `churned / labelled`; 0 when none is labelled.
    pub fn rate(self) -> f64 {
        if self.labelled == 0 {
            0.0
        } else {
            self.churned as f64 / self.labelled as f64
        }
    }

    /// The 95% Wilson score interval (statsmodels `proportion_confint(method="wilson")`);
    /// (0, 0) when none is labelled.
    pub fn wilson_interval(self) -> (f64, f64) {
        if self.labelled == 0 {
            return (0.0, 0.0);
        }
        let (p, n) = (self.rate(), self.labelled as f64);
        let z2 = Z_975 * Z_975;
        let denominator = 1.0 + z2 / n;
        let center = (p + z2 / (2.0 * n)) / denominator;
        let half = Z_975 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
        (center - half, center + half)
    }
}

/// An arm's churn rate against the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateComparison {
    /// Arm minus baseline.
    pub difference: f64,
    /// Two-sided, from the pooled two-proportion z-test (statsmodels `proportions_ztest`);
    /// 1 when it cannot be computed (an arm without labels, or no variance at all).
    pub p_value: f64,
    /// 95% Wald interval of the difference, unpooled (statsmodels
    /// `confint_proportions_2indep(method="wald", compare="diff")`).
    pub lower: f64,
    pub upper: f64,
    /// Labelled customers of the baseline needed for a two-sided 5% test to detect the
    /// observed difference with 80% power, the arm having `ratio` times as many
    /// (statsmodels `NormalIndPower().solve_power` on `proportion_effectsize`); `None`
    /// when the difference is 0 or an arm has no labels.
    pub baseline_needed: Option<f64>,
}

/// Compares `arm`'s churn rate with `baseline`'s.
pub fn compare_rates(baseline: Proportion, arm: Proportion) -> RateComparison {
    let (p1, p2) = (baseline.rate(), arm.rate());
    let difference = p2 - p1;
    if baseline.labelled == 0 || arm.labelled == 0 {
        return RateComparison {
            difference,
            p_value: 1.0,
            lower: 0.0,
            upper: 0.0,
            baseline_needed: None,
        };
    }
    let (n1, n2) = (baseline.labelled as f64, arm.labelled as f64);
    let pooled = (baseline.churned + arm.churned) as f64 / (n1 + n2);
    let pooled_error = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let p_value = if pooled_error > 0.0 {
        two_sided_p(difference / pooled_error)
    } else {
        1.0
    };
    let wald_error = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    RateComparison {
        difference,
        p_value,
        lower: difference - Z_975 * wald_error,
        upper: difference + Z_975 * wald_error,
        baseline_needed: baseline_needed(p1, p2, n2 / n1),
    }
}

/// The two-sided p-value of a standard normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Labelled baseline customers for 80% power at two-sided 5%, the arm having `ratio`
/// times as many: statsmodels' `NormalIndPower` power at Cohen's h,
/// `sf(c − h√n) + cdf(−c − h√n)` with `n = n1·ratio / (1 + ratio)`, solved for `n1`.
fn baseline_needed(p1: f64, p2: f64, ratio: f64) -> Option<f64> {
    let h = (2.0 * p2.sqrt().asin() - 2.0 * p1.sqrt().asin()).abs();
    if h == 0.0 || !h.is_finite() || ratio.is_nan() || ratio <= 0.0 {
        return None;
    }
    let power = |root_n: f64| {
        let shift = h * root_n;
        0.5 * erfc((Z_975 - shift) / std::f64::consts::SQRT_2)
            + 0.5 * erfc((Z_975 + shift) / std::f64::consts::SQRT_2)
    };
    // Power grows with n: bisect √n until the bracket is as narrow as doubles allow.
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while power(high) < POWER {
        high *= 2.0;
    }
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if middle <= low || middle >= high {
            break;
        }
        if power(middle) < POWER {
            low = middle;
        } else {
            high = middle;
        }
    }
    let effective = high * high;
    Some(effective * (1.0 + ratio) / ratio)
}

/// An arm's ROC AUC and its variance by DeLong et al. (1988): `S10/m + S01/n`, the
/// sample variances of the churners' and the stayers' placement values over their counts.
pub fn roc_auc_variance(scores: &[f64], churned: &[bool]) -> Result<(f64, f64), MetricsError> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    let positives = churned.iter().filter(|&&c| c).count();
    let negatives = churned.len() - positives;
    if churned.is_empty() {
        return Err(MetricsError::Empty);
    }
    if positives == 0 || negatives == 0 {
        return Err(MetricsError::OneClass {
            rows: churned.len() as u64,
            positives: positives as u64,
        });
    }
    let parts = components(scores, churned, positives, negatives);
    let variance = covariance(&parts.positive, &parts.positive) / positives as f64
        + covariance(&parts.negative, &parts.negative) / negatives as f64;
    Ok((parts.auc, variance))
}

/// Two independent arms' ROC AUCs compared: the difference (arm minus baseline), its
/// two-sided p-value from `z = Δ / sqrt(V1 + V2)`, and its 95% interval.
pub fn compare_independent_aucs(baseline: (f64, f64), arm: (f64, f64)) -> (f64, f64, f64, f64) {
    let difference = arm.0 - baseline.0;
    let error = (baseline.1 + arm.1).max(0.0).sqrt();
    let p_value = if error > 0.0 {
        two_sided_p(difference / error)
    } else if difference == 0.0 {
        1.0
    } else {
        0.0
    };
    (
        difference,
        p_value,
        difference - Z_975 * error,
        difference + Z_975 * error,
    )
}

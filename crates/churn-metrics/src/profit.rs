//! The profit of a retention campaign built on a model's scores: the expected maximum
//! profit measure for customer churn (EMPC; Verbraken, Verbeke and Baesens, IEEE TKDE 25(5),
//! 2013), its deterministic counterpart at the mean acceptance rate (MPC), and the profit
//! curve. Computed as PyPI `EMP-PY`'s `empChurn` computes them, exactly: over the vertices
//! of the ROC convex hull, each owning the interval of acceptance rates for which it is the
//! most profitable cut-off, integrated against the acceptance rate's Beta distribution
//! through the regularized incomplete beta function.

use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::curves::{Cumulative, CurvePoint, thinned};

/// A retention campaign: contacting a customer costs `contact_cost`; a contacted churner
/// accepts the offer (worth `incentive_cost` to them) with a probability drawn from
/// Beta(`acceptance_alpha`, `acceptance_beta`) and then stays, keeping `clv` for the
/// business. Contacted customers who would have stayed accept the offer too.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfitParameters {
    pub clv: f64,
    pub incentive_cost: f64,
    pub contact_cost: f64,
    pub acceptance_alpha: f64,
    pub acceptance_beta: f64,
}

impl Default for ProfitParameters {
    /// The defaults of Verbraken et al. and of both Python references.
    fn default() -> Self {
        ProfitParameters {
            clv: 200.0,
            incentive_cost: 10.0,
            contact_cost: 1.0,
            acceptance_alpha: 6.0,
            acceptance_beta: 14.0,
        }
    }
}

/// The largest Beta parameter taken: the incomplete beta function stays accurate to far
/// better than 1e-9 below it, and no acceptance rate is known more sharply.
const MAX_BETA_PARAMETER: f64 = 1e6;

impl ProfitParameters {
    /// Each parameter left 0 replaced by its default, as requests carry them.
    pub fn or_defaults(self) -> ProfitParameters {
        let defaults = ProfitParameters::default();
        let or = |value: f64, default: f64| if value == 0.0 { default } else { value };
        ProfitParameters {
            clv: or(self.clv, defaults.clv),
            incentive_cost: or(self.incentive_cost, defaults.incentive_cost),
            contact_cost: or(self.contact_cost, defaults.contact_cost),
            acceptance_alpha: or(self.acceptance_alpha, defaults.acceptance_alpha),
            acceptance_beta: or(self.acceptance_beta, defaults.acceptance_beta),
        }
    }

    /// Refuses a campaign that makes no sense, naming the field as requests spell it.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let invalid = |field: &'static str, expected: String| {
            Err(MetricsError::InvalidProfit { field, expected })
        };
        let all = [
            ("clv", self.clv),
            ("incentive_cost", self.incentive_cost),
            ("contact_cost", self.contact_cost),
            ("acceptance_alpha", self.acceptance_alpha),
            ("acceptance_beta", self.acceptance_beta),
        ];
        if let Some((field, value)) = all.into_iter().find(|(_, v)| !v.is_finite()) {
            return invalid(field, format!("a finite number, got {value}"));
        }
        if self.clv <= 0.0 {
            return invalid(
                "clv",
                format!("a positive customer lifetime value, got {}", self.clv),
            );
        }
        for (field, cost) in [
            ("incentive_cost", self.incentive_cost),
            ("contact_cost", self.contact_cost),
        ] {
            if cost < 0.0 {
                return invalid(field, format!("a cost of at least 0, got {cost}"));
            }
        }
        if self.incentive_cost >= self.clv {
            return invalid(
                "incentive_cost",
                format!(
                    "less than clv {}: an incentive of {} leaves nothing to retain",
                    self.clv, self.incentive_cost
                ),
            );
        }
        for (field, shape) in [
            ("acceptance_alpha", self.acceptance_alpha),
            ("acceptance_beta", self.acceptance_beta),
        ] {
            if shape <= 0.0 || shape > MAX_BETA_PARAMETER {
                return invalid(
                    field,
                    format!("a Beta shape parameter in (0, {MAX_BETA_PARAMETER:e}], got {shape}"),
                );
            }
        }
        Ok(())
    }

    /// The mean acceptance rate γ̄ = α / (α + β).
    pub fn mean_acceptance(&self) -> f64 {
        self.acceptance_alpha / (self.acceptance_alpha + self.acceptance_beta)
    }
}

/// What a campaign built on the scores earns, per customer, in the currency of `clv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfitMetrics {
    /// The expected maximum profit over the acceptance rate's distribution.
    pub empc: f64,
    /// The expected fraction of customers the most profitable campaign contacts.
    pub empc_fraction: f64,
    /// The maximum profit at the mean acceptance rate.
    pub mpc: f64,
    /// The fraction of customers contacted at that maximum.
    pub mpc_fraction: f64,
    /// Profit per customer (y) against the fraction contacted (x), contacting every
    /// customer at or above `threshold`, from (0, 0) at `+∞`; thinned as the ROC curve.
    pub profit_curve: Vec<CurvePoint>,
    pub parameters: ProfitParameters,
}

/// The campaign's profit on `scores` against `churned`; both classes must be present.
pub fn profit(
    scores: &[f64],
    churned: &[bool],
    parameters: ProfitParameters,
) -> Result<ProfitMetrics, MetricsError> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    parameters.validate()?;
    let rows = scores.len() as u64;
    let positives = churned.iter().filter(|&&c| c).count() as u64;
    if rows == 0 {
        return Err(MetricsError::Empty);
    }
    if positives == 0 || positives == rows {
        return Err(MetricsError::OneClass { rows, positives });
    }
    Ok(profit_of(&crate::curves::cumulative(scores, churned), parameters).0)
}

/// One vertex of the ROC convex hull, in counts, and the index of its score in the
/// cumulative counts (`None` for the origin, where nobody is contacted).
#[derive(Debug, Clone, Copy)]
struct Vertex {
    false_positives: u64,
    true_positives: u64,
    score: Option<usize>,
}

/// The upper convex hull of the ROC points, from (0, 0) to (1, 1), collinear points
/// dropped. In counts rather than rates, so that every turn is decided exactly: scaling
/// each axis preserves convexity.
fn roc_hull(counts: &Cumulative) -> Vec<Vertex> {
    let origin = Vertex {
        false_positives: 0,
        true_positives: 0,
        score: None,
    };
    let points = (0..counts.thresholds.len()).map(|i| Vertex {
        false_positives: counts.false_positives[i] as u64,
        true_positives: counts.true_positives[i] as u64,
        score: Some(i),
    });
    // The points come by descending score, so by ascending false and true positives.
    let mut hull: Vec<Vertex> = Vec::new();
    for point in std::iter::once(origin).chain(points) {
        while let [.., o, a] = hull[..] {
            let cross = (i128::from(a.false_positives) - i128::from(o.false_positives))
                * (i128::from(point.true_positives) - i128::from(o.true_positives))
                - (i128::from(a.true_positives) - i128::from(o.true_positives))
                    * (i128::from(point.false_positives) - i128::from(o.false_positives));
            if cross < 0 {
                break;
            }
            hull.pop();
        }
        hull.push(point);
    }
    hull
}

/// The campaign's profit from the cumulative counts of both classes, and the index (in
/// those counts) of the lowest score it contacts at the mean acceptance rate: `None` when
/// contacting nobody pays best.
pub(crate) fn profit_of(
    counts: &Cumulative,
    parameters: ProfitParameters,
) -> (ProfitMetrics, Option<usize>) {
    let hull = roc_hull(counts);
    let last = counts.thresholds.len() - 1;
    let (positives, negatives) = (counts.true_positives[last], counts.false_positives[last]);
    let rows = positives + negatives;
    let (pi0, pi1) = (positives / rows, negatives / rows);
    let ProfitParameters {
        clv,
        acceptance_alpha: alpha,
        acceptance_beta: beta,
        ..
    } = parameters;
    let delta = parameters.incentive_cost / clv;
    let phi = parameters.contact_cost / clv;
    let mean_gamma = parameters.mean_acceptance();
    let tpr: Vec<f64> = hull
        .iter()
        .map(|v| v.true_positives as f64 / positives)
        .collect();
    let fpr: Vec<f64> = hull
        .iter()
        .map(|v| v.false_positives as f64 / negatives)
        .collect();

    // The acceptance rate above which each hull segment's far end pays more than its near
    // end; rising along the hull, since its slopes fall. Rates of 1 and over never occur.
    let mut gammas = vec![0.0];
    gammas.extend((1..hull.len()).filter_map(|k| {
        let (d_tpr, d_fpr) = (tpr[k] - tpr[k - 1], fpr[k] - fpr[k - 1]);
        let gamma = if d_tpr == 0.0 {
            f64::INFINITY
        } else {
            (pi1 * (delta + phi) * d_fpr + pi0 * phi * d_tpr) / (pi0 * (1.0 - delta) * d_tpr)
        };
        (gamma < 1.0).then_some(gamma)
    }));
    gammas.push(1.0);

    // At the mean acceptance rate: the last vertex whose rate lies below it.
    let best = gammas
        .iter()
        .rposition(|&g| g < mean_gamma)
        .expect("the first rate is 0");
    let mpc = clv
        * ((mean_gamma * (1.0 - delta) - phi) * pi0 * tpr[best] - (delta + phi) * pi1 * fpr[best]);
    let mpc_fraction = pi0 * tpr[best] + pi1 * fpr[best];

    // Vertex k is the best cut-off for acceptance rates in [gammas[k], gammas[k + 1]).
    let acceptance = |x: f64| regularized_incomplete_beta(alpha, beta, x);
    // E[γ · 1{γ < x}] = γ̄ · I_x(α + 1, β).
    let accepted = |x: f64| mean_gamma * regularized_incomplete_beta(alpha + 1.0, beta, x);
    let (mut empc, mut empc_fraction) = (0.0, 0.0);
    for (k, rates) in gammas.windows(2).enumerate() {
        let (low, high) = (rates[0], rates[1]);
        let probability = acceptance(high) - acceptance(low);
        empc += clv * (1.0 - delta) * pi0 * tpr[k] * (accepted(high) - accepted(low))
            - clv * (phi * pi0 * tpr[k] + (delta + phi) * pi1 * fpr[k]) * probability;
        empc_fraction += probability * (pi0 * tpr[k] + pi1 * fpr[k]);
    }

    let origin = CurvePoint {
        x: 0.0,
        y: 0.0,
        threshold: f64::INFINITY,
    };
    let curve = (0..=last).map(|i| {
        let (tp, fp) = (counts.true_positives[i], counts.false_positives[i]);
        CurvePoint {
            x: (tp + fp) / rows,
            y: clv
                * ((mean_gamma * (1.0 - delta) - phi) * pi0 * (tp / positives)
                    - (delta + phi) * pi1 * (fp / negatives)),
            threshold: counts.thresholds[i],
        }
    });
    let metrics = ProfitMetrics {
        empc,
        empc_fraction,
        mpc,
        mpc_fraction,
        profit_curve: thinned(std::iter::once(origin).chain(curve).collect()),
        parameters,
    };
    (metrics, hull[best].score)
}

/// The regularized incomplete beta function I_x(a, b), by the continued fraction of
/// Numerical Recipes (§6.4) evaluated with the modified Lentz method, on the side of the
/// distribution's mean where it converges fast.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_beta = libm::lgamma(a) + libm::lgamma(b) - libm::lgamma(a + b);
    let front = (a * x.ln() + b * (-x).ln_1p() - ln_beta).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let nonzero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (sum, plus, minus) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / nonzero(1.0 - sum * x / plus);
    let mut h = d;
    // Converges in O(√max(a, b)) terms; the bound only stops a pathological input.
    for m in 1..100_000 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((minus + 2.0 * m) * (a + 2.0 * m));
        d = 1.0 / nonzero(1.0 + even * d);
        c = nonzero(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (sum + m) * x / ((a + 2.0 * m) * (plus + 2.0 * m));
        d = 1.0 / nonzero(1.0 + odd * d);
        c = nonzero(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incomplete_beta_matches_closed_forms() {
        // I_x(1, 1) = x; I_x(2, 1) = x²; I_x(1, 3) = 1 − (1 − x)³; I_x(a, b) = 1 − I_{1−x}(b, a).
        for x in [0.01, 0.2, 0.5, 0.77, 0.999] {
            assert!((regularized_incomplete_beta(1.0, 1.0, x) - x).abs() < 1e-15);
            assert!((regularized_incomplete_beta(2.0, 1.0, x) - x * x).abs() < 1e-15);
            let closed = 1.0 - (1.0 - x).powi(3);
            assert!((regularized_incomplete_beta(1.0, 3.0, x) - closed).abs() < 1e-15);
            let mirrored = 1.0 - regularized_incomplete_beta(14.0, 6.0, 1.0 - x);
            assert!((regularized_incomplete_beta(6.0, 14.0, x) - mirrored).abs() < 1e-14);
        }
    }

    #[test]
    fn a_perfect_ranking_contacts_the_churners_only() {
        // Two churners above two stayers: the hull is (0, 0), (0, 1), (1, 1).
        let parameters = ProfitParameters::default();
        let metrics = profit(
            &[0.9, 0.8, 0.2, 0.1],
            &[true, true, false, false],
            parameters,
        )
        .expect("profit");
        // Contacting both churners pays whenever γ (1 − δ) > φ: γ > 1/190.
        let (delta, phi) = (10.0 / 200.0, 1.0 / 200.0);
        let threshold = phi / (1.0 - delta);
        let pays = 1.0 - regularized_incomplete_beta(6.0, 14.0, threshold);
        assert!((metrics.empc_fraction - 0.5 * pays).abs() < 1e-15);
        assert_eq!(metrics.mpc_fraction, 0.5);
        let expected_mpc = 200.0 * (0.3 * (1.0 - delta) - phi) * 0.5;
        assert!((metrics.mpc - expected_mpc).abs() < 1e-12);
        assert_eq!(metrics.profit_curve.len(), 5);
    }

    #[test]
    fn nonsense_campaigns_are_refused_by_field() {
        let refused = |change: fn(&mut ProfitParameters)| {
            let mut parameters = ProfitParameters::default();
            change(&mut parameters);
            match parameters.validate() {
                Err(MetricsError::InvalidProfit { field, .. }) => field,
                other => panic!("{parameters:?}: {other:?}"),
            }
        };
        assert_eq!(refused(|p| p.clv = -5.0), "clv");
        assert_eq!(refused(|p| p.incentive_cost = 250.0), "incentive_cost");
        assert_eq!(refused(|p| p.contact_cost = -1.0), "contact_cost");
        assert_eq!(refused(|p| p.acceptance_alpha = -2.0), "acceptance_alpha");
        assert_eq!(refused(|p| p.acceptance_beta = f64::NAN), "acceptance_beta");
        let zeros = ProfitParameters {
            clv: 0.0,
            incentive_cost: 0.0,
            contact_cost: 0.0,
            acceptance_alpha: 0.0,
            acceptance_beta: 0.0,
        };
        assert_eq!(zeros.or_defaults(), ProfitParameters::default());
    }
}

//! Choosing a decision threshold from labelled scores for a stated objective.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::profit::profit_of;
use crate::{MetricsError, ProfitParameters, curves};

/// What the threshold should achieve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The largest F1.
    F1,
    /// The largest recall whose precision is at least this.
    RecallAtPrecision(f64),
    /// Flag the N riskiest rows (more when scores tie at the N-th).
    TopK(usize),
    /// Contact the fraction of customers that maximizes a retention campaign's profit at
    /// the mean acceptance rate (the campaign's `mpc_fraction`).
    MaxProfit(ProfitParameters),
}

impl FromStr for Objective {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "objective {text:?}: expected `f1`, `recall@precision=X` with X in (0, 1], `top-k=N` with N ≥ 1, or `profit`"
            )
        };
        if text == "f1" {
            return Ok(Objective::F1);
        }
        if text == "profit" {
            return Ok(Objective::MaxProfit(ProfitParameters::default()));
        }
        if let Some(value) = text.strip_prefix("recall@precision=") {
            let precision: f64 = value.parse().map_err(|_| invalid())?;
            return (precision > 0.0 && precision <= 1.0)
                .then_some(Objective::RecallAtPrecision(precision))
                .ok_or_else(invalid);
        }
        if let Some(value) = text.strip_prefix("top-k=") {
            let k: usize = value.parse().map_err(|_| invalid())?;
            return (k >= 1).then_some(Objective::TopK(k)).ok_or_else(invalid);
        }
        Err(invalid())
    }
}

/// A threshold and what deciding at it gives on the rows it was chosen on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub flagged: u64,
}

/// The threshold (one of the scores: churn is predicted at `score >= threshold`) that
/// best meets `objective`; among equals, the highest.
pub fn suggest_threshold(
    scores: &[f64],
    churned: &[bool],
    objective: Objective,
) -> Result<ThresholdChoice, MetricsError> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    let rows = scores.len() as u64;
    let positives = churned.iter().filter(|&&c| c).count() as u64;
    if rows == 0 {
        return Err(MetricsError::Empty);
    }
    if positives == 0 {
        return Err(MetricsError::OneClass { rows, positives });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut candidates = Vec::new();
    let (mut flagged, mut tp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        flagged += 1;
        tp += u64::from(churned[i]);
        if order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i])
        {
            candidates.push(ThresholdChoice {
                threshold: scores[i],
                precision: tp as f64 / flagged as f64,
                recall: tp as f64 / positives as f64,
                f1: 2.0 * tp as f64 / (flagged + positives) as f64,
                flagged,
            });
        }
    }
    let best = match objective {
        Objective::F1 => candidates
            .iter()
            .copied()
            .reduce(|best, c| if c.f1 > best.f1 { c } else { best }),
        Objective::RecallAtPrecision(precision) => candidates
            .iter()
            .copied()
            .filter(|c| c.precision >= precision)
            .reduce(|best, c| if c.recall > best.recall { c } else { best }),
        Objective::TopK(k) => candidates
            .iter()
            .copied()
            .find(|c| c.flagged >= k as u64)
            .or(candidates.last().copied()),
        Objective::MaxProfit(campaign) => {
            campaign.validate()?;
            if positives == rows {
                return Err(MetricsError::OneClass { rows, positives });
            }
            let counts = curves::cumulative(scores, churned);
            let (_, lowest_contacted) = profit_of(&counts, campaign);
            let Some(lowest) = lowest_contacted else {
                return Err(MetricsError::Unreachable(format!(
                    "on these {rows} rows no campaign pays at the mean acceptance rate \
                     (clv {}, incentive_cost {}, contact_cost {}): contacting nobody is best",
                    campaign.clv, campaign.incentive_cost, campaign.contact_cost
                )));
            };
            candidates
                .iter()
                .copied()
                .find(|c| c.threshold == counts.thresholds[lowest])
        }
    };
    best.ok_or_else(|| {
        MetricsError::Unreachable(format!(
            "no threshold reaches {objective:?} on these {rows} rows"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_pick_the_documented_threshold() {
        let scores = [0.9, 0.8, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1];
        let churned = [true, true, false, true, false, true, false, false];
        let f1 = suggest_threshold(&scores, &churned, Objective::F1).expect("f1");
        // At 0.3, 6 rows are flagged and hold all 4 churners: F1 = 2·4 / (6 + 4) = 0.8.
        assert_eq!((f1.threshold, f1.flagged), (0.3, 6));
        assert!((f1.f1 - 0.8).abs() < 1e-12);
        let precise = suggest_threshold(&scores, &churned, Objective::RecallAtPrecision(0.75))
            .expect("reachable");
        assert_eq!((precise.threshold, precise.precision), (0.6, 0.75));
        let top = suggest_threshold(&scores, &churned, Objective::TopK(2)).expect("top");
        assert_eq!(
            (top.threshold, top.flagged),
            (0.8, 3),
            "a tie at the 2nd row flags both"
        );
        assert!(matches!(
            suggest_threshold(
                &[0.5, 0.4],
                &[true, false],
                Objective::RecallAtPrecision(1.0)
            ),
            Ok(ThresholdChoice {
                threshold: 0.5,
                flagged: 1,
                ..
            })
        ));
        assert!(matches!(
            suggest_threshold(
                &[0.5, 0.4],
                &[false, true],
                Objective::RecallAtPrecision(0.9)
            ),
            Err(MetricsError::Unreachable(_))
        ));
    }

    #[test]
    fn objectives_parse_or_say_what_is_expected() {
        assert_eq!("f1".parse(), Ok(Objective::F1));
        assert_eq!(
            "recall@precision=0.6".parse(),
            Ok(Objective::RecallAtPrecision(0.6))
        );
        assert_eq!("top-k=500".parse(), Ok(Objective::TopK(500)));
        assert_eq!(
            "profit".parse(),
            Ok(Objective::MaxProfit(ProfitParameters::default()))
        );
        for bad in ["f2", "top-k=0", "recall@precision=1.5", "top-k=x"] {
            let error = bad.parse::<Objective>().expect_err(bad);
            assert!(error.contains("expected `f1`"), "{error}");
        }
    }
}

//! Decisions: the positive class's probability, churn at or above the threshold (which
//! changes while the model serves), and the risk band from the cut points.

use std::sync::atomic::Ordering;

use super::{Model, Prediction, RiskBand};
use crate::error::EngineError;

pub(super) const DEFAULT_THRESHOLD: f64 = 0.5;
pub(super) const DEFAULT_RISK_BAND_CUTS: [f64; 2] = [0.3, 0.6];

impl Model {
    pub fn threshold(&self) -> f64 {
        f64::from_bits(self.threshold.load(Ordering::Relaxed))
    }

    /// Changes the decision threshold for every later prediction.
    pub fn set_threshold(&self, threshold: f64) -> Result<(), EngineError> {
        validate_decision(threshold, self.risk_band_cuts)?;
        self.threshold.store(threshold.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    pub fn risk_band_cuts(&self) -> [f64; 2] {
        self.risk_band_cuts
    }

    pub(super) fn positive_probability(&self, width: usize, row: &[f64]) -> f64 {
        if width == 1 {
            if self.positive_index == 1 {
                row[0]
            } else {
                1.0 - row[0]
            }
        } else {
            row[self.positive_index]
        }
    }

    pub(super) fn decide(&self, probability: f64) -> Prediction {
        let [medium, high] = self.risk_band_cuts;
        Prediction {
            churn_probability: probability,
            will_churn: probability >= self.threshold(),
            risk_band: if probability >= high {
                RiskBand::High
            } else if probability >= medium {
                RiskBand::Medium
            } else {
                RiskBand::Low
            },
        }
    }
}

pub(super) fn validate_decision(
    threshold: f64,
    [medium, high]: [f64; 2],
) -> Result<(), EngineError> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(EngineError::InvalidModel(format!(
            "threshold {threshold} must be within (0, 1)"
        )));
    }
    if !(0.0 < medium && medium < high && high < 1.0) {
        return Err(EngineError::InvalidModel(format!(
            "risk band cuts [{medium}, {high}] must be ascending within (0, 1)"
        )));
    }
    Ok(())
}

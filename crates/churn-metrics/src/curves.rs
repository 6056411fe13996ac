//! The ROC and precision-recall curves, point for point as scikit-learn's `roc_curve` and
//! `precision_recall_curve` draw them (both with `drop_intermediate=True`), so a chart of a
//! stored evaluation is the chart a data scientist would plot from the same scores.

use serde::{Deserialize, Serialize};

/// The most points a curve keeps. Past it, points are kept evenly spaced along the curve
/// (its two ends always), so that an evaluation of millions of rows stays a small record
/// that every client can read in one message.
pub const MAX_CURVE_POINTS: usize = 1000;

/// One point of a curve and the threshold it is reached at (churn predicted at
/// `score >= threshold`); `+∞` for the point where nothing is predicted to churn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub x: f64,
    pub y: f64,
    /// JSON has no infinity: `+∞` is stored as `null`.
    #[serde(with = "infinity_as_null")]
    pub threshold: f64,
}

/// Cumulative true and false positives at each distinct score, highest score first, and
/// that score: scikit-learn's `_binary_clf_curve`.
pub(crate) struct Cumulative {
    pub true_positives: Vec<f64>,
    pub false_positives: Vec<f64>,
    pub thresholds: Vec<f64>,
}

pub(crate) fn cumulative(scores: &[f64], churned: &[bool]) -> Cumulative {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut counts = Cumulative {
        true_positives: Vec::new(),
        false_positives: Vec::new(),
        thresholds: Vec::new(),
    };
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if churned[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            counts.true_positives.push(tp);
            counts.false_positives.push(fp);
            counts.thresholds.push(scores[i]);
        }
    }
    counts
}

/// `roc_curve`: x the false positive rate, y the true positive rate, starting at (0, 0)
/// with threshold `+∞`; points on a straight segment between their neighbours are dropped.
/// Both classes must be present.
pub fn roc_curve(scores: &[f64], churned: &[bool]) -> Vec<CurvePoint> {
    roc_curve_of(&cumulative(scores, churned))
}

pub(crate) fn roc_curve_of(counts: &Cumulative) -> Vec<CurvePoint> {
    let Cumulative {
        true_positives: tps,
        false_positives: fps,
        thresholds,
    } = counts;
    let n = tps.len();
    // A point stays when the curve bends there: a non-zero second difference.
    let bends = |v: &[f64], i: usize| v[i - 1] - 2.0 * v[i] + v[i + 1] != 0.0;
    let kept = (0..n).filter(|&i| n <= 2 || i == 0 || i == n - 1 || bends(fps, i) || bends(tps, i));
    let (positives, negatives) = (tps[n - 1], fps[n - 1]);
    let points = std::iter::once(CurvePoint {
        x: 0.0,
        y: 0.0,
        threshold: f64::INFINITY,
    })
    .chain(kept.map(|i| CurvePoint {
        x: fps[i] / negatives,
        y: tps[i] / positives,
        threshold: thresholds[i],
    }))
    .collect();
    thinned(points)
}

/// `precision_recall_curve`: x recall, y precision, by ascending threshold, ending at
/// (0, 1) with threshold `+∞`; points where the true positives change on neither side are
/// dropped. Both classes must be present.
pub fn precision_recall_curve(scores: &[f64], churned: &[bool]) -> Vec<CurvePoint> {
    precision_recall_curve_of(&cumulative(scores, churned))
}

pub(crate) fn precision_recall_curve_of(counts: &Cumulative) -> Vec<CurvePoint> {
    let Cumulative {
        true_positives: tps,
        false_positives: fps,
        thresholds,
    } = counts;
    let n = tps.len();
    let changes = |i: usize| tps[i - 1] != tps[i] || tps[i] != tps[i + 1];
    let kept: Vec<usize> = (0..n)
        .filter(|&i| n <= 2 || i == 0 || i == n - 1 || changes(i))
        .collect();
    let positives = tps[n - 1];
    let points = kept
        .iter()
        .rev()
        .map(|&i| CurvePoint {
            x: tps[i] / positives,
            y: tps[i] / (tps[i] + fps[i]),
            threshold: thresholds[i],
        })
        .chain(std::iter::once(CurvePoint {
            x: 0.0,
            y: 1.0,
            threshold: f64::INFINITY,
        }))
        .collect();
    thinned(points)
}

/// At most `MAX_CURVE_POINTS`, evenly spaced by position, both ends kept.
pub(crate) fn thinned(points: Vec<CurvePoint>) -> Vec<CurvePoint> {
    if points.len() <= MAX_CURVE_POINTS {
        return points;
    }
    let last = points.len() - 1;
    (0..MAX_CURVE_POINTS)
        .map(|k| points[(k * last + (MAX_CURVE_POINTS - 1) / 2) / (MAX_CURVE_POINTS - 1)])
        .collect()
}

mod infinity_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_curve_keeps_its_ends_and_no_more_than_the_cap() {
        let points: Vec<CurvePoint> = (0..5000)
            .map(|i| CurvePoint {
                x: f64::from(i),
                y: 0.0,
                threshold: 0.0,
            })
            .collect();
        let thinned = thinned(points);
        assert_eq!(thinned.len(), MAX_CURVE_POINTS);
        assert_eq!(
            (thinned[0].x, thinned[MAX_CURVE_POINTS - 1].x),
            (0.0, 4999.0)
        );
        assert!(thinned.windows(2).all(|w| w[0].x < w[1].x));
    }

    #[test]
    fn infinity_survives_json() {
        let point = CurvePoint {
            x: 0.0,
            y: 1.0,
            threshold: f64::INFINITY,
        };
        let json = serde_json::to_string(&point).expect("serializes");
        assert_eq!(json, r#"{"x":0.0,"y":1.0,"threshold":null}"#);
        assert_eq!(
            serde_json::from_str::<CurvePoint>(&json).expect("parses"),
            point
        );
    }
}

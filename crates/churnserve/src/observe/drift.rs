//! Drift of a served version: how far the recent rows' features and scores have moved
//! from the version's reference dataset, as the population stability index
//! `Σ (actual − expected) · ln(actual / expected)` over bins fixed by the reference:
//! deciles for numbers (plus a bin for missing values), one bin per category (plus one
//! for the unseen), ten equal-width bins for the score.
//!
//! [`Drift`] keeps one tracker per version. The first rows of a version open its tracker
//! and send a [`ReferenceRequest`]; whoever reads the version's reference dataset (the
//! domain) answers with [`Drift::set_reference`] or [`Drift::set_unavailable`]. Drift
//! never reads storage or scores anything itself.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use churn_engine::{CustomerBatch, FeatureKind, FeatureValue, Schema, ValueRef};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use crate::sync::lock;

/// Shares below this count as this, so that an empty bin has a finite index.
const FLOOR: f64 = 1e-4;
const SCORE_BINS: usize = 10;

/// How a feature's values are binned.
#[derive(Debug)]
enum Bins {
    /// Inner edges, ascending: bin `i` holds values ≤ edge `i`; the last bin holds the
    /// rest; one more holds missing values.
    Numeric { edges: Vec<f64> },
    /// One bin per reference category; one more for any other value. Fx hashing: the
    /// lookup runs for every categorical value of every scored row in the window.
    Categorical { index: FxHashMap<String, usize> },
}

impl Bins {
    fn count(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 2,
            Bins::Categorical { index } => index.len() + 1,
        }
    }

    fn of(&self, value: ValueRef<'_>) -> usize {
        match (self, value) {
            (Bins::Numeric { edges }, ValueRef::Number(v)) if !v.is_nan() => {
                edges.iter().position(|e| v <= *e).unwrap_or(edges.len())
            }
            (Bins::Numeric { edges }, _) => edges.len() + 1,
            (Bins::Categorical { index }, ValueRef::Text(text)) => {
                index.get(text).copied().unwrap_or(index.len())
            }
            (Bins::Categorical { index }, ValueRef::Flag(flag)) => {
                index.get(&flag.to_string()).copied().unwrap_or(index.len())
            }
            (Bins::Categorical { index }, _) => index.len(),
        }
    }
}

/// The reference distribution of each feature and of the score.
#[derive(Debug)]
pub struct Reference {
    names: Vec<String>,
    bins: Vec<Bins>,
    expected: Vec<Vec<f64>>,
    expected_score: Vec<f64>,
}

/// One recent row: its bins once the reference is known (cheap to keep), its values
/// before.
#[derive(Debug)]
enum Observed {
    Values(Vec<FeatureValue>),
    Bins(Vec<usize>),
}

/// Recent rows of one version and, once loaded, its reference.
#[derive(Debug, Default)]
pub struct DriftTracker {
    window: VecDeque<(Observed, f64)>,
    reference: Option<Reference>,
    unavailable: Option<String>,
}

/// The indices for one version.
#[derive(Debug)]
pub struct DriftReport {
    pub features: Vec<(String, f64)>,
    pub score: f64,
}

impl DriftTracker {
    /// Adds row `row` of a scored batch to the window.
    pub fn observe(
        &mut self,
        customers: &CustomerBatch,
        schema: &Schema,
        row: usize,
        score: f64,
        window: usize,
    ) {
        if self.unavailable.is_some() {
            return;
        }
        // The row leaving the window lends its buffer to the one entering it: bulk scoring
        // observes every row, and an allocation per row showed in its profile.
        let mut leaving = None;
        while self.window.len() >= window.max(1) {
            leaving = self.window.pop_front();
        }
        let observed = match &self.reference {
            Some(reference) => {
                let mut bins = match leaving {
                    Some((Observed::Bins(mut bins), _)) => {
                        bins.clear();
                        bins
                    }
                    _ => Vec::with_capacity(reference.bins.len()),
                };
                bins.extend(reference.bins.iter().map(|b| b.of(ValueRef::Missing)));
                customers.for_each_by_position(schema, row, |position, value| {
                    bins[position] = reference.bins[position].of(value);
                });
                Observed::Bins(bins)
            }
            None => {
                let mut values = vec![FeatureValue::Missing; schema.features.len()];
                customers.for_each_by_position(schema, row, |position, value| {
                    values[position] = value.to_owned();
                });
                Observed::Values(values)
            }
        };
        self.window.push_back((observed, score));
    }

    pub fn set_reference(&mut self, reference: Reference) {
        self.reference = Some(reference);
    }

    pub fn set_unavailable(&mut self, reason: String) {
        self.window.clear();
        self.unavailable = Some(reason);
    }

    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// The indices over the current window, once the reference is known and the window
    /// holds rows.
    pub fn report(&self) -> Option<DriftReport> {
        let reference = self.reference.as_ref()?;
        if self.window.is_empty() {
            return None;
        }
        let features = reference
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let bins = &reference.bins[i];
                let actual = shares(
                    self.window.iter().map(|(observed, _)| match observed {
                        Observed::Bins(row) => row[i],
                        Observed::Values(values) => bins.of(ValueRef::from(&values[i])),
                    }),
                    bins.count(),
                );
                (name.clone(), psi(&actual, &reference.expected[i]))
            })
            .collect();
        let actual = shares(self.window.iter().map(|(_, s)| score_bin(*s)), SCORE_BINS);
        Some(DriftReport {
            features,
            score: psi(&actual, &reference.expected_score),
        })
    }
}

fn score_bin(score: f64) -> usize {
    ((score * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)
}

fn shares(bins: impl Iterator<Item = usize>, count: usize) -> Vec<f64> {
    let mut counts = vec![0.0; count];
    let mut total: f64 = 0.0;
    for bin in bins {
        counts[bin] += 1.0;
        total += 1.0;
    }
    counts.iter().map(|c| c / total.max(1.0)).collect()
}

/// Population stability index of `actual` against `expected` shares.
pub fn psi(actual: &[f64], expected: &[f64]) -> f64 {
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| {
            let (a, e) = (a.max(FLOOR), e.max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

impl Reference {
    /// The bins and shares of a reference: its valid rows' values by schema position, and
    /// their scores.
    pub fn new(schema: &Schema, rows: &[Vec<FeatureValue>], scores: &[f64]) -> Reference {
        let bins: Vec<Bins> = schema
            .features
            .iter()
            .enumerate()
            .map(|(i, feature)| match feature.kind {
                FeatureKind::Number => {
                    let mut values: Vec<f64> = rows
                        .iter()
                        .filter_map(|r| match r[i] {
                            FeatureValue::Number(v) if !v.is_nan() => Some(v),
                            _ => None,
                        })
                        .collect();
                    values.sort_by(f64::total_cmp);
                    let mut edges: Vec<f64> = (1..10)
                        .filter_map(|d| values.get(d * values.len() / 10).copied())
                        .collect();
                    edges.dedup();
                    Bins::Numeric { edges }
                }
                FeatureKind::Text | FeatureKind::Bool => {
                    let mut seen: Vec<String> = rows
                        .iter()
                        .filter_map(|r| match &r[i] {
                            FeatureValue::Text(t) => Some(t.clone()),
                            FeatureValue::Flag(f) => Some(f.to_string()),
                            _ => None,
                        })
                        .collect();
                    seen.sort();
                    seen.dedup();
                    Bins::Categorical {
                        index: seen.into_iter().enumerate().map(|(k, v)| (v, k)).collect(),
                    }
                }
            })
            .collect();
        let expected = bins
            .iter()
            .enumerate()
            .map(|(i, b)| shares(rows.iter().map(|r| b.of(ValueRef::from(&r[i]))), b.count()))
            .collect();
        Reference {
            names: schema.features.iter().map(|f| f.name.clone()).collect(),
            bins,
            expected,
            expected_score: shares(scores.iter().map(|s| score_bin(*s)), SCORE_BINS),
        }
    }
}

/// A version whose reference the drift trackers wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRequest {
    pub model: String,
    pub version: u32,
}

/// One version's indices at a scrape.
#[derive(Debug)]
pub struct VersionDrift {
    pub model: String,
    pub version: u32,
    pub window_rows: usize,
    pub report: Option<DriftReport>,
}

type SharedTracker = Arc<Mutex<DriftTracker>>;

/// The drift trackers of every version scored since start.
#[derive(Debug)]
pub struct Drift {
    /// Recent rows per version the index is computed over.
    window: usize,
    /// Model name, then version: a scored batch looks its tracker up by borrowed name.
    trackers: Mutex<BTreeMap<String, BTreeMap<u32, SharedTracker>>>,
    requests: mpsc::UnboundedSender<ReferenceRequest>,
}

impl Drift {
    /// The trackers, and the requests for references they will send (one per version,
    /// on its first scored rows).
    pub fn new(window: usize) -> (Drift, mpsc::UnboundedReceiver<ReferenceRequest>) {
        let (requests, received) = mpsc::unbounded_channel();
        let drift = Drift {
            window,
            trackers: Mutex::default(),
            requests,
        };
        (drift, received)
    }

    /// Adds the scored rows of one engine call to the version's window.
    pub fn observe(
        &self,
        model: &str,
        version: u32,
        schema: &Schema,
        customers: &CustomerBatch,
        scores: &[Option<f64>],
    ) {
        let tracker = self.tracker(model, version);
        let mut tracker = lock(&tracker);
        let scored: Vec<(usize, f64)> = scores
            .iter()
            .enumerate()
            .filter_map(|(row, s)| s.map(|s| (row, s)))
            .collect();
        for &(row, score) in scored.iter().rev().take(self.window).rev() {
            tracker.observe(customers, schema, row, score, self.window);
        }
    }

    pub fn set_reference(&self, model: &str, version: u32, reference: Reference) {
        lock(&self.tracker(model, version)).set_reference(reference);
    }

    pub fn set_unavailable(&self, model: &str, version: u32, reason: String) {
        lock(&self.tracker(model, version)).set_unavailable(reason);
    }

    /// Every tracked version's window and indices.
    pub fn reports(&self) -> Vec<VersionDrift> {
        let trackers: Vec<(String, u32, SharedTracker)> = lock(&self.trackers)
            .iter()
            .flat_map(|(model, versions)| {
                versions
                    .iter()
                    .map(move |(version, t)| (model.clone(), *version, Arc::clone(t)))
            })
            .collect();
        trackers
            .into_iter()
            .map(|(model, version, tracker)| {
                let tracker = lock(&tracker);
                VersionDrift {
                    model,
                    version,
                    window_rows: tracker.window_len(),
                    report: tracker.report(),
                }
            })
            .collect()
    }

    /// The version's tracker; creating it asks for its reference.
    fn tracker(&self, model: &str, version: u32) -> SharedTracker {
        let mut trackers = lock(&self.trackers);
        if let Some(tracker) = trackers.get(model).and_then(|v| v.get(&version)) {
            return Arc::clone(tracker);
        }
        let tracker = SharedTracker::default();
        trackers
            .entry(model.to_owned())
            .or_default()
            .insert(version, Arc::clone(&tracker));
        // Nobody listening means nobody can load references: the window stays raw values.
        let _ = self.requests.send(ReferenceRequest {
            model: model.to_owned(),
            version,
        });
        tracker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_shares_and_grows_with_the_shift() {
        let expected = [0.25, 0.25, 0.5];
        assert_eq!(psi(&expected, &expected), 0.0);
        let small = psi(&[0.3, 0.2, 0.5], &expected);
        let large = psi(&[0.7, 0.1, 0.2], &expected);
        assert!(small > 0.0 && large > small, "{small} {large}");
        // By hand: (0.3-0.25)ln(1.2) + (0.2-0.25)ln(0.8).
        let by_hand = 0.05 * 1.2f64.ln() - 0.05 * 0.8f64.ln();
        assert!((small - by_hand).abs() < 1e-12);
    }
}

//! Drift of a served version: how far the recent rows' features and scores have moved
//! from the version's reference dataset, as the population stability index
//! `Σ (actual − expected) · ln(actual / expected)` over bins fixed by the reference:
//! deciles for numbers (plus a bin for missing values), one bin per category (plus one
//! for the unseen), ten equal-width bins for the score.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use churn_engine::{ColumnMapping, CustomerBatch, FeatureKind, FeatureValue, Schema, ValueRef};
use churn_registry::VersionRef;

use crate::store::{ModelStore, ServedModel};

/// Shares below this count as this, so that an empty bin has a finite index.
const FLOOR: f64 = 1e-4;
const SCORE_BINS: usize = 10;

/// How a feature's values are binned.
#[derive(Debug)]
enum Bins {
    /// Inner edges, ascending: bin `i` holds values ≤ edge `i`; the last bin holds the
    /// rest; one more holds missing values.
    Numeric { edges: Vec<f64> },
    /// One bin per reference category; one more for any other value.
    Categorical { index: HashMap<String, usize> },
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
        while self.window.len() >= window.max(1) {
            self.window.pop_front();
        }
        let observed = match &self.reference {
            Some(reference) => {
                let mut bins: Vec<usize> = reference
                    .bins
                    .iter()
                    .map(|b| b.of(ValueRef::Missing))
                    .collect();
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

fn reference_from(schema: &Schema, rows: &[Vec<FeatureValue>], scores: &[f64]) -> Reference {
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

/// Reads the version's reference dataset and scores it; the reason when it cannot.
pub async fn load_reference(
    store: &ModelStore,
    served: &Arc<ServedModel>,
    rows: usize,
) -> Result<Reference, String> {
    let registry = store.registry();
    let record = registry
        .version(&served.name, &VersionRef::Number(served.version))
        .await
        .map_err(|e| e.to_string())?;
    let name = record.metadata.reference_dataset;
    if name.is_empty() {
        return Err("the version has no reference dataset".to_owned());
    }
    let dataset = registry.dataset(&name).await.map_err(|e| e.to_string())?;
    let table = registry
        .dataset_rows(&dataset, rows)
        .await
        .map_err(|e| e.to_string())?;
    let served = Arc::clone(served);
    tokio::task::spawn_blocking(move || {
        let schema = served.model.schema();
        let mapping = ColumnMapping::new(schema, &table.columns, None)
            .map_err(|missing| format!("dataset {name:?} lacks {}", missing.join(", ")))?;
        let customers: Vec<_> = table
            .rows
            .iter()
            .map(|fields| mapping.customer(fields))
            .collect();
        let predictions = served
            .model
            .predict(&customers)
            .map_err(|e| e.to_string())?;
        let mut kept_rows = Vec::new();
        let mut scores = Vec::new();
        for (customer, prediction) in customers.into_iter().zip(predictions) {
            if let Ok(prediction) = prediction {
                kept_rows.push(customer.features.into_iter().map(|(_, v)| v).collect());
                scores.push(prediction.churn_probability);
            }
        }
        Ok(reference_from(schema, &kept_rows, &scores))
    })
    .await
    .map_err(|e| e.to_string())?
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

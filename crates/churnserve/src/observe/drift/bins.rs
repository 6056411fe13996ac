//! A version's drift bins, fixed from its reference dataset as the contract says: a
//! numeric feature's inner edges are the deciles of its reference values (numpy's
//! `quantile`, repeated edges dropped), with one more bin for missing values; a text or
//! flag feature has one bin per reference category and one for any other value; the
//! served probability is binned at the deciles of the version's scores on the reference.
//! The reference rows are counted by the same code as served rows, so that both sides put
//! a value in the same bin.

use churn_engine::{CustomerBatch, FeatureKind, Schema, ValueRef};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Every feature's bins, in the model's order, and the served probability's; what the
/// registry stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftBins {
    pub features: Vec<FeatureBins>,
    pub prediction: FeatureBins,
}

/// One feature's bins and the reference rows in each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub name: String,
    pub layout: BinLayout,
    pub reference_counts: Vec<u64>,
}

/// How values fall into bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinLayout {
    /// Bin `i` holds `(e[i-1], e[i]]`, then `(e[k], +inf)`, then `missing`.
    Numeric { edges: Vec<f64> },
    /// One bin per category, in this order, then `other`.
    Categorical { categories: Vec<String> },
}

impl BinLayout {
    pub fn bins(&self) -> usize {
        match self {
            BinLayout::Numeric { edges } => edges.len() + 2,
            BinLayout::Categorical { categories } => categories.len() + 1,
        }
    }

    /// Each bin's label: `(-inf, 12.5]`, `(12.5, +inf)`, `missing`; a category, `other`.
    pub fn labels(&self) -> Vec<String> {
        match self {
            BinLayout::Numeric { edges } => {
                let mut bounds = vec!["-inf".to_owned()];
                bounds.extend(edges.iter().map(f64::to_string));
                bounds.push("+inf".to_owned());
                let mut labels: Vec<String> = bounds
                    .windows(2)
                    .map(|pair| {
                        let close = if pair[1] == "+inf" { ")" } else { "]" };
                        format!("({}, {}{close}", pair[0], pair[1])
                    })
                    .collect();
                labels.push("missing".to_owned());
                labels
            }
            BinLayout::Categorical { categories } => {
                let mut labels = categories.clone();
                labels.push("other".to_owned());
                labels
            }
        }
    }
}

/// How a served value finds its bin; the lookup runs for every value of every scored row.
#[derive(Debug)]
enum Lookup {
    Numeric(Vec<f64>),
    /// Up to [`SCANNED_CATEGORIES`] categories: compared one by one, which is cheaper than
    /// hashing the value (most categorical features have two to four).
    FewCategories(Vec<String>),
    /// Fx hashing for the rest.
    Categorical(FxHashMap<String, usize>),
}

const SCANNED_CATEGORIES: usize = 8;

impl Lookup {
    fn of(&self, value: ValueRef<'_>) -> usize {
        match (self, value) {
            (Lookup::Numeric(edges), ValueRef::Number(v)) if !v.is_nan() => {
                churn_metrics::numeric_bin(edges, v)
            }
            (Lookup::Numeric(edges), _) => edges.len() + 1,
            (Lookup::FewCategories(categories), ValueRef::Text(text)) => categories
                .iter()
                .position(|c| c == text)
                .unwrap_or(categories.len()),
            (Lookup::FewCategories(categories), ValueRef::Flag(flag)) => {
                let text = if flag { "true" } else { "false" };
                categories
                    .iter()
                    .position(|c| c == text)
                    .unwrap_or(categories.len())
            }
            (Lookup::FewCategories(categories), _) => categories.len(),
            (Lookup::Categorical(index), ValueRef::Text(text)) => {
                index.get(text).copied().unwrap_or(index.len())
            }
            (Lookup::Categorical(index), ValueRef::Flag(flag)) => index
                .get(if flag { "true" } else { "false" })
                .copied()
                .unwrap_or(index.len()),
            (Lookup::Categorical(index), _) => index.len(),
        }
    }

    fn missing(&self) -> usize {
        match self {
            Lookup::Numeric(edges) => edges.len() + 1,
            Lookup::FewCategories(categories) => categories.len(),
            Lookup::Categorical(index) => index.len(),
        }
    }
}

impl From<&BinLayout> for Lookup {
    fn from(layout: &BinLayout) -> Lookup {
        match layout {
            BinLayout::Numeric { edges } => Lookup::Numeric(edges.clone()),
            BinLayout::Categorical { categories } if categories.len() <= SCANNED_CATEGORIES => {
                Lookup::FewCategories(categories.clone())
            }
            BinLayout::Categorical { categories } => Lookup::Categorical(
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i))
                    .collect(),
            ),
        }
    }
}

/// Bins ready to count rows into one flat vector of counts: every feature's bins in the
/// model's order, then the probability's.
#[derive(Debug)]
pub struct CountingBins {
    pub bins: DriftBins,
    /// Which bins these are: the SHA-256 of their stored JSON.
    pub sha256: String,
    lookups: Vec<Lookup>,
    /// Where each feature's bins start in the flat counts; the last is the probability's.
    offsets: Vec<usize>,
    prediction: Lookup,
    len: usize,
}

impl CountingBins {
    pub fn new(bins: DriftBins, sha256: String) -> CountingBins {
        let lookups: Vec<Lookup> = bins.features.iter().map(|f| (&f.layout).into()).collect();
        let mut offsets = Vec::with_capacity(bins.features.len() + 1);
        let mut len = 0;
        for feature in bins.features.iter().chain([&bins.prediction]) {
            offsets.push(len);
            len += feature.layout.bins();
        }
        CountingBins {
            prediction: (&bins.prediction.layout).into(),
            bins,
            sha256,
            lookups,
            offsets,
            len,
        }
    }

    /// The number of counts: every bin of every feature and of the probability.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Where feature `i`'s counts start; `i` = the number of features: the probability's.
    pub fn offset(&self, i: usize) -> usize {
        self.offsets[i]
    }

    /// Adds row `row` of `customers`, scored `score`, to `counts`; `scratch` holds one bin
    /// per feature, so that a feature the row lacks counts as missing without allocating.
    pub fn count_row(
        &self,
        schema: &Schema,
        customers: &CustomerBatch,
        row: usize,
        score: f64,
        counts: &mut [u64],
        scratch: &mut Vec<usize>,
    ) {
        scratch.clear();
        scratch.extend(self.lookups.iter().map(Lookup::missing));
        customers.for_each_by_position(schema, row, |position, value| {
            if let Some(lookup) = self.lookups.get(position) {
                scratch[position] = lookup.of(value);
            }
        });
        for (i, bin) in scratch.iter().enumerate() {
            counts[self.offsets[i] + bin] += 1;
        }
        let last = self.offsets[self.lookups.len()];
        counts[last + self.prediction.of(ValueRef::Number(score))] += 1;
    }
}

impl DriftBins {
    /// The bins of a version from its reference rows (`customers`, every one scored) and
    /// their scores.
    pub fn from_reference(schema: &Schema, customers: &CustomerBatch, scores: &[f64]) -> DriftBins {
        let layouts: Vec<BinLayout> = schema
            .features
            .iter()
            .enumerate()
            .map(|(position, feature)| match feature.kind {
                FeatureKind::Number => {
                    let mut values = Vec::with_capacity(customers.len());
                    for row in 0..customers.len() {
                        customers.for_each_by_position(schema, row, |p, value| {
                            if let (true, ValueRef::Number(v)) = (p == position, value)
                                && !v.is_nan()
                            {
                                values.push(v);
                            }
                        });
                    }
                    BinLayout::Numeric {
                        edges: churn_metrics::decile_edges(&mut values),
                    }
                }
                FeatureKind::Text | FeatureKind::Bool => {
                    let mut categories = Vec::new();
                    for row in 0..customers.len() {
                        customers.for_each_by_position(schema, row, |p, value| match value {
                            ValueRef::Text(text) if p == position => {
                                categories.push(text.to_owned())
                            }
                            ValueRef::Flag(flag) if p == position => {
                                categories.push(flag.to_string())
                            }
                            _ => {}
                        });
                    }
                    categories.sort();
                    categories.dedup();
                    BinLayout::Categorical { categories }
                }
            })
            .collect();
        let mut scored = scores.to_vec();
        let prediction = BinLayout::Numeric {
            edges: churn_metrics::decile_edges(&mut scored),
        };
        let feature_bins = |name: String, layout: BinLayout| FeatureBins {
            name,
            reference_counts: vec![0; layout.bins()],
            layout,
        };
        let mut bins = DriftBins {
            features: schema
                .features
                .iter()
                .zip(layouts)
                .map(|(feature, layout)| feature_bins(feature.name.clone(), layout))
                .collect(),
            prediction: feature_bins("prediction".to_owned(), prediction),
        };
        let counting = CountingBins::new(bins.clone(), String::new());
        let mut counts = vec![0; counting.len()];
        let mut scratch = Vec::new();
        for (row, score) in scores.iter().enumerate() {
            counting.count_row(schema, customers, row, *score, &mut counts, &mut scratch);
        }
        for (i, feature) in bins
            .features
            .iter_mut()
            .chain([&mut bins.prediction])
            .enumerate()
        {
            let start = counting.offset(i);
            feature
                .reference_counts
                .copy_from_slice(&counts[start..start + feature.layout.bins()]);
        }
        bins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_each_bin() {
        let numeric = BinLayout::Numeric {
            edges: vec![1.5, 20.0],
        };
        assert_eq!(
            numeric.labels(),
            ["(-inf, 1.5]", "(1.5, 20]", "(20, +inf)", "missing"]
        );
        assert_eq!(numeric.bins(), numeric.labels().len());
        let categorical = BinLayout::Categorical {
            categories: vec!["No".to_owned(), "Yes".to_owned()],
        };
        assert_eq!(categorical.labels(), ["No", "Yes", "other"]);
        assert_eq!(
            BinLayout::Numeric { edges: vec![] }.labels(),
            ["(-inf, +inf)", "missing"]
        );
    }
}

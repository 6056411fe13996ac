//! Global feature importance by raw feature name: the trees' own split counts, the drop in
//! ROC AUC when one feature is shuffled, or the mean absolute attribution.

use churn_engine::{Customer, Model};

use crate::shapley::SplitMix64;
use crate::{Background, ExplainError, ExplainOptions, explain, ordered_values};

/// The importance of one raw feature in the method's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureImportance {
    pub feature: String,
    pub importance: f64,
    /// Spread over repeats, when the method has repeats; else 0.
    pub stddev: f64,
}

/// The model's own measure, read from its graph: for a tree ensemble, how many splits test
/// each feature (ONNX keeps no split gains or covers); for a linear classifier, the
/// standard deviation over `customers` of each feature's term in the margin, which is
/// |coefficient × std| for a feature that is one encoded column.
pub fn native_importance(
    model: &Model,
    customers: &[Customer],
) -> Result<Vec<FeatureImportance>, ExplainError> {
    let features = &model.schema().features;
    let named = |values: Vec<f64>| {
        features
            .iter()
            .zip(values)
            .map(|(feature, importance)| FeatureImportance {
                feature: feature.name.clone(),
                importance,
                stddev: 0.0,
            })
            .collect()
    };
    if let Ok(ensemble) = model.tree_ensemble() {
        let counts = ensemble
            .split_counts()
            .into_iter()
            .map(|c| c as f64)
            .collect();
        return Ok(sorted(named(counts)));
    }
    if let Err(linear) = model.linear_margin_reason() {
        let trees = model.tree_ensemble().err().unwrap_or_default();
        return Err(ExplainError::Unavailable(format!(
            "MODEL_NATIVE importance is read from a tree ensemble or a linear classifier over the raw features, and this model has neither ({trees}; {linear}); use PERMUTATION or MEAN_ABS_SHAP"
        )));
    }
    if customers.is_empty() {
        return Err(ExplainError::Unavailable(
            "MODEL_NATIVE importance of a linear model needs rows to measure each feature's spread"
                .to_owned(),
        ));
    }
    let mut sums = vec![0.0; features.len()];
    let mut squares = vec![0.0; features.len()];
    for (row, terms) in model.linear_terms(customers)?.into_iter().enumerate() {
        let terms = terms.map_err(|error| ExplainError::InvalidRow { row, error })?;
        for (i, term) in terms.iter().enumerate() {
            sums[i] += term;
            squares[i] += term * term;
        }
    }
    let n = customers.len() as f64;
    let spreads = sums
        .iter()
        .zip(&squares)
        .map(|(sum, square)| (square / n - (sum / n).powi(2)).max(0.0).sqrt())
        .collect();
    Ok(sorted(named(spreads)))
}

/// Mean drop in ROC AUC over `repeats` shuffles of each feature's column, with its
/// standard deviation.
pub fn permutation_importance(
    model: &Model,
    customers: &[Customer],
    churned: &[bool],
    repeats: usize,
    seed: u64,
) -> Result<Vec<FeatureImportance>, ExplainError> {
    let baseline = auc(model, customers, churned)?;
    let columns: Vec<_> = customers.iter().map(|c| ordered_values(model, c)).collect();
    let features = &model.schema().features;
    let mut rng = SplitMix64(seed);
    let mut scores = Vec::with_capacity(features.len());
    for (position, feature) in features.iter().enumerate() {
        let mut drops = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let mut shuffled: Vec<_> = columns.iter().map(|row| row[position].clone()).collect();
            rng.shuffle(&mut shuffled);
            let permuted: Vec<Customer> = customers
                .iter()
                .zip(shuffled)
                .map(|(customer, value)| {
                    let mut customer = customer.clone();
                    for (name, slot) in &mut customer.features {
                        if *name == feature.name {
                            *slot = value.clone();
                        }
                    }
                    customer
                })
                .collect();
            drops.push(baseline - auc(model, &permuted, churned)?);
        }
        let mean = drops.iter().sum::<f64>() / drops.len().max(1) as f64;
        let variance = if drops.len() > 1 {
            drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (drops.len() - 1) as f64
        } else {
            0.0
        };
        scores.push(FeatureImportance {
            feature: feature.name.clone(),
            importance: mean,
            stddev: variance.sqrt(),
        });
    }
    Ok(sorted(scores))
}

/// Mean absolute attribution of each feature over `customers`, with its standard
/// deviation across them.
pub fn mean_abs_shap(
    model: &Model,
    background: &Background,
    customers: &[Customer],
    options: &ExplainOptions,
) -> Result<Vec<FeatureImportance>, ExplainError> {
    let features = &model.schema().features;
    let mut magnitudes = vec![Vec::with_capacity(customers.len()); features.len()];
    for (row, customer) in customers.iter().enumerate() {
        let explanation = explain(model, background, customer, options).map_err(|e| match e {
            ExplainError::InvalidCustomer(error) => ExplainError::InvalidRow { row, error },
            other => other,
        })?;
        for (slot, attribution) in magnitudes.iter_mut().zip(&explanation.attributions) {
            slot.push(attribution.contribution.abs());
        }
    }
    Ok(sorted(
        features
            .iter()
            .zip(magnitudes)
            .map(|(feature, values)| {
                let n = values.len().max(1) as f64;
                let mean = values.iter().sum::<f64>() / n;
                let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                FeatureImportance {
                    feature: feature.name.clone(),
                    importance: mean,
                    stddev: variance.sqrt(),
                }
            })
            .collect(),
    ))
}

fn auc(model: &Model, customers: &[Customer], churned: &[bool]) -> Result<f64, ExplainError> {
    let mut scores = Vec::with_capacity(customers.len());
    for (row, result) in model.predict(customers)?.into_iter().enumerate() {
        match result {
            Ok(prediction) => scores.push(prediction.churn_probability),
            Err(error) => return Err(ExplainError::InvalidRow { row, error }),
        }
    }
    churn_metrics::roc_auc(&scores, churned).ok_or_else(|| {
        ExplainError::Unavailable(
            "PERMUTATION importance needs labelled rows of both outcomes (churned and not)"
                .to_owned(),
        )
    })
}

fn sorted(mut scores: Vec<FeatureImportance>) -> Vec<FeatureImportance> {
    scores.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    scores
}

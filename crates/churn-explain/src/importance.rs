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

/// How many splits in the tree ensemble test each feature. ONNX keeps no split gains or
/// covers, so the count is the native measure that the graph itself carries.
pub fn native_importance(model: &Model) -> Result<Vec<FeatureImportance>, ExplainError> {
    let ensemble = model.tree_ensemble().map_err(|reason| {
        ExplainError::Unavailable(format!(
            "MODEL_NATIVE importance is read from a tree ensemble over the raw features, and this model has none: {reason}; use PERMUTATION or MEAN_ABS_SHAP"
        ))
    })?;
    let counts = ensemble.split_counts();
    Ok(sorted(
        model
            .schema()
            .features
            .iter()
            .zip(counts)
            .map(|(feature, count)| FeatureImportance {
                feature: feature.name.clone(),
                importance: count as f64,
                stddev: 0.0,
            })
            .collect(),
    ))
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

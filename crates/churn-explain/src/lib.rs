//! Why a model scores a customer as it does, by the model's raw feature names: per-customer
//! attributions in log-odds against a background sample, and global feature importance.
//! Exact interventional TreeSHAP where the model is a logistic tree ensemble read from its
//! ONNX graph; Shapley values through ONNX Runtime for every other model. No gRPC here.

mod importance;
mod shapley;
mod tree_shap;

use std::collections::HashMap;

use churn_engine::{Customer, EngineError, FeatureValue, Model, RowError};

pub use importance::{FeatureImportance, mean_abs_shap, native_importance, permutation_importance};

use crate::shapley::{Budget, Game};

/// Probabilities are clamped to `[EPSILON, 1 - EPSILON]` (float32 resolution near 1)
/// before taking log-odds, so saturated models still have finite margins.
const PROBABILITY_EPSILON: f64 = 1.0 / (1u64 << 24) as f64;
/// Largest gap allowed between the trees' logistic output and ONNX Runtime's probability
/// before the tree path is distrusted: float32 output rounding stays far below it.
const TREE_AGREEMENT: f64 = 1e-4;

/// Why an explanation or an importance cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    InvalidCustomer(RowError),
    #[error("row {row}: {error}")]
    InvalidRow { row: usize, error: RowError },
    #[error("background row {row} cannot be scored by this model: {error}")]
    InvalidBackground { row: usize, error: RowError },
    #[error("the background has no rows")]
    EmptyBackground,
    /// The request is well formed but this model or these data cannot answer it.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The algorithm behind an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact, from the ONNX trees.
    TreeShap,
    /// Exact, by valuing every coalition of features through ONNX Runtime.
    ExactShapley,
    /// Estimated from antithetic permutation pairs through ONNX Runtime.
    PermutationShapley,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::TreeShap => "interventional-tree-shap",
            Method::ExactShapley => "exact-shapley",
            Method::PermutationShapley => "antithetic-permutation-shapley",
        }
    }
}

/// How much work a model-agnostic explanation may do.
#[derive(Debug, Clone, Copy)]
pub struct ExplainOptions {
    /// Model evaluations (rows through ONNX Runtime) per explanation at most.
    pub max_evaluations: usize,
    /// Sampling stops early once its error bound is below this, in log-odds.
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            max_evaluations: 100_000,
            tolerance: 1e-3,
            seed: 0x6368_7572_6e73_6572,
        }
    }
}

/// One raw feature's share of the customer's log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub feature: String,
    pub value: FeatureValue,
    pub contribution: f64,
}

/// `base_value + Σ contribution = output_value`, in log-odds of churn.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub base_value: f64,
    pub output_value: f64,
    /// One per raw feature, in schema order.
    pub attributions: Vec<Attribution>,
    pub method: Method,
    /// Bound on each attribution's error: sampling error plus the float32 rounding of the
    /// model's output; 0 for TreeSHAP, which works on exact float64 margins.
    pub max_abs_error: f64,
}

impl Explanation {
    /// The `k` attributions of largest magnitude, largest first.
    pub fn top(&self, k: usize) -> Vec<Attribution> {
        let mut sorted = self.attributions.clone();
        sorted.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        sorted.truncate(k);
        sorted
    }
}

/// The rows an explanation is measured against, scored once and kept with the model.
#[derive(Debug)]
pub struct Background {
    rows: Vec<Vec<FeatureValue>>,
    /// Log-odds of each row through ONNX Runtime.
    margins: Vec<f64>,
    /// Largest rounding error of those log-odds.
    rounding: f64,
    /// Dense rows and their mean tree margin, when the tree path applies to this model.
    trees: Result<(Vec<Vec<f64>>, f64), String>,
}

impl Background {
    /// Scores every row; each must be valid for the model.
    pub fn new(model: &Model, customers: &[Customer]) -> Result<Background, ExplainError> {
        if customers.is_empty() {
            return Err(ExplainError::EmptyBackground);
        }
        let mut probabilities = Vec::with_capacity(customers.len());
        for (row, result) in model.predict(customers)?.into_iter().enumerate() {
            match result {
                Ok(prediction) => probabilities.push(prediction.churn_probability),
                Err(error) => return Err(ExplainError::InvalidBackground { row, error }),
            }
        }
        let rows = customers.iter().map(|c| ordered_values(model, c)).collect();
        let trees = match model.tree_ensemble() {
            Err(reason) => Err(reason.to_owned()),
            Ok(ensemble) => {
                let dense: Vec<Vec<f64>> = model
                    .dense_rows(customers)
                    .into_iter()
                    .map(|row| row.unwrap_or_default())
                    .collect();
                let tree_margins: Vec<f64> = dense.iter().map(|r| ensemble.margin(r)).collect();
                let worst = tree_margins
                    .iter()
                    .zip(&probabilities)
                    .map(|(m, p)| (sigmoid(*m) - p).abs())
                    .fold(0.0, f64::max);
                if worst <= TREE_AGREEMENT {
                    let mean = tree_margins.iter().sum::<f64>() / tree_margins.len() as f64;
                    Ok((dense, mean))
                } else {
                    Err(format!(
                        "the trees read from the graph differ from ONNX Runtime by {worst:.1e} on the background"
                    ))
                }
            }
        };
        Ok(Background {
            rows,
            margins: probabilities.iter().map(|&p| margin(p)).collect(),
            rounding: probabilities
                .iter()
                .map(|&p| rounding(p))
                .fold(0.0, f64::max),
            trees,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether explanations against this background use exact TreeSHAP, or why not.
    pub fn tree_path(&self) -> Result<(), &str> {
        self.trees.as_ref().map(|_| ()).map_err(String::as_str)
    }
}

/// Explains one customer's score against `background`.
pub fn explain(
    model: &Model,
    background: &Background,
    customer: &Customer,
    options: &ExplainOptions,
) -> Result<Explanation, ExplainError> {
    let probability = match model.predict(std::slice::from_ref(customer))?.pop() {
        Some(Ok(prediction)) => prediction.churn_probability,
        Some(Err(error)) => return Err(ExplainError::InvalidCustomer(error)),
        None => unreachable!("one prediction per customer"),
    };
    let values = ordered_values(model, customer);
    let (base_value, output_value, contributions, method, max_abs_error) =
        match (&background.trees, model.tree_ensemble()) {
            (Ok((dense, mean)), Ok(ensemble)) => {
                let row = model
                    .dense_rows(std::slice::from_ref(customer))
                    .pop()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                let contributions = tree_shap::attributions(ensemble, &row, dense);
                (
                    *mean,
                    ensemble.margin(&row),
                    contributions,
                    Method::TreeShap,
                    0.0,
                )
            }
            _ => {
                let none = background.margins.iter().sum::<f64>() / background.len() as f64;
                let all = margin(probability);
                let mut game = ModelGame::new(
                    model,
                    background,
                    &values,
                    all,
                    background.rounding.max(rounding(probability)),
                );
                let budget = Budget {
                    evaluations: options.max_evaluations,
                    tolerance: options.tolerance,
                    seed: options.seed,
                };
                let estimate = shapley::solve(&mut game, none, all, budget)?;
                let method = if estimate.exact {
                    Method::ExactShapley
                } else {
                    Method::PermutationShapley
                };
                // Each attribution is a difference of two averaged margins.
                let error = estimate.sampling_error + 2.0 * game.rounding;
                (none, all, estimate.values, method, error)
            }
        };
    let attributions = model
        .schema()
        .features
        .iter()
        .zip(values)
        .zip(contributions)
        .map(|((feature, value), contribution)| Attribution {
            feature: feature.name.clone(),
            value,
            contribution,
        })
        .collect();
    Ok(Explanation {
        base_value,
        output_value,
        attributions,
        method,
        max_abs_error,
    })
}

/// The coalition game of one customer: features in the coalition come from the customer,
/// the others from each background row in turn. A hybrid row depends only on which of the
/// features that differ between the customer and that background row it takes from the
/// customer, so equal hybrids are scored once per explanation.
struct ModelGame<'a> {
    model: &'a Model,
    background: &'a Background,
    explained: &'a [FeatureValue],
    /// Log-odds of the customer: the hybrid that takes every differing feature.
    explained_margin: f64,
    /// Per background row, the features whose value differs from the customer's; `None`
    /// beyond 64 features, where every hybrid is scored.
    differs: Option<Vec<u64>>,
    scored: HashMap<(usize, u64), f64>,
    rounding: f64,
}

/// Where one hybrid's log-odds come from.
enum Hybrid {
    Known(f64),
    /// Index into the rows to score.
    Pending(usize),
}

impl<'a> ModelGame<'a> {
    fn new(
        model: &'a Model,
        background: &'a Background,
        explained: &'a [FeatureValue],
        explained_margin: f64,
        rounding: f64,
    ) -> Self {
        let differs = (explained.len() <= 64).then(|| {
            background
                .rows
                .iter()
                .map(|reference| {
                    reference
                        .iter()
                        .zip(explained)
                        .enumerate()
                        .filter(|(_, (a, b))| a != b)
                        .fold(0u64, |mask, (i, _)| mask | 1 << i)
                })
                .collect()
        });
        ModelGame {
            model,
            background,
            explained,
            explained_margin,
            differs,
            scored: HashMap::new(),
            rounding,
        }
    }

    /// How to value `coalition` on background row `row`; new rows go to `pending`.
    fn hybrid(
        &self,
        row: usize,
        coalition: &[bool],
        pending: &mut Vec<(usize, Vec<bool>)>,
        pending_index: &mut HashMap<(usize, u64), usize>,
    ) -> Hybrid {
        let Some(differs) = &self.differs else {
            pending.push((row, coalition.to_vec()));
            return Hybrid::Pending(pending.len() - 1);
        };
        let taken = coalition
            .iter()
            .enumerate()
            .filter(|(_, member)| **member)
            .fold(0u64, |mask, (i, _)| mask | 1 << i)
            & differs[row];
        if taken == 0 {
            return Hybrid::Known(self.background.margins[row]);
        }
        if taken == differs[row] {
            return Hybrid::Known(self.explained_margin);
        }
        if let Some(&margin) = self.scored.get(&(row, taken)) {
            return Hybrid::Known(margin);
        }
        let index = *pending_index.entry((row, taken)).or_insert_with(|| {
            pending.push((row, coalition.to_vec()));
            pending.len() - 1
        });
        Hybrid::Pending(index)
    }
}

impl Game for ModelGame<'_> {
    type Error = ExplainError;

    fn players(&self) -> usize {
        self.explained.len()
    }

    fn cost_per_coalition(&self) -> usize {
        self.background.len()
    }

    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<f64>, ExplainError> {
        let rows = self.background.len();
        let mut pending = Vec::new();
        let mut pending_index = HashMap::new();
        let hybrids: Vec<Hybrid> = coalitions
            .iter()
            .flat_map(|coalition| (0..rows).map(move |row| (row, coalition)))
            .map(|(row, coalition)| self.hybrid(row, coalition, &mut pending, &mut pending_index))
            .collect();
        let names = self.model.schema().features.iter().map(|f| f.name.as_str());
        let customers: Vec<Customer> = pending
            .iter()
            .map(|(row, coalition)| Customer {
                id: String::new(),
                features: names
                    .clone()
                    .zip(coalition)
                    .enumerate()
                    .map(|(i, (name, &from_explained))| {
                        let value = if from_explained {
                            &self.explained[i]
                        } else {
                            &self.background.rows[*row][i]
                        };
                        (name.to_owned(), value.clone())
                    })
                    .collect(),
            })
            .collect();
        let mut margins = Vec::with_capacity(customers.len());
        for ((row, _), result) in pending.iter().zip(self.model.predict(&customers)?) {
            let probability = result
                .map_err(|error| ExplainError::InvalidBackground { row: *row, error })?
                .churn_probability;
            self.rounding = self.rounding.max(rounding(probability));
            margins.push(margin(probability));
        }
        if self.differs.is_some() {
            for (key, index) in pending_index {
                self.scored.insert(key, margins[index]);
            }
        }
        let value = |hybrid: &Hybrid| match *hybrid {
            Hybrid::Known(margin) => margin,
            Hybrid::Pending(index) => margins[index],
        };
        Ok(hybrids
            .chunks(rows)
            .map(|chunk| chunk.iter().map(value).sum::<f64>() / rows as f64)
            .collect())
    }
}

/// The customer's values in schema order; the customer has passed validation, so each
/// feature is present exactly once.
fn ordered_values(model: &Model, customer: &Customer) -> Vec<FeatureValue> {
    model
        .schema()
        .features
        .iter()
        .map(|feature| {
            customer
                .features
                .iter()
                .find(|(name, _)| *name == feature.name)
                .map_or(FeatureValue::Missing, |(_, value)| value.clone())
        })
        .collect()
}

fn margin(probability: f64) -> f64 {
    let p = probability.clamp(PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON);
    (p / (1.0 - p)).ln()
}

/// How far the log-odds of a float32 probability may be from those of the exact one:
/// half an ulp of the probability, through the slope of the logit, plus the float32
/// arithmetic inside the graph in proportion to the margin's size.
fn rounding(probability: f64) -> f64 {
    let p = probability.clamp(PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON);
    let output = PROBABILITY_EPSILON / 2.0 / (p * (1.0 - p));
    let arithmetic = 16.0 * f64::from(f32::EPSILON) * (1.0 + margin(p).abs());
    output + arithmetic
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

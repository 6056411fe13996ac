//! A loaded model: its schema, decision policy and a small pool of ONNX Runtime
//! sessions. Loading (`loading.rs`), the session pool and its runs (`sessions.rs`),
//! decisions and bands (`decision.rs`) and the linear margin (`linear.rs`) each have a
//! file; this one holds the model and its scoring entry points.

mod decision;
mod linear;
mod loading;
mod sessions;
mod smoke;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::batch::{self, Column, Customer, CustomerBatch, Encoded, RowError};
use crate::error::EngineError;
use crate::schema::{Layout, Schema};
use crate::trees::TreeEnsemble;
use ort::session::{HasSelectedOutputs, RunOptions, Session};

/// Metadata key holding the decision threshold, a JSON number.
pub const THRESHOLD_KEY: &str = "churnserve.threshold";
/// Metadata key holding the risk band cut points, a JSON array of two ascending numbers.
pub const RISK_BAND_CUTS_KEY: &str = "churnserve.risk_band_cuts";

/// The positive class's log-odds as `intercept + Σ weights[j] · encoded[j]`, where
/// encoded column `j` comes from raw feature `features[j]`.
#[derive(Debug)]
struct LinearMargin {
    /// The graph tensor holding the encoded features, exposed as an extra output.
    encoded: String,
    features: Vec<usize>,
    weights: Vec<f64>,
    intercept: f64,
}

/// One session with the run options that select only the probability output.
struct PooledSession {
    session: Session,
    run_options: RunOptions<HasSelectedOutputs>,
}

/// Choices made when loading a model; `None` falls back to the model's metadata, then
/// to the defaults.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Column names of a dense `[N,F]` input.
    pub feature_names: Option<Vec<String>>,
    /// The class label counted as churn; default the last class label.
    pub positive_class: Option<String>,
    pub threshold: Option<f64>,
    pub risk_band_cuts: Option<[f64; 2]>,
    /// Sessions kept for concurrent runs of this model.
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_op_threads: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            feature_names: None,
            positive_class: None,
            threshold: None,
            risk_band_cuts: None,
            sessions: std::thread::available_parallelism().map_or(1, usize::from),
            intra_op_threads: 1,
        }
    }
}

/// Risk band of a probability against the model's cut points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskBand {
    Low,
    Medium,
    High,
}

/// The score of one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub churn_probability: f64,
    pub will_churn: bool,
    pub risk_band: RiskBand,
}

/// A loaded, validated model ready to score.
pub struct Model {
    schema: Schema,
    class_labels: Vec<String>,
    positive_index: usize,
    /// The decision threshold's bits: changeable while the model serves.
    threshold: AtomicU64,
    risk_band_cuts: [f64; 2],
    producer: String,
    probability_output: String,
    probability_type: i32,
    /// The trees whose margin is the positive class's log-odds, or why there are none.
    tree_ensemble: Result<TreeEnsemble, String>,
    /// The linear margin over the encoded features, or why there is none.
    linear: Result<LinearMargin, String>,
    sessions: Vec<Mutex<PooledSession>>,
    next_session: AtomicUsize,
    unknown_categories: AtomicU64,
    /// ONNX Runtime calls and their total time in nanoseconds, excluding validation.
    inference_runs: AtomicU64,
    inference_nanos: AtomicU64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("features", &self.schema.features.len())
            .field("class_labels", &self.class_labels)
            .field("positive_index", &self.positive_index)
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

/// What a graph declares, read without ONNX Runtime.
#[derive(Debug)]
pub struct Inspection {
    pub schema: Schema,
    /// The logistic tree ensemble over the raw features, or why there is none.
    pub tree_ensemble: Result<TreeEnsemble, String>,
}

impl Model {
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn class_labels(&self) -> &[String] {
        &self.class_labels
    }

    pub fn positive_class(&self) -> &str {
        &self.class_labels[self.positive_index]
    }

    /// The tool that exported the ONNX file, as the file says.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// ONNX Runtime calls since the model loaded and their total time, validation and
    /// encoding excluded.
    pub fn inference_time(&self) -> (u64, std::time::Duration) {
        (
            self.inference_runs.load(Ordering::Relaxed),
            std::time::Duration::from_nanos(self.inference_nanos.load(Ordering::Relaxed)),
        )
    }

    /// The trees whose sum is this model's positive-class log-odds, or why it has none.
    pub fn tree_ensemble(&self) -> Result<&TreeEnsemble, &str> {
        self.tree_ensemble.as_ref().map_err(String::as_str)
    }

    /// Each customer's row of the dense input tensor as the graph receives it (a
    /// category as its code); empty rows for a model with one input per feature.
    pub fn dense_rows(&self, customers: &[Customer]) -> Vec<Result<Vec<f64>, RowError>> {
        let (encoded, errors) = batch::encode(&self.schema, customers);
        let width = self.schema.features.len();
        let values: Vec<f64> = match (&self.schema.layout, encoded.columns.first()) {
            (Layout::Dense { .. }, Some(Column::F32(values))) => {
                values.iter().map(|&v| f64::from(v)).collect()
            }
            (Layout::Dense { .. }, Some(Column::F64(values))) => values.clone(),
            _ => Vec::new(),
        };
        let mut rows = values.chunks_exact(width.max(1)).map(<[f64]>::to_vec);
        errors
            .into_iter()
            .map(|error| match error {
                Some(error) => Err(error),
                None => Ok(rows.next().unwrap_or_default()),
            })
            .collect()
    }

    /// Text values outside the graph's known categories that were scored anyway, because
    /// the model's encoder ignores unknown categories, since the model was loaded.
    pub fn unknown_categories_scored(&self) -> u64 {
        self.unknown_categories.load(Ordering::Relaxed)
    }

    /// Scores every customer; a row that fails validation gets its error and never
    /// affects the others. Blocking: call it off the async threads.
    pub fn predict(
        &self,
        customers: &[Customer],
    ) -> Result<Vec<Result<Prediction, RowError>>, EngineError> {
        self.predict_encoded(batch::encode(&self.schema, customers))
    }

    /// [`Model::predict`] for a batch in either form.
    pub fn predict_batch(
        &self,
        customers: &CustomerBatch,
    ) -> Result<Vec<Result<Prediction, RowError>>, EngineError> {
        self.predict_rows(customers, 0..customers.len())
    }

    /// [`Model::predict_batch`] for the rows `rows` of the batch alone, so that the parts
    /// of a large batch can run on several threads.
    pub fn predict_rows(
        &self,
        customers: &CustomerBatch,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<Result<Prediction, RowError>>, EngineError> {
        if rows.start > rows.end || rows.end > customers.len() {
            return Err(EngineError::Inference(format!(
                "rows {rows:?} of a batch of {}",
                customers.len()
            )));
        }
        self.predict_encoded(match customers {
            CustomerBatch::Rows(all) => batch::encode(&self.schema, &all[rows]),
            CustomerBatch::Columns(columns) => batch::encode(
                &self.schema,
                batch::ColumnRows {
                    columns,
                    first: rows.start,
                    count: rows.len(),
                },
            ),
        })
    }

    fn predict_encoded(
        &self,
        (encoded, errors): (Encoded, Vec<Option<RowError>>),
    ) -> Result<Vec<Result<Prediction, RowError>>, EngineError> {
        self.unknown_categories
            .fetch_add(encoded.unknown_categories, Ordering::Relaxed);
        let mut results: Vec<Result<Prediction, RowError>> = errors
            .into_iter()
            .map(|error| {
                error.map_or(
                    Err(RowError {
                        problems: Vec::new(),
                    }),
                    Err,
                )
            })
            .collect();
        if encoded.rows.is_empty() {
            return Ok(results);
        }
        let (width, values) = self.run(&encoded)?;
        for (i, &row) in encoded.rows.iter().enumerate() {
            let probability = self.positive_probability(width, &values[i * width..(i + 1) * width]);
            results[row] = if probability.is_finite() {
                Ok(self.decide(probability))
            } else {
                Err(RowError::whole_row(
                    "the model returned a non-finite probability for this row; check its missing values",
                ))
            };
        }
        Ok(results)
    }
}

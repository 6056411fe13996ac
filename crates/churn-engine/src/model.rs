//! A loaded model: its schema, decision policy and a small pool of ONNX Runtime sessions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};
use prost::Message;

use crate::batch::{self, Column, Customer, CustomerBatch, Encoded, FeatureValue, RowError};
use crate::error::EngineError;
use crate::graph::{self, GraphFacts, LinearFacts, ProbabilitySource};
use crate::onnx_proto::{self, ModelProto, elem_type};
use crate::runtime::OnnxRuntime;
use crate::schema::{FeatureKind, Layout, Schema};
use crate::trees::{self, TreeEnsemble};

/// Metadata key holding the decision threshold, a JSON number.
pub const THRESHOLD_KEY: &str = "churnserve.threshold";
/// Metadata key holding the risk band cut points, a JSON array of two ascending numbers.
pub const RISK_BAND_CUTS_KEY: &str = "churnserve.risk_band_cuts";
const DEFAULT_THRESHOLD: f64 = 0.5;
const DEFAULT_RISK_BAND_CUTS: [f64; 2] = [0.3, 0.6];

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

struct ReadGraph {
    proto: ModelProto,
    facts: GraphFacts,
    schema: Schema,
}

fn read_graph(bytes: &[u8], feature_names: Option<&[String]>) -> Result<ReadGraph, EngineError> {
    let proto = ModelProto::decode(bytes)
        .map_err(|e| EngineError::InvalidModel(format!("not an ONNX model: {e}")))?;
    let facts = graph::analyze(&proto).map_err(EngineError::InvalidModel)?;
    let schema = Schema::derive(&facts, feature_names)?;
    Ok(ReadGraph {
        proto,
        facts,
        schema,
    })
}

fn tree_ensemble_of(proto: &ModelProto, schema: &Schema) -> Result<TreeEnsemble, String> {
    match &schema.layout {
        Layout::Dense { input_name } => {
            let graph = proto.graph.as_ref().expect("analyze found the graph");
            trees::logistic_ensemble(graph, input_name, schema.features.len())
        }
        Layout::PerFeature { .. } => {
            Err("the trees, if any, do not read the raw features directly".to_owned())
        }
    }
}

impl Model {
    /// The schema and tree ensemble of ONNX bytes from anywhere, read by this crate's own
    /// parser without ONNX Runtime: the first half of [`Model::load`].
    pub fn inspect(
        bytes: &[u8],
        feature_names: Option<&[String]>,
    ) -> Result<Inspection, EngineError> {
        let graph = read_graph(bytes, feature_names)?;
        Ok(Inspection {
            tree_ensemble: tree_ensemble_of(&graph.proto, &graph.schema),
            schema: graph.schema,
        })
    }

    /// Parses the graph, derives the schema, builds the sessions and scores one synthetic
    /// row, so that a model that loads is a model that scores.
    pub fn load(
        runtime: &OnnxRuntime,
        bytes: &[u8],
        options: &ModelOptions,
    ) -> Result<Model, EngineError> {
        let ReadGraph {
            proto,
            facts,
            schema,
        } = read_graph(bytes, options.feature_names.as_deref())?;
        let (probability_output, probability_type, mut session_bytes) = match &facts.probabilities {
            Some(ProbabilitySource::Output { name, elem_type }) => {
                (name.clone(), *elem_type, bytes.to_vec())
            }
            Some(ProbabilitySource::ZipMapInput { name }) => {
                let mut extended = bytes.to_vec();
                extended.extend(onnx_proto::extra_output_suffix(name, elem_type::FLOAT));
                (name.clone(), elem_type::FLOAT, extended)
            }
            None => {
                return Err(EngineError::InvalidModel(
                    "no probability output: expected a float tensor [N,2] or [N,1], or a ZipMap"
                        .to_owned(),
                ));
            }
        };
        if let Ok(linear) = &facts.linear {
            // Computed for the probabilities anyway; exposing it costs nothing unless fetched.
            session_bytes.extend(onnx_proto::extra_output_suffix(
                &linear.input,
                elem_type::FLOAT,
            ));
        }
        let sessions = (0..options.sessions.max(1))
            .map(|_| {
                build_session(
                    runtime,
                    &session_bytes,
                    options.intra_op_threads,
                    &probability_output,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata_number = |key: &str| -> Result<Option<f64>, EngineError> {
            facts
                .metadata
                .get(key)
                .map(|v| parse_json(key, v))
                .transpose()
        };
        let threshold = match options.threshold {
            Some(t) => t,
            None => metadata_number(THRESHOLD_KEY)?.unwrap_or(DEFAULT_THRESHOLD),
        };
        let risk_band_cuts = match options.risk_band_cuts {
            Some(cuts) => cuts,
            None => match facts.metadata.get(RISK_BAND_CUTS_KEY) {
                Some(json) => parse_json(RISK_BAND_CUTS_KEY, json)?,
                None => DEFAULT_RISK_BAND_CUTS,
            },
        };
        validate_decision(threshold, risk_band_cuts)?;
        let tree_ensemble = tree_ensemble_of(&proto, &schema);
        let mut model = Model {
            schema,
            class_labels: facts.class_labels.clone(),
            positive_index: 0,
            threshold: AtomicU64::new(threshold.to_bits()),
            risk_band_cuts,
            producer: facts.producer.clone(),
            probability_output,
            probability_type,
            tree_ensemble,
            linear: Err("not settled yet".to_owned()),
            sessions,
            next_session: AtomicUsize::new(0),
            unknown_categories: AtomicU64::new(0),
            inference_runs: AtomicU64::new(0),
            inference_nanos: AtomicU64::new(0),
        };
        model.settle_classes(options.positive_class.as_deref())?;
        model.confirm_tree_ensemble()?;
        model.linear = facts.linear.and_then(|linear| model.linear_margin(linear));
        Ok(model)
    }

    /// The positive class's margin from the classifier's coefficients, kept only if it
    /// reproduces ONNX Runtime's probability on the smoke-test row.
    fn linear_margin(&self, facts: LinearFacts) -> Result<LinearMargin, String> {
        let positive = self.positive_index;
        let row = |r: usize| {
            facts
                .coefficients
                .get(r)
                .map(|w| (w.clone(), facts.intercepts[r]))
        };
        let (weights, intercept) = match (facts.coefficients.len(), facts.post_transform.as_str()) {
            // One score: the second class's.
            (1, _) => {
                let (w, b) = row(0).expect("one row");
                let sign = if positive == 1 { 1.0 } else { -1.0 };
                (w.iter().map(|v| sign * v).collect(), sign * b)
            }
            (2, "LOGISTIC") => row(positive).expect("two rows"),
            (2, "NONE" | "SOFTMAX") => {
                let ((w1, b1), (w0, b0)) = (
                    row(positive).expect("two rows"),
                    row(1 - positive).expect("two rows"),
                );
                (w1.iter().zip(&w0).map(|(a, b)| a - b).collect(), b1 - b0)
            }
            (rows, transform) => {
                return Err(format!(
                    "a LinearClassifier with {rows} score rows and a {transform} post-transform is not a binary logistic margin"
                ));
            }
        };
        let features = facts
            .origins
            .iter()
            .map(|&(input, column)| match self.schema.layout {
                Layout::PerFeature { .. } => input,
                Layout::Dense { .. } => column,
            })
            .collect();
        let margin = LinearMargin {
            encoded: facts.input,
            features,
            weights,
            intercept,
        };
        let smoke = synthetic_customer(&self.schema);
        let slice = std::slice::from_ref(&smoke);
        let terms = self.terms(&margin, slice).map_err(|e| e.to_string())?.pop();
        let probability = match self.predict(slice).map_err(|e| e.to_string())?.pop() {
            Some(Ok(prediction)) => prediction.churn_probability,
            _ => return Err("the smoke-test row did not score".to_owned()),
        };
        let from_terms = terms
            .and_then(Result::ok)
            .map(|t| sigmoid(margin.intercept + t.iter().sum::<f64>()));
        if from_terms.is_none_or(|p| (p - probability).abs() > 1e-4) {
            return Err(format!(
                "the coefficients read from the graph give {from_terms:?} where ONNX Runtime gives {probability}"
            ));
        }
        Ok(margin)
    }

    /// Per row, each raw feature's share of the linear margin (`Σ weight · encoded value`
    /// over the columns it becomes); an error when the model is not linear.
    pub fn linear_terms(
        &self,
        customers: &[Customer],
    ) -> Result<Vec<Result<Vec<f64>, RowError>>, EngineError> {
        let margin = self
            .linear
            .as_ref()
            .map_err(|reason| EngineError::InvalidModel(reason.clone()))?;
        self.terms(margin, customers)
    }

    /// Whether the model has a linear margin over its encoded features, or why not.
    pub fn linear_margin_reason(&self) -> Result<(), &str> {
        self.linear.as_ref().map(|_| ()).map_err(String::as_str)
    }

    fn terms(
        &self,
        margin: &LinearMargin,
        customers: &[Customer],
    ) -> Result<Vec<Result<Vec<f64>, RowError>>, EngineError> {
        let (encoded, errors) = batch::encode(&self.schema, customers);
        let mut results: Vec<Result<Vec<f64>, RowError>> = errors
            .into_iter()
            .map(|error| error.map_or(Ok(Vec::new()), Err))
            .collect();
        if encoded.rows.is_empty() {
            return Ok(results);
        }
        let options = RunOptions::new()
            .map_err(inference_error)?
            .with_outputs(OutputSelector::no_default().with(margin.encoded.as_str()));
        let (_, values) =
            self.run_output(&encoded, &margin.encoded, elem_type::FLOAT, Some(&options))?;
        let width = margin.weights.len();
        if values.len() != width * encoded.rows.len() {
            return Err(EngineError::Inference(format!(
                "the encoded features `{}` have {} values for {} rows of {width}",
                margin.encoded,
                values.len(),
                encoded.rows.len()
            )));
        }
        for (values, &row) in values.chunks_exact(width).zip(&encoded.rows) {
            let mut terms = vec![0.0; self.schema.features.len()];
            for ((value, weight), &feature) in
                values.iter().zip(&margin.weights).zip(&margin.features)
            {
                terms[feature] += weight * value;
            }
            results[row] = Ok(terms);
        }
        Ok(results)
    }

    /// Keeps the tree ensemble only if its logistic margin reproduces ONNX Runtime's
    /// positive-class probability on the smoke-test row.
    fn confirm_tree_ensemble(&mut self) -> Result<(), EngineError> {
        let Ok(ensemble) = &self.tree_ensemble else {
            return Ok(());
        };
        let row = synthetic_customer(&self.schema);
        let slice = std::slice::from_ref(&row);
        let probability = match self.predict(slice)?.pop() {
            Some(Ok(prediction)) => prediction.churn_probability,
            _ => return Ok(()),
        };
        let dense = self.dense_rows(slice).pop().and_then(Result::ok);
        let from_trees = dense.map(|row| sigmoid(ensemble.margin(&row)));
        if from_trees.is_none_or(|p| (p - probability).abs() > 1e-4) {
            self.tree_ensemble = Err(format!(
                "the trees read from the graph give {from_trees:?} where ONNX Runtime gives {probability} for the positive class"
            ));
        }
        Ok(())
    }

    /// Runs the synthetic row to learn the probability width, then fixes the class
    /// labels and the positive class.
    fn settle_classes(&mut self, positive_class: Option<&str>) -> Result<(), EngineError> {
        let row = synthetic_customer(&self.schema);
        let (encoded, errors) = batch::encode(&self.schema, std::slice::from_ref(&row));
        if let Some(Some(error)) = errors.first() {
            return Err(EngineError::InvalidModel(format!(
                "cannot build a smoke-test row: {error}"
            )));
        }
        let (width, values) = self.run(&encoded)?;
        if let Some(bad) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(EngineError::InvalidModel(format!(
                "the smoke-test row gave {bad} from `{}`, which is not a probability in [0, 1]",
                self.probability_output
            )));
        }
        if self.class_labels.is_empty() {
            self.class_labels = (0..width.max(2)).map(|c| c.to_string()).collect();
        }
        let classes = self.class_labels.len();
        if width != classes && !(width == 1 && classes == 2) {
            return Err(EngineError::InvalidModel(format!(
                "the probability output `{}` has {width} columns but the graph names {classes} classes",
                self.probability_output
            )));
        }
        self.positive_index = match positive_class {
            None | Some("") => classes - 1,
            Some(label) => self
                .class_labels
                .iter()
                .position(|c| c == label)
                .ok_or_else(|| {
                    EngineError::InvalidModel(format!(
                        "positive class {label:?} is not a class of the model; classes are {:?}",
                        self.class_labels
                    ))
                })?,
        };
        Ok(())
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn class_labels(&self) -> &[String] {
        &self.class_labels
    }

    pub fn positive_class(&self) -> &str {
        &self.class_labels[self.positive_index]
    }

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
        self.predict_encoded(match customers {
            CustomerBatch::Rows(rows) => batch::encode(&self.schema, rows.as_slice()),
            CustomerBatch::Columns(columns) => batch::encode(&self.schema, columns),
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

    fn positive_probability(&self, width: usize, row: &[f64]) -> f64 {
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

    fn decide(&self, probability: f64) -> Prediction {
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

    /// Runs the encoded rows; returns the probability width and the row-major values.
    fn run(&self, encoded: &Encoded) -> Result<(usize, Vec<f64>), EngineError> {
        let rows = encoded.rows.len();
        let (shape, values) = self.run_output(
            encoded,
            &self.probability_output,
            self.probability_type,
            None,
        )?;
        let width = match shape.as_slice() {
            [n] if *n as usize == rows => 1,
            [n, width] if *n as usize == rows => *width as usize,
            other => {
                return Err(EngineError::Inference(format!(
                    "probability output `{}` has shape {other:?} for {rows} rows",
                    self.probability_output
                )));
            }
        };
        Ok((width, values))
    }

    /// Runs the encoded rows and reads one float or double output; `options` selects
    /// that output when it is not the probability one.
    fn run_output(
        &self,
        encoded: &Encoded,
        output: &str,
        output_type: i32,
        options: Option<&RunOptions<HasSelectedOutputs>>,
    ) -> Result<(Vec<i64>, Vec<f64>), EngineError> {
        let inputs = self.input_values(encoded)?;
        let mut pooled = self.checkout();
        let PooledSession {
            session,
            run_options,
        } = &mut *pooled;
        let start = std::time::Instant::now();
        let outputs = session
            .run_with_options(inputs, options.unwrap_or(run_options))
            .map_err(|e| EngineError::Inference(e.to_string()))?;
        self.inference_runs.fetch_add(1, Ordering::Relaxed);
        self.inference_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let value = &outputs[output];
        Ok(if output_type == elem_type::DOUBLE {
            let (shape, data) = value.try_extract_tensor::<f64>().map_err(inference_error)?;
            (shape.to_vec(), data.to_vec())
        } else {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(inference_error)?;
            (shape.to_vec(), data.iter().map(|&v| f64::from(v)).collect())
        })
    }

    /// Takes a free session if there is one, else waits for one in turn.
    fn checkout(&self) -> MutexGuard<'_, PooledSession> {
        let start = self.next_session.fetch_add(1, Ordering::Relaxed);
        let count = self.sessions.len();
        for offset in 0..count {
            if let Ok(guard) = self.sessions[(start + offset) % count].try_lock() {
                return guard;
            }
        }
        self.sessions[start % count]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tensors over the encoded buffers, by graph input name.
    fn input_values<'v>(
        &'v self,
        encoded: &'v Encoded,
    ) -> Result<Vec<(&'v str, SessionInputValue<'v>)>, EngineError> {
        let rows = encoded.rows.len() as i64;
        match &self.schema.layout {
            Layout::PerFeature { input_names, ranks } => encoded
                .columns
                .iter()
                .zip(input_names.iter().zip(ranks))
                .map(|(column, (name, &rank))| {
                    let shape = if rank == 1 { vec![rows] } else { vec![rows, 1] };
                    Ok((name.as_str(), column_value(column, shape)?))
                })
                .collect(),
            Layout::Dense { input_name } => {
                let shape = vec![rows, self.schema.features.len() as i64];
                Ok(vec![(
                    input_name.as_str(),
                    column_value(&encoded.columns[0], shape)?,
                )])
            }
        }
    }
}

fn column_value<'v>(
    column: &'v Column,
    shape: Vec<i64>,
) -> Result<SessionInputValue<'v>, EngineError> {
    Ok(match column {
        Column::F32(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(inference_error)?
            .into(),
        Column::F64(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(inference_error)?
            .into(),
        Column::I64(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(inference_error)?
            .into(),
        Column::Bool(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(inference_error)?
            .into(),
        Column::Text(values) => {
            let tensor: DynValue = Tensor::from_string_array((shape, values.as_slice()))
                .map_err(inference_error)?
                .into_dyn();
            tensor.into()
        }
    })
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

fn inference_error(error: ort::Error) -> EngineError {
    EngineError::Inference(error.to_string())
}

fn build_session(
    runtime: &OnnxRuntime,
    bytes: &[u8],
    intra_op_threads: usize,
    probability_output: &str,
) -> Result<Mutex<PooledSession>, EngineError> {
    let invalid =
        |e: String| EngineError::InvalidModel(format!("onnx runtime rejected the model: {e}"));
    let session = Session::builder(&runtime.environment)
        .map_err(|e| invalid(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| invalid(e.to_string()))?
        .with_intra_threads(intra_op_threads.max(1))
        .map_err(|e| invalid(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| invalid(e.to_string()))?
        .commit_from_memory(bytes)
        .map_err(|e| invalid(e.to_string()))?;
    let run_options = RunOptions::new()
        .map_err(|e| invalid(e.to_string()))?
        .with_outputs(OutputSelector::no_default().with(probability_output));
    Ok(Mutex::new(PooledSession {
        session,
        run_options,
    }))
}

fn parse_json<T: serde::de::DeserializeOwned>(key: &str, value: &str) -> Result<T, EngineError> {
    serde_json::from_str(value).map_err(|e| {
        EngineError::InvalidModel(format!("metadata `{key}` = {value:?} cannot be read: {e}"))
    })
}

fn validate_decision(threshold: f64, [medium, high]: [f64; 2]) -> Result<(), EngineError> {
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

/// A row every schema accepts: zero, false, or the first known category.
fn synthetic_customer(schema: &Schema) -> Customer {
    let features = schema
        .features
        .iter()
        .map(|feature| {
            let value = match feature.kind {
                FeatureKind::Number => FeatureValue::Number(0.0),
                FeatureKind::Bool => FeatureValue::Flag(false),
                FeatureKind::Text => FeatureValue::Text(
                    feature
                        .categories
                        .as_ref()
                        .and_then(|c| c.values.first())
                        .cloned()
                        .unwrap_or_default(),
                ),
            };
            (feature.name.clone(), value)
        })
        .collect();
    Customer {
        id: "smoke-test".to_owned(),
        features,
    }
}

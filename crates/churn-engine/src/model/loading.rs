//! Loading a model: the graph read by this crate's parser, the schema derived, the
//! sessions built, the decision policy from the options or the graph's metadata, and the
//! smoke-test row that settles the classes and confirms the tree ensemble, so that a
//! model that loads is a model that scores.

use std::sync::atomic::{AtomicU64, AtomicUsize};

use prost::Message;

use super::decision::{DEFAULT_RISK_BAND_CUTS, DEFAULT_THRESHOLD, validate_decision};
use super::sessions::build_session;
use super::smoke::{sigmoid, synthetic_customer};
use super::{Inspection, Model, ModelOptions, RISK_BAND_CUTS_KEY, THRESHOLD_KEY};
use crate::batch;
use crate::error::EngineError;
use crate::graph::{self, GraphFacts, ProbabilitySource};
use crate::onnx_proto::{self, ModelProto, elem_type};
use crate::runtime::OnnxRuntime;
use crate::schema::{Layout, Schema};
use crate::trees::{self, TreeEnsemble};

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
}

fn parse_json<T: serde::de::DeserializeOwned>(key: &str, value: &str) -> Result<T, EngineError> {
    serde_json::from_str(value).map_err(|e| {
        EngineError::InvalidModel(format!("metadata `{key}` = {value:?} cannot be read: {e}"))
    })
}

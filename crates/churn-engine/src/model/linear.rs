//! The linear margin of a `LinearClassifier`: the positive class's log-odds as
//! `intercept + Σ weight · encoded value`, each encoded column traced back to its raw
//! feature, trusted only if it reproduces ONNX Runtime's probability.

use ort::session::{OutputSelector, RunOptions};

use super::sessions::inference_error;
use super::smoke::{sigmoid, synthetic_customer};
use super::{LinearMargin, Model};
use crate::batch::{self, Customer, RowError};
use crate::error::EngineError;
use crate::graph::LinearFacts;
use crate::onnx_proto::elem_type;
use crate::schema::Layout;

impl Model {
    /// The positive class's margin from the classifier's coefficients, kept only if it
    /// reproduces ONNX Runtime's probability on the smoke-test row.
    pub(super) fn linear_margin(&self, facts: LinearFacts) -> Result<LinearMargin, String> {
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
}

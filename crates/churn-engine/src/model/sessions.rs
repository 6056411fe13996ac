//! The session pool and its runs: sessions are built once per model (one intra-op
//! thread each by default) and pooled because `Session::run` takes `&mut self`; a run
//! takes a free session or waits for one, feeds the encoded columns as views without
//! copies, and reads one float or double output.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

use super::{Model, PooledSession};
use crate::batch::{Column, Encoded};
use crate::error::EngineError;
use crate::onnx_proto::elem_type;
use crate::runtime::OnnxRuntime;
use crate::schema::Layout;

impl Model {
    /// Runs the encoded rows; returns the probability width and the row-major values.
    pub(super) fn run(&self, encoded: &Encoded) -> Result<(usize, Vec<f64>), EngineError> {
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
    pub(super) fn run_output(
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

pub(super) fn build_session(
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

pub(super) fn inference_error(error: ort::Error) -> EngineError {
    EngineError::Inference(error.to_string())
}

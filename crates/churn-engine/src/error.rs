//! The engine's error type. `ort` errors are converted to text at the boundary because
//! its builder errors carry the builder and are neither `Send` nor `Sync`.

use std::path::PathBuf;

/// Everything that can go wrong in the engine outside one row's validation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(
        "onnx runtime {version} was not found (looked in: {searched}); run `scripts/setup-onnxruntime.sh` from the repository, \
         or point `--onnxruntime` or ORT_DYLIB_PATH at libonnxruntime.so.{version}"
    )]
    RuntimeNotFound {
        version: &'static str,
        searched: String,
    },
    #[error(
        "cannot load onnx runtime from {path}: {reason}; run `scripts/setup-onnxruntime.sh` from the repository, \
         or point `--onnxruntime` or ORT_DYLIB_PATH at libonnxruntime.so.{version}"
    )]
    RuntimeLoad {
        path: PathBuf,
        reason: String,
        version: &'static str,
    },
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

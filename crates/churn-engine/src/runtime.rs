//! Finds and loads the ONNX Runtime shared library once per process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;

use crate::error::EngineError;

/// The ONNX Runtime release the engine is built against (`ort` 2.0.0-rc.15, API 31).
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";
const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";
/// Where `scripts/setup-onnxruntime.sh` places the library, relative to the workspace.
const SETUP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.onnxruntime");

/// A loaded ONNX Runtime. ONNX Runtime allows one environment per process, so this is
/// a process-wide singleton handed out as `&'static`.
#[derive(Debug)]
pub struct OnnxRuntime {
    pub(crate) environment: Environment,
    library: PathBuf,
}

static LOADED: Mutex<Option<&'static OnnxRuntime>> = Mutex::new(None);

impl OnnxRuntime {
    /// Loads the library from `explicit`, else `ORT_DYLIB_PATH`, else next to the running
    /// executable, else where the setup script put it. Later calls return the first one.
    pub fn load(explicit: Option<&Path>) -> Result<&'static OnnxRuntime, EngineError> {
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(runtime) = *loaded {
            return Ok(runtime);
        }
        let library = locate(explicit)?;
        let load_error = |reason: String| EngineError::RuntimeLoad {
            path: library.clone(),
            reason,
            version: ONNXRUNTIME_VERSION,
        };
        let environment = ort::init_from(&library)
            .map_err(|e| load_error(e.to_string()))?
            .with_name("churnserve")
            .with_telemetry(false)
            .build()
            .map_err(|e| load_error(e.to_string()))?;
        let runtime: &'static OnnxRuntime = Box::leak(Box::new(OnnxRuntime {
            environment,
            library,
        }));
        tracing::info!(library = %runtime.library.display(), "onnx runtime loaded");
        *loaded = Some(runtime);
        Ok(runtime)
    }

    /// The file the library was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

fn locate(explicit: Option<&Path>) -> Result<PathBuf, EngineError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let beside_executable = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(LIBRARY_FILE)));
    let candidates: Vec<PathBuf> = beside_executable
        .into_iter()
        .chain([Path::new(SETUP_DIR).join(LIBRARY_FILE)])
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| EngineError::RuntimeNotFound {
            version: ONNXRUNTIME_VERSION,
            searched: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

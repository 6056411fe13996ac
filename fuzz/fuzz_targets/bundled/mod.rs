//! The bundled models, loaded once per fuzzing process with one session each.

use std::sync::OnceLock;

use churn_engine::{Model, ModelOptions, OnnxRuntime};

const BUNDLED: [&[u8]; 2] = [
    include_bytes!("../../../models/telco-logreg.onnx"),
    include_bytes!("../../../models/telco-lgbm.onnx"),
];

/// The logistic regression, then LightGBM.
pub fn models() -> &'static [Model] {
    static MODELS: OnceLock<Vec<Model>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let runtime = OnnxRuntime::load(None).expect("run scripts/setup-onnxruntime.sh");
        let options = ModelOptions {
            sessions: 1,
            ..ModelOptions::default()
        };
        BUNDLED
            .iter()
            .map(|bytes| Model::load(runtime, bytes, &options).expect("bundled model"))
            .collect()
    })
}

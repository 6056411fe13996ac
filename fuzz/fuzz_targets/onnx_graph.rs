#![no_main]
//! Arbitrary bytes as an ONNX model, through this crate's own parser: protobuf decoding,
//! graph analysis, schema derivation and tree-ensemble extraction (what registration does
//! before ONNX Runtime sees the bytes). Any input gives a model or an error, never a panic.
//! The seed corpus holds every bundled and test model, so mutations stay near real graphs.

use churn_engine::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(inspection) = Model::inspect(bytes, None) {
        assert!(
            !inspection.schema.features.is_empty(),
            "a schema has features"
        );
    }
});

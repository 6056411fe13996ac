#![no_main]
//! Arbitrary protobuf bytes as a KServe `ModelInferRequest` for each bundled model: decoded,
//! turned into customers from typed or raw tensor contents (the raw decoder reads
//! little-endian numbers and length-prefixed strings), then scored. Any input gives
//! customers with one outcome each, or a client error, never a panic.

use churn_api::inference::ModelInferRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

mod bundled;
use bundled::models;

fuzz_target!(|bytes: &[u8]| {
    let Some((&selector, message)) = bytes.split_first() else {
        return;
    };
    let Ok(request) = ModelInferRequest::decode(message) else {
        return;
    };
    let model = &models()[usize::from(selector % 2)];
    if let Ok(customers) = churnserve::kserve_customers(model.schema(), &request) {
        if customers.len() <= 256 {
            let outcomes = model.predict(&customers).expect("the engine runs");
            assert_eq!(outcomes.len(), customers.len());
        }
    }
});

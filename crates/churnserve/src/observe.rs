//! Observation: metrics, drift, request ids and spans, logs and traces. It is told what
//! happened (and handed what it needs, such as drift references and the serving state at
//! scrape time); it never calls into the domain or the adapters.

pub mod drift;
pub mod metrics;
pub mod request_id;
pub mod telemetry;

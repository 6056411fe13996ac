//! Serving: the catalog (load, resolve, swap), the served versions, the one scoring path
//! with its micro-batcher and engine calls, streams, and seeding the bundled models.

pub(crate) mod batching;
pub mod catalog;
pub(crate) mod predict;
pub mod scoring;
pub mod seed;
pub mod served;
pub mod splits;
pub mod streams;

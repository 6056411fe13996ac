//! The adapters: tonic services and the HTTP port. They know the wire types and the
//! transport, convert requests into domain values and answers back, and map every domain
//! error to a status in one place (`status.rs`); who may call what is one layer and one
//! table (`access.rs`). They call the domain, never the engine, the registry or `observe`.

pub mod access;
pub mod admission;
mod arrow;
pub mod console;
mod from_proto;
pub mod http;
pub mod kserve;
pub mod monitoring;
pub mod registry;
pub mod scoring;
mod status;
mod to_proto;

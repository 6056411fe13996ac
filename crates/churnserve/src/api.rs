//! The adapters: tonic services and the HTTP port. They know the wire types and the
//! transport, check tokens, convert requests into domain values and answers back, and map
//! every domain error to a status in one place (`status.rs`); they call the domain, never
//! the engine or the registry.

pub mod admission;
pub mod auth;
pub mod console;
mod from_proto;
pub mod http;
pub mod kserve;
pub mod monitoring;
pub mod registry;
pub mod scoring;
mod status;
mod to_proto;

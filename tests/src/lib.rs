//! Helpers for the integration tests: a real churnserve on an ephemeral port with a
//! temporary data directory, clients for it, and the fixtures models/train.py writes.

mod checks;
mod fixtures;
mod http;
mod pki;
mod server;
mod wire;

pub use checks::*;
pub use fixtures::*;
pub use http::*;
pub use pki::*;
pub use server::*;
pub use wire::*;

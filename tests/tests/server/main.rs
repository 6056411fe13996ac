//! The integration tests of the whole service, one module per area, in one binary: one
//! link instead of one per file. Each test starts the real server on an ephemeral port
//! with a temporary registry and talks to it through the generated client.

mod adversarial;
mod arrow;
mod compression;
mod console;
mod drift;
mod engine;
mod evaluate;
mod experiments;
mod explain;
mod explain_server;
mod http_port;
mod kserve;
mod kserve_rest;
mod limits;
mod metrics;
mod observability;
mod outcomes;
mod profit;
mod registry;
mod scoring;
mod shadow;
mod tls;

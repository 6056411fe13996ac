//! The `churnserve` binary as a process, in one test binary: its command line (`cli`),
//! SIGKILL in the middle of writes (`crash`), replicas on one registry (`replicas`), a
//! traffic split across replicas (`experiments`), drift counted across replicas (`drift`), the
//! OTLP exporter (`otlp`, with the `otlp` feature) and the soak (`soak`, ignored unless
//! asked for: `scripts/soak.sh`).

mod common;

mod cli;
mod crash;
mod drift;
mod experiments;
#[cfg(feature = "otlp")]
mod otlp;
mod replicas;
mod soak;

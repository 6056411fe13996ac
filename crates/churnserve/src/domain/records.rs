//! The registry's records, each concern in its own module with its own handle on the
//! registry: versions (listings, audit, evaluations) and datasets.

pub mod datasets;
pub mod versions;

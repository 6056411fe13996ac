//! Monitoring: the prediction log, outcomes and realized performance, and what the domain
//! hands to observation (the serving state), and drift counted on every replica.

pub mod drift;
pub mod experiments;
pub mod export;
pub mod observation;
pub mod performance;
pub mod prediction_log;

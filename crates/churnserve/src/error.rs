//! Why the server could not start, or stopped with an error.

use churn_engine::EngineError;
use churn_registry::{Location, RegistryError};

use crate::config::ConfigError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] EngineError),
    #[error("cannot open the registry {location}: {cause}")]
    Registry {
        location: Location,
        cause: RegistryError,
    },
    #[error("cannot prepare the models: {0}")]
    Models(String),
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("the transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("start-up task failed: {0}")]
    Startup(String),
}

//! The one place where domain errors become gRPC statuses. Every match is exhaustive so
//! a new error variant cannot reach a client without a deliberate code.

use churn_engine::EngineError;
use tonic::{Code, Status};

use crate::catalog::CatalogError;
use crate::error::ServiceError;

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        let code = match &error {
            ServiceError::Catalog(catalog) => match catalog {
                CatalogError::UnknownModel(_)
                | CatalogError::UnknownVersion { .. }
                | CatalogError::UnknownAlias { .. } => Code::NotFound,
                CatalogError::Load { .. } => Code::Internal,
            },
            ServiceError::Engine(engine) => match engine {
                EngineError::InvalidModel(_) => Code::FailedPrecondition,
                EngineError::RuntimeNotFound { .. }
                | EngineError::RuntimeLoad { .. }
                | EngineError::Inference(_) => Code::Internal,
            },
            ServiceError::InvalidRequest(_) | ServiceError::InvalidCustomer { .. } => {
                Code::InvalidArgument
            }
            ServiceError::BatchTooLarge { .. } => Code::ResourceExhausted,
            ServiceError::NotImplemented(_) => Code::Unimplemented,
            ServiceError::TaskFailed(_) => Code::Internal,
        };
        if code == Code::Internal {
            tracing::error!(error = %error, "internal error");
            return Status::internal("internal error; the server log has the details");
        }
        Status::new(code, error.to_string())
    }
}

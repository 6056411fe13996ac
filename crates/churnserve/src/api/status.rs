//! The one place where domain errors become gRPC statuses, and gRPC codes HTTP statuses
//! for the HTTP port. Every match is exhaustive so a new error variant cannot reach a
//! client without a deliberate code.

use crate::domain::EngineError;
use crate::domain::ExplainError;
use crate::domain::MetricsError;
use axum::http::StatusCode;
use tonic::{Code, Status};

use crate::domain::RegistryError;
use crate::domain::error::ServiceError;

/// The HTTP status of a gRPC code, for the REST API and the console.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        let code = match &error {
            ServiceError::Registry(registry) => match registry {
                RegistryError::ModelNotFound(_)
                | RegistryError::VersionNotFound { .. }
                | RegistryError::AliasNotFound { .. }
                | RegistryError::DatasetNotFound(_)
                | RegistryError::ShadowNotFound { .. }
                | RegistryError::TrafficSplitNotFound { .. } => Code::NotFound,
                RegistryError::DatasetExists(_) => Code::AlreadyExists,
                RegistryError::Invalid(_) => Code::InvalidArgument,
                RegistryError::Conflict(_)
                | RegistryError::Corrupt { .. }
                | RegistryError::NotWritable(_) => Code::FailedPrecondition,
                RegistryError::TooLarge { .. } | RegistryError::StorageFull(_) => {
                    Code::ResourceExhausted
                }
                RegistryError::Unavailable(_)
                | RegistryError::ArtifactStore(_)
                | RegistryError::Connect(_) => Code::Unavailable,
                RegistryError::Storage(_) => Code::Internal,
            },
            ServiceError::Engine(engine) => engine_code(engine),
            ServiceError::Explain(explain) => match explain {
                ExplainError::InvalidCustomer(_) | ExplainError::InvalidRow { .. } => {
                    Code::InvalidArgument
                }
                ExplainError::InvalidBackground { .. }
                | ExplainError::EmptyBackground
                | ExplainError::Unavailable(_) => Code::FailedPrecondition,
                ExplainError::Engine(engine) => engine_code(engine),
            },
            ServiceError::NoReferenceDataset { .. }
            | ServiceError::UnusableReference { .. }
            | ServiceError::DatasetMismatch { .. }
            | ServiceError::GateFailed(_) => Code::FailedPrecondition,
            ServiceError::Metrics(metrics) => match metrics {
                MetricsError::OneClass { .. } | MetricsError::InvalidProfit { .. } => {
                    Code::InvalidArgument
                }
                MetricsError::Empty | MetricsError::Unreachable(_) => Code::FailedPrecondition,
                MetricsError::NotProbability { .. } => Code::Internal,
            },
            ServiceError::InvalidUpload(_)
            | ServiceError::InvalidRequest(_)
            | ServiceError::InvalidCustomer { .. } => Code::InvalidArgument,
            ServiceError::CannotServe { .. } => Code::FailedPrecondition,
            ServiceError::BatchTooLarge { .. } => Code::ResourceExhausted,
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::TaskFailed(_) => Code::Internal,
            ServiceError::ShuttingDown { .. } => Code::Unavailable,
        };
        if code == Code::Internal {
            tracing::error!(error = %error, "internal error");
            return Status::internal("internal error; the server log has the details");
        }
        Status::new(code, error.to_string())
    }
}

fn engine_code(error: &EngineError) -> Code {
    match error {
        EngineError::InvalidModel(_) => Code::FailedPrecondition,
        EngineError::RuntimeNotFound { .. }
        | EngineError::RuntimeLoad { .. }
        | EngineError::Inference(_) => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shared_by_a_micro_batch_keeps_its_code_for_every_caller() {
        let failures = [
            ServiceError::Engine(EngineError::InvalidModel("no such input".to_owned())),
            ServiceError::Engine(EngineError::Inference("bad shape".to_owned())),
            ServiceError::TaskFailed("panicked".to_owned()),
        ];
        for failure in failures {
            let shared = failure.for_each_caller();
            assert_eq!(Status::from(shared).code(), Status::from(failure).code(),);
        }
        let shared =
            ServiceError::Engine(EngineError::InvalidModel("x".to_owned())).for_each_caller();
        assert_eq!(Status::from(shared).code(), Code::FailedPrecondition);
    }
}

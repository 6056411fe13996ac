//! The KServe V2 / Open Inference Protocol adapter: model name = registry name (empty:
//! the default model), version = registry version number as text (empty: the
//! `production` alias). Inference goes through the same validation and engine as
//! `ScoreBatch`; the repository calls map onto the loaded-version cache.

use std::sync::Arc;

use churn_api::inference as pb;
use churn_api::inference::grpc_inference_service_server::GrpcInferenceService;
use tonic::{Request, Response, Status};

use crate::domain::error::ServiceError;
use crate::domain::records::versions::Versions;
use crate::domain::serving::catalog::Catalog;
use crate::domain::serving::scoring::Scoring;
use crate::domain::serving::served::ModelSelector;

pub mod rest;
mod tensors;

pub use tensors::customers;

#[derive(Debug, Clone)]
pub struct KServeApi {
    pub catalog: Arc<Catalog>,
    pub versions: Versions,
    pub scoring: Arc<Scoring>,
}

fn selector(name: &str, version: &str) -> Result<ModelSelector, ServiceError> {
    match version {
        "" => Ok(ModelSelector::by_alias(name, "")),
        text => Ok(ModelSelector::by_number(
            name,
            text.parse().map_err(|_| {
                ServiceError::InvalidRequest(format!(
                    "model version {text:?}: expected a registry version number, or empty for `production`"
                ))
            })?,
        )),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for KServeApi {
    async fn server_live(
        &self,
        _request: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        let ready = self.catalog.resolve(&selector("", "")?).await.is_ok();
        Ok(Response::new(pb::ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = self
            .catalog
            .resolve(&selector(&request.name, &request.version)?)
            .await
            .is_ok();
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "churnserve".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: vec!["model_repository".to_owned()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let selector = selector(&request.name, &request.version)?;
        let (served, versions) = self.versions.resolve_listed(&selector).await?;
        Ok(Response::new(tensors::model_metadata(&served, &versions)))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let request = request.into_inner();
        tensors::check_outputs(&request)?;
        let selector = selector(&request.model_name, &request.model_version)?;
        let inferred = self
            .scoring
            .infer(&selector, |schema| tensors::customers(schema, &request))
            .await?;
        Ok(Response::new(tensors::infer_response(request, inferred)))
    }

    async fn repository_index(
        &self,
        request: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        let only_ready = request.into_inner().ready;
        let versions = self.versions.version_index().await?;
        Ok(Response::new(tensors::repository_index(
            versions, only_ready,
        )))
    }

    async fn repository_model_load(
        &self,
        request: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        let request = request.into_inner();
        self.catalog
            .resolve(&selector(&request.model_name, "")?)
            .await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        let request = request.into_inner();
        self.versions
            .list_versions(&request.model_name, true)
            .await?;
        let dropped = self.catalog.unload(&request.model_name);
        tracing::info!(model = %request.model_name, ?dropped, "unloaded on request; aliased versions stay loaded");
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}

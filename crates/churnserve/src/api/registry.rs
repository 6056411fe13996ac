//! The gRPC adapter of churn.v1.RegistryService: check the token, convert, one call to
//! the catalog (or the evaluations, for a gated alias move), convert back.

use std::sync::Arc;

use churn_api::v1 as pb;
use churn_api::v1::registry_service_server::RegistryService;
use tonic::{Request, Response, Status, Streaming};

use crate::api::access;
use crate::api::scoring::stream_read_error;
use crate::api::{from_proto, to_proto};
use crate::domain::analysis::evaluating::Evaluating;
use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::records::datasets::Datasets;
use crate::domain::records::versions::Versions;
use crate::domain::serving::catalog::Catalog;
use crate::domain::{ArtifactKind, Staged};

#[derive(Debug, Clone)]
pub struct RegistryApi {
    pub shadowing: Arc<Shadowing>,
    pub evaluating: Arc<Evaluating>,
    pub catalog: Arc<Catalog>,
    pub versions: Versions,
    pub datasets: Datasets,
    pub max_model_bytes: u64,
    pub max_dataset_bytes: u64,
}

/// The two halves of an upload stream: its leading metadata and its byte chunks.
enum UploadPart<M> {
    Metadata(M),
    Chunk(Vec<u8>),
    Empty,
}

/// A message of an upload stream.
trait UploadMessage {
    type Metadata;
    fn into_part(self) -> UploadPart<Self::Metadata>;
}

impl UploadMessage for pb::RegisterModelRequest {
    type Metadata = pb::RegisterModelMetadata;
    fn into_part(self) -> UploadPart<Self::Metadata> {
        match self.part {
            Some(pb::register_model_request::Part::Metadata(metadata)) => {
                UploadPart::Metadata(metadata)
            }
            Some(pb::register_model_request::Part::OnnxChunk(bytes)) => UploadPart::Chunk(bytes),
            None => UploadPart::Empty,
        }
    }
}

impl UploadMessage for pb::UploadDatasetRequest {
    type Metadata = pb::DatasetMetadata;
    fn into_part(self) -> UploadPart<Self::Metadata> {
        match self.part {
            Some(pb::upload_dataset_request::Part::Metadata(metadata)) => {
                UploadPart::Metadata(metadata)
            }
            Some(pb::upload_dataset_request::Part::CsvChunk(bytes)) => UploadPart::Chunk(bytes),
            None => UploadPart::Empty,
        }
    }
}

/// Reads an upload stream into a staged file: metadata first, then chunks, within `limit`.
async fn receive_upload<T: UploadMessage>(
    datasets: &Datasets,
    mut stream: Streaming<T>,
    kind: ArtifactKind,
    limit: u64,
) -> Result<(T::Metadata, Staged), Status> {
    let first = stream.message().await.map_err(stream_read_error)?;
    let Some(UploadPart::Metadata(metadata)) = first.map(T::into_part) else {
        return Err(ServiceError::InvalidRequest(
            "the first message must carry the metadata".to_owned(),
        )
        .into());
    };
    let mut staging = datasets.stage(kind, limit).await?;
    while let Some(message) = stream.message().await.map_err(stream_read_error)? {
        match message.into_part() {
            UploadPart::Chunk(bytes) => staging.write(&bytes).await.map_err(ServiceError::from)?,
            UploadPart::Metadata(_) => {
                return Err(ServiceError::InvalidRequest(
                    "metadata may only be sent in the first message".to_owned(),
                )
                .into());
            }
            UploadPart::Empty => {}
        }
    }
    let staged = staging.finish().await.map_err(ServiceError::from)?;
    if staged.size() == 0 {
        return Err(ServiceError::InvalidRequest(
            "the upload has no content after its metadata".to_owned(),
        )
        .into());
    }
    Ok((metadata, staged))
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn register_model(
        &self,
        request: Request<Streaming<pb::RegisterModelRequest>>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let actor = access::actor(request.metadata());
        let (metadata, staged) = receive_upload(
            &self.datasets,
            request.into_inner(),
            ArtifactKind::Model,
            self.max_model_bytes,
        )
        .await?;
        let record = self
            .catalog
            .register(from_proto::registration(metadata)?, staged, &actor)
            .await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn get_model_version(
        &self,
        request: Request<pb::GetModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let selector = from_proto::model_selector(request.into_inner().model)?;
        let record = self.versions.version_record(&selector).await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let models = self.versions.list_models().await?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_iter().map(to_proto::model_summary).collect(),
        }))
    }

    async fn list_model_versions(
        &self,
        request: Request<pb::ListModelVersionsRequest>,
    ) -> Result<Response<pb::ListModelVersionsResponse>, Status> {
        let request = request.into_inner();
        let versions = self
            .versions
            .list_versions(&request.name, request.include_archived)
            .await?;
        Ok(Response::new(pb::ListModelVersionsResponse {
            versions: versions.into_iter().map(to_proto::model_version).collect(),
        }))
    }

    async fn set_alias(
        &self,
        request: Request<pb::SetAliasRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let gate = from_proto::gate(request.gate)?;
        let record = self
            .evaluating
            .promote(&request.name, &request.alias, request.version, gate, &actor)
            .await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn set_threshold(
        &self,
        request: Request<pb::SetThresholdRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let record = self
            .catalog
            .set_threshold(&request.name, request.version, request.threshold, &actor)
            .await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn set_traffic_split(
        &self,
        request: Request<pb::SetTrafficSplitRequest>,
    ) -> Result<Response<pb::TrafficSplit>, Status> {
        let actor = access::actor(request.metadata());
        let split = from_proto::traffic_split(request.into_inner());
        let split = self.catalog.set_traffic_split(split, &actor).await?;
        Ok(Response::new(to_proto::traffic_split(&split)))
    }

    async fn get_traffic_split(
        &self,
        request: Request<pb::GetTrafficSplitRequest>,
    ) -> Result<Response<pb::TrafficSplit>, Status> {
        let request = request.into_inner();
        let split = self
            .catalog
            .traffic_split(&request.name, &request.alias)
            .await?;
        Ok(Response::new(to_proto::traffic_split(&split)))
    }

    async fn set_shadow(
        &self,
        request: Request<pb::SetShadowRequest>,
    ) -> Result<Response<pb::Shadow>, Status> {
        let actor = access::actor(request.metadata());
        let config = from_proto::shadow(request.into_inner());
        let config = self.shadowing.set(config, &actor).await?;
        Ok(Response::new(to_proto::shadow(&config)))
    }

    async fn delete_shadow(
        &self,
        request: Request<pb::DeleteShadowRequest>,
    ) -> Result<Response<pb::DeleteShadowResponse>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        self.shadowing
            .delete(&request.name, &request.alias, &actor)
            .await?;
        Ok(Response::new(pb::DeleteShadowResponse {}))
    }

    async fn delete_alias(
        &self,
        request: Request<pb::DeleteAliasRequest>,
    ) -> Result<Response<pb::DeleteAliasResponse>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        self.catalog
            .delete_alias(&request.name, &request.alias, &actor)
            .await?;
        Ok(Response::new(pb::DeleteAliasResponse {}))
    }

    async fn archive_model_version(
        &self,
        request: Request<pb::ArchiveModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let record = self
            .versions
            .archive(&request.name, request.version, &actor)
            .await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn set_reference_dataset(
        &self,
        request: Request<pb::SetReferenceDatasetRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let record = self
            .catalog
            .set_reference_dataset(&request.name, request.version, &request.dataset, &actor)
            .await?;
        Ok(Response::new(to_proto::model_version(record)))
    }

    async fn upload_dataset(
        &self,
        request: Request<Streaming<pb::UploadDatasetRequest>>,
    ) -> Result<Response<pb::Dataset>, Status> {
        let actor = access::actor(request.metadata());
        let (metadata, staged) = receive_upload(
            &self.datasets,
            request.into_inner(),
            ArtifactKind::Dataset,
            self.max_dataset_bytes,
        )
        .await?;
        let record = self
            .datasets
            .upload_dataset(from_proto::dataset(metadata), staged, &actor)
            .await?;
        Ok(Response::new(to_proto::dataset(record)))
    }

    async fn list_datasets(
        &self,
        _request: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let datasets = self.datasets.list_datasets().await?;
        Ok(Response::new(pb::ListDatasetsResponse {
            datasets: datasets.into_iter().map(to_proto::dataset).collect(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let request = request.into_inner();
        let before_id =
            (request.before_id > 0).then(|| request.before_id.min(i64::MAX as u64) as i64);
        let page = self
            .versions
            .audit_page(&request.name, before_id, request.limit)
            .await?;
        Ok(Response::new(to_proto::audit_events(page)))
    }

    async fn list_evaluations(
        &self,
        request: Request<pb::ListEvaluationsRequest>,
    ) -> Result<Response<pb::ListEvaluationsResponse>, Status> {
        let request = request.into_inner();
        let version = (request.version != 0).then_some(request.version);
        let evaluations = self.evaluating.evaluations(&request.name, version).await?;
        Ok(Response::new(pb::ListEvaluationsResponse {
            evaluations: evaluations.into_iter().map(to_proto::evaluation).collect(),
        }))
    }
}

//! The KServe V2 / Open Inference Protocol adapter: model name = registry name (empty:
//! the default model), version = registry version number as text (empty: the
//! `production` alias). Inference goes through the same validation and engine as
//! `ScoreBatch`; the repository calls map onto the loaded-version cache.

use std::sync::Arc;

use churn_api::inference as pb;
use churn_api::inference::grpc_inference_service_server::GrpcInferenceService;
use churn_engine::CustomerBatch;
use churn_registry::VersionRef;
use tonic::{Request, Response, Status};

use crate::auth::{Access, Auth};
use crate::error::ServiceError;
use crate::kserve_tensors::{self, PROBABILITY_OUTPUT};
use crate::scoring::Scoring;
use crate::store::{ModelSelector, ModelStore, PRODUCTION_ALIAS};

#[derive(Debug, Clone)]
pub struct KServeApi {
    pub store: Arc<ModelStore>,
    pub scoring: Arc<Scoring>,
    pub auth: Auth,
}

fn selector(name: &str, version: &str) -> Result<ModelSelector, ServiceError> {
    let version = match version {
        "" => VersionRef::Alias(PRODUCTION_ALIAS.to_owned()),
        text => VersionRef::Number(text.parse().map_err(|_| {
            ServiceError::InvalidRequest(format!(
                "model version {text:?}: expected a registry version number, or empty for `production`"
            ))
        })?),
    };
    Ok(ModelSelector {
        name: name.to_owned(),
        version,
    })
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
        request: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let ready = self.store.resolve(&selector("", "")?).await.is_ok();
        Ok(Response::new(pb::ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let ready = self
            .store
            .resolve(&selector(&request.name, &request.version)?)
            .await
            .is_ok();
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
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
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let served = self
            .store
            .resolve(&selector(&request.name, &request.version)?)
            .await?;
        let versions = self
            .store
            .registry()
            .list_versions(&served.name, false)
            .await
            .map_err(ServiceError::from)?
            .iter()
            .map(|v| v.version.to_string())
            .collect();
        let schema = served.model.schema();
        let tensor = |name: &str, datatype: &str, shape: Vec<i64>| {
            pb::model_metadata_response::TensorMetadata {
                name: name.to_owned(),
                datatype: datatype.to_owned(),
                shape,
            }
        };
        let inputs = match schema.dense_input() {
            Some(name) => {
                let datatype = schema
                    .features
                    .first()
                    .map_or("FP32", |f| kserve_tensors::datatype(f.tensor_type));
                vec![tensor(
                    name,
                    datatype,
                    vec![-1, schema.features.len() as i64],
                )]
            }
            None => schema
                .features
                .iter()
                .map(|f| {
                    tensor(
                        &f.name,
                        kserve_tensors::datatype(f.tensor_type),
                        vec![-1, 1],
                    )
                })
                .collect(),
        };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: served.name.clone(),
            versions,
            platform: "onnxruntime_onnx".to_owned(),
            inputs,
            outputs: vec![tensor(PROBABILITY_OUTPUT, "FP64", vec![-1])],
        }))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        if let Some(other) = request
            .outputs
            .iter()
            .find(|o| o.name != PROBABILITY_OUTPUT)
        {
            return Err(ServiceError::InvalidRequest(format!(
                "output `{}` does not exist; the only output is `{PROBABILITY_OUTPUT}`",
                other.name
            ))
            .into());
        }
        let served = self
            .store
            .resolve(&selector(&request.model_name, &request.model_version)?)
            .await?;
        let mut customers = kserve_tensors::customers(served.model.schema(), &request)?;
        // One row is a single-customer call, which the micro-batcher may fuse with others.
        let outcomes = if customers.len() == 1 {
            let customer = customers.remove(0);
            vec![
                self.scoring
                    .score_one(Arc::clone(&served), customer)
                    .await?,
            ]
        } else {
            let rows = CustomerBatch::Rows(customers);
            self.scoring.score_batch(Arc::clone(&served), rows).await?.1
        };
        let probabilities = outcomes
            .into_iter()
            .enumerate()
            .map(|(row, outcome)| {
                outcome
                    .map(|p| p.churn_probability)
                    .map_err(|error| ServiceError::InvalidRequest(format!("row {row}: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let wants_binary = request.outputs.iter().any(|o| {
            matches!(
                o.parameters
                    .get("binary_data")
                    .and_then(|p| p.parameter_choice.as_ref()),
                Some(pb::infer_parameter::ParameterChoice::BoolParam(true))
            )
        });
        let raw = !request.raw_input_contents.is_empty() || wants_binary;
        let (output, bytes) = kserve_tensors::probability_output(&probabilities, raw);
        Ok(Response::new(pb::ModelInferResponse {
            model_name: served.name.clone(),
            model_version: served.version.to_string(),
            id: request.id,
            parameters: Default::default(),
            outputs: vec![output],
            raw_output_contents: bytes.into_iter().collect(),
        }))
    }

    async fn repository_index(
        &self,
        request: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let only_ready = request.into_inner().ready;
        let registry = self.store.registry();
        let mut models = Vec::new();
        for model in registry.list_models().await.map_err(ServiceError::from)? {
            let loaded = self.store.loaded_versions(&model.name);
            for version in registry
                .list_versions(&model.name, false)
                .await
                .map_err(ServiceError::from)?
            {
                let ready = loaded.contains(&version.version);
                if only_ready && !ready {
                    continue;
                }
                models.push(pb::repository_index_response::ModelIndex {
                    name: model.name.clone(),
                    version: version.version.to_string(),
                    state: if ready { "READY" } else { "UNAVAILABLE" }.to_owned(),
                    reason: if ready {
                        String::new()
                    } else {
                        "not loaded; it loads on first use".to_owned()
                    },
                });
            }
        }
        Ok(Response::new(pb::RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        request: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        self.auth.check(request.metadata(), Access::Write)?;
        let request = request.into_inner();
        self.store
            .resolve(&selector(&request.model_name, "")?)
            .await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        self.auth.check(request.metadata(), Access::Write)?;
        let request = request.into_inner();
        self.store
            .registry()
            .list_versions(&request.model_name, true)
            .await
            .map_err(ServiceError::from)?;
        let dropped = self.store.unload(&request.model_name);
        tracing::info!(model = %request.model_name, ?dropped, "unloaded on request; aliased versions stay loaded");
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}

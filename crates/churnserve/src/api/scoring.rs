//! The churn.v1.ScoringService adapter: each handler converts the
//! request, makes one domain call and converts the answer back.

use std::sync::Arc;

use churn_api::v1 as pb;
use churn_api::v1::scoring_service_server::ScoringService;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::api::access;
use crate::api::arrow::{self, ArrowMessage};
use crate::api::{from_proto, to_proto};
use crate::domain::Objective;
use crate::domain::analysis::evaluating::Evaluating;
use crate::domain::analysis::explaining::Explaining;
use crate::domain::analysis::shadows::Shadowing;
use crate::domain::error::ServiceError;
use crate::domain::serving::scoring::Scoring;
use crate::domain::serving::streams;

#[derive(Debug, Clone)]
pub struct ScoringApi {
    /// Turns true when the server starts draining.
    pub draining: tokio::sync::watch::Receiver<bool>,
    pub scoring: Arc<Scoring>,
    pub explaining: Arc<Explaining>,
    pub evaluating: Arc<Evaluating>,
    pub shadowing: Arc<Shadowing>,
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    type ScoreStreamStream = BoxStream<pb::ScoreBatchResponse>;
    type ScoreArrowStream = BoxStream<pb::ScoreArrowResponse>;

    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let request = from_proto::score_request(request.into_inner())?;
        let scored = self.scoring.score(request).await?;
        Ok(Response::new(to_proto::score_response(scored)))
    }

    async fn score_batch(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Response<pb::ScoreBatchResponse>, Status> {
        let request = from_proto::batch_request(request.into_inner())?;
        let scored = self.scoring.score_batch(request).await?;
        Ok(Response::new(to_proto::score_batch_response(scored)))
    }

    async fn score_stream(
        &self,
        request: Request<Streaming<pb::ScoreBatchRequest>>,
    ) -> Result<Response<BoxStream<pb::ScoreBatchResponse>>, Status> {
        let inbound = request
            .into_inner()
            .map(|read| read.map_err(stream_read_error));
        let answers =
            streams::score_stream(Arc::clone(&self.scoring), inbound, self.draining.clone());
        let answers =
            ReceiverStream::new(answers).map(|answer| answer.map(to_proto::score_batch_response));
        Ok(Response::new(Box::pin(answers)))
    }

    async fn score_arrow(
        &self,
        request: Request<Streaming<pb::ScoreArrowRequest>>,
    ) -> Result<Response<BoxStream<pb::ScoreArrowResponse>>, Status> {
        let inbound = request.into_inner().map(|read| {
            read.map_err(stream_read_error)
                .and_then(|message| Ok(ArrowMessage::decode(message)?))
        });
        let answers =
            streams::score_stream(Arc::clone(&self.scoring), inbound, self.draining.clone());
        let answers = ReceiverStream::new(answers)
            .map(|answer| answer.and_then(|batch| Ok(arrow::encode(batch)?)));
        Ok(Response::new(Box::pin(answers)))
    }

    async fn shadow_stats(
        &self,
        request: Request<pb::ShadowStatsRequest>,
    ) -> Result<Response<pb::ShadowStatsResponse>, Status> {
        let request = request.into_inner();
        let (config, stats) = self.shadowing.stats(&request.name, &request.alias)?;
        Ok(Response::new(to_proto::shadow_stats(&config, &stats)))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let customer = from_proto::customer(from_proto::required_customer(request.customer)?);
        let (served, explanation) = self.explaining.explain(&selector, customer).await?;
        Ok(Response::new(to_proto::explain_response(
            &served,
            explanation,
        )))
    }

    async fn feature_importance(
        &self,
        request: Request<pb::FeatureImportanceRequest>,
    ) -> Result<Response<pb::FeatureImportanceResponse>, Status> {
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let method = from_proto::importance_method(request.method)?;
        let data = from_proto::labelled_data(request.dataset, request.rows)?;
        let (served, method, scores) = self.explaining.importance(&selector, method, data).await?;
        Ok(Response::new(to_proto::importance_response(
            &served, method, scores,
        )))
    }

    async fn evaluate(
        &self,
        request: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::EvaluateResponse>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let terms = from_proto::terms(request.threshold, request.profit)?;
        let evaluated = self
            .evaluating
            .evaluate(&selector, data, terms, &actor)
            .await?;
        Ok(Response::new(to_proto::evaluate_response(&evaluated)))
    }

    async fn compare(
        &self,
        request: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareResponse>, Status> {
        let actor = access::actor(request.metadata());
        let request = request.into_inner();
        let champion = from_proto::model_selector(request.champion)?;
        let challenger = from_proto::model_selector(request.challenger)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let terms = from_proto::terms(request.threshold, request.profit)?;
        let compared = self
            .evaluating
            .compare(&champion, &challenger, data, terms, &actor)
            .await?;
        Ok(Response::new(to_proto::compare_response(compared)))
    }

    async fn suggest_threshold(
        &self,
        request: Request<pb::SuggestThresholdRequest>,
    ) -> Result<Response<pb::SuggestThresholdResponse>, Status> {
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let objective = match request.objective.parse() {
            Ok(Objective::MaxProfit(_)) => {
                Objective::MaxProfit(from_proto::campaign(request.profit)?)
            }
            parsed => parsed.map_err(ServiceError::InvalidRequest)?,
        };
        let suggested = self
            .evaluating
            .suggest_threshold(&selector, data, objective)
            .await?;
        Ok(Response::new(to_proto::threshold_response(suggested)))
    }
}

/// tonic reports an oversized stream message as OUT_OF_RANGE; over a configured limit
/// is RESOURCE_EXHAUSTED in our contract.
pub(super) fn stream_read_error(status: Status) -> Status {
    if status.code() == Code::OutOfRange {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}

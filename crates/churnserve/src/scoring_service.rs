//! The gRPC adapters: each handler converts the request, makes one domain call and
//! converts the answer back. RPCs whose issues have not landed answer UNIMPLEMENTED
//! through the generated default stubs.

use std::sync::Arc;

use churn_api::v1 as pb;
use churn_api::v1::scoring_service_server::ScoringService;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::auth::{Access, Auth};
use crate::error::ServiceError;
use crate::scoring::Scoring;
use crate::store::ServedModel;
use crate::{from_proto, to_proto};

/// Responses a stream may buffer before it stops reading requests: the back-pressure
/// that keeps a slow reader from growing the server's memory.
const STREAM_BUFFER: usize = 2;

#[derive(Debug, Clone)]
pub struct ScoringApi {
    pub scoring: Arc<Scoring>,
    pub auth: Auth,
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        refuse_top_reasons(request.top_reasons)?;
        let selector = from_proto::model_selector(request.model)?;
        let customer = request.customer.ok_or_else(|| {
            ServiceError::InvalidRequest("customer: required field is absent".to_owned())
        })?;
        let (served, customer_id, prediction) = self
            .scoring
            .score(&selector, from_proto::customer(customer))
            .await?;
        Ok(Response::new(pb::ScoreResponse {
            prediction: Some(to_proto::prediction(customer_id, &prediction)),
            served_by: Some(to_proto::served_by(&served)),
        }))
    }

    async fn score_batch(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Response<pb::ScoreBatchResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        refuse_top_reasons(request.top_reasons)?;
        let served = self
            .scoring
            .resolve(&from_proto::model_selector(request.model)?)
            .await?;
        let (customers, outcomes) = self
            .scoring
            .score_batch(
                Arc::clone(&served),
                from_proto::customers(request.customers),
            )
            .await?;
        Ok(Response::new(to_proto::score_batch_response(
            &served, 0, customers, outcomes,
        )))
    }

    async fn score_stream(
        &self,
        request: Request<Streaming<pb::ScoreBatchRequest>>,
    ) -> Result<Response<BoxStream<pb::ScoreBatchResponse>>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let scoring = Arc::clone(&self.scoring);
        tokio::spawn(async move {
            let mut pinned = None;
            let mut next_row: u32 = 0;
            while let Some(message) = inbound.next().await {
                let answer = match message {
                    Ok(message) => {
                        score_stream_message(&scoring, &mut pinned, next_row, message).await
                    }
                    Err(status) => Err(stream_read_error(status)),
                };
                let failed = answer.is_err();
                if let Ok(response) = &answer {
                    next_row += response.results.len() as u32;
                }
                if sender.send(answer).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Scores one stream message with the version resolved at the stream's first message.
async fn score_stream_message(
    scoring: &Scoring,
    pinned: &mut Option<Arc<ServedModel>>,
    first_row: u32,
    message: pb::ScoreBatchRequest,
) -> Result<pb::ScoreBatchResponse, Status> {
    refuse_top_reasons(message.top_reasons)?;
    let served = match pinned {
        Some(served) => Arc::clone(served),
        None => {
            let served = scoring
                .resolve(&from_proto::model_selector(message.model)?)
                .await?;
            *pinned = Some(Arc::clone(&served));
            served
        }
    };
    let (customers, outcomes) = scoring
        .score_batch(
            Arc::clone(&served),
            from_proto::customers(message.customers),
        )
        .await?;
    Ok(to_proto::score_batch_response(
        &served, first_row, customers, outcomes,
    ))
}

/// Reasons need the explanations of issue 4; until then asking for them is UNIMPLEMENTED
/// rather than silently answered without them.
fn refuse_top_reasons(top_reasons: u32) -> Result<(), ServiceError> {
    if top_reasons > 0 {
        return Err(ServiceError::NotImplemented("top_reasons (explanations)"));
    }
    Ok(())
}

/// tonic reports an oversized stream message as OUT_OF_RANGE; over a configured limit
/// is RESOURCE_EXHAUSTED in our contract.
pub fn stream_read_error(status: Status) -> Status {
    if status.code() == Code::OutOfRange {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}

//! The churn.v1 scoring adapters: each handler converts the request, makes the domain
//! calls and converts the answer back.

use std::collections::VecDeque;
use std::sync::Arc;

use churn_api::v1 as pb;
use churn_api::v1::scoring_service_server::ScoringService;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Code, Request, Response, Status, Streaming};

use churn_engine::CustomerBatch;
use churn_explain::Background;
use churn_registry::{RegistryError, ShadowConfig};

use crate::auth::{self, Access, Auth};
use crate::error::ServiceError;
use crate::evaluating::Evaluating;
use crate::explaining::Explaining;
use crate::scoring::Scoring;
use crate::shadow::Shadowing;
use crate::store::{PRODUCTION_ALIAS, ServedModel};
use crate::{from_proto, to_proto};

/// Responses a stream may buffer before it stops reading requests: the back-pressure
/// that keeps a slow reader from growing the server's memory.
const STREAM_BUFFER: usize = 2;
/// Messages of one stream scored at once: the next is decoded and validated while the
/// previous one runs in ONNX Runtime; answers still leave in order.
const STREAM_PIPELINE: usize = 2;

#[derive(Debug, Clone)]
pub struct ScoringApi {
    /// Turns true when the server starts draining.
    pub draining: tokio::sync::watch::Receiver<bool>,
    pub scoring: Arc<Scoring>,
    pub explaining: Arc<Explaining>,
    pub evaluating: Arc<Evaluating>,
    pub shadowing: Arc<Shadowing>,
    pub auth: Auth,
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    type ScoreStreamStream = BoxStream<pb::ScoreBatchResponse>;

    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let customer = request.customer.ok_or_else(|| {
            ServiceError::InvalidRequest("customer: required field is absent".to_owned())
        })?;
        let served = self.scoring.resolve(&selector).await?;
        let reasons = self.reasons(&served, request.top_reasons).await?;
        let customer = from_proto::customer(customer);
        let explained = reasons.as_ref().map(|_| customer.clone());
        let shadow = self
            .shadowing
            .shadow_for(&selector, &served)
            .map(|config| (config, customer.clone()));
        let (customer_id, prediction) = self.scoring.score(Arc::clone(&served), customer).await?;
        if let Some((config, customer)) = shadow {
            self.shadowing.offer(
                config,
                served.version,
                CustomerBatch::Rows(vec![customer]),
                vec![Some((prediction.churn_probability, prediction.will_churn))],
            );
        }
        let mut prediction = to_proto::prediction(customer_id, &prediction);
        if let (Some(reasons), Some(customer)) = (reasons, explained) {
            let top = self
                .explaining
                .top_reasons(&served, reasons.background, vec![customer], reasons.k)
                .await?;
            prediction.top_reasons = top.iter().flatten().map(to_proto::reason).collect();
        }
        Ok(Response::new(pb::ScoreResponse {
            prediction: Some(prediction),
            served_by: Some(to_proto::served_by(&served)),
        }))
    }

    async fn score_batch(
        &self,
        request: Request<pb::ScoreBatchRequest>,
    ) -> Result<Response<pb::ScoreBatchResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let served = self.scoring.resolve(&selector).await?;
        let customers = from_proto::customer_batch(request.customers, request.columns)?;
        let reasons = self.reasons(&served, request.top_reasons).await?;
        let shadow = self.shadowing.shadow_for(&selector, &served);
        let response = self
            .score_batch_with_reasons(&served, reasons, 0, customers, shadow)
            .await?;
        Ok(Response::new(response))
    }

    async fn score_stream(
        &self,
        request: Request<Streaming<pb::ScoreBatchRequest>>,
    ) -> Result<Response<BoxStream<pb::ScoreBatchResponse>>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let api = self.clone();
        let mut draining = self.draining.clone();
        tokio::spawn(async move {
            let mut pinned: Option<Arc<ServedModel>> = None;
            // Rows dispatched, and rows answered: the point a client resumes from.
            let mut next_row: Option<u64> = None;
            let mut answered: Option<u64> = None;
            let mut in_flight: VecDeque<JoinHandle<Result<pb::ScoreBatchResponse, Status>>> =
                VecDeque::new();
            let mut inbound_done = false;
            while !(inbound_done && in_flight.is_empty()) {
                tokio::select! {
                    biased;
                    () = drained(&mut draining) => {
                        let resume = answered.or(next_row).unwrap_or_default();
                        let _ = sender
                            .send(Err(Status::unavailable(format!(
                                "the server is shutting down; rows before {resume} were answered: resume from row {resume} on another server"
                            ))))
                            .await;
                        break;
                    }
                    joined = async { in_flight.front_mut().expect("a message in flight").await }, if !in_flight.is_empty() => {
                        in_flight.pop_front();
                        let answer = joined.unwrap_or_else(|e: tokio::task::JoinError| {
                            Err(ServiceError::TaskFailed(e.to_string()).into())
                        });
                        let failed = answer.is_err();
                        if let (Ok(response), Some(answered)) = (&answer, answered.as_mut()) {
                            *answered += response.results.len() as u64;
                        }
                        if sender.send(answer).await.is_err() || failed {
                            break;
                        }
                    }
                    message = inbound.next(), if !inbound_done && in_flight.len() < STREAM_PIPELINE => {
                        let message = match message {
                            None => {
                                inbound_done = true;
                                continue;
                            }
                            Some(Ok(message)) => message,
                            Some(Err(status)) => {
                                let _ = sender.send(Err(stream_read_error(status))).await;
                                break;
                            }
                        };
                        let first_row = *next_row.get_or_insert(u64::from(message.first_row));
                        answered.get_or_insert(first_row);
                        let served = match &pinned {
                            Some(served) => Arc::clone(served),
                            None => match api.pin(&message).await {
                                Ok(served) => pinned.insert(served).clone(),
                                Err(status) => {
                                    let _ = sender.send(Err(status)).await;
                                    break;
                                }
                            },
                        };
                        next_row = Some(first_row + message_rows(&message));
                        let api = api.clone();
                        in_flight.push_back(tokio::spawn(async move {
                            api.score_stream_message(served, first_row, message).await
                        }));
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn shadow_stats(
        &self,
        request: Request<pb::ShadowStatsRequest>,
    ) -> Result<Response<pb::ShadowStatsResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let name = if request.name.is_empty() {
            self.scoring.default_model().to_owned()
        } else {
            request.name
        };
        let alias = if request.alias.is_empty() {
            PRODUCTION_ALIAS.to_owned()
        } else {
            request.alias
        };
        let (config, stats) = self.shadowing.stats(&name, &alias).ok_or_else(|| {
            ServiceError::from(RegistryError::ShadowNotFound {
                name: name.clone(),
                alias: alias.clone(),
            })
        })?;
        Ok(Response::new(to_proto::shadow_stats(&config, &stats)))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let customer = request.customer.ok_or_else(|| {
            ServiceError::InvalidRequest("customer: required field is absent".to_owned())
        })?;
        let (served, explanation) = self
            .explaining
            .explain(&selector, from_proto::customer(customer))
            .await?;
        Ok(Response::new(to_proto::explain_response(
            &served,
            explanation,
        )))
    }

    async fn feature_importance(
        &self,
        request: Request<pb::FeatureImportanceRequest>,
    ) -> Result<Response<pb::FeatureImportanceResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
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
        self.auth.check(request.metadata(), Access::Read)?;
        let actor = auth::actor(request.metadata());
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let threshold = from_proto::threshold(request.threshold)?;
        let evaluated = self
            .evaluating
            .evaluate(&selector, data, threshold, &actor)
            .await?;
        Ok(Response::new(to_proto::evaluate_response(&evaluated)))
    }

    async fn compare(
        &self,
        request: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let actor = auth::actor(request.metadata());
        let request = request.into_inner();
        let champion = from_proto::model_selector(request.champion)?;
        let challenger = from_proto::model_selector(request.challenger)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let threshold = from_proto::threshold(request.threshold)?;
        let (champion, challenger, comparison, paired_rows) = self
            .evaluating
            .compare(&champion, &challenger, data, threshold, &actor)
            .await?;
        Ok(Response::new(pb::CompareResponse {
            champion: Some(to_proto::evaluate_response(&champion)),
            challenger: Some(to_proto::evaluate_response(&challenger)),
            roc_auc_difference: Some(to_proto::auc_difference(&comparison)),
            paired_rows,
        }))
    }

    async fn suggest_threshold(
        &self,
        request: Request<pb::SuggestThresholdRequest>,
    ) -> Result<Response<pb::SuggestThresholdResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = request.into_inner();
        let selector = from_proto::model_selector(request.model)?;
        let data = from_proto::required_labelled_data(request.dataset, request.rows)?;
        let objective = request
            .objective
            .parse()
            .map_err(ServiceError::InvalidRequest)?;
        let (served, choice, rows) = self
            .evaluating
            .suggest_threshold(&selector, data, objective)
            .await?;
        Ok(Response::new(pb::SuggestThresholdResponse {
            served_by: Some(to_proto::served_by(&served)),
            threshold: choice.threshold,
            precision: choice.precision,
            recall: choice.recall,
            f1: choice.f1,
            flagged: choice.flagged,
            rows,
        }))
    }
}

/// What a scoring request needs to attach reasons: the background and how many.
#[derive(Debug, Clone)]
struct ReasonRequest {
    background: Arc<Background>,
    k: usize,
}

impl ScoringApi {
    /// The background when reasons are asked for; fails before anything is scored when
    /// the version cannot be explained.
    async fn reasons(
        &self,
        served: &Arc<ServedModel>,
        top_reasons: u32,
    ) -> Result<Option<ReasonRequest>, ServiceError> {
        if top_reasons == 0 {
            return Ok(None);
        }
        Ok(Some(ReasonRequest {
            background: self.explaining.background(served).await?,
            k: top_reasons as usize,
        }))
    }

    /// Scores a batch with one version, adds each valid row's reasons when asked, and
    /// hands the batch to the alias's shadow when it has one.
    async fn score_batch_with_reasons(
        &self,
        served: &Arc<ServedModel>,
        reasons: Option<ReasonRequest>,
        first_row: u32,
        customers: CustomerBatch,
        shadow: Option<ShadowConfig>,
    ) -> Result<pb::ScoreBatchResponse, ServiceError> {
        let (customers, outcomes) = self
            .scoring
            .score_batch(Arc::clone(served), customers)
            .await?;
        let mut top = vec![Vec::new(); customers.len()];
        if let Some(ReasonRequest { background, k }) = reasons {
            let valid: Vec<usize> = (0..customers.len())
                .filter(|&i| outcomes[i].is_ok())
                .collect();
            let explained = valid.iter().map(|&i| customers.customer(i)).collect();
            let found = self
                .explaining
                .top_reasons(served, background, explained, k)
                .await?;
            for (row, reasons) in valid.into_iter().zip(found) {
                top[row] = reasons;
            }
        }
        let customer_ids = match shadow {
            Some(config) => {
                let ids = (0..customers.len())
                    .map(|row| customers.id(row).to_owned())
                    .collect();
                let scores = outcomes
                    .iter()
                    .map(|o| o.as_ref().ok().map(|p| (p.churn_probability, p.will_churn)))
                    .collect();
                self.shadowing
                    .offer(config, served.version, customers, scores);
                ids
            }
            None => customers.into_ids(),
        };
        Ok(to_proto::score_batch_response(
            served,
            first_row,
            customer_ids,
            outcomes,
            top,
        ))
    }

    /// The version a stream is scored by: what its first message names, now.
    async fn pin(&self, first: &pb::ScoreBatchRequest) -> Result<Arc<ServedModel>, Status> {
        Ok(self
            .scoring
            .resolve(&from_proto::model_selector(first.model.clone())?)
            .await?)
    }

    /// Scores one stream message with the stream's version; its rows are numbered from
    /// `first_row`.
    async fn score_stream_message(
        &self,
        served: Arc<ServedModel>,
        first_row: u64,
        message: pb::ScoreBatchRequest,
    ) -> Result<pb::ScoreBatchResponse, Status> {
        let Some(first_row) = u32::try_from(first_row)
            .ok()
            .filter(|first| u64::from(*first) + message_rows(&message) <= 1 << 32)
        else {
            return Err(ServiceError::InvalidRequest(format!(
                "first_row: rows are numbered up to {}; this stream's rows {first_row}.. would pass it",
                u32::MAX
            ))
            .into());
        };
        let customers = from_proto::customer_batch(message.customers, message.columns)?;
        let reasons = self.reasons(&served, message.top_reasons).await?;
        Ok(self
            .score_batch_with_reasons(&served, reasons, first_row, customers, None)
            .await?)
    }
}

/// Customers in a batch message, in either form.
fn message_rows(message: &pb::ScoreBatchRequest) -> u64 {
    let columns = message.columns.as_ref().map_or(0, |c| c.customer_ids.len());
    (message.customers.len() + columns) as u64
}

/// Completes once the server starts draining.
async fn drained(draining: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = draining.wait_for(|draining| *draining).await;
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

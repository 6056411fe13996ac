//! The `ScoreStream` pipeline: the version (or traffic split) is pinned by the first message; the next
//! message is read and its customers converted while up to two are being scored (decode
//! and validation overlap ONNX Runtime); answers leave in order through a channel of two,
//! and reading stops while it is full, so HTTP/2 flow control carries a slow reader's
//! pace back to the writer. When the server starts draining, the stream ends with
//! `ShuttingDown` naming the row to resume from.

use std::collections::VecDeque;
use std::sync::Arc;

use churn_engine::{CustomerBatch, Schema};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt};

use crate::domain::error::ServiceError;
use crate::domain::serving::scoring::{ScoredBatch, Scoring};
use crate::domain::serving::served::ModelSelector;
use crate::domain::serving::splits::Route;
use crate::sync::raised;

/// Answers a stream may buffer before it stops reading requests: the back-pressure that
/// keeps a slow reader from growing the server's memory.
const STREAM_BUFFER: usize = 2;
/// Messages of one stream scored at once.
const STREAM_PIPELINE: usize = 2;

/// One inbound message of a stream, however it arrived on the wire.
pub trait StreamMessage: Send + Sync + 'static {
    /// The version the stream is scored by (read from the first message only).
    fn model(&self) -> Result<ModelSelector, ServiceError>;
    /// Where the stream's row numbers start (read from the first message only).
    fn first_row(&self) -> u32;
    fn rows(&self) -> u64;
    fn top_reasons(&self) -> usize;
    /// The customers, converted on the task that scores them, read by the pinned
    /// version's schema where the wire form needs it (Arrow's text columns).
    fn into_customers(self, schema: &Schema) -> Result<CustomerBatch, ServiceError>;
}

/// Scores every message of `inbound` with one version; the answers, in order, or the
/// error that ended the stream.
pub fn score_stream<M, E>(
    scoring: Arc<Scoring>,
    mut inbound: impl Stream<Item = Result<M, E>> + Send + Unpin + 'static,
    mut draining: watch::Receiver<bool>,
) -> mpsc::Receiver<Result<ScoredBatch, E>>
where
    M: StreamMessage,
    E: From<ServiceError> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let mut pinned: Option<Arc<Route>> = None;
        // Rows dispatched, and rows answered: the point a client resumes from.
        let mut next_row: Option<u64> = None;
        let mut answered: Option<u64> = None;
        let mut in_flight: VecDeque<JoinHandle<Result<ScoredBatch, ServiceError>>> =
            VecDeque::new();
        let mut inbound_done = false;
        while !(inbound_done && in_flight.is_empty()) {
            tokio::select! {
                biased;
                () = raised(&mut draining) => {
                    let resume_from = answered.or(next_row).unwrap_or_default();
                    let _ = sender.send(Err(ServiceError::ShuttingDown { resume_from }.into())).await;
                    break;
                }
                joined = async { in_flight.front_mut().expect("a message in flight").await }, if !in_flight.is_empty() => {
                    in_flight.pop_front();
                    let answer = joined
                        .unwrap_or_else(|e| Err(ServiceError::TaskFailed(e.to_string())));
                    if let (Ok(batch), Some(answered)) = (&answer, answered.as_mut()) {
                        *answered += batch.outcomes.len() as u64;
                    }
                    let failed = answer.is_err();
                    if sender.send(answer.map_err(E::from)).await.is_err() || failed {
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
                        Some(Err(error)) => {
                            let _ = sender.send(Err(error)).await;
                            break;
                        }
                    };
                    let first_row = *next_row.get_or_insert(u64::from(message.first_row()));
                    answered.get_or_insert(first_row);
                    let route = match &pinned {
                        Some(route) => Arc::clone(route),
                        None => match pin(&scoring, &message).await {
                            Ok(route) => pinned.insert(Arc::new(route)).clone(),
                            Err(error) => {
                                let _ = sender.send(Err(error.into())).await;
                                break;
                            }
                        },
                    };
                    next_row = Some(first_row + message.rows());
                    let scoring = Arc::clone(&scoring);
                    in_flight.push_back(tokio::spawn(async move {
                        score_message(&scoring, &route, first_row, message).await
                    }));
                }
            }
        }
    });
    receiver
}

/// The version or split a stream is scored by: what its first message names, now.
async fn pin(scoring: &Scoring, first: &impl StreamMessage) -> Result<Route, ServiceError> {
    scoring.route(&first.model()?).await
}

/// Scores one message with the stream's version or split; its rows are numbered from
/// `first_row`. Customers are read by the version's schema (a split's first arm's).
async fn score_message(
    scoring: &Scoring,
    route: &Route,
    first_row: u64,
    message: impl StreamMessage,
) -> Result<ScoredBatch, ServiceError> {
    let rows = message.rows();
    let Some(first_row) = u32::try_from(first_row)
        .ok()
        .filter(|first| u64::from(*first) + rows <= 1 << 32)
    else {
        return Err(ServiceError::InvalidRequest(format!(
            "first_row: rows are numbered up to {}; this stream's rows {first_row}.. would pass it",
            u32::MAX
        )));
    };
    let top_reasons = message.top_reasons();
    let customers = message.into_customers(route.baseline().model.schema())?;
    scoring
        .score_routed(route, None, first_row, customers, top_reasons)
        .await
}

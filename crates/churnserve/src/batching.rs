//! Dynamic micro-batching of single-customer `Score` calls. A call for a version nobody
//! else is scoring goes straight to the engine, so a lone caller never waits. A call that
//! arrives while others for the same version are in flight joins that version's queue;
//! its workers (one per ONNX Runtime session) take everything queued, up to the maximum
//! batch, wait up to the window for more while calls keep coming, and run one ORT call
//! for all of them. Each caller gets its own row's answer, its own validation error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use churn_engine::{Customer, CustomerBatch, Prediction, RowError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::ServiceError;
use crate::metrics::{Metrics, lock};
use crate::scoring::predict;
use crate::store::ServedModel;

/// How calls are fused.
#[derive(Debug, Clone, Copy)]
pub struct MicroBatchSettings {
    /// Longest a queued call waits for others once a batch is forming.
    pub window: Duration,
    /// Most calls in one ORT run.
    pub max_rows: usize,
    /// Workers per version: as many as it has sessions.
    pub workers: usize,
}

/// One row's answer, or why the engine could not run at all.
type Answer = Result<Result<Prediction, RowError>, String>;

struct Waiting {
    served: Arc<ServedModel>,
    customer: Customer,
    answer: oneshot::Sender<Answer>,
}

/// One version's queue and how many of its calls are being scored.
#[derive(Debug)]
struct Lane {
    active: AtomicUsize,
    queue: mpsc::Sender<Waiting>,
}

#[derive(Debug)]
pub struct MicroBatcher {
    settings: MicroBatchSettings,
    metrics: Arc<Metrics>,
    lanes: Mutex<HashMap<(String, u32), Arc<Lane>>>,
}

/// Counts a call as active for as long as it lives.
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl MicroBatcher {
    pub fn new(settings: MicroBatchSettings, metrics: Arc<Metrics>) -> MicroBatcher {
        MicroBatcher {
            settings,
            metrics,
            lanes: Mutex::default(),
        }
    }

    /// Scores one customer, alone when the version is idle, else in a fused batch.
    pub async fn score(
        &self,
        served: Arc<ServedModel>,
        customer: Customer,
    ) -> Result<Result<Prediction, RowError>, ServiceError> {
        let lane = self.lane(&served);
        let idle = lane.active.fetch_add(1, Ordering::AcqRel) == 0;
        let _active = Active(&lane.active);
        if idle {
            let (_, mut outcomes) = predict(
                served,
                CustomerBatch::Rows(vec![customer]),
                Arc::clone(&self.metrics),
            )
            .await?;
            return Ok(outcomes.remove(0));
        }
        let (answer, answered) = oneshot::channel();
        let stopped = || ServiceError::TaskFailed("the micro-batching worker stopped".to_owned());
        lane.queue
            .send(Waiting {
                served,
                customer,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered
            .await
            .map_err(|_| stopped())?
            .map_err(ServiceError::TaskFailed)
    }

    fn lane(&self, served: &ServedModel) -> Arc<Lane> {
        let mut lanes = lock(&self.lanes);
        let key = (served.name.clone(), served.version);
        if let Some(lane) = lanes.get(&key) {
            return Arc::clone(lane);
        }
        let (queue, waiting) = mpsc::channel(self.settings.max_rows * self.settings.workers);
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..self.settings.workers.max(1) {
            tokio::spawn(work(
                Arc::clone(&waiting),
                self.settings,
                Arc::clone(&self.metrics),
            ));
        }
        let lane = Arc::new(Lane {
            active: AtomicUsize::new(0),
            queue,
        });
        lanes.insert(key, Arc::clone(&lane));
        lane
    }
}

/// Takes a batch from the queue, scores it in one engine call, answers each caller.
async fn work(
    waiting: Arc<tokio::sync::Mutex<mpsc::Receiver<Waiting>>>,
    settings: MicroBatchSettings,
    metrics: Arc<Metrics>,
) {
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            let deadline = Instant::now() + settings.window;
            while batch.len() < settings.max_rows {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    // A lone call goes at once; a forming batch waits for the window.
                    Err(_) if batch.len() == 1 => break,
                    Err(_) => match tokio::time::timeout_at(deadline, waiting.recv()).await {
                        Ok(Some(next)) => batch.push(next),
                        _ => break,
                    },
                }
            }
            batch
        };
        let served = Arc::clone(&batch[0].served);
        let (customers, answers): (Vec<Customer>, Vec<oneshot::Sender<Answer>>) = batch
            .into_iter()
            .map(|waiting| (waiting.customer, waiting.answer))
            .unzip();
        match predict(served, CustomerBatch::Rows(customers), Arc::clone(&metrics)).await {
            Ok((_, outcomes)) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for answer in answers {
                    let _ = answer.send(Err(message.clone()));
                }
            }
        }
    }
}

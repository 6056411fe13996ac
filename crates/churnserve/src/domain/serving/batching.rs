//! Dynamic micro-batching of single-customer calls (`Score`, one-row `ModelInfer`). The
//! first call for a version opens a batch; calls that arrive while it forms join it. The
//! opener yields to the scheduler, so every request already decoded and runnable gets to
//! join, and keeps yielding while the batch grows, up to the window and the maximum
//! batch. A lone caller's batch closes after one yield: no timer, no wait, and it is
//! scored on the caller's own task, with no hand-off. A batch that others joined is
//! scored by a task of its own, one ONNX Runtime call for all of them, so a caller that
//! goes away (cancelled, timed out) never strands the others; an opener cancelled while
//! the batch forms hands it to such a task. Each caller gets its own row's answer or its
//! own validation error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use churn_engine::{Customer, CustomerBatch, Prediction, RowError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::domain::error::ServiceError;
use crate::domain::serving::predict::Predictor;
use crate::domain::serving::served::ServedModel;
use crate::sync::lock;

/// How calls are fused.
#[derive(Debug, Clone, Copy)]
pub struct MicroBatchSettings {
    /// Longest a forming batch keeps collecting calls.
    pub window: Duration,
    /// Most calls in one ONNX Runtime run.
    pub max_rows: usize,
}

/// One row's answer, or why the engine could not run at all.
type Answer = Result<Result<Prediction, RowError>, ServiceError>;

#[derive(Debug)]
struct Waiting {
    customer: Customer,
    answer: oneshot::Sender<Answer>,
}

/// The calls of one version's forming batch.
type Forming = Mutex<Vec<Waiting>>;

/// A version's forming batches, one per alias the calls came through.
type AliasLanes = Vec<(Arc<str>, Arc<Forming>)>;

#[derive(Debug)]
pub struct MicroBatcher {
    settings: MicroBatchSettings,
    predictor: Predictor,
    /// Forming batches by model name, then version, then the alias the calls came
    /// through (one batch is logged under one alias; a version has few of them).
    lanes: Mutex<HashMap<String, HashMap<u32, AliasLanes>>>,
}

impl MicroBatcher {
    pub fn new(settings: MicroBatchSettings, predictor: Predictor) -> MicroBatcher {
        MicroBatcher {
            settings,
            predictor,
            lanes: Mutex::default(),
        }
    }

    /// Scores one customer in the forming batch of the version and the alias it came
    /// through.
    pub async fn score(
        &self,
        served: Arc<ServedModel>,
        alias: &Arc<str>,
        customer: Customer,
    ) -> Result<Result<Prediction, RowError>, ServiceError> {
        let forming = self.lane(&served, alias);
        let (answer, answered) = oneshot::channel();
        let opens_batch = {
            let mut waiting = lock(&forming);
            waiting.push(Waiting { customer, answer });
            waiting.len() == 1
        };
        if opens_batch {
            let handoff = Handoff {
                forming: Some(Arc::clone(&forming)),
                served: Arc::clone(&served),
                alias: Arc::clone(alias),
                predictor: self.predictor.clone(),
                max_rows: self.settings.max_rows,
            };
            gather(&forming, self.settings).await;
            let mut batch = handoff.take();
            if batch.len() == 1 {
                // Nobody joined: the opener's own row, scored here.
                let alone = batch.pop().map(|waiting| waiting.customer);
                let rows = CustomerBatch::Rows(alone.into_iter().collect());
                let (_, outcomes) = self.predictor.predict(served, alias, rows).await?;
                return outcomes.into_iter().next().ok_or_else(|| {
                    ServiceError::TaskFailed("the engine answered no row".to_owned())
                });
            }
            tokio::spawn(score_all(
                batch,
                served,
                Arc::clone(alias),
                self.predictor.clone(),
                self.settings.max_rows,
            ));
        }
        answered
            .await
            .map_err(|_| ServiceError::TaskFailed("the micro-batch was dropped".to_owned()))?
    }

    fn lane(&self, served: &ServedModel, alias: &Arc<str>) -> Arc<Forming> {
        let mut lanes = lock(&self.lanes);
        if let Some((_, forming)) = lanes
            .get(served.name.as_str())
            .and_then(|versions| versions.get(&served.version))
            .and_then(|by_alias| by_alias.iter().find(|(lane, _)| **lane == **alias))
        {
            return Arc::clone(forming);
        }
        let forming = Arc::new(Forming::default());
        lanes
            .entry(served.name.clone())
            .or_default()
            .entry(served.version)
            .or_default()
            .push((Arc::clone(alias), Arc::clone(&forming)));
        forming
    }
}

/// Lets the batch grow while calls keep joining, up to the window and the maximum batch.
async fn gather(forming: &Forming, settings: MicroBatchSettings) {
    let deadline = Instant::now() + settings.window;
    let mut joined = 0;
    loop {
        tokio::task::yield_now().await;
        let now = lock(forming).len();
        if now == joined || now >= settings.max_rows || Instant::now() >= deadline {
            break;
        }
        joined = now;
    }
}

/// The forming batch of an opener that is gathering it: taken when the opener is done
/// gathering, or, should the opener be dropped first, scored by a task of its own.
struct Handoff {
    forming: Option<Arc<Forming>>,
    served: Arc<ServedModel>,
    alias: Arc<str>,
    predictor: Predictor,
    max_rows: usize,
}

impl Handoff {
    fn take(mut self) -> Vec<Waiting> {
        self.forming
            .take()
            .map(|forming| std::mem::take(&mut *lock(&forming)))
            .unwrap_or_default()
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        // Without a runtime (dropped while it shuts down) the callers get an error instead.
        if let (Some(forming), Ok(runtime)) =
            (self.forming.take(), tokio::runtime::Handle::try_current())
        {
            let batch = std::mem::take(&mut *lock(&forming));
            runtime.spawn(score_all(
                batch,
                Arc::clone(&self.served),
                Arc::clone(&self.alias),
                self.predictor.clone(),
                self.max_rows,
            ));
        }
    }
}

/// Scores a closed batch, at most `max_rows` per ONNX Runtime call, and answers each caller.
async fn score_all(
    mut batch: Vec<Waiting>,
    served: Arc<ServedModel>,
    alias: Arc<str>,
    predictor: Predictor,
    max_rows: usize,
) {
    while !batch.is_empty() {
        let rest = batch.split_off(batch.len().min(max_rows));
        let (customers, answers): (Vec<Customer>, Vec<oneshot::Sender<Answer>>) = batch
            .into_iter()
            .map(|waiting| (waiting.customer, waiting.answer))
            .unzip();
        let rows = CustomerBatch::Rows(customers);
        match predictor.predict(Arc::clone(&served), &alias, rows).await {
            Ok((_, outcomes)) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.for_each_caller()));
                }
            }
        }
        batch = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::drift::Drift;
    use crate::observe::metrics::{Metrics, ServingSample, ServingSnapshot};
    use churn_engine::{FeatureValue, Model, ModelOptions, OnnxRuntime};

    #[derive(Debug)]
    struct Nothing;

    impl ServingSnapshot for Nothing {
        fn sample(&self) -> ServingSample {
            ServingSample::default()
        }
    }

    /// The first customer of the logistic regression's fixture.
    fn customer() -> Customer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/fixtures/telco-logreg.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("the fixture")).expect("JSON");
        let first = &fixture["customers"][0];
        let features = first["features"]
            .as_object()
            .expect("features")
            .iter()
            .map(|(name, value)| {
                let value = match (value["number"].as_f64(), value["text"].as_str()) {
                    (Some(number), _) => FeatureValue::Number(number),
                    (None, Some(text)) => FeatureValue::Text(text.to_owned()),
                    (None, None) => FeatureValue::Missing,
                };
                (name.clone(), value)
            })
            .collect();
        Customer {
            id: first["customer_id"].as_str().expect("id").to_owned(),
            features,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_opener_that_goes_away_leaves_the_batch_to_a_task() {
        let runtime = OnnxRuntime::load(None).expect("run scripts/setup-onnxruntime.sh");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/telco-logreg.onnx"
        );
        let bytes = std::fs::read(path).expect("the bundled model");
        let model = Model::load(runtime, &bytes, &ModelOptions::default()).expect("loads");
        let served = Arc::new(ServedModel::new("m".into(), 1, String::new(), model));
        let metrics = Arc::new(Metrics::new(
            Arc::new(Drift::new(true).0),
            Arc::new(Nothing),
        ));
        let batcher = Arc::new(MicroBatcher::new(
            MicroBatchSettings {
                window: Duration::from_secs(10),
                max_rows: 64,
            },
            Predictor::new(metrics, None),
        ));

        let alias: Arc<str> = Arc::from("production");
        // The opener is polled once: it has opened the batch and yielded, gathering.
        let mut opener = Box::pin(batcher.score(Arc::clone(&served), &alias, customer()));
        let polled = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(opener.as_mut(), cx))
        })
        .await;
        assert!(polled.is_pending(), "the opener is still gathering");
        // A second caller joins, then the opener goes away mid-gather.
        let joiner = {
            let (batcher, served, alias) = (
                Arc::clone(&batcher),
                Arc::clone(&served),
                Arc::clone(&alias),
            );
            tokio::spawn(async move { batcher.score(served, &alias, customer()).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(
            lock(&batcher.lane(&served, &alias)).len(),
            2,
            "the caller joined"
        );
        drop(opener);

        let answer = joiner.await.expect("the joiner's task");
        let prediction = answer.expect("scored").expect("a valid customer");
        assert!((0.0..=1.0).contains(&prediction.churn_probability));
    }
}

//! The prediction log: every answer with a customer id (or a sample of customers, by a
//! hash of the id, so a customer is always in or always out), handed off the request path
//! into a bounded queue and written to the registry in batches by one task. A full queue
//! or a failed write drops rows and counts them; it never fails or slows a request.
//! Predictions older than the retention are deleted every hour.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use churn_engine::{CustomerBatch, Prediction, RowError};
use churn_registry::{LoggedPrediction, Registry, now_millis};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::domain::monitoring::performance::DAY_MILLIS;
use crate::observe::metrics::Metrics;
use crate::sync::{lock, raised};

/// Rows waiting to be written at most; past it, answers are dropped from the log.
const QUEUE_ROWS: usize = 200_000;
/// Rows per registry write at most, and how long the first of them waits for others.
const WRITE_ROWS: usize = 10_000;
const WRITE_WAIT: Duration = Duration::from_millis(200);
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionLogSettings {
    /// The share of customers logged, in [0, 1].
    pub sample_rate: f64,
    /// Predictions are deleted this many days after they were made.
    pub retention_days: u32,
}

#[derive(Debug)]
pub struct PredictionLog {
    queue: mpsc::UnboundedSender<Vec<LoggedPrediction>>,
    queued_rows: Arc<AtomicUsize>,
    sample_rate: f64,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl PredictionLog {
    /// Starts the writer and the retention sweep.
    pub fn start(
        registry: Arc<Registry>,
        settings: PredictionLogSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<PredictionLog> {
        let (queue, received) = mpsc::unbounded_channel();
        let queued_rows = Arc::new(AtomicUsize::new(0));
        let stop = watch::Sender::new(false);
        let writer = tokio::spawn(write(
            Arc::clone(&registry),
            received,
            Arc::clone(&queued_rows),
            Arc::clone(&metrics),
            stop.subscribe(),
        ));
        let sweeper = tokio::spawn(sweep(registry, settings.retention_days, stop.subscribe()));
        Arc::new(PredictionLog {
            queue,
            queued_rows,
            sample_rate: settings.sample_rate,
            metrics,
            stop,
            tasks: std::sync::Mutex::new(vec![writer, sweeper]),
        })
    }

    /// Hands one engine call's answers to the log; rows without a customer id, rejected
    /// rows and customers outside the sample are left out.
    pub fn offer(
        &self,
        name: &str,
        version: u32,
        alias: &str,
        customers: &CustomerBatch,
        outcomes: &[Result<Prediction, RowError>],
    ) {
        let scored_at_millis = now_millis();
        let rows: Vec<LoggedPrediction> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(row, outcome)| {
                let prediction = outcome.as_ref().ok()?;
                let customer_id = customers.id(row);
                (!customer_id.is_empty() && sampled(customer_id, self.sample_rate)).then(|| {
                    LoggedPrediction {
                        name: name.to_owned(),
                        version,
                        alias: alias.to_owned(),
                        customer_id: customer_id.to_owned(),
                        probability: prediction.churn_probability,
                        will_churn: prediction.will_churn,
                        scored_at_millis,
                    }
                })
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let count = rows.len();
        let admitted = self
            .queued_rows
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued + count <= QUEUE_ROWS).then_some(queued + count)
            })
            .is_ok();
        if !admitted || self.queue.send(rows).is_err() {
            self.metrics.record_prediction_log(0, count as u64);
        }
    }

    /// Writes what is queued and stops.
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Whether `customer_id` is in a sample of `rate`: by its FNV-1a hash, the same on every
/// replica and every run, mixed by MurmurHash3's finalizer (FNV alone leaves the high bits
/// of short, similar ids such as `C000123` far from uniform).
fn sampled(customer_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let hash = customer_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut mixed = hash ^ (hash >> 33);
    mixed = mixed.wrapping_mul(0xff51_afd7_ed55_8ccd);
    mixed ^= mixed >> 33;
    mixed = mixed.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    mixed ^= mixed >> 33;
    ((mixed >> 11) as f64 / (1u64 << 53) as f64) < rate
}

async fn write(
    registry: Arc<Registry>,
    mut received: mpsc::UnboundedReceiver<Vec<LoggedPrediction>>,
    queued_rows: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut rows = tokio::select! {
            batch = received.recv() => match batch {
                Some(batch) => batch,
                None => return,
            },
            () = raised(&mut stop) => {
                received.close();
                match received.recv().await {
                    Some(batch) => batch,
                    None => return,
                }
            }
        };
        // One sleep for the window, then whatever arrived meanwhile: waiting on the queue
        // instead would wake this task and re-arm a timer for every answer sent. No sleep
        // when a whole write is already queued (bulk scoring).
        if queued_rows.load(Ordering::Acquire) < WRITE_ROWS {
            tokio::select! {
                () = tokio::time::sleep(WRITE_WAIT) => {}
                () = raised(&mut stop) => {}
            }
        }
        while rows.len() < WRITE_ROWS {
            match received.try_recv() {
                Ok(batch) => rows.extend(batch),
                Err(_) => break,
            }
        }
        let count = rows.len();
        match registry.log_predictions(&rows).await {
            Ok(()) => metrics.record_prediction_log(count as u64, 0),
            Err(error) => {
                tracing::warn!(%error, rows = count, "the prediction log could not be written; these rows are dropped");
                metrics.record_prediction_log(0, count as u64);
            }
        }
        queued_rows.fetch_sub(count, Ordering::AcqRel);
    }
}

async fn sweep(registry: Arc<Registry>, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(RETENTION_SWEEP);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = raised(&mut stop) => return,
        }
        let before = now_millis() - i64::from(retention_days) * DAY_MILLIS;
        match registry.delete_predictions_before(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                deleted,
                retention_days,
                "deleted predictions past the retention"
            ),
            Err(error) => {
                tracing::warn!(%error, "old predictions could not be deleted; retrying in an hour")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_keeps_a_customer_in_or_out_and_about_its_share() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("C{i:06}")).collect();
        let kept = ids.iter().filter(|id| sampled(id, 0.25)).count();
        assert!((4_500..5_500).contains(&kept), "{kept} of 20000 at 0.25");
        assert!(ids.iter().all(|id| sampled(id, 0.25) == sampled(id, 0.25)));
        assert!(
            ids.iter()
                .filter(|id| sampled(id, 0.25))
                .all(|id| sampled(id, 0.5)),
            "nested samples"
        );
        assert!(!ids.iter().any(|id| sampled(id, 0.0)));
        assert!(ids.iter().all(|id| sampled(id, 1.0)));
    }
}

//! Load shedding: at most `max_concurrent` gRPC requests run at once; up to `max_queued`
//! more wait, each at most `queue_timeout`; beyond that a request is answered
//! RESOURCE_EXHAUSTED at once, so an overload costs the server almost nothing and the
//! admitted requests keep their latency. Health checks and reflection are never shed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;

/// How much concurrency is admitted and how long a request may queue.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub queue_timeout: Duration,
}

#[derive(Debug)]
struct Gate {
    limits: AdmissionLimits,
    running: Semaphore,
    queued: AtomicUsize,
}

/// The tower layer applying the limits to every service of the server.
#[derive(Debug, Clone)]
pub struct AdmissionLayer(Arc<Gate>);

impl AdmissionLayer {
    pub fn new(limits: AdmissionLimits) -> Self {
        AdmissionLayer(Arc::new(Gate {
            limits,
            running: Semaphore::new(limits.max_concurrent),
            queued: AtomicUsize::new(0),
        }))
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            gate: Arc::clone(&self.0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    gate: Arc<Gate>,
}

fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

impl<S, B> tower::Service<http::Request<B>> for Admission<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was made ready serves this call; the fresh one waits for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        if exempt(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let gate = Arc::clone(&self.gate);
        Box::pin(async move {
            match gate.admit(inner.call(request)).await {
                Ok(response) => response,
                Err(message) => Ok(shed(message)),
            }
        })
    }
}

impl AdmissionLayer {
    /// Runs `work` once a slot is free, or answers why it was shed: the same limits for
    /// every protocol (the V2 REST routes ask here too).
    pub async fn admit<T>(&self, work: impl Future<Output = T>) -> Result<T, String> {
        self.0.admit(work).await
    }
}

impl Gate {
    async fn admit<T>(&self, work: impl Future<Output = T>) -> Result<T, String> {
        let permit = match self.running.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let limits = self.limits;
                if self.queued.fetch_add(1, Ordering::AcqRel) >= limits.max_queued {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    return Err(format!(
                        "the server is at capacity ({} requests running, {} queued); retry with backoff",
                        limits.max_concurrent, limits.max_queued
                    ));
                }
                let waited =
                    tokio::time::timeout(limits.queue_timeout, self.running.acquire()).await;
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        return Err(format!(
                            "the server is at capacity: no slot freed within {} ms; retry with backoff",
                            limits.queue_timeout.as_millis()
                        ));
                    }
                }
            }
        };
        let done = work.await;
        drop(permit);
        Ok(done)
    }
}

fn shed(message: String) -> http::Response<tonic::body::Body> {
    tonic::Status::resource_exhausted(message).into_http()
}

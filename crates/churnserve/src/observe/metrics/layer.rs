//! The tower layer that counts every gRPC request: started when it arrives, handled with
//! its status code once the status is known — from the response headers (a trailers-only
//! answer) or from the trailers at the end of the body (every stream) — and timed to that
//! point. A response dropped before its status (the client went away) counts as
//! `CANCELLED`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Frame, SizeHint};

use super::rpcs::{self, RpcLabels};
use super::{GrpcSeries, HandledLabels};

#[derive(Debug, Clone)]
pub struct RequestMetricsLayer {
    series: GrpcSeries,
}

impl RequestMetricsLayer {
    pub(super) fn new(series: GrpcSeries) -> RequestMetricsLayer {
        RequestMetricsLayer { series }
    }
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics {
            inner,
            series: self.series.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    series: GrpcSeries,
}

/// A request whose status is not known yet; recorded exactly once.
#[derive(Debug)]
struct Pending {
    series: GrpcSeries,
    rpc: RpcLabels,
    start: Instant,
}

impl Pending {
    fn finish(self, code: &'static str) {
        self.series.in_flight.dec();
        self.series
            .handled
            .get_or_create(&HandledLabels {
                rpc: self.rpc,
                grpc_code: code,
            })
            .inc();
        self.series
            .handling
            .get_or_create(&self.rpc)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl<S, B> tower::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = rpcs::labels(request.uri().path());
        self.series.started.get_or_create(&rpc).inc();
        self.series.in_flight.inc();
        let pending = Pending {
            series: self.series.clone(),
            rpc,
            start: Instant::now(),
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => match status_code(response.headers()) {
                    Some(code) => {
                        pending.finish(code);
                        Ok(response)
                    }
                    None => Ok(response.map(|body| {
                        tonic::body::Body::new(CountedBody {
                            inner: body,
                            pending: Some(pending),
                        })
                    })),
                },
                Err(error) => {
                    pending.finish("UNKNOWN");
                    Err(error)
                }
            }
        })
    }
}

/// A response body that records its request when the trailers carry the status.
struct CountedBody {
    inner: tonic::body::Body,
    pending: Option<Pending>,
}

impl CountedBody {
    fn finish(&mut self, code: &'static str) {
        if let Some(pending) = self.pending.take() {
            pending.finish(code);
        }
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_code) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish("UNKNOWN"),
            // A gRPC body that ends without a status is not a success.
            Poll::Ready(None) => self.finish("UNKNOWN"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The code name of a `grpc-status` header, when there is one.
fn status_code(headers: &http::HeaderMap) -> Option<&'static str> {
    let status = headers.get("grpc-status")?;
    let code = status
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Unknown, tonic::Code::from_i32);
    Some(code_name(code))
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

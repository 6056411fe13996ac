//! Request ids: the caller's `x-request-id` (printable ASCII, at most 128 characters) or a
//! new UUID, carried by a `request` span around the whole handler, so every log line of the
//! request names it, and returned in the response's `x-request-id` header.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
use tracing::Instrument;

const HEADER: &str = "x-request-id";
const MAX_LENGTH: usize = 128;

/// The tower layer adding request ids and spans.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;
    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
}

/// The caller's id when it is usable, else a fresh UUID.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(HEADER)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_LENGTH
                && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(fresh_id)
}

/// A new version-4 UUID from a per-thread generator (SplitMix64) that the OS seeds once
/// per thread: a request id must be unique, not secret, and asking the OS for randomness
/// cost a system call on every request.
fn fresh_id() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    let next = |state: &Cell<u64>| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let random = STATE.with(|state| (u128::from(next(state)) << 64) | u128::from(next(state)));
    let uuid = uuid::Builder::from_random_bytes(random.to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text))
        .expect("a UUID is a header value")
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestId<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let id = request_id(request.headers());
        request.headers_mut().insert(HEADER, id.clone());
        let span = tracing::info_span!(
            "request",
            id = %id.to_str().unwrap_or_default(),
            rpc = %request.uri().path(),
            model = tracing::field::Empty,
            version = tracing::field::Empty,
            rows = tracing::field::Empty,
            grpc_status = tracing::field::Empty,
        );
        crate::observe::telemetry::join_caller_trace(&span, request.headers());
        let start = Instant::now();
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut result = future.await;
                if let Ok(response) = &mut result {
                    response.headers_mut().insert(HEADER, id);
                    let status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned();
                    tracing::Span::current().record("grpc_status", status.as_str());
                    tracing::debug!(elapsed_us = start.elapsed().as_micros() as u64, "answered");
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Names the model version and row count on the current request's span.
pub fn record_model(name: &str, version: u32, rows: usize) {
    let span = tracing::Span::current();
    span.record("model", name);
    span.record("version", version);
    span.record("rows", rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fresh_ids_are_distinct_version_4_uuids_on_every_thread() {
        let draw = || {
            (0..10_000)
                .map(|_| fresh_id().to_str().expect("ASCII").to_owned())
                .collect::<Vec<_>>()
        };
        let other = std::thread::spawn(draw).join().expect("a thread");
        let mut seen = HashSet::new();
        for id in draw().into_iter().chain(other) {
            let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert!(seen.insert(id), "a repeated id");
        }
        assert_eq!(seen.len(), 20_000);
    }
}

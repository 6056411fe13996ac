//! Logs and traces. Every request's span (see `request_id`) goes to the log lines on
//! stderr and, when built with the `otlp` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, to an OpenTelemetry collector over
//! OTLP/gRPC, as a child of the caller's W3C `traceparent` when there is one.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

const OTLP_ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[cfg(feature = "otlp")]
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The installed log and trace pipeline; [`Telemetry::shutdown`] flushes spans not yet
/// exported.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber: `RUST_LOG` filtering (default `info`), human or JSON
    /// lines on stderr, and the OTLP exporter when configured. Call it inside the Tokio
    /// runtime that outlives the server: the exporter's gRPC channel runs on it.
    pub fn install(format: LogFormat) -> Result<Self, TelemetryError> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let lines = match format {
            LogFormat::Human => lines
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .boxed(),
            LogFormat::Json => lines
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
        };
        let subscriber = tracing_subscriber::registry().with(filter).with(lines);
        let otlp_requested = OTLP_ENDPOINT_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));

        #[cfg(feature = "otlp")]
        {
            let tracer_provider = otlp_requested.then(otlp::tracer_provider).transpose()?;
            let spans = tracer_provider.as_ref().map(|provider| {
                use opentelemetry::trace::TracerProvider as _;
                tracing_opentelemetry::layer().with_tracer(provider.tracer("churnserve"))
            });
            subscriber.with(spans).try_init()?;
            if tracer_provider.is_some() {
                tracing::info!("exporting request spans over OTLP");
            }
            Ok(Self { tracer_provider })
        }
        #[cfg(not(feature = "otlp"))]
        {
            subscriber.try_init()?;
            if otlp_requested {
                tracing::warn!(
                    "an OTLP endpoint is set but this build has no `otlp` feature; spans are only logged"
                );
            }
            Ok(Self {})
        }
    }

    /// Exports the spans still buffered; call before the runtime stops.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "cannot flush the last spans to the OTLP collector");
        }
    }
}

/// Makes `span` a child of the trace named by the request's `traceparent` header, so the
/// collector shows churnserve's work inside the caller's trace.
#[cfg(feature = "otlp")]
pub(crate) fn join_caller_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&otlp::HeaderExtractor(headers))
    });
    // Fails only when the span is disabled by the filter, and then there is nothing to join.
    let _ = span.set_parent(context);
}

#[cfg(not(feature = "otlp"))]
pub(crate) fn join_caller_trace(_span: &tracing::Span, _headers: &http::HeaderMap) {}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::TelemetryError;

    /// The standard `OTEL_*` variables configure the exporter (endpoint, headers, timeout)
    /// and the batch processor (`OTEL_BSP_*`); `OTEL_SERVICE_NAME` overrides `churnserve`.
    pub(super) fn tracer_provider() -> Result<SdkTracerProvider, TelemetryError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
            Resource::builder().build()
        } else {
            Resource::builder().with_service_name("churnserve").build()
        };
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build())
    }

    pub(super) struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

    impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|value| value.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }
}

//! With the `otlp` feature, the binary exports each request's span to an OpenTelemetry
//! collector, inside the caller's trace. The collector here is a real OTLP/gRPC server.

use std::process::Command;
use std::time::Duration;

use churn_api::v1::scoring_service_client::ScoringServiceClient;
use churn_api::v1::{Customer, FeatureValue, ScoreRequest, feature_value};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;

use crate::common;

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

struct Collector {
    received: mpsc::UnboundedSender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.received.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text(value: Option<&any_value::Value>) -> Option<String> {
    match value? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        any_value::Value::IntValue(number) => Some(number.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The first hold-out customer, numbers where the column parses as one.
fn holdout_customer() -> Customer {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/data/test.csv"
    ))
    .expect("models/data/test.csv");
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    let row = lines.next().expect("first row");
    let features = header
        .split(',')
        .zip(row.split(','))
        .filter(|(name, _)| !matches!(*name, "customerid" | "churn"))
        .map(|(name, value)| {
            let kind = match value.parse::<f64>() {
                Ok(number) => feature_value::Kind::Number(number),
                Err(_) => feature_value::Kind::Text(value.to_owned()),
            };
            (name.to_owned(), FeatureValue { kind: Some(kind) })
        })
        .collect();
    Customer {
        customer_id: "otlp-customer".to_owned(),
        features,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_inside_the_callers_trace() {
    let collector_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the collector");
    let collector_address = collector_listener.local_addr().expect("collector address");
    let (received, mut exports) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector { received }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                collector_listener,
            )),
    );

    let data = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnserve"));
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_address}"),
        )
        .env("OTEL_SERVICE_NAME", "churnserve-under-test");
    let (mut server, address) = common::spawn(command, data.path(), &[]);

    let mut client = ScoringServiceClient::connect(address)
        .await
        .expect("connect to churnserve");
    let mut request = tonic::Request::new(ScoreRequest {
        customer: Some(holdout_customer()),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .expect("ascii"),
    );
    request
        .metadata_mut()
        .insert("x-request-id", "otlp-round-trip".parse().expect("ascii"));
    let scored = client.score(request).await.expect("score").into_inner();
    let served_by = scored.served_by.expect("served_by");

    // SIGTERM: the server drains, then flushes the spans it still holds.
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.wait().expect("churnserve exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let mut spans: Vec<(String, Span)> = Vec::new();
    while let Ok(Some(export)) = tokio::time::timeout(Duration::from_secs(5), exports.recv()).await
    {
        for resource_spans in export.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| text(attribute(&resource.attributes, "service.name")))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                spans.extend(
                    scope_spans
                        .spans
                        .into_iter()
                        .map(|span| (service.clone(), span)),
                );
            }
        }
        if spans.iter().any(|(_, span)| {
            text(attribute(&span.attributes, "id")).as_deref() == Some("otlp-round-trip")
        }) {
            break;
        }
    }
    let (service, span) = spans
        .iter()
        .find(|(_, span)| {
            text(attribute(&span.attributes, "id")).as_deref() == Some("otlp-round-trip")
        })
        .unwrap_or_else(|| panic!("no span for the request among {} exported", spans.len()));
    assert_eq!(service, "churnserve-under-test");
    assert_eq!(span.name, "request");
    assert_eq!(
        hex(&span.trace_id),
        CALLER_TRACE_ID,
        "joins the caller's trace"
    );
    assert_eq!(hex(&span.parent_span_id), CALLER_SPAN_ID);
    let field = |key| text(attribute(&span.attributes, key));
    assert_eq!(
        field("rpc").as_deref(),
        Some("/churn.v1.ScoringService/Score")
    );
    assert_eq!(field("model"), Some(served_by.name));
    assert_eq!(field("version"), Some(served_by.version.to_string()));
    assert_eq!(field("rows").as_deref(), Some("1"));
    assert_eq!(field("grpc_status").as_deref(), Some("0"));
}

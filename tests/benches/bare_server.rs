//! The floor peers of `benches/compare.sh`: a bare tonic server answering
//! `/churn.v1.ScoringService/Score` with nothing but the transport (`echo`: an empty
//! `ScoreResponse`) or with the transport plus one in-process engine call on the request's
//! customer (`MODEL.onnx`). No registry, no layers, no metrics: what is left of a `Score`
//! when everything churnserve adds is taken away. Prints `listening on ADDRESS`.
//!
//! `cargo bench -p tests --bench bare_server -- echo|MODEL.onnx`

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use churn_api::v1 as pb;
use churn_engine::{Customer, FeatureValue, Model, ModelOptions, OnnxRuntime};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic_prost::ProstCodec;

/// `None`: the echo floor.
#[derive(Clone)]
struct BareScore(Option<Arc<Model>>);

impl UnaryService<pb::ScoreRequest> for BareScore {
    type Response = pb::ScoreResponse;
    type Future = std::future::Ready<Result<tonic::Response<pb::ScoreResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<pb::ScoreRequest>) -> Self::Future {
        let Some(model) = &self.0 else {
            return std::future::ready(Ok(tonic::Response::new(pb::ScoreResponse::default())));
        };
        let customer = request.into_inner().customer.unwrap_or_default();
        let customer = Customer {
            id: customer.customer_id,
            features: customer
                .features
                .into_iter()
                .map(|(name, value)| {
                    let value = match value.kind {
                        Some(pb::feature_value::Kind::Number(n)) => FeatureValue::Number(n),
                        Some(pb::feature_value::Kind::Text(t)) => FeatureValue::Text(t),
                        Some(pb::feature_value::Kind::Flag(f)) => FeatureValue::Flag(f),
                        None => FeatureValue::Missing,
                    };
                    (name, value)
                })
                .collect(),
        };
        let answer = match model.predict(std::slice::from_ref(&customer)) {
            Ok(mut outcomes) => match outcomes.pop() {
                Some(Ok(prediction)) => Ok(tonic::Response::new(pb::ScoreResponse {
                    prediction: Some(pb::Prediction {
                        customer_id: customer.id,
                        churn_probability: prediction.churn_probability,
                        will_churn: prediction.will_churn,
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                Some(Err(error)) => Err(tonic::Status::invalid_argument(error.to_string())),
                None => Err(tonic::Status::internal("no outcome")),
            },
            Err(error) => Err(tonic::Status::internal(error.to_string())),
        };
        std::future::ready(answer)
    }
}

impl tower::Service<http::Request<Body>> for BareScore {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/churn.v1.ScoringService/Score" {
                return Ok(tonic::Status::unimplemented("only Score").into_http());
            }
            let mut grpc = Grpc::new(ProstCodec::<pb::ScoreResponse, pb::ScoreRequest>::default());
            Ok(grpc.unary(service, request).await)
        })
    }
}

impl NamedService for BareScore {
    const NAME: &'static str = "churn.v1.ScoringService";
}

fn main() {
    let argument = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .unwrap_or_else(|| {
            eprintln!("usage: bare_server echo|MODEL.onnx");
            std::process::exit(2);
        });
    let model = (argument != "echo").then(|| {
        let runtime = OnnxRuntime::load(None).expect("onnx runtime");
        let bytes = std::fs::read(&argument).expect("model file");
        Arc::new(Model::load(runtime, &bytes, &ModelOptions::default()).expect("model loads"))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening on {}", listener.local_addr().expect("address"));
        tonic::transport::Server::builder()
            .add_service(BareScore(model))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await
            .expect("serve");
    });
}

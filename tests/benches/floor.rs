//! The floors of `benches/compare.sh`, what is left of a `Score` when everything churnserve
//! adds is taken away:
//!
//! - `echo`: a bare tonic server answering `/churn.v1.ScoringService/Score` with an empty
//!   `ScoreResponse`: the transport alone. Prints `listening on ADDRESS`.
//! - `serve MODEL.onnx`: the same server plus one in-process engine call on the request's
//!   customer; no registry, no layers, no metrics, no batching.
//! - `inprocess MODEL.onnx SCORE_BODY BATCH_BODY`: the engine alone on the customers of the
//!   benchmark's pre-serialized `Score` and `ScoreBatch` (columns) requests; prints the p50
//!   of a one-row call and the rows per second of the batch.
//!
//! `cargo bench -p tests --bench floor -- echo | serve MODEL | inprocess MODEL SCORE BATCH`

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use churn_api::v1 as pb;
use std::time::Instant;

use churn_engine::{
    ColumnValues, Customer, CustomerBatch, CustomerColumns, FeatureValue, Model, ModelOptions,
    OnnxRuntime,
};
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
        let customer = customer(request.into_inner().customer.unwrap_or_default());
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

fn customer(customer: pb::Customer) -> Customer {
    Customer {
        id: customer.customer_id,
        features: customer
            .features
            .into_iter()
            .map(|(name, value)| (name, feature_value(value.kind)))
            .collect(),
    }
}

fn feature_value(kind: Option<pb::feature_value::Kind>) -> FeatureValue {
    match kind {
        Some(pb::feature_value::Kind::Number(n)) => FeatureValue::Number(n),
        Some(pb::feature_value::Kind::Text(t)) => FeatureValue::Text(t),
        Some(pb::feature_value::Kind::Flag(f)) => FeatureValue::Flag(f),
        None => FeatureValue::Missing,
    }
}

fn columns(columns: pb::CustomerColumns) -> CustomerColumns {
    use pb::feature_column::Values;
    CustomerColumns {
        ids: columns.customer_ids,
        columns: columns
            .features
            .into_iter()
            .map(|column| {
                let values = match column.values {
                    Some(Values::Numbers(numbers)) => ColumnValues::Numbers(numbers.values),
                    Some(Values::Texts(texts)) => ColumnValues::Texts(texts.values),
                    Some(Values::Flags(flags)) => ColumnValues::Flags(flags.values),
                    Some(Values::Mixed(mixed)) => ColumnValues::Values(
                        mixed
                            .values
                            .into_iter()
                            .map(|v| feature_value(v.kind))
                            .collect(),
                    ),
                    None => ColumnValues::Values(Vec::new()),
                };
                (column.name, values)
            })
            .collect(),
    }
}

fn load(path: &str) -> Model {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime");
    let bytes = std::fs::read(path).expect("model file");
    Model::load(runtime, &bytes, &ModelOptions::default()).expect("model loads")
}

/// A message of an h2load body file: the 5-byte gRPC prefix, then the message.
fn body<M: prost::Message + Default>(path: &str) -> M {
    let body = std::fs::read(path).expect("body file");
    M::decode(&body[5..]).expect("a serialized request")
}

fn in_process(model: &str, score_body: &str, batch_body: &str) {
    const ONE_ROW_CALLS: usize = 20_000;
    const BATCH_CALLS: usize = 50;
    let model = load(model);
    let one = [customer(
        body::<pb::ScoreRequest>(score_body)
            .customer
            .expect("a customer"),
    )];
    let batch = CustomerBatch::Columns(columns(
        body::<pb::ScoreBatchRequest>(batch_body)
            .columns
            .expect("columns"),
    ));
    let mut one_row = Vec::with_capacity(ONE_ROW_CALLS);
    for _ in 0..ONE_ROW_CALLS {
        let started = Instant::now();
        let outcome = model.predict(&one).expect("inference");
        one_row.push(started.elapsed());
        assert!(outcome[0].is_ok(), "the customer scores");
    }
    // The first calls warm the session; the median ignores them.
    one_row.sort();
    let started = Instant::now();
    for _ in 0..BATCH_CALLS {
        let outcomes = model.predict_batch(&batch).expect("inference");
        assert!(outcomes.iter().all(Result::is_ok), "every row scores");
    }
    let rows_per_second = (BATCH_CALLS * batch.len()) as f64 / started.elapsed().as_secs_f64();
    println!(
        "one_row_p50_us={:.1} batch_rows={} batch_rows_per_s={rows_per_second:.0}",
        one_row[ONE_ROW_CALLS / 2].as_secs_f64() * 1e6,
        batch.len()
    );
}

fn serve(model: Option<Arc<Model>>) {
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["echo"] => serve(None),
        ["serve", model] => serve(Some(Arc::new(load(model)))),
        ["inprocess", model, score_body, batch_body] => in_process(model, score_body, batch_body),
        _ => {
            eprintln!("usage: floor echo | serve MODEL | inprocess MODEL SCORE_BODY BATCH_BODY");
            std::process::exit(2);
        }
    }
}

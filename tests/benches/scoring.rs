//! Scoring speed, in one run: the in-process engine (1 row latency, 10,000-row
//! throughput) against the same work through the gRPC server on loopback, each server
//! figure as a ratio to its in-process baseline. Run: `cargo bench -p tests --bench scoring`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use tonic::transport::Channel;

mod common;
mod raw_codec;

use churn_api::v1 as pb;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use churn_engine::{Customer, Model, ModelOptions, OnnxRuntime};
use common::{Latency, latency, micros, print_latency};
use tests::{BUNDLED, BUNDLED_MODEL, Bundled, TestServer, fixture, repo_path};

// The allocator the churnserve binary uses, so both sides of each ratio run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LATENCY_SAMPLES: usize = 3_000;
const BATCH_ROWS: usize = 10_000;
const BATCH_RUNS: usize = 7;
const CONCURRENCY: usize = 16;

/// Median rows per second over `BATCH_RUNS` timed runs after one warm-up.
fn rows_per_second(mut run: impl FnMut() -> Duration) -> f64 {
    run();
    let mut rates: Vec<f64> = (0..BATCH_RUNS)
        .map(|_| BATCH_ROWS as f64 / run().as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn rows_of(model: &str) -> Vec<tests::FixtureCustomer> {
    let rows = fixture(&format!("models/fixtures/{model}.json"), "customers");
    rows.iter().cycle().take(BATCH_ROWS).cloned().collect()
}

/// Rows per second of ScoreBatch with the request encoded once, before timing.
async fn pre_encoded_rows_per_second(server: &TestServer, request: &pb::ScoreBatchRequest) -> f64 {
    let encoded = Bytes::from(request.encode_to_vec());
    let mut grpc =
        tonic::client::Grpc::new(server.channel().await).max_decoding_message_size(usize::MAX);
    let path = http::uri::PathAndQuery::from_static("/churn.v1.ScoringService/ScoreBatch");
    let mut rates = Vec::new();
    for run in 0..=BATCH_RUNS {
        grpc.ready().await.expect("ready");
        let start = Instant::now();
        let response = grpc
            .unary(
                tonic::Request::new(encoded.clone()),
                path.clone(),
                raw_codec::RawCodec,
            )
            .await
            .expect("raw batch")
            .into_inner();
        let elapsed = start.elapsed();
        assert!(response.len() > BATCH_ROWS * 20, "a response for every row");
        if run > 0 {
            rates.push(BATCH_ROWS as f64 / elapsed.as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

struct InProcess {
    one_row: Latency,
    batch_rows_per_second: f64,
}

fn in_process(model_name: &str, rows: &[tests::FixtureCustomer]) -> InProcess {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let bytes = std::fs::read(repo_path(&format!("models/{model_name}.onnx"))).expect("model");
    let model = Model::load(runtime, &bytes, &ModelOptions::default()).expect("model loads");
    let customers: Vec<Customer> = rows.iter().map(|r| r.to_engine()).collect();
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for (i, customer) in customers
        .iter()
        .cycle()
        .take(LATENCY_SAMPLES + 300)
        .enumerate()
    {
        let start = Instant::now();
        let outcome = model
            .predict(std::slice::from_ref(customer))
            .expect("inference");
        let elapsed = start.elapsed();
        assert!(outcome[0].is_ok());
        if i >= 300 {
            samples.push(elapsed);
        }
    }
    let batch_rows_per_second = rows_per_second(|| {
        let start = Instant::now();
        let outcomes = model.predict(&customers).expect("inference");
        let elapsed = start.elapsed();
        assert!(outcomes.iter().all(Result::is_ok));
        elapsed
    });
    InProcess {
        one_row: latency(samples),
        batch_rows_per_second,
    }
}

struct ThroughServer {
    echo: Latency,
    score_c1: Latency,
    score_c1_by_version: Latency,
    score_c16: Latency,
    score_c16_per_second: f64,
    score_c16_unbatched: Latency,
    score_c16_unbatched_per_second: f64,
    batch_rows_per_second: f64,
    raw_batch_rows_per_second: f64,
    raw_columns_rows_per_second: f64,
}

/// `CONCURRENCY` closed-loop callers of `Score`: latency and requests per second.
async fn concurrent(
    client: &ScoringServiceClient<Channel>,
    requests: &Arc<Vec<pb::ScoreRequest>>,
) -> (Latency, f64) {
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let mut c = client.clone();
            let requests = Arc::clone(requests);
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(LATENCY_SAMPLES / CONCURRENCY * 2);
                for i in 0..LATENCY_SAMPLES / CONCURRENCY * 2 {
                    let request = requests[(worker * 61 + i) % requests.len()].clone();
                    let start = Instant::now();
                    c.score(request).await.expect("score");
                    samples.push(start.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await.expect("worker"));
    }
    let per_second = samples.len() as f64 / started.elapsed().as_secs_f64();
    (latency(samples), per_second)
}

/// `unbatched` is the same server with micro-batching turned off, for comparison.
async fn through_server(
    server: &TestServer,
    unbatched: &TestServer,
    bundled: Bundled,
    rows: &[tests::FixtureCustomer],
) -> ThroughServer {
    let client = server.scoring().await;
    // By alias, as backends call it: the alias table is on the measured path.
    let model = Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: 0,
        alias: bundled.alias.to_owned(),
    });
    let requests: Arc<Vec<pb::ScoreRequest>> = Arc::new(
        rows.iter()
            .take(1_000)
            .map(|r| pb::ScoreRequest {
                model: model.clone(),
                customer: Some(r.to_proto()),
                top_reasons: 0,
            })
            .collect(),
    );

    // The cheapest round trip the server has: a request rejected before any scoring.
    let mut echo = Vec::with_capacity(LATENCY_SAMPLES);
    let mut c = client.clone();
    for i in 0..LATENCY_SAMPLES + 300 {
        let start = Instant::now();
        let status = c
            .score(pb::ScoreRequest::default())
            .await
            .expect_err("no customer");
        let elapsed = start.elapsed();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        if i >= 300 {
            echo.push(elapsed);
        }
    }

    let by_version = Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: bundled.version,
        alias: String::new(),
    });
    // Alternating alias and version number, so machine noise hits both the same.
    let (mut score_c1, mut score_c1_by_version) = (Vec::new(), Vec::new());
    for i in 0..2 * (LATENCY_SAMPLES + 300) {
        let mut request = requests[(i / 2) % requests.len()].clone();
        if i % 2 == 1 {
            request.model = by_version.clone();
        }
        let start = Instant::now();
        c.score(request).await.expect("score");
        let elapsed = start.elapsed();
        match (i >= 600, i % 2) {
            (true, 0) => score_c1.push(elapsed),
            (true, _) => score_c1_by_version.push(elapsed),
            _ => {}
        }
    }

    let (score_c16, score_c16_per_second) = concurrent(&client, &requests).await;
    let (score_c16_unbatched, score_c16_unbatched_per_second) =
        concurrent(&unbatched.scoring().await, &requests).await;

    let batch = pb::ScoreBatchRequest {
        model,
        customers: rows.iter().map(|r| r.to_proto()).collect(),
        ..Default::default()
    };
    let mut batch_rates = Vec::new();
    for run in 0..=BATCH_RUNS {
        let request = batch.clone();
        let start = Instant::now();
        let response = c.score_batch(request).await.expect("batch").into_inner();
        let elapsed = start.elapsed();
        assert_eq!(response.results.len(), BATCH_ROWS);
        if run > 0 {
            batch_rates.push(BATCH_ROWS as f64 / elapsed.as_secs_f64());
        }
    }
    batch_rates.sort_by(f64::total_cmp);
    let raw_batch_rows_per_second = pre_encoded_rows_per_second(server, &batch).await;
    let as_columns = pb::ScoreBatchRequest {
        model: batch.model.clone(),
        columns: Some(tests::customer_columns(&batch.customers)),
        ..Default::default()
    };
    let raw_columns_rows_per_second = pre_encoded_rows_per_second(server, &as_columns).await;

    ThroughServer {
        echo: latency(echo),
        score_c1: latency(score_c1),
        score_c1_by_version: latency(score_c1_by_version),
        score_c16,
        score_c16_per_second,
        score_c16_unbatched,
        score_c16_unbatched_per_second,
        batch_rows_per_second: batch_rates[batch_rates.len() / 2],
        raw_batch_rows_per_second,
        raw_columns_rows_per_second,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "churnserve scoring benchmark: {cores} cores, {BATCH_ROWS}-row batches, {LATENCY_SAMPLES} latency samples"
    );
    let server = runtime.block_on(TestServer::start());
    let unbatched = runtime.block_on(TestServer::start_with(|config| {
        config.no_micro_batching = true;
    }));
    for &bundled in BUNDLED {
        let rows = rows_of(bundled.file);
        let local = in_process(bundled.file, &rows);
        let remote = runtime.block_on(through_server(&server, &unbatched, bundled, &rows));
        let floor = local.one_row.p50 + remote.echo.p50;
        println!(
            "\n{} ({BUNDLED_MODEL} version {}, alias {})",
            bundled.file, bundled.version, bundled.alias
        );
        print_latency("in-process   1 row           ", &local.one_row);
        println!(
            "  in-process   {BATCH_ROWS} rows      {:10.0} rows/s",
            local.batch_rows_per_second
        );
        print_latency("gRPC         empty round trip ", &remote.echo);
        print_latency("gRPC Score   concurrency 1   ", &remote.score_c1);
        print_latency("  same, by version number    ", &remote.score_c1_by_version);
        println!(
            "  gRPC Score   concurrency {CONCURRENCY}  p50 {:8.1} us   p99 {:8.1} us   {:8.0} requests/s",
            micros(remote.score_c16.p50),
            micros(remote.score_c16.p99),
            remote.score_c16_per_second
        );
        println!(
            "    micro-batching off         p50 {:8.1} us   p99 {:8.1} us   {:8.0} requests/s",
            micros(remote.score_c16_unbatched.p50),
            micros(remote.score_c16_unbatched.p99),
            remote.score_c16_unbatched_per_second
        );
        println!(
            "  gRPC ScoreBatch {BATCH_ROWS} rows   {:10.0} rows/s   typed client in this process",
            remote.batch_rows_per_second
        );
        println!(
            "  gRPC ScoreBatch {BATCH_ROWS} rows   {:10.0} rows/s   pre-encoded request, response kept encoded",
            remote.raw_batch_rows_per_second
        );
        println!(
            "  gRPC ScoreBatch {BATCH_ROWS} rows   {:10.0} rows/s   as columns, pre-encoded request",
            remote.raw_columns_rows_per_second
        );
        println!(
            "  ratio Score p50 (c=1) / (in-process 1-row p50 + empty round trip p50) = {:.2}   (target <= 2.00)",
            remote.score_c1.p50.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "  ratio ScoreBatch rows/s / in-process rows/s, typed client          = {:.2}   (target >= 0.70)",
            remote.batch_rows_per_second / local.batch_rows_per_second
        );
        println!(
            "  ratio ScoreBatch rows/s / in-process rows/s, pre-encoded           = {:.2}   (target >= 0.70)",
            remote.raw_batch_rows_per_second / local.batch_rows_per_second
        );
        println!(
            "  ratio ScoreBatch rows/s / in-process rows/s, columns, pre-encoded  = {:.2}   (target >= 0.70)",
            remote.raw_columns_rows_per_second / local.batch_rows_per_second
        );
    }
}

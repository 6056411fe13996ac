//! The metrics port of a real server: probes, a Prometheus scrape whose counters move with
//! the requests sent, drift gauges (the fleet's, refreshed every flush) that rise when
//! skewed customers arrive, this replica's rows by drift bin, and batch sizes
//! that show concurrent `Score` and one-row `ModelInfer` calls sharing ONNX Runtime runs.

use std::time::Duration;

use churn_api::inference as kserve;
use churn_api::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn_api::v1 as pb;
use tests::{BUNDLED_MODEL, PYTHON_TOLERANCE, TestServer, fixture, http_get, sample};

/// Rows scored and ONNX Runtime runs so far, from the batch-size histogram.
async fn engine_rows_and_runs(port: u16) -> (f64, f64) {
    let scrape = http_get(port, "/metrics").await.1;
    (
        sample(&scrape, "churn_batch_rows_sum").expect("batch rows"),
        sample(&scrape, "churn_batch_rows_count").expect("engine calls"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_counters_and_drift_on_the_metrics_port() {
    let (server, port) = TestServer::start_with_http(|config| {
        config.drift_flush_seconds = 1;
    })
    .await;
    assert_eq!(http_get(port, "/healthz").await.0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(port, "/readyz").await.0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(port, "/nope").await.0, "HTTP/1.1 404 Not Found");

    let mut scoring = server.scoring().await;
    let customers = fixture("models/fixtures/telco-logreg.json", "customers");
    let batch = |customers: Vec<pb::Customer>| pb::ScoreBatchRequest {
        model: None,
        customers,
        top_reasons: 0,
        ..Default::default()
    };
    scoring
        .score_batch(batch(customers.iter().map(|c| c.to_proto()).collect()))
        .await
        .expect("scores");
    let invalid = pb::ScoreRequest {
        model: None,
        customer: Some(pb::Customer::default()),
        top_reasons: 0,
    };
    scoring.score(invalid).await.expect_err("invalid");

    let (status, scrape) = http_get(port, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let rows = r#"churn_rows_scored_total{model="telco-churn",version="1"}"#;
    assert_eq!(
        sample(&scrape, rows),
        Some(customers.len() as f64),
        "{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            r#"grpc_server_handled_total{grpc_type="unary",grpc_service="churn.v1.ScoringService",grpc_method="ScoreBatch",grpc_code="OK"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            r#"grpc_server_handled_total{grpc_type="unary",grpc_service="churn.v1.ScoringService",grpc_method="Score",grpc_code="INVALID_ARGUMENT"}"#
        ),
        Some(1.0)
    );
    assert!(scrape.contains(r#"grpc_server_handling_seconds_bucket{le="+Inf",grpc_type="unary",grpc_service="churn.v1.ScoringService",grpc_method="ScoreBatch"} 1"#), "{scrape}");
    assert!(scrape.contains(r#"churn_score_count{model="telco-churn",version="1"}"#));
    let runs = sample(
        &scrape,
        r#"churn_inference_runs_total{model="telco-churn",version="1"}"#,
    );
    assert!(
        runs.is_some_and(|r| r >= 1.0),
        "ONNX Runtime calls are counted: {runs:?}"
    );

    // The bins are computed from the reference on the first scores, and the gauges are
    // refreshed at every flush.
    let contract = r#"churn_feature_psi{model="telco-churn",version="1",feature="contract"}"#;
    let before = poll_sample(port, contract, |_| true).await;
    assert!(
        before < 0.1,
        "hold-out customers against the hold-out reference: {before}"
    );

    let skewed: Vec<pb::Customer> = customers
        .iter()
        .cycle()
        .take(800)
        .map(|c| {
            let mut customer = c.to_proto();
            customer.features.insert(
                "contract".to_owned(),
                pb::FeatureValue {
                    kind: Some(pb::feature_value::Kind::Text("Two year".to_owned())),
                },
            );
            customer
        })
        .collect();
    scoring
        .score_batch(batch(skewed))
        .await
        .expect("scores the skewed batch");
    let after = poll_sample(port, contract, |psi| psi > 0.5).await;
    assert!(
        after > before,
        "four in five recent customers on a two-year contract: {before} -> {after}"
    );
    let scrape = http_get(port, "/metrics").await.1;
    let score_psi = sample(
        &scrape,
        r#"churn_score_psi{model="telco-churn",version="1"}"#,
    )
    .expect("score gauge");
    assert!(
        score_psi > 0.1,
        "the scores shift with the contracts: {score_psi}"
    );
    let two_year = sample(
        &scrape,
        r#"churn_drift_bin_rows_total{model="telco-churn",version="1",feature="contract",bin="Two year"}"#,
    )
    .expect("this replica's rows in the two-year bin");
    let hold_out_two_year = customers
        .iter()
        .filter(|c| {
            c.to_proto().features["contract"].kind
                == Some(pb::feature_value::Kind::Text("Two year".to_owned()))
        })
        .count();
    assert_eq!(two_year, (800 + hold_out_two_year) as f64, "{scrape}");
    assert_eq!(
        sample(
            &scrape,
            r#"churn_drift_window_rows{model="telco-churn",version="1"}"#
        ),
        Some((800 + customers.len()) as f64)
    );
}

/// The sample once it is on the scrape and `ready` accepts it (the gauges follow a flush).
async fn poll_sample(port: u16, name: &str, ready: impl Fn(f64) -> bool) -> f64 {
    let mut last = None;
    for _ in 0..150 {
        last = sample(&http_get(port, "/metrics").await.1, name);
        if last.is_some_and(&ready) {
            return last.expect("checked");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} did not come: last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_come_back_on_answers_and_errors() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let customer = fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto();
    let with_id = |id: &str, customer: pb::Customer| {
        let mut request = tonic::Request::new(pb::ScoreRequest {
            model: None,
            customer: Some(customer),
            top_reasons: 0,
        });
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("ascii"));
        request
    };
    let answer = scoring
        .score(with_id("checkout-42", customer.clone()))
        .await
        .expect("scores");
    assert_eq!(
        answer
            .metadata()
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii")),
        Some("checkout-42")
    );
    let error = scoring
        .score(with_id("checkout-43", pb::Customer::default()))
        .await
        .expect_err("invalid");
    assert_eq!(
        error
            .metadata()
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii")),
        Some("checkout-43")
    );

    let generated = scoring
        .score(pb::ScoreRequest {
            model: None,
            customer: Some(customer.clone()),
            top_reasons: 0,
        })
        .await
        .expect("scores");
    let id = generated
        .metadata()
        .get("x-request-id")
        .expect("an id")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!((id.len(), id.matches('-').count()), (36, 4), "a UUID: {id}");
    let unusable = scoring
        .score(with_id("has space", customer))
        .await
        .expect("scores");
    assert_ne!(
        unusable
            .metadata()
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii")),
        Some("has space")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_score_calls_share_runs_and_keep_their_own_answers() {
    const CALLS: usize = 64;
    const INFER_CALLS: usize = 32;
    for micro_batching in [true, false] {
        let (server, port) = TestServer::start_with_http(|config| {
            config.no_micro_batching = !micro_batching;
        })
        .await;
        let client = server.scoring().await;
        let customers = fixture("models/fixtures/telco-logreg.json", "customers");
        let invalid = |i: usize| i % 16 == 5;
        let calls: Vec<_> = customers[..CALLS]
            .iter()
            .enumerate()
            .map(|(i, customer)| {
                let mut client = client.clone();
                let mut customer = customer.to_proto();
                if invalid(i) {
                    customer.features.remove("tenure");
                }
                tokio::spawn(async move {
                    client
                        .score(pb::ScoreRequest {
                            customer: Some(customer),
                            ..Default::default()
                        })
                        .await
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            let answer = call.await.expect("call task");
            let expected = &customers[i];
            if invalid(i) {
                let status = answer.expect_err("no tenure");
                assert_eq!(status.code(), tonic::Code::InvalidArgument);
                assert!(
                    status.message().contains(&expected.id) && status.message().contains("tenure"),
                    "{}",
                    status.message()
                );
            } else {
                let prediction = answer
                    .expect("scored")
                    .into_inner()
                    .prediction
                    .expect("prediction");
                assert_eq!(prediction.customer_id, expected.id);
                assert!(
                    (prediction.churn_probability - expected.churn_probability).abs()
                        <= PYTHON_TOLERANCE,
                    "{}: {} vs python {}",
                    expected.id,
                    prediction.churn_probability,
                    expected.churn_probability
                );
            }
        }
        let score_runs = engine_rows_and_runs(port).await.1;
        // One-row KServe ModelInfer calls are single-customer calls too.
        let mut kserve = GrpcInferenceServiceClient::new(server.channel().await);
        let metadata = kserve
            .model_metadata(kserve::ModelMetadataRequest {
                name: BUNDLED_MODEL.to_owned(),
                version: "1".to_owned(),
            })
            .await
            .expect("metadata")
            .into_inner();
        let infers: Vec<_> = customers[CALLS..CALLS + INFER_CALLS]
            .iter()
            .map(|customer| {
                let mut kserve = kserve.clone();
                let request = kserve::ModelInferRequest {
                    model_name: BUNDLED_MODEL.to_owned(),
                    model_version: "1".to_owned(),
                    inputs: tests::kserve_inputs(&metadata, std::slice::from_ref(customer)),
                    ..Default::default()
                };
                tokio::spawn(async move { kserve.model_infer(request).await })
            })
            .collect();
        for (infer, expected) in infers.into_iter().zip(&customers[CALLS..]) {
            let response = infer
                .await
                .expect("call task")
                .expect("infers")
                .into_inner();
            let probability = response.outputs[0]
                .contents
                .as_ref()
                .expect("typed contents")
                .fp64_contents[0];
            assert!(
                (probability - expected.churn_probability).abs() <= PYTHON_TOLERANCE,
                "{}: {probability} vs python {}",
                expected.id,
                expected.churn_probability
            );
        }
        let (rows, runs) = engine_rows_and_runs(port).await;
        let infer_runs = runs - score_runs;
        assert_eq!(
            rows,
            (CALLS + INFER_CALLS) as f64,
            "every call reached the engine once"
        );
        if micro_batching {
            assert!(
                score_runs <= CALLS as f64 / 2.0,
                "{score_runs} engine calls for {CALLS} concurrent Score calls"
            );
            assert!(
                infer_runs <= INFER_CALLS as f64 / 2.0,
                "{infer_runs} engine calls for {INFER_CALLS} concurrent ModelInfer calls"
            );
        } else {
            assert_eq!(
                (score_runs, infer_runs),
                (CALLS as f64, INFER_CALLS as f64),
                "one engine call per call when turned off"
            );
        }
    }
}

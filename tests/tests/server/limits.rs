//! Load shedding and timeouts through the real server: a request beyond the concurrency
//! and queue limits is refused RESOURCE_EXHAUSTED at once while health checks still
//! answer, and a request running past its deadline ends with the deadline's code.

use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use tests::{BUNDLED_MODEL, TestServer, fixture};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;

/// A request that keeps the server busy for a while: every hold-out customer evaluated.
fn slow_request() -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        model: Some(pb::ModelRef {
            name: BUNDLED_MODEL.to_owned(),
            version: 2,
            alias: String::new(),
        }),
        dataset: "telco-holdout".to_owned(),
        rows: Vec::new(),
        threshold: 0.0,
        profit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limits_requests_are_shed_at_once() {
    let server = TestServer::start_with(|config| {
        config.max_concurrent_requests = 1;
        config.max_queued_requests = 0;
        config.queue_timeout_ms = 10;
    })
    .await;
    let mut busy = server.scoring().await;
    let running = tokio::spawn(async move {
        let mut successes = 0;
        for _ in 0..20 {
            match busy.evaluate(slow_request()).await {
                Ok(_) => successes += 1,
                // The scores below take the slot at times: then this one is shed.
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
            }
        }
        successes
    });
    let customer = fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto();
    let mut scoring = server.scoring().await;
    let mut shed = 0;
    let mut fastest_refusal = Duration::MAX;
    for _ in 0..200 {
        let start = Instant::now();
        let request = pb::ScoreRequest {
            model: None,
            customer: Some(customer.clone()),
            top_reasons: 0,
        };
        if let Err(status) = scoring.score(request).await {
            assert_eq!(
                status.code(),
                Code::ResourceExhausted,
                "{}",
                status.message()
            );
            assert!(
                status.message().contains("at capacity"),
                "{}",
                status.message()
            );
            fastest_refusal = fastest_refusal.min(start.elapsed());
            shed += 1;
        }
        let health = HealthClient::new(server.channel().await)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(health.is_ok(), "health checks are never shed");
    }
    assert!(
        shed > 0,
        "with one slot held by evaluations, some scores are refused"
    );
    assert!(
        fastest_refusal < Duration::from_millis(500),
        "refusals do not wait: {fastest_refusal:?}"
    );
    assert!(
        running.await.expect("evaluations") > 0,
        "admitted requests complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_cut_off() {
    let server = TestServer::start_with(|config| config.request_timeout_ms = 1).await;
    let status = server
        .scoring()
        .await
        .evaluate(slow_request())
        .await
        .expect_err("the server's limit");
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{:?}: {}",
        status.code(),
        status.message()
    );

    let patient = TestServer::start().await;
    let mut request = tonic::Request::new(slow_request());
    request.set_timeout(Duration::from_millis(1));
    let status = patient
        .scoring()
        .await
        .evaluate(request)
        .await
        .expect_err("the client's grpc-timeout");
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{:?}",
        status.code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_an_open_stream_where_to_resume() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let (requests, inbound) = tokio::sync::mpsc::channel(4);
    let customers: Vec<pb::Customer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .take(5)
        .map(|c| c.to_proto())
        .collect();
    requests
        .send(pb::ScoreBatchRequest {
            model: None,
            customers,
            top_reasons: 0,
            ..Default::default()
        })
        .await
        .expect("sends");
    let mut answers = scoring
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(inbound))
        .await
        .expect("stream")
        .into_inner();
    let first = answers
        .message()
        .await
        .expect("first answer")
        .expect("a message");
    assert_eq!(first.results.len(), 5);

    let stopping = tokio::spawn(server.stop());
    let status = answers.message().await.expect_err("told to go elsewhere");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("resume from row 5"),
        "{}",
        status.message()
    );
    drop(requests);
    let stopped = tokio::time::timeout(Duration::from_secs(10), stopping).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stops cleanly: {stopped:?}"
    );
}

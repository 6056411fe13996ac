//! Delayed outcomes against a real server: a prediction log written into its registry
//! (`models/fixtures/outcomes.json`) and outcomes recorded through `RecordOutcomes` give,
//! cohort by cohort, the realized metrics scikit-learn computes on the same join in pandas
//! and the estimate numpy computes; recording twice changes nothing; answers served by the
//! server are logged and labelled; bad requests get a clear status and record nothing; the
//! latest cohort's ROC AUC is on `/metrics`.

use std::time::Duration;

use churn_api::inference as kserve_pb;
use churn_api::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_registry::{LoggedPrediction, OutcomeRecord, Registry};
use serde_json::Value;
use tests::{
    BUNDLED_MODEL, TestServer, assert_close, assert_estimate_matches, assert_metrics_match,
    fixture, http_get, kserve_inputs, metrics_from_proto, outcomes_fixture,
};
use tonic::Code;
use tonic::transport::Channel;

fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos / 1_000_000)
}

fn version(number: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: number,
        alias: String::new(),
    })
}

async fn monitoring(server: &TestServer) -> MonitoringServiceClient<Channel> {
    MonitoringServiceClient::new(server.channel().await)
}

/// The server's registry, opened beside it once the server has started (and migrated it).
async fn beside(server: &TestServer) -> Registry {
    server
        .registry()
        .await
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("the server answers");
    Registry::open(server.data_dir())
        .await
        .expect("the server's registry")
}

fn outcome(customer_id: &str, churned: bool, observed_at: i64) -> pb::Outcome {
    pb::Outcome {
        customer_id: customer_id.to_owned(),
        churned,
        observed_at: Some(timestamp(observed_at)),
    }
}

fn fixture_outcomes(fixture: &Value) -> Vec<pb::Outcome> {
    fixture["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            outcome(
                o["customer_id"].as_str().expect("id"),
                o["churned"].as_bool().expect("churned"),
                o["observed_at"].as_i64().expect("time"),
            )
        })
        .collect()
}

async fn performance(
    client: &mut MonitoringServiceClient<Channel>,
    request: &Value,
) -> pb::RealizedPerformanceResponse {
    let cohort = match request["cohort"].as_str().expect("cohort") {
        "DAY" => pb::CohortPeriod::Day,
        "WEEK" => pb::CohortPeriod::Week,
        _ => pb::CohortPeriod::Month,
    };
    client
        .realized_performance(pb::RealizedPerformanceRequest {
            model: version(1),
            since: Some(timestamp(request["since"].as_i64().expect("since"))),
            until: Some(timestamp(request["until"].as_i64().expect("until"))),
            cohort: cohort.into(),
            horizon_days: request["horizon_days"].as_u64().expect("horizon") as u32,
        })
        .await
        .expect("realized performance")
        .into_inner()
}

fn assert_cohorts_match(context: &str, ours: &[pb::Cohort], expected: &Value) {
    let expected = expected.as_array().expect("cohorts");
    assert_eq!(ours.len(), expected.len(), "{context}: cohorts");
    for (cohort, python) in ours.iter().zip(expected) {
        let start = millis(cohort.start.as_ref().expect("start"));
        let context = format!("{context}, cohort {start}");
        assert_eq!(start, python["start"].as_i64().expect("start"), "{context}");
        for (name, value) in [
            ("scored", cohort.scored),
            ("labelled", cohort.labelled),
            ("churned", cohort.churned),
        ] {
            assert_eq!(
                value,
                python[name].as_u64().expect("count"),
                "{context} {name}"
            );
        }
        match (&cohort.realized, &python["realized"]) {
            (None, Value::Null) => {}
            (Some(realized), expected) if !expected.is_null() => {
                assert_metrics_match(&context, &metrics_from_proto(realized), expected);
                // The campaign profit with the defaults, as EMP-PY computes it.
                let profit = realized.profit.as_ref().expect("realized profit");
                assert_eq!(
                    profit.parameters,
                    Some(pb::ProfitParameters {
                        clv: 200.0,
                        incentive_cost: 10.0,
                        contact_cost: 1.0,
                        acceptance_alpha: 6.0,
                        acceptance_beta: 14.0,
                    })
                );
                for (name, value) in [
                    ("empc", profit.empc),
                    ("empc_fraction", profit.empc_fraction),
                    ("mpc", profit.mpc),
                    ("mpc_fraction", profit.mpc_fraction),
                ] {
                    assert_close(
                        &format!("{context} profit {name}"),
                        value,
                        &expected["profit"][name],
                    );
                }
            }
            (ours, python) => panic!("{context}: realized {ours:?} vs pandas {python}"),
        }
        let estimated = cohort.estimated.as_ref().expect("estimated");
        assert_estimate_matches(
            &context,
            &churn_metrics::EstimatedMetrics {
                roc_auc: estimated.roc_auc,
                accuracy: estimated.accuracy,
                precision: estimated.precision,
                recall: estimated.recall,
                f1: estimated.f1,
            },
            &python["estimated"],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohorts_match_scikit_learn_on_the_pandas_join_and_recording_twice_changes_nothing() {
    let fixture = outcomes_fixture();
    let server = TestServer::start().await;
    let registry = beside(&server).await;
    let logged: Vec<LoggedPrediction> = fixture["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| LoggedPrediction {
            name: fixture["model"].as_str().expect("model").to_owned(),
            alias: String::new(),
            version: fixture["version"].as_u64().expect("version") as u32,
            customer_id: p["customer_id"].as_str().expect("id").to_owned(),
            probability: p["probability"].as_f64().expect("probability"),
            will_churn: p["will_churn"].as_bool().expect("decision"),
            scored_at_millis: p["scored_at"].as_i64().expect("time"),
        })
        .collect();
    registry.log_predictions(&logged).await.expect("logged");
    let mut client = monitoring(&server).await;
    let outcomes = fixture_outcomes(&fixture);
    let recorded = client
        .record_outcomes(pb::RecordOutcomesRequest {
            outcomes: outcomes.clone(),
        })
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(recorded.recorded, outcomes.len() as u64);
    assert!(
        recorded.matched > 0 && recorded.matched < recorded.recorded,
        "{recorded:?}"
    );
    for request in fixture["requests"].as_array().expect("requests") {
        let context = format!(
            "{} cohorts, {}-day horizon",
            request["cohort"], request["horizon_days"]
        );
        let answer = performance(&mut client, request).await;
        assert_eq!(answer.served_by.as_ref().expect("served_by").version, 1);
        assert_cohorts_match(&context, &answer.cohorts, &request["cohorts"]);
    }
    let again = client
        .record_outcomes(pb::RecordOutcomesRequest { outcomes })
        .await
        .expect("recorded again")
        .into_inner();
    assert_eq!(again, recorded);
    let request = &fixture["requests"][1];
    assert_cohorts_match(
        "after recording twice",
        &performance(&mut client, request).await.cohorts,
        &request["cohorts"],
    );
    registry.close().await;
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_answers_are_logged_and_labelled() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let customers: Vec<pb::Customer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .take(40)
        .map(|c| c.to_proto())
        .collect();
    let mut scoring = server.scoring().await;
    for customer in &customers[..10] {
        scoring
            .score(pb::ScoreRequest {
                model: version(1),
                customer: Some(customer.clone()),
                top_reasons: 0,
            })
            .await
            .expect("scores");
    }
    let mut anonymous = customers[10..].to_vec();
    anonymous[0].customer_id.clear();
    scoring
        .score_batch(pb::ScoreBatchRequest {
            model: version(1),
            customers: anonymous,
            ..Default::default()
        })
        .await
        .expect("scores");
    // KServe V2 rows carry their ids in the optional `customer_id` input.
    let mut kserve = GrpcInferenceServiceClient::new(server.channel().await);
    let metadata = kserve
        .model_metadata(kserve_pb::ModelMetadataRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: "1".to_owned(),
        })
        .await
        .expect("metadata")
        .into_inner();
    let v2_rows = &fixture("models/fixtures/telco-logreg.json", "customers")[40..42];
    let mut inputs = kserve_inputs(&metadata, v2_rows);
    inputs.push(kserve_pb::model_infer_request::InferInputTensor {
        name: "customer_id".to_owned(),
        datatype: "BYTES".to_owned(),
        shape: vec![2, 1],
        parameters: Default::default(),
        contents: Some(kserve_pb::InferTensorContents {
            bytes_contents: vec![b"V2-0".to_vec(), b"V2-1".to_vec()],
            ..Default::default()
        }),
    });
    kserve
        .model_infer(kserve_pb::ModelInferRequest {
            model_name: BUNDLED_MODEL.to_owned(),
            model_version: "1".to_owned(),
            inputs,
            ..Default::default()
        })
        .await
        .expect("infers");
    let mut client = monitoring(&server).await;
    let ask = pb::RealizedPerformanceRequest {
        model: version(1),
        cohort: pb::CohortPeriod::Day.into(),
        ..Default::default()
    };
    let mut scored = 0;
    for _ in 0..100 {
        let answer = client
            .realized_performance(ask.clone())
            .await
            .expect("asks")
            .into_inner();
        scored = answer.cohorts.iter().map(|c| c.scored).sum::<u64>();
        if scored == 41 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        scored, 41,
        "every answer with a customer id, off the request path"
    );
    let later = churn_registry::now_millis() + 60_000;
    let outcomes: Vec<pb::Outcome> = customers
        .iter()
        .enumerate()
        .map(|(k, c)| outcome(&c.customer_id, k % 3 == 0, later))
        .collect();
    let recorded = client
        .record_outcomes(pb::RecordOutcomesRequest { outcomes })
        .await
        .expect("records")
        .into_inner();
    assert_eq!(
        (recorded.recorded, recorded.matched),
        (40, 39),
        "the anonymous one matches nothing"
    );
    let answer = client
        .realized_performance(pb::RealizedPerformanceRequest {
            until: Some(timestamp(later)),
            ..ask
        })
        .await
        .expect("asks")
        .into_inner();
    let cohort = &answer.cohorts[0];
    assert_eq!((cohort.scored, cohort.labelled), (41, 39));
    assert!(cohort.realized.is_some());
    let (status, page) = http_get(port, &format!("/models/{BUNDLED_MODEL}/versions/1")).await;
    assert!(status.contains("200"), "{status}");
    assert!(
        page.contains(r#"role="img" aria-label="Realized performance""#),
        "the console's version page charts the cohorts"
    );
    for series in ["realized", "estimated"] {
        assert!(
            page.contains(&format!(r#"data-series="{series}" data-points="1""#)),
            "{series}: one weekly cohort"
        );
    }
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_clear_status_and_record_nothing() {
    let server = TestServer::start().await;
    let registry = beside(&server).await;
    // Within the retention, which the server enforces from its start.
    let scored_at = churn_registry::now_millis() - 86_400_000;
    let observed_at = scored_at + 1_000;
    registry
        .log_predictions(&[LoggedPrediction {
            name: BUNDLED_MODEL.to_owned(),
            alias: String::new(),
            version: 1,
            customer_id: "C1".to_owned(),
            probability: 0.75,
            will_churn: true,
            scored_at_millis: scored_at,
        }])
        .await
        .expect("logged");
    let mut client = monitoring(&server).await;
    let year_10000 = prost_types::Timestamp {
        seconds: 253_402_300_800,
        nanos: 0,
    };
    let cases = [
        (
            vec![
                outcome("C1", true, observed_at),
                outcome("", true, observed_at),
            ],
            Code::InvalidArgument,
            "outcomes[1].customer_id",
        ),
        (
            vec![
                outcome("C1", true, observed_at),
                pb::Outcome {
                    customer_id: "C1".to_owned(),
                    churned: true,
                    observed_at: Some(year_10000),
                },
            ],
            Code::InvalidArgument,
            "outcomes[1].observed_at",
        ),
        (
            vec![pb::Outcome {
                customer_id: "C1".to_owned(),
                churned: false,
                observed_at: None,
            }],
            Code::InvalidArgument,
            "outcomes[0].observed_at",
        ),
        (
            (0..1_000_000)
                .map(|k| outcome(&format!("C{k}"), false, observed_at))
                .collect(),
            Code::ResourceExhausted,
            "max_batch_rows",
        ),
    ];
    for (outcomes, code, named) in cases {
        let status = client
            .record_outcomes(pb::RecordOutcomesRequest { outcomes })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(named),
            "{named}: {}",
            status.message()
        );
    }
    let status = client
        .realized_performance(pb::RealizedPerformanceRequest {
            model: version(1),
            since: Some(timestamp(observed_at)),
            until: Some(timestamp(scored_at)),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("until:"),
        "{}",
        status.message()
    );
    let answer = client
        .realized_performance(pb::RealizedPerformanceRequest {
            model: version(1),
            ..Default::default()
        })
        .await
        .expect("asks")
        .into_inner();
    assert_eq!(answer.cohorts.len(), 1);
    assert_eq!(
        answer.cohorts[0].labelled, 0,
        "no refused request recorded anything"
    );
    registry.close().await;
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_cohorts_roc_auc_is_on_the_metrics() {
    let dir = tempfile::tempdir().expect("temporary data directory");
    let server = TestServer::start_on(dir.path(), |_| {}).await;
    let registry = beside(&server).await;
    // Last week's hold-out customers, and what became of them.
    let fixture = tests::metrics_fixture();
    let case = &fixture["cases"][0];
    let scored_at = churn_registry::now_millis() - 7 * 86_400_000;
    let ids: Vec<String> = (0..case["scores"].as_array().expect("scores").len())
        .map(|k| format!("M{k}"))
        .collect();
    let logged: Vec<LoggedPrediction> = case["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .zip(&ids)
        .map(|(p, id)| LoggedPrediction {
            name: BUNDLED_MODEL.to_owned(),
            alias: String::new(),
            version: 1,
            customer_id: id.clone(),
            probability: p.as_f64().expect("probability"),
            will_churn: p.as_f64().expect("probability") >= 0.5,
            scored_at_millis: scored_at,
        })
        .collect();
    registry.log_predictions(&logged).await.expect("logged");
    let outcomes: Vec<OutcomeRecord> = case["churned"]
        .as_array()
        .expect("labels")
        .iter()
        .zip(&ids)
        .map(|(churned, id)| OutcomeRecord {
            customer_id: id.clone(),
            churned: churned.as_bool().expect("label"),
            observed_at_millis: scored_at + 1,
        })
        .collect();
    registry
        .record_outcomes(&outcomes, 90 * 86_400_000)
        .await
        .expect("recorded");
    registry.close().await;
    server.stop().await.expect("stops");
    // The signal is read when the server starts, then every --performance-check-minutes.
    let port = tests::free_port();
    let server = TestServer::start_on(dir.path(), |config| {
        config.http_listen.0 = Some(([127, 0, 0, 1], port).into());
    })
    .await;
    let series = format!("churn_realized_roc_auc{{model=\"{BUNDLED_MODEL}\",version=\"1\"}}");
    let mut realized = None;
    for _ in 0..100 {
        realized = tests::sample(&http_get(port, "/metrics").await.1, &series);
        if realized.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = case["expected"]["roc_auc"].as_f64().expect("roc_auc");
    let realized = realized.expect("the realized ROC AUC gauge");
    assert!(
        (realized - expected).abs() < 1e-9,
        "{realized} vs scikit-learn {expected}"
    );
    let estimated = format!("churn_estimated_roc_auc{{model=\"{BUNDLED_MODEL}\",version=\"1\"}}");
    assert!(tests::sample(&http_get(port, "/metrics").await.1, &estimated).is_some());
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_can_be_sampled_by_customer_or_turned_off() {
    let customers: Vec<pb::Customer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .map(|c| c.to_proto())
        .collect();
    let rows: Vec<pb::Customer> = (0..400)
        .map(|k| {
            let mut customer = customers[k % customers.len()].clone();
            customer.customer_id = format!("S{k}");
            customer
        })
        .collect();
    let mut logged = Vec::new();
    for (switch, rate) in [
        (churnserve::Switch::On, 0.5),
        (churnserve::Switch::Off, 1.0),
    ] {
        let server = TestServer::start_with(|config| {
            config.prediction_log = switch;
            config.prediction_log_sample = rate;
        })
        .await;
        let mut scoring = server.scoring().await;
        scoring
            .score_batch(pb::ScoreBatchRequest {
                model: version(1),
                customers: rows.clone(),
                ..Default::default()
            })
            .await
            .expect("scores");
        // Past the writer's 200 ms batching, with room for a slow machine.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cohorts = monitoring(&server)
            .await
            .realized_performance(pb::RealizedPerformanceRequest {
                model: version(1),
                ..Default::default()
            })
            .await
            .expect("asks")
            .into_inner()
            .cohorts;
        logged.push(cohorts.iter().map(|c| c.scored).sum::<u64>());
        server.stop().await.expect("stops");
    }
    assert!(
        (140..=260).contains(&logged[0]),
        "about half of 400 customers at a sample of 0.5: {}",
        logged[0]
    );
    assert_eq!(logged[1], 0, "--prediction-log off logs nothing");
}

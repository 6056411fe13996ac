//! Traffic splits against a real server: every customer is answered by the arm the
//! contract's hash gives (the vectors of `models/fixtures/assignment.json`, written by an
//! independent Python implementation) on Score, ScoreBatch, ScoreStream, ScoreArrow and
//! both V2 protocols; malformed splits get the contract's status naming the field;
//! `SetAlias` ends a split and its report stays readable; `ExperimentReport` counts what
//! the arms answered and compares them as the statsmodels-checked functions do.

use std::collections::HashMap;
use std::time::Duration;

use churn_api::inference as kserve_pb;
use churn_api::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_metrics::{Proportion, compare_rates};
use serde_json::Value;
use tests::{
    BUNDLED_MODEL, FixtureCustomer, TestServer, arrow_ipc, arrow_results, customer_columns,
    fixture, http_get, http_request, kserve_inputs, repo_path, sample,
};
use tonic::Code;
use tonic::transport::Channel;

fn split_request(arms: &[(u32, u32)], salt: &str) -> pb::SetTrafficSplitRequest {
    pb::SetTrafficSplitRequest {
        name: BUNDLED_MODEL.to_owned(),
        alias: "production".to_owned(),
        arms: arms
            .iter()
            .map(|&(version, weight)| pb::TrafficArm { version, weight })
            .collect(),
        salt: salt.to_owned(),
    }
}

fn production() -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: 0,
        alias: "production".to_owned(),
    })
}

fn customers(count: usize) -> Vec<FixtureCustomer> {
    fixture("models/fixtures/telco-logreg.json", "customers")
        .into_iter()
        .take(count)
        .collect()
}

/// `customers` renamed to the ids of the assignment vectors of one split.
fn with_ids(customers: &[FixtureCustomer], ids: &[String]) -> Vec<pb::Customer> {
    customers
        .iter()
        .cycle()
        .zip(ids)
        .map(|(customer, id)| pb::Customer {
            customer_id: id.clone(),
            ..customer.to_proto()
        })
        .collect()
}

/// The vectors of one (salt, weights) split: customer ids and their arms.
fn vectors(salt: &str, weights: &[u32]) -> (Vec<String>, Vec<usize>) {
    let text = std::fs::read_to_string(repo_path("models/fixtures/assignment.json"))
        .expect("assignment fixture");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    cases
        .iter()
        .filter(|case| {
            case["salt"] == salt
                && case["weights"].as_array().expect("weights").len() == weights.len()
                && case["weights"]
                    .as_array()
                    .expect("weights")
                    .iter()
                    .zip(weights)
                    .all(|(a, b)| a.as_u64() == Some(u64::from(*b)))
                && !case["customer_id"].as_str().expect("id").is_empty()
        })
        .map(|case| {
            (
                case["customer_id"].as_str().expect("id").to_owned(),
                case["arm"].as_u64().expect("arm") as usize,
            )
        })
        .unzip()
}

async fn set_split(
    registry: &mut RegistryServiceClient<Channel>,
    arms: &[(u32, u32)],
    salt: &str,
) -> pb::TrafficSplit {
    registry
        .set_traffic_split(split_request(arms, salt))
        .await
        .expect("split")
        .into_inner()
}

/// A third version of the bundled model (the logistic regression again).
async fn third_version(server: &TestServer) -> u32 {
    let mut registry = server.registry().await;
    tests::register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: BUNDLED_MODEL.to_owned(),
            ..Default::default()
        },
        &std::fs::read(repo_path("models/telco-logreg.onnx")).expect("model"),
    )
    .await
    .expect("registered")
    .version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scoring_path_answers_by_the_arm_of_the_contracts_hash() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let third = third_version(&server).await;
    let mut registry = server.registry().await;
    let mut scoring = server.scoring().await;
    let pool = customers(20);
    for (salt, weights) in [
        ("exp-2026-12", vec![50, 50]),
        ("retention", vec![90, 10]),
        ("three arms", vec![1, 2, 3]),
    ] {
        let versions: Vec<u32> = [1, 2, third][..weights.len()].to_vec();
        let arms: Vec<(u32, u32)> = versions.iter().copied().zip(weights.clone()).collect();
        let split = set_split(&mut registry, &arms, salt).await;
        assert_eq!(split.salt, salt);
        let (ids, expected) = vectors(salt, &weights);
        assert!(ids.len() > 60, "{salt}: {} vectors", ids.len());
        let expected: Vec<u32> = expected.iter().map(|&arm| versions[arm]).collect();
        let batch = with_ids(&pool, &ids);

        let answered = scoring
            .score_batch(pb::ScoreBatchRequest {
                model: production(),
                customers: batch.clone(),
                ..Default::default()
            })
            .await
            .expect("batch")
            .into_inner();
        assert!(
            answered.served_by.is_none(),
            "a split names each row's version"
        );
        let rows: Vec<u32> = answered
            .results
            .iter()
            .map(|r| r.served_by.as_ref().expect("every row's version").version)
            .collect();
        assert_eq!(rows, expected, "{salt}: ScoreBatch");

        let columnar = scoring
            .score_batch(pb::ScoreBatchRequest {
                model: production(),
                columns: Some(customer_columns(&batch)),
                ..Default::default()
            })
            .await
            .expect("columns")
            .into_inner();
        let rows: Vec<u32> = columnar
            .results
            .iter()
            .map(|r| r.served_by.as_ref().expect("version").version)
            .collect();
        assert_eq!(rows, expected, "{salt}: columns");

        for (customer, version) in batch.iter().zip(&expected).take(5) {
            let one = scoring
                .score(pb::ScoreRequest {
                    model: production(),
                    customer: Some(customer.clone()),
                    top_reasons: 0,
                })
                .await
                .expect("score")
                .into_inner();
            assert_eq!(one.served_by.expect("served").version, *version, "Score");
        }

        let messages: Vec<pb::ScoreBatchRequest> = batch
            .chunks(25)
            .map(|chunk| pb::ScoreBatchRequest {
                model: production(),
                customers: chunk.to_vec(),
                ..Default::default()
            })
            .collect();
        let streamed = scoring
            .score_stream(tokio_stream::iter(messages))
            .await
            .expect("stream");
        let mut streamed = streamed.into_inner();
        let mut rows = Vec::new();
        while let Some(answer) = streamed.message().await.expect("answer") {
            rows.extend(
                answer
                    .results
                    .iter()
                    .map(|r| r.served_by.as_ref().expect("version").version),
            );
        }
        assert_eq!(rows, expected, "{salt}: ScoreStream");

        let arrow = scoring
            .score_arrow(tokio_stream::iter([pb::ScoreArrowRequest {
                model: production(),
                arrow_ipc: arrow_ipc(&customer_columns(&batch)),
                first_row: 0,
            }]))
            .await
            .expect("arrow");
        let mut arrow = arrow.into_inner();
        let answer = arrow.message().await.expect("answer").expect("one");
        let rows: Vec<u32> = arrow_results(&answer)
            .iter()
            .map(|r| r.served_by.as_ref().expect("a version column").version)
            .collect();
        assert_eq!(rows, expected, "{salt}: ScoreArrow");

        // Both V2 protocols: the ids in the `customer_id` input, the versions in a parameter.
        let listed: Vec<String> = expected.iter().map(u32::to_string).collect();
        let v2_rows: Vec<FixtureCustomer> = pool.iter().cycle().take(ids.len()).cloned().collect();
        let mut kserve = GrpcInferenceServiceClient::new(server.channel().await);
        let metadata = kserve
            .model_metadata(kserve_pb::ModelMetadataRequest {
                name: BUNDLED_MODEL.to_owned(),
                version: String::new(),
            })
            .await
            .expect("metadata")
            .into_inner();
        let mut inputs = kserve_inputs(&metadata, &v2_rows);
        let without_ids = inputs.clone();
        inputs.push(kserve_pb::model_infer_request::InferInputTensor {
            name: "customer_id".to_owned(),
            datatype: "BYTES".to_owned(),
            shape: vec![ids.len() as i64, 1],
            parameters: Default::default(),
            contents: Some(kserve_pb::InferTensorContents {
                bytes_contents: ids.iter().map(|id| id.clone().into_bytes()).collect(),
                ..Default::default()
            }),
        });
        let inferred = kserve
            .model_infer(kserve_pb::ModelInferRequest {
                model_name: BUNDLED_MODEL.to_owned(),
                inputs,
                ..Default::default()
            })
            .await
            .expect("infer")
            .into_inner();
        let parameter = inferred
            .parameters
            .get("served_versions")
            .expect("versions");
        assert_eq!(
            parameter.parameter_choice,
            Some(kserve_pb::infer_parameter::ParameterChoice::StringParam(
                listed.join(",")
            ))
        );
        let refused = kserve
            .model_infer(kserve_pb::ModelInferRequest {
                model_name: BUNDLED_MODEL.to_owned(),
                inputs: without_ids,
                ..Default::default()
            })
            .await
            .expect_err("no customer ids");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().contains("customer_id"),
            "{}",
            refused.message()
        );

        let mut rest_inputs = vec![serde_json::json!(
            {"name": "customer_id", "datatype": "BYTES", "shape": [1, 1], "data": [ids[0]]}
        )];
        for (name, value) in &v2_rows[0].features {
            let (datatype, data) = match value {
                tests::FixtureValue::Text(text) => ("BYTES", serde_json::json!([text])),
                tests::FixtureValue::Number(v) => ("FP64", serde_json::json!([v])),
                tests::FixtureValue::Missing => ("FP64", serde_json::json!([null])),
            };
            rest_inputs.push(serde_json::json!(
                {"name": name, "datatype": datatype, "shape": [1, 1], "data": data}
            ));
        }
        let body = serde_json::json!({ "inputs": rest_inputs });
        let (head, answer) = http_request(
            port,
            "POST",
            &format!("/v2/models/{BUNDLED_MODEL}/infer"),
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{answer}");
        let answer: Value = serde_json::from_str(&answer).expect("JSON");
        assert_eq!(answer["model_version"], listed[0], "{answer}");
        assert_eq!(
            answer["parameters"]["served_versions"], listed[0],
            "{answer}"
        );
    }

    // A row without a customer id has no arm; a Score without one is refused.
    let mut anonymous = with_ids(&pool, &["C-1".to_owned(), String::new()]);
    let rows = scoring
        .score_batch(pb::ScoreBatchRequest {
            model: production(),
            customers: anonymous.clone(),
            ..Default::default()
        })
        .await
        .expect("batch")
        .into_inner()
        .results;
    assert!(rows[0].served_by.is_some());
    match &rows[1].outcome {
        Some(pb::row_result::Outcome::Error(error)) => {
            assert_eq!(error.feature, "customer_id");
            assert!(error.message.starts_with("row 1:"), "{}", error.message);
        }
        other => panic!("row 1 without an id: {other:?}"),
    }
    let refused = scoring
        .score(pb::ScoreRequest {
            model: production(),
            customer: anonymous.pop(),
            top_reasons: 0,
        })
        .await
        .expect_err("no id");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("customer_id"),
        "{}",
        refused.message()
    );

    // Naming a version bypasses the split.
    let pinned = scoring
        .score_batch(pb::ScoreBatchRequest {
            model: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version: 2,
                alias: String::new(),
            }),
            customers: with_ids(&pool, &["C-1".to_owned()]),
            ..Default::default()
        })
        .await
        .expect("by number")
        .into_inner();
    assert_eq!(pinned.served_by.expect("one version").version, 2);
    assert!(pinned.results[0].served_by.is_none());

    let (_, scrape) = http_get(port, "/metrics").await;
    let routed = sample(
        &scrape,
        &format!("churn_split_rows_total{{model=\"{BUNDLED_MODEL}\",alias=\"production\",version=\"{third}\"}}"),
    )
    .expect("rows per arm on /metrics");
    assert!(routed > 0.0, "{routed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_splits_get_the_contracts_status_naming_the_field() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    for (arms, field) in [
        (&[][..], "arms"),
        (&[(1, 0), (2, 0)][..], "arms.weight"),
        (&[(1, 1), (1, 1)][..], "arms[1].version"),
    ] {
        let status = registry
            .set_traffic_split(split_request(arms, ""))
            .await
            .expect_err("malformed");
        assert_eq!(status.code(), Code::InvalidArgument, "{arms:?}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let unknown = registry
        .set_traffic_split(split_request(&[(1, 1), (9, 1)], ""))
        .await
        .expect_err("unknown version");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let third = third_version(&server).await;
    registry
        .archive_model_version(pb::ArchiveModelVersionRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: third,
        })
        .await
        .expect("archived");
    let archived = registry
        .set_traffic_split(split_request(&[(1, 1), (third, 1)], ""))
        .await
        .expect_err("archived");
    assert_eq!(archived.code(), Code::FailedPrecondition, "{archived:?}");
    let none = registry
        .get_traffic_split(pb::GetTrafficSplitRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: String::new(),
        })
        .await
        .expect_err("no split");
    assert_eq!(none.code(), Code::NotFound);

    // An arm cannot be archived while its split runs.
    let split = set_split(&mut registry, &[(1, 1), (2, 1)], "").await;
    assert_eq!(split.salt.len(), 32, "the server picks a salt");
    let busy = registry
        .archive_model_version(pb::ArchiveModelVersionRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 2,
        })
        .await
        .expect_err("an arm");
    assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
}

/// A churn label for a customer, fixed by their index: about a third churn, more of them
/// among the riskier, so that every arm has both classes.
fn label(index: usize, probability: f64) -> bool {
    let noise = ((index * 7919) % 101) as f64 / 101.0;
    probability + 0.4 * noise > 0.6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_each_arms_customers_and_outcomes_and_survives_set_alias() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let mut registry = server.registry().await;
    let mut scoring = server.scoring().await;
    let mut monitoring = MonitoringServiceClient::new(server.channel().await);
    // A fixed salt, so that each run deals the customers (and their labels) alike.
    let split = set_split(&mut registry, &[(1, 60), (2, 40)], "report-test").await;
    let got = registry
        .get_traffic_split(pb::GetTrafficSplitRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
        })
        .await
        .expect("the running split")
        .into_inner();
    assert_eq!(got, split);

    let pool = customers(202);
    let batch: Vec<pb::Customer> = pool.iter().map(FixtureCustomer::to_proto).collect();
    let answered = scoring
        .score_batch(pb::ScoreBatchRequest {
            model: production(),
            customers: batch.clone(),
            ..Default::default()
        })
        .await
        .expect("scored")
        .into_inner();
    // Scored twice: only the first prediction through the split counts.
    scoring
        .score_batch(pb::ScoreBatchRequest {
            model: production(),
            customers: batch[..50].to_vec(),
            ..Default::default()
        })
        .await
        .expect("scored again");

    // The independent tally, from the answers themselves.
    let mut by_arm: HashMap<u32, (u64, Vec<f64>, Vec<bool>)> = HashMap::new();
    let mut outcomes = Vec::new();
    let observed = prost_types::Timestamp {
        seconds: (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600) as i64,
        nanos: 0,
    };
    for (index, (customer, result)) in batch.iter().zip(&answered.results).enumerate() {
        let version = result.served_by.as_ref().expect("version").version;
        let Some(pb::row_result::Outcome::Prediction(prediction)) = &result.outcome else {
            panic!("row {index} not scored");
        };
        let arm = by_arm.entry(version).or_default();
        arm.0 += 1;
        // Every fifth customer has no outcome yet.
        if index % 5 != 4 {
            let churned = label(index, prediction.churn_probability);
            arm.1.push(prediction.churn_probability);
            arm.2.push(churned);
            outcomes.push(pb::Outcome {
                customer_id: customer.customer_id.clone(),
                churned,
                observed_at: Some(observed),
            });
        }
    }
    let report = async |monitoring: &mut MonitoringServiceClient<Channel>| {
        monitoring
            .experiment_report(pb::ExperimentReportRequest {
                name: BUNDLED_MODEL.to_owned(),
                alias: String::new(),
                ..Default::default()
            })
            .await
            .expect("report")
            .into_inner()
    };
    // The prediction log writes in the background: wait until every customer is in it.
    let mut counted = 0;
    for _ in 0..100 {
        counted = report(&mut monitoring)
            .await
            .arms
            .iter()
            .map(|a| a.customers)
            .sum::<u64>();
        if counted == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, 202, "every customer once, in one arm");
    monitoring
        .record_outcomes(pb::RecordOutcomesRequest { outcomes })
        .await
        .expect("recorded");

    let answer = report(&mut monitoring).await;
    assert_eq!(answer.split, Some(split.clone()));
    let mut rates = Vec::new();
    for (arm, expected_version) in answer.arms.iter().zip([1, 2]) {
        let served = arm.served_by.as_ref().expect("served");
        assert_eq!(served.version, expected_version);
        let (customers, probabilities, labels) = &by_arm[&served.version];
        let churned = labels.iter().filter(|&&c| c).count() as u64;
        assert_eq!(
            (arm.customers, arm.labelled, arm.churned),
            (*customers, labels.len() as u64, churned),
            "version {expected_version}"
        );
        assert!((arm.churn_rate - churned as f64 / labels.len() as f64).abs() < 1e-12);
        assert!(arm.churn_rate_lower < arm.churn_rate && arm.churn_rate < arm.churn_rate_upper);
        let realized = arm.realized.as_ref().expect("both classes");
        let auc = churn_metrics::roc_auc(probabilities, labels).expect("auc");
        assert!(
            (realized.roc_auc - auc).abs() < 1e-12,
            "{} {auc}",
            realized.roc_auc
        );
        assert!(realized.profit.is_some(), "the default campaign is priced");
        assert!(arm.roc_auc_variance > 0.0);
        rates.push(Proportion {
            churned,
            labelled: labels.len() as u64,
        });
    }
    let [comparison] = &answer.comparisons[..] else {
        panic!("one comparison: {:?}", answer.comparisons);
    };
    let expected = compare_rates(rates[0], rates[1]);
    assert_eq!((comparison.baseline_version, comparison.version), (1, 2));
    assert!((comparison.churn_rate_difference - expected.difference).abs() < 1e-12);
    assert!((comparison.churn_rate_p_value - expected.p_value).abs() < 1e-12);
    assert!((comparison.churn_rate_difference_lower - expected.lower).abs() < 1e-12);
    let roc_auc_difference = answer.arms[1].realized.as_ref().expect("auc").roc_auc
        - answer.arms[0].realized.as_ref().expect("auc").roc_auc;
    assert!((comparison.roc_auc_difference - roc_auc_difference).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&comparison.roc_auc_p_value));
    if expected.difference != 0.0 {
        assert!(comparison.labelled_needed > 0);
    }

    // The console's page of the experiment shows the report's numbers.
    let (_, model_page) = http_get(port, &format!("/models/{BUNDLED_MODEL}")).await;
    assert!(
        model_page.contains(&format!(
            "href=\"/models/{BUNDLED_MODEL}/experiments/production\""
        )),
        "the model's page links its experiment"
    );
    let (head, page) = http_get(
        port,
        &format!("/models/{BUNDLED_MODEL}/experiments/production"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for arm in &answer.arms {
        assert!(
            page.contains(&format!(
                "<td class=\"num customers\">{}</td>",
                arm.customers
            )),
            "the page shows {} customers",
            arm.customers
        );
    }
    assert!(
        page.contains("aria-label=\"ROC curve\""),
        "the arms' ROC curves"
    );
    assert!(page.contains(&format!(
        "<td class=\"num rate-p\">{:.4}</td>",
        comparison.churn_rate_p_value
    )));

    // SetAlias ends the split: it is no longer served, and its report stays readable.
    registry
        .set_alias(pb::SetAliasRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: 2,
            gate: None,
        })
        .await
        .expect("promoted");
    let ended = registry
        .get_traffic_split(pb::GetTrafficSplitRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
        })
        .await
        .expect_err("ended");
    assert_eq!(ended.code(), Code::NotFound);
    let after = scoring
        .score_batch(pb::ScoreBatchRequest {
            model: production(),
            customers: batch[..3].to_vec(),
            ..Default::default()
        })
        .await
        .expect("scored")
        .into_inner();
    assert_eq!(after.served_by.expect("one version").version, 2);
    let kept = report(&mut monitoring).await;
    assert!(kept.split.as_ref().expect("split").ended_at.is_some());
    // The running split's report came from the sums, the ended one's from the log: the
    // same numbers to the last bit.
    assert_eq!(kept.arms, answer.arms);
    assert_eq!(kept.comparisons, answer.comparisons);
}

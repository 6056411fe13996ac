//! `DriftReport` against a real server: the bundled version's bins fixed from its reference
//! dataset and the counts of a served sample equal what numpy computes from the contract's
//! text (`models/fixtures/drift.json`, written by `models/drift_fixture.py`), whichever
//! scoring path the rows took; bad requests get a clear status.

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use serde_json::Value;
use tests::{
    BUNDLED_MODEL, TestServer, customer_columns, fixture_customers, fixture_json, register,
    repo_bytes,
};
use tonic::Code;

const FIXTURE: &str = "models/fixtures/drift.json";

fn version(number: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: number,
        alias: String::new(),
    })
}

/// Version 1's report over `[since, until)`, in seconds since the epoch.
fn between(since: i64, until: i64) -> pb::DriftReportRequest {
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    pb::DriftReportRequest {
        model: version(1),
        since: at(since),
        until: at(until),
    }
}

fn report_request(model: Option<pb::ModelRef>) -> pb::DriftReportRequest {
    pb::DriftReportRequest {
        model,
        since: None,
        until: None,
    }
}

/// The edge a numeric bin's label closes on, or `None` for the last two bins.
fn upper_edge(label: &str) -> Option<f64> {
    let upper = label.strip_suffix(']')?.rsplit_once(", ")?.1;
    Some(upper.parse().expect("a number"))
}

/// Checks one feature's drift against the fixture's numpy computation.
pub fn assert_feature_matches(ours: &pb::FeatureDrift, expected: &Value) {
    let name = expected["feature"].as_str().expect("feature");
    assert_eq!(ours.feature, name);
    let labels: Vec<&str> = ours.bins.iter().map(|b| b.label.as_str()).collect();
    if let Some(edges) = expected["edges"].as_array() {
        let ours_edges: Vec<f64> = labels.iter().filter_map(|l| upper_edge(l)).collect();
        let edges: Vec<f64> = edges.iter().map(|e| e.as_f64().expect("edge")).collect();
        assert_eq!(
            ours_edges, edges,
            "{name}: the deciles of the reference, as numpy"
        );
        assert_eq!(labels.last(), Some(&"missing"), "{name}");
        assert!(
            labels[labels.len() - 2].ends_with(", +inf)"),
            "{name}: {labels:?}"
        );
    } else {
        let categories: Vec<&str> = expected["categories"]
            .as_array()
            .expect("categories")
            .iter()
            .map(|c| c.as_str().expect("category"))
            .collect();
        assert_eq!(labels[..labels.len() - 1], categories[..], "{name}");
        assert_eq!(labels.last(), Some(&"other"), "{name}");
    }
    let counts: Vec<u64> = ours.bins.iter().map(|b| b.serving_count).collect();
    let expected_counts: Vec<u64> = expected["serving_counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c.as_u64().expect("count"))
        .collect();
    assert_eq!(
        counts, expected_counts,
        "{name}: the served rows in each bin"
    );
    for (bin, fraction) in ours.bins.iter().zip(
        expected["reference_fractions"]
            .as_array()
            .expect("fractions"),
    ) {
        let fraction = fraction.as_f64().expect("fraction");
        assert!(
            (bin.reference_fraction - fraction).abs() < 1e-12,
            "{name} {}: {} against {fraction}",
            bin.label,
            bin.reference_fraction
        );
    }
    let psi = expected["psi"].as_f64().expect("psi");
    assert!(
        (ours.psi - psi).abs() < 1e-9,
        "{name}: psi {} against numpy's {psi}",
        ours.psi
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_s_bins_and_counts_equal_numpy_on_every_scoring_path() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let mut monitoring = MonitoringServiceClient::new(server.channel().await);
    let customers: Vec<pb::Customer> = fixture_customers(FIXTURE, "customers")
        .iter()
        .map(|c| c.to_proto())
        .collect();
    let expected = fixture_json(FIXTURE);

    // Before any row: every count is zero and the index is undefined.
    let empty = monitoring
        .drift_report(report_request(version(1)))
        .await
        .expect("a report of a version with a reference")
        .into_inner();
    assert_eq!(empty.rows, 0);
    assert!(empty.features.iter().all(|f| f.psi.is_nan()));

    // Rows in one request, as columns, one by one, and in a stream.
    let (rows, rest) = customers.split_at(300);
    let (columns, rest) = rest.split_at(300);
    let (single, streamed) = rest.split_at(60);
    scoring
        .score_batch(pb::ScoreBatchRequest {
            customers: rows.to_vec(),
            ..Default::default()
        })
        .await
        .expect("scores rows");
    scoring
        .score_batch(pb::ScoreBatchRequest {
            columns: Some(customer_columns(columns)),
            ..Default::default()
        })
        .await
        .expect("scores columns");
    for customer in single {
        scoring
            .score(pb::ScoreRequest {
                model: None,
                customer: Some(customer.clone()),
                top_reasons: 0,
            })
            .await
            .expect("scores one");
    }
    let mut answers = scoring
        .score_stream(tokio_stream::iter([pb::ScoreBatchRequest {
            customers: streamed.to_vec(),
            ..Default::default()
        }]))
        .await
        .expect("stream")
        .into_inner();
    while answers.message().await.expect("answer").is_some() {}
    // A row that cannot be scored is not a served row.
    let mut invalid = customers[0].clone();
    invalid.features.remove("contract");
    let refused = scoring
        .score_batch(pb::ScoreBatchRequest {
            customers: vec![invalid],
            ..Default::default()
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(matches!(
        refused.results[0].outcome,
        Some(pb::row_result::Outcome::Error(_))
    ));

    let report = monitoring
        .drift_report(report_request(version(1)))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.served_by.as_ref().map(|s| s.version), Some(1));
    assert_eq!(report.rows, expected["rows"].as_u64().expect("rows"));
    let features = expected["features"].as_array().expect("features");
    assert_eq!(
        report.features.len(),
        features.len(),
        "in the model's order"
    );
    for (ours, theirs) in report.features.iter().zip(features) {
        assert_feature_matches(ours, theirs);
    }
    assert_feature_matches(
        report.prediction.as_ref().expect("prediction"),
        &expected["prediction"],
    );

    // Through the alias, the same version's report; a range before the rows has none.
    let by_alias = monitoring
        .drift_report(report_request(Some(pb::ModelRef {
            name: BUNDLED_MODEL.to_owned(),
            version: 0,
            alias: "production".to_owned(),
        })))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(by_alias.rows, report.rows);
    let before = monitoring
        .drift_report(between(1_000_000, 2_000_000))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(before.rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_drift_requests_get_a_clear_status() {
    let server = TestServer::start().await;
    let mut monitoring = MonitoringServiceClient::new(server.channel().await);
    let backwards = monitoring
        .drift_report(between(2_000_000, 1_000_000))
        .await
        .expect_err("until before since");
    assert_eq!(backwards.code(), Code::InvalidArgument);
    assert!(
        backwards.message().starts_with("until:"),
        "{}",
        backwards.message()
    );

    let unknown = monitoring
        .drift_report(report_request(version(99)))
        .await
        .expect_err("no version 99");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut registry = server.registry().await;
    let without_reference = register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: "no-reference".to_owned(),
            ..Default::default()
        },
        &repo_bytes("models/telco-logreg.onnx"),
    )
    .await
    .expect("registers");
    let refused = monitoring
        .drift_report(report_request(Some(pb::ModelRef {
            name: without_reference.name,
            version: without_reference.version,
            alias: String::new(),
        })))
        .await
        .expect_err("no reference dataset");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("no reference dataset")
            && refused.message().contains("set-reference"),
        "says how to set one: {}",
        refused.message()
    );
}

//! Drift across replicas on one PostgreSQL registry: three replicas each score part of a
//! sample and any of them reports the whole sample's counts, equal to numpy's
//! (`models/fixtures/drift.json`); a replica stopped by SIGTERM keeps every count, and one
//! killed by SIGKILL loses at most what it counted since its last flush.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use serde_json::Value;

use crate::common::replicas::{Replica, runtime};
use crate::replicas::exclusive_backing;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fixtures/drift.json");
    serde_json::from_slice(&std::fs::read(path).expect("drift fixture")).expect("json")
}

fn customers(fixture: &Value) -> Vec<pb::Customer> {
    use pb::feature_value::Kind;
    fixture["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|customer| pb::Customer {
            customer_id: customer["customer_id"].as_str().expect("id").to_owned(),
            features: customer["features"]
                .as_object()
                .expect("features")
                .iter()
                .map(|(name, value)| {
                    let kind = if let Some(number) = value["number"].as_f64() {
                        Some(Kind::Number(number))
                    } else {
                        value["text"].as_str().map(|t| Kind::Text(t.to_owned()))
                    };
                    (name.clone(), pb::FeatureValue { kind })
                })
                .collect(),
        })
        .collect()
}

async fn score(replica: &Replica, customers: &[pb::Customer]) {
    let response = replica
        .scoring()
        .await
        .score_batch(pb::ScoreBatchRequest {
            customers: customers.to_vec(),
            ..Default::default()
        })
        .await
        .expect("scores")
        .into_inner();
    assert!(
        response
            .results
            .iter()
            .all(|r| matches!(r.outcome, Some(pb::row_result::Outcome::Prediction(_)))),
        "every row scored"
    );
}

async fn report(replica: &Replica) -> pb::DriftReportResponse {
    MonitoringServiceClient::connect(replica.address.clone())
        .await
        .expect("connect")
        .drift_report(pb::DriftReportRequest {
            model: Some(pb::ModelRef {
                name: "telco-churn".to_owned(),
                version: 1,
                alias: String::new(),
            }),
            since: None,
            until: None,
        })
        .await
        .expect("report")
        .into_inner()
}

/// The report through `replica` once it counts `rows`, within the contract's 15 seconds.
async fn report_of(replica: &Replica, rows: u64) -> pb::DriftReportResponse {
    let started = Instant::now();
    loop {
        let report = report(replica).await;
        if report.rows == rows {
            return report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the fleet's report counts {} rows of {rows}",
            report.rows
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sigterm(replica: &mut Replica) {
    let sent = Command::new("kill")
        .args(["-TERM", &replica.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = replica.child.wait().expect("exits");
    assert!(status.success(), "a graceful stop: {status}");
}

#[test]
fn three_replicas_count_one_sample_exactly_as_numpy() {
    let (_turn, backing) = exclusive_backing();
    let flush = ["--drift-flush-seconds", "1"];
    let replicas = [
        backing.replica_with("a", &flush),
        backing.replica_with("b", &flush),
        backing.replica_with("c", &flush),
    ];
    let fixture = fixture();
    let customers = customers(&fixture);
    runtime().block_on(async {
        let parts = [&customers[..250], &customers[250..500], &customers[500..]];
        for (replica, part) in replicas.iter().zip(parts) {
            score(replica, part).await;
        }
        let rows = fixture["rows"].as_u64().expect("rows");
        for replica in &replicas {
            let report = report_of(replica, rows).await;
            let expected = fixture["features"].as_array().expect("features");
            for (ours, theirs) in report
                .features
                .iter()
                .chain(report.prediction.iter())
                .zip(expected.iter().chain([&fixture["prediction"]]))
            {
                let counts: Vec<u64> = ours.bins.iter().map(|b| b.serving_count).collect();
                let expected_counts: Vec<u64> = theirs["serving_counts"]
                    .as_array()
                    .expect("counts")
                    .iter()
                    .map(|c| c.as_u64().expect("count"))
                    .collect();
                assert_eq!(counts, expected_counts, "{}", ours.feature);
                let psi = theirs["psi"].as_f64().expect("psi");
                assert!(
                    (ours.psi - psi).abs() < 1e-9,
                    "{}: {} against {psi}",
                    ours.feature,
                    ours.psi
                );
            }
        }
    });
}

#[test]
fn sigterm_keeps_every_count_and_sigkill_loses_at_most_the_last_flush() {
    let (_turn, backing) = exclusive_backing();
    // Replica b writes only when it stops: what a report sees of it came with SIGTERM.
    let a = backing.replica_with("a", &["--drift-flush-seconds", "1"]);
    let mut b = backing.replica_with("b", &["--drift-flush-seconds", "3600"]);
    let mut c = backing.replica_with("c", &["--drift-flush-seconds", "2"]);
    let customers = customers(&fixture());
    runtime().block_on(async {
        score(&b, &customers[..300]).await;
        sigterm(&mut b);
        assert_eq!(report(&a).await.rows, 300, "counted before SIGTERM, kept");

        score(&c, &customers[300..500]).await;
        report_of(&a, 500).await;
        score(&c, &customers[500..]).await;
        c.kill();
        let rows = report(&a).await.rows;
        assert!(
            (500..=customers.len() as u64).contains(&rows),
            "SIGKILL keeps what was flushed before it: {rows}"
        );
    });
}

//! `churnctl experiment start|show|stop` against the real server: a split set with
//! `--arm`, customers scored through it by `churnctl score` (each row naming its arm),
//! the report's rows per arm, a malformed arm refused with the server's reason, and
//! `stop` handing the alias back to one version.

use serde_json::Value;
use tests::TestServer;

use crate::commands::json_lines;
use crate::score_file::{churnctl, finished};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_is_started_shown_and_stopped() {
    let server = TestServer::start().await;
    let started = json_lines(
        &server,
        &[
            "experiment",
            "start",
            "telco-churn@production",
            "--arm",
            "1=80",
            "--arm",
            "2=20",
            "--salt",
            "cli",
        ],
        "",
    )
    .await;
    assert_eq!(started.len(), 2, "one row per arm: {started:?}");
    assert_eq!(
        (
            started[0]["version"].as_u64(),
            started[0]["weight"].as_u64()
        ),
        (Some(1), Some(80))
    );
    assert_eq!(started[1]["salt"], "cli");

    let customer = std::fs::read_to_string(tests::repo_path("models/example-customer.json"))
        .expect("example customer");
    let example: Value = serde_json::from_str(&customer).expect("JSON");
    let batch: Vec<Value> = (0..40)
        .map(|k| {
            let mut customer = example.clone();
            customer["customer_id"] = Value::from(format!("cli-{k}"));
            customer
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), serde_json::to_string(&batch).expect("JSON")).expect("write");
    let scored = json_lines(
        &server,
        &[
            "score",
            "telco-churn",
            "--customers",
            file.path().to_str().expect("path"),
        ],
        "",
    )
    .await;
    let versions: Vec<u64> = scored
        .iter()
        .map(|row| row["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions.len(), 40);
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "both arms answer: {versions:?}"
    );

    let mut report = Vec::new();
    for _ in 0..50 {
        report = json_lines(&server, &["experiment", "show", "telco-churn"], "").await;
        let customers: u64 = report
            .iter()
            .map(|row| row["customers"].as_u64().unwrap_or(0))
            .sum();
        if customers == 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(report.len(), 2, "{report:?}");
    for (row, version) in report.iter().zip([1u64, 2]) {
        let answered = versions.iter().filter(|&&v| v == version).count() as u64;
        assert_eq!(row["version"].as_u64(), Some(version));
        assert_eq!(row["customers"].as_u64(), Some(answered), "v{version}");
    }
    assert!(
        report[0]["rate_diff"].is_null(),
        "the baseline is not compared with itself"
    );

    let refused = finished(churnctl(
        &server,
        &[
            "experiment",
            "start",
            "telco-churn",
            "--arm",
            "1=0",
            "--arm",
            "2=0",
        ],
    ))
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("arms.weight"), "{stderr}");

    let stopped = finished(churnctl(
        &server,
        &["experiment", "stop", "telco-churn", "--keep", "2"],
    ))
    .await;
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let version = json_lines(&server, &["show", "telco-churn"], "").await;
    assert_eq!(version[0]["version"].as_u64(), Some(2), "{version:?}");
    let ended = json_lines(&server, &["experiment", "show", "telco-churn"], "").await;
    assert_eq!(ended.len(), 2, "the report stays readable");
}

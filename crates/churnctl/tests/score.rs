//! `churnctl score` against the real server: JSON in, one JSON line per customer out,
//! and gRPC errors as one clear message with a non-zero exit.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use tests::{FixtureCustomer, FixtureValue, PYTHON_TOLERANCE, TestServer, fixture};

async fn churnctl(server: &TestServer, args: &[&str], stdin: String) -> Output {
    let address = format!("http://{}", server.address);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_churnctl"))
            .args(["--server", &address])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start churnctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("churnctl output")
    })
    .await
    .expect("churnctl task")
}

fn customer_json(customer: &FixtureCustomer) -> Value {
    let features: serde_json::Map<String, Value> = customer
        .features
        .iter()
        .map(|(name, value)| {
            let value = match value {
                FixtureValue::Number(v) => json!(v),
                FixtureValue::Text(t) => json!(t),
                FixtureValue::Missing => Value::Null,
            };
            (name.clone(), value)
        })
        .collect();
    json!({"customer_id": customer.id, "features": features})
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_one_customer_and_a_batch_as_json_lines() {
    let server = TestServer::start().await;
    let rows = fixture("models/fixtures/telco-lgbm.json", "customers");

    let output = churnctl(
        &server,
        &["score", "--alias", "challenger"],
        customer_json(&rows[0]).to_string(),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let single = lines(&output);
    assert_eq!(single.len(), 1);
    assert_eq!(single[0]["customer_id"], rows[0].id.as_str());
    assert!(
        (single[0]["churn_probability"]
            .as_f64()
            .expect("probability")
            - rows[0].churn_probability)
            .abs()
            <= PYTHON_TOLERANCE
    );
    assert_eq!(single[0]["served_by"]["name"], "telco-churn");
    assert_eq!(single[0]["served_by"]["version"], 2);

    let mut batch: Vec<Value> = rows[..3].iter().map(customer_json).collect();
    batch[1]["features"]["contract"] = json!("Weekly");
    let output = churnctl(
        &server,
        &["score", "--model", "telco-churn", "--version", "2"],
        Value::Array(batch).to_string(),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = lines(&output);
    assert_eq!(
        results
            .iter()
            .map(|r| r["row"].as_u64().expect("row"))
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(results[1]["error"]["feature"], "contract");
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("unknown category \"Weekly\"")
    );
    for index in [0, 2] {
        let probability = results[index]["churn_probability"]
            .as_f64()
            .expect("probability");
        assert!((probability - rows[index].churn_probability).abs() <= PYTHON_TOLERANCE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_clear_line_and_a_failure_exit() {
    let server = TestServer::start().await;
    let customer =
        customer_json(&fixture("models/fixtures/telco-logreg.json", "customers")[0]).to_string();
    let cases: &[(&[&str], String, &str)] = &[
        (
            &["score", "--model", "nope"],
            customer.clone(),
            "NotFound: model \"nope\" not found",
        ),
        (
            &["score"],
            "{not json".to_owned(),
            "customers are not valid JSON",
        ),
        (
            &["score"],
            r#"{"features": {"tenure": [1]}}"#.to_owned(),
            "feature tenure: expected a number, text, true/false or null",
        ),
        (
            &["score"],
            r#"{"customer_id": "c", "features": {"tenure": 1}}"#.to_owned(),
            "InvalidArgument: customer \"c\": feature `gender`: is required but absent",
        ),
    ];
    for (args, stdin, fragment) in cases {
        let output = churnctl(&server, args, stdin.clone()).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("churnctl: ") && stderr.contains(fragment),
            "{args:?}: {stderr}"
        );
    }
}

//! churnctl against the real server: an ML engineer's whole session (register, inspect,
//! score by version, promote, roll back), scoring from flags and JSON, and errors as one
//! clear line with a failure exit.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use tests::{FixtureCustomer, FixtureValue, PYTHON_TOLERANCE, TestServer, fixture, repo_path};

async fn churnctl(server: &TestServer, args: &[&str], stdin: &str) -> Output {
    let address = format!("http://{}", server.address);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
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

/// Runs churnctl with `--output json` and returns its JSON lines; fails on a failure exit.
pub(crate) async fn json_lines(server: &TestServer, args: &[&str], stdin: &str) -> Vec<Value> {
    let mut with_json = vec!["--output", "json"];
    with_json.extend_from_slice(args);
    let output = churnctl(server, &with_json, stdin).await;
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
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

fn probability(line: &Value) -> f64 {
    line["probability"].as_f64().expect("probability")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ml_engineer_registers_inspects_promotes_and_rolls_back() {
    let server = TestServer::start().await;
    let lgbm = fixture("models/fixtures/telco-lgbm.json", "customers");
    let customer = customer_json(&lgbm[0]).to_string();
    let model = repo_path("models/telco-lgbm.onnx");

    let registered = json_lines(
        &server,
        &[
            "register",
            model.to_str().expect("path"),
            "--name",
            "retention",
            "--description",
            "first try",
            "--tag",
            "owner=ml",
        ],
        "",
    )
    .await;
    assert_eq!(
        (
            registered[0]["name"].as_str(),
            registered[0]["version"].as_u64()
        ),
        (Some("retention"), Some(1))
    );
    let registered = json_lines(
        &server,
        &[
            "register",
            model.to_str().expect("path"),
            "--name",
            "retention",
            "--threshold",
            "0.4",
        ],
        "",
    )
    .await;
    assert_eq!(registered[0]["version"], 2);

    let versions = json_lines(&server, &["versions", "retention"], "").await;
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_u64().expect("version"))
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let shown = json_lines(&server, &["show", "retention", "--version", "2"], "").await;
    assert_eq!(shown[0]["threshold"], 0.4);
    assert_eq!(shown[0]["features"].as_array().expect("features").len(), 19);
    assert_eq!(shown[0]["features"][14]["name"], "contract");
    assert_eq!(
        shown[0]["features"][14]["allowed_values"],
        json!(["Month-to-month", "One year", "Two year"])
    );

    let scored = json_lines(
        &server,
        &["score", "retention", "--version", "2", "--customers", "-"],
        &customer,
    )
    .await;
    assert!((probability(&scored[0]) - lgbm[0].churn_probability).abs() <= PYTHON_TOLERANCE);
    assert_eq!(
        scored[0]["will_churn"],
        json!(probability(&scored[0]) >= 0.4),
        "version 2's own threshold"
    );

    let output = churnctl(
        &server,
        &["score", "retention", "--customers", "-"],
        &customer,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("NotFound: model \"retention\" has no alias \"production\"")
    );

    for (promoted, expected) in [("2", 2), ("1", 1)] {
        json_lines(
            &server,
            &["alias", "set", "retention", "production", promoted],
            "",
        )
        .await;
        let scored = json_lines(
            &server,
            &["score", "retention", "--customers", "-"],
            &customer,
        )
        .await;
        assert_eq!(
            scored[0]["version"], expected,
            "production follows the alias"
        );
    }
    let models = json_lines(&server, &["models"], "").await;
    let retention = models
        .iter()
        .find(|m| m["name"] == "retention")
        .expect("listed");
    assert_eq!(retention["aliases"], json!(["production=1"]));

    json_lines(&server, &["alias", "delete", "retention", "production"], "").await;
    let archived = json_lines(&server, &["archive", "retention", "2"], "").await;
    assert_eq!(archived[0]["archived"], true);
    assert_eq!(
        json_lines(&server, &["versions", "retention"], "")
            .await
            .len(),
        1
    );
    assert_eq!(
        json_lines(&server, &["versions", "retention", "--all"], "")
            .await
            .len(),
        2
    );

    let uploaded = json_lines(
        &server,
        &[
            "datasets",
            "upload",
            repo_path("models/data/test.csv").to_str().expect("path"),
            "--name",
            "holdout",
            "--label-column",
            "churn",
            "--positive-label",
            "Yes",
        ],
        "",
    )
    .await;
    assert_eq!(uploaded[0]["rows"], 2113);
    let listed: Vec<String> = json_lines(&server, &["datasets", "list"], "")
        .await
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        listed,
        ["holdout", "telco-holdout"],
        "ours beside the seeded reference"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_from_flags_and_from_json_batches() {
    let server = TestServer::start().await;
    let rows = fixture("models/fixtures/telco-logreg.json", "customers");
    let mut flags = vec![
        "score".to_owned(),
        "--customer-id".to_owned(),
        rows[0].id.clone(),
    ];
    for (name, value) in &rows[0].features {
        let value = match value {
            FixtureValue::Number(v) => v.to_string(),
            FixtureValue::Text(t) => t.clone(),
            FixtureValue::Missing => String::new(),
        };
        flags.extend(["--set".to_owned(), format!("{name}={value}")]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let scored = json_lines(&server, &flags, "").await;
    assert_eq!(scored[0]["customer"], rows[0].id.as_str());
    assert!((probability(&scored[0]) - rows[0].churn_probability).abs() <= PYTHON_TOLERANCE);
    assert_eq!(
        (scored[0]["model"].as_str(), scored[0]["version"].as_u64()),
        (Some("telco-churn"), Some(1))
    );

    let mut batch: Vec<Value> = rows[..3].iter().map(customer_json).collect();
    batch[1]["features"]["contract"] = json!(true);
    let results = json_lines(
        &server,
        &["score", "--customers", "-"],
        &Value::Array(batch).to_string(),
    )
    .await;
    assert_eq!(
        results
            .iter()
            .map(|r| r["row"].as_u64().expect("row"))
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(
        results[1]["error"]
            .as_str()
            .expect("error")
            .contains("feature `contract`: expected text")
    );
    for index in [0, 2] {
        assert!(
            (probability(&results[index]) - rows[index].churn_probability).abs()
                <= PYTHON_TOLERANCE
        );
    }

    let table = churnctl(
        &server,
        &["score", "--customers", "-"],
        &customer_json(&rows[0]).to_string(),
    )
    .await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("ROW  CUSTOMER") && text.contains(&rows[0].id),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_clear_line_and_a_failure_exit() {
    let server = TestServer::start_with(|config| config.write_token = Some("secret".into())).await;
    let customer =
        customer_json(&fixture("models/fixtures/telco-logreg.json", "customers")[0]).to_string();
    let model = repo_path("models/telco-lgbm.onnx");
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["score", "nope", "--customers", "-"],
            &customer,
            "NotFound: model \"nope\" not found",
        ),
        (
            &["score", "--customers", "-"],
            "{not json",
            "customers are not valid JSON",
        ),
        (
            &["score", "--customers", "-"],
            r#"{"features": {"tenure": [1]}}"#,
            "feature tenure: expected a number, text, true/false or null",
        ),
        (
            &["score", "--customers", "-"],
            r#"{"customer_id": "c", "features": {"tenure": 1}}"#,
            "InvalidArgument: customer \"c\": feature `gender`: is required but absent",
        ),
        (
            &["register", model.to_str().expect("path"), "--name", "x"],
            "",
            "Unauthenticated: registry writes need",
        ),
        (
            &[
                "--token",
                "wrong",
                "alias",
                "set",
                "telco-churn",
                "production",
                "2",
            ],
            "",
            "PermissionDenied",
        ),
        (
            &["show", "telco-churn", "--version", "9"],
            "",
            "NotFound: model \"telco-churn\" has no version 9",
        ),
    ];
    for (args, stdin, fragment) in cases {
        let output = churnctl(&server, args, stdin).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with("churnctl: "))
                .count(),
            1,
            "{args:?}: {stderr}"
        );
    }
    let output = churnctl(
        &server,
        &[
            "--token",
            "secret",
            "alias",
            "set",
            "telco-churn",
            "production",
            "2",
        ],
        "",
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explains_ranks_features_and_names_a_reference() {
    let server = TestServer::start().await;
    let customer =
        customer_json(&fixture("models/fixtures/telco-lgbm.json", "customers")[0]).to_string();

    let explained = json_lines(
        &server,
        &["explain", "--alias", "challenger", "--customers", "-"],
        &customer,
    )
    .await;
    let details = &explained[0];
    assert_eq!(details["method"], "interventional-tree-shap");
    let attributions = details["attributions"].as_array().expect("attributions");
    assert_eq!(attributions.len(), 19);
    let magnitudes: Vec<f64> = attributions
        .iter()
        .map(|a| a["contribution"].as_f64().expect("number").abs())
        .collect();
    assert!(magnitudes.windows(2).all(|w| w[0] >= w[1]), "largest first");
    let sum: f64 = attributions
        .iter()
        .map(|a| a["contribution"].as_f64().expect("number"))
        .sum();
    let base = details["base_value"].as_f64().expect("base");
    assert!((base + sum - details["output_value"].as_f64().expect("output")).abs() < 1e-6);

    let table = churnctl(
        &server,
        &["explain", "--alias", "challenger", "--customers", "-"],
        &customer,
    )
    .await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("interventional-tree-shap (±0.0e0): base"),
        "{text}"
    );
    assert!(text.contains("FEATURE"), "{text}");

    let scored = json_lines(
        &server,
        &[
            "score",
            "--alias",
            "challenger",
            "--top-reasons",
            "2",
            "--customers",
            "-",
        ],
        &customer,
    )
    .await;
    let top = attributions[0]["feature"].as_str().expect("feature");
    assert!(
        scored[0]["reasons"]
            .as_str()
            .expect("reasons")
            .starts_with(&format!("{top}=")),
        "{}",
        scored[0]
    );

    let importance = json_lines(&server, &["importance", "--alias", "challenger"], "").await;
    assert_eq!(importance.len(), 19);
    assert_eq!(importance[0]["method"], "MODEL_NATIVE");

    let cleared = json_lines(&server, &["set-reference", "telco-churn", "2", ""], "").await;
    assert_eq!(cleared[0]["reference_dataset"], "");
    let refused = churnctl(
        &server,
        &["explain", "--alias", "challenger", "--customers", "-"],
        &customer,
    )
    .await;
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("FailedPrecondition") && message.contains("set-reference telco-churn 2"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluates_compares_gates_and_tunes_the_threshold() {
    let server = TestServer::start().await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("models/fixtures/metrics.json")).expect("fixture"),
    )
    .expect("json");
    let evaluated = json_lines(
        &server,
        &["evaluate", "telco-churn", "--dataset", "telco-holdout"],
        "",
    )
    .await;
    let expected = &fixture["cases"][0]["expected"];
    for (ours, python) in [
        ("roc_auc", "roc_auc"),
        ("pr_auc", "pr_auc"),
        ("log_loss", "log_loss"),
        ("brier", "brier"),
    ] {
        let (a, b) = (
            evaluated[0][ours].as_f64().expect("ours"),
            expected[python].as_f64().expect("python"),
        );
        assert!((a - b).abs() <= 1e-9, "{ours}: {a} vs scikit-learn {b}");
    }
    assert_eq!(evaluated[0]["true_positives"], expected["confusion"]["tp"]);
    for curve in ["roc_curve", "pr_curve"] {
        let (ours, python) = (
            evaluated[0][curve].as_array().expect("our curve"),
            expected[curve].as_array().expect("scikit-learn's curve"),
        );
        assert_eq!(ours.len(), python.len(), "{curve}");
        for (a, b) in ours.iter().zip(python) {
            for key in ["x", "y", "threshold"] {
                match (a[key].as_f64(), b[key].as_f64()) {
                    (Some(a), Some(b)) => {
                        assert!((a - b).abs() <= 1e-9, "{curve}.{key}: {a} vs {b}")
                    }
                    (a, b) => assert_eq!(a, b, "{curve}.{key}: +inf is null"),
                }
            }
        }
    }

    let compared = churnctl(
        &server,
        &["compare", "telco-churn", "--dataset", "telco-holdout"],
        "",
    )
    .await;
    let text = String::from_utf8_lossy(&compared.stdout);
    assert!(
        text.starts_with("champion telco-churn v1 · challenger telco-churn v2"),
        "{text}"
    );
    assert!(
        text.contains("ROC AUC difference (challenger - champion) -0.0046"),
        "{text}"
    );
    assert!(text.contains("over 2113 paired rows"), "{text}");

    let gated = churnctl(
        &server,
        &[
            "alias",
            "set",
            "telco-churn",
            "production",
            "2",
            "--gate",
            "dataset=telco-holdout,max_roc_auc_drop=0.001",
        ],
        "",
    )
    .await;
    assert!(!gated.status.success());
    let message = String::from_utf8_lossy(&gated.stderr);
    assert!(
        message.contains("FailedPrecondition: promotion gate") && message.contains("was not moved"),
        "{message}"
    );
    let listed = json_lines(&server, &["evaluations", "telco-churn"], "").await;
    assert_eq!(
        listed.len(),
        3 + 2,
        "evaluate, compare's two, the gate's two"
    );

    let suggested = json_lines(
        &server,
        &[
            "threshold",
            "telco-churn",
            "--dataset",
            "telco-holdout",
            "--objective",
            "f1",
        ],
        "",
    )
    .await;
    let threshold = suggested[0]["threshold"].as_f64().expect("threshold");
    let python = fixture["thresholds"]["f1"]["threshold"]
        .as_f64()
        .expect("python");
    assert!(
        (threshold - python).abs() <= 1e-9,
        "{threshold} vs {python}"
    );
    let set = json_lines(
        &server,
        &["set-threshold", "telco-churn", "1", &threshold.to_string()],
        "",
    )
    .await;
    assert_eq!(set[0]["threshold"].as_f64(), Some(threshold));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outcomes_from_a_csv_and_shows_each_cohorts_performance() {
    let server = TestServer::start().await;
    let customers: Vec<Value> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .take(30)
        .map(customer_json)
        .collect();
    let scored = json_lines(
        &server,
        &["score", "telco-churn/1", "--customers", "-"],
        &Value::Array(customers.clone()).to_string(),
    )
    .await;
    assert_eq!(scored.len(), 30);
    let dir = tempfile::tempdir().expect("temporary directory");
    let csv = dir.path().join("outcomes.csv");
    let tomorrow = "2999-01-01T00:00:00Z";
    let mut text = "customer_id,churned,observed_at\n".to_owned();
    for (k, customer) in customers.iter().enumerate() {
        let id = customer["customer_id"].as_str().expect("id");
        text.push_str(&format!(
            "{id},{},{tomorrow}\n",
            if k % 3 == 0 { "yes" } else { "no" }
        ));
    }
    text.push_str(",yes,2026-01-01\nX-1,perhaps,2026-01-01\nX-2,no,soon\n");
    std::fs::write(&csv, text).expect("write the CSV");
    let recorded = churnctl(
        &server,
        &["outcomes", "upload", csv.to_str().expect("path")],
        "",
    )
    .await;
    let said = String::from_utf8_lossy(&recorded.stdout);
    assert!(
        recorded.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    assert!(said.starts_with("recorded 30 outcomes"), "{said}");
    assert!(said.contains("3 rows rejected"), "{said}");
    let rejected = std::fs::read_to_string(dir.path().join("outcomes.csv.rejected.csv"))
        .expect("the side file");
    for reason in [
        "32,\",yes,2026-01-01\",customer_id: empty",
        "expected true/false, yes/no or 1/0",
        "is not an RFC 3339 time or a YYYY-MM-DD date",
    ] {
        assert!(rejected.contains(reason), "{reason}: {rejected}");
    }
    let mut cohorts = Vec::new();
    for _ in 0..50 {
        cohorts = json_lines(
            &server,
            &[
                "performance",
                "telco-churn/1",
                "--cohort",
                "day",
                "--until",
                tomorrow,
                "--horizon-days",
                "400000",
            ],
            "",
        )
        .await;
        if cohorts.len() == 1 && cohorts[0]["labelled"] == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(cohorts.len(), 1, "{cohorts:?}");
    assert_eq!(
        (&cohorts[0]["scored"], &cohorts[0]["churned"]),
        (&json!(30), &json!(10))
    );
    assert!(cohorts[0]["roc_auc"].as_f64().is_some(), "{cohorts:?}");
    assert!(cohorts[0]["est_roc_auc"].as_f64().is_some(), "{cohorts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_each_feature_s_drift_and_its_bins() {
    let server = TestServer::start().await;
    let customers: Vec<Value> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .take(40)
        .map(customer_json)
        .collect();
    let scored = json_lines(
        &server,
        &["score", "telco-churn/1", "--customers", "-"],
        &Value::Array(customers).to_string(),
    )
    .await;
    assert_eq!(scored.len(), 40);
    let features = json_lines(&server, &["drift", "telco-churn/1"], "").await;
    assert_eq!(
        features.len(),
        20,
        "19 features and the probability: {features:?}"
    );
    assert_eq!(features[19]["feature"], "prediction");
    for feature in &features {
        let psi = feature["psi"]
            .as_f64()
            .expect("a PSI once rows are counted");
        assert!(psi >= 0.0, "{feature}");
        assert!(
            ["stable", "watch", "act"].contains(&feature["reading"].as_str().expect("reading"))
        );
    }
    let bins = json_lines(&server, &["drift", "telco-churn/1", "--bins"], "").await;
    let contract: Vec<&Value> = bins.iter().filter(|b| b["feature"] == "contract").collect();
    let labels: Vec<&str> = contract
        .iter()
        .map(|b| b["bin"].as_str().expect("bin"))
        .collect();
    assert_eq!(labels, ["Month-to-month", "One year", "Two year", "other"]);
    let served: u64 = contract
        .iter()
        .map(|b| b["served"].as_u64().expect("served"))
        .sum();
    assert_eq!(served, 40, "every scored row in one bin of each feature");
    let shares: f64 = contract
        .iter()
        .map(|b| b["reference"].as_f64().expect("share"))
        .sum();
    assert!((shares - 1.0).abs() < 1e-12, "{shares}");

    let refused = churnctl(&server, &["drift", "telco-churn/1", "--since", "soon"], "").await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--since"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

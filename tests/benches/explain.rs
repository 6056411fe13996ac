//! Explanation speed, in one run: exact TreeSHAP on the bundled LightGBM model (120 trees)
//! and the XGBoost test model (100 trees) and sampled Shapley on the logistic pipeline,
//! each against 100 background rows, in process and through the gRPC server, beside Python
//! shap on the same models, background and customers (`benches/explain_shap.py`, run
//! from here with the repository's `.venv`). Run: `cargo bench -p tests --bench explain`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_engine::{Customer, Model, ModelOptions, OnnxRuntime};
use churn_explain::{Background, ExplainOptions, explain};
use common::{Latency, latency, micros, print_latency};
use serde_json::Value;
use tests::{BUNDLED_MODEL, LGBM, TestServer, csv_customers, explanation_fixture, repo_path};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BACKGROUND_ROWS: usize = 100;
/// Repeats over the fixture's customers for the exact method, and customers for the sampled one.
const TREE_ROUNDS: usize = 10;
const SAMPLED_CUSTOMERS: usize = 10;

struct Case {
    label: &'static str,
    model: &'static str,
    fixture: &'static str,
    python_key: &'static str,
    /// Version of the seeded `telco-churn` serving this model, when it is bundled.
    served_version: Option<u32>,
    customers: usize,
    rounds: usize,
}

const CASES: &[Case] = &[
    Case {
        label: "TreeSHAP lgbm (120 trees)",
        model: "models/telco-lgbm.onnx",
        fixture: "models/fixtures/explain-telco-lgbm.json",
        python_key: "tree_lgbm_seconds",
        served_version: Some(LGBM.version),
        customers: 60,
        rounds: TREE_ROUNDS,
    },
    Case {
        label: "TreeSHAP xgb (100 trees)",
        model: "tests/models/telco-xgb.onnx",
        fixture: "tests/models/explain-telco-xgb.json",
        python_key: "tree_xgb_seconds",
        served_version: None,
        customers: 60,
        rounds: TREE_ROUNDS,
    },
    Case {
        label: "sampled logreg pipeline",
        model: "models/telco-logreg.onnx",
        fixture: "models/fixtures/explain-telco-logreg.json",
        python_key: "kernel_logreg_seconds",
        served_version: Some(1),
        customers: SAMPLED_CUSTOMERS,
        rounds: 1,
    },
];

fn load(path: &str) -> Model {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let options = ModelOptions {
        sessions: 1,
        ..ModelOptions::default()
    };
    Model::load(
        runtime,
        &std::fs::read(repo_path(path)).expect("model"),
        &options,
    )
    .expect("loads")
}

fn customers(case: &Case) -> Vec<Customer> {
    explanation_fixture(case.fixture)
        .customers
        .iter()
        .take(case.customers)
        .map(|c| c.customer.to_engine())
        .collect()
}

fn in_process(case: &Case) -> Latency {
    let model = load(case.model);
    let background = Background::new(
        &model,
        &csv_customers(model.schema(), "models/data/test.csv", BACKGROUND_ROWS),
    )
    .expect("background");
    let customers = customers(case);
    let options = ExplainOptions::default();
    explain(&model, &background, &customers[0], &options).expect("warm-up");
    let mut samples = Vec::with_capacity(customers.len() * case.rounds);
    for _ in 0..case.rounds {
        for customer in &customers {
            let start = Instant::now();
            let explanation = explain(&model, &background, customer, &options).expect("explains");
            samples.push(start.elapsed());
            std::hint::black_box(explanation);
        }
    }
    latency(samples)
}

async fn through_server(server: &TestServer, case: &Case, version: u32) -> Latency {
    let mut client = server.scoring().await;
    let requests: Vec<pb::ExplainRequest> = explanation_fixture(case.fixture)
        .customers
        .iter()
        .take(case.customers)
        .map(|c| pb::ExplainRequest {
            model: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version,
                alias: String::new(),
            }),
            customer: Some(c.customer.to_proto()),
        })
        .collect();
    client.explain(requests[0].clone()).await.expect("warm-up");
    let mut samples = Vec::with_capacity(requests.len() * case.rounds);
    for _ in 0..case.rounds {
        for request in &requests {
            let start = Instant::now();
            client.explain(request.clone()).await.expect("explains");
            samples.push(start.elapsed());
        }
    }
    latency(samples)
}

fn python_shap() -> Option<Value> {
    let python = repo_path(".venv/bin/python");
    let output = Command::new(&python)
        .arg(repo_path("benches/explain_shap.py"))
        .output()
        .map_err(|e| {
            eprintln!(
                "cannot run {}: {e}; Python figures skipped",
                python.display()
            )
        })
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "benches/explain_shap.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = runtime.block_on(TestServer::start());
    let python = python_shap();
    println!("explain one customer against {BACKGROUND_ROWS} background rows (p50 / p99):");
    for case in CASES {
        println!("{}", case.label);
        let local = in_process(case);
        print_latency("in process        ", &local);
        if let Some(version) = case.served_version {
            let remote = runtime.block_on(through_server(&server, case, version));
            print_latency("Explain over gRPC ", &remote);
        }
        if let Some(seconds) = python.as_ref().and_then(|p| p[case.python_key].as_f64()) {
            let shap = Duration::from_secs_f64(seconds);
            println!(
                "  python shap       p50 {:8.1} us   (shap ÷ in-process p50: {:.1}x)",
                micros(shap),
                seconds / local.p50.as_secs_f64()
            );
        }
    }
    if let Some(versions) = python.as_ref().map(|p| &p["versions"]) {
        println!("python peers: {versions}");
    }
}

//! The memory soak of `benches/memory.sh`: a churnserve binary as a child process, in the
//! shape of a busy registry. Three models of three versions each (the bundled LightGBM and
//! logistic regression, alternately), a model cache of two, six callers (one per model by
//! its `production` alias, one per model by a version number that cycles through all its
//! versions, so sessions are evicted and reloaded all the time), an alias move every
//! 200 ms and a registration every 5 s. Every call carries a new customer id, so the
//! prediction log grows as it would.
//!
//! Prints one line: the resident set's peak (the kernel's VmHWM) and the sampled peak of
//! each third of the run, Score calls per second, and failed calls (any fails the run).
//!
//! `cargo bench -p tests --bench memory -- CHURNSERVE_BINARY LABEL SECONDS`

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use std::io::{BufRead, BufReader};
use tonic::transport::Channel;

const MODELS: [&str; 3] = ["memory-a", "memory-b", "memory-c"];
const FIRST_VERSIONS: u32 = 3;
const ALIAS_MOVE: Duration = Duration::from_millis(200);
const REGISTRATION: Duration = Duration::from_secs(5);

/// A line of `/proc/PID/status` in MiB (`VmRSS`, `VmHWM`).
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("a memory figure");
    kib / 1024.0
}

fn model_bytes() -> [Vec<u8>; 2] {
    ["telco-lgbm.onnx", "telco-logreg.onnx"].map(|file| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../models")
                .join(file),
        )
        .expect("a bundled model")
    })
}

fn customer(id: u64, template: &pb::Customer) -> pb::Customer {
    pb::Customer {
        customer_id: format!("memory-{id}"),
        ..template.clone()
    }
}

/// The example customer of `models/example-customer.json`.
fn example_customer() -> pb::Customer {
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/example-customer.json"),
        )
        .expect("example customer"),
    )
    .expect("json");
    let mut customer = pb::Customer::default();
    for (name, value) in fixture["features"].as_object().expect("features") {
        let kind = match value {
            serde_json::Value::Number(n) => {
                pb::feature_value::Kind::Number(n.as_f64().expect("number"))
            }
            other => pb::feature_value::Kind::Text(other.as_str().expect("text").to_owned()),
        };
        customer
            .features
            .insert(name.clone(), pb::FeatureValue { kind: Some(kind) });
    }
    customer
}

async fn register(registry: &mut RegistryServiceClient<Channel>, name: &str, bytes: &[u8]) {
    let metadata = pb::RegisterModelMetadata {
        name: name.to_owned(),
        description: "memory soak".to_owned(),
        ..Default::default()
    };
    tests::register(registry, metadata, bytes)
        .await
        .expect("registers");
}

async fn set_alias(registry: &mut RegistryServiceClient<Channel>, name: &str, version: u32) {
    registry
        .set_alias(pb::SetAliasRequest {
            name: name.to_owned(),
            alias: "production".to_owned(),
            version,
            gate: None,
        })
        .await
        .expect("the alias moves");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [binary, label, seconds] = &args[..] else {
        eprintln!("usage: memory CHURNSERVE_BINARY LABEL SECONDS");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("seconds");
    let data = tempfile::tempdir().expect("temporary data directory");
    let mut server = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off"])
        .args(["--model-cache-size", "2", "--data-dir"])
        .arg(data.path().join("registry"))
        .env("RUST_LOG", "warn,churnserve=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts churnserve");
    let pid = server.id();
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let address = lines
        .by_ref()
        .map(|line| line.expect("a log line"))
        .find_map(|line| {
            let rest = line.split("listening on ").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .expect("a `listening on` line");
    std::thread::spawn(move || lines.for_each(drop));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (scored, failures, samples) = runtime.block_on(soak(&address, pid, seconds));
    let peak = status_mib(pid, "VmHWM");
    let _ = server.kill();
    let _ = server.wait();

    let third = samples.len().div_ceil(3).max(1);
    let thirds: Vec<String> = samples
        .chunks(third)
        .map(|part| format!("{:.0}", part.iter().copied().fold(0.0, f64::max)))
        .collect();
    println!(
        "memory: {label}: peak {peak:.0} MiB; sampled peak by third {} MiB; {:.0} Score/s; {} failed",
        thirds.join(" / "),
        (scored - failures.len() as u64) as f64 / seconds as f64,
        failures.len()
    );
    if !failures.is_empty() {
        eprintln!("failed calls: {:?}", &failures[..failures.len().min(5)]);
        std::process::exit(1);
    }
}

async fn soak(address: &str, pid: u32, seconds: u64) -> (u64, Vec<String>, Vec<f64>) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let mut registry = RegistryServiceClient::new(channel.clone());
    let bytes = Arc::new(model_bytes());
    for name in MODELS {
        for version in 0..FIRST_VERSIONS {
            register(&mut registry, name, &bytes[version as usize % 2]).await;
        }
        set_alias(&mut registry, name, 1).await;
    }
    // The newest version of each model, as the callers by version number cycle to it.
    let newest: Arc<[AtomicU32; 3]> = Arc::new([const { AtomicU32::new(FIRST_VERSIONS) }; 3]);
    let scored = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let template = example_customer();
    let callers: Vec<_> = (0..2 * MODELS.len())
        .map(|caller| {
            let mut client = ScoringServiceClient::new(channel.clone());
            let (scored, failures, newest, template) = (
                Arc::clone(&scored),
                Arc::clone(&failures),
                Arc::clone(&newest),
                template.clone(),
            );
            tokio::spawn(async move {
                let model = caller % MODELS.len();
                let by_version = caller >= MODELS.len();
                let mut turn = 0u32;
                while Instant::now() < until {
                    let versions = newest[model].load(Ordering::Relaxed);
                    let request = pb::ScoreRequest {
                        model: Some(pb::ModelRef {
                            name: MODELS[model].to_owned(),
                            version: if by_version { 1 + turn % versions } else { 0 },
                            alias: if by_version { "" } else { "production" }.to_owned(),
                        }),
                        customer: Some(customer(scored.fetch_add(1, Ordering::Relaxed), &template)),
                        top_reasons: 0,
                    };
                    turn += 1;
                    if let Err(status) = client.score(request).await {
                        failures.lock().expect("lock").push(format!("{status:?}"));
                    }
                }
            })
        })
        .collect();
    let writer = {
        let (mut registry, newest, bytes) = (registry.clone(), Arc::clone(&newest), bytes);
        tokio::spawn(async move {
            let mut moves = 0u32;
            let mut last_registration = Instant::now();
            while Instant::now() < until {
                let model = moves as usize % MODELS.len();
                let versions = newest[model].load(Ordering::Relaxed);
                set_alias(&mut registry, MODELS[model], 1 + moves / 3 % versions).await;
                moves += 1;
                if last_registration.elapsed() >= REGISTRATION {
                    let model = moves as usize % MODELS.len();
                    let version = newest[model].load(Ordering::Relaxed) + 1;
                    register(&mut registry, MODELS[model], &bytes[version as usize % 2]).await;
                    newest[model].store(version, Ordering::Relaxed);
                    last_registration = Instant::now();
                }
                tokio::time::sleep(ALIAS_MOVE).await;
            }
        })
    };
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        ticks.tick().await;
        samples.push(status_mib(pid, "VmRSS"));
    }
    for caller in callers {
        caller.await.expect("a caller");
    }
    writer.await.expect("the writer");
    let failures = failures.lock().expect("lock").clone();
    (scored.load(Ordering::Relaxed), failures, samples)
}

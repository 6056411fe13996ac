//! The `churnserve` binary as a child process, for the tests that kill, starve or soak it
//! or read what it exports.
#![allow(
    dead_code,
    reason = "each test binary that includes this module uses part of it"
)]

pub mod replicas;

use std::io::{BufRead, BufReader};

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts churnserve on `data_dir` with `extra` flags and returns it with its address,
/// read from its log.
pub fn start(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    spawn(
        Command::new(env!("CARGO_BIN_EXE_churnserve")),
        data_dir,
        extra,
    )
}

/// Adds `serve` on an ephemeral port with `extra` flags to `command` (churnserve itself,
/// or a launcher such as `prlimit` whose last argument it is).
fn serve(command: &mut Command, data_dir: &Path, extra: &[&str]) {
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off"])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn,churnserve=info");
}

/// Starts churnserve through `command` (see [`serve`]) and returns it with its address.
pub fn spawn(mut command: Command, data_dir: &Path, extra: &[&str]) -> (Child, String) {
    serve(&mut command, data_dir, extra);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start churnserve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = listening_address(&mut lines);
    // Keep draining the log so the child never blocks on a full pipe. The thread inherits
    // the test's output capture: a failing test shows what its servers said.
    let label = address.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("[{label}] {line}");
        }
    });
    (child, format!("http://{address}"))
}

/// Reads the server's log up to its `listening on ADDRESS` line and returns ADDRESS.
pub fn listening_address(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    let line = lines
        .map(|line| line.expect("log line"))
        .find(|line| line.contains("listening on "))
        .expect("a `listening on` line before the log ends");
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_owned()
}

/// Runs `serve` through `command` with `extra` flags when it is expected to refuse to
/// start; returns what it printed on stderr. A server that starts after all is killed
/// after a minute.
pub fn start_fails(mut command: Command, data_dir: &Path, extra: &[&str]) -> String {
    serve(&mut command, data_dir, extra);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start churnserve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("churnserve started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "churnserve exited 0: {stderr}");
    stderr
}

/// The example customer of `models/example-customer.json`.
pub fn customer() -> pb::Customer {
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/example-customer.json"),
        )
        .expect("example customer"),
    )
    .expect("json");
    let mut customer = pb::Customer {
        customer_id: fixture["customer_id"]
            .as_str()
            .unwrap_or("example")
            .to_owned(),
        ..Default::default()
    };
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

/// Registers `bytes` as the next version of `name` in one RegisterModel stream.
pub async fn register(
    registry: &mut RegistryServiceClient<tonic::transport::Channel>,
    name: &str,
    bytes: &[u8],
) -> Result<pb::ModelVersion, tonic::Status> {
    use pb::register_model_request::Part;
    let metadata = pb::RegisterModelMetadata {
        name: name.to_owned(),
        description: "registered by a test".to_owned(),
        ..Default::default()
    };
    let parts: Vec<pb::RegisterModelRequest> = std::iter::once(Part::Metadata(metadata))
        .chain(bytes.chunks(64 * 1024).map(|c| Part::OnnxChunk(c.to_vec())))
        .map(|part| pb::RegisterModelRequest { part: Some(part) })
        .collect();
    registry
        .register_model(tokio_stream::iter(parts))
        .await
        .map(tonic::Response::into_inner)
}

//! SIGKILL in the middle of a registration, with a real child process: after a restart the
//! registry is consistent (every version's artifact present with its hash, no stray file,
//! no half-registered version).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// Starts churnserve on `data_dir` and returns it with its address, read from its log.
fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_churnserve"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start churnserve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines
        .by_ref()
        .map(|line| line.expect("log line"))
        .find(|line| line.contains("listening on "))
        .expect("a `listening on` line");
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address");
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{address}"))
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/telco-logreg.onnx"))
        .expect("model")
}

/// Opens a RegisterModel stream and sends the metadata and `bytes`; the stream stays
/// open (the sender is returned) unless `finish`.
async fn begin_registration(
    address: &str,
    bytes: &[u8],
    finish: bool,
) -> (
    Option<mpsc::Sender<pb::RegisterModelRequest>>,
    tokio::task::JoinHandle<Result<pb::ModelVersion, tonic::Status>>,
) {
    let mut client = RegistryServiceClient::connect(address.to_owned())
        .await
        .expect("connect");
    let (sender, receiver) = mpsc::channel(64);
    let call = tokio::spawn(async move {
        client
            .register_model(ReceiverStream::new(receiver))
            .await
            .map(tonic::Response::into_inner)
    });
    let metadata = pb::RegisterModelMetadata {
        name: "killed".to_owned(),
        ..pb::RegisterModelMetadata::default()
    };
    sender
        .send(pb::RegisterModelRequest {
            part: Some(pb::register_model_request::Part::Metadata(metadata)),
        })
        .await
        .expect("send");
    for chunk in bytes.chunks(16 * 1024) {
        let part = pb::register_model_request::Part::OnnxChunk(chunk.to_vec());
        sender
            .send(pb::RegisterModelRequest { part: Some(part) })
            .await
            .expect("send");
    }
    (if finish { None } else { Some(sender) }, call)
}

/// Every version's artifact is present and hash-correct, and no other file is stored.
async fn assert_consistent(address: &str, data_dir: &Path) -> Vec<u32> {
    let mut client = RegistryServiceClient::connect(address.to_owned())
        .await
        .expect("connect");
    let mut stored: Vec<String> = std::fs::read_dir(data_dir.join("artifacts/models"))
        .expect("artifacts")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    let mut referenced = Vec::new();
    let mut killed_versions = Vec::new();
    for model in client
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("models")
        .into_inner()
        .models
    {
        let versions = client
            .list_model_versions(pb::ListModelVersionsRequest {
                name: model.name.clone(),
                include_archived: true,
            })
            .await
            .expect("versions")
            .into_inner()
            .versions;
        for version in versions {
            let bytes =
                std::fs::read(data_dir.join(format!("artifacts/models/{}.onnx", version.sha256)))
                    .expect("artifact present");
            let actual: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                actual, version.sha256,
                "{} v{}",
                version.name, version.version
            );
            referenced.push(format!("{}.onnx", version.sha256));
            if model.name == "killed" {
                killed_versions.push(version.version);
            }
        }
    }
    referenced.sort();
    referenced.dedup();
    assert_eq!(stored, referenced, "no artifact without a version");
    let leftovers = std::fs::read_dir(data_dir.join("artifacts/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(leftovers, 0, "no unfinished upload survives a restart");
    killed_versions
}

#[test]
fn sigkill_during_registration_leaves_the_registry_consistent() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("registry");
    let bytes = model_bytes();

    // Killed halfway through the upload: the version never existed.
    let (mut server, address) = start(&data_dir);
    runtime.block_on(async {
        let (_open, _call) = begin_registration(&address, &bytes[..bytes.len() / 2], false).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        sigkill(&mut server);
    });
    let (server, address) = start(&data_dir);
    runtime.block_on(async {
        assert_eq!(
            assert_consistent(&address, &data_dir).await,
            Vec::<u32>::new()
        );
        let mut client = RegistryServiceClient::connect(address.clone())
            .await
            .expect("connect");
        let status = client
            .get_model_version(pb::GetModelVersionRequest {
                model: Some(pb::ModelRef {
                    name: "killed".to_owned(),
                    version: 1,
                    alias: String::new(),
                }),
            })
            .await
            .expect_err("no half-registered version");
        assert_eq!(status.code(), Code::NotFound);
    });

    // Killed right after the last byte, racing validation and the commit: afterwards the
    // version either exists whole or not at all, and numbering has no gap.
    let (mut server, mut address) = (server, address);
    for _ in 0..3 {
        runtime.block_on(async {
            let (_done, _call) = begin_registration(&address, &bytes, true).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        });
        sigkill(&mut server);
        (server, address) = start(&data_dir);
        let versions = runtime.block_on(assert_consistent(&address, &data_dir));
        assert_eq!(
            versions,
            (1..=versions.len() as u32).collect::<Vec<_>>(),
            "gap-free"
        );
    }
    sigkill(&mut server);
}

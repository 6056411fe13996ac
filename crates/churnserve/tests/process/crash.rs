//! Faults with a real child process: SIGKILL in the middle of a registration, a dataset
//! upload and alias moves leaves no damage that `churnserve check` can find (at most
//! leftovers the next start removes), and after a restart the registry is consistent
//! (every version's artifact present with its hash, no stray file, no half-registered
//! version, aliases explained by the audit log); a corrupted or missing artifact is
//! reported by `churnserve check` with its fix; a locked or read-only database stops the
//! start with one clear line.

use std::fs::Permissions;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::common;
use common::replicas::{model_bytes, runtime};
use common::{spawn, start, start_fails};

/// Runs `churnserve check` on `data_dir`: whether it passed, and what it printed.
fn check(data_dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_churnserve"))
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run churnserve check");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

/// No damage; `leftovers` whether files an interrupted write left are allowed.
fn assert_undamaged(data_dir: &Path, leftovers: bool) {
    let (passed, printed) = check(data_dir);
    assert!(passed && !printed.contains("DAMAGE"), "{printed}");
    assert!(printed.contains("ok"), "{printed}");
    if !leftovers {
        assert!(!printed.contains("leftover"), "{printed}");
    }
}

/// A registry the server created and seeded, in a temporary directory, with the server
/// gone: the directory and the registry's path in it.
fn seeded_registry() -> (tempfile::TempDir, PathBuf) {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("registry");
    let (mut server, _address) = start(&data_dir, &[]);
    sigkill(&mut server);
    (data, data_dir)
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
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
    let runtime = runtime();
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("registry");
    let bytes = model_bytes("telco-logreg.onnx");

    // Killed halfway through the upload: the version never existed.
    let (mut server, address) = start(&data_dir, &[]);
    runtime.block_on(async {
        let (_open, _call) = begin_registration(&address, &bytes[..bytes.len() / 2], false).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        sigkill(&mut server);
    });
    assert_undamaged(&data_dir, true);
    let (server, address) = start(&data_dir, &[]);
    assert_undamaged(&data_dir, false);
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
        assert_undamaged(&data_dir, true);
        (server, address) = start(&data_dir, &[]);
        assert_undamaged(&data_dir, false);
        let versions = runtime.block_on(assert_consistent(&address, &data_dir));
        assert_eq!(
            versions,
            (1..=versions.len() as u32).collect::<Vec<_>>(),
            "gap-free"
        );
    }
    sigkill(&mut server);
}

#[test]
fn sigkill_during_a_dataset_upload_and_alias_moves_leaves_no_damage() {
    let runtime = runtime();
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("registry");
    let csv =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/data/test.csv"))
            .expect("dataset");

    let (mut server, address) = start(&data_dir, &[]);
    runtime.block_on(async {
        let mut client = RegistryServiceClient::connect(address.clone())
            .await
            .expect("connect");
        let (sender, receiver) = mpsc::channel(64);
        let _call =
            tokio::spawn(async move { client.upload_dataset(ReceiverStream::new(receiver)).await });
        let metadata = pb::DatasetMetadata {
            name: "killed-upload".to_owned(),
            label_column: "churn".to_owned(),
            positive_label: "Yes".to_owned(),
            description: String::new(),
        };
        let parts = std::iter::once(pb::upload_dataset_request::Part::Metadata(metadata)).chain(
            csv[..csv.len() / 2]
                .chunks(16 * 1024)
                .map(|chunk| pb::upload_dataset_request::Part::CsvChunk(chunk.to_vec())),
        );
        for part in parts {
            sender
                .send(pb::UploadDatasetRequest { part: Some(part) })
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        sigkill(&mut server);
    });
    assert_undamaged(&data_dir, true);

    // Alias moves back and forth, killed wherever they are.
    let (mut server, address) = start(&data_dir, &[]);
    assert_undamaged(&data_dir, false);
    let moves = runtime.block_on(async {
        let mut client = RegistryServiceClient::connect(address.clone())
            .await
            .expect("connect");
        let datasets = client
            .list_datasets(pb::ListDatasetsRequest {})
            .await
            .expect("datasets")
            .into_inner()
            .datasets;
        assert!(
            datasets.iter().all(|d| d.name != "killed-upload"),
            "no half-uploaded dataset"
        );
        let mover = tokio::spawn(async move {
            let mut moves = 0u32;
            loop {
                let request = pb::SetAliasRequest {
                    name: "telco-churn".to_owned(),
                    alias: "production".to_owned(),
                    version: 1 + moves % 2,
                    gate: None,
                };
                if client.set_alias(request).await.is_err() {
                    return moves;
                }
                moves += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        sigkill(&mut server);
        mover.await.expect("mover")
    });
    assert!(moves > 0, "some alias moves happened before the kill");
    assert_undamaged(&data_dir, true);
    let (mut server, _address) = start(&data_dir, &[]);
    assert_undamaged(&data_dir, false);
    sigkill(&mut server);
}

#[test]
fn check_reports_a_corrupted_and_a_missing_artifact_with_their_fixes() {
    let (data, data_dir) = seeded_registry();
    assert_undamaged(&data_dir, false);

    let mut artifacts: Vec<_> = std::fs::read_dir(data_dir.join("artifacts/models"))
        .expect("artifacts")
        .map(|entry| entry.expect("entry").path())
        .collect();
    artifacts.sort();
    let [first, second] = &artifacts[..] else {
        panic!("the two bundled versions' artifacts: {artifacts:?}")
    };
    let mut bytes = std::fs::read(first).expect("artifact");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(first, bytes).expect("corrupt");
    std::fs::remove_file(second).expect("remove");

    let (passed, printed) = check(&data_dir);
    assert!(!passed, "damage fails the check: {printed}");
    let damage: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("DAMAGE"))
        .collect();
    assert_eq!(damage.len(), 2, "{printed}");
    assert!(
        printed.contains("has SHA-256") && printed.contains("cannot be read"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "fix: restore {}",
            data_dir.join("artifacts/models").display()
        )) && printed.contains("register its ONNX file again"),
        "{printed}"
    );
    let named = |path: &Path| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .expect("hash")
            .to_owned()
    };
    assert!(
        printed.contains(&named(first)) && printed.contains(&named(second)),
        "{printed}"
    );

    let missing = check(&data.path().join("nothing-here"));
    assert!(
        !missing.0 && missing.1.contains("does not exist"),
        "{}",
        missing.1
    );
}

#[test]
fn a_full_disk_refuses_the_upload_cleanly_and_the_server_keeps_serving() {
    const LIMIT: u64 = 1 << 20;
    let runtime = runtime();
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("registry");
    // A file-size limit stands in for a full disk: writes past it fail with EFBIG.
    let mut limited = Command::new("prlimit");
    limited
        .arg(format!("--fsize={LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_churnserve"));
    let (mut server, address) = spawn(limited, &data_dir, &[]);
    let csv =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/data/train.csv"))
            .expect("dataset");
    let header = csv.iter().position(|&b| b == b'\n').expect("header") + 1;
    let mut big = csv.clone();
    for _ in 0..2 {
        big.extend_from_slice(&csv[header..]);
    }
    assert!(big.len() as u64 > LIMIT);
    runtime.block_on(async {
        let mut client = RegistryServiceClient::connect(address.clone())
            .await
            .expect("connect");
        let metadata = pb::DatasetMetadata {
            name: "too-big".to_owned(),
            label_column: "churn".to_owned(),
            positive_label: "Yes".to_owned(),
            description: String::new(),
        };
        let parts: Vec<pb::UploadDatasetRequest> =
            std::iter::once(pb::upload_dataset_request::Part::Metadata(metadata))
                .chain(
                    big.chunks(64 * 1024)
                        .map(|c| pb::upload_dataset_request::Part::CsvChunk(c.to_vec())),
                )
                .map(|part| pb::UploadDatasetRequest { part: Some(part) })
                .collect();
        let status = client
            .upload_dataset(tokio_stream::iter(parts))
            .await
            .expect_err("no room for the file");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("storage is full"),
            "{}",
            status.message()
        );
        let (_done, call) =
            begin_registration(&address, &model_bytes("telco-logreg.onnx"), true).await;
        let version = call
            .await
            .expect("call")
            .expect("a small write still succeeds");
        assert_eq!(version.version, 1);
    });
    sigkill(&mut server);
    assert_undamaged(&data_dir, false);
}

#[test]
fn a_locked_database_is_one_clear_error_at_start() {
    let (_data, data_dir) = seeded_registry();
    // Another process holds the write lock for longer than the server waits for it.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             db.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(data_dir.join("registry.db"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut locked = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut locked)
        .expect("lock taken");
    assert_eq!(locked.trim(), "locked");
    let stderr = start_fails(
        Command::new(env!("CARGO_BIN_EXE_churnserve")),
        &data_dir,
        &[],
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        stderr.contains("cannot open the registry in") && stderr.contains("database is locked"),
        "{stderr}"
    );
}

/// Sets `mode` on `path` and, for a directory, on everything under it (directories get
/// `mode` with the execute bits of its read bits).
fn set_mode_recursively(path: &Path, mode: u32) {
    let metadata = std::fs::metadata(path).expect("metadata");
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            set_mode_recursively(&entry.expect("entry").path(), mode);
        }
        let searchable = mode | ((mode & 0o444) >> 2);
        std::fs::set_permissions(path, Permissions::from_mode(searchable)).expect("chmod");
    } else {
        std::fs::set_permissions(path, Permissions::from_mode(mode)).expect("chmod");
    }
}

#[test]
fn a_read_only_registry_is_one_clear_error_at_start() {
    /// Root writes through any permission bits, so as root the server runs as `nobody`.
    const NOBODY: u32 = 65534;
    let (data, data_dir) = seeded_registry();
    std::fs::set_permissions(data.path(), Permissions::from_mode(0o755)).expect("chmod");
    set_mode_recursively(&data_dir, 0o444);
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnserve"));
    let running_as_root = std::fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
    if running_as_root {
        command.uid(NOBODY).gid(NOBODY);
    }
    let stderr = start_fails(command, &data_dir, &[]);
    set_mode_recursively(&data_dir, 0o644);
    assert!(
        stderr.contains("cannot open the registry in")
            && stderr.contains("storage is not writable (")
            && stderr.contains("readonly database")
            && stderr.contains("give the server's user read and write access"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_undamaged(&data_dir, false);
}

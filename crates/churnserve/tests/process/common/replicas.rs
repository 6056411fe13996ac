//! Replicas on a PostgreSQL cluster and an S3-compatible server of their own, both started
//! by the project's scripts (`scripts/postgres.sh`, `scripts/s3.sh`) so that a test or a
//! benchmark can stop and restart them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use tonic::transport::Channel;

use super::{customer, register, spawn};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run a script");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A PostgreSQL cluster and an S3-compatible server of this test's own.
pub struct Backing {
    pub dir: tempfile::TempDir,
    pub registry_url: String,
    pub artifact_store: String,
    s3_env: Vec<(String, String)>,
}

impl Backing {
    pub fn start() -> Backing {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("a directory the database's user can enter");
        let registry_url = run(Command::new(script("postgres.sh"))
            .arg("start")
            .arg(dir.path().join("postgres")))
        .trim()
        .to_owned();
        let exports = run(Command::new(script("s3.sh"))
            .arg("start")
            .arg(dir.path().join("s3")));
        let s3_env: Vec<(String, String)> = exports
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        let bucket = s3_env
            .iter()
            .find(|(key, _)| key == "CHURNSERVE_TEST_S3_BUCKET")
            .map(|(_, bucket)| bucket.clone())
            .expect("a bucket");
        Backing {
            dir,
            registry_url,
            artifact_store: format!("s3://{bucket}/registry"),
            s3_env,
        }
    }

    pub fn postgres(&self, command: &str) {
        run(Command::new(script("postgres.sh"))
            .arg(command)
            .arg(self.dir.path().join("postgres")));
    }

    pub fn s3(&self, command: &str) {
        run(Command::new(script("s3.sh"))
            .arg(command)
            .arg(self.dir.path().join("s3")));
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_churnserve"));
        command.envs(self.s3_env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn shared_flags(&self) -> [&str; 4] {
        [
            "--registry-url",
            &self.registry_url,
            "--artifact-store",
            &self.artifact_store,
        ]
    }

    /// A replica with its own node-local data directory.
    pub fn replica(&self, name: &str) -> Replica {
        self.replica_with(name, &[])
    }

    /// A replica with `extra` flags.
    pub fn replica_with(&self, name: &str, extra: &[&str]) -> Replica {
        let mut flags = self.shared_flags().to_vec();
        flags.extend(["--registry-poll-ms", "500"]);
        flags.extend(extra);
        let (child, address) = spawn(self.command(), &self.dir.path().join(name), &flags);
        Replica { child, address }
    }

    /// The file behind an object of the S3 server (`s3s-fs` keeps objects as files).
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.dir
            .path()
            .join("s3/data/churnserve/registry")
            .join(key)
    }

    /// `churnserve check` on the shared registry: whether it passed, and what it printed.
    pub fn check(&self) -> (bool, String) {
        let output = self
            .command()
            .arg("check")
            .args(self.shared_flags())
            .arg("--data-dir")
            .arg(self.dir.path().join("checker"))
            .output()
            .expect("run churnserve check");
        let printed = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), printed)
    }

    pub fn assert_undamaged(&self) {
        let (passed, printed) = self.check();
        assert!(passed && !printed.contains("DAMAGE"), "{printed}");
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        let _ = Command::new(script("postgres.sh"))
            .arg("stop")
            .arg(self.dir.path().join("postgres"))
            .output();
        let _ = Command::new(script("s3.sh"))
            .arg("stop")
            .arg(self.dir.path().join("s3"))
            .output();
    }
}

pub struct Replica {
    pub child: Child,
    pub address: String,
}

impl Replica {
    pub async fn scoring(&self) -> ScoringServiceClient<Channel> {
        ScoringServiceClient::connect(self.address.clone())
            .await
            .expect("connect")
    }

    pub async fn registry(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::connect(self.address.clone())
            .await
            .expect("connect")
    }

    /// Registers `models/FILE` as the next version of `telco-churn` through this replica.
    pub async fn register(&self, file: &str) -> Result<pb::ModelVersion, tonic::Status> {
        register(
            &mut self.registry().await,
            "telco-churn",
            &model_bytes(file),
        )
        .await
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn model_bytes(file: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(file),
    )
    .expect("model")
}

pub fn score_request() -> pb::ScoreRequest {
    pb::ScoreRequest {
        model: Some(pb::ModelRef {
            name: "telco-churn".to_owned(),
            alias: "production".to_owned(),
            version: 0,
        }),
        customer: Some(customer()),
        top_reasons: 0,
    }
}

/// The version `production` answers with on `replica`.
pub async fn serving(replica: &Replica) -> Result<u32, tonic::Status> {
    let response = replica.scoring().await.score(score_request()).await?;
    Ok(response.into_inner().served_by.expect("served by").version)
}

pub async fn set_alias(replica: &Replica, version: u32) -> Result<pb::ModelVersion, tonic::Status> {
    replica
        .registry()
        .await
        .set_alias(pb::SetAliasRequest {
            name: "telco-churn".to_owned(),
            alias: "production".to_owned(),
            version,
            gate: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Waits until every replica's `production` is `version`; returns how long each took.
pub async fn until_served(replicas: &[&Replica], version: u32, limit: Duration) -> Vec<Duration> {
    let started = Instant::now();
    let mut took = Vec::new();
    for replica in replicas {
        loop {
            if serving(replica).await.ok() == Some(version) {
                took.push(started.elapsed());
                break;
            }
            assert!(
                started.elapsed() < limit,
                "{} does not serve version {version} after {limit:?}",
                replica.address
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    took
}

/// A free loopback port, for a replica's HTTP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` on a loopback HTTP port: the status line and the body.
pub fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

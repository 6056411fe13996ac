//! A real churnserve on an ephemeral port with a temporary data directory, its clients,
//! and registering models and datasets through them.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use churnserve::{Config, ServerError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::*;

/// Generous client limits, so the server's own limits are what tests exercise.
const CLIENT_MESSAGE_LIMIT: usize = 256 * 1024 * 1024;

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    data_dir: PathBuf,
    temporary: Option<tempfile::TempDir>,
}

impl TestServer {
    /// The server with its default configuration.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// The server after `adjust` changes its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let temporary = tempfile::tempdir().expect("temporary data directory");
        let mut server = TestServer::start_on(&temporary.path().join("registry"), adjust).await;
        server.temporary = Some(temporary);
        server
    }

    /// A server on an existing data directory, which outlives it.
    /// As `start_with`, with the HTTP port on a free port, which it returns.
    pub async fn start_with_http(adjust: impl FnOnce(&mut Config)) -> (TestServer, u16) {
        let port = free_port();
        let server = TestServer::start_with(|config| {
            config.http_listen.0 = Some(([127, 0, 0, 1], port).into());
            adjust(config);
        })
        .await;
        (server, port)
    }

    pub async fn start_on(data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let address = listener.local_addr().expect("bound address");
        let mut config = Config::new(address, data_dir.to_path_buf());
        adjust(&mut config);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(churnserve::serve(config, listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            address,
            shutdown: Some(shutdown),
            task: Some(task),
            data_dir: data_dir.to_path_buf(),
            temporary: None,
        }
    }

    /// A new connection to the server, configured as a bulk client would be.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.address))
            .expect("endpoint")
            .http2_adaptive_window(true)
            .connect()
            .await
            .expect("connect to the test server")
    }

    pub async fn scoring(&self) -> ScoringServiceClient<Channel> {
        ScoringServiceClient::new(self.channel().await)
            .max_decoding_message_size(CLIENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CLIENT_MESSAGE_LIMIT)
    }

    pub async fn registry(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel().await)
    }

    /// The server's data directory (registry database and artifacts).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server and returns how `serve` ended.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task
            .take()
            .expect("server task")
            .into_future()
            .await
            .expect("server task panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Streams `bytes` to RegisterModel after `metadata`, in 64 KiB chunks.
pub async fn register(
    client: &mut RegistryServiceClient<Channel>,
    metadata: pb::RegisterModelMetadata,
    bytes: &[u8],
) -> Result<pb::ModelVersion, tonic::Status> {
    use pb::register_model_request::Part;
    let messages: Vec<pb::RegisterModelRequest> = std::iter::once(Part::Metadata(metadata))
        .chain(
            bytes
                .chunks(64 * 1024)
                .map(|chunk| Part::OnnxChunk(chunk.to_vec())),
        )
        .map(|part| pb::RegisterModelRequest { part: Some(part) })
        .collect();
    client
        .register_model(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Uploads `csv` as dataset `name`, labelled by its `churn` column ("Yes" = churned).
pub async fn upload_dataset(
    client: &mut RegistryServiceClient<Channel>,
    name: &str,
    csv: &[u8],
) -> Result<pb::Dataset, tonic::Status> {
    use pb::upload_dataset_request::Part;
    let metadata = pb::DatasetMetadata {
        name: name.to_owned(),
        label_column: "churn".to_owned(),
        positive_label: "Yes".to_owned(),
        description: "hold-out customers".to_owned(),
    };
    let messages: Vec<pb::UploadDatasetRequest> = std::iter::once(Part::Metadata(metadata))
        .chain(
            csv.chunks(100_000)
                .map(|chunk| Part::CsvChunk(chunk.to_vec())),
        )
        .map(|part| pb::UploadDatasetRequest { part: Some(part) })
        .collect();
    client
        .upload_dataset(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

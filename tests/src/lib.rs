//! Helpers for the integration tests: a real churnserve on an ephemeral port with a
//! temporary data directory, clients for it, and the fixtures models/train.py writes.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use churn_api::inference as kserve;
use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use churnserve::{Config, ServerError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

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

/// The bytes of a repository file.
pub fn repo_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(repo_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if let Ok(relative) = path.strip_prefix(root) {
                found.push(relative.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

/// A path in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// One raw value as a fixture stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum FixtureValue {
    Number(f64),
    Text(String),
    Missing,
}

/// One customer of a fixture, with the probability Python onnxruntime computed.
#[derive(Debug, Clone)]
pub struct FixtureCustomer {
    pub id: String,
    pub features: Vec<(String, FixtureValue)>,
    pub churn_probability: f64,
}

/// Reads `key` ("customers" or "unseen_category_customers") of a fixture file.
pub fn fixture(relative: &str, key: &str) -> Vec<FixtureCustomer> {
    fixture_json(relative)[key]
        .as_array()
        .unwrap_or_else(|| panic!("{relative} has no {key}"))
        .iter()
        .map(|customer| FixtureCustomer {
            churn_probability: customer["churn_probability"]
                .as_f64()
                .expect("churn_probability"),
            ..fixture_customer(customer)
        })
        .collect()
}

fn fixture_json(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(relative)).expect("fixture file");
    serde_json::from_str(&text).expect("fixture json")
}

/// A customer's id and features, with no probability.
fn fixture_customer(customer: &Value) -> FixtureCustomer {
    FixtureCustomer {
        id: customer["customer_id"]
            .as_str()
            .expect("customer_id")
            .to_owned(),
        features: customer["features"]
            .as_object()
            .expect("features")
            .iter()
            .map(|(name, value)| (name.clone(), fixture_value(value)))
            .collect(),
        churn_probability: f64::NAN,
    }
}

/// Python shap's attributions for hold-out customers, against the first rows of a CSV.
#[derive(Debug, Clone)]
pub struct ExplanationFixture {
    pub background_csv: String,
    pub background_rows: usize,
    pub base_value: f64,
    pub customers: Vec<ExplainedCustomer>,
    /// For a linear model: each feature's spread of its margin term over the background.
    pub native_importance: Option<Vec<(String, f64)>>,
}

/// One customer with shap's output value and attributions by raw feature name.
#[derive(Debug, Clone)]
pub struct ExplainedCustomer {
    pub customer: FixtureCustomer,
    pub output_value: f64,
    pub attributions: Vec<(String, f64)>,
}

/// Reads an `explain-*.json` fixture written by `models/train.py`.
pub fn explanation_fixture(relative: &str) -> ExplanationFixture {
    let json = fixture_json(relative);
    let number = |v: &Value| v.as_f64().expect("number");
    ExplanationFixture {
        background_csv: json["background"]["csv"]
            .as_str()
            .expect("background csv")
            .to_owned(),
        background_rows: json["background"]["first_rows"]
            .as_u64()
            .expect("background rows") as usize,
        base_value: number(&json["base_value"]),
        native_importance: json["native_importance"].as_object().map(|scores| {
            scores
                .iter()
                .map(|(name, v)| (name.clone(), number(v)))
                .collect()
        }),
        customers: json["customers"]
            .as_array()
            .expect("customers")
            .iter()
            .map(|c| ExplainedCustomer {
                customer: fixture_customer(c),
                output_value: number(&c["output_value"]),
                attributions: c["attributions"]
                    .as_object()
                    .expect("attributions")
                    .iter()
                    .map(|(name, v)| (name.clone(), number(v)))
                    .collect(),
            })
            .collect(),
    }
}

/// The first `rows` customers of a repository CSV, by the model's feature names.
pub fn csv_customers(
    schema: &churn_engine::Schema,
    relative: &str,
    rows: usize,
) -> Vec<churn_engine::Customer> {
    let mut reader = csv::Reader::from_path(repo_path(relative)).expect("csv file");
    let header: Vec<String> = reader
        .headers()
        .expect("csv header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mapping = churn_engine::ColumnMapping::new(schema, &header, Some("customerid"))
        .unwrap_or_else(|missing| panic!("{relative} lacks {missing:?}"));
    reader
        .records()
        .take(rows)
        .map(|record| {
            let record = record.expect("csv record");
            mapping.customer(&record.iter().collect::<Vec<_>>())
        })
        .collect()
}

fn fixture_value(value: &Value) -> FixtureValue {
    match value {
        Value::Null => FixtureValue::Missing,
        Value::Object(kind) => match (kind.get("text"), kind.get("number")) {
            (Some(text), _) => FixtureValue::Text(text.as_str().expect("text").to_owned()),
            (_, Some(number)) => FixtureValue::Number(number.as_f64().expect("number")),
            _ => panic!("fixture value {value} has neither text nor number"),
        },
        other => panic!("unexpected fixture value {other}"),
    }
}

impl FixtureCustomer {
    pub fn to_proto(&self) -> pb::Customer {
        pb::Customer {
            customer_id: self.id.clone(),
            features: self
                .features
                .iter()
                .map(|(name, value)| {
                    let kind = match value {
                        FixtureValue::Number(v) => Some(pb::feature_value::Kind::Number(*v)),
                        FixtureValue::Text(t) => Some(pb::feature_value::Kind::Text(t.clone())),
                        FixtureValue::Missing => None,
                    };
                    (name.clone(), pb::FeatureValue { kind })
                })
                .collect(),
        }
    }

    pub fn to_engine(&self) -> churn_engine::Customer {
        churn_engine::Customer {
            id: self.id.clone(),
            features: self
                .features
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        FixtureValue::Number(v) => churn_engine::FeatureValue::Number(*v),
                        FixtureValue::Text(t) => churn_engine::FeatureValue::Text(t.clone()),
                        FixtureValue::Missing => churn_engine::FeatureValue::Missing,
                    };
                    (name.clone(), value)
                })
                .collect(),
        }
    }
}

/// Lowercase hex SHA-256 of a repository file.
pub fn file_sha256(relative: &str) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(repo_path(relative)).expect("file");
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One bundled model: its file and fixture stem, and what the seeded registry makes of it.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    pub file: &'static str,
    pub version: u32,
    pub alias: &'static str,
}

/// The name the server seeds the bundled models under.
pub const BUNDLED_MODEL: &str = "telco-churn";

/// The bundled models, as the seeded registry serves them.
pub const BUNDLED: &[Bundled] = &[
    Bundled {
        file: "telco-logreg",
        version: 1,
        alias: "production",
    },
    Bundled {
        file: "telco-lgbm",
        version: 2,
        alias: "challenger",
    },
];

/// The bundled LightGBM model (version 2, alias `challenger`).
pub const LGBM: Bundled = BUNDLED[1];

/// Agreement required between churnserve and Python onnxruntime.
pub const PYTHON_TOLERANCE: f64 = 1e-5;

/// Agreement required with scikit-learn's metrics of the same predictions.
pub const SCIKIT_LEARN_AGREEMENT: f64 = 1e-9;

/// `models/fixtures/metrics.json`: scikit-learn's metrics of known scores.
pub fn metrics_fixture() -> Value {
    fixture_json("models/fixtures/metrics.json")
}

/// `ours` within `SCIKIT_LEARN_AGREEMENT` of the fixture's number.
pub fn assert_close(context: &str, ours: f64, python: &Value) {
    let python = python
        .as_f64()
        .unwrap_or_else(|| panic!("{context}: not a number"));
    assert!(
        (ours - python).abs() <= SCIKIT_LEARN_AGREEMENT,
        "{context}: {ours} vs scikit-learn {python}"
    );
}

/// `models/fixtures/outcomes.json`: a prediction log, outcomes, and what each cohort's
/// realized metrics (scikit-learn) and estimate (numpy) must be.
pub fn outcomes_fixture() -> Value {
    fixture_json("models/fixtures/outcomes.json")
}

/// The label-free estimate against numpy's, within 1e-9.
pub fn assert_estimate_matches(
    context: &str,
    ours: &churn_metrics::EstimatedMetrics,
    expected: &Value,
) {
    for (name, value) in [
        ("roc_auc", ours.roc_auc),
        ("accuracy", ours.accuracy),
        ("precision", ours.precision),
        ("recall", ours.recall),
        ("f1", ours.f1),
    ] {
        assert_close(
            &format!("{context} estimated {name}"),
            value,
            &expected[name],
        );
    }
}

/// Every field against the fixture's, numbers within 1e-9 and counts exactly.
pub fn assert_metrics_match(context: &str, ours: &churn_metrics::Metrics, expected: &Value) {
    assert_eq!(
        ours.rows,
        expected["rows"].as_u64().expect("rows"),
        "{context}"
    );
    assert_eq!(
        ours.positives,
        expected["positives"].as_u64().expect("positives"),
        "{context}"
    );
    for (name, value) in [
        ("roc_auc", ours.roc_auc),
        ("pr_auc", ours.pr_auc),
        ("log_loss", ours.log_loss),
        ("brier", ours.brier),
        ("accuracy", ours.accuracy),
        ("precision", ours.precision),
        ("recall", ours.recall),
        ("f1", ours.f1),
    ] {
        assert_close(&format!("{context} {name}"), value, &expected[name]);
    }
    let confusion = &expected["confusion"];
    assert_eq!(
        [
            ours.confusion.tp,
            ours.confusion.fp,
            ours.confusion.tn,
            ours.confusion.fn_
        ],
        ["tp", "fp", "tn", "fn"].map(|k| confusion[k].as_u64().expect("count")),
        "{context} confusion"
    );
    let bins = expected["calibration"].as_array().expect("calibration");
    assert_eq!(ours.calibration.len(), bins.len());
    for (bin, python) in ours.calibration.iter().zip(bins) {
        assert_eq!(
            bin.count,
            python["count"].as_u64().expect("count"),
            "{context} bin {}",
            bin.lower
        );
        for (name, value) in [
            ("lower", bin.lower),
            ("upper", bin.upper),
            ("mean_predicted", bin.mean_predicted),
            ("observed_rate", bin.observed_rate),
        ] {
            assert_close(
                &format!("{context} calibration {} {name}", bin.lower),
                value,
                &python[name],
            );
        }
    }
    let deciles = expected["lift"].as_array().expect("lift");
    assert_eq!(ours.lift.len(), deciles.len());
    for (decile, python) in ours.lift.iter().zip(deciles) {
        assert_eq!(
            u64::from(decile.decile),
            python["decile"].as_u64().expect("decile")
        );
        for (name, value) in [
            ("churn_rate", decile.churn_rate),
            ("lift", decile.lift),
            ("cumulative_capture", decile.cumulative_capture),
        ] {
            assert_close(
                &format!("{context} decile {} {name}", decile.decile),
                value,
                &python[name],
            );
        }
    }
    for (name, curve) in [("roc_curve", &ours.roc_curve), ("pr_curve", &ours.pr_curve)] {
        assert_curve_matches(&format!("{context} {name}"), curve, &expected[name]);
    }
}

/// A curve against scikit-learn's points; `null` is the threshold `+∞`.
fn assert_curve_matches(context: &str, ours: &[churn_metrics::CurvePoint], expected: &Value) {
    let points = expected.as_array().expect("curve points");
    assert_eq!(ours.len(), points.len(), "{context}: number of points");
    for (k, (point, python)) in ours.iter().zip(points).enumerate() {
        assert_close(&format!("{context}[{k}].x"), point.x, &python["x"]);
        assert_close(&format!("{context}[{k}].y"), point.y, &python["y"]);
        if python["threshold"].is_null() {
            assert_eq!(point.threshold, f64::INFINITY, "{context}[{k}].threshold");
        } else {
            assert_close(
                &format!("{context}[{k}].threshold"),
                point.threshold,
                &python["threshold"],
            );
        }
    }
}

fn curve_from_proto(points: &[pb::CurvePoint]) -> Vec<churn_metrics::CurvePoint> {
    points
        .iter()
        .map(|p| churn_metrics::CurvePoint {
            x: p.x,
            y: p.y,
            threshold: p.threshold,
        })
        .collect()
}

/// The metrics a server answered, as the metrics crate holds them.
pub fn metrics_from_proto(metrics: &pb::Metrics) -> churn_metrics::Metrics {
    let confusion = metrics.confusion.unwrap_or_default();
    churn_metrics::Metrics {
        rows: metrics.rows,
        positives: metrics.positives,
        roc_auc: metrics.roc_auc,
        pr_auc: metrics.pr_auc,
        log_loss: metrics.log_loss,
        brier: metrics.brier,
        accuracy: metrics.accuracy,
        precision: metrics.precision,
        recall: metrics.recall,
        f1: metrics.f1,
        confusion: churn_metrics::Confusion {
            tp: confusion.tp,
            fp: confusion.fp,
            tn: confusion.tn,
            fn_: confusion.r#fn,
        },
        calibration: metrics
            .calibration
            .iter()
            .map(|b| churn_metrics::CalibrationBin {
                lower: b.lower,
                upper: b.upper,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
                count: b.count,
            })
            .collect(),
        lift: metrics
            .lift
            .iter()
            .map(|b| churn_metrics::LiftBin {
                decile: b.decile,
                churn_rate: b.churn_rate,
                lift: b.lift,
                cumulative_capture: b.cumulative_capture,
            })
            .collect(),
        roc_curve: curve_from_proto(&metrics.roc_curve),
        pr_curve: curve_from_proto(&metrics.pr_curve),
    }
}

/// The customers as columns, each in the form its values allow.
pub fn customer_columns(customers: &[pb::Customer]) -> pb::CustomerColumns {
    use pb::feature_column::Values;
    use pb::feature_value::Kind;
    let names: Vec<String> = customers[0].features.keys().cloned().collect();
    let features = names
        .iter()
        .map(|name| {
            let values: Vec<pb::FeatureValue> = customers
                .iter()
                .map(|c| c.features.get(name).cloned().unwrap_or_default())
                .collect();
            let numbers: Option<Vec<f64>> = values
                .iter()
                .map(|v| match v.kind {
                    Some(Kind::Number(n)) => Some(n),
                    None => Some(f64::NAN),
                    _ => None,
                })
                .collect();
            let texts: Option<Vec<String>> = values
                .iter()
                .map(|v| match &v.kind {
                    Some(Kind::Text(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            let values = match (numbers, texts) {
                (Some(values), _) => Values::Numbers(pb::NumberColumn { values }),
                (_, Some(values)) => Values::Texts(pb::TextColumn { values }),
                _ => Values::Mixed(pb::ValueColumn { values }),
            };
            pb::FeatureColumn {
                name: name.clone(),
                values: Some(values),
            }
        })
        .collect();
    pb::CustomerColumns {
        customer_ids: customers.iter().map(|c| c.customer_id.clone()).collect(),
        features,
    }
}

/// KServe `ModelInfer` inputs for `rows`: one typed `[rows, 1]` tensor per input the
/// model's metadata lists, in its order and with its datatypes.
pub fn kserve_inputs(
    metadata: &kserve::ModelMetadataResponse,
    rows: &[FixtureCustomer],
) -> Vec<kserve::model_infer_request::InferInputTensor> {
    metadata
        .inputs
        .iter()
        .map(|tensor| {
            let mut contents = kserve::InferTensorContents::default();
            for customer in rows {
                let value = &customer
                    .features
                    .iter()
                    .find(|(name, _)| *name == tensor.name)
                    .expect("every input is a feature")
                    .1;
                match (value, tensor.datatype.as_str()) {
                    (FixtureValue::Text(text), _) => {
                        contents.bytes_contents.push(text.clone().into_bytes())
                    }
                    (FixtureValue::Number(v), "INT64") => contents.int64_contents.push(*v as i64),
                    (FixtureValue::Number(v), _) => contents.fp32_contents.push(*v as f32),
                    (FixtureValue::Missing, _) => contents.fp32_contents.push(f32::NAN),
                }
            }
            kserve::model_infer_request::InferInputTensor {
                name: tensor.name.clone(),
                datatype: tensor.datatype.clone(),
                shape: vec![rows.len() as i64, 1],
                parameters: Default::default(),
                contents: Some(contents),
            }
        })
        .collect()
}

/// A port nothing listens on now, for a server's HTTP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("address")
        .port()
}

/// A connection to the HTTP port on `port`, waiting for the server to bind it.
pub async fn http_connect(port: u16) -> tokio::net::TcpStream {
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the HTTP port {port} accepts connections");
}

/// `GET path` on a connection of its own: the status line and the body.
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    http_request(port, "GET", path, &[], b"").await
}

/// One HTTP/1.1 request with `headers` and `body` on a connection of its own: the status
/// line and the body.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, String) {
    let (status, _, body) = http_exchange(port, method, path, headers, body).await;
    (status, body)
}

/// As `http_request`, with the response's header lines between the status and the body.
pub async fn http_exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, Vec<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = http_connect(port).await;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    // A server may answer (413) before reading a large body, and close.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines().map(str::to_owned);
    let status = lines.next().unwrap_or_default();
    (status, lines.collect(), body.to_owned())
}

/// The value of the sample `series` (name and labels, exactly) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// A certificate authority made at test time, a server certificate for `localhost` and
/// 127.0.0.1, and a client certificate, all as PEM (certificate, key).
#[derive(Debug)]
pub struct Pki {
    pub ca: String,
    pub server: (String, String),
    pub client: (String, String),
}

/// The files of a [`Pki`], written to a directory.
#[derive(Debug)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Writes every certificate and key as a PEM file in `dir`.
    pub fn write_to(&self, dir: &Path) -> PkiFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("writes a PEM file");
            path
        };
        PkiFiles {
            ca: write("ca.pem", &self.ca),
            server_cert: write("server.pem", &self.server.0),
            server_key: write("server.key", &self.server.1),
            client_cert: write("client.pem", &self.client.0),
            client_key: write("client.key", &self.client.1),
        }
    }
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]),
        client: leaf(vec!["scoring-client".to_owned()]),
    }
}

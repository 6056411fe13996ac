//! Bulk scoring at two million rows against a real `churnserve` process: `ScoreStream`
//! and `ScoreArrow` from a minimal client (columns or an Arrow batch, 1,000 rows a
//! message) and `churnctl score-file` (CSV in, Parquet out), each as rows/s, as a ratio to the in-process engine's rows/s on the
//! same kind of rows in the same run, and with the peak RSS of the server and clients.
//!
//! `cargo bench -p tests --bench bulk` (it builds the release binaries first);
//! `BULK_ROWS=200000` for a quicker run.

use std::io::{BufRead, BufReader, Write};

mod raw_codec;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bytes::Bytes;
use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_engine::{
    ColumnValues, CustomerBatch, CustomerColumns, Model, ModelOptions, OnnxRuntime,
};
use tests::repo_path;
use tokio_stream::StreamExt;

// The server's allocator, so that the in-process baseline allocates as the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_ROWS: usize = 2_000_000;
const MESSAGE_ROWS: usize = 1_000;
const POOL_MESSAGES: usize = 64;
const ENGINE_BATCH_ROWS: usize = 10_000;
const ENGINE_ROWS: usize = 200_000;

/// Telco-like customers: hold-out rows with tenure and charges jittered, so that no two
/// generated rows need be alike while every category stays a real one.
struct Generator {
    header: Vec<String>,
    holdout: Vec<Vec<String>>,
    tenure: usize,
    monthly: usize,
    total: usize,
}

impl Generator {
    fn new() -> Generator {
        let text = std::fs::read_to_string(repo_path("models/data/test.csv")).expect("test.csv");
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .expect("header")
            .split(',')
            .map(str::to_owned)
            .collect();
        let holdout = lines
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect();
        let column = |name: &str| header.iter().position(|c| c == name).expect(name);
        Generator {
            tenure: column("tenure"),
            monthly: column("monthlycharges"),
            total: column("totalcharges"),
            header,
            holdout,
        }
    }

    fn row(&self, i: usize) -> Vec<String> {
        let hash = (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17);
        let mut row = self.holdout[(hash % self.holdout.len() as u64) as usize].clone();
        let tenure: i64 = row[self.tenure].parse().unwrap_or(0);
        let tenure = (tenure + (hash >> 20) as i64 % 7 - 3).clamp(0, 72);
        let monthly: f64 = row[self.monthly].parse().unwrap_or(50.0);
        let monthly =
            (monthly * (0.9 + 0.2 * ((hash >> 32) % 1000) as f64 / 1000.0) * 100.0).round() / 100.0;
        row[0] = format!("C{i:08}");
        row[self.tenure] = tenure.to_string();
        row[self.monthly] = monthly.to_string();
        row[self.total] = if tenure == 0 {
            " ".to_owned()
        } else {
            format!("{:.2}", monthly * tenure as f64)
        };
        row
    }

    /// Rows `start..start + count` as engine columns typed by `numeric`.
    fn columns(&self, start: usize, count: usize, numeric: &[bool]) -> CustomerColumns {
        let rows: Vec<Vec<String>> = (start..start + count).map(|i| self.row(i)).collect();
        let columns = self
            .header
            .iter()
            .enumerate()
            .filter(|(_, name)| !matches!(name.as_str(), "customerid" | "churn"))
            .map(|(c, name)| {
                let values = if numeric[c] {
                    ColumnValues::Numbers(
                        rows.iter()
                            .map(|r| r[c].trim().parse().unwrap_or(f64::NAN))
                            .collect(),
                    )
                } else {
                    ColumnValues::Texts(rows.iter().map(|r| r[c].clone()).collect())
                };
                (name.clone(), values)
            })
            .collect();
        CustomerColumns {
            ids: rows.into_iter().map(|mut r| r.swap_remove(0)).collect(),
            columns,
        }
    }
}

fn to_proto(columns: CustomerColumns) -> pb::CustomerColumns {
    use pb::feature_column::Values;
    pb::CustomerColumns {
        customer_ids: columns.ids,
        features: columns
            .columns
            .into_iter()
            .map(|(name, values)| pb::FeatureColumn {
                name,
                values: Some(match values {
                    ColumnValues::Numbers(values) => Values::Numbers(pb::NumberColumn { values }),
                    ColumnValues::Texts(values) => Values::Texts(pb::TextColumn { values }),
                    other => unreachable!("generated columns are numbers or texts: {other:?}"),
                }),
            })
            .collect(),
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU seconds a process has used (user + system), from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn release_binary(name: &str) -> PathBuf {
    repo_path(&format!("target/release/{name}"))
}

fn start_server(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(release_binary("churnserve"))
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off"])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start churnserve");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = lines
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("churnserve logs its address");
    (child, address)
}

/// The two bulk streams: protobuf columns, or Arrow IPC.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Columns,
    Arrow,
}

impl Wire {
    fn path(self) -> http::uri::PathAndQuery {
        http::uri::PathAndQuery::from_static(match self {
            Wire::Columns => "/churn.v1.ScoringService/ScoreStream",
            Wire::Arrow => "/churn.v1.ScoringService/ScoreArrow",
        })
    }

    fn message(self, model: Option<pb::ModelRef>, columns: pb::CustomerColumns) -> Bytes {
        Bytes::from(match self {
            Wire::Columns => prost::Message::encode_to_vec(&pb::ScoreBatchRequest {
                model,
                columns: Some(columns),
                ..Default::default()
            }),
            Wire::Arrow => prost::Message::encode_to_vec(&pb::ScoreArrowRequest {
                model,
                arrow_ipc: tests::arrow_ipc(&columns),
                first_row: 0,
            }),
        })
    }

    /// Checks one answer's rows were all scored and numbered from `next_row`; returns
    /// how many it holds.
    fn check(self, answer: Bytes, next_row: u32) -> u32 {
        let results = match self {
            Wire::Columns => {
                let answer: pb::ScoreBatchResponse =
                    prost::Message::decode(answer).expect("a response");
                answer.results
            }
            Wire::Arrow => {
                let answer: pb::ScoreArrowResponse =
                    prost::Message::decode(answer).expect("a response");
                tests::arrow_results(&answer)
            }
        };
        for (result, row) in results.iter().zip(next_row..) {
            assert_eq!(result.row, row, "rows come back once, in order");
            assert!(
                matches!(result.outcome, Some(pb::row_result::Outcome::Prediction(_))),
                "row {row}: {:?}",
                result.outcome
            );
        }
        results.len() as u32
    }
}

/// Streams `rows` generated rows; returns rows/s and checks every row came back once.
async fn stream(
    address: &str,
    generator: &Generator,
    version: u32,
    rows: usize,
    wire: Wire,
) -> f64 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let schema = RegistryServiceClient::new(channel.clone())
        .get_model_version(pb::GetModelVersionRequest {
            model: Some(pb::ModelRef {
                name: tests::BUNDLED_MODEL.to_owned(),
                version,
                alias: String::new(),
            }),
        })
        .await
        .expect("version")
        .into_inner()
        .features;
    let numeric: Vec<bool> = generator
        .header
        .iter()
        .map(|name| {
            schema
                .iter()
                .any(|f| &f.name == name && f.kind() == pb::FeatureKind::Number)
        })
        .collect();
    // A pool of distinct messages encoded once, sent round-robin: the client's cost is
    // the transport and reading the answers, as for a job whose input is prepared.
    let pool: Vec<Bytes> = (0..POOL_MESSAGES)
        .map(|m| {
            let model = (m == 0).then(|| pb::ModelRef {
                name: tests::BUNDLED_MODEL.to_owned(),
                version,
                alias: String::new(),
            });
            let columns = generator.columns(m * MESSAGE_ROWS, MESSAGE_ROWS, &numeric);
            wire.message(model, to_proto(columns))
        })
        .collect();
    let messages = rows / MESSAGE_ROWS;
    let outbound = tokio_stream::iter((0..messages).map(move |m| pool[m % POOL_MESSAGES].clone()));
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    grpc.ready().await.expect("ready");
    let started = Instant::now();
    let mut responses = grpc
        .streaming(
            tonic::Request::new(outbound),
            wire.path(),
            raw_codec::RawCodec,
        )
        .await
        .expect("stream")
        .into_inner();
    let mut next_row = 0u32;
    while let Some(response) = responses.next().await {
        next_row += wire.check(response.expect("stream message"), next_row);
    }
    assert_eq!(next_row as usize, rows);
    rows as f64 / started.elapsed().as_secs_f64()
}

/// `churnctl score-file` CSV → Parquet; returns rows/s and the client's peak RSS.
fn score_file(address: &str, input: &Path, output: &Path, rows: usize) -> (f64, f64) {
    let started = Instant::now();
    let result = Command::new(release_binary("churnctl"))
        .args([
            "--server",
            &format!("http://{address}"),
            "--output",
            "json",
            "score-file",
        ])
        .arg(input)
        .arg(output)
        .stderr(Stdio::inherit())
        .output()
        .expect("run churnctl");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(result.status.success(), "churnctl score-file failed");
    let summary: serde_json::Value =
        serde_json::from_slice(&result.stdout).expect("a JSON summary");
    assert_eq!(summary["scored"].as_u64(), Some(rows as u64), "{summary}");
    (
        rows as f64 / elapsed,
        summary["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
    )
}

fn engine_rows_per_second(generator: &Generator, model_file: &str) -> f64 {
    let runtime = OnnxRuntime::load(None).expect("onnx runtime; run scripts/setup-onnxruntime.sh");
    let bytes = std::fs::read(repo_path(&format!("models/{model_file}.onnx"))).expect("model");
    let model = Model::load(runtime, &bytes, &ModelOptions::default()).expect("model loads");
    let numeric: Vec<bool> = generator
        .header
        .iter()
        .map(|name| {
            model
                .schema()
                .features
                .iter()
                .any(|f| &f.name == name && f.kind == churn_engine::FeatureKind::Number)
        })
        .collect();
    let batches: Vec<CustomerBatch> = (0..ENGINE_ROWS)
        .step_by(ENGINE_BATCH_ROWS)
        .map(|start| CustomerBatch::Columns(generator.columns(start, ENGINE_BATCH_ROWS, &numeric)))
        .collect();
    let rows: Vec<CustomerBatch> = batches
        .iter()
        .map(|batch| CustomerBatch::Rows((0..batch.len()).map(|i| batch.customer(i)).collect()))
        .collect();
    // The engine's faster input form, median of five passes: the floor the server is
    // measured against.
    [batches, rows]
        .iter()
        .map(|form| {
            model.predict_batch(&form[0]).expect("warm-up");
            let mut rates: Vec<f64> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    for batch in form {
                        let outcomes = model.predict_batch(batch).expect("inference");
                        assert!(outcomes.iter().all(Result::is_ok));
                    }
                    ENGINE_ROWS as f64 / started.elapsed().as_secs_f64()
                })
                .collect();
            rates.sort_by(f64::total_cmp);
            rates[2]
        })
        .fold(0.0, f64::max)
}

fn main() {
    let rows: usize = std::env::var("BULK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROWS)
        .div_ceil(MESSAGE_ROWS)
        * MESSAGE_ROWS;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .args(["build", "--release", "-p", "churnserve", "-p", "churnctl"])
        .current_dir(repo_path(""))
        .status()
        .expect("cargo build");
    assert!(built.success(), "release build failed");

    let generator: &'static Generator = Box::leak(Box::new(Generator::new()));
    let work = tempfile::tempdir().expect("temporary directory");
    let input = work.path().join("customers.csv");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("csv"));
        writeln!(file, "{}", generator.header.join(",")).expect("write");
        for i in 0..rows {
            writeln!(file, "{}", generator.row(i).join(",")).expect("write");
        }
    }
    let (mut server, address) = start_server(&work.path().join("registry"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    println!("bulk scoring, {rows} generated Telco-like rows, {MESSAGE_ROWS} rows a message");
    let mut results = Vec::new();
    for (model_file, version) in [("telco-logreg", 1), ("telco-lgbm", 2)] {
        for wire in [Wire::Columns, Wire::Arrow] {
            let cpu = cpu_seconds(server.id());
            let streamed = runtime.block_on(stream(&address, generator, version, rows, wire));
            let cpu_per_row = (cpu_seconds(server.id()) - cpu) / rows as f64;
            results.push((model_file, version, wire, streamed, cpu_per_row));
        }
    }
    let stream_client_rss = peak_rss_mib(std::process::id());
    let cpu = cpu_seconds(server.id());
    let (file_rate, file_rss) =
        score_file(&address, &input, &work.path().join("scores.parquet"), rows);
    let file_cpu_per_row = (cpu_seconds(server.id()) - cpu) / rows as f64;
    let server_rss = peak_rss_mib(server.id());
    let _ = server.kill();
    let _ = server.wait();

    println!(
        "{:<34} {:>10} {:>14} {:>7} {:>16}",
        "", "rows/s", "engine rows/s", "ratio", "server CPU us/row"
    );
    let mut engines = std::collections::HashMap::new();
    for (model_file, version, wire, streamed, cpu_per_row) in &results {
        let engine = *engines
            .entry(model_file)
            .or_insert_with(|| engine_rows_per_second(generator, model_file));
        let line = |label: String, rate: f64, cpu: f64| {
            println!(
                "{label:<34} {rate:>10.0} {engine:>14.0} {:>7.2} {:>16.2}",
                rate / engine,
                cpu * 1e6
            );
        };
        let rpc = match wire {
            Wire::Columns => "ScoreStream",
            Wire::Arrow => "ScoreArrow",
        };
        line(
            format!("{rpc} v{version} ({model_file})"),
            *streamed,
            *cpu_per_row,
        );
        if *version == 1 && *wire == Wire::Arrow {
            line(
                "score-file v1, CSV in, Parquet out".to_owned(),
                file_rate,
                file_cpu_per_row,
            );
        }
    }
    println!(
        "peak RSS: server {server_rss:.0} MiB, stream client {stream_client_rss:.0} MiB, churnctl score-file {file_rss:.0} MiB"
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
}

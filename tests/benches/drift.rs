//! Drift across replicas and the Parquet export, in one run:
//! - what counting every scored row into its version's drift bins costs: serial `Score`
//!   and 1,000-row `ScoreBatch` on a server counting (`--drift-counting on`, the default)
//!   and one not counting, taking turns call by call (goal: within 3%);
//! - `DriftReport` over a week of per-minute counts of three replicas (30,240 rows);
//! - `churnserve export-predictions` of a log of `EXPORT_ROWS` predictions (default 10
//!   million): rows per second and the process's peak resident memory.
//!
//! Run: `cargo build --release -p churnserve && cargo bench -p tests --bench drift`
//! (`EXPORT_ROWS=1000000` for a shorter one).

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_registry::{DriftBucket, LoggedPrediction, Registry};
use churnserve::Switch;
use common::{latency, micros, print_latency};
use tests::{BUNDLED_MODEL, TestServer, fixture, repo_path};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 2_000;
const BATCH_ROWS: usize = 1_000;
const BATCHES_PER_ROUND: usize = 20;
const MINUTE_MILLIS: i64 = 60_000;

fn version_one() -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: 1,
        alias: String::new(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counting = TestServer::start().await;
    let silent = TestServer::start_with(|config| config.drift_counting = Switch::Off).await;
    let customers: Vec<pb::Customer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .map(|c| c.to_proto())
        .collect();
    let batch: Vec<pb::Customer> = customers.iter().cycle().take(BATCH_ROWS).cloned().collect();
    let mut clients = [counting.scoring().await, silent.scoring().await];
    // [counting, silent] time per mode.
    let mut serial = [Duration::ZERO; 2];
    let mut samples: [Vec<Duration>; 2] = Default::default();
    let mut bulk = [Duration::ZERO; 2];
    for round in 0..=ROUNDS {
        let (mut round_serial, mut round_bulk) = ([Duration::ZERO; 2], [Duration::ZERO; 2]);
        for call in 0..CALLS_PER_ROUND {
            for (mode, client) in clients.iter_mut().enumerate() {
                let request = pb::ScoreRequest {
                    model: version_one(),
                    customer: Some(customers[call % customers.len()].clone()),
                    top_reasons: 0,
                };
                let started = Instant::now();
                client.score(request).await.expect("scores");
                let took = started.elapsed();
                round_serial[mode] += took;
                if round > 0 {
                    samples[mode].push(took);
                }
            }
        }
        for _ in 0..BATCHES_PER_ROUND {
            for (mode, client) in clients.iter_mut().enumerate() {
                let request = pb::ScoreBatchRequest {
                    model: version_one(),
                    customers: batch.clone(),
                    ..Default::default()
                };
                let started = Instant::now();
                client.score_batch(request).await.expect("scores");
                round_bulk[mode] += started.elapsed();
            }
        }
        if round > 0 {
            for mode in 0..2 {
                serial[mode] += round_serial[mode];
                bulk[mode] += round_bulk[mode];
            }
        }
    }
    let per_second = |time: Duration, units: usize| units as f64 / time.as_secs_f64();
    let (calls, rows) = (
        ROUNDS * CALLS_PER_ROUND,
        ROUNDS * BATCHES_PER_ROUND * BATCH_ROWS,
    );
    println!(
        "Drift counting, the two servers taking turns call by call ({ROUNDS} rounds after a warm-up):"
    );
    println!(
        "  Score       counting {:8.0} calls/s   not counting {:8.0} calls/s   ratio {:.3}",
        per_second(serial[0], calls),
        per_second(serial[1], calls),
        serial[1].as_secs_f64() / serial[0].as_secs_f64()
    );
    print_latency("  Score counting      ", &latency(samples[0].clone()));
    print_latency("  Score not counting  ", &latency(samples[1].clone()));
    println!(
        "  ScoreBatch  counting {:8.0} rows/s    not counting {:8.0} rows/s    ratio {:.3}",
        per_second(bulk[0], rows),
        per_second(bulk[1], rows),
        bulk[1].as_secs_f64() / bulk[0].as_secs_f64()
    );

    report_over_a_week(&counting).await;
    // Beside the running server: the export reads the registry as a replica's database.
    export(counting.data_dir()).await;
}

/// Three replicas' per-minute counts over the last week, written into the server's
/// registry beside its own, then the report over them.
async fn report_over_a_week(server: &TestServer) {
    let mut monitoring = MonitoringServiceClient::new(server.channel().await);
    let request = || pb::DriftReportRequest {
        model: version_one(),
        since: None,
        until: None,
    };
    let before = monitoring
        .drift_report(request())
        .await
        .expect("report")
        .into_inner();
    let registry = open(server.data_dir()).await;
    let bins = registry
        .drift_bins(BUNDLED_MODEL, 1)
        .await
        .expect("reads")
        .expect("the bins of a scored version");
    let width: usize = before
        .features
        .iter()
        .chain(before.prediction.iter())
        .map(|f| f.bins.len())
        .sum();
    let now = churn_registry::now_millis();
    let week_ago = now - now.rem_euclid(MINUTE_MILLIS) - 7 * 24 * 60 * MINUTE_MILLIS;
    let mut buckets = Vec::new();
    for replica in ["bench-a", "bench-b", "bench-c"] {
        for minute in 0..7 * 24 * 60 {
            buckets.push(DriftBucket {
                name: BUNDLED_MODEL.to_owned(),
                version: 1,
                bucket_start_millis: week_ago + minute * MINUTE_MILLIS,
                replica: replica.to_owned(),
                bins_sha256: bins.bins_sha256.clone(),
                rows: 19,
                counts: (0..width)
                    .map(|i| ((minute as usize + i) % 3) as u64)
                    .collect(),
            });
        }
    }
    for chunk in buckets.chunks(1_000) {
        registry.write_drift_buckets(chunk).await.expect("writes");
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let report = monitoring
            .drift_report(request())
            .await
            .expect("report")
            .into_inner();
        times.push(started.elapsed());
        assert_eq!(report.rows, before.rows + buckets.len() as u64 * 19);
    }
    times.sort();
    println!(
        "DriftReport over a week of per-minute counts of 3 replicas ({} rows of {width} bins): median {:.1} ms, best {:.1} ms",
        buckets.len(),
        micros(times[2]) / 1e3,
        micros(times[0]) / 1e3
    );
    registry.close().await;
}

async fn open(data_dir: &Path) -> Registry {
    Registry::open(data_dir).await.expect("opens the registry")
}

/// A log of `EXPORT_ROWS` predictions over the last 30 days, exported by the release
/// binary: its rows per second and its peak resident memory.
async fn export(data_dir: &Path) {
    let rows: usize = std::env::var("EXPORT_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000_000);
    let registry = open(data_dir).await;
    let now = churn_registry::now_millis();
    let started = Instant::now();
    let chunk = 50_000;
    for first in (0..rows).step_by(chunk) {
        let predictions: Vec<LoggedPrediction> = (first..(first + chunk).min(rows))
            .map(|i| LoggedPrediction {
                name: BUNDLED_MODEL.to_owned(),
                version: 1 + (i % 2) as u32,
                alias: if i % 2 == 0 { "production" } else { "" }.to_owned(),
                customer_id: format!("C{:08}", i % 1_000_000),
                probability: (i % 9973) as f64 / 9973.0,
                will_churn: i % 9973 >= 4987,
                scored_at_millis: now - 30 * 86_400_000
                    + (i as i64 * 30 * 86_400_000) / rows as i64,
            })
            .collect();
        registry.log_predictions(&predictions).await.expect("logs");
    }
    registry.close().await;
    println!(
        "  (logged {rows} predictions in {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let binary = std::env::var("CHURNSERVE_BIN")
        .unwrap_or_else(|_| repo_path("target/release/churnserve").display().to_string());
    let out = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = std::process::Command::new(&binary)
        .args(["export-predictions", "--data-dir"])
        .arg(data_dir)
        .args([
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2100-01-01T00:00:00Z",
            "--to",
        ])
        .arg(out.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e} (cargo build --release -p churnserve)"));
    let mut peak_kib = 0;
    while child.try_wait().expect("waits").is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let high_water = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
            peak_kib = peak_kib.max(high_water.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "the export failed");
    let files = walk(out.path());
    println!(
        "export-predictions of {rows} predictions: {:.1} s, {:.0} rows/s, peak resident {:.0} MiB, {} files, {:.0} MiB of Parquet",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        files.len(),
        files.iter().map(|(_, size)| *size).sum::<u64>() as f64 / (1024.0 * 1024.0)
    );
}

fn walk(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("lists").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push((path.clone(), entry.metadata().map_or(0, |m| m.len())));
        }
    }
    files
}

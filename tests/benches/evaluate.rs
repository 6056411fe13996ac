//! Evaluation speed, in one run: `Evaluate` of the bundled logistic pipeline on a
//! 100,000-row dataset (the hold-out customers repeated, uploaded to a real server), end to
//! end through gRPC; the metrics alone on the same number of scores; and the in-process
//! engine on the same rows as the baseline; and the metrics of 1,000,000 scores with and
//! without the retention campaign's profit (EMPC). Run:
//! `cargo bench -p tests --bench evaluate`.

use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_engine::{Model, ModelOptions, OnnxRuntime};
use tests::{BUNDLED_MODEL, TestServer, csv_customers, repo_bytes, repo_path, upload_dataset};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 100_000;
const RUNS: usize = 3;
/// Scores whose metrics are timed with and without the profit.
const PROFIT_ROWS: usize = 1_000_000;
const PROFIT_RUNS: usize = 9;

/// The hold-out CSV's rows repeated to `ROWS`, with unique customer ids.
fn large_csv() -> Vec<u8> {
    let text = String::from_utf8(repo_bytes("models/data/test.csv")).expect("utf-8");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.collect();
    let mut out = String::with_capacity(text.len() * ROWS / rows.len() + 1);
    out.push_str(header);
    out.push('\n');
    for i in 0..ROWS {
        let row = rows[i % rows.len()];
        let (_, rest) = row.split_once(',').expect("customer id first");
        out.push_str(&format!("C{i:07},{rest}\n"));
    }
    out.into_bytes()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn rate(rows: usize, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let csv = large_csv();
    let server = runtime.block_on(TestServer::start());
    runtime.block_on(async {
        let mut registry = server.registry().await;
        upload_dataset(&mut registry, "large", &csv)
            .await
            .expect("uploads");
    });
    let request = pb::EvaluateRequest {
        model: Some(pb::ModelRef {
            name: BUNDLED_MODEL.to_owned(),
            version: 1,
            alias: String::new(),
        }),
        dataset: "large".to_owned(),
        rows: Vec::new(),
        threshold: 0.0,
        profit: None,
    };
    let end_to_end = median(
        (0..RUNS)
            .map(|_| {
                runtime.block_on(async {
                    let mut scoring = server.scoring().await;
                    let start = Instant::now();
                    let response = scoring.evaluate(request.clone()).await.expect("evaluates");
                    let elapsed = start.elapsed();
                    assert_eq!(
                        response.into_inner().metrics.expect("metrics").rows,
                        ROWS as u64
                    );
                    elapsed
                })
            })
            .collect(),
    );

    let runtime_library = OnnxRuntime::load(None).expect("onnx runtime");
    let bytes = std::fs::read(repo_path("models/telco-logreg.onnx")).expect("model");
    let options = ModelOptions {
        sessions: 1,
        ..ModelOptions::default()
    };
    let model = Model::load(runtime_library, &bytes, &options).expect("loads");
    let path = std::env::temp_dir().join(format!("churnserve-bench-{}.csv", std::process::id()));
    std::fs::write(&path, &csv).expect("writes the csv");
    let customers = csv_customers(model.schema(), path.to_str().expect("utf-8 path"), ROWS);
    std::fs::remove_file(&path).ok();
    let mut scores = Vec::new();
    let engine = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                scores = model
                    .predict(&customers)
                    .expect("scores")
                    .into_iter()
                    .map(|r| r.expect("valid").churn_probability)
                    .collect();
                start.elapsed()
            })
            .collect(),
    );
    let churned: Vec<bool> = (0..ROWS).map(|i| i % 4 == 0).collect();
    let time_metrics = |scores: &[f64], churned: &[bool], campaign| {
        median(
            (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(
                        churn_metrics::evaluate(scores, churned, 0.5, campaign).expect("metrics"),
                    );
                    start.elapsed()
                })
                .collect(),
        )
    };
    let campaign = Some(churn_metrics::ProfitParameters::default());
    let metrics = time_metrics(&scores, &churned, campaign);
    // A million scores: the engine's, repeated (so with ties), churn labels that follow them.
    let many: Vec<f64> = (0..PROFIT_ROWS).map(|i| scores[i % ROWS]).collect();
    let many_churned: Vec<bool> = (0..PROFIT_ROWS)
        .map(|i| (i.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 < many[i])
        .collect();
    // Interleaved, so that the machine's drift falls on both alike.
    let (mut without_profit, mut with_profit) = (Vec::new(), Vec::new());
    for _ in 0..PROFIT_RUNS {
        for (samples, campaign) in [(&mut without_profit, None), (&mut with_profit, campaign)] {
            let start = Instant::now();
            std::hint::black_box(
                churn_metrics::evaluate(&many, &many_churned, 0.5, campaign).expect("metrics"),
            );
            samples.push(start.elapsed());
        }
    }
    let (without_profit, with_profit) = (median(without_profit), median(with_profit));
    println!("evaluation of telco-churn v1 (logistic pipeline) on {ROWS} rows, median of {RUNS}:");
    println!(
        "  Evaluate over gRPC (CSV read, validation, inference, metrics, stored)  {:>9.0} rows/s  ({:.2} s)",
        rate(ROWS, end_to_end),
        end_to_end.as_secs_f64()
    );
    println!(
        "  in-process engine on the same customers (baseline)                    {:>9.0} rows/s",
        rate(ROWS, engine)
    );
    println!(
        "  metrics alone                                                         {:>9.0} rows/s  ({:.1} ms)",
        rate(ROWS, metrics),
        metrics.as_secs_f64() * 1e3
    );
    println!(
        "  Evaluate ÷ engine: {:.2}",
        rate(ROWS, end_to_end) / rate(ROWS, engine)
    );
    println!("every metric of {PROFIT_ROWS} scores, median of {PROFIT_RUNS} interleaved runs:");
    println!(
        "  without the campaign profit  {:>7.1} ms",
        without_profit.as_secs_f64() * 1e3
    );
    println!(
        "  with the campaign profit     {:>7.1} ms  (× {:.2})",
        with_profit.as_secs_f64() * 1e3,
        with_profit.as_secs_f64() / without_profit.as_secs_f64()
    );
}

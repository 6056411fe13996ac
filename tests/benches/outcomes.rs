//! The prediction log's cost and realized performance's speed, in one run:
//! - `Score` throughput at concurrency 16 and `ScoreStream` rows/s through a real server
//!   with `--prediction-log on` against `off` (each measured twice, alternating, medians);
//! - over 10 million logged predictions (1 million customers scored ten times over ten
//!   weeks) and 1 million outcomes, on SQLite and, when `CHURNSERVE_TEST_POSTGRES_URL` names
//!   a server, on PostgreSQL: how long folding them into the sums takes, and
//!   `RealizedPerformance` from the sums against the full join (another horizon) in the
//!   same run.
//!
//! Run: `cargo bench -p tests --bench outcomes` (`OUTCOMES_BENCH_PREDICTIONS` scales the log,
//! `OUTCOMES_BENCH_BACKEND=postgres` skips SQLite).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_registry::{Location, LoggedPrediction, OutcomeRecord, Registry};
use churnserve::{SecretUrl, Switch};
use tests::{BUNDLED_MODEL, TestServer, customer_columns, fixture};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 16;
const SCORE_SECONDS: u64 = 5;
const STREAM_ROWS: usize = 200_000;
const STREAM_BATCH: usize = 1_000;
const WEEKS: i64 = 10;
const DAY: i64 = 86_400_000;
/// 2026-01-05, a Monday.
const LOG_START: i64 = 1_767_571_200_000;

fn model() -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: 1,
        alias: String::new(),
    })
}

fn customers() -> Vec<pb::Customer> {
    fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .map(|c| c.to_proto())
        .collect()
}

/// Score calls per second from `CONCURRENCY` clients, each customer with an id of its own.
async fn score_rate(server: &TestServer, customers: &[pb::Customer]) -> f64 {
    let calls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SCORE_SECONDS);
    let mut clients = Vec::new();
    for client in 0..CONCURRENCY {
        let mut scoring = server.scoring().await;
        let (calls, customers) = (Arc::clone(&calls), customers.to_vec());
        clients.push(tokio::spawn(async move {
            let mut k = 0;
            while Instant::now() < deadline {
                let mut customer = customers[k % customers.len()].clone();
                customer.customer_id = format!("S{client}-{k}");
                scoring
                    .score(pb::ScoreRequest {
                        model: model(),
                        customer: Some(customer),
                        top_reasons: 0,
                    })
                    .await
                    .expect("scores");
                calls.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    calls.load(Ordering::Relaxed) as f64 / SCORE_SECONDS as f64
}

/// Rows per second through one ScoreStream of `STREAM_ROWS` customers with ids.
async fn stream_rate(server: &TestServer, customers: &[pb::Customer]) -> f64 {
    let messages: Vec<pb::ScoreBatchRequest> = (0..STREAM_ROWS / STREAM_BATCH)
        .map(|m| {
            let batch: Vec<pb::Customer> = (0..STREAM_BATCH)
                .map(|k| {
                    let mut customer = customers[(m * STREAM_BATCH + k) % customers.len()].clone();
                    customer.customer_id = format!("B{m}-{k}");
                    customer
                })
                .collect();
            pb::ScoreBatchRequest {
                model: (m == 0).then(model).flatten(),
                columns: Some(customer_columns(&batch)),
                ..Default::default()
            }
        })
        .collect();
    let mut scoring = server.scoring().await;
    let start = Instant::now();
    let mut answers = scoring
        .score_stream(tokio_stream::iter(messages))
        .await
        .expect("stream")
        .into_inner();
    let mut rows = 0;
    while let Some(answer) = answers.message().await.expect("answer") {
        rows += answer.results.len();
    }
    assert_eq!(rows, STREAM_ROWS);
    rows as f64 / start.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Fills `registry` with `predictions` logged predictions of version 1 (a tenth as many
/// customers, each scored once a week) and one outcome per customer.
async fn fill(registry: &Registry, predictions: usize) -> Duration {
    let start = Instant::now();
    let customers = predictions / WEEKS as usize;
    let chunk = 100_000;
    for first in (0..predictions).step_by(chunk) {
        let rows: Vec<LoggedPrediction> = (first..(first + chunk).min(predictions))
            .map(|k| {
                let (customer, week) = (k % customers, (k / customers) as i64);
                let probability = ((customer * 7919) % 10_007) as f64 / 10_007.0;
                LoggedPrediction {
                    name: BUNDLED_MODEL.to_owned(),
                    alias: String::new(),
                    version: 1,
                    customer_id: format!("C{customer:08}"),
                    probability,
                    will_churn: probability >= 0.5,
                    scored_at_millis: LOG_START + week * 7 * DAY + (customer as i64 % 7) * DAY,
                }
            })
            .collect();
        registry.log_predictions(&rows).await.expect("logged");
    }
    for first in (0..customers).step_by(chunk) {
        let outcomes: Vec<OutcomeRecord> = (first..(first + chunk).min(customers))
            .map(|customer| OutcomeRecord {
                customer_id: format!("C{customer:08}"),
                churned: (customer * 7919) % 10_007 > 6_000,
                observed_at_millis: LOG_START
                    + (WEEKS - 2) * 7 * DAY
                    + (customer as i64 % 30) * DAY,
            })
            .collect();
        registry
            .record_outcomes(&outcomes, 90 * DAY)
            .await
            .expect("recorded");
    }
    start.elapsed()
}

/// Folds the whole log into the sums, as the server does; how long that took, and the
/// longest of its transactions (how long it held the write lock at once).
async fn fold(registry: &Registry) -> (Duration, Duration) {
    let (start, mut longest) = (Instant::now(), Duration::ZERO);
    loop {
        let transaction = Instant::now();
        let folded = registry.fold_performance(10_000).await.expect("folded");
        longest = longest.max(transaction.elapsed());
        if folded == 0 {
            return (start.elapsed(), longest);
        }
    }
}

/// RealizedPerformance's time over the whole log: `horizon_days` 90 reads the sums, any
/// other horizon joins the log.
async fn time_realized(server: &TestServer, horizon_days: u32) -> (Duration, usize, u64) {
    let mut monitoring = MonitoringServiceClient::new(server.channel().await);
    let start = Instant::now();
    let cohorts = monitoring
        .realized_performance(pb::RealizedPerformanceRequest {
            model: model(),
            since: Some(prost_types::Timestamp {
                seconds: LOG_START / 1000,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: (LOG_START + (WEEKS + 1) * 7 * DAY) / 1000,
                nanos: 0,
            }),
            cohort: pb::CohortPeriod::Week.into(),
            horizon_days,
        })
        .await
        .expect("realized performance")
        .into_inner()
        .cohorts;
    let labelled = cohorts.iter().map(|c| c.labelled).sum();
    (start.elapsed(), cohorts.len(), labelled)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let customers = customers();
    println!(
        "prediction log cost: Score at concurrency {CONCURRENCY} for {SCORE_SECONDS} s, ScoreStream of {STREAM_ROWS} rows; each twice, alternating"
    );
    let (mut on, mut off) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for _ in 0..2 {
        for switch in [Switch::On, Switch::Off] {
            let server = runtime.block_on(TestServer::start_with(|config| {
                config.prediction_log = switch;
                config.request_timeout_ms = 600_000;
            }));
            let (scores, stream) = runtime.block_on(async {
                (
                    score_rate(&server, &customers).await,
                    stream_rate(&server, &customers).await,
                )
            });
            let into = if switch == Switch::On {
                &mut on
            } else {
                &mut off
            };
            into.0.push(scores);
            into.1.push(stream);
            runtime.block_on(server.stop()).expect("stops");
        }
    }
    for (label, with, without) in [
        ("Score calls/s", median(on.0), median(off.0)),
        ("ScoreStream rows/s", median(on.1), median(off.1)),
    ] {
        println!(
            "  {label:20} log on {with:10.0}   off {without:10.0}   on/off {:.3} (cost {:+.1}%)",
            with / without,
            (1.0 - with / without) * 100.0
        );
    }

    let predictions: usize = std::env::var("OUTCOMES_BENCH_PREDICTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    println!(
        "RealizedPerformance over {predictions} logged predictions and {} outcomes (weekly cohorts): \
         from the sums (90-day horizon) against the full join (89 days), in one run",
        predictions / WEEKS as usize
    );
    // `OUTCOMES_BENCH_BACKEND=postgres` measures PostgreSQL alone (with the variable below).
    let only = std::env::var("OUTCOMES_BENCH_BACKEND").unwrap_or_default();
    let mut backends = Vec::new();
    if only != "postgres" {
        backends.push(("SQLite", None));
    }
    if let Ok(url) = std::env::var("CHURNSERVE_TEST_POSTGRES_URL") {
        // A database of its own on the test server, named after the process.
        let database = format!("outcomes_bench_{}", std::process::id());
        let created = std::process::Command::new("psql")
            .args([url.as_str(), "-qc", &format!("CREATE DATABASE {database}")])
            .status()
            .expect("psql");
        assert!(created.success(), "CREATE DATABASE {database}");
        let (server_part, _) = url.rsplit_once('/').expect("postgres://…/DATABASE");
        backends.push(("PostgreSQL", Some(format!("{server_part}/{database}"))));
    }
    for (label, url) in backends {
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = Location::new(dir.path(), url.as_deref(), None).expect("a location");
        let start_server = || {
            TestServer::start_on(dir.path(), |config| {
                config.registry.registry_url = url.clone().map(SecretUrl);
                config.request_timeout_ms = 600_000;
                config.prediction_log = Switch::Off;
            })
        };
        // Seeded by a first start; filled and folded with no server running, so that the
        // fold's figures are its own.
        let (filled, folded, longest) = runtime.block_on(async {
            let server = start_server().await;
            server
                .registry()
                .await
                .list_models(pb::ListModelsRequest {})
                .await
                .expect("seeded");
            server.stop().await.expect("stops");
            let registry = Registry::connect(&location).await.expect("registry");
            let filled = fill(&registry, predictions).await;
            let folded = fold(&registry).await;
            registry.close().await;
            (filled, folded.0, folded.1)
        });
        let server = runtime.block_on(start_server());
        let summed: Vec<(Duration, usize, u64)> = (0..3)
            .map(|_| runtime.block_on(time_realized(&server, 90)))
            .collect();
        let joined = runtime.block_on(time_realized(&server, 89));
        let rows = predictions + predictions / WEEKS as usize;
        println!(
            "  {label:11} logged in {:6.1} s; folded in {:6.1} s ({:.0} rows/s), longest fold transaction {:.2} s",
            filled.as_secs_f64(),
            folded.as_secs_f64(),
            rows as f64 / folded.as_secs_f64(),
            longest.as_secs_f64()
        );
        println!(
            "  {label:11} RealizedPerformance from the sums {:6.2} s, {:6.2} s, {:6.2} s ({} cohorts, {} labelled); full join {:6.2} s ({} labelled); join/sums {:.0}x",
            summed[0].0.as_secs_f64(),
            summed[1].0.as_secs_f64(),
            summed[2].0.as_secs_f64(),
            summed[0].1,
            summed[0].2,
            joined.0.as_secs_f64(),
            joined.2,
            joined.0.as_secs_f64() / summed[2].0.as_secs_f64()
        );
        runtime.block_on(server.stop()).expect("stops");
    }
}

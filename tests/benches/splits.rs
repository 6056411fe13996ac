//! What routing through a traffic split costs, in one run: serial `Score` and 1,000-row
//! `ScoreBatch` through an alias split 50/50 between two versions of the same model,
//! against the same calls through a plain alias on one of them, in interleaved rounds.
//! Goal: the split within 3% of the plain alias. Run: `cargo bench -p tests --bench splits`.

use std::time::{Duration, Instant};

mod common;

use churn_api::v1 as pb;
use common::{latency, micros};
use tests::{BUNDLED_MODEL, TestServer, fixture, repo_path};

// The allocator the churnserve binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 2_000;
const BATCH_ROWS: usize = 1_000;
const BATCHES_PER_ROUND: usize = 20;

fn alias(name: &str) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: 0,
        alias: name.to_owned(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let twin = tests::register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: BUNDLED_MODEL.to_owned(),
            aliases: vec!["plain".to_owned()],
            ..Default::default()
        },
        &std::fs::read(repo_path("models/telco-logreg.onnx")).expect("model"),
    )
    .await
    .expect("registered")
    .version;
    registry
        .set_traffic_split(pb::SetTrafficSplitRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "split".to_owned(),
            arms: vec![
                pb::TrafficArm { version: 1, weight: 1 },
                pb::TrafficArm { version: twin, weight: 1 },
            ],
            salt: "bench".to_owned(),
        })
        .await
        .expect("split");
    let customers: Vec<pb::Customer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .map(|c| c.to_proto())
        .collect();
    let mut scoring = server.scoring().await;
    let mut serial: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut bulk: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut next_id = 0usize;
    for round in 0..=ROUNDS {
        for (mode, name) in ["plain", "split"].into_iter().enumerate() {
            for _ in 0..CALLS_PER_ROUND {
                next_id += 1;
                let customer = pb::Customer {
                    customer_id: format!("c{next_id}"),
                    ..customers[next_id % customers.len()].clone()
                };
                let request = pb::ScoreRequest {
                    model: alias(name),
                    customer: Some(customer),
                    top_reasons: 0,
                };
                let start = Instant::now();
                scoring.score(request).await.expect("score");
                if round > 0 {
                    serial[mode].push(start.elapsed());
                }
            }
            for _ in 0..BATCHES_PER_ROUND {
                let batch: Vec<pb::Customer> = (0..BATCH_ROWS)
                    .map(|k| {
                        next_id += 1;
                        pb::Customer {
                            customer_id: format!("c{next_id}"),
                            ..customers[k % customers.len()].clone()
                        }
                    })
                    .collect();
                let request = pb::ScoreBatchRequest {
                    model: alias(name),
                    customers: batch,
                    ..Default::default()
                };
                let start = Instant::now();
                scoring.score_batch(request).await.expect("batch");
                if round > 0 {
                    bulk[mode].push(BATCH_ROWS as f64 / start.elapsed().as_secs_f64());
                }
            }
        }
    }
    let mean = |samples: &[Duration]| {
        micros(samples.iter().sum::<Duration>()) / samples.len() as f64
    };
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    println!("Traffic split routing, {ROUNDS} interleaved rounds (a warm-up round first):");
    for (mode, name) in ["plain alias", "split 50/50"].into_iter().enumerate() {
        let quantiles = latency(serial[mode].clone());
        println!(
            "  Score {name:12} mean {:7.1} us  p50 {:7.1} us  p99 {:7.1} us   ScoreBatch {:8.0} rows/s",
            mean(&serial[mode]),
            micros(quantiles.p50),
            micros(quantiles.p99),
            median(bulk[mode].clone())
        );
    }
    let p50 = |mode: usize| micros(latency(serial[mode].clone()).p50);
    println!(
        "  split / plain: Score mean {:.3}  p50 {:.3}   ScoreBatch rows/s {:.3}   (goal: Score within 1.03)",
        mean(&serial[1]) / mean(&serial[0]),
        p50(1) / p50(0),
        median(bulk[1].clone()) / median(bulk[0].clone())
    );
    server.stop().await.expect("stopped");
}

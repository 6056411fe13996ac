//! What routing through a traffic split costs, in one run, the modes taking turns call by
//! call: serial `Score` and 1,000-row `ScoreBatch`
//! - through a plain alias on one version;
//! - through an alias split 100/0 onto that same version (every customer hashed and
//!   routed: the routing alone, against the plain alias);
//! - through two plain aliases, the client picking each customer's by the contract's hash
//!   (two ONNX Runtime sessions taking turns, routed by the caller);
//! - through an alias split 50/50 between the same two versions (the same turns, routed by
//!   the server: against the two plain aliases).
//!
//! Goal: the split within 3% of the plain alias. Run: `cargo bench -p tests --bench splits`.

use std::time::{Duration, Instant};

mod common;

use churn_api::v1 as pb;
use common::{latency, micros, print_latency};
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

/// The contract's arm of `id` in a split of two equal weights.
fn arm(salt: &str, id: &str) -> usize {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{salt}:{id}").as_bytes());
    let h = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    ((u128::from(h) * 2) >> 64) as usize
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
                pb::TrafficArm {
                    version: 1,
                    weight: 1,
                },
                pb::TrafficArm {
                    version: twin,
                    weight: 1,
                },
            ],
            salt: "bench".to_owned(),
        })
        .await
        .expect("split");
    registry
        .set_traffic_split(pb::SetTrafficSplitRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "routed".to_owned(),
            arms: vec![
                pb::TrafficArm {
                    version: twin,
                    weight: 1,
                },
                pb::TrafficArm {
                    version: 1,
                    weight: 0,
                },
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
    // (alias, label, the mode it is measured against); "pair" picks its alias per customer.
    const MODES: [(&str, &str, usize); 4] = [
        ("plain", "plain alias", 0),
        ("routed", "split 100/0", 0),
        ("pair", "client-routed pair", 2),
        ("split", "split 50/50", 2),
    ];
    let mut serial: [Vec<Duration>; 4] = Default::default();
    let mut bulk: [Vec<f64>; 4] = Default::default();
    let mut next_id = 0usize;
    // Call by call, the modes take turns, so that drift in the machine's speed falls on
    // all of them alike.
    for round in 0..=ROUNDS {
        for call in 0..CALLS_PER_ROUND * MODES.len() {
            let mode = call % MODES.len();
            next_id += 1;
            let customer = pb::Customer {
                customer_id: format!("c{next_id}"),
                ..customers[next_id % customers.len()].clone()
            };
            let chosen = match MODES[mode].0 {
                "pair" => ["production", "plain"][arm("bench", &customer.customer_id)],
                name => name,
            };
            let request = pb::ScoreRequest {
                model: alias(chosen),
                customer: Some(customer),
                top_reasons: 0,
            };
            let start = Instant::now();
            scoring.score(request).await.expect("score");
            if round > 0 {
                serial[mode].push(start.elapsed());
            }
        }
        for call in 0..BATCHES_PER_ROUND * MODES.len() {
            let mode = call % MODES.len();
            let batch: Vec<pb::Customer> = (0..BATCH_ROWS)
                .map(|k| {
                    next_id += 1;
                    pb::Customer {
                        customer_id: format!("c{next_id}"),
                        ..customers[k % customers.len()].clone()
                    }
                })
                .collect();
            // The pair's client deals the batch to the two aliases and sends both at once.
            let requests: Vec<pb::ScoreBatchRequest> = match MODES[mode].0 {
                "pair" => {
                    let mut dealt = [Vec::new(), Vec::new()];
                    for customer in batch {
                        dealt[arm("bench", &customer.customer_id)].push(customer);
                    }
                    dealt
                        .into_iter()
                        .zip(["production", "plain"])
                        .map(|(customers, name)| pb::ScoreBatchRequest {
                            model: alias(name),
                            customers,
                            ..Default::default()
                        })
                        .collect()
                }
                name => vec![pb::ScoreBatchRequest {
                    model: alias(name),
                    customers: batch,
                    ..Default::default()
                }],
            };
            let start = Instant::now();
            let calls = requests.into_iter().map(|request| {
                let mut client = scoring.clone();
                async move { client.score_batch(request).await.expect("batch") }
            });
            futures_util::future::join_all(calls).await;
            if round > 0 {
                bulk[mode].push(BATCH_ROWS as f64 / start.elapsed().as_secs_f64());
            }
        }
    }
    let mean =
        |samples: &[Duration]| micros(samples.iter().sum::<Duration>()) / samples.len() as f64;
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    println!(
        "Traffic split routing, modes taking turns call by call ({ROUNDS} rounds after a warm-up):"
    );
    for (mode, (_, label, _)) in MODES.into_iter().enumerate() {
        println!(
            "  {label:12} Score mean {:7.1} us   ScoreBatch {:8.0} rows/s",
            mean(&serial[mode]),
            median(bulk[mode].clone())
        );
        print_latency("               Score ", &latency(serial[mode].clone()));
    }
    let p50 = |mode: usize| micros(latency(serial[mode].clone()).p50);
    for (mode, (_, label, against)) in MODES.into_iter().enumerate() {
        if mode == against {
            continue;
        }
        println!(
            "  {label} / {}: Score mean {:.3}  p50 {:.3}   ScoreBatch rows/s {:.3}   (goal: Score within 1.03)",
            MODES[against].1,
            mean(&serial[mode]) / mean(&serial[against]),
            p50(mode) / p50(against),
            median(bulk[mode].clone()) / median(bulk[against].clone())
        );
    }
    server.stop().await.expect("stopped");
}

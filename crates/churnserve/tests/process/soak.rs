//! The soak: a real churnserve process scored continuously at moderate concurrency while
//! versions are registered, the production alias moves back and forth, and requests by
//! version number cycle through more versions than the model cache holds, so sessions are
//! evicted and reloaded all the time. Zero failed scoring requests, and a resident set that
//! stops growing: its peak over the second half stays within a margin of the first half's.
//!
//! Ignored by `cargo test`; `scripts/soak.sh [SECONDS]` runs it (default 600; the test
//! command runs 60).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;

use crate::common;
use common::{customer, register, start};

const SCORERS: usize = 8;
const MODEL_CACHE: usize = 2;
/// Growth the resident set may show between the halves: allocator slack, not a leak (a
/// leaked session per reload would add megabytes each time, hundreds of times).
const RSS_SLACK_RATIO: f64 = 1.25;
const RSS_SLACK_MIB: f64 = 32.0;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn scoring_never_fails_and_memory_plateaus_while_the_registry_churns() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let data = tempfile::tempdir().expect("tempdir");
    let cache = MODEL_CACHE.to_string();
    let (mut server, address) = start(
        &data.path().join("registry"),
        &["--model-cache-size", &cache],
    );
    let pid = server.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let models = ["telco-logreg.onnx", "telco-lgbm.onnx"].map(|name| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../models")
                .join(name),
        )
        .expect("model")
    });
    let report = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(address.clone())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut registry = RegistryServiceClient::new(channel.clone());
        // Versions 3..=6 beside the two bundled ones: six versions for a cache of two.
        for i in 0..4 {
            register(&mut registry, "telco-churn", &models[i % 2])
                .await
                .expect("registers");
        }
        let scored = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let until = Instant::now() + Duration::from_secs(seconds);
        let customer = customer();
        let scorers: Vec<_> = (0..SCORERS)
            .map(|scorer| {
                let mut client = ScoringServiceClient::new(channel.clone());
                let (scored, failures, customer) =
                    (Arc::clone(&scored), Arc::clone(&failures), customer.clone());
                tokio::spawn(async move {
                    let mut turn = 0u32;
                    while Instant::now() < until {
                        // Even scorers by alias, odd ones by a version number cycling 1..=6.
                        let model = (scorer % 2 == 1).then(|| pb::ModelRef {
                            name: "telco-churn".to_owned(),
                            version: 1 + (turn + scorer as u32) % 6,
                            alias: String::new(),
                        });
                        turn += 1;
                        let request = pb::ScoreRequest {
                            model,
                            customer: Some(customer.clone()),
                            top_reasons: 0,
                        };
                        match client.score(request).await {
                            Ok(_) => {
                                scored.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(status) => {
                                failures.lock().expect("lock").push(format!("{status:?}"))
                            }
                        }
                    }
                })
            })
            .collect();
        let writer = {
            let mut registry = registry.clone();
            let models = models.clone();
            tokio::spawn(async move {
                let mut moves = 0u32;
                let mut registered = 0u32;
                while Instant::now() < until {
                    let request = pb::SetAliasRequest {
                        name: "telco-churn".to_owned(),
                        alias: "production".to_owned(),
                        version: 1 + moves % 2,
                        gate: None,
                    };
                    registry.set_alias(request).await.expect("alias moves");
                    moves += 1;
                    if moves.is_multiple_of(20) {
                        register(
                            &mut registry,
                            "telco-churn",
                            &models[(registered % 2) as usize],
                        )
                        .await
                        .expect("registers");
                        registered += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (moves, registered)
            })
        };
        let mut samples = Vec::new();
        let started = Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        while Instant::now() < until {
            ticks.tick().await;
            samples.push((started.elapsed().as_secs_f64(), rss_mib(pid)));
        }
        for scorer in scorers {
            scorer.await.expect("scorer");
        }
        let (moves, registered) = writer.await.expect("writer");
        let failures = failures.lock().expect("lock").clone();
        (
            scored.load(Ordering::Relaxed),
            failures,
            moves,
            registered,
            samples,
        )
    });
    let _ = server.kill();
    let _ = server.wait();
    let (scored, failures, moves, registered, samples) = report;
    let half = samples.len() / 2;
    let peak = |part: &[(f64, f64)]| part.iter().map(|s| s.1).fold(0.0, f64::max);
    let (first_peak, second_peak) = (peak(&samples[..half]), peak(&samples[half..]));
    let at = |i: usize| samples.get(i).map_or(0.0, |s| s.1);
    println!(
        "soak: {seconds} s, {scored} Score calls ({:.0}/s), {} failed, {moves} alias moves, \
         {registered} versions registered; server RSS start {:.1} MiB, middle {:.1} MiB, end {:.1} MiB; \
         peak first half {first_peak:.1} MiB, second half {second_peak:.1} MiB",
        scored as f64 / seconds as f64,
        failures.len(),
        at(0),
        at(half),
        at(samples.len().saturating_sub(1)),
    );
    let tenths: Vec<String> = samples
        .chunks(samples.len().div_ceil(10).max(1))
        .map(|part| format!("{:.0}", peak(part)))
        .collect();
    println!(
        "soak: server RSS peak by tenth of the run (MiB): {}",
        tenths.join(" ")
    );
    assert!(
        failures.is_empty(),
        "failed Score calls: {:?}",
        &failures[..failures.len().min(5)]
    );
    assert!(scored > 0 && moves > 0);
    assert!(
        second_peak <= first_peak * RSS_SLACK_RATIO + RSS_SLACK_MIB,
        "the resident set kept growing: {first_peak:.1} MiB, then {second_peak:.1} MiB"
    );
}

//! Overload, in one run: a server admitting 4 requests at once (8 more may queue for at
//! most 100 ms) under 10× that many closed-loop clients calling `Score` for 5 seconds.
//! Prints what it admitted and at what latency, what it shed and how fast, and the
//! process's resident memory before and after. Run: `cargo bench -p tests --bench overload`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use common::{latency, print_latency};
use tests::{TestServer, fixture};
use tonic::Code;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CAPACITY: usize = 4;
const CLIENTS: usize = 10 * CAPACITY;
const RUN: Duration = Duration::from_secs(5);

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let server = TestServer::start_with(|config| {
            config.max_concurrent_requests = CAPACITY;
            config.max_queued_requests = 2 * CAPACITY;
            config.queue_timeout_ms = 100;
            config.request_timeout_ms = 1_000;
        })
        .await;
        let customer = fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto();
        // Warm the model and the connection.
        let mut warm = server.scoring().await;
        let request = pb::ScoreRequest { model: None, customer: Some(customer), top_reasons: 0 };
        warm.score(request.clone()).await.expect("warm-up");
        let before = resident_mib();
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (mut client, request, stop) = (server.scoring().await, request.clone(), Arc::clone(&stop));
            clients.push(tokio::spawn(async move {
                let (mut admitted, mut shed, mut other) = (Vec::new(), Vec::new(), 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    match client.score(request.clone()).await {
                        Ok(_) => admitted.push(start.elapsed()),
                        Err(status) if status.code() == Code::ResourceExhausted => shed.push(start.elapsed()),
                        Err(_) => other += 1,
                    }
                }
                (admitted, shed, other)
            }));
        }
        tokio::time::sleep(RUN).await;
        stop.store(true, Ordering::Relaxed);
        let (mut admitted, mut shed, mut other) = (Vec::new(), Vec::new(), 0);
        for client in clients {
            let (a, s, o) = client.await.expect("client");
            admitted.extend(a);
            shed.extend(s);
            other += o;
        }
        let after = resident_mib();
        println!("overload: {CLIENTS} closed-loop clients against {CAPACITY} slots (+{} queued, 100 ms queue timeout) for {} s", 2 * CAPACITY, RUN.as_secs());
        println!("  admitted {} ({:.0}/s), shed RESOURCE_EXHAUSTED {} ({:.0}/s), other errors {other}", admitted.len(), admitted.len() as f64 / RUN.as_secs_f64(), shed.len(), shed.len() as f64 / RUN.as_secs_f64());
        print_latency("admitted ", &latency(admitted));
        print_latency("shed     ", &latency(shed));
        println!("  resident memory (server and clients in one process): {before:.0} MiB before, {after:.0} MiB after");
    });
}

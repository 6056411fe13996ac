//! What a shared registry costs, in one run (`cargo bench -p churnserve --bench replicas`):
//! registration and alias-move latency on the embedded SQLite registry and on PostgreSQL
//! with an S3-compatible artifact store; the time from `SetAlias` returning to every one
//! of three replicas serving the new version, over 50 moves; and `Score` throughput of one
//! replica on either registry, which must be the same: the hot path never touches the
//! database. Servers, PostgreSQL and the S3 server are real processes on this machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/process/common/mod.rs"]
mod common;
use common::register;
use common::replicas::{
    Backing, Replica, model_bytes, runtime, score_request, set_alias, until_served,
};

const REGISTRATIONS: usize = 10;
const MOVES: usize = 50;
const THROUGHPUT_ROUNDS: usize = 3;
const THROUGHPUT_SECONDS: u64 = 4;
const CLIENTS: usize = 16;

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn summary(samples: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms",
        ms(quantile(samples, 0.5)),
        ms(quantile(samples, 0.99)),
        ms(quantile(samples, 1.0))
    )
}

/// Registration and alias-move latencies through `replica`.
async fn write_latencies(replica: &Replica) -> (Vec<Duration>, Vec<Duration>) {
    let bytes = model_bytes("telco-logreg.onnx");
    let mut registrations = Vec::new();
    let mut versions = Vec::new();
    for _ in 0..REGISTRATIONS {
        let started = Instant::now();
        let registered = register(&mut replica.registry().await, "telco-churn", &bytes)
            .await
            .expect("register");
        registrations.push(started.elapsed());
        versions.push(registered.version);
    }
    let mut moves = Vec::new();
    for i in 0..MOVES {
        let started = Instant::now();
        set_alias(replica, versions[i % 2]).await.expect("move");
        moves.push(started.elapsed());
    }
    (registrations, moves)
}

/// `Score` requests per second of `CLIENTS` closed-loop clients on `replica`.
async fn throughput(replica: &Replica) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let scored = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (mut client, stop, scored) = (
            replica.scoring().await,
            Arc::clone(&stop),
            Arc::clone(&scored),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.score(score_request()).await.expect("score");
                scored.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (from, started) = (scored.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(THROUGHPUT_SECONDS)).await;
    let rate = (scored.load(Ordering::Relaxed) - from) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    rate
}

fn main() {
    let runtime = runtime();
    let backing = Backing::start();
    let embedded_dir = tempfile::tempdir().expect("tempdir");
    let (child, address) = common::start(&embedded_dir.path().join("data"), &[]);
    let embedded = Replica { child, address };
    let replicas = [
        backing.replica("a"),
        backing.replica("b"),
        backing.replica("c"),
    ];
    runtime.block_on(async {
        let (sqlite_registrations, sqlite_moves) = write_latencies(&embedded).await;
        let (postgres_registrations, postgres_moves) = write_latencies(&replicas[0]).await;
        println!("write latency through one server ({REGISTRATIONS} registrations, {MOVES} alias moves)");
        println!("  register  SQLite            {}", summary(&sqlite_registrations));
        println!("  register  PostgreSQL + S3   {}", summary(&postgres_registrations));
        println!("  SetAlias  SQLite            {}", summary(&sqlite_moves));
        println!("  SetAlias  PostgreSQL + S3   {}", summary(&postgres_moves));

        let all: Vec<&Replica> = replicas.iter().collect();
        let first = common::replicas::serving(&replicas[0]).await.expect("serving");
        let latest = replicas[1].register("telco-lgbm.onnx")
        .await
        .expect("register")
        .version;
        let mut propagation = Vec::new();
        for i in 0..MOVES {
            let target = if i % 2 == 0 { latest } else { first };
            set_alias(&replicas[i % 3], target).await.expect("move");
            let took = until_served(&all, target, Duration::from_secs(10)).await;
            propagation.push(took.into_iter().max().expect("three replicas"));
        }
        println!("\nfrom SetAlias returning to all 3 replicas serving the new version ({MOVES} moves, through each replica in turn)");
        println!("  {}", summary(&propagation));

        println!("\nScore throughput of one server, {CLIENTS} clients, {THROUGHPUT_SECONDS} s per round, alternating");
        let (mut on_sqlite, mut on_postgres) = (Vec::new(), Vec::new());
        for _ in 0..THROUGHPUT_ROUNDS {
            on_sqlite.push(throughput(&embedded).await);
            on_postgres.push(throughput(&replicas[0]).await);
        }
        let median = |rates: &mut Vec<f64>| {
            rates.sort_by(f64::total_cmp);
            rates[rates.len() / 2]
        };
        let (sqlite_rate, postgres_rate) = (median(&mut on_sqlite), median(&mut on_postgres));
        println!("  SQLite            {on_sqlite:.0?} req/s, median {sqlite_rate:.0}");
        println!("  PostgreSQL + S3   {on_postgres:.0?} req/s, median {postgres_rate:.0}");
        println!("  ratio PostgreSQL / SQLite: {:.3}", postgres_rate / sqlite_rate);
    });
}

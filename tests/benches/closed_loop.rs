//! The closed-loop latency client of `benches/compare.sh`: CONCURRENCY callers, one HTTP/2
//! connection each, send the same pre-serialized request (gRPC framing, as h2load sends it)
//! to PATH and wait for each answer, for SECONDS, every latency recorded in an HDR
//! histogram. Any answer that is not gRPC OK aborts the run. Prints one line the script
//! parses.
//!
//! `cargo bench -p tests --bench closed_loop -- HOST:PORT PATH BODY_FILE CONCURRENCY SECONDS`

mod raw_codec;

use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;

async fn caller(
    address: String,
    path: http::uri::PathAndQuery,
    request: Bytes,
    until: Instant,
) -> Histogram<u64> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut latencies = Histogram::<u64>::new(3).expect("histogram");
    while Instant::now() < until {
        grpc.ready().await.expect("ready");
        let started = Instant::now();
        grpc.unary(
            tonic::Request::new(request.clone()),
            path.clone(),
            raw_codec::RawCodec,
        )
        .await
        .expect("a gRPC OK answer");
        latencies
            .record(started.elapsed().as_nanos() as u64)
            .expect("recordable latency");
    }
    latencies
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [address, path, body, concurrency, seconds] = &args[..] else {
        eprintln!("usage: closed_loop HOST:PORT PATH BODY_FILE CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let body = std::fs::read(body).expect("body file");
    // h2load's body carries the 5-byte gRPC prefix; the codec adds its own.
    let request = Bytes::from(body[5..].to_vec());
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let path = http::uri::PathAndQuery::try_from(path.as_str()).expect("a request path");
    let seconds: f64 = seconds.parse().expect("seconds");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let until = started + std::time::Duration::from_secs_f64(seconds);
    let latencies = runtime.block_on(async {
        let callers: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(caller(
                    address.clone(),
                    path.clone(),
                    request.clone(),
                    until,
                ))
            })
            .collect();
        let mut all = Histogram::<u64>::new(3).expect("histogram");
        for caller in callers {
            all.add(caller.await.expect("caller")).expect("same bounds");
        }
        all
    });
    let micros = |q: f64| latencies.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "mean_us={:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1} requests_per_s={:.0}",
        latencies.mean() / 1_000.0,
        micros(0.5),
        micros(0.99),
        micros(0.999),
        latencies.len() as f64 / started.elapsed().as_secs_f64()
    );
}

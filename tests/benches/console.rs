//! Console page times, in one run, for a model with 100 versions and 100 stored
//! evaluations (each with its ROC and precision-recall curves): each page fetched over a
//! real HTTP port, warm (the first fetch computes what a page keeps: importance, the two
//! versions' contrast), against `/healthz` on the same port as the baseline of the round
//! trip. The target is under 50 ms of server time per page; the figures are printed, not
//! asserted. Run: `cargo bench -p tests --bench console`.

mod common;

use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use common::{Latency, latency, print_latency};
use tests::{BUNDLED_MODEL, TestServer, http_get, register, repo_bytes};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VERSIONS: u32 = 100;
const SAMPLES: usize = 40;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Fetches `path` until what it computes in the background is ready, then times it: the
/// first fetch, the warm ones, and the page's size.
async fn measure(port: u16, path: &str) -> (Duration, Latency, usize) {
    let mut body = String::new();
    let mut first = None;
    for _ in 0..600 {
        let start = Instant::now();
        let (status, page) = http_get(port, path).await;
        first.get_or_insert(start.elapsed());
        assert!(status.contains("200"), "{path}: {status}");
        body = page;
        if !body.contains("is being computed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let (status, _) = http_get(port, path).await;
        samples.push(start.elapsed());
        assert!(status.contains("200"), "{path}: {status}");
    }
    (first.unwrap_or_default(), latency(samples), body.len())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (server, port) = runtime.block_on(TestServer::start_with_http(|_| {}));
    let setup = Instant::now();
    runtime.block_on(async {
        let mut registry = server.registry().await;
        let onnx = repo_bytes("models/telco-logreg.onnx");
        for copy in 3..=VERSIONS {
            register(
                &mut registry,
                pb::RegisterModelMetadata {
                    name: BUNDLED_MODEL.to_owned(),
                    description: format!("copy {copy} of the logistic pipeline"),
                    tags: [("copy".to_owned(), copy.to_string())].into(),
                    reference_dataset: "telco-holdout".to_owned(),
                    ..Default::default()
                },
                &onnx,
            )
            .await
            .expect("registers");
        }
        let mut scoring = server.scoring().await;
        for version in 1..=VERSIONS {
            scoring
                .evaluate(pb::EvaluateRequest {
                    model: Some(pb::ModelRef {
                        name: BUNDLED_MODEL.to_owned(),
                        version,
                        alias: String::new(),
                    }),
                    dataset: "telco-holdout".to_owned(),
                    rows: Vec::new(),
                    threshold: 0.0,
                    profit: None,
                })
                .await
                .expect("evaluates");
        }
    });
    println!(
        "console pages: model {BUNDLED_MODEL} with {VERSIONS} versions and {VERSIONS} evaluations of 2,113 rows (set up in {:.1} s); {SAMPLES} warm fetches each, one connection per fetch",
        setup.elapsed().as_secs_f64()
    );
    let pages = [
        ("/healthz (baseline)", "/healthz".to_owned()),
        ("models", "/".to_owned()),
        ("model", format!("/models/{BUNDLED_MODEL}")),
        (
            "version",
            format!("/models/{BUNDLED_MODEL}/versions/{}", VERSIONS / 2),
        ),
        (
            "compare",
            format!("/models/{BUNDLED_MODEL}/compare?champion=1&challenger={VERSIONS}"),
        ),
        ("monitoring", format!("/models/{BUNDLED_MODEL}/monitoring")),
    ];
    let mut baseline = Duration::ZERO;
    let mut slowest = 0.0_f64;
    for (label, path) in pages {
        let (first, page, bytes) = runtime.block_on(measure(port, &path));
        if baseline.is_zero() {
            baseline = page.p50;
        } else {
            slowest = slowest.max(millis(page.p50 - baseline.min(page.p50)));
        }
        print_latency(
            &format!(
                "{label:20} {bytes:7} bytes   first {:8.2} ms   warm ",
                millis(first)
            ),
            &page,
        );
        println!(
            "  {:20} warm p50 {:6.1} x the baseline",
            "",
            page.p50.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    println!(
        "  slowest page p50 less the baseline round trip: {slowest:.2} ms ({} the 50 ms target)",
        if slowest < 50.0 { "within" } else { "over" }
    );
    runtime.block_on(server.stop()).expect("stops");
}

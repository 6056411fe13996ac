//! The HTTP port of a real server under hostile clients: invented gRPC method paths add
//! no metric series, a stream that ends in an error trailer is counted with its code, and
//! idle or byte-at-a-time connections neither starve `/metrics` nor stay open past the
//! configured timeout.

#[path = "../../benches/raw_codec/mod.rs"]
mod raw_codec;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use churn_api::v1 as pb;
use tests::{TestServer, http_connect, http_get, sample};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of `GET /metrics`.
async fn scrape(port: u16) -> String {
    let (status, body) = http_get(port, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// Every series of a scrape: its sample lines without their values.
fn series(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.rsplit_once(' ').expect("a value").0.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_add_no_series_and_stream_errors_count_their_code() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let channel = server.channel().await;
    let call = |path: String| {
        let channel = channel.clone();
        async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let path = http::uri::PathAndQuery::try_from(path).expect("a valid path");
            grpc.unary(tonic::Request::new(Bytes::new()), path, raw_codec::RawCodec)
                .await
                .expect_err("no such method")
                .code()
        }
    };
    // The first unknown call creates the `unknown` series; nothing after it may add any.
    assert_eq!(
        call("/warm.Up/Call".to_owned()).await,
        tonic::Code::Unimplemented
    );
    let before = scrape(port).await;
    let mut hostile = vec![
        "/churn.v1.ScoringService/NoSuchMethod".to_owned(),
        "/churn.v1.ScoringService/Score/extra".to_owned(),
        "/%22quoted%22/%5Cbackslash".to_owned(),
        "/a{b}/c|d".to_owned(),
    ];
    // Quotes, backslashes and newlines cannot even form an HTTP/2 path; whichever of them
    // a client library lets through is sent too.
    for raw in ["/a\"b/c", "/a\\b/c", "/a\nb/c"] {
        if http::uri::PathAndQuery::try_from(raw).is_ok() {
            hostile.push(raw.to_owned());
        }
    }
    let calls = 20_000;
    let codes = futures_of(calls, |i| {
        let path = match i % 5 {
            4 => hostile[i / 5 % hostile.len()].clone(),
            _ => format!("/random{i}.Service{}/Method{}", i % 97, i * 7919 % 100_003),
        };
        call(path)
    })
    .await;
    assert!(
        codes.iter().all(|c| *c == tonic::Code::Unimplemented),
        "every invented method is UNIMPLEMENTED"
    );
    let after = scrape(port).await;
    let (before_series, after_series) = (series(&before), series(&after));
    let added: Vec<_> = after_series.difference(&before_series).collect();
    assert!(added.is_empty(), "new series: {added:?}");
    let growth = after.len() as f64 / before.len() as f64;
    assert!(
        (0.9..=1.1).contains(&growth),
        "the exposition went from {} to {} bytes",
        before.len(),
        after.len()
    );
    let unknown = r#"grpc_server_handled_total{grpc_type="unknown",grpc_service="unknown",grpc_method="unknown",grpc_code="UNIMPLEMENTED"}"#;
    assert_eq!(sample(&after, unknown), Some(calls as f64 + 1.0), "{after}");

    // A stream answers with headers first; its status arrives in the trailers.
    let mut scoring = server.scoring().await;
    let request = pb::ScoreBatchRequest {
        model: Some(pb::ModelRef {
            name: "no-such-model".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut answers = scoring
        .score_stream(tokio_stream::iter([request]))
        .await
        .expect("the stream opens")
        .into_inner();
    let status = answers.message().await.expect_err("unknown model");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let handled = r#"grpc_server_handled_total{grpc_type="bidi_stream",grpc_service="churn.v1.ScoringService",grpc_method="ScoreStream",grpc_code="NOT_FOUND"}"#;
    let mut counted = None;
    for _ in 0..100 {
        counted = sample(&scrape(port).await, handled);
        if counted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counted, Some(1.0));
    let ok_streams = r#"grpc_server_handled_total{grpc_type="bidi_stream",grpc_service="churn.v1.ScoringService",grpc_method="ScoreStream",grpc_code="OK"}"#;
    assert_eq!(sample(&scrape(port).await, ok_streams), None);
}

/// Runs `calls` futures made by `make`, 64 at a time, and returns their outputs.
async fn futures_of<F, T>(calls: usize, make: impl Fn(usize) -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut outputs = Vec::with_capacity(calls);
    let mut running = tokio::task::JoinSet::new();
    for i in 0..calls {
        if running.len() == 64 {
            outputs.push(running.join_next().await.expect("running").expect("joins"));
        }
        running.spawn(make(i));
    }
    while let Some(output) = running.join_next().await {
        outputs.push(output.expect("joins"));
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_neither_starve_metrics_nor_stay_open() {
    const IDLE: usize = 500;
    const SLOW: usize = 50;
    const TIMEOUT: Duration = Duration::from_secs(3);
    let (_server, port) = TestServer::start_with_http(|config| {
        config.http_timeout_ms = TIMEOUT.as_millis() as u64;
    })
    .await;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(http_connect(port).await);
    }
    // Each slow client sends its request one byte at a time, never finishing in time.
    let request = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = http_connect(port).await;
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            for byte in request.iter().cycle() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                if started.elapsed() > 4 * TIMEOUT {
                    break;
                }
            }
            // Closed by the server: reading ends (or fails) instead of waiting.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
            started.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let start = Instant::now();
        let body = scrape(port).await;
        let took = start.elapsed();
        assert!(body.contains("grpc_server_started_total"), "{body}");
        assert!(
            took < Duration::from_secs(1),
            "/metrics took {took:?} beside {IDLE} idle and {SLOW} slow connections"
        );
    }
    // Idle connections are closed once the header timeout passes, not before.
    let mut first = http_connect(port).await;
    let opened = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(2 * TIMEOUT, first.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    // The server's clock starts at its accept, which can come a little before `connect`
    // returns here: a few milliseconds early is still "once the timeout passes".
    assert!(
        opened.elapsed() >= TIMEOUT - Duration::from_millis(250),
        "closed after {:?}",
        opened.elapsed()
    );
    for mut stream in idle {
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(2 * TIMEOUT + Duration::from_secs(2), stream.read(&mut byte))
                .await
                .expect("the server closes an idle connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    for slow in slow {
        let lasted = slow.await.expect("slow client");
        assert!(
            lasted < 3 * TIMEOUT,
            "a byte-at-a-time client was held for {lasted:?}"
        );
    }
}

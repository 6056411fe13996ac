//! The HTTP port compresses what benefits from it, by the client's Accept-Encoding: the
//! console's pages, V2 REST JSON and the metrics scrape come back gzip or br and decode to
//! exactly the uncompressed answer; a client that accepts neither gets plain bytes.

use std::io::Read;

use tests::{TestServer, http_exchange_bytes};

/// `GET path` with `accept` as Accept-Encoding (none if empty): the Content-Encoding
/// header's value (empty without one) and the body as sent.
async fn get(port: u16, path: &str, accept: &str) -> (String, Vec<u8>) {
    let headers: Vec<(&str, &str)> = if accept.is_empty() {
        vec![]
    } else {
        vec![("accept-encoding", accept)]
    };
    let (status, lines, body) = http_exchange_bytes(port, "GET", path, &headers, b"").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{path} with {accept:?}");
    let encoding = lines
        .iter()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-encoding")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (encoding, body)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("valid gzip");
    plain
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut plain)
        .expect("valid brotli");
    plain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_rest_and_metrics_are_compressed_for_clients_that_accept_it() {
    let (_server, port) = TestServer::start_with_http(|_| {}).await;
    for path in ["/", "/models/telco-churn", "/v2/models/telco-churn"] {
        let (encoding, plain) = get(port, path, "").await;
        assert_eq!(encoding, "", "{path}: no Accept-Encoding, no compression");
        assert!(plain.len() > 200, "{path}: a body worth compressing");

        let (encoding, gzipped) = get(port, path, "gzip").await;
        assert_eq!(encoding, "gzip", "{path}");
        assert_eq!(gunzip(&gzipped), plain, "{path}: gzip decodes to the page");
        assert!(gzipped.len() < plain.len(), "{path}: gzip is smaller");

        // A browser's header: br is preferred when offered with gzip.
        let (encoding, brotli) = get(port, path, "gzip, deflate, br").await;
        assert_eq!(encoding, "br", "{path}");
        assert_eq!(unbrotli(&brotli), plain, "{path}: br decodes to the page");
    }
    // A scrape's values move between two reads; its series names do not.
    let (encoding, scrape) = get(port, "/metrics", "gzip").await;
    assert_eq!(encoding, "gzip");
    let scrape = String::from_utf8(gunzip(&scrape)).expect("text");
    assert!(scrape.contains("# EOF"), "a whole OpenMetrics scrape");
}

//! Plain HTTP/1.1 by hand, for the HTTP port's tests, and reading a metrics scrape.

/// A port nothing listens on now, for a server's HTTP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("address")
        .port()
}

/// A connection to the HTTP port on `port`, waiting for the server to bind it.
pub async fn http_connect(port: u16) -> tokio::net::TcpStream {
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the HTTP port {port} accepts connections");
}

/// `GET path` on a connection of its own: the status line and the body.
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    http_request(port, "GET", path, &[], b"").await
}

/// One HTTP/1.1 request with `headers` and `body` on a connection of its own: the status
/// line and the body.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, String) {
    let (status, _, body) = http_exchange(port, method, path, headers, body).await;
    (status, body)
}

/// As `http_request`, with the response's header lines between the status and the body.
pub async fn http_exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, Vec<String>, String) {
    let (status, lines, body) = http_exchange_bytes(port, method, path, headers, body).await;
    (status, lines, String::from_utf8_lossy(&body).into_owned())
}

/// As `http_exchange`, with the body as the bytes sent (a chunked body joined), for
/// bodies that are not text, such as compressed ones.
pub async fn http_exchange_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, Vec<String>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = http_connect(port).await;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    // A server may answer (413) before reading a large body, and close.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head and body");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = &response[split + 4..];
    let mut lines = head.lines().map(str::to_owned);
    let status = lines.next().unwrap_or_default();
    let lines: Vec<String> = lines.collect();
    let chunked = lines
        .iter()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_vec()
    };
    (status, lines, body)
}

/// A chunked HTTP/1.1 body's data: each chunk is a hex size line, then that many bytes.
fn unchunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let line_end = chunked
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_line = std::str::from_utf8(&chunked[..line_end]).expect("a chunk size");
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .expect("a hexadecimal chunk size");
        if size == 0 {
            return data;
        }
        let start = line_end + 2;
        data.extend_from_slice(&chunked[start..start + size]);
        chunked = &chunked[start + size + 2..];
    }
}

/// The value of the sample `series` (name and labels, exactly) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

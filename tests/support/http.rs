//! A minimal HTTP/1.1 client for tests of service processes: one request per connection.
//!
//! ```no_run
//! # async fn run() {
//! use tomodachi_tests::http::{body, request, status};
//!
//! let response = request(9700, "GET", "/health/ready").await;
//! assert_eq!(status(&response), 200);
//! println!("{}", body(&response));
//! # }
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one HTTP/1.1 request with `Connection: close` to 127.0.0.1:`port` and returns the
/// whole response. Panics if there is no answer within 10 s.
pub async fn request(port: u16, method: &str, path: &str) -> String {
    try_request(port, method, path)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// As [`request`], but a refused or reset connection is an error, not a panic.
pub async fn try_request(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response within 10 s"))
}

/// The status code of an HTTP response (0 if it has none).
pub fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The body of an HTTP response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The body of an HTTP response as JSON (panics with the response if it is not).
pub fn json(response: &str) -> serde_json::Value {
    serde_json::from_str(body(response)).unwrap_or_else(|e| panic!("{e}: {response}"))
}

//! Probing the health endpoints of a service run in the test's process.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap()
}

/// GET `path` on 127.0.0.1:`port`: status and JSON body (an error if nothing listens).
pub async fn try_probe(port: u16, path: &str) -> std::io::Result<(u16, serde_json::Value)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("a probe answered within 10 s")?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
    Ok((status, json))
}

pub async fn probe(port: u16, path: &str) -> (u16, serde_json::Value) {
    try_probe(port, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Probes readiness every 10 ms until it answers `status` (a refused connection is a
/// failed probe, as for the kubelet); the last answer.
pub async fn until_ready_is(port: u16, status: u16, what: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = try_probe(port, "/health/ready").await;
        if let Ok((got, body)) = &answer
            && *got == status
        {
            return body.clone();
        }
        assert!(Instant::now() < deadline, "{what}: still {answer:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `service` alone in a process of the test (no signals, no logging, no environment):
/// its shutdown and its task.
pub fn run(
    service: tomodachi::Service,
) -> (
    tomodachi::core::Shutdown,
    tokio::task::JoinHandle<tomodachi::Exit>,
) {
    let process = tomodachi::Process::new()
        .without_signals()
        .without_logging()
        .args(["test"])
        .env(Vec::<(String, String)>::new())
        .service(service);
    let shutdown = process.shutdown();
    (shutdown, tokio::spawn(process.run()))
}

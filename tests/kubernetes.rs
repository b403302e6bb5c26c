//! Kubernetes' part, played on the quickstart binary with the settings of
//! `examples/deploy/kubernetes.yaml` (probe paths, grace periods): probe until ready,
//! SIGTERM, readiness 503 at once while requests in flight finish, exit 0 within the
//! pod's termination grace period.

use std::time::{Duration, Instant};

use tomodachi_tests::child::{Child, command, record};
use tomodachi_tests::http::{body, json, request, status};

const MANIFEST: &str = include_str!("../examples/deploy/kubernetes.yaml");

/// The value after `key:` on the first line of the manifest that starts with it.
fn manifest_value(key: &str) -> &'static str {
    MANIFEST
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(|value| value.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no `{key}:` in examples/deploy/kubernetes.yaml"))
}

/// The value of an `env` entry of the manifest.
fn manifest_env(name: &str) -> &'static str {
    let at = MANIFEST
        .find(&format!("name: {name}"))
        .unwrap_or_else(|| panic!("no env {name} in examples/deploy/kubernetes.yaml"));
    MANIFEST[at..]
        .lines()
        .nth(1)
        .and_then(|line| line.trim().strip_prefix("value:"))
        .map(|value| value.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("env {name} has no value in the manifest"))
}

fn port_of(line: &tomodachi_tests::child::Line) -> u16 {
    line.record
        .as_ref()
        .and_then(|r| r.get("listen_port"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("no listen_port: {line}"))
}

/// POST /sheep on 127.0.0.1:`port`: tells `sent` once the request is written, returns the
/// response and when it arrived.
async fn post_sheep(
    port: u16,
    sent: tokio::sync::oneshot::Sender<()>,
) -> (std::io::Result<String>, Instant) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"POST /sheep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        let _ = sent.send(());
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no response within 10 s")));
    (response, Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_probes_sigterm_drain_and_exit_on_the_quickstart() {
    let termination_grace: u64 = manifest_value("terminationGracePeriodSeconds")
        .parse()
        .expect("terminationGracePeriodSeconds is a number");
    let http_grace = manifest_env("TOMODACHI_HTTP_TERMINATION_GRACE_PERIOD_SECONDS");
    assert!(
        http_grace.parse::<u64>().expect("a number") < termination_grace,
        "the pod's grace period must be above the service's"
    );
    assert!(MANIFEST.contains("path: /health/ready") && MANIFEST.contains("path: /health/live"));

    let mut quickstart = command(env!("CARGO_BIN_EXE_quickstart"));
    quickstart
        .args(["--production", "--logger", "json"])
        .env("TOMODACHI_HTTP_HOST", "127.0.0.1")
        .env("TOMODACHI_HTTP_PORT", "0")
        .env("TOMODACHI_HEALTH_HOST", "127.0.0.1")
        .env("TOMODACHI_HEALTH_PORT", "0")
        .env(
            "TOMODACHI_HTTP_TERMINATION_GRACE_PERIOD_SECONDS",
            http_grace,
        );
    let mut child = Child::spawn(&mut quickstart);
    let probes = port_of(
        &child
            .wait_for(
                "the probes' listener",
                record("tomodachi.health", "accepting health probes"),
            )
            .await,
    );
    let http = port_of(
        &child
            .wait_for(
                "the HTTP server",
                record("tomodachi.http", "accepting http requests"),
            )
            .await,
    );

    // startupProbe / readinessProbe: poll until ready, as the kubelet does.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let response = request(probes, "GET", "/health/ready").await;
        if status(&response) == 200 {
            break response;
        }
        assert_eq!(status(&response), 503, "{response}");
        assert!(Instant::now() < deadline, "never ready: {response}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready = json(&ready);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["phase"], "running", "{ready}");
    assert_eq!(ready["sources"]["http"]["state"], "ready", "{ready}");
    assert_eq!(
        ready["sources"]["schedule:heartbeat"]["state"], "ready",
        "{ready}"
    );
    let live = request(probes, "GET", "/health/live").await;
    assert_eq!(status(&live), 200, "{live}");
    assert_eq!(json(&live)["status"], "live", "{live}");

    // Requests in flight: each POST /sheep takes up to a second. A GET on a connection
    // opened after theirs is answered only once theirs have been accepted.
    let mut posts = Vec::new();
    for _ in 0..8 {
        let (sent, is_sent) = tokio::sync::oneshot::channel();
        posts.push(tokio::spawn(post_sheep(http, sent)));
        is_sent.await.expect("the POST was written");
    }
    assert_eq!(status(&request(http, "GET", "/sheep").await), 200);

    child.signal("TERM");
    child
        .wait_for(
            "stopping service",
            record("tomodachi.lifecycle", "stopping service"),
        )
        .await;
    let not_ready = request(probes, "GET", "/health/ready").await;
    let not_ready_at = Instant::now();
    assert_eq!(status(&not_ready), 503, "{not_ready}");
    let not_ready = json(&not_ready);
    assert_eq!(not_ready["status"], "not_ready", "{not_ready}");
    assert_eq!(not_ready["phase"], "stopping", "{not_ready}");
    let live = request(probes, "GET", "/health/live").await;
    assert_eq!(status(&live), 200, "draining is not wedged: {live}");

    let mut finished_after_503 = 0;
    let mut counts = Vec::new();
    for post in posts {
        let (response, at) = post.await.expect("the POST task");
        let response = response.unwrap_or_else(|e| panic!("a POST in flight failed: {e}"));
        assert_eq!(status(&response), 200, "{response}");
        counts.push(body(&response).parse::<u64>().expect("a count"));
        if at > not_ready_at {
            finished_after_503 += 1;
        }
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=8).collect::<Vec<_>>());
    assert!(
        finished_after_503 > 0,
        "no POST was still in flight when readiness turned 503: the test proved nothing"
    );

    let status = child
        .wait_exit(Duration::from_secs(termination_grace))
        .await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
    child
        .wait_for(
            "terminated",
            record("tomodachi.lifecycle", "terminated service"),
        )
        .await;
}

#[tokio::test]
async fn probes_answer_on_the_service_http_server_and_stay_out_of_the_access_log() {
    let mut quickstart = command(env!("CARGO_BIN_EXE_quickstart"));
    quickstart
        .args(["--production", "--logger", "json"])
        .env("TOMODACHI_HTTP_HOST", "127.0.0.1")
        .env("TOMODACHI_HTTP_PORT", "0");
    let mut child = Child::spawn(&mut quickstart);
    let http = port_of(
        &child
            .wait_for(
                "the HTTP server",
                record("tomodachi.http", "accepting http requests"),
            )
            .await,
    );
    child
        .wait_for(
            "started",
            record("tomodachi.lifecycle", "started service successfully"),
        )
        .await;
    let ready = request(http, "GET", "/health/ready").await;
    assert_eq!(status(&ready), 200, "{ready}");
    assert_eq!(json(&ready)["sources"]["http"]["state"], "ready", "{ready}");
    let live = request(http, "GET", "/health/live").await;
    assert_eq!(status(&live), 200, "{live}");
    // The access log's first record is the GET /sheep after the probes.
    assert_eq!(body(&request(http, "GET", "/sheep").await), "0");
    let access = child
        .wait_for("the access log of GET /sheep", |line| {
            line.logger() == Some("tomodachi.http.response")
        })
        .await;
    assert_eq!(access.field("request_path"), Some("/sheep"), "{access}");
    child.signal("TERM");
    let status = child.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

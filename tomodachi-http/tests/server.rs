//! The server's options on the wire: keep-alive, real IP, access log, bind, drain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, Method};
use support::{Capture, TestServer, WAIT, closed, options, raw, read_response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tomodachi_core::{Shutdown, Source};
use tomodachi_http::{
    AccessLog, Error, HttpOptions, HttpRouter, HttpServer, IgnoreLoggingLayer, RealIp,
};

fn hello() -> HttpRouter {
    HttpRouter::new().route("/hello", get(|| async { "hello" }))
}

const GET_HELLO: &str = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn without_keep_alive_every_response_closes_the_connection() {
    let server = TestServer::start(hello(), options()).await;
    let response = raw(server.addr, GET_HELLO).await;
    let lower = response.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{response}");
    assert!(lower.contains("connection: close\r\n"), "{response}");
    assert!(lower.contains("server: tomodachi\r\n"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_rotates_after_max_requests_on_the_wire() {
    let keep = HttpOptions {
        keepalive_timeout: 5,
        max_keepalive_requests: Some(3),
        ..options()
    };
    let server = TestServer::start(hello(), keep).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for n in 1..=3 {
        stream.write_all(GET_HELLO.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await.to_ascii_lowercase();
        if n < 3 {
            assert!(
                response.contains("connection: keep-alive\r\n"),
                "{n}: {response}"
            );
            assert!(
                response.contains("keep-alive: timeout=5, max=3\r\n"),
                "{n}: {response}"
            );
        } else {
            assert!(
                response.contains("connection: close\r\n"),
                "{n}: {response}"
            );
            assert!(!response.contains("keep-alive: timeout"), "{n}: {response}");
        }
    }
    assert!(
        closed(&mut stream).await,
        "the server closes after the 3rd response"
    );
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_rotates_after_max_time_and_idles_out() {
    let keep = HttpOptions {
        keepalive_timeout: 5,
        max_keepalive_time: Some(1),
        ..options()
    };
    let server = TestServer::start(hello(), keep).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(GET_HELLO.as_bytes()).await.unwrap();
    let first = read_response(&mut stream).await.to_ascii_lowercase();
    assert!(first.contains("connection: keep-alive\r\n"), "{first}");
    // The connection is older than max_keepalive_time now (it waits for the clock, not for
    // another task).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stream.write_all(GET_HELLO.as_bytes()).await.unwrap();
    let second = read_response(&mut stream).await.to_ascii_lowercase();
    assert!(second.contains("connection: close\r\n"), "{second}");
    assert!(closed(&mut stream).await);
    server.stop().await;

    // An idle keep-alive connection is closed after keepalive_timeout.
    let short = HttpOptions {
        keepalive_timeout: 1,
        ..options()
    };
    let server = TestServer::start(hello(), short).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(GET_HELLO.as_bytes()).await.unwrap();
    read_response(&mut idle).await;
    let started = std::time::Instant::now();
    assert!(closed(&mut idle).await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

async fn whoami(RealIp(ip): RealIp) -> String {
    ip.to_string()
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_from_real_ip_from_peers() {
    let router = || HttpRouter::new().route("/ip", get(whoami));
    let mut spoofed = HeaderMap::new();
    spoofed.insert("x-forwarded-for", "1.2.3.4, 10.0.0.1".parse().unwrap());

    let untrusted = HttpOptions {
        real_ip_from: vec!["10.0.0.0/8".into()],
        ..options()
    };
    let server = TestServer::start(router(), untrusted).await;
    let reply = server
        .request(Method::GET, "/ip", spoofed.clone(), Bytes::new())
        .await;
    assert_eq!(reply.body, "127.0.0.1");
    server.stop().await;

    let trusted = HttpOptions {
        real_ip_from: vec!["127.0.0.0/8".into()],
        ..options()
    };
    let server = TestServer::start(router(), trusted).await;
    let reply = server
        .request(Method::GET, "/ip", spoofed, Bytes::new())
        .await;
    assert_eq!(reply.body, "1.2.3.4");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let started = Arc::new(Notify::new());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let router = {
        let started = started.clone();
        HttpRouter::new().route(
            "/slow",
            get(move || {
                let started = started.clone();
                let release = release.clone();
                async move {
                    started.notify_one();
                    if let Some(release) = release.lock().await.take() {
                        let _ = release.await;
                    }
                    "done"
                }
            }),
        )
    };
    let keep = HttpOptions {
        keepalive_timeout: 30,
        ..options()
    };
    let server = TestServer::start(router, keep).await;
    let addr = server.addr;
    // An idle keep-alive connection: closed at once by the drain.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut idle).await;

    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();

    server.shutdown.trigger();
    assert!(
        closed(&mut idle).await,
        "idle keep-alive connection closed on shutdown"
    );
    // The listener is gone: a new connection is refused.
    tokio::time::timeout(WAIT, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("new connections refused after shutdown");
    assert!(
        !server.task.is_finished(),
        "the drain waits for the request in flight"
    );

    release_tx.send(()).unwrap();
    let response = read_response(&mut in_flight).await.to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 200"), "{response}");
    assert!(response.ends_with("done"), "{response}");
    assert!(response.contains("connection: close\r\n"), "{response}");
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bind_failure_is_a_startup_error_with_tomodachis_warning() {
    let (capture, _guard) = Capture::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let clash = HttpOptions { port, ..options() };
    let result = HttpServer::new(clash).start(hello(), Shutdown::new()).await;
    assert!(
        matches!(result, Err(Error::Bind { .. })),
        "{:?}",
        result.err()
    );
    let record = capture
        .wait_for(|r| r.target == "tomodachi.http" && r.message.starts_with("unable to bind"))
        .await;
    assert_eq!(
        record.message,
        format!("unable to bind service [http] to http://localhost:{port}/")
    );
    assert_eq!(record.level, tracing::Level::WARN);

    let bad = HttpOptions {
        max_keepalive_requests: Some(10),
        ..options()
    };
    assert!(matches!(
        HttpServer::new(bad).bind().await,
        Err(Error::Option(_))
    ));
}

#[tokio::test]
async fn access_log_records_have_tomodachis_fields() {
    let (capture, _guard) = Capture::start();
    let file =
        std::env::temp_dir().join(format!("tomodachi-http-access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let router = HttpRouter::new()
        .regex_route(r"/resource/(?P<id>[^/]+)", get(|| async { "resource" }))
        .route(
            "/quiet",
            get(|| async { "shh" }).layer(IgnoreLoggingLayer::all()),
        )
        .route(
            "/some",
            get(|| async { "some" }).layer(IgnoreLoggingLayer::statuses([200])),
        );
    let logged = HttpOptions {
        access_log: AccessLog::File(file.to_string_lossy().into_owned()),
        ..options()
    };
    let server = TestServer::start(router, logged).await;
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", "test-agent/1".parse().unwrap());
    headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    server
        .request(
            Method::POST,
            "/resource/a%20b?q=1",
            headers,
            Bytes::from_static(b"12345"),
        )
        .await;
    server.get("/quiet").await;
    server.get("/some").await;
    server.get("/resource/x").await;

    let record = capture
        .wait_for(|r| {
            r.target == "tomodachi.http.response" && r.field("request_method") == Some("POST")
        })
        .await;
    assert_eq!(record.level, tracing::Level::INFO);
    assert_eq!(record.message, "");
    assert_eq!(record.field("status_code"), Some("405"));
    assert_eq!(record.field("remote_ip"), Some("127.0.0.1"));
    assert_eq!(record.field("auth_user"), Some("user"));
    assert_eq!(record.field("request_path"), Some("/resource/a b"));
    assert_eq!(record.field("request_query_string"), Some("q=1"));
    assert_eq!(record.field("http_version"), Some("HTTP/1.1"));
    assert_eq!(record.field("response_content_length"), Some("18"));
    assert_eq!(record.field("request_content_length"), Some("5"));
    assert_eq!(record.field("user_agent"), Some("test-agent/1"));
    // The router's 405: no handler ran, so no `handler_elapsed_time` (as tomodachi).
    assert_eq!(record.field("handler_elapsed_time"), None);
    let plain = capture
        .wait_for(|r| {
            r.target == "tomodachi.http.response" && r.field("request_path") == Some("/resource/x")
        })
        .await;
    assert_eq!(plain.field("status_code"), Some("200"));
    for timing in ["handler_elapsed_time", "request_time"] {
        let value = plain.field(timing).unwrap();
        assert!(
            value.starts_with("0.") && value.ends_with('s') && value.len() == 8,
            "{timing}={value}"
        );
    }
    assert_eq!(plain.field("request_query_string"), None);
    assert_eq!(plain.field("auth_user"), None);
    let paths: Vec<_> = capture
        .with_target("tomodachi.http.response")
        .iter()
        .filter_map(|r| r.field("request_path").map(str::to_owned))
        .collect();
    assert!(
        !paths.iter().any(|p| p == "/quiet" || p == "/some"),
        "{paths:?}"
    );
    server.stop().await;

    let lines = std::fs::read_to_string(&file).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["logger"], "tomodachi.http.response");
    assert_eq!(first["level"], "info");
    assert_eq!(first["status_code"], 405);
    assert_eq!(first["request_path"], "/resource/a b");
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn client_disconnect_is_logged_as_499() {
    let (capture, _guard) = Capture::start();
    let router = HttpRouter::new().route(
        "/hang",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    );
    let server = TestServer::start(router, options()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
    let record = capture
        .wait_for(|r| {
            r.target == "tomodachi.http.response" && r.field("request_path") == Some("/hang")
        })
        .await;
    assert_eq!(record.field("status_code"), Some("499"));
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off_by_the_header_read_timeout() {
    let bound = HttpServer::new(options())
        .header_read_timeout(Duration::from_millis(300))
        .bind()
        .await
        .unwrap();
    let addr = bound.local_addr();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.serve(hello(), shutdown.clone()));
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut rest),
    )
    .await
    .expect("closed in time")
    .ok();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Meanwhile other clients are served.
    assert!(raw(addr, GET_HELLO).await.ends_with("hello"));
    shutdown.trigger();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn requests_past_the_grace_period_are_cut_off() {
    let started = Arc::new(Notify::new());
    let reached = started.clone();
    let router = HttpRouter::new().route(
        "/hang",
        get(move || {
            let reached = reached.clone();
            async move {
                reached.notify_one();
                std::future::pending::<()>().await;
                "never"
            }
        }),
    );
    let short = HttpOptions {
        termination_grace_period_seconds: 0, // at least 2 s, as tomodachi
        ..options()
    };
    let server = TestServer::start(router, short).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();
    let begun = std::time::Instant::now();
    server.shutdown.trigger();
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let waited = begun.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        closed(&mut stream).await,
        "the connection is closed after the grace period"
    );
}

#[tokio::test]
async fn request_content_read_length_is_what_the_handler_read() {
    let (capture, _guard) = Capture::start();
    let router = HttpRouter::new()
        .route(
            "/read",
            axum::routing::post(|body: String| async move { body }),
        )
        .route("/unread", axum::routing::post(|| async { "not read" }));
    let server = TestServer::start(router, options()).await;
    let body = Bytes::from_static(b"12345");
    server
        .request(Method::POST, "/read", HeaderMap::new(), body.clone())
        .await;
    server
        .request(Method::POST, "/unread", HeaderMap::new(), body)
        .await;
    // Chunked: no Content-Length, so request_content_length is the length read.
    let chunked = raw(
        server.addr,
        "POST /read?chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    )
    .await;
    assert!(chunked.ends_with("abcdefg"), "{chunked}");
    server.get("/hello-not-here").await;

    let record = |path: &str, query: Option<&str>| {
        capture
            .with_target("tomodachi.http.response")
            .into_iter()
            .find(|r| {
                r.field("request_path") == Some(path) && r.field("request_query_string") == query
            })
            .unwrap_or_else(|| panic!("no record of {path}"))
    };
    capture
        .wait_for(|r| r.field("request_path") == Some("/hello-not-here"))
        .await;
    let read = record("/read", None);
    assert_eq!(read.field("request_content_length"), Some("5"));
    assert_eq!(read.field("request_content_read_length"), Some("5"));
    let unread = record("/unread", None);
    assert_eq!(unread.field("request_content_length"), Some("5"));
    assert_eq!(unread.field("request_content_read_length"), None);
    let chunked = record("/read", Some("chunked"));
    assert_eq!(chunked.field("request_content_length"), Some("7"));
    assert_eq!(chunked.field("request_content_read_length"), Some("7"));
    let get = record("/hello-not-here", None);
    assert_eq!(get.field("request_content_length"), None);
    assert_eq!(get.field("request_content_read_length"), None);
    server.stop().await;
}

#[tokio::test]
async fn static_routes_honour_ignore_logging() {
    let (capture, _guard) = Capture::start();
    let dir = std::env::temp_dir().join(format!(
        "tomodachi-http-static-quiet-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    let router = HttpRouter::new()
        .http_static(&dir, "/loud")
        .http_static_ignore_logging(&dir, "/quiet", IgnoreLoggingLayer::all())
        .http_static_ignore_logging(&dir, "/found", IgnoreLoggingLayer::statuses([200]))
        .route("/last", get(|| async { "last" }));
    let server = TestServer::start(router, options()).await;
    for path in [
        "/loud/a.txt",
        "/quiet/a.txt",
        "/quiet/missing.txt",
        "/found/a.txt",
        "/found/missing.txt",
    ] {
        server.get(path).await;
    }
    assert_eq!(server.get("/quiet/a.txt").await.body, "a");
    server.get("/last").await;
    capture
        .wait_for(|r| r.field("request_path") == Some("/last"))
        .await;
    let logged: Vec<(String, String)> = capture
        .with_target("tomodachi.http.response")
        .iter()
        .map(|r| {
            (
                r.field("request_path").unwrap_or_default().to_owned(),
                r.field("status_code").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("/loud/a.txt", "200"),
        ("/found/missing.txt", "404"),
        ("/last", "200"),
    ]
    .iter()
    .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(logged, expected);
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_response_body_longer_than_the_header_read_timeout_is_sent_whole() {
    let router = HttpRouter::new().route(
        "/slow",
        get(|| async {
            let chunks = futures_util::stream::unfold(0, |n| async move {
                if n == 3 {
                    return None;
                }
                // The body takes about three header read timeouts.
                tokio::time::sleep(Duration::from_millis(300)).await;
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(format!("chunk{n};"))),
                    n + 1,
                ))
            });
            axum::body::Body::from_stream(chunks)
        }),
    );
    let bound = HttpServer::new(options())
        .header_read_timeout(Duration::from_millis(300))
        .bind()
        .await
        .unwrap();
    let addr = bound.local_addr();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.serve(router, shutdown.clone()));
    let response = raw(addr, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(response.contains("chunk0;"), "{response}");
    assert!(response.contains("chunk2;"), "{response}");
    shutdown.trigger();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_large_response_to_a_slow_reader_is_not_cut_off_by_the_idle_timer() {
    // Far more than the socket buffers hold: hyper is handed the whole body at once and
    // still writes it long after the handler is done.
    const SIZE: usize = 12 * 1024 * 1024;
    let router = HttpRouter::new().route("/big", get(|| async { vec![b'x'; SIZE] }));
    let bound = HttpServer::new(options())
        .header_read_timeout(Duration::from_millis(200))
        .bind()
        .await
        .unwrap();
    let addr = bound.local_addr();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.serve(router, shutdown.clone()));

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A slow but steady reader (at most 16 KB every 3 ms: about two seconds in all, ten
    // times the idle timeout). The kernel wakes the writer only when a third of its send
    // buffer is free again, so the server's writes come in bursts further apart than the
    // timeout. The pauses are the behaviour under test.
    let mut received = 0_usize;
    let mut buf = vec![0_u8; 64 * 1024];
    let started = std::time::Instant::now();
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received += n;
        if received >= SIZE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(
        received >= SIZE,
        "the connection closed after {received} of {SIZE}+ bytes, {:?} in",
        started.elapsed()
    );
    shutdown.trigger();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_panic_on_an_ignore_logging_route_writes_no_access_record() {
    let (capture, _guard) = Capture::start();
    let router = HttpRouter::new()
        .route(
            "/quiet-panic",
            get(|| async {
                if true {
                    panic!("quiet boom");
                }
                "unreachable"
            })
            .layer(IgnoreLoggingLayer::all()),
        )
        .route("/last", get(|| async { "last" }));
    let server = TestServer::start(router, options()).await;
    let reply = server.get("/quiet-panic").await;
    assert_eq!(reply.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "");
    server.get("/last").await;
    capture
        .wait_for(|r| r.field("request_path") == Some("/last"))
        .await;
    let exception = capture.wait_for(|r| r.target == "exception").await;
    assert_eq!(exception.message, "uncaught exception: quiet boom");
    let paths: Vec<_> = capture
        .with_target("tomodachi.http.response")
        .iter()
        .filter_map(|r| r.field("request_path").map(str::to_owned))
        .collect();
    assert_eq!(paths, ["/last"]);
    server.stop().await;
}

#[tokio::test]
async fn responses_no_handler_made_have_no_handler_elapsed_time() {
    let (capture, _guard) = Capture::start();
    let router = HttpRouter::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/upload",
            axum::routing::post(|body: Bytes| async move { body }),
        );
    let limited = HttpOptions {
        client_max_size: tomodachi_http::ByteSize::Bytes(1024),
        ..options()
    };
    let server = TestServer::start(router, limited).await;
    server.get("/missing").await;
    server
        .request(Method::DELETE, "/hello", HeaderMap::new(), Bytes::new())
        .await;
    server
        .request(
            Method::POST,
            "/upload",
            HeaderMap::new(),
            Bytes::from(vec![b'x'; 2000]),
        )
        .await;
    server.get("/hello").await;
    let record = |path: &str, method: &str| {
        let path = path.to_owned();
        let method = method.to_owned();
        move |r: &support::Record| {
            r.target == "tomodachi.http.response"
                && r.field("request_path") == Some(path.as_str())
                && r.field("request_method") == Some(method.as_str())
        }
    };
    let handled = capture.wait_for(record("/hello", "GET")).await;
    assert_eq!(handled.field("status_code"), Some("200"));
    assert!(handled.field("handler_elapsed_time").is_some());
    for (path, method, status) in [
        ("/missing", "GET", "404"),
        ("/hello", "DELETE", "405"),
        ("/upload", "POST", "413"),
    ] {
        let unhandled = capture.wait_for(record(path, method)).await;
        assert_eq!(unhandled.field("status_code"), Some(status), "{path}");
        assert_eq!(unhandled.field("handler_elapsed_time"), None, "{path}");
        assert!(unhandled.field("request_time").is_some(), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_logs_the_requests_it_awaits() {
    let (capture, _guard) = Capture::start();
    let started = Arc::new(Notify::new());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let router = {
        let started = started.clone();
        HttpRouter::new()
            .route(
                "/slow",
                get(move || {
                    let started = started.clone();
                    let release = release.clone();
                    async move {
                        started.notify_one();
                        if let Some(release) = release.lock().await.take() {
                            let _ = release.await;
                        }
                        "done"
                    }
                }),
            )
            .route("/hello", get(|| async { "hello" }))
    };
    let keep = HttpOptions {
        keepalive_timeout: 30,
        termination_grace_period_seconds: 7,
        ..options()
    };
    let server = TestServer::start(router, keep).await;
    // Two connections, one request in flight: the count is of requests.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(GET_HELLO.as_bytes()).await.unwrap();
    read_response(&mut idle).await;
    let mut in_flight = TcpStream::connect(server.addr).await.unwrap();
    in_flight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();
    server.shutdown.trigger();
    let record = capture
        .wait_for(|r| r.message == "awaiting requests to complete")
        .await;
    assert_eq!(record.target, "tomodachi.http");
    assert_eq!(record.level, tracing::Level::INFO);
    assert_eq!(record.field("request_count"), Some("1"));
    assert_eq!(record.field("grace_period_seconds"), Some("7"));
    release_tx.send(()).unwrap();
    let response = read_response(&mut in_flight).await;
    assert!(response.ends_with("done"), "{response}");
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        !capture
            .records()
            .iter()
            .any(|r| r.message == "awaiting running tasks"),
        "no generic drain record"
    );
}

#[tokio::test]
async fn request_extensions_reach_handlers_middlewares_and_each_request_afresh() {
    #[derive(Clone)]
    struct Greeting(&'static str);
    // A handler that changes its copy does not change the next request's.
    let router = HttpRouter::new()
        .route(
            "/hello",
            get(
                |axum::Extension(greeting): axum::Extension<Greeting>,
                 mut request: axum::extract::Request| async move {
                    let seen = request.extensions_mut().insert(Greeting("changed"));
                    format!("{} {}", greeting.0, seen.map_or("none", |g| g.0))
                },
            ),
        )
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                let seen = request.extensions().get::<Greeting>().map(|g| g.0);
                let mut response = next.run(request).await;
                response.headers_mut().insert(
                    "x-middleware-saw",
                    http::HeaderValue::from_static(seen.unwrap_or("none")),
                );
                response
            },
        ));
    let mut extensions = http::Extensions::new();
    extensions.insert(Greeting("hi"));
    let server = TestServer::serve(
        HttpServer::new(options()).request_extensions(extensions),
        router,
    )
    .await;
    for _ in 0..2 {
        let response = raw(server.addr, GET_HELLO).await;
        let lower = response.to_ascii_lowercase();
        assert!(lower.contains("x-middleware-saw: hi\r\n"), "{response}");
        assert!(response.ends_with("hi hi"), "{response}");
    }
    server.stop().await;
}

//! Routing, responses, error handlers, limits, panics and static files over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use support::{Capture, TestServer, options, raw};
use tomodachi_http::{
    ByteSize, ErrorStatus, Groups, HttpError, HttpOptions, HttpResponse, HttpRouter,
};

async fn resource(groups: Groups) -> String {
    format!("id = {}", groups.get("id").unwrap_or_default())
}

fn service_router() -> HttpRouter {
    HttpRouter::new()
        .regex_route(r"/resource/(?P<id>[^/]+?)/?", get(resource))
        .regex_route("/health", get(|| async { r#"{"status": "healthy"}"# }))
        .http_error(StatusCode::NOT_FOUND, || async {
            r#"{"error": "not-found"}"#
        })
        .http_error(StatusCode::METHOD_NOT_ALLOWED, || async {
            r#"{"error": "method-not-allowed"}"#
        })
}

#[tokio::test]
async fn regex_route_passes_named_group_and_matches_whole_decoded_path() {
    let server = TestServer::start(service_router(), options()).await;
    let reply = server.get("/resource/abc").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "id = abc")
    );
    assert_eq!(server.get("/resource/abc/").await.body, "id = abc");
    assert_eq!(server.get("/resource/a%20b").await.body, "id = a b");
    assert_eq!(server.get("/resource/abc?x=1").await.body, "id = abc");
    // Full match, case-sensitive, no slash normalisation.
    assert_eq!(
        server.get("/resource/abc/def").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/Resource/abc").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/health/").await.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn get_route_answers_head_without_body() {
    let server = TestServer::start(service_router(), options()).await;
    let get = server.get("/health").await;
    let head = server
        .request(Method::HEAD, "/health", HeaderMap::new(), Bytes::new())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.body, "");
    assert_eq!(head.header("content-length"), get.body.len().to_string());
    server.stop().await;
}

#[tokio::test]
async fn other_method_is_405_with_allow_and_runs_its_handler() {
    let plain = HttpRouter::new().regex_route("/health", get(|| async { "ok" }));
    let server = TestServer::start(plain, options()).await;
    let reply = server
        .request(Method::POST, "/health", HeaderMap::new(), Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), "GET,HEAD");
    assert_eq!(reply.body, "Method Not Allowed");
    server.stop().await;

    let server = TestServer::start(service_router(), options()).await;
    let reply = server
        .request(
            Method::DELETE,
            "/resource/1",
            HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.body, r#"{"error": "method-not-allowed"}"#);
    assert_eq!(
        reply.header("allow"),
        "GET,HEAD",
        "the 405 handler's answer keeps Allow"
    );
    server.stop().await;
}

#[tokio::test]
async fn not_found_uses_the_404_handler_or_the_reason_phrase() {
    let server = TestServer::start(service_router(), options()).await;
    let reply = server.get("/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, r#"{"error": "not-found"}"#);
    server.stop().await;

    let json = HttpOptions {
        content_type: "application/json".into(),
        ..options()
    };
    let server = TestServer::start(HttpRouter::new(), json).await;
    let reply = server.get("/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, "Not Found");
    // Error bodies stay text/plain whatever the content_type option says.
    assert_eq!(reply.header("content-type"), "text/plain; charset=utf-8");
    server.stop().await;
}

#[tokio::test]
async fn raised_http_error_runs_the_handler_of_its_status() {
    let router = HttpRouter::new()
        .route("/forbidden", get(|| async { Err::<String, _>(HttpError::FORBIDDEN) }))
        .route(
            "/gone",
            get(|| async { Err::<String, _>(HttpError::new(StatusCode::GONE).with_message("gone away")) }),
        )
        .http_error(StatusCode::FORBIDDEN, |ErrorStatus(status): ErrorStatus| async move {
            format!("handled {}", status.as_u16())
        });
    let server = TestServer::start(router, options()).await;
    let reply = server.get("/forbidden").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::FORBIDDEN, "handled 403")
    );
    let reply = server.get("/gone").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::GONE, "gone away")
    );
    server.stop().await;
}

#[tokio::test]
async fn body_over_client_max_size_is_413_before_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = HttpRouter::new().route(
        "/upload",
        post(move |body: Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                format!("{} bytes", body.len())
            }
        }),
    );
    let limited = HttpOptions {
        client_max_size: ByteSize::Text("1K".into()),
        ..options()
    };
    let server = TestServer::start(router, limited).await;
    let reply = server
        .request(
            Method::POST,
            "/upload",
            HeaderMap::new(),
            Bytes::from(vec![b'x'; 2000]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body, "Maximum request body size 1024 exceeded.");
    // A chunked body without a length is cut off while it is read, still before the handler.
    let chunk = "x".repeat(1500);
    let response = raw(
        server.addr,
        &format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.ends_with("Maximum request body size 1024 exceeded."),
        "{response}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let reply = server
        .request(
            Method::POST,
            "/upload",
            HeaderMap::new(),
            Bytes::from(vec![b'x'; 1000]),
        )
        .await;
    assert_eq!(reply.body, "1000 bytes");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn panic_is_logged_empty_500_and_the_server_keeps_serving() {
    let (capture, _guard) = Capture::start();
    let router = HttpRouter::new()
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route("/ok", get(|| async { "ok" }));
    let server = TestServer::start(router, options()).await;
    let reply = server.get("/panic").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "");
    let record = capture.wait_for(|r| r.target == "exception").await;
    assert_eq!(record.message, "uncaught exception: boom");
    assert_eq!(server.get("/ok").await.body, "ok");
    server.stop().await;
}

#[tokio::test]
async fn server_header_and_default_content_type_on_every_response() {
    let router = HttpRouter::new()
        .route("/empty", get(|| async {}))
        .route(
            "/built",
            get(|| async { HttpResponse::new("{}").status(StatusCode::CREATED) }),
        )
        .route(
            "/typed",
            get(|| async {
                HttpResponse::new("<p>")
                    .content_type("text/html")
                    .charset("latin-1")
            }),
        );
    let custom = HttpOptions {
        server_header: "sheep/1".into(),
        content_type: "application/json; charset=utf-8".into(),
        ..options()
    };
    let server = TestServer::start(router, custom).await;
    let empty = server.get("/empty").await;
    assert_eq!(empty.header("server"), "sheep/1");
    assert_eq!(
        empty.header("content-type"),
        "application/json; charset=utf-8"
    );
    let built = server.get("/built").await;
    assert_eq!(built.status, StatusCode::CREATED);
    assert_eq!(
        built.header("content-type"),
        "application/json; charset=utf-8"
    );
    let typed = server.get("/typed").await;
    assert_eq!(typed.header("content-type"), "text/html; charset=latin-1");
    assert_eq!(server.get("/missing").await.header("server"), "sheep/1");
    server.stop().await;
}

#[tokio::test]
async fn static_files_serve_types_ranges_etags_and_refuse_traversal() {
    let dir = std::env::temp_dir().join(format!("tomodachi-http-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello static").unwrap();
    std::fs::write(dir.join("page.html"), "<h1>hi</h1>").unwrap();
    let router = HttpRouter::new()
        .http_static(&dir, "/static/")
        .http_error(StatusCode::NOT_FOUND, || async { "custom 404" });
    let server = TestServer::start(router, options()).await;

    let reply = server.get("/static/hello.txt").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello static")
    );
    assert!(reply.header("content-type").starts_with("text/plain"));
    assert!(!reply.header("last-modified").is_empty());
    assert!(!reply.header("etag").is_empty());
    assert!(
        server
            .get("/static/page.html")
            .await
            .header("content-type")
            .starts_with("text/html")
    );

    let mut range = HeaderMap::new();
    range.insert("range", "bytes=0-4".parse().unwrap());
    let reply = server
        .request(Method::GET, "/static/hello.txt", range, Bytes::new())
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "hello")
    );

    for missing in [
        "/static/nope.txt",
        "/static/sub",
        "/static/sub/",
        "/static/",
    ] {
        let reply = server.get(missing).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::NOT_FOUND, "custom 404"),
            "{missing}"
        );
    }
    // The raw path, so that no client normalises it away.
    for traversal in [
        "/static/../Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/%2e%2e/Cargo.toml",
    ] {
        let response = raw(
            server.addr,
            &format!("GET {traversal} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        assert!(
            response.starts_with("HTTP/1.1 404"),
            "{traversal}: {response}"
        );
        assert!(!response.contains("[package]"), "{traversal}: {response}");
    }
    let reply = server
        .request(
            Method::POST,
            "/static/hello.txt",
            HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_bytes_body_is_sent_with_the_content_type_option() {
    let router = HttpRouter::new()
        .route("/vec", get(|| async { b"vec".to_vec() }))
        .route("/bytes", get(|| async { Bytes::from_static(b"bytes") }))
        .route("/static", get(|| async { &b"static"[..] }))
        .route(
            "/octet",
            get(|| async { HttpResponse::new("raw").content_type("application/octet-stream") }),
        );
    let json = HttpOptions {
        content_type: "application/json; charset=utf-8".into(),
        ..options()
    };
    let server = TestServer::start(router, json).await;
    for path in ["/vec", "/bytes", "/static"] {
        let reply = server.get(path).await;
        assert_eq!(reply.body, &path[1..]);
        assert_eq!(
            reply.header("content-type"),
            "application/json; charset=utf-8",
            "{path}"
        );
    }
    // Asked for by name, `application/octet-stream` stays.
    let octet = server.get("/octet").await;
    assert_eq!(octet.header("content-type"), "application/octet-stream");
    server.stop().await;
}

#[tokio::test]
async fn an_error_handler_sees_what_the_middleware_put_on_the_request() {
    #[derive(Clone)]
    struct User(&'static str);

    async fn who(request: axum::extract::Request) -> String {
        let user = request.extensions().get::<User>().map_or("nobody", |u| u.0);
        format!("not found for {user}")
    }

    let router = HttpRouter::new()
        .route("/", get(|| async { "home" }))
        .http_error(StatusCode::NOT_FOUND, who)
        .layer(axum::middleware::from_fn(
            |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
                request.extensions_mut().insert(User("ada"));
                next.run(request).await
            },
        ));
    let server = TestServer::start(router, options()).await;
    let reply = server.get("/missing").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::NOT_FOUND, "not found for ada")
    );
    server.stop().await;
}

#[tokio::test]
async fn the_extension_layer_and_extractor_are_cores() {
    use tomodachi_http::{Extension, State};

    #[derive(Clone)]
    struct Pool(&'static str);

    async fn handler(Extension(pool): Extension<Pool>, State(name): State<&'static str>) -> String {
        format!("{} for {name}", pool.0)
    }

    let router = HttpRouter::new()
        .route("/pool", get(handler))
        .layer(Extension(Pool("db")))
        .with_state::<()>("orders");
    let server = TestServer::start(router, options()).await;
    assert_eq!(server.get("/pool").await.body, "db for orders");
    server.stop().await;
}

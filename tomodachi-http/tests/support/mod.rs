//! Helpers of the HTTP integration tests: a real server on 127.0.0.1, a real client, raw
//! TCP, and a tracing capture.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tomodachi_core::Shutdown;
use tomodachi_http::{Error, HttpOptions, HttpRouter, HttpServer};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// How long any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Options for a test server: 127.0.0.1, a free port, no SO_REUSEPORT.
pub fn options() -> HttpOptions {
    HttpOptions {
        host: "127.0.0.1".into(),
        port: 0,
        reuse_port: false,
        ..HttpOptions::default()
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub task: JoinHandle<Result<(), Error>>,
}

impl TestServer {
    pub async fn start(router: impl Into<HttpRouter>, options: HttpOptions) -> Self {
        Self::serve(HttpServer::new(options), router).await
    }

    /// Binds `server` and serves `router` with it.
    pub async fn serve(server: HttpServer, router: impl Into<HttpRouter>) -> Self {
        let shutdown = Shutdown::new();
        let bound = server.bind().await.expect("bind");
        let addr = bound.local_addr();
        let task = tokio::spawn(bound.serve(router, shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers shutdown and waits for the drain to finish.
    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server drained in time")
            .expect("server task")
            .expect("server result");
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, HeaderMap::new(), Bytes::new())
            .await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Reply {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut request = Request::builder().method(method).uri(self.url(path));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body)).unwrap();
        let response = tokio::time::timeout(WAIT, client.request(request))
            .await
            .expect("response in time")
            .expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

/// Sends raw bytes and reads until the server closes the connection.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("server closed the connection in time")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one HTTP/1 response (headers + Content-Length body) from a raw stream.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !buffer.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.unwrap();
            assert!(
                n > 0,
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&buffer)
            );
            buffer.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap());
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        buffer.extend_from_slice(&body);
    })
    .await
    .expect("response in time");
    String::from_utf8_lossy(&buffer).into_owned()
}

/// Waits for the peer to close the connection (EOF or reset).
pub async fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

/// One captured tracing event.
#[derive(Debug, Clone)]
pub struct Record {
    pub target: String,
    pub level: tracing::Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Record {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Captures every tracing event of the current thread while the guard lives.
#[derive(Clone, Default)]
pub struct Capture {
    records: Arc<Mutex<Vec<Record>>>,
    notify: Arc<Notify>,
}

/// Every capture by the thread it listens on (tests run their runtime on one thread).
static CAPTURES: Mutex<BTreeMap<String, Capture>> = Mutex::new(BTreeMap::new());

/// Stops a capture when dropped.
pub struct CaptureGuard(String);

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURES.lock().unwrap().remove(&self.0);
    }
}

fn thread_key() -> String {
    format!("{:?}", std::thread::current().id())
}

impl Capture {
    /// Starts capturing the events of this thread (use a current-thread runtime).
    ///
    /// One global subscriber routes events by thread: scoped (`set_default`) subscribers
    /// miss events when tests on other threads register the same callsites first.
    pub fn start() -> (Self, CaptureGuard) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(Router);
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        });
        let capture = Self::default();
        let key = thread_key();
        CAPTURES
            .lock()
            .unwrap()
            .insert(key.clone(), capture.clone());
        (capture, CaptureGuard(key))
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    pub fn with_target(&self, target: &str) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.target == target)
            .collect()
    }

    /// Waits until a record matches `predicate`.
    pub async fn wait_for(&self, predicate: impl Fn(&Record) -> bool) -> Record {
        tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.notify.notified();
                if let Some(found) = self.records().into_iter().find(|r| predicate(r)) {
                    return found;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no matching record in {:#?}", self.records()))
    }
}

struct Visitor<'a>(&'a mut Record);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.insert(field, format!("{value:?}"));
    }
}

impl Visitor<'_> {
    fn insert(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.insert(field.name().to_owned(), value);
        }
    }
}

/// The global layer: hands each event to the capture of its thread, if any.
struct Router;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Router {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let capture = CAPTURES.lock().unwrap().get(&thread_key()).cloned();
        if let Some(capture) = capture {
            capture.push(event);
        }
    }
}

impl Capture {
    fn push(&self, event: &tracing::Event<'_>) {
        let mut record = Record {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Visitor(&mut record));
        self.records.lock().unwrap().push(record);
        self.notify.notify_waiters();
    }
}

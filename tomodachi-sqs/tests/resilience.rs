//! Transient AWS errors: the consumer backs off and recovers.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, watch};
use tomodachi_core::health::SourceState;
use tomodachi_core::{Health, Message, Outcome, Shutdown, Source};
use tomodachi_sqs::{AwsClients, SqsConsumer, SqsSender, Subscription};
use tower::service_fn;

use support::*;

/// A TCP proxy to moto that can answer every request with 503 instead.
struct Proxy {
    url: String,
    broken: Arc<AtomicBool>,
    refused: watch::Sender<usize>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let broken = Arc::new(AtomicBool::new(false));
        let refused = watch::Sender::new(0_usize);
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let upstream = upstream.trim_start_matches("http://").to_owned();
        {
            let (broken, refused, connections) =
                (broken.clone(), refused.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if broken.load(Ordering::SeqCst) {
                        refused.send_modify(|count| *count += 1);
                        let _ = client
                            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().await.push(task.abort_handle());
                }
            });
        }
        Self {
            url,
            broken,
            refused,
            connections,
        }
    }

    async fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
        if broken {
            for connection in self.connections.lock().await.drain(..) {
                connection.abort();
            }
        }
    }
}

#[tokio::test]
async fn transient_errors_back_off_and_recover() {
    let direct = clients().await;
    let proxy = Proxy::start(require_moto()).await;
    let config = tomodachi_sqs::sdk_config(&options()).await.unwrap();
    let sqs = aws_sdk_sqs::config::Builder::from(&config)
        .endpoint_url(&proxy.url)
        .build();
    let proxied = AwsClients::new(
        aws_sdk_sqs::Client::from_conf(sqs),
        direct.sns().clone(),
        direct.sts().clone(),
    );
    let queue = unique("flaky-q");
    let (sender, mut received) = mpsc::unbounded_channel();
    let service = service_fn(move |message: Message| {
        let sender = sender.clone();
        async move {
            sender.send(message.body().clone()).unwrap();
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let shutdown = Shutdown::new();
    let health = Health::new();
    let reporter = health.reporter("sqs");
    let running = SqsConsumer::new(
        proxied,
        options(),
        Subscription::new()
            .queue(&queue)
            .wait_time(Duration::from_secs(1)),
        identity("flaky"),
    )
    .health(reporter.clone())
    .start(service, shutdown.clone())
    .await
    .unwrap();
    let running = tokio::spawn(running);
    assert_eq!(reporter.state(), SourceState::Ready);
    let mut states = health.subscribe();

    proxy.set_broken(true).await;
    SqsSender::new(direct.clone(), options(), identity("sender"))
        .send(&json!("after the outage"), &queue)
        .await
        .unwrap();
    let mut refused = proxy.refused.subscribe();
    within(
        30,
        "the first refused request",
        refused.wait_for(|count| *count >= 1),
    )
    .await
    .unwrap();
    let first = Instant::now();
    within(
        60,
        "more refused requests",
        refused.wait_for(|count| *count >= 4),
    )
    .await
    .unwrap();
    assert!(
        first.elapsed() >= Duration::from_millis(500),
        "no back-off: {} requests in {:?}",
        *proxy.refused.borrow(),
        first.elapsed()
    );
    assert!(received.try_recv().is_err());
    // Degraded from the first failing receive (readiness is 503 meanwhile).
    match reporter.state() {
        SourceState::Degraded { reason } => {
            assert!(reason.starts_with("ReceiveMessage failing"), "{reason}");
        }
        other => panic!("not degraded while receives fail: {other:?}"),
    }

    proxy.set_broken(false).await;
    within(
        60,
        "ready again after the outage",
        states.wait_for(|snapshot| snapshot.sources()[0].state() == &SourceState::Ready),
    )
    .await
    .unwrap();
    let body = within(60, "the message after recovery", received.recv())
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("after the outage"));
    shutdown.trigger();
    within(30, "drain", running).await.unwrap().unwrap();
    assert_eq!(reporter.state(), SourceState::Stopped);
}

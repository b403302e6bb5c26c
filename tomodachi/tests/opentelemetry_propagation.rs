//! One trace from an HTTP request (with an incoming `traceparent`) through an AMQP publish
//! and an SNS publish (by the service's own publishers, which the facade hands the HTTP
//! handler) to the consumers of those messages, with `--opentelemetry-instrument` and no
//! code change in the handlers. Needs RabbitMQ at 127.0.0.1:5672 and moto at
//! 127.0.0.1:4566 (`TOMODACHI_TEST_MOTO_URL`). (Own test binary: OpenTelemetry is installed
//! once per process.)
#![cfg(all(feature = "otel", feature = "http", feature = "amqp", feature = "sns"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tomodachi::amqp::{AmqpPublisher, Binding, PublishOptions};
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::Extension as HttpExtension;
use tomodachi::http::axum::extract::State as HttpState;
use tomodachi::http::axum::routing::post;
use tomodachi::options::HttpOptions;
use tomodachi::sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions, SnsPublisher, Subscription};
use tomodachi::{Data, JsonEnvelope, Options, Process, Service, State};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type Seen = mpsc::UnboundedSender<(&'static str, Option<(String, String)>)>;

#[derive(Clone)]
struct App {
    exchange: String,
    topic: String,
    seen: Seen,
}

async fn order(
    HttpState(app): HttpState<App>,
    HttpExtension(amqp): HttpExtension<AmqpPublisher>,
    HttpExtension(sns): HttpExtension<SnsPublisher>,
) -> &'static str {
    let _ = app
        .seen
        .send(("http", tomodachi::otel::current_trace_ids()));
    let to_exchange = PublishOptions::new().exchange(&app.exchange);
    amqp.publish_with(&json!({"order": 1}), "otel.order.created", to_exchange)
        .await
        .unwrap();
    sns.publish(&json!({"order": 1}), &app.topic).await.unwrap();
    "ok"
}

async fn on_created(State(app): State<App>, Data(_data): Data<serde_json::Value>) {
    let _ = app
        .seen
        .send(("amqp", tomodachi::otel::current_trace_ids()));
}

async fn on_notified(State(app): State<App>, Data(_data): Data<serde_json::Value>) {
    let _ = app.seen.send(("sqs", tomodachi::otel::current_trace_ids()));
}

fn aws() -> (AwsSnsSqsOptions, AwsEndpointUrlsOptions) {
    let url =
        std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    (
        AwsSnsSqsOptions {
            region_name: Some("us-east-1".into()),
            aws_access_key_id: Some("testing".into()),
            aws_secret_access_key: Some("testing".into()),
            ..AwsSnsSqsOptions::default()
        },
        AwsEndpointUrlsOptions {
            sns: Some(url.clone()),
            sqs: Some(url),
            sts: None,
        },
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_publish_and_consume_share_one_trace() {
    let exchange = format!("otel-prop-{}", std::process::id());
    let http_port = free_port();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let topic = format!("otel-prop-{}", std::process::id());
    let (aws_options, endpoints) = aws();
    let app = App {
        exchange: exchange.clone(),
        topic: topic.clone(),
        seen: seen_tx,
    };
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let service = Service::new("otel-prop")
        .state(app)
        .envelope(JsonEnvelope)
        .options(
            Options::new()
                .http(HttpOptions {
                    host: "127.0.0.1".to_owned(),
                    port: http_port,
                    ..HttpOptions::default()
                })
                .aws_sns_sqs(aws_options)
                .aws_endpoint_urls(endpoints),
        )
        .http(HttpRouter::new().route("/orders", post(order)))
        .amqp(
            Binding::routing_key("otel.order.created").exchange(&exchange),
            on_created,
        )
        .sqs(
            Subscription::topic(&topic)
                .queue(format!("{topic}-q"))
                .wait_time(Duration::from_secs(1)),
            on_notified,
        )
        .on_started(move |_| async move {
            let _ = started_tx.send(());
        });
    let process = Process::new()
        .service(service)
        .without_signals()
        .without_logging()
        .args(["otel-prop"])
        .env([
            ("TOMODACHI_OPENTELEMETRY_INSTRUMENT", "1"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
    let shutdown = process.shutdown();
    let client = async move {
        tokio::time::timeout(Duration::from_secs(20), started_rx)
            .await
            .expect("service started")
            .unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", http_port)).await.unwrap();
        let request = format!(
            "POST /orders HTTP/1.1\r\nhost: localhost\r\ntraceparent: {TRACEPARENT}\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let next = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
                .await
                .expect("handlers ran")
                .unwrap();
            seen.push(next);
        }
        shutdown.trigger();
        seen
    };
    let (_exit, seen) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(process.run(), client)
    })
    .await
    .expect("process stopped");

    let ids = |source: &str| {
        seen.iter()
            .find(|(s, _)| *s == source)
            .and_then(|(_, ids)| ids.clone())
            .unwrap_or_else(|| panic!("{source} handler ran outside a span: {seen:?}"))
    };
    let (http_trace, http_span) = ids("http");
    let (amqp_trace, amqp_span) = ids("amqp");
    let (sqs_trace, sqs_span) = ids("sqs");
    assert_eq!(
        http_trace, TRACE_ID,
        "the HTTP span continues the incoming trace"
    );
    assert_eq!(
        amqp_trace, TRACE_ID,
        "the consumer continues the publisher's trace"
    );
    assert_eq!(
        sqs_trace, TRACE_ID,
        "the SNS+SQS consumer continues the trace"
    );
    assert_ne!(http_span, amqp_span);
    assert_ne!(amqp_span, sqs_span);
    assert_ne!(http_span, "00f067aa0ba902b7");
}

//! HTTP handlers get the service's publishers as axum `Extension`s (the server puts them
//! into every request), without a broker: the AMQP connection opens when first used.
#![cfg(all(feature = "http", feature = "amqp"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{free_port, until_ready_is};
use tomodachi::amqp::AmqpPublisher;
use tomodachi::http::HttpRouter;
use tomodachi::http::axum::Extension;
use tomodachi::http::axum::routing::get;
use tomodachi::{Exit, Service};

/// Answers only when the publisher is in the request's extensions (else axum's 500).
async fn with_publisher(Extension(_amqp): Extension<AmqpPublisher>) -> &'static str {
    r#"{"status": "healthy", "publisher": "amqp"}"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_handler_takes_the_services_amqp_publisher() {
    let port = free_port();
    let service = Service::new("http-publishers")
        .http(HttpRouter::new().route("/publisher", get(with_publisher)))
        .configure(|options| {
            options.http.host = "127.0.0.1".into();
            options.http.port = port;
        });
    let (shutdown, running) = support::run(service);
    until_ready_is(port, 200, "the service starts").await;
    let (status, body) = support::probe(port, "/publisher").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["publisher"], "amqp", "{body}");
    shutdown.trigger();
    let exit = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit, Exit::SUCCESS);
}

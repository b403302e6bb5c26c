//! Shared helpers of the moto tests.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::Value;
use tokio::sync::mpsc;
use tomodachi_core::{Data, ServiceIdentity, State};
use tomodachi_sqs::{
    AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, SqsConsumer, SqsContext, Subscription,
};

pub const REGION: &str = "us-east-1";

/// moto's URL (`TOMODACHI_TEST_MOTO_URL`, default `http://127.0.0.1:4566`).
pub fn moto_url() -> String {
    std::env::var("TOMODACHI_TEST_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// Panics with a clear message if moto cannot be reached (tests never skip).
pub fn require_moto() -> String {
    let url = moto_url();
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let socket = address.parse::<std::net::SocketAddr>().unwrap_or_else(|_| {
        panic!("TOMODACHI_TEST_MOTO_URL must be http://<ip>:<port>, got {url}")
    });
    if std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_err() {
        panic!(
            "moto is not reachable at {url}: start it with `moto_server -H 127.0.0.1 -p 4566` \
             (or set TOMODACHI_TEST_MOTO_URL)"
        );
    }
    url
}

pub fn options() -> AwsSnsSqsOptions {
    AwsSnsSqsOptions {
        region_name: Some(REGION.into()),
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some("testing".into()),
        ..AwsSnsSqsOptions::default()
    }
}

pub fn endpoints() -> AwsEndpointUrlsOptions {
    let url = require_moto();
    AwsEndpointUrlsOptions {
        sns: Some(url.clone()),
        sqs: Some(url),
        sts: None,
    }
}

/// Counts SQS API calls by operation (from the `X-Amz-Target` header).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<HashMap<String, usize>>>);

impl CallCounter {
    pub fn get(&self, operation: &str) -> usize {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_owned();
        *self.0.lock().unwrap().entry(target).or_default() += 1;
        Ok(())
    }
}

pub async fn clients() -> AwsClients {
    AwsClients::from_options(&options(), &endpoints())
        .await
        .unwrap()
}

/// Clients whose SQS calls are counted.
pub async fn counted_clients() -> (AwsClients, CallCounter) {
    let endpoints = endpoints();
    let config = tomodachi_sqs::sdk_config(&options()).await.unwrap();
    let counter = CallCounter::default();
    let sqs = aws_sdk_sqs::config::Builder::from(&config)
        .endpoint_url(endpoints.sqs.clone().unwrap())
        .interceptor(counter.clone())
        .build();
    let clients = AwsClients::from_sdk_config(&config, &endpoints)
        .with_sqs(aws_sdk_sqs::Client::from_conf(sqs));
    (clients, counter)
}

/// A unique name for this test run.
pub fn unique(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}-{}", &id[..12])
}

pub fn identity(name: &str) -> ServiceIdentity {
    ServiceIdentity::with_random_uuid(name)
}

/// Awaits `future` for at most `seconds`, with a clear panic otherwise.
pub async fn within<F: Future>(seconds: u64, what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {seconds} s waiting for {what}"))
}

/// The URL of a queue by name.
pub async fn queue_url(clients: &AwsClients, name: &str) -> String {
    clients
        .sqs()
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// The messages visible in a queue now (a short poll up to `wait`).
pub async fn receive_all(
    clients: &AwsClients,
    url: &str,
    wait: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    #[allow(deprecated)]
    let output = clients
        .sqs()
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    output.messages.unwrap_or_default()
}

/// Queue attributes by name.
pub async fn queue_attributes(clients: &AwsClients, url: &str) -> HashMap<String, String> {
    clients
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.as_str().to_owned(), value))
        .collect()
}

/// A consumer of `subscription` with the tests' options and a 1 s long poll.
pub fn consumer(clients: &AwsClients, subscription: Subscription) -> SqsConsumer {
    SqsConsumer::new(
        clients.clone(),
        options(),
        subscription.wait_time(Duration::from_secs(1)),
        identity("consumer"),
    )
}

/// A handler that sends each message's context and data to the test (its state).
pub async fn on_message(
    State(sender): State<mpsc::UnboundedSender<(SqsContext, Value)>>,
    context: SqsContext,
    Data(data): Data<Value>,
) {
    let _ = sender.send((context, data));
}

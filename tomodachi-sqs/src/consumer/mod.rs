//! The SNS+SQS message source.

mod delete;
mod parse;
mod scan;
mod telemetry;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tomodachi_core::driver::{Driver, Settle};
use tomodachi_core::{
    BoxError, EnvelopeLayer, HealthReporter, Message, Outcome, ServiceIdentity, Shutdown, Source,
};
use tower::util::Either;
use tower::{Layer as _, Service};

use crate::error::aws;
use crate::setup::{QueueSetup, setup};
use crate::{AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, Error, Subscription};
use delete::Deleter;
use parse::{Parsed, parse};

const LOG: &str = "tomodachi.awssnssqs";

/// How long past its wait time a receive in flight at shutdown is awaited.
const RECEIVE_SLACK: Duration = Duration::from_secs(10);

/// The SNS+SQS source of one handler: sets its queue up, then long-polls it and drives a
/// `tower::Service<Message, Response = Outcome>` with every message.
///
/// - Receives with `WaitTimeSeconds=20` (see [`Subscription::wait_time`]), up to the batch
///   size or the free room (see [`Subscription::max_in_flight`]), awaiting the service's
///   readiness before each message.
/// - [`Outcome::Ack`] deletes (batched with `DeleteMessageBatch`); [`Outcome::Retry`] keeps
///   the message (with a delay, its visibility changes); [`Outcome::Reject`] sends it to the
///   subscription's dead-letter queue, or leaves it for the queue's redrive policy.
/// - A service error or panic is classified by the subscription's
///   [`on_failure`](Subscription::on_failure) (default: a retry), in core's
///   [`Driver`](tomodachi_core::driver::Driver), as every source's are; so is a service that
///   fails its `poll_ready` (the consumer stops and fails with [`Error::Service`]).
/// - On shutdown no new receive starts; the one in flight completes (woken at once by
///   tomodachi's drain marker, sent to the queue) and its messages start, in-flight
///   handlers finish and their deletes are flushed. Received messages that cannot start
///   (a service that is not ready) become visible again at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), tomodachi_sqs::Error> {
/// use tomodachi_core::{HandlerWithoutStateExt as _, Shutdown, Source as _, ServiceIdentity};
/// use tomodachi_sqs::{AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions, QueueUrl, SqsConsumer, Subscription};
///
/// async fn on_event(QueueUrl(queue): QueueUrl) {
///     println!("message on {queue}");
/// }
///
/// let options = AwsSnsSqsOptions { region_name: Some("eu-west-1".into()), ..Default::default() };
/// let clients = AwsClients::from_options(&options, &AwsEndpointUrlsOptions::default()).await?;
/// // `Subscription::topic("example-topic")` (the `sns` feature) subscribes the queue to a topic.
/// let subscription = Subscription::new().queue("example-queue");
/// let consumer = SqsConsumer::new(clients, options, subscription, ServiceIdentity::with_random_uuid("service"));
/// consumer.serve(on_event.into_service(), Shutdown::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqsConsumer {
    clients: AwsClients,
    options: Arc<AwsSnsSqsOptions>,
    subscription: Subscription,
    identity: ServiceIdentity,
    delete_linger: Duration,
    health: HealthReporter,
}

impl SqsConsumer {
    /// A consumer of `subscription` for the service `identity`.
    pub fn new(
        clients: AwsClients,
        options: AwsSnsSqsOptions,
        subscription: Subscription,
        identity: ServiceIdentity,
    ) -> Self {
        Self {
            clients,
            options: Arc::new(options),
            subscription,
            identity,
            delete_linger: Duration::from_millis(5),
            health: HealthReporter::default(),
        }
    }

    /// A consumer with clients built from the options.
    pub async fn from_options(
        options: AwsSnsSqsOptions,
        endpoints: &AwsEndpointUrlsOptions,
        subscription: Subscription,
        identity: ServiceIdentity,
    ) -> Result<Self, Error> {
        let clients = AwsClients::from_options(&options, endpoints).await?;
        Ok(Self::new(clients, options, subscription, identity))
    }

    /// How long a delete waits for others to share its `DeleteMessageBatch` (default 5 ms).
    #[must_use]
    pub fn delete_linger(mut self, linger: Duration) -> Self {
        self.delete_linger = linger;
        self
    }

    /// Reports the consumer's health to `reporter`: ready once its queue is set up,
    /// degraded from the first failing `ReceiveMessage` until one succeeds, draining on
    /// shutdown, stopped once drained.
    #[must_use]
    pub fn health(mut self, reporter: HealthReporter) -> Self {
        self.health = reporter;
        self
    }

    /// The subscription.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Sets the queue (and topic, subscription, dead-letter queue) up, as the source does
    /// on start. Returns the queue's URL.
    pub async fn setup(&self) -> Result<String, Error> {
        let done = self.run_setup().await?;
        Ok(done.queue_url)
    }

    async fn run_setup(&self) -> Result<QueueSetup, Error> {
        setup(
            &self.clients,
            &self.options,
            &self.identity.uuid,
            &self.subscription,
        )
        .await
    }
}

/// The [`Message`] the consumer hands to its service for an SQS message: the SNS
/// notification's `Message` as body, [`SqsContext`](crate::SqsContext) and
/// [`Attributes`](tomodachi_core::Attributes) as context. `None` when tomodachi deletes the
/// message without handling it (a body that is not a JSON object, no `Message`).
///
/// Useful where SQS messages arrive some other way (an AWS Lambda event, tests).
pub fn message_from_sqs(
    message: &aws_sdk_sqs::types::Message,
    queue_url: &Arc<str>,
    topic_prefix: &str,
) -> Option<Message> {
    match parse(message, queue_url, topic_prefix) {
        Parsed::Handle(message) => Some(message),
        Parsed::Empty | Parsed::Unsupported => None,
    }
}

/// The future of a running [`SqsConsumer`].
pub type Running = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

impl<S> Source<S> for SqsConsumer
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Error = Error;
    type Running = Running;

    async fn start(self, service: S, shutdown: Shutdown) -> Result<Running, Error> {
        let queue = match self.run_setup().await {
            Ok(queue) => queue,
            Err(error) => {
                tracing::warn!(target: LOG, topic = self.subscription.topic_name().unwrap_or(""), "{}", error);
                return Err(error);
            }
        };
        self.health.ready();
        Ok(Box::pin(run(self, queue, service, shutdown)))
    }
}

/// What every message task shares.
#[derive(Debug)]
struct Shared {
    sqs: aws_sdk_sqs::Client,
    queue_url: Arc<str>,
    dead_letter_queue_url: Option<String>,
    deleter: Deleter,
}

async fn run<S>(
    consumer: SqsConsumer,
    mut queue: QueueSetup,
    service: S,
    shutdown: Shutdown,
) -> Result<(), Error>
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let service = match &consumer.subscription.envelope {
        Some(envelope) => Either::Left(EnvelopeLayer::new(envelope.clone()).layer(service)),
        None => Either::Right(service),
    };
    let handler: Arc<str> = Arc::from(consumer.subscription.handler_name.as_str());
    let mut driver = Driver::new(crate::TRANSPORT, service, shutdown.clone())
        .handler(handler.clone())
        .classifier(consumer.subscription.classifier.clone());
    let sqs = consumer.clients.sqs().clone();
    let (deleter, deleter_task) =
        Deleter::spawn(sqs.clone(), queue.queue_url.clone(), consumer.delete_linger);
    // Every deleter's task, awaited at shutdown (a queue set up again gets its own).
    let mut deleter_tasks = vec![deleter_task];
    let mut shared = Arc::new(Shared {
        sqs: sqs.clone(),
        queue_url: Arc::from(queue.queue_url.as_str()),
        dead_letter_queue_url: queue.dead_letter_queue_url.clone(),
        deleter,
    });
    // The queue's name without the options' prefix (telemetry's destination name).
    let queue_name: String = queue
        .queue_name
        .strip_prefix(consumer.options.queue_name_prefix.as_str())
        .unwrap_or(&queue.queue_name)
        .to_owned();
    let subscription = &consumer.subscription;
    let fifo_queue = queue.queue_url.ends_with(".fifo");
    let room = if fifo_queue {
        1
    } else {
        subscription
            .max_in_flight
            .unwrap_or(subscription.batch_size(&queue.queue_url) as usize)
    };
    let permits = Arc::new(Semaphore::new(room));
    let mut failures: u32 = 0;
    let mut failing_since: Option<tokio::time::Instant> = None;
    let mut result = Ok(());

    'receive: while !shutdown.is_triggered() {
        // Room for at least one message, and a ready service.
        let first = tokio::select! {
            biased;
            () = shutdown.triggered() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        match driver.ready().await {
            Ok(Some(_ready)) => {}
            Ok(None) => break,
            Err(failed) => {
                result = Err(Error::Service(failed.0.to_string()));
                break;
            }
        }
        let mut room: Vec<OwnedSemaphorePermit> = vec![first];
        let batch = subscription.batch_size(&queue.queue_url) as usize;
        // Handlers finishing together free their room one by one: wait a moment (as
        // long as a delete waits for its batch) to receive a full batch, not a few.
        let linger = tokio::time::Instant::now() + consumer.delete_linger;
        while room.len() < batch {
            if let Ok(permit) = permits.clone().try_acquire_owned() {
                room.push(permit);
                continue;
            }
            match tokio::time::timeout_at(linger, permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => room.push(permit),
                _ => break,
            }
        }

        #[allow(deprecated)]
        let receive = sqs
            .receive_message()
            .queue_url(&*shared.queue_url)
            .wait_time_seconds(subscription.wait_time.as_secs() as i32)
            .max_number_of_messages(room.len() as i32)
            .attribute_names(QueueAttributeName::from("ApproximateReceiveCount"))
            .attribute_names(QueueAttributeName::from("MessageDeduplicationId"))
            .attribute_names(QueueAttributeName::from("MessageGroupId"))
            .message_attribute_names("All")
            .send();
        tokio::pin!(receive);
        let response = tokio::select! {
            biased;
            response = &mut receive => response,
            () = shutdown.triggered() => {
                // A receive cannot be cut short on the wire: dropped, its messages would
                // stay invisible until their visibility timeout, with their receive count
                // raised. Let it complete (it returns within its wait time, at once when
                // the drain marker wakes it) and start what it brought, as the work in
                // flight it is.
                let wait = tokio::time::timeout(subscription.wait_time + RECEIVE_SLACK, &mut receive);
                let ((), response) = tokio::join!(wake(&shared, fifo_queue), wait);
                match response {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::warn!(target: LOG, queue_name = %queue.queue_name, "the receive in flight at shutdown did not complete: its messages (if any) come back after their visibility timeout");
                        break;
                    }
                }
            }
        };
        let messages = match response {
            Ok(output) => {
                if let Some(since) = failing_since.take() {
                    tracing::warn!(target: LOG, queue_name = %queue.queue_name, failures, after = ?since.elapsed(), "Reconnected - receiving messages");
                }
                if failures > 0 {
                    consumer.health.ready();
                }
                failures = 0;
                output.messages.unwrap_or_default()
            }
            Err(error) => {
                let error = aws("ReceiveMessage", error);
                failures += 1;
                if failures == 1 {
                    // Degraded from the first failure of a streak: the probe shows for
                    // how long (its `seconds`).
                    consumer
                        .health
                        .degraded(format!("ReceiveMessage failing: {}", error.short()));
                }
                failing_since.get_or_insert_with(tokio::time::Instant::now);
                let backoff = Duration::from_secs(1 << failures.min(5).saturating_sub(1))
                    .min(Duration::from_secs(20));
                if error.is_queue_missing() {
                    tracing::warn!(target: LOG, queue_name = %queue.queue_name, "Unable to receive message from queue [sqs] on AWS ({}) - setting the queue up again", error.short());
                    match consumer.run_setup().await {
                        Ok(new_queue) => {
                            if new_queue.queue_url != queue.queue_url
                                || new_queue.dead_letter_queue_url != queue.dead_letter_queue_url
                            {
                                let (deleter, task) = Deleter::spawn(
                                    sqs.clone(),
                                    new_queue.queue_url.clone(),
                                    consumer.delete_linger,
                                );
                                deleter_tasks.push(task);
                                shared = Arc::new(Shared {
                                    sqs: sqs.clone(),
                                    queue_url: Arc::from(new_queue.queue_url.as_str()),
                                    dead_letter_queue_url: new_queue.dead_letter_queue_url.clone(),
                                    deleter,
                                });
                            }
                            queue = new_queue;
                        }
                        Err(error) => {
                            tracing::warn!(target: LOG, queue_name = %queue.queue_name, "Unable to set the queue up again ({})", error.short());
                        }
                    }
                } else {
                    // Every failed receive is logged with its back-off: a broker that
                    // cannot be reached shows in the log, and so does its recovery.
                    tracing::warn!(target: LOG, queue_name = %queue.queue_name, failures, retry_in = ?backoff, "Unable to receive message from queue [sqs] on AWS ({})", error.short());
                }
                drop(room);
                tokio::select! {
                    biased;
                    () = shutdown.triggered() => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };

        let mut messages = messages.into_iter();
        while let Some(received) = messages.next() {
            let Some(permit) = room.pop() else {
                // SQS returned more than asked: leave the rest for later.
                release(
                    &shared,
                    std::iter::once(received).chain(messages.by_ref()).collect(),
                )
                .await;
                break;
            };
            let parsed = parse(&received, &shared.queue_url, &consumer.options.topic_prefix);
            let settler = Settler {
                shared: shared.clone(),
                received,
                _permit: permit,
            };
            let message = match parsed {
                Parsed::Handle(mut message) => {
                    if tomodachi_core::telemetry::enabled() {
                        telemetry::insert_delivery(&mut message, &queue_name, &handler);
                    }
                    message
                }
                Parsed::Empty => {
                    driver.settle(settler, Outcome::Ack);
                    continue;
                }
                Parsed::Unsupported => {
                    let body = settler.received.body().unwrap_or_default();
                    let message_body: String = body.chars().take(1000).collect();
                    tracing::warn!(target: LOG, message_body = %message_body, "unsupported format of message body");
                    driver.settle(settler, Outcome::Ack);
                    continue;
                }
            };
            // During shutdown (the receive in flight at the signal), a message starts if the
            // service is ready at once: it was received, and a release would not undo the
            // receive count SQS raised; a service that is not ready releases the rest.
            let ready = if shutdown.is_triggered() {
                driver.ready_now().await
            } else {
                driver.ready().await
            };
            let ready = match ready {
                Ok(Some(ready)) => ready,
                Ok(None) => {
                    release(
                        &shared,
                        std::iter::once(settler.received).chain(messages).collect(),
                    )
                    .await;
                    break 'receive;
                }
                Err(failed) => {
                    result = Err(Error::Service(failed.0.to_string()));
                    release(
                        &shared,
                        std::iter::once(settler.received).chain(messages).collect(),
                    )
                    .await;
                    break 'receive;
                }
            };
            let span = tracing::info_span!(
                target: "tomodachi.awssnssqs.handler",
                "handler",
                handler = %handler,
                r#type = "tomodachi.awssnssqs",
            );
            ready.dispatch(message, settler, span);
        }
    }

    tracing::info!(target: LOG, queue_name = %queue.queue_name, "draining sqs receiver loop");
    consumer.health.draining();
    driver.drain().await;
    drop(shared);
    for task in deleter_tasks {
        let _ = task.await;
    }
    consumer.health.stopped();
    result
}

/// One received message, settled on its queue; holds its room in flight until then.
struct Settler {
    shared: Arc<Shared>,
    received: aws_sdk_sqs::types::Message,
    _permit: OwnedSemaphorePermit,
}

impl Settler {
    fn receipt(&self) -> String {
        self.received
            .receipt_handle()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Settle for Settler {
    async fn ack(self) {
        self.shared.deleter.delete(self.receipt()).await;
    }

    async fn retry(self, delay: Option<Duration>) {
        let Some(delay) = delay else { return };
        let seconds = delay.as_secs().min(43_200) as i32;
        if let Err(error) = self
            .shared
            .sqs
            .change_message_visibility()
            .queue_url(&*self.shared.queue_url)
            .receipt_handle(self.receipt())
            .visibility_timeout(seconds)
            .send()
            .await
        {
            let error = aws("ChangeMessageVisibility", error);
            tracing::warn!(target: LOG, "Unable to change message visibility [sqs] on AWS ({})", error.short());
        }
    }

    async fn reject(self) {
        match &self.shared.dead_letter_queue_url {
            Some(dlq_url) => {
                if dead_letter(&self.shared, dlq_url, &self.received).await {
                    self.shared.deleter.delete(self.receipt()).await;
                }
            }
            None => {
                tracing::warn!(target: LOG, sqs_message_id = self.received.message_id().unwrap_or_default(), "rejected message kept for the queue's redrive policy (no dead-letter queue configured)");
            }
        }
    }
}

/// Copies a rejected message to the dead-letter queue.
async fn dead_letter(
    shared: &Shared,
    dlq_url: &str,
    received: &aws_sdk_sqs::types::Message,
) -> bool {
    let system = received.attributes();
    let value = |name: MessageSystemAttributeName| system.and_then(|map| map.get(&name)).cloned();
    let mut request = shared
        .sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(received.body().unwrap_or_default())
        .set_message_attributes(received.message_attributes().cloned());
    if dlq_url.ends_with(".fifo") {
        request = request
            .set_message_group_id(value(MessageSystemAttributeName::MessageGroupId))
            .set_message_deduplication_id(
                value(MessageSystemAttributeName::MessageDeduplicationId)
                    .or_else(|| received.message_id().map(str::to_owned)),
            );
    }
    match request.send().await {
        Ok(_) => true,
        Err(error) => {
            let error = aws("SendMessage", error);
            tracing::warn!(target: LOG, "Unable to send message to the dead-letter queue [sqs] on AWS ({})", error.short());
            false
        }
    }
}

/// Wakes the long poll in flight at shutdown: sends tomodachi's drain marker to the queue,
/// which any tomodachi consumer (Rust or Python) deletes without handling. Whoever
/// receives it, a poll waiting on an idle queue returns at once instead of after its wait.
async fn wake(shared: &Shared, fifo_queue: bool) {
    let body = serde_json::json!({ "Message": parse::DRAIN_MESSAGE_PAYLOAD }).to_string();
    let mut request = shared
        .sqs
        .send_message()
        .queue_url(&*shared.queue_url)
        .message_body(body);
    if fifo_queue {
        request = request
            .message_group_id("tomodachi-drain")
            .message_deduplication_id(uuid::Uuid::new_v4().to_string());
    }
    if let Err(error) = request.send().await {
        let error = aws("SendMessage", error);
        tracing::debug!(target: LOG, "Unable to wake the receive in flight [sqs] ({})", error.short());
    }
}

/// Makes received messages that were not started visible again at once.
async fn release(shared: &Shared, messages: Vec<aws_sdk_sqs::types::Message>) {
    for chunk in messages.chunks(10) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(error) = shared
            .sqs
            .change_message_visibility_batch()
            .queue_url(&*shared.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            let error = aws("ChangeMessageVisibilityBatch", error);
            tracing::warn!(target: LOG, "Unable to release messages [sqs] on AWS ({})", error.short());
        }
    }
}

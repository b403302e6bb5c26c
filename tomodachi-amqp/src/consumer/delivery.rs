//! One delivery: build the message, run the service call, settle the outcome.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tomodachi_core::{BoxError, Message, Outcome, Shutdown, telemetry};

use crate::context::{AmqpContext, AmqpProperties, table_from_lapin};
use crate::{AmqpPublisher, ResolvedBinding};

/// Builds the message of a delivery; returns it with the delivery's acker.
pub(super) fn into_message(
    delivery: Delivery,
    binding: &ResolvedBinding,
    publisher: Option<&AmqpPublisher>,
    handler: &str,
) -> (Message, Acker, u64) {
    let Delivery {
        delivery_tag,
        exchange,
        routing_key,
        redelivered,
        properties,
        data,
        acker,
    } = delivery;
    let headers = properties
        .headers()
        .as_ref()
        .map(table_from_lapin)
        .unwrap_or_default();
    let context = AmqpContext {
        routing_key: routing_key.as_str().to_owned(),
        bound_routing_key: binding.routing_key.clone(),
        exchange: exchange.as_str().to_owned(),
        queue_name: binding.queue_name.clone(),
        delivery_tag,
        redelivered,
        headers,
        properties: AmqpProperties::from_lapin(&properties),
    };
    let telemetry = telemetry::enabled().then(|| {
        let header = |name: &str| {
            context
                .headers
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        telemetry::Delivery::new(telemetry::RABBITMQ, context.exchange.as_str(), handler)
            .routing(context.routing_key.as_str())
            .message_id(context.properties.message_id.as_deref())
            .traceparent(header("traceparent"))
            .tracestate(header("tracestate"))
    });
    let mut message = Message::new(data).with_context(context);
    if let Some(delivery) = telemetry {
        message.insert_context(delivery);
    }
    if let Some(publisher) = publisher {
        message.insert_context(publisher.clone());
    }
    (message, acker, delivery_tag)
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

/// Runs the service's response future; an error or a panic is a retry, logged.
pub(super) async fn outcome<F, E>(call: std::thread::Result<F>) -> Outcome
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<BoxError>,
{
    let result = match call {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => {
            let error: BoxError = error.into();
            tracing::error!(target: "exception", "uncaught exception: {error}");
            Outcome::retry()
        }
        Err(panic) => {
            let text = panic_text(&*panic);
            tracing::error!(target: "exception", "uncaught exception: panic: {text}");
            Outcome::retry()
        }
    }
}

/// Acks, requeues (after the retry delay, cut short by shutdown) or rejects. A failure
/// because the channel went away is logged: the broker redelivers the message.
pub(super) async fn settle(
    acker: &Acker,
    delivery_tag: u64,
    outcome: Outcome,
    shutdown: &Shutdown,
) {
    let (action, result) = match outcome {
        Outcome::Ack => ("ack", acker.ack(BasicAckOptions::default()).await),
        Outcome::Retry { delay } => {
            if let Some(delay) = delay {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.triggered() => {}
                }
            }
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            ("nack (requeue)", acker.nack(requeue).await)
        }
        Outcome::Reject => {
            let reject = BasicNackOptions {
                requeue: false,
                ..BasicNackOptions::default()
            };
            ("nack (reject)", acker.nack(reject).await)
        }
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            target: "tomodachi.amqp",
            delivery_tag,
            "unable to {action}: the channel closed since the delivery; the broker will redeliver it"
        ),
        Err(error) => tracing::warn!(
            target: "tomodachi.amqp",
            delivery_tag,
            %error,
            "unable to {action}: the broker will redeliver the message"
        ),
    }
}

//! One delivery: build the message, settle the outcome.

use std::time::Duration;

use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tomodachi_core::driver::Settle;
use tomodachi_core::{Message, Shutdown, telemetry};

use super::acks::Ticket;
use crate::context::{AmqpContext, AmqpProperties, attributes_from_headers, table_from_lapin};
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
    let attributes = attributes_from_headers(&context.headers);
    let mut message = Message::new(data)
        .with_context(context)
        .with_context(attributes);
    if let Some(delivery) = telemetry {
        message.insert_context(delivery);
    }
    if let Some(publisher) = publisher {
        message.insert_context(publisher.clone());
    }
    (message, acker, delivery_tag)
}

/// One delivery, settled on its channel: ack (coalesced with others through its
/// [`Ticket`], or alone without one), nack with requeue (after the retry delay, cut short
/// by shutdown) or nack without requeue. A failure because the channel went away is
/// logged: the broker redelivers the message.
pub(super) struct Settler {
    pub(super) acker: Acker,
    pub(super) delivery_tag: u64,
    pub(super) shutdown: Shutdown,
    pub(super) ticket: Option<Ticket>,
}

/// Logs a settle that did not reach the broker (it redelivers the message).
pub(super) fn settled(action: &str, delivery_tag: u64, result: Result<bool, lapin::Error>) {
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

impl Settler {
    /// Nacks singly (after the ticket's earlier frames, before its later multiple acks).
    async fn nack(self, action: &str, requeue: bool) {
        let Settler {
            acker,
            delivery_tag,
            ticket,
            ..
        } = self;
        let nack = async move {
            let options = BasicNackOptions {
                requeue,
                ..BasicNackOptions::default()
            };
            settled(action, delivery_tag, acker.nack(options).await);
        };
        match ticket {
            Some(ticket) => ticket.single(delivery_tag, nack).await,
            None => nack.await,
        }
    }
}

impl Settle for Settler {
    async fn ack(self) {
        match self.ticket {
            Some(ticket) => ticket.complete(self.delivery_tag, self.acker).await,
            None => {
                let result = self.acker.ack(BasicAckOptions::default()).await;
                settled("ack", self.delivery_tag, result);
            }
        }
    }

    async fn retry(self, delay: Option<Duration>) {
        if let Some(delay) = delay {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.triggered() => {}
            }
        }
        self.nack("nack (requeue)", true).await;
    }

    async fn reject(self) {
        self.nack("nack (reject)", false).await;
    }
}

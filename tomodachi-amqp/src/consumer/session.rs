//! One channel consuming one queue: declare, bind, qos, consume; cancel and close.

use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;

use lapin::{Channel, Consumer};

use super::acks::Acks;
use crate::error::short;
use crate::{AmqpConnection, AmqpOptions, Error, ResolvedBinding};

/// A channel with its consumer and its coalescing acks (none with `ack.batch_size` 1).
pub(super) struct Session {
    pub(super) channel: Channel,
    pub(super) consumer: Consumer,
    pub(super) acks: Option<Acks>,
}

/// An integer table value typed as Python's `pamqp` types it (smallest type first), so a
/// queue declared by Python tomodachi and one declared here have equivalent arguments.
fn pamqp_integer(value: u64) -> AMQPValue {
    match value {
        0..=127 => AMQPValue::ShortShortInt(value as i8),
        128..=32_767 => AMQPValue::ShortInt(value as i16),
        32_768..=65_535 => AMQPValue::ShortUInt(value as u16),
        65_536..=2_147_483_647 => AMQPValue::LongInt(value as i32),
        2_147_483_648..=4_294_967_295 => AMQPValue::LongUInt(value as u32),
        _ => AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX)),
    }
}

/// The ack batch of a consumer: `ack.batch_size`, at most half the prefetch (completions
/// waiting for their ack hold prefetch slots; with a prefetch of 1, each delivery is acked
/// alone, as ordered consumption needs).
fn ack_batch(options: &AmqpOptions) -> usize {
    let qos = &options.qos;
    let prefetch = [qos.queue_prefetch_count, qos.global_prefetch_count]
        .into_iter()
        .filter(|&count| count > 0)
        .min();
    let batch = usize::from(options.ack.batch_size.max(1));
    match prefetch {
        Some(prefetch) => batch.min(usize::from(prefetch / 2).max(1)),
        None => batch,
    }
}

impl Session {
    /// Declares the exchange (unless it is the broker's own) and the queue, binds, sets
    /// qos and starts consuming. With `exclusive_check`, a non-competing queue that
    /// already has a consumer is an error.
    pub(super) async fn open(
        connection: &AmqpConnection,
        binding: &ResolvedBinding,
        exclusive_check: bool,
    ) -> Result<Self, Error> {
        let options = connection.options();
        let exchange = short("exchange name", &binding.exchange)?;
        let queue = short("queue name", &binding.queue_name)?;
        let routing_key = short("routing key", &binding.wire_routing_key)?;

        let channel = connection.channel().await?;
        let result = async {
            if binding.declare_exchange {
                channel
                    .exchange_declare(
                        exchange.clone(),
                        binding.exchange_kind.to_lapin(),
                        ExchangeDeclareOptions {
                            durable: true,
                            ..ExchangeDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| Error::DeclareExchange {
                        exchange: binding.exchange.clone(),
                        source: e.into(),
                    })?;
            } else if binding.exchange != "amq.topic" {
                // The broker's own exchanges cannot be declared: only check it exists.
                channel
                    .exchange_declare(
                        exchange.clone(),
                        binding.exchange_kind.to_lapin(),
                        ExchangeDeclareOptions {
                            passive: true,
                            ..ExchangeDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| Error::DeclareExchange {
                        exchange: binding.exchange.clone(),
                        source: e.into(),
                    })?;
            }

            let mut arguments = FieldTable::default();
            if binding.expires_ms > 0 {
                arguments.insert("x-expires".into(), pamqp_integer(binding.expires_ms));
            }
            if let Some(dlx) = &binding.dead_letter_exchange {
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(dlx.as_str().into()),
                );
            }
            if let Some(key) = &binding.dead_letter_routing_key {
                arguments.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(key.as_str().into()),
                );
            }
            let declared = channel
                .queue_declare(
                    queue.clone(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    arguments,
                )
                .await
                .map_err(|e| Error::DeclareQueue {
                    queue: binding.queue_name.clone(),
                    source: e.into(),
                })?;
            if exclusive_check && !binding.competing && declared.consumer_count() >= 1 {
                tracing::warn!(
                    target: "tomodachi.amqp",
                    queue_name = %binding.queue_name,
                    "Max consumers (1) for queue [amqp] \"{}\" has been reached",
                    binding.queue_name
                );
                return Err(Error::TooManyConsumers {
                    queue: binding.queue_name.clone(),
                });
            }
            channel
                .queue_bind(
                    queue.clone(),
                    exchange.clone(),
                    routing_key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| Error::Bind {
                    queue: binding.queue_name.clone(),
                    exchange: binding.exchange.clone(),
                    routing_key: binding.wire_routing_key.clone(),
                    source: e.into(),
                })?;
            let qos_error = |e: lapin::Error| Error::Channel {
                operation: "basic.qos",
                source: e.into(),
            };
            channel
                .basic_qos(
                    options.qos.queue_prefetch_count,
                    BasicQosOptions { global: false },
                )
                .await
                .map_err(qos_error)?;
            channel
                .basic_qos(
                    options.qos.global_prefetch_count,
                    BasicQosOptions { global: true },
                )
                .await
                .map_err(qos_error)?;
            channel
                .basic_consume(
                    queue,
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| Error::Channel {
                    operation: "basic.consume",
                    source: e.into(),
                })
        }
        .await;
        match result {
            Ok(consumer) => {
                let batch = ack_batch(options);
                let acks = (batch > 1)
                    .then(|| Acks::new(batch, Duration::from_millis(options.ack.max_delay_ms)));
                Ok(Self {
                    channel,
                    consumer,
                    acks,
                })
            }
            Err(error) => {
                let _ = channel.close(200, "setup failed".into()).await;
                Err(error)
            }
        }
    }

    /// Stops deliveries (the broker keeps the unacked ones for this channel).
    pub(super) async fn cancel(&self) {
        if !self.channel.status().connected() {
            return;
        }
        if let Err(error) = self
            .channel
            .basic_cancel(self.consumer.tag(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(target: "tomodachi.amqp", %error, "basic.cancel failed");
        }
    }

    /// Acks what completed, then closes the channel: what was delivered but not acked
    /// goes back to the queue.
    pub(super) async fn close(&self) {
        if !self.channel.status().connected() {
            return;
        }
        if let Some(acks) = &self.acks {
            acks.flush().await;
        }
        if let Err(error) = self.channel.close(200, "OK".into()).await {
            tracing::debug!(target: "tomodachi.amqp", %error, "closing the channel failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_batch_is_at_most_half_the_prefetch() {
        let with = |batch_size, queue_prefetch_count, global_prefetch_count| {
            let mut options = AmqpOptions::default();
            options.ack.batch_size = batch_size;
            options.qos = crate::QosOptions {
                queue_prefetch_count,
                global_prefetch_count,
            };
            ack_batch(&options)
        };
        assert_eq!(with(32, 100, 400), 32);
        assert_eq!(with(32, 10, 400), 5);
        assert_eq!(with(32, 1, 400), 1, "prefetch 1: each delivery acked alone");
        assert_eq!(with(32, 0, 20), 10, "the global prefetch bounds it too");
        assert_eq!(with(32, 0, 0), 32, "no prefetch limit");
        assert_eq!(with(0, 100, 400), 1);
    }

    #[test]
    fn integers_typed_like_pamqp() {
        assert_eq!(pamqp_integer(86_400_000), AMQPValue::LongInt(86_400_000));
        assert_eq!(pamqp_integer(5_000), AMQPValue::ShortInt(5_000));
        assert_eq!(pamqp_integer(60_000), AMQPValue::ShortUInt(60_000));
        assert_eq!(
            pamqp_integer(3_000_000_000),
            AMQPValue::LongUInt(3_000_000_000)
        );
        assert_eq!(pamqp_integer(1 << 40), AMQPValue::LongLongInt(1 << 40));
    }
}

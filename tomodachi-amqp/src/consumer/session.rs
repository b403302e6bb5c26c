//! One channel consuming one queue: declare, bind, qos, consume; cancel and close.

use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};

use crate::error::short;
use crate::{AmqpConnection, Error, ResolvedBinding};

/// A channel with its consumer.
pub(super) struct Session {
    pub(super) channel: Channel,
    pub(super) consumer: Consumer,
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
            Ok(consumer) => Ok(Self { channel, consumer }),
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

    /// Closes the channel: what was delivered but not acked goes back to the queue.
    pub(super) async fn close(&self) {
        if !self.channel.status().connected() {
            return;
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

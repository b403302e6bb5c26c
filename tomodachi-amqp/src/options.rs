//! The `amqp` sub-tree of the service options, with Python tomodachi's defaults.

use serde::{Deserialize, Serialize};

/// Options of the AMQP transport (`options.amqp.*`, `TOMODACHI_AMQP_*`).
///
/// ```
/// let options = tomodachi_amqp::AmqpOptions::default();
/// assert_eq!(options.exchange_name, "amq.topic");
/// assert_eq!(options.qos.queue_prefetch_count, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name.
    pub login: String,
    /// Password.
    pub password: String,
    /// Default exchange of bindings and publishes.
    pub exchange_name: String,
    /// Prefix added to every routing key.
    pub routing_key_prefix: String,
    /// Prefix added to every queue name.
    pub queue_name_prefix: String,
    /// Virtual host.
    pub virtualhost: String,
    /// Connect with TLS.
    pub ssl: bool,
    /// Heartbeat interval in seconds.
    pub heartbeat: u16,
    /// Seconds an unused queue lives (`x-expires`); 0 = forever.
    pub queue_ttl: u64,
    /// Prefetch limits.
    pub qos: QosOptions,
    /// How consumers acknowledge (tomodachi-rs's own: Python tomodachi acks one by one).
    pub ack: AckOptions,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 5672,
            login: "guest".to_owned(),
            password: "guest".to_owned(),
            exchange_name: "amq.topic".to_owned(),
            routing_key_prefix: String::new(),
            queue_name_prefix: String::new(),
            virtualhost: "/".to_owned(),
            ssl: false,
            heartbeat: 60,
            queue_ttl: 86_400,
            qos: QosOptions::default(),
            ack: AckOptions::default(),
        }
    }
}

/// `options.amqp.qos.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QosOptions {
    /// Unacknowledged deliveries per consumer.
    pub queue_prefetch_count: u16,
    /// Unacknowledged deliveries per channel.
    pub global_prefetch_count: u16,
}

impl Default for QosOptions {
    fn default() -> Self {
        Self {
            queue_prefetch_count: 100,
            global_prefetch_count: 400,
        }
    }
}

/// `options.amqp.ack.*`: coalesced acknowledgements (`TOMODACHI_AMQP_ACK_BATCH_SIZE`,
/// `TOMODACHI_AMQP_ACK_MAX_DELAY_MS`).
///
/// A consumer acks the run of completed deliveries at the front of its channel with one
/// `basic.ack` (`multiple = true`) once `batch_size` completions wait or `max_delay_ms`
/// has passed since one started waiting; a delivery whose handler still runs is never
/// covered, and nacks and rejects go out one by one as before. The cost: a consumer that
/// dies (kill -9, lost connection) gets back, besides its unfinished deliveries, the
/// completed ones not acked yet (at most about `batch_size`, never more than the
/// prefetch). A clean stop acks them all. `batch_size = 1` acks each delivery alone.
///
/// ```
/// let ack = tomodachi_amqp::AckOptions::default();
/// assert_eq!((ack.batch_size, ack.max_delay_ms), (32, 10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AckOptions {
    /// Completions acked with one frame at most (1 = one ack per delivery). A consumer
    /// uses at most half its prefetch (unacked completions hold prefetch slots): with a
    /// prefetch of 1 each delivery is acked alone.
    pub batch_size: u16,
    /// Milliseconds a completion waits for others at most before it is acked.
    pub max_delay_ms: u64,
}

impl Default for AckOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_delay_ms: 10,
        }
    }
}

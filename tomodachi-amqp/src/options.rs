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

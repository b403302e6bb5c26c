//! tomodachi-rs amqp transport. Work in progress: only the options sub-tree exists yet.

mod options;

pub use options::{AmqpOptions, QosOptions};

//! The transport methods of the service builder, one file per transport.

#[cfg(feature = "amqp")]
mod amqp;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "schedule")]
mod schedule;
#[cfg(feature = "sqs")]
mod sqs;

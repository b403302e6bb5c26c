//! What a service file needs, in one import: `use tomodachi::prelude::*;`.
//!
//! Extractors (the same [`State`] and [`Extension`] in HTTP, message and scheduled
//! handlers), outcomes, the envelope, and each enabled transport's routes, bindings,
//! subscriptions, schedules and publishers.
//!
//! The service builder is not in it, so that a glob import does not shadow
//! `tower::Service`: write `tomodachi::Service::new("name")`.
#![cfg_attr(
    all(feature = "http", feature = "schedule"),
    doc = r#"
```no_run
use tomodachi::prelude::*;

#[derive(Clone, Default)]
struct Counter(std::sync::Arc<std::sync::atomic::AtomicU64>);

async fn count(State(counter): State<Counter>) -> String {
    counter.0.load(std::sync::atomic::Ordering::Relaxed).to_string()
}

async fn tick(State(counter): State<Counter>) {
    counter.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[tokio::main]
async fn main() -> Exit {
    tomodachi::Service::new("counter")
        .state(Counter::default())
        .http(HttpRouter::new().route("/count", get(count)))
        .schedule(Schedule::heartbeat(), tick)
        .run()
        .await
}
```
"#
)]

pub use crate::{
    Attributes, Data, Exit, Extension, FromRef, MessageUuid, Metadata, Options, Outcome, Raw, State,
};

#[cfg(feature = "envelopes")]
pub use crate::JsonEnvelope;

#[cfg(feature = "http")]
pub use tomodachi_http::axum::routing::{any, delete, get, patch, post, put};
#[cfg(feature = "http")]
pub use tomodachi_http::{ErrorStatus, Groups, HttpError, HttpResponse, HttpRouter};

#[cfg(feature = "schedule")]
pub use tomodachi_schedule::{InvocationTime, Schedule};

#[cfg(feature = "amqp")]
pub use tomodachi_amqp::{AmqpPublisher, Binding, RoutingKey};

#[cfg(feature = "sns")]
pub use tomodachi_sqs::SnsPublisher;
#[cfg(feature = "sqs")]
pub use tomodachi_sqs::{SqsSender, Subscription, Topic};

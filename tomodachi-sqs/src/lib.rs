//! tomodachi-rs sqs transport.

mod attributes;
mod client;
mod error;
pub mod naming;
mod options;
mod python_json;
mod setup;
mod subscription;

pub use client::{AwsClients, sdk_config};
pub use error::Error;
pub use options::{AwsEndpointUrlsOptions, AwsSnsSqsOptions};
pub use subscription::Subscription;

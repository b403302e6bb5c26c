//! tomodachi-rs sqs transport. Work in progress: only the options sub-tree exists yet.

mod options;

pub use options::{AwsEndpointUrlsOptions, AwsSnsSqsOptions};

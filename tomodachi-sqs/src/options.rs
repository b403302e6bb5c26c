//! The `aws_sns_sqs` and `aws_endpoint_urls` sub-trees of the service options.

use serde::{Deserialize, Serialize};

/// Options of the SNS+SQS transport (`options.aws_sns_sqs.*`, `TOMODACHI_AWS_SNS_SQS_*`).
///
/// `None` means "use the AWS default chain" for credentials and region.
///
/// ```
/// let options = tomodachi_sqs::AwsSnsSqsOptions::default();
/// assert_eq!(options.topic_prefix, "");
/// assert!(options.region_name.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSnsSqsOptions {
    /// AWS region.
    pub region_name: Option<String>,
    /// Access key id.
    pub aws_access_key_id: Option<String>,
    /// Secret access key.
    pub aws_secret_access_key: Option<String>,
    /// Prefix of every topic name.
    pub topic_prefix: String,
    /// Prefix of every queue name.
    pub queue_name_prefix: String,
    /// KMS key of created topics: `""` disables, `None` leaves untouched.
    pub sns_kms_master_key_id: Option<String>,
    /// KMS key of created queues: `""` disables, `None` leaves untouched.
    pub sqs_kms_master_key_id: Option<String>,
    /// `KmsDataKeyReusePeriodSeconds` of created queues.
    pub sqs_kms_data_key_reuse_period: Option<u32>,
    /// `aws:SourceArn` of the queue policy instead of the topic ARN.
    pub queue_policy: Option<String>,
    /// `aws:SourceArn` of the queue policy for wildcard topics.
    pub wildcard_queue_policy: Option<String>,
}

/// Endpoint overrides (`options.aws_endpoint_urls.*`, `TOMODACHI_AWS_ENDPOINT_URLS_*`).
///
/// ```
/// let urls = tomodachi_sqs::AwsEndpointUrlsOptions::default();
/// assert!(urls.sqs.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsEndpointUrlsOptions {
    /// SNS endpoint URL.
    pub sns: Option<String>,
    /// SQS endpoint URL.
    pub sqs: Option<String>,
    /// STS endpoint URL (falls back to the SNS one).
    pub sts: Option<String>,
}

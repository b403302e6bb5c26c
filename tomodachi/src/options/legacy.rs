//! Python tomodachi's deprecated option keys.

/// Python tomodachi's deprecated option keys and the keys they stand for (a key may set
/// several). Accepted by [`Options::get`] (first target) and [`Options::set`] (every
/// target), with a warning.
pub(super) const LEGACY_KEYS: &[(&str, &[&str])] = &[
    ("http.max_buffer_size", &["http.client_max_size"]),
    ("http.max_upload_size", &["http.client_max_size"]),
    ("aws_sns_sqs.aws_region_name", &["aws_sns_sqs.region_name"]),
    (
        "aws_sns_sqs.secret_access_key",
        &["aws_sns_sqs.aws_secret_access_key"],
    ),
    (
        "aws_sns_sqs.access_key_id",
        &["aws_sns_sqs.aws_access_key_id"],
    ),
    ("aws_sns_sqs.endpoint_url", ENDPOINTS),
    ("aws_sns_sqs.aws_endpoint_url", ENDPOINTS),
    ("aws_sns_sqs.endpoint_urls.sns", &["aws_endpoint_urls.sns"]),
    ("aws_sns_sqs.endpoint_urls.sqs", &["aws_endpoint_urls.sqs"]),
    ("aws_sns_sqs.endpoint_urls.sts", &["aws_endpoint_urls.sts"]),
    (
        "aws_sns_sqs.aws_sns_endpoint_url",
        &["aws_endpoint_urls.sns"],
    ),
    (
        "aws_sns_sqs.aws_sqs_endpoint_url",
        &["aws_endpoint_urls.sqs"],
    ),
    (
        "aws_sns_sqs.aws_sts_endpoint_url",
        &["aws_endpoint_urls.sts"],
    ),
    ("aws_sns_sqs.sns_endpoint_url", &["aws_endpoint_urls.sns"]),
    ("aws_sns_sqs.sqs_endpoint_url", &["aws_endpoint_urls.sqs"]),
    ("aws_sns_sqs.sts_endpoint_url", &["aws_endpoint_urls.sts"]),
    ("aws_sns_sqs.aws_kms_master_key_id", KMS_KEYS),
    ("aws_sns_sqs.kms_master_key_id", KMS_KEYS),
    (
        "aws_sns_sqs.aws_sns_kms_master_key_id",
        &["aws_sns_sqs.sns_kms_master_key_id"],
    ),
    (
        "aws_sns_sqs.aws_sqs_kms_master_key_id",
        &["aws_sns_sqs.sqs_kms_master_key_id"],
    ),
    ("aws_sns_sqs.aws_sqs_kms_data_key_reuse_period", KMS_REUSE),
    ("aws_sns_sqs.aws_kms_data_key_reuse_period", KMS_REUSE),
    ("aws_sns_sqs.kms_data_key_reuse_period", KMS_REUSE),
    ("aws.region_name", &["aws_sns_sqs.region_name"]),
    ("aws.aws_region_name", &["aws_sns_sqs.region_name"]),
    (
        "aws.secret_access_key",
        &["aws_sns_sqs.aws_secret_access_key"],
    ),
    (
        "aws.aws_secret_access_key",
        &["aws_sns_sqs.aws_secret_access_key"],
    ),
    ("aws.access_key_id", &["aws_sns_sqs.aws_access_key_id"]),
    ("aws.aws_access_key_id", &["aws_sns_sqs.aws_access_key_id"]),
    ("aws.endpoint_url", ENDPOINTS),
    ("aws.aws_endpoint_url", ENDPOINTS),
    ("aws.endpoint_urls.sns", &["aws_endpoint_urls.sns"]),
    ("aws.endpoint_urls.sqs", &["aws_endpoint_urls.sqs"]),
    ("aws.endpoint_urls.sts", &["aws_endpoint_urls.sts"]),
    ("aws.aws_sns_endpoint_url", &["aws_endpoint_urls.sns"]),
    ("aws.aws_sqs_endpoint_url", &["aws_endpoint_urls.sqs"]),
    ("aws.aws_sts_endpoint_url", &["aws_endpoint_urls.sts"]),
    ("aws.sns_endpoint_url", &["aws_endpoint_urls.sns"]),
    ("aws.sqs_endpoint_url", &["aws_endpoint_urls.sqs"]),
    ("aws.sts_endpoint_url", &["aws_endpoint_urls.sts"]),
    ("aws.topic_prefix", &["aws_sns_sqs.topic_prefix"]),
    ("aws.queue_name_prefix", &["aws_sns_sqs.queue_name_prefix"]),
    ("aws.aws_kms_master_key_id", KMS_KEYS),
    ("aws.kms_master_key_id", KMS_KEYS),
    (
        "aws.aws_sns_kms_master_key_id",
        &["aws_sns_sqs.sns_kms_master_key_id"],
    ),
    (
        "aws.aws_sqs_kms_master_key_id",
        &["aws_sns_sqs.sqs_kms_master_key_id"],
    ),
    (
        "aws.sns_kms_master_key_id",
        &["aws_sns_sqs.sns_kms_master_key_id"],
    ),
    (
        "aws.sqs_kms_master_key_id",
        &["aws_sns_sqs.sqs_kms_master_key_id"],
    ),
    ("aws.aws_sqs_kms_data_key_reuse_period", KMS_REUSE),
    ("aws.aws_kms_data_key_reuse_period", KMS_REUSE),
    ("aws.kms_data_key_reuse_period", KMS_REUSE),
    ("aws.queue_policy", &["aws_sns_sqs.queue_policy"]),
    (
        "aws.wildcard_queue_policy",
        &["aws_sns_sqs.wildcard_queue_policy"],
    ),
];
const ENDPOINTS: &[&str] = &[
    "aws_endpoint_urls.sns",
    "aws_endpoint_urls.sqs",
    "aws_endpoint_urls.sts",
];
const KMS_KEYS: &[&str] = &[
    "aws_sns_sqs.sns_kms_master_key_id",
    "aws_sns_sqs.sqs_kms_master_key_id",
];
const KMS_REUSE: &[&str] = &["aws_sns_sqs.sqs_kms_data_key_reuse_period"];

/// The keys a deprecated key stands for, warning once per use.
pub(super) fn legacy_targets(key: &str) -> Option<&'static [&'static str]> {
    let (_, targets) = LEGACY_KEYS.iter().find(|(legacy, _)| *legacy == key)?;
    tracing::warn!(
        target: "tomodachi.options",
        key,
        replacement = targets.join(", "),
        "deprecated option key"
    );
    Some(targets)
}

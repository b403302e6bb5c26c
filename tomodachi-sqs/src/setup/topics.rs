//! The topic side of the setup (the `sns` feature): topics, the queue policy, the queue's
//! attributes and the subscription, as Python tomodachi sets them up when a handler has a
//! topic.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use super::LOG;
use crate::error::aws;
use crate::naming::{encode_topic, topic_name, validate_topic_name};
use crate::python_json::OrderedJson;
use crate::{AwsClients, AwsSnsSqsOptions, Error};

/// `CreateTopic` (tomodachi's `create_topic`), with FIFO and KMS attributes; returns the ARN.
pub(crate) async fn create_topic(
    clients: &AwsClients,
    options: &AwsSnsSqsOptions,
    topic: &str,
    fifo: bool,
    overwrite_attributes: bool,
) -> Result<String, Error> {
    validate_topic_name(topic)?;
    let sns = clients.sns();
    let name = encode_topic(&topic_name(topic, &options.topic_prefix, fifo));
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    if fifo {
        attributes.push(("FifoTopic", "true".into()));
        attributes.push(("ContentBasedDeduplication", "false".into()));
    }
    if let Some(key) = &options.sns_kms_master_key_id {
        attributes.push(("KmsMasterKeyId", key.clone()));
    }
    let map: HashMap<String, String> = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();

    let mut update_attributes = !attributes.is_empty();
    let mut overwrite = overwrite_attributes;
    let topic_arn = match sns
        .create_topic()
        .name(&name)
        .set_attributes(Some(map))
        .send()
        .await
    {
        Ok(output) => {
            update_attributes = false;
            let arn = output.topic_arn().map(str::to_owned);
            if let (Some(arn), Some(true)) = (
                &arn,
                options.sns_kms_master_key_id.as_deref().map(str::is_empty),
            ) {
                let current = sns.get_topic_attributes().topic_arn(arn).send().await;
                let has_key = current.ok().is_some_and(|output| {
                    output
                        .attributes()
                        .and_then(|map| map.get("KmsMasterKeyId"))
                        .is_some_and(|key| !key.is_empty())
                });
                if !has_key {
                    overwrite = false;
                } else if overwrite {
                    tracing::info!(target: LOG, topic, "SNS topic attribute 'KmsMasterKeyId' on SNS topic '{arn}' will be updated to disable server-side encryption");
                    update_attributes = true;
                }
            }
            arn
        }
        Err(error) => {
            let error = aws("CreateTopic", error);
            let text = error.short();
            if text.contains("already exists with different attributes") {
                let output = sns.create_topic().name(&name).send().await.map_err(|error| {
                    let error = aws("CreateTopic", error);
                    tracing::warn!(target: LOG, topic, "Unable to create topic [sns] on AWS ({})", error.short());
                    error
                })?;
                let arn = output.topic_arn().map(str::to_owned);
                tracing::info!(target: LOG, topic, "Already existing SNS topic '{}' has different topic attributes", arn.as_deref().unwrap_or(""));
                arn
            } else {
                tracing::warn!(target: LOG, topic, "Unable to create topic [sns] on AWS ({text})");
                return Err(error);
            }
        }
    };
    let Some(topic_arn) = topic_arn else {
        tracing::warn!(target: LOG, topic, "Unable to create topic [sns] on AWS (Missing ARN in response)");
        return Err(Error::Setup("Missing ARN in response".into()));
    };
    if update_attributes && !overwrite {
        tracing::warn!(target: LOG, topic, "Will not overwrite existing attributes on SNS topic '{topic_arn}'");
        update_attributes = false;
    }
    if update_attributes {
        for (attribute, value) in &attributes {
            tracing::info!(target: LOG, topic, "Updating '{attribute}' attribute on SNS topic '{topic_arn}'");
            sns.set_topic_attributes()
                .topic_arn(&topic_arn)
                .attribute_name(*attribute)
                .attribute_value(value)
                .send()
                .await
                .map_err(|error| {
                    let error = aws("SetTopicAttributes", error);
                    tracing::warn!(target: LOG, topic, "Unable to create topic [sns] on AWS ({})", error.short());
                    error
                })?;
        }
    }
    Ok(topic_arn)
}

/// Looks a topic's ARN up without creating it (Python tomodachi 0.29: STS
/// `GetCallerIdentity`, then `GetTopicAttributes` of `arn:aws:sns:<region>:<account>:<name>`).
pub(crate) async fn lookup_topic(
    clients: &AwsClients,
    options: &AwsSnsSqsOptions,
    topic: &str,
    fifo: bool,
) -> Result<Option<String>, Error> {
    validate_topic_name(topic)?;
    let Some(region) = clients.region() else {
        return Ok(None);
    };
    let identity = match clients.sts().get_caller_identity().send().await {
        Ok(identity) => identity,
        Err(_) => return Ok(None),
    };
    let Some(account) = identity.account() else {
        return Ok(None);
    };
    let name = encode_topic(&topic_name(topic, &options.topic_prefix, fifo));
    let candidate = format!("arn:aws:sns:{region}:{account}:{name}");
    match clients
        .sns()
        .get_topic_attributes()
        .topic_arn(&candidate)
        .send()
        .await
    {
        Ok(output) => Ok(output
            .attributes()
            .and_then(|map| map.get("TopicArn"))
            .cloned()),
        Err(_) => Ok(None),
    }
}

/// The redrive policy a subscription asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RedrivePolicy {
    /// `{}`: no dead-letter queue.
    Remove,
    /// A dead-letter queue.
    Target {
        dead_letter_target_arn: String,
        max_receive_count: u32,
    },
}

impl RedrivePolicy {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Remove => serde_json::json!({}),
            Self::Target {
                dead_letter_target_arn,
                max_receive_count,
            } => serde_json::json!({
                "deadLetterTargetArn": dead_letter_target_arn,
                "maxReceiveCount": max_receive_count,
            }),
        }
    }

    /// Python's `json.dumps` of the policy dict.
    fn dumps(&self) -> String {
        match self {
            Self::Remove => "{}".into(),
            Self::Target {
                dead_letter_target_arn,
                max_receive_count,
            } => {
                #[derive(Serialize)]
                struct Target<'a> {
                    #[serde(rename = "deadLetterTargetArn")]
                    arn: &'a str,
                    #[serde(rename = "maxReceiveCount")]
                    count: u32,
                }
                python_dumps(&Target {
                    arn: dead_letter_target_arn,
                    count: *max_receive_count,
                })
            }
        }
    }
}

fn python_dumps<T: Serialize + ?Sized>(value: &T) -> String {
    tomodachi_core::to_python_json(value)
        .map(|raw| raw.get().to_owned())
        .unwrap_or_default()
}

/// The queue side of a subscription.
#[derive(Debug)]
pub(crate) struct QueueTarget<'a> {
    pub(crate) url: &'a str,
    pub(crate) arn: &'a str,
    pub(crate) visibility_timeout: Option<u32>,
    pub(crate) redrive_policy: Option<&'a RedrivePolicy>,
    pub(crate) filter_policy: Option<&'a OrderedJson>,
}

#[derive(Serialize)]
struct QueuePolicy<'a> {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Statement")]
    statement: [Statement<'a>; 1],
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "Sid")]
    sid: String,
    #[serde(rename = "Effect")]
    effect: &'static str,
    #[serde(rename = "Principal")]
    principal: &'static str,
    #[serde(rename = "Action")]
    action: &'static str,
    #[serde(rename = "Resource")]
    resource: &'a str,
    #[serde(rename = "Condition")]
    condition: Condition<'a>,
}

#[derive(Serialize)]
struct Condition<'a> {
    #[serde(rename = "ArnEquals")]
    arn_equals: ArnEquals<'a>,
}

#[derive(Serialize)]
struct ArnEquals<'a> {
    #[serde(rename = "aws:SourceArn")]
    source_arn: &'a str,
}

/// The queue policy allowing the topics to send (tomodachi's `generate_queue_policy`).
pub(crate) fn queue_policy(
    options: &AwsSnsSqsOptions,
    queue_arn: &str,
    topic_arns: &[String],
) -> serde_json::Value {
    let wildcard;
    let source_arn: &str = if topic_arns.len() == 1 {
        options.queue_policy.as_deref().unwrap_or(&topic_arns[0])
    } else {
        wildcard = common_prefix_wildcard(topic_arns);
        options
            .wildcard_queue_policy
            .as_deref()
            .or(options.queue_policy.as_deref())
            .unwrap_or(&wildcard)
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| format!("{:.3}", elapsed.as_secs_f64()).replace('.', ""))
        .unwrap_or_default();
    let policy = QueuePolicy {
        version: "2012-10-17",
        id: format!("{queue_arn}/SQSDefaultPolicy"),
        statement: [Statement {
            sid: format!("{}{millis}", uuid::Uuid::new_v4()),
            effect: "Allow",
            principal: "*",
            action: "SQS:SendMessage",
            resource: queue_arn,
            condition: Condition {
                arn_equals: ArnEquals { source_arn },
            },
        }],
    };
    // Keep the order of the keys: the policy is sent as Python's json.dumps writes it.
    serde_json::Value::String(python_dumps(&policy))
}

/// The common prefix of the ARNs followed by `*` (tomodachi's wildcard source ARN).
fn common_prefix_wildcard(arns: &[String]) -> String {
    let shortest = arns
        .iter()
        .map(|arn| arn.chars().count())
        .min()
        .unwrap_or(0);
    let columns: Vec<Vec<char>> = arns.iter().map(|arn| arn.chars().collect()).collect();
    let mut prefix = String::new();
    for index in 0..shortest {
        let ch = columns[0][index];
        if columns.iter().all(|arn| arn[index] == ch) {
            prefix.push(ch);
        } else {
            prefix.push('*');
            return prefix;
        }
    }
    prefix
}

fn without_sids(policy: &serde_json::Value) -> Vec<serde_json::Value> {
    policy
        .get("Statement")
        .and_then(serde_json::Value::as_array)
        .map(|statements| {
            statements
                .iter()
                .map(|statement| {
                    let mut statement = statement.clone();
                    if let Some(object) = statement.as_object_mut() {
                        object.insert("Sid".into(), serde_json::Value::String(String::new()));
                    }
                    statement
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets the queue's policy and attributes and subscribes it to the topics (tomodachi's
/// `subscribe_topics`). Returns the subscription ARNs.
pub(crate) async fn subscribe_topics(
    clients: &AwsClients,
    options: &AwsSnsSqsOptions,
    topic_arns: &[String],
    queue: &QueueTarget<'_>,
) -> Result<Vec<String>, Error> {
    let policy_text = match queue_policy(options, queue.arn, topic_arns) {
        serde_json::Value::String(text) => text,
        _ => String::new(),
    };
    let policy: serde_json::Value = serde_json::from_str(&policy_text)?;
    let sqs = clients.sqs();
    let current = sqs
        .get_queue_attributes()
        .queue_url(queue.url)
        .attribute_names(QueueAttributeName::Policy)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .attribute_names(QueueAttributeName::KmsMasterKeyId)
        .attribute_names(QueueAttributeName::KmsDataKeyReusePeriodSeconds)
        .send()
        .await
        .ok()
        .and_then(|output| output.attributes().cloned())
        .unwrap_or_default();
    let current_policy: serde_json::Value = current
        .get(&QueueAttributeName::Policy)
        .filter(|text| !text.is_empty())
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let current_visibility: Option<u32> = current
        .get(&QueueAttributeName::VisibilityTimeout)
        .and_then(|text| text.parse().ok());
    let current_redrive: Option<serde_json::Value> = (!current.is_empty()).then(|| {
        current
            .get(&QueueAttributeName::RedrivePolicy)
            .filter(|text| !text.is_empty())
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    });
    let current_kms = current.get(&QueueAttributeName::KmsMasterKeyId).cloned();
    let current_reuse: Option<u32> = current
        .get(&QueueAttributeName::KmsDataKeyReusePeriodSeconds)
        .and_then(|text| text.parse().ok());

    let mut attributes: Vec<(QueueAttributeName, String)> = Vec::new();
    let policy_is_empty = current_policy
        .as_object()
        .is_none_or(|object| object.is_empty());
    if policy_is_empty || without_sids(&current_policy) != without_sids(&policy) {
        attributes.push((QueueAttributeName::Policy, policy_text));
    }
    if let (Some(wanted), Some(current)) = (queue.visibility_timeout, current_visibility)
        && wanted != 0
        && current != 0
        && wanted != current
    {
        attributes.push((QueueAttributeName::VisibilityTimeout, wanted.to_string()));
    }
    if let (Some(wanted), Some(current)) = (queue.redrive_policy, &current_redrive)
        && &wanted.to_json() != current
    {
        attributes.push((QueueAttributeName::RedrivePolicy, wanted.dumps()));
    }
    let kms_key = options.sqs_kms_master_key_id.as_deref();
    let kms_active = current_kms.as_deref().is_some_and(|key| !key.is_empty())
        || kms_key.is_some_and(|key| !key.is_empty());
    if let Some(key) = kms_key
        && current_kms.as_deref() != Some(key)
        && kms_active
    {
        attributes.push((QueueAttributeName::KmsMasterKeyId, key.to_owned()));
    }
    if let Some(period) = options
        .sqs_kms_data_key_reuse_period
        .filter(|period| *period != 0)
        && current_reuse != Some(period)
        && kms_active
    {
        attributes.push((
            QueueAttributeName::KmsDataKeyReusePeriodSeconds,
            period.to_string(),
        ));
    }
    if !attributes.is_empty() {
        if !policy_is_empty {
            for (name, _) in &attributes {
                tracing::info!(target: LOG, "Updating '{}' attribute on SQS queue '{}'", name.as_str(), queue.arn);
            }
        }
        sqs.set_queue_attributes()
            .queue_url(queue.url)
            .set_attributes(Some(attributes.into_iter().collect()))
            .send()
            .await
            .map_err(|error| {
                let error = aws("SetQueueAttributes", error);
                tracing::warn!(target: LOG, "Unable to set queue attributes [sqs] on AWS ({})", error.short());
                error
            })?;
    }

    let filter = queue.filter_policy.map(OrderedJson::dumps);
    let mut update_attributes = filter.is_some();
    let sns = clients.sns();
    let mut subscription_arns = Vec::with_capacity(topic_arns.len());
    for topic_arn in topic_arns {
        let mut subscription_arn: Option<String> = None;
        if let (true, Some(filter)) = (update_attributes, &filter) {
            match sns
                .subscribe()
                .topic_arn(topic_arn)
                .protocol("sqs")
                .endpoint(queue.arn)
                .attributes("FilterPolicy", filter)
                .send()
                .await
            {
                Ok(output) => {
                    subscription_arn = output.subscription_arn().map(str::to_owned);
                    if subscription_arn
                        .as_deref()
                        .is_some_and(|arn| !arn.contains("000000000000"))
                    {
                        update_attributes = false;
                    }
                }
                Err(error) => {
                    let error = aws("Subscribe", error);
                    if error
                        .short()
                        .contains("Subscription already exists with different attributes")
                    {
                        tracing::info!(target: LOG, "SNS subscription for topic ARN '{topic_arn}' and queue ARN '{}' previously had different attributes", queue.arn);
                    } else {
                        tracing::warn!(target: LOG, "Unable to subscribe to topic [sns] on AWS ({})", error.short());
                        return Err(error);
                    }
                }
            }
        }
        let subscription_arn = match subscription_arn {
            Some(arn) => arn,
            None => {
                let output = sns
                    .subscribe()
                    .topic_arn(topic_arn)
                    .protocol("sqs")
                    .endpoint(queue.arn)
                    .send()
                    .await
                    .map_err(|error| {
                        let error = aws("Subscribe", error);
                        tracing::warn!(target: LOG, "Unable to subscribe to topic [sns] on AWS ({})", error.short());
                        error
                    })?;
                output.subscription_arn().map(str::to_owned).ok_or_else(|| {
                    tracing::warn!(target: LOG, "Unable to subscribe to topic [sns] on AWS (Missing Subscription ARN in response)");
                    Error::Setup("Missing Subscription ARN in response".into())
                })?
            }
        };
        if let (true, Some(filter)) = (update_attributes, &filter) {
            if !subscription_arn.contains("000000000000") {
                tracing::info!(target: LOG, "Updating 'FilterPolicy' attribute on subscription for topic ARN '{topic_arn}' and queue ARN '{}' - changes can take several minutes to propagate", queue.arn);
            }
            sns.set_subscription_attributes()
                .subscription_arn(&subscription_arn)
                .attribute_name("FilterPolicy")
                .attribute_value(filter)
                .send()
                .await
                .map_err(|error| {
                    let error = aws("SetSubscriptionAttributes", error);
                    tracing::warn!(target: LOG, "Unable to subscribe to topic [sns] on AWS ({})", error.short());
                    error
                })?;
        }
        subscription_arns.push(subscription_arn);
    }
    Ok(subscription_arns)
}

/// Does a topic ARN match a wildcard topic (`*`: anything but an encoded `.`; `#`: anything)?
pub(crate) fn wildcard_matches(pattern: &str, topic_arn: &str) -> bool {
    let mut parts = topic_arn.splitn(6, ':');
    let head: Vec<&str> = parts.by_ref().take(5).collect();
    let Some(name) = parts.next() else {
        return false;
    };
    if head.len() != 5
        || head[..3] != ["arn", "aws", "sns"]
        || head[3].is_empty()
        || head[4].is_empty()
        || name.contains(':')
    {
        return false;
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'#') => (0..=text.len()).any(|skip| glob(&pattern[1..], &text[skip..])),
        Some(b'*') => {
            let mut skip = 0;
            loop {
                if glob(&pattern[1..], &text[skip..]) {
                    return true;
                }
                if skip == text.len() || text[skip..].starts_with(b"___2e_") {
                    return false;
                }
                skip += 1;
            }
        }
        Some(&ch) => text.first() == Some(&ch) && glob(&pattern[1..], &text[1..]),
    }
}

/// Subscribes the queue to every existing topic matching a wildcard topic.
pub(crate) async fn subscribe_wildcard_topic(
    clients: &AwsClients,
    options: &AwsSnsSqsOptions,
    topic: &str,
    fifo: bool,
    queue: &QueueTarget<'_>,
) -> Result<(), Error> {
    let pattern = encode_topic(&topic_name(topic, &options.topic_prefix, fifo));
    let mut topic_arns = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let output = clients
            .sns()
            .list_topics()
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|error| {
                let error = aws("ListTopics", error);
                tracing::warn!(target: LOG, "Unable to list topics [sns] on AWS ({})", error.short());
                error
            })?;
        topic_arns.extend(
            output
                .topics()
                .iter()
                .filter_map(|topic| topic.topic_arn())
                .filter(|arn| wildcard_matches(&pattern, arn))
                .map(str::to_owned),
        );
        match output.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    if topic_arns.is_empty() {
        tracing::warn!(target: LOG, topic, "no existing topics match the wildcard topic");
        return Ok(());
    }
    subscribe_topics(clients, options, &topic_arns, queue).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_tomodachi() {
        let arn = |name: &str| format!("arn:aws:sns:eu-west-1:123456789012:{name}");
        let star = encode_topic("order.*");
        assert_eq!(star, "order___2e_*");
        assert!(wildcard_matches(&star, &arn("order___2e_paid")));
        assert!(!wildcard_matches(&star, &arn("order___2e_paid___2e_eu")));
        let hash = encode_topic("order.#");
        assert!(wildcard_matches(&hash, &arn("order___2e_paid___2e_eu")));
        assert!(!wildcard_matches(&hash, &arn("other___2e_paid")));
    }

    #[test]
    fn wildcard_source_arn_is_the_common_prefix() {
        let arns = vec![
            "arn:aws:sns:eu-west-1:123456789012:order___2e_paid".to_owned(),
            "arn:aws:sns:eu-west-1:123456789012:order___2e_sent".to_owned(),
        ];
        assert_eq!(
            common_prefix_wildcard(&arns),
            "arn:aws:sns:eu-west-1:123456789012:order___2e_*"
        );
    }

    #[test]
    fn queue_policy_layout_is_pythons() {
        let options = AwsSnsSqsOptions::default();
        let serde_json::Value::String(text) = queue_policy(
            &options,
            "arn:aws:sqs:us-east-1:123456789012:q",
            &["arn:aws:sns:us-east-1:123456789012:t".to_owned()],
        ) else {
            panic!("policy is a string");
        };
        let sid_start = text.find("\"Sid\": \"").unwrap() + 8;
        let sid_end = sid_start + text[sid_start..].find('"').unwrap();
        let sid = &text[sid_start..sid_end];
        assert_eq!(sid.len(), 36 + 13, "{sid}");
        let expected = format!(
            "{{\"Version\": \"2012-10-17\", \"Id\": \"arn:aws:sqs:us-east-1:123456789012:q/SQSDefaultPolicy\", \"Statement\": [{{\"Sid\": \"{sid}\", \"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"SQS:SendMessage\", \"Resource\": \"arn:aws:sqs:us-east-1:123456789012:q\", \"Condition\": {{\"ArnEquals\": {{\"aws:SourceArn\": \"arn:aws:sns:us-east-1:123456789012:t\"}}}}}}]}}"
        );
        assert_eq!(text, expected);
        assert_eq!(
            RedrivePolicy::Target {
                dead_letter_target_arn: "arn:x".into(),
                max_receive_count: 3
            }
            .dumps(),
            r#"{"deadLetterTargetArn": "arn:x", "maxReceiveCount": 3}"#
        );
    }
}

//! Infrastructure setup, exactly as Python tomodachi does it: queues, dead-letter queues,
//! and with the `sns` feature topics, the queue policy, queue attributes and the
//! subscription ([`topics`]). Idempotent on restart.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::error::{aws, is_queue_missing_code};
use crate::naming::{auto_queue_name, prefix_queue_name, validate_queue_name};
use crate::subscription::DeadLetter;
#[cfg(feature = "sns")]
use crate::subscription::FilterPolicy;
use crate::{AwsClients, AwsSnsSqsOptions, Error, Subscription};

#[cfg(feature = "sns")]
mod topics;
#[cfg(feature = "sns")]
use topics::{QueueTarget, RedrivePolicy, subscribe_topics, subscribe_wildcard_topic};
#[cfg(feature = "sns")]
pub(crate) use topics::{create_topic, lookup_topic};

const LOG: &str = "tomodachi.awssnssqs";
/// 14 days: the retention of created dead-letter queues.
const DLQ_MESSAGE_RETENTION_PERIOD: u32 = 1_209_600;

/// What the setup of one subscription made.
#[derive(Debug, Clone)]
pub(crate) struct QueueSetup {
    pub(crate) queue_url: String,
    pub(crate) queue_name: String,
    pub(crate) dead_letter_queue_url: Option<String>,
}

/// Sets one subscription up (tomodachi's `setup_queue`).
pub(crate) async fn setup(
    clients: &AwsClients,
    options: &AwsSnsSqsOptions,
    service_uuid: &str,
    subscription: &Subscription,
) -> Result<QueueSetup, Error> {
    subscription.validate()?;
    let fifo = subscription.fifo;
    let topic = subscription.topic.as_deref();

    let (queue_url, queue_arn, queue_name) = match &subscription.queue_name {
        None => {
            let name = auto_queue_name(
                topic.unwrap_or(""),
                &subscription.handler_name,
                service_uuid,
                subscription.competing.unwrap_or(true),
                &options.queue_name_prefix,
                fifo,
            );
            let (url, arn) = create_queue(clients, &name, fifo, None).await?;
            (url, arn, name)
        }
        Some(arn) if arn.starts_with("arn:aws:sqs:") => {
            let url = queue_url_from_arn(clients, arn).await?.ok_or_else(|| {
                Error::Setup(format!(
                    "AWS SQS queue with specific ARN ({arn}) does not exist"
                ))
            })?;
            let name = arn.rsplit(':').next().unwrap_or(arn).to_owned();
            (url, arn.clone(), name)
        }
        Some(name) => {
            let name = prefix_queue_name(name, &options.queue_name_prefix);
            let (url, arn) = create_queue(clients, &name, fifo, None).await?;
            (url, arn, name)
        }
    };

    // The dead-letter queue is created with or without a topic, as tomodachi does; the
    // redrive policy is only applied to a queue that has a topic.
    let dead_letter_queue = match &subscription.dead_letter {
        DeadLetter::Queue { name, .. } if name.starts_with("arn:aws:sqs:") => {
            let url = queue_url_from_arn(clients, name).await?.ok_or_else(|| {
                Error::Setup(format!(
                    "AWS SQS dead-letter queue with specific ARN ({queue_arn}) does not exist"
                ))
            })?;
            Some((url, name.clone()))
        }
        DeadLetter::Queue { name, .. } => {
            let dlq_name = prefix_queue_name(name, &options.queue_name_prefix);
            Some(create_queue(clients, &dlq_name, fifo, Some(DLQ_MESSAGE_RETENTION_PERIOD)).await?)
        }
        DeadLetter::Unset | DeadLetter::Remove => None,
    };

    #[cfg(feature = "sns")]
    if let Some(topic) = topic {
        let redrive_policy = match (&subscription.dead_letter, &dead_letter_queue) {
            (DeadLetter::Remove, _) => Some(RedrivePolicy::Remove),
            (
                DeadLetter::Queue {
                    max_receive_count, ..
                },
                Some((_, dlq_arn)),
            ) => Some(RedrivePolicy::Target {
                dead_letter_target_arn: dlq_arn.clone(),
                max_receive_count: *max_receive_count,
            }),
            _ => None,
        };
        let filter = match &subscription.filter_policy {
            FilterPolicy::Policy(policy) => Some(policy),
            _ => None,
        };
        let queue = QueueTarget {
            url: &queue_url,
            arn: &queue_arn,
            visibility_timeout: subscription.visibility_timeout,
            redrive_policy: redrive_policy.as_ref(),
            filter_policy: filter,
        };
        if topic.contains(['*', '#']) {
            subscribe_wildcard_topic(clients, options, topic, fifo, &queue).await?;
        } else {
            let topic_arn = create_topic(clients, options, topic, fifo, true).await?;
            subscribe_topics(clients, options, &[topic_arn], &queue).await?;
        }
    }
    tracing::info!(target: LOG, queue_name = %queue_name, topic = topic.unwrap_or(""), "subscribed queue");
    Ok(QueueSetup {
        queue_url,
        queue_name,
        dead_letter_queue_url: dead_letter_queue.map(|(url, _)| url),
    })
}

/// `GetQueueUrl`, else `CreateQueue`, then the queue's ARN (tomodachi's `create_queue`).
pub(crate) async fn create_queue(
    clients: &AwsClients,
    queue_name: &str,
    fifo: bool,
    message_retention_period: Option<u32>,
) -> Result<(String, String), Error> {
    validate_queue_name(queue_name)?;
    let sqs = clients.sqs();
    let existing = match sqs.get_queue_url().queue_name(queue_name).send().await {
        Ok(output) => output.queue_url().map(str::to_owned),
        Err(error) => {
            let error = aws("GetQueueUrl", error);
            if matches!(error.code(), Some("DispatchFailure" | "Timeout")) {
                tracing::warn!(target: LOG, queue_name, "Unable to connect [sqs] to AWS ({})", error.short());
                return Err(error);
            }
            None
        }
    };
    let queue_url = match existing {
        Some(url) => url,
        None => {
            let mut attributes: HashMap<QueueAttributeName, String> = HashMap::new();
            if fifo {
                attributes.insert(QueueAttributeName::FifoQueue, "true".into());
                attributes.insert(
                    QueueAttributeName::ContentBasedDeduplication,
                    "false".into(),
                );
                attributes.insert(
                    QueueAttributeName::DeduplicationScope,
                    "messageGroup".into(),
                );
                attributes.insert(
                    QueueAttributeName::FifoThroughputLimit,
                    "perMessageGroupId".into(),
                );
            }
            if let Some(period) = message_retention_period {
                attributes.insert(
                    QueueAttributeName::MessageRetentionPeriod,
                    period.to_string(),
                );
            }
            let output = sqs
                .create_queue()
                .queue_name(queue_name)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|error| {
                    let error = aws("CreateQueue", error);
                    tracing::warn!(target: LOG, queue_name, "Unable to create queue [sqs] on AWS ({})", error.short());
                    error
                })?;
            output.queue_url().map(str::to_owned).ok_or_else(|| {
                tracing::warn!(target: LOG, queue_name, "Unable to create queue [sqs] on AWS (Missing Queue URL in response)");
                Error::Setup("Missing Queue URL in response".into())
            })?
        }
    };

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| {
            let error = aws("GetQueueAttributes", error);
            tracing::warn!(target: LOG, queue_name, "Unable to get queue attributes [sqs] on AWS ({})", error.short());
            error
        })?;
    let queue_arn = attributes
        .attributes()
        .and_then(|map| map.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| {
            tracing::warn!(target: LOG, queue_name, "Unable to get queue attributes [sqs] on AWS (Missing ARN in response)");
            Error::Setup("Missing ARN in response".into())
        })?;

    let queue_fifo = queue_name.ends_with(".fifo");
    if fifo != queue_fifo {
        let kind = |fifo: bool| if fifo { "FIFO" } else { "Standard" };
        let message = format!(
            "AWS SQS queue configured as {}, but the handler expected {}.",
            kind(queue_fifo),
            kind(fifo)
        );
        tracing::warn!(target: LOG, queue_name, "Queue [sqs] type mismatch ({message})");
        return Err(Error::Setup(message));
    }
    Ok((queue_url, queue_arn))
}

/// The URL of the queue with this ARN (`GetQueueUrl` with the owner's account id), `None` if
/// it does not exist.
pub(crate) async fn queue_url_from_arn(
    clients: &AwsClients,
    queue_arn: &str,
) -> Result<Option<String>, Error> {
    let mut parts = queue_arn.rsplit(':');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    if name.is_empty() || account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        tracing::warn!(target: LOG, queue_arn, "Specified Queue ARN [sqs] has unexpected format");
        return Err(Error::InvalidName(format!("Invalid SQS ARN ({queue_arn})")));
    }
    let mut request = clients.sqs().get_queue_url().queue_name(name);
    if !account.trim_matches('0').is_empty() {
        request = request.queue_owner_aws_account_id(account);
    }
    match request.send().await {
        Ok(output) => Ok(output.queue_url().map(str::to_owned)),
        Err(error) => {
            let error = aws("GetQueueUrl", error);
            if error.code().is_some_and(is_queue_missing_code) {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}

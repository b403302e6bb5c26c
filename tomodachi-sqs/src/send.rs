//! Sending straight to SQS queues (Python tomodachi's `sqs_send_message`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tomodachi_core::{
    AttributeValue, JsonEnvelope, ServiceIdentity, SharedEnvelope, telemetry, to_python_json,
};

use crate::attributes::{BodyAttribute, to_body, to_sqs};
use crate::error::aws;
use crate::outgoing::{deduplication_id, message_id};
use crate::setup::queue_url_from_arn;
use crate::{AwsClients, AwsSnsSqsOptions, Error};

const LOG: &str = "tomodachi.awssnssqs";

/// Options of one send: attributes, FIFO ids, delay, prefix and body format.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    attributes: Vec<(String, AttributeValue)>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
    delay_seconds: Option<i32>,
    queue_name_prefix: Option<Option<String>>,
    raw_body: bool,
}

impl SendOptions {
    /// Defaults: tomodachi's body format, the options' queue name prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a message attribute (tomodachi's encoding).
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// FIFO: the message group (the queue's name must end with `.fifo`).
    #[must_use]
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// FIFO: the deduplication id (default: a new uuid4 per message).
    #[must_use]
    pub fn deduplication_id(mut self, deduplication_id: impl Into<String>) -> Self {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    /// `DelaySeconds` of the message.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_seconds = Some(delay.as_secs().min(900) as i32);
        self
    }

    /// Use this prefix instead of the options' `queue_name_prefix` (`None`: no prefix).
    #[must_use]
    pub fn queue_name_prefix(mut self, prefix: Option<String>) -> Self {
        self.queue_name_prefix = Some(prefix);
        self
    }

    /// Send the data verbatim as the body: no envelope, no SNS-style wrapping (Python's
    /// `message_body_formatter=None`). A JSON string is sent as its text.
    #[must_use]
    pub fn raw_body(mut self) -> Self {
        self.raw_body = true;
        self
    }
}

/// Sends data to SQS queues by name, URL or ARN, wrapped exactly as tomodachi's
/// `sqs_send_message` wraps it, so Python and Rust handlers read it alike.
///
/// The body is `{"Type": "Message", "QueueUrl": …, "Version": "0", "Message": <sealed data,
/// topic "">, "Timestamp": "…Z", "MessageAttributes": {…}}`.
#[derive(Debug, Clone)]
pub struct SqsSender {
    clients: AwsClients,
    options: Arc<AwsSnsSqsOptions>,
    identity: ServiceIdentity,
    envelope: SharedEnvelope,
    queues: Arc<Mutex<HashMap<String, String>>>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "QueueUrl")]
    queue_url: &'a str,
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "MessageAttributes")]
    message_attributes: OrderedAttributes<'a>,
}

struct OrderedAttributes<'a>(Vec<(&'a str, BodyAttribute)>);

impl Serialize for OrderedAttributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl SqsSender {
    /// A sender for the service `identity`, with the JSON envelope.
    pub fn new(clients: AwsClients, options: AwsSnsSqsOptions, identity: ServiceIdentity) -> Self {
        Self {
            clients,
            options: Arc::new(options),
            identity,
            envelope: Arc::new(JsonEnvelope),
            queues: Arc::default(),
        }
    }

    /// Seals messages with this envelope instead (`RawEnvelope` for none).
    #[must_use]
    pub fn envelope(mut self, envelope: impl tomodachi_core::Envelope) -> Self {
        self.envelope = tomodachi_core::envelope::shared(envelope);
        self
    }

    /// Sends `data` to `queue` (a name, a queue URL or an `arn:aws:sqs:` ARN); returns the
    /// SQS message id.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        data: &T,
        queue: &str,
    ) -> Result<String, Error> {
        self.send_with(data, queue, SendOptions::default()).await
    }

    /// Sends with attributes, FIFO ids, a delay or a raw body.
    pub async fn send_with<T: Serialize + ?Sized>(
        &self,
        data: &T,
        queue: &str,
        mut options: SendOptions,
    ) -> Result<String, Error> {
        // Telemetry: a PRODUCER span and `traceparent` as a message attribute when a hook
        // is installed; otherwise nothing is added.
        let span =
            crate::attributes::start_publish(telemetry::AWS_SQS, queue, &mut options.attributes);
        let result = self.send_sealed(data, queue, options).await;
        span.finish(result.as_ref().err().map(|e| e as &dyn std::fmt::Display));
        result
    }

    async fn send_sealed<T: Serialize + ?Sized>(
        &self,
        data: &T,
        queue: &str,
        options: SendOptions,
    ) -> Result<String, Error> {
        let fifo_name = queue.ends_with(".fifo");
        if options.group_id.is_some() != fifo_name {
            let message = if fifo_name {
                "MessageGroupId, 'group_id', missing in 'send_message' call for implied FIFO queue"
            } else {
                "MessageGroupId, 'group_id', cannot be used with non-FIFO queue in 'send_message' call"
            };
            tracing::warn!(target: LOG, queue_name = queue, group_id = options.group_id.as_deref().unwrap_or(""), "Bad combination of SQS.SendMessage request parameter - FIFO related arguments ({message})");
            return Err(Error::Fifo(message.into()));
        }
        let queue_url = self.queue_url(queue, &options).await?;
        let data = to_python_json(data)?;
        let body = if options.raw_body {
            raw_text(&data)?
        } else {
            self.body(&data, &queue_url, &options)?
        };
        let attributes: HashMap<String, aws_sdk_sqs::types::MessageAttributeValue> = options
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), to_sqs(value)))
            .collect();
        let deduplication_id =
            deduplication_id(options.group_id.as_ref(), options.deduplication_id.as_ref());
        let sent = message_id(
            "SendMessage",
            || {
                self.clients
                    .sqs()
                    .send_message()
                    .queue_url(&queue_url)
                    .message_body(&body)
                    .set_message_attributes(Some(attributes.clone()))
                    .set_message_group_id(options.group_id.clone())
                    .set_message_deduplication_id(deduplication_id.clone())
                    .set_delay_seconds(options.delay_seconds)
                    .send()
            },
            |output| output.message_id(),
        )
        .await;
        if let Err(error) = &sent {
            tracing::warn!(target: LOG, queue_name = queue, "Unable to send message [sqs] on AWS ({})", error.short());
        }
        sent
    }

    /// tomodachi's `MessageBodyFormatter` output.
    fn body(
        &self,
        data: &RawValue,
        queue_url: &str,
        options: &SendOptions,
    ) -> Result<String, Error> {
        let message = self.envelope.seal(&self.identity, "", data)?;
        let body = Body {
            kind: "Message",
            queue_url,
            version: "0",
            message: &message,
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            message_attributes: OrderedAttributes(
                options
                    .attributes
                    .iter()
                    .map(|(name, value)| (name.as_str(), to_body(value)))
                    .collect(),
            ),
        };
        Ok(to_python_json(&body)?.get().to_owned())
    }

    /// The queue's URL: verbatim for a URL, `GetQueueUrl` (cached) for a name or ARN.
    pub async fn queue_url(&self, queue: &str, options: &SendOptions) -> Result<String, Error> {
        if queue.starts_with("http://") || queue.starts_with("https://") {
            return Ok(queue.to_owned());
        }
        let name = if queue.starts_with("arn:aws:sqs:") {
            queue.to_owned()
        } else {
            let prefix = match &options.queue_name_prefix {
                Some(prefix) => prefix.clone().unwrap_or_default(),
                None => self.options.queue_name_prefix.clone(),
            };
            format!("{prefix}{queue}")
        };
        if let Some(url) = self
            .queues
            .lock()
            .ok()
            .and_then(|queues| queues.get(&name).cloned())
        {
            return Ok(url);
        }
        let url = if name.starts_with("arn:aws:sqs:") {
            queue_url_from_arn(&self.clients, &name).await?
        } else {
            match self
                .clients
                .sqs()
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
            {
                Ok(output) => output.queue_url().map(str::to_owned),
                Err(error) => {
                    let error = aws("GetQueueUrl", error);
                    if error.is_queue_missing() {
                        None
                    } else {
                        return Err(error);
                    }
                }
            }
        };
        let Some(url) = url else {
            tracing::warn!(target: LOG, queue_name = queue, "Cannot send message to non-existent (AWS.SimpleQueueService.NonExistentQueue) SQS queue");
            return Err(Error::QueueDoesNotExist {
                queue: queue.to_owned(),
            });
        };
        if let Ok(mut queues) = self.queues.lock() {
            queues.insert(name, url.clone());
        }
        Ok(url)
    }
}

fn raw_text(data: &RawValue) -> Result<String, Error> {
    let json = data.get();
    if json.starts_with('"') {
        Ok(serde_json::from_str::<String>(json)?)
    } else {
        Ok(json.to_owned())
    }
}

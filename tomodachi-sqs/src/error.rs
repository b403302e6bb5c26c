//! Errors of the SNS+SQS transport.

use std::fmt::Write as _;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// What went wrong in the SNS+SQS transport.
///
/// Setup errors carry Python tomodachi's messages, so a misconfigured service fails its
/// startup with the same words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic or queue name tomodachi rejects.
    #[error("{0}")]
    InvalidName(String),
    /// A subscription whose options do not go together (tomodachi's startup errors).
    #[error("{0}")]
    InvalidSubscription(String),
    /// Credentials or region missing or partial.
    #[error("{0}")]
    Config(String),
    /// An AWS API call failed.
    #[error("{operation} failed ({code}: {message})")]
    Aws {
        /// The API operation (`"ReceiveMessage"`).
        operation: &'static str,
        /// The AWS error code, or the kind of transport failure.
        code: String,
        /// The AWS error message.
        message: String,
        /// Whether retrying later may succeed (throttling, 5xx, timeouts, connection errors).
        transient: bool,
        /// The SDK's error: the operation's error, or the connector's (never the raw
        /// HTTP response).
        #[source]
        source: tomodachi_core::BoxError,
    },
    /// AWS answered, but without a value tomodachi needs (`"Missing ARN in response"`).
    #[error("{0}")]
    Setup(String),
    /// A message was sent to a queue that does not exist.
    #[error(
        "Cannot send message to non-existent (AWS.SimpleQueueService.NonExistentQueue) SQS queue"
    )]
    QueueDoesNotExist {
        /// The queue name, URL or ARN that was given.
        queue: String,
    },
    /// The topic is not there and the publisher is in lookup-only mode.
    #[error("SNS topic ({topic}) does not exist")]
    TopicDoesNotExist {
        /// The topic that was given.
        topic: String,
    },
    /// FIFO arguments that do not match the queue or topic.
    #[error("{0}")]
    Fifo(String),
    /// The service driven by the consumer failed its readiness check (`poll_ready`).
    #[error("service failed: {0}")]
    Service(String),
    /// The data could not be sealed into an envelope.
    #[error(transparent)]
    Envelope(#[from] tomodachi_core::EnvelopeError),
    /// The data could not be serialized.
    #[error("unserializable data: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A layer around a publisher failed the publish (e.g. a `tower::timeout` elapsed).
    #[error("publish failed in a layer around the publisher: {0}")]
    Layer(#[source] tomodachi_core::BoxError),
}

impl Error {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Aws {
                transient: true,
                ..
            }
        )
    }

    /// The AWS error code, if an AWS call failed.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Does the error say the queue does not exist?
    pub fn is_queue_missing(&self) -> bool {
        match self {
            Self::QueueDoesNotExist { .. } => true,
            Self::Aws { code, .. } => is_queue_missing_code(code),
            _ => false,
        }
    }

    /// The text tomodachi puts in parentheses of its warnings (`code: message`).
    pub(crate) fn short(&self) -> String {
        match self {
            Self::Aws { code, message, .. } if message.is_empty() => code.clone(),
            Self::Aws { code, message, .. } => format!("{code}: {message}"),
            other => other.to_string(),
        }
    }
}

pub(crate) fn is_queue_missing_code(code: &str) -> bool {
    code.contains("NonExistentQueue") || code == "QueueDoesNotExist"
}

const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
    "KMSThrottlingException",
];

/// Converts an SDK error without its raw HTTP dump: code and message, and the operation's
/// (or the connector's) error as the source.
pub(crate) fn aws<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (code, message, transient) = match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = error.code().unwrap_or("Unknown").to_owned();
            let message = error.message().unwrap_or_default().to_owned();
            let transient = status >= 500 || TRANSIENT_CODES.contains(&code.as_str());
            (code, message, transient)
        }
        SdkError::TimeoutError(_) => ("Timeout".into(), "Network timeout".into(), true),
        SdkError::ConstructionFailure(_) => ("ConstructionFailure".into(), chain(&error), false),
        SdkError::DispatchFailure(_) => ("DispatchFailure".into(), chain(&error), true),
        _ => ("ResponseError".into(), chain(&error), true),
    };
    let source: tomodachi_core::BoxError = match error {
        SdkError::ServiceError(service) => Box::new(service.into_err()),
        other => other
            .into_source()
            .unwrap_or_else(|_| message.clone().into()),
    };
    Error::Aws {
        operation,
        code,
        message,
        transient,
        source,
    }
}

/// The error's source chain (never the raw response).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut current = error.source();
    while let Some(source) = current {
        if !text.is_empty() {
            text.push_str(": ");
        }
        let _ = write!(text, "{source}");
        current = source.source();
    }
    if text.is_empty() {
        text = "connection error".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_missing_codes() {
        assert!(is_queue_missing_code(
            "AWS.SimpleQueueService.NonExistentQueue"
        ));
        assert!(is_queue_missing_code("QueueDoesNotExist"));
        assert!(!is_queue_missing_code("AccessDenied"));
        let error = Error::Aws {
            operation: "ReceiveMessage",
            code: "Throttling".into(),
            message: "slow down".into(),
            transient: true,
            source: "slow down".into(),
        };
        assert!(error.is_transient());
        assert_eq!(error.short(), "Throttling: slow down");
        assert_eq!(
            error.to_string(),
            "ReceiveMessage failed (Throttling: slow down)"
        );
    }

    #[test]
    fn the_sdks_error_is_the_source() {
        use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;

        let sdk: SdkError<ReceiveMessageError, HttpResponse> =
            SdkError::timeout_error("deadline passed");
        let error = aws("ReceiveMessage", sdk);
        assert!(error.is_transient());
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "deadline passed");
    }
}

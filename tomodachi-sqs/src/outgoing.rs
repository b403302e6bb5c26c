//! What publishing to SNS and sending to SQS share: FIFO deduplication ids and retries of
//! transient AWS errors.

use std::future::Future;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::Error;
use crate::error::aws;

/// How many times a publish or send is tried while AWS answers with a transient error.
const ATTEMPTS: u32 = 3;

/// The `MessageDeduplicationId` of a FIFO message (one with a group id): the given one, or
/// a new uuid4 as tomodachi does; `None` without a group id.
pub(crate) fn deduplication_id(
    group_id: Option<&String>,
    deduplication_id: Option<&String>,
) -> Option<String> {
    group_id.map(|_| {
        deduplication_id
            .filter(|id| !id.is_empty())
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    })
}

/// Sends a message with `call` (AWS operation `operation`), again while the error is
/// transient, and returns its message id.
pub(crate) async fn message_id<T, E, F, Fut>(
    operation: &'static str,
    mut call: F,
    id: fn(&T) -> Option<&str>,
) -> Result<String, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(output) => {
                return id(&output)
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Setup("Missing MessageId in response".into()));
            }
            Err(error) => {
                let error = aws(operation, error);
                if !error.is_transient() || attempt == ATTEMPTS {
                    return Err(error);
                }
                attempt += 1;
            }
        }
    }
}

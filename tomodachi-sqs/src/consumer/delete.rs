//! Deletes acknowledged messages in batches of up to 10 (`DeleteMessageBatch`).

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::sync::{mpsc, oneshot};

use crate::error::aws;

const LOG: &str = "tomodachi.awssnssqs";
const MAX_BATCH: usize = 10;
const ATTEMPTS: u32 = 4;

type Request = (String, oneshot::Sender<bool>);

/// A handle to the delete batcher of one queue; the batcher stops (after flushing) once
/// every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Deleter {
    sender: mpsc::UnboundedSender<Request>,
}

impl Deleter {
    /// Starts the batcher: a batch goes out when it holds 10 receipt handles or `linger`
    /// after its first one.
    pub(crate) fn spawn(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        linger: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(sqs, queue_url, linger, receiver));
        (Self { sender }, task)
    }

    /// Deletes the message; resolves once its batch was sent. Returns whether it was
    /// deleted.
    pub(crate) async fn delete(&self, receipt_handle: String) -> bool {
        let (done, wait) = oneshot::channel();
        if self.sender.send((receipt_handle, done)).is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

async fn run(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    linger: Duration,
    mut receiver: mpsc::UnboundedReceiver<Request>,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => {
                    batch.push(request);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(request)) => batch.push(request),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&sqs, &queue_url, &mut batch).await;
    }
}

async fn flush(sqs: &aws_sdk_sqs::Client, queue_url: &str, batch: &mut Vec<Request>) {
    let mut pending: Vec<Request> = std::mem::take(batch);
    for attempt in 1..=ATTEMPTS {
        if pending.is_empty() {
            return;
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = pending
            .iter()
            .enumerate()
            .filter_map(|(index, (receipt_handle, _))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt_handle)
                    .build()
                    .ok()
            })
            .collect();
        match sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                let mut retry = Vec::new();
                let mut outcome: Vec<Option<bool>> = vec![None; pending.len()];
                for ok in output.successful() {
                    if let Ok(index) = ok.id().parse::<usize>()
                        && let Some(slot) = outcome.get_mut(index)
                    {
                        *slot = Some(true);
                    }
                }
                for failed in output.failed() {
                    if let Ok(index) = failed.id().parse::<usize>()
                        && let Some(slot) = outcome.get_mut(index)
                    {
                        // Sender faults (an expired receipt handle) never succeed later.
                        let again = !failed.sender_fault() && attempt < ATTEMPTS;
                        if !again {
                            tracing::warn!(target: LOG, queue_url, "Unable to delete message [sqs] on AWS ({}: {})", failed.code(), failed.message().unwrap_or_default());
                        }
                        *slot = Some(false).filter(|_| !again);
                    }
                }
                for (request, result) in pending.drain(..).zip(outcome) {
                    match result {
                        Some(deleted) => {
                            let _ = request.1.send(deleted);
                        }
                        None => retry.push(request),
                    }
                }
                pending = retry;
            }
            Err(error) => {
                let error = aws("DeleteMessageBatch", error);
                if !error.is_transient() || attempt == ATTEMPTS {
                    tracing::warn!(target: LOG, queue_url, "Unable to delete message [sqs] on AWS ({})", error.short());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    for (_, done) in pending {
        let _ = done.send(false);
    }
}

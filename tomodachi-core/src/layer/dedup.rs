//! Deduplication by the envelope's `message_uuid` (opt-in).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::{EnvelopeMetadata, Message, Outcome};

/// What a [`DedupStore`] knows of a message uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (now marked as in progress).
    New,
    /// Being handled right now by another delivery.
    InProgress,
    /// Handled successfully within the store's expiry.
    Done,
}

/// Where [`DedupLayer`] remembers message uuids. Implement it over Redis or a database to
/// deduplicate across processes; [`MemoryStore`] is the in-process default.
pub trait DedupStore: Send + Sync + 'static {
    /// Looks `key` up; if it is new, marks it as in progress.
    fn begin(&self, key: &str) -> Seen;

    /// Records how handling `key` ended: `handled` keeps it as done until it expires,
    /// otherwise it is forgotten so a redelivery is handled again.
    fn finish(&self, key: &str, handled: bool);
}

/// An in-memory [`DedupStore`]: handled uuids are remembered for `expiry` (default 60 s,
/// tomodachi's minute).
#[derive(Debug)]
pub struct MemoryStore {
    expiry: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    InProgress,
    Done(Instant),
}

impl MemoryStore {
    /// A store remembering handled uuids for `expiry`.
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

impl DedupStore for MemoryStore {
    fn begin(&self, key: &str) -> Seen {
        let now = Instant::now();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, entry| !matches!(entry, Entry::Done(at) if *at <= now));
        }
        match entries.get(key) {
            Some(Entry::InProgress) => Seen::InProgress,
            Some(Entry::Done(expires)) if *expires > now => Seen::Done,
            _ => {
                entries.insert(key.to_owned(), Entry::InProgress);
                Seen::New
            }
        }
    }

    fn finish(&self, key: &str, handled: bool) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handled {
            entries.insert(key.to_owned(), Entry::Done(Instant::now() + self.expiry));
        } else {
            entries.remove(key);
        }
    }
}

/// Skips messages whose envelope `message_uuid` was handled recently.
///
/// A duplicate of a handled message is acknowledged without calling the handler (warning
/// `ignored duplicate message already processed in the last minute`); a duplicate of a
/// message still being handled is retried later, so nothing is lost if the first attempt
/// fails. Messages without envelope metadata pass through.
///
/// ```
/// use tomodachi_core::layer::dedup::DedupLayer;
/// let layer = DedupLayer::default();
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct DedupLayer<St = MemoryStore> {
    store: Arc<St>,
}

impl Default for DedupLayer {
    fn default() -> Self {
        Self::new(MemoryStore::default())
    }
}

impl<St: DedupStore> DedupLayer<St> {
    /// Deduplicates with `store`.
    pub fn new(store: St) -> Self {
        Self {
            store: Arc::new(store),
        }
    }
}

impl<S, St> Layer<S> for DedupLayer<St> {
    type Service = Dedup<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Dedup {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service of [`DedupLayer`].
#[derive(Debug)]
pub struct Dedup<S, St> {
    inner: S,
    store: Arc<St>,
}

impl<S: Clone, St> Clone for Dedup<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S, St> Dedup<S, St> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, St> Service<Message> for Dedup<S, St>
where
    S: Service<Message, Response = Outcome>,
    St: DedupStore,
{
    type Response = Outcome;
    type Error = S::Error;
    type Future = DedupFuture<S::Future, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let Some(key) = message
            .context::<EnvelopeMetadata>()
            .map(|m| m.message_uuid.clone())
        else {
            return DedupFuture::inner(self.inner.call(message), Mark::none());
        };
        match self.store.begin(&key) {
            Seen::New => {
                // Made before the call: a call that panics forgets the mark too.
                let mark = Mark::new(self.store.clone(), key);
                DedupFuture::inner(self.inner.call(message), mark)
            }
            Seen::Done => {
                tracing::warn!(target: "tomodachi.dedup", message_uuid = key, "ignored duplicate message already processed in the last minute");
                DedupFuture::ready(Outcome::Ack)
            }
            Seen::InProgress => {
                tracing::warn!(target: "tomodachi.dedup", message_uuid = key, "duplicate of a message being handled: retrying it later");
                DedupFuture::ready(Outcome::retry())
            }
        }
    }
}

pin_project! {
    /// The response future of [`Dedup`].
    #[derive(Debug)]
    pub struct DedupFuture<F, St> {
        #[pin]
        kind: Kind<F, St>,
    }
}

pin_project! {
    #[project = DedupProj]
    #[derive(Debug)]
    enum Kind<F, St> {
        Inner { #[pin] future: F, mark: Mark<St> },
        Ready { outcome: Outcome },
    }
}

/// A message marked in progress in the store. Finished with the outcome, or, if the
/// future is dropped first (a panic the driver caught, a timeout around this layer),
/// forgotten: a message must not stay "in progress" for ever, or every redelivery of it
/// would be retried as a duplicate without its handler being called again.
struct Mark<St> {
    entry: Option<(Arc<St>, String)>,
    finish: fn(&St, &str, bool),
}

impl<St> std::fmt::Debug for Mark<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Mark")
            .field(&self.entry.as_ref().map(|(_, key)| key))
            .finish()
    }
}

impl<St: DedupStore> Mark<St> {
    fn new(store: Arc<St>, key: String) -> Self {
        Self {
            entry: Some((store, key)),
            finish: St::finish,
        }
    }

    fn none() -> Self {
        Self {
            entry: None,
            finish: St::finish,
        }
    }
}

impl<St> Mark<St> {
    fn finish(&mut self, handled: bool) {
        if let Some((store, key)) = self.entry.take() {
            (self.finish)(&store, &key, handled);
        }
    }
}

impl<St> Drop for Mark<St> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<F, St> DedupFuture<F, St> {
    fn inner(future: F, mark: Mark<St>) -> Self {
        Self {
            kind: Kind::Inner { future, mark },
        }
    }

    fn ready(outcome: Outcome) -> Self {
        Self {
            kind: Kind::Ready { outcome },
        }
    }
}

impl<F, E, St> Future for DedupFuture<F, St>
where
    F: Future<Output = Result<Outcome, E>>,
    St: DedupStore,
{
    type Output = Result<Outcome, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            DedupProj::Ready { outcome } => Poll::Ready(Ok(*outcome)),
            DedupProj::Inner { future, mark } => {
                let result = ready!(future.poll(cx));
                mark.finish(matches!(result, Ok(Outcome::Ack)));
                Poll::Ready(result)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    fn message(uuid: &str) -> Message {
        Message::new("").with_context(EnvelopeMetadata {
            service_name: "s".into(),
            service_uuid: "u".into(),
            message_uuid: uuid.into(),
            protocol_version: String::new(),
            timestamp: 0.0,
            topic: String::new(),
            data_encoding: "raw".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn handled_duplicates_are_acked_without_the_handler_until_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_m: Message| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(Outcome::Ack) }
        });
        let service = DedupLayer::new(MemoryStore::new(Duration::from_secs(60))).layer(inner);
        for _ in 0..3 {
            assert_eq!(
                service.clone().oneshot(message("a")).await,
                Ok(Outcome::Ack)
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        service.clone().oneshot(message("a")).await.unwrap();
        service
            .clone()
            .oneshot(Message::new("no envelope"))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn failed_messages_are_handled_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_m: Message| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<_, std::convert::Infallible>(if n == 0 {
                    Outcome::retry()
                } else {
                    Outcome::Ack
                })
            }
        });
        let service = DedupLayer::default().layer(inner);
        assert_eq!(
            service.clone().oneshot(message("b")).await,
            Ok(Outcome::retry())
        );
        assert_eq!(
            service.clone().oneshot(message("b")).await,
            Ok(Outcome::Ack)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A panic is caught by the driver, outside this layer: the mark must not stay "in
    /// progress", or every redelivery would be retried as a duplicate, never handled.
    #[tokio::test]
    async fn a_message_whose_handler_panicked_is_handled_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_m: Message| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n > 0, "first delivery panics");
                Ok::<_, std::convert::Infallible>(Outcome::Ack)
            }
        });
        let service = DedupLayer::default().layer(inner);
        let outcome =
            |service| crate::driver::oneshot(service, message("p"), crate::RetryOnFailure);
        assert_eq!(outcome(service.clone()).await.unwrap(), Outcome::retry());
        assert_eq!(outcome(service.clone()).await.unwrap(), Outcome::Ack);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A timeout around the layer drops the handler's future: the mark is forgotten with
    /// it, and the redelivery is handled.
    #[tokio::test(start_paused = true)]
    async fn a_message_whose_handler_timed_out_is_handled_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_m: Message| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok::<_, std::convert::Infallible>(Outcome::Ack)
            }
        });
        let service = crate::HandlerTimeoutLayer::new(Duration::from_secs(5))
            .layer(DedupLayer::default().layer(inner));
        assert_eq!(
            service.clone().oneshot(message("t")).await,
            Ok(Outcome::retry())
        );
        assert_eq!(
            service.clone().oneshot(message("t")).await,
            Ok(Outcome::Ack)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn in_progress_duplicates_are_retried() {
        let store = MemoryStore::default();
        assert_eq!(store.begin("c"), Seen::New);
        assert_eq!(store.begin("c"), Seen::InProgress);
    }
}

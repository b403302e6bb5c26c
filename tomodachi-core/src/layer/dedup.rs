//! Deduplication by the envelope's `message_uuid` (opt-in).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::{BoxError, EnvelopeMetadata, Message, Outcome};

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

/// Where [`DedupLayer`] remembers message uuids: async, so that it can be backed by Redis
/// or a database to deduplicate across processes; [`MemoryStore`] is the in-process
/// default.
///
/// A store that fails to answer [`begin`](DedupStore::begin) leaves the message to be
/// retried (nothing is lost); a failed [`finish`](DedupStore::finish) is logged.
///
/// ```
/// use std::future::{Ready, ready};
/// use tomodachi_core::BoxError;
/// use tomodachi_core::layer::dedup::{DedupLayer, DedupStore, Seen};
///
/// /// Treats every message as new (a stand-in for a Redis `SET NX`).
/// struct AlwaysNew;
///
/// impl DedupStore for AlwaysNew {
///     fn begin(&self, _key: &str) -> impl Future<Output = Result<Seen, BoxError>> + Send {
///         ready(Ok(Seen::New))
///     }
///     fn finish(&self, _key: &str, _handled: bool) -> impl Future<Output = Result<(), BoxError>> + Send {
///         ready(Ok(()))
///     }
/// }
///
/// let layer = DedupLayer::new(AlwaysNew);
/// # let _ = layer;
/// ```
pub trait DedupStore: Send + Sync + 'static {
    /// Looks `key` up; if it is new, marks it as in progress.
    fn begin(&self, key: &str) -> impl Future<Output = Result<Seen, BoxError>> + Send;

    /// Records how handling `key` ended: `handled` keeps it as done until it expires,
    /// otherwise it is forgotten so a redelivery is handled again.
    fn finish(&self, key: &str, handled: bool)
    -> impl Future<Output = Result<(), BoxError>> + Send;
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

    fn begin_now(&self, key: &str) -> Seen {
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

    fn finish_now(&self, key: &str, handled: bool) {
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

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

impl DedupStore for MemoryStore {
    fn begin(&self, key: &str) -> impl Future<Output = Result<Seen, BoxError>> + Send {
        std::future::ready(Ok(self.begin_now(key)))
    }

    fn finish(
        &self,
        key: &str,
        handled: bool,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        self.finish_now(key, handled);
        std::future::ready(Ok(()))
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
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: DedupStore,
{
    type Response = Outcome;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Outcome, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let Some(key) = message
            .context::<EnvelopeMetadata>()
            .map(|m| m.message_uuid.clone())
        else {
            return Box::pin(self.inner.call(message));
        };
        // The ready service goes into the future (it is called once the store answers);
        // a clone takes its place for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        Box::pin(async move {
            match store.begin(&key).await {
                Ok(Seen::New) => {}
                Ok(Seen::Done) => {
                    tracing::warn!(target: "tomodachi.dedup", message_uuid = key, "ignored duplicate message already processed in the last minute");
                    return Ok(Outcome::Ack);
                }
                Ok(Seen::InProgress) => {
                    tracing::warn!(target: "tomodachi.dedup", message_uuid = key, "duplicate of a message being handled: retrying it later");
                    return Ok(Outcome::retry());
                }
                Err(error) => {
                    tracing::error!(target: "tomodachi.dedup", message_uuid = key, error_message = %error, "dedup store failed: retrying the message later");
                    return Ok(Outcome::retry());
                }
            }
            // Made before the call: a call that panics, or a future dropped by a timeout
            // around this layer, forgets the mark too.
            let mark = Mark(Some((store.clone(), key.clone())));
            let result = inner.call(message).await;
            mark.disarm();
            let handled = matches!(result, Ok(Outcome::Ack));
            if let Err(error) = store.finish(&key, handled).await {
                tracing::error!(target: "tomodachi.dedup", message_uuid = key, error_message = %error, "dedup store failed to record the message");
            }
            result
        })
    }
}

/// A message marked in progress in the store. If the handling ends without an outcome (a
/// panic the driver caught, a timeout around this layer dropping the future), the mark is
/// forgotten: a message must not stay "in progress" for ever, or every redelivery of it
/// would be retried as a duplicate without its handler being called again.
struct Mark<St: DedupStore>(Option<(Arc<St>, String)>);

impl<St: DedupStore> Mark<St> {
    /// The handling ended with an outcome: the caller records it.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<St: DedupStore> Drop for Mark<St> {
    fn drop(&mut self) {
        let Some((store, key)) = self.0.take() else {
            return;
        };
        let mut forget = Box::pin(async move {
            if let Err(error) = store.finish(&key, false).await {
                tracing::error!(target: "tomodachi.dedup", message_uuid = key, error_message = %error, "dedup store failed to forget the message");
            }
        });
        // A store that answers at once (the in-memory one) forgets now, before the
        // redelivery; a slower one on the runtime.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        if forget.as_mut().poll(&mut cx).is_pending()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(forget);
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

    #[tokio::test]
    async fn in_progress_duplicates_are_retried() {
        let store = MemoryStore::default();
        assert_eq!(store.begin("c").await.unwrap(), Seen::New);
        assert_eq!(store.begin("c").await.unwrap(), Seen::InProgress);
    }

    #[tokio::test]
    async fn a_failing_store_leaves_the_message_for_a_retry() {
        struct Down;
        impl DedupStore for Down {
            fn begin(&self, _key: &str) -> impl Future<Output = Result<Seen, BoxError>> + Send {
                std::future::ready(Err("connection refused".into()))
            }
            fn finish(
                &self,
                _key: &str,
                _handled: bool,
            ) -> impl Future<Output = Result<(), BoxError>> + Send {
                std::future::ready(Ok(()))
            }
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_m: Message| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(Outcome::Ack) }
        });
        let service = DedupLayer::new(Down).layer(inner);
        assert_eq!(service.oneshot(message("d")).await, Ok(Outcome::retry()));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}

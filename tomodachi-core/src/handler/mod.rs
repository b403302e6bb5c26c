//! Handlers: plain `async fn`s whose arguments are extractors.
//!
//! Any `async fn` (or closure returning a future) of 0..=16 extractors, the last of which
//! may be a body extractor, is a [`Handler`]. [`Handler::with_state`] (or
//! [`HandlerWithoutStateExt::into_service`]) turns it into a [`HandlerService`], a
//! `tower::Service<Message>`: an extractor's rejection is an [`Outcome`](crate::Outcome),
//! the handler's `Err` is the service's error, and the source's
//! [driver](crate::driver) classifies errors and panics into an outcome.
//!
//! ```
//! use serde::Deserialize;
//! use tomodachi_core::{Data, Handler, Message, Outcome, State};
//! use tower_service::Service;
//!
//! #[derive(Deserialize)]
//! struct Order { id: u64 }
//!
//! async fn on_order(State(prefix): State<&'static str>, Data(order): Data<Order>) -> Result<(), std::io::Error> {
//!     println!("{prefix}{}", order.id);
//!     Ok(())
//! }
//!
//! # tokio_test_block(async {
//! let mut service = on_order.with_state("order ");
//! let outcome = service.call(Message::new(r#"{"id": 1}"#)).await.unwrap();
//! assert_eq!(outcome, Outcome::Ack);
//! # });
//! # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod classify;
mod future;
mod layered;
mod service;

use std::future::Future;

pub use classify::{
    Classify, ClassifyFn, DropOnFailure, HandlerFailure, RetryOnFailure, SharedClassifier,
    classify_fn,
};
pub use future::{CallFuture, Failure, HandlerFuture};
pub use layered::{Layered, LayeredFuture};
pub use service::HandlerService;

use crate::extract::{FromMessage, FromMessageParts};
use crate::{IntoOutcome, Message};

/// An async function usable as a message handler.
///
/// `T` is the tuple of its extractor types (with a marker); it only exists to let many
/// implementations stand side by side.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message handler",
    label = "not a handler of messages",
    note = "a handler is an `async fn` (or a closure returning a future) of at most 16 extractors, each `FromMessageParts` but the last, which may be `FromMessage` (`Data<T>`, `Raw`)",
    note = "it returns `()`, `Outcome` or `Result<_, E>` with `E: Into<BoxError>`, and its future is `Send`"
)]
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// The future of one call.
    type Future: Future<Output = Result<crate::Outcome, Failure>> + Send + 'static;

    /// Extracts the arguments from `message` and calls the function.
    fn call(self, message: Message, state: S) -> Self::Future;

    /// A tower service calling this handler with `state`.
    fn with_state(self, state: S) -> HandlerService<Self, T, S> {
        HandlerService::new(self, state)
    }

    /// Wraps this one handler in `layer` (axum's `Handler::layer`): any tower layer whose
    /// service answers `Message` with `Outcome`, such as
    /// [`HandlerTimeoutLayer`](crate::HandlerTimeoutLayer). The layer runs inside the
    /// service-wide layers and the envelope (the message is opened); its errors are the
    /// handler's errors. The layer orders side by side: the facade's
    /// `tomodachi::middleware` page.
    ///
    /// As in axum, the layer wraps each message's call afresh, so a layer whose service
    /// keeps state of its own limits nothing here: `tower`'s `ConcurrencyLimitLayer` would
    /// make a new semaphore for every message. Limit concurrency on the service's layers
    /// (where readiness is the prefetch), or share the state
    /// (`GlobalConcurrencyLimitLayer`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tomodachi_core::{driver, Handler, HandlerTimeoutLayer, Message, Outcome, RetryOnFailure};
    ///
    /// async fn slow() {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let handler = slow.layer(HandlerTimeoutLayer::new(Duration::from_secs(5)));
    /// let outcome = driver::oneshot(handler.with_state(()), Message::new(""), RetryOnFailure).await;
    /// assert_eq!(outcome.unwrap(), Outcome::retry());
    /// # }
    /// ```
    fn layer<L>(self, layer: L) -> Layered<L, Self, T, S>
    where
        L: tower_layer::Layer<HandlerService<Self, T, S>> + Clone + Send + Sync + 'static,
    {
        Layered::new(layer, self)
    }

    /// The handler's name in log records: the function's (`path::to::on_order` →
    /// `on_order`).
    fn name() -> &'static str {
        service::short_name(std::any::type_name::<Self>())
    }
}

/// [`Handler::with_state`] for handlers without state.
pub trait HandlerWithoutStateExt<T>: Handler<T, ()> {
    /// A tower service calling this handler.
    fn into_service(self) -> HandlerService<Self, T, ()>;
}

impl<H, T> HandlerWithoutStateExt<T> for H
where
    H: Handler<T, ()>,
{
    fn into_service(self) -> HandlerService<Self, T, ()> {
        self.with_state(())
    }
}

impl<F, Fut, S> Handler<((),), S> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoOutcome,
{
    type Future = CallFuture<Fut>;

    fn call(self, _message: Message, _state: S) -> Self::Future {
        CallFuture::running(self())
    }
}

macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case)]
        impl<F, Fut, S, M, $($ty,)* $last> Handler<(M, $($ty,)* $last,), S> for F
        where
            F: FnOnce($($ty,)* $last,) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: IntoOutcome,
            $( $ty: FromMessageParts<S> + Send, )*
            $last: FromMessage<S, M> + Send,
        {
            type Future = CallFuture<Fut>;

            fn call(self, message: Message, state: S) -> Self::Future {
                let (parts, body) = message.into_parts();
                $(
                    let $ty = match $ty::from_message_parts(&parts, &state) {
                        Ok(value) => value,
                        Err(rejection) => return CallFuture::rejected(rejection.into()),
                    };
                )*
                let message = Message::from_parts(parts, body);
                let $last = match $last::from_message(message, &state) {
                    Ok(value) => value,
                    Err(rejection) => return CallFuture::rejected(rejection.into()),
                };
                CallFuture::running(self($($ty,)* $last,))
            }
        }
    };
}

impl_handler!([], T1);
impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8], T9);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9], T10);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10], T11);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11], T12);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12], T13);
impl_handler!(
    [T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13],
    T14
);
impl_handler!(
    [T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14],
    T15
);
impl_handler!(
    [
        T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15
    ],
    T16
);

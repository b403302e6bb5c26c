//! What every publisher shares: its `tower` stack.
//!
//! A publisher (`tomodachi_sqs::SnsPublisher`, `tomodachi_sqs::SqsSender`,
//! `tomodachi_amqp::AmqpPublisher`) is a handle that seals data and sends a request (a
//! [`PublishRequest`](crate::telemetry::PublishRequest)) to a `tower::Service`: its broker
//! call wrapped in the layers of [`PublishLayers`] (retry, timeout, concurrency limit,
//! the OpenTelemetry producer span, ...).

use std::fmt;
use std::sync::Arc;

use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// A publisher's service after type erasure: request `R`, response `T`, error `E`.
pub type BoxPublishService<R, T, E> = BoxCloneSyncService<R, T, E>;

type LayerFn<R, T, E> =
    Arc<dyn Fn(BoxPublishService<R, T, E>) -> BoxPublishService<R, T, E> + Send + Sync>;

/// The layers of a publisher, kept apart from its broker call so the stack can be built
/// again when the call's settings change.
///
/// As with axum's `Router::layer`, each layer wraps what was added before it: the last one
/// added is the outermost. A layer's error is turned back into `E` when it is one (a
/// `tower::retry` around the call), else into `E` by the publisher's `other` function
/// (a `tower::timeout` that elapsed).
///
/// ```
/// use std::io;
/// use std::time::Duration;
///
/// use tomodachi_core::publish::PublishLayers;
/// use tower::timeout::TimeoutLayer;
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut layers = PublishLayers::<String, usize, io::Error>::new(io::Error::other);
/// layers.push(TimeoutLayer::new(Duration::from_secs(5)));
/// let send = service_fn(|topic: String| async move { Ok::<_, io::Error>(topic.len()) });
/// let service = layers.apply(send);
/// assert_eq!(service.oneshot("order-paid".to_owned()).await.unwrap(), 10);
/// # }
/// ```
pub struct PublishLayers<R, T, E> {
    layers: Vec<LayerFn<R, T, E>>,
    other: fn(BoxError) -> E,
}

impl<R, T, E> Clone for PublishLayers<R, T, E> {
    fn clone(&self) -> Self {
        Self {
            layers: self.layers.clone(),
            other: self.other,
        }
    }
}

impl<R, T, E> fmt::Debug for PublishLayers<R, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishLayers")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl<R, T, E> PublishLayers<R, T, E>
where
    R: Send + 'static,
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    /// No layers; a layer's error that is not an `E` becomes `other(error)`.
    pub fn new(other: fn(BoxError) -> E) -> Self {
        Self {
            layers: Vec::new(),
            other,
        }
    }

    /// Adds `layer` around the layers added so far.
    pub fn push<L>(&mut self, layer: L)
    where
        L: Layer<BoxPublishService<R, T, E>> + Send + Sync + 'static,
        L::Service: Service<R, Response = T> + Clone + Send + Sync + 'static,
        <L::Service as Service<R>>::Error: Into<BoxError>,
        <L::Service as Service<R>>::Future: Send + 'static,
    {
        let other = self.other;
        self.layers.push(Arc::new(move |inner| {
            let service = layer.layer(inner);
            BoxCloneSyncService::new(tower::ServiceExt::map_err(service, move |error| {
                let error: BoxError = error.into();
                match error.downcast::<E>() {
                    Ok(error) => *error,
                    Err(error) => other(error),
                }
            }))
        }));
    }

    /// `base` in every layer, boxed.
    pub fn apply<S>(&self, base: S) -> BoxPublishService<R, T, E>
    where
        S: Service<R, Response = T, Error = E> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        let mut service = BoxCloneSyncService::new(base);
        for layer in &self.layers {
            service = layer(service);
        }
        service
    }
}
